"""Loading a scenario: reading the TOML file and the CSV files it names (open pipeline, installed base),
validating, and one error listing every problem.

Anything wrong is reported in ONE :class:`~funnelsim.model.scenario.ScenarioError` that
lists every problem with its dotted path, e.g.::

    sales.win_rate: must be <= 1, got 1.4
    sources.inbound.persona_mix.buyr: unknown persona 'buyr' (did you mean 'buyer'?)
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import math
import tomllib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ValidationError

from funnelsim.files import MB, UnreadableFile, read_text
from funnelsim.model.paths import apply_overrides
from funnelsim.model.scenario import PIPELINE_SOURCE, RATE_TAGS, FieldProblems, Scenario, ScenarioError
from funnelsim.model.subscription import CUSTOMER_COLUMNS

__all__ = ["MAX_NESTING", "MAX_PIPELINE_BYTES", "MAX_SCENARIO_BYTES", "PIPELINE_COLUMNS", "CsvTable",
           "bundled_scenario", "customer_problems", "customer_row", "load_scenario", "parse_scenario",
           "parse_table_csv", "read_customers_csv", "read_pipeline_csv"]  # fmt: skip


def bundled_scenario(name: str) -> Path:
    """A bundled scenario file: inside the installed package (``funnelsim/scenarios``, see pyproject.toml), or
    in the source tree's ``scenarios/`` for an editable install; the package's path when in neither (reading
    it then names it in its error)."""
    package = Path(__file__).resolve().parents[1]
    for folder in (package / "scenarios", package.parents[1] / "scenarios"):
        if (folder / name).is_file():
            return folder / name
    return package / "scenarios" / name


def load_scenario(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Scenario:
    """Read, override and validate a scenario file.

    Parameters
    ----------
    path
        A TOML scenario file.
    overrides
        ``"dotted.path=value"`` strings; values are parsed as TOML (``0.3``,
        ``"fifo"``, ``[1, 2]``, ``{dist = "fixed", value = 3}``), else taken as text.

    Raises
    ------
    ScenarioError
        Listing every problem (TOML syntax with line and column, unknown keys with
        a "did you mean" hint, out-of-range values, undefined references).
    """
    path = Path(path)
    try:
        text = read_text(path, field="scenario file", max_bytes=MAX_SCENARIO_BYTES)
    except UnreadableFile as exc:
        raise ScenarioError([("", str(exc))], str(path)) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError([("", f"TOML syntax error: {exc}")], str(path)) from None
    except RecursionError:
        raise ScenarioError([("", "TOML nested too deeply (tables or arrays inside each other)")], str(path)) from None
    return parse_scenario(apply_overrides(raw, overrides, str(path)), str(path), base_dir=path.parent)


def parse_scenario(raw: dict[str, Any], source: str = "scenario", base_dir: str | Path | None = None) -> Scenario:
    """Validate already-parsed scenario data; see :func:`load_scenario`.

    ``base_dir`` is where a relative ``initial_pipeline.file`` is looked for (the
    scenario file's folder for :func:`load_scenario`; the current folder if None).
    The file is read here: the scenario returned holds its rows, not the path.
    """
    depth = _depth(raw)
    if depth > MAX_NESTING:
        raise ScenarioError([("", f"nested {depth} levels deep; a scenario needs at most {MAX_NESTING}")], source)
    folder = Path.cwd() if base_dir is None else Path(base_dir)
    raw, problems = _read_pipeline_file(raw, folder)
    raw, customer_problems = _read_customers_file(raw, folder)
    problems += customer_problems
    scenario = None
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        problems += _describe_all(exc)
    own = _reference_problems(raw)
    problems += own
    if scenario is not None and not problems:
        problems += _segment_reference_problems(scenario, own)
    if problems:
        raise ScenarioError(_dedupe(problems), source)
    assert scenario is not None
    return scenario


# The deepest real scenario is ~6 levels (sales.deal_size_by_persona.NAME.dist); anything far
# deeper is a mistake or an attack, refused before pydantic and our messages recurse into it.
MAX_NESTING = 32
MAX_SCENARIO_BYTES = 10 * MB
MAX_PIPELINE_BYTES = 200 * MB


def _depth(value: Any, limit: int = MAX_NESTING + 1) -> int:
    """Nesting depth of tables and arrays, counted no further than ``limit``."""
    depth, level = 0, [value]
    while level and depth < limit:
        children: list[Any] = []
        for node in level:
            if isinstance(node, dict):
                children.extend(node.values())
            elif isinstance(node, list):
                children.extend(node)
        level = children
        depth += bool(level)
    return depth


# ---------------------------------------------------------------------------
# The initial pipeline's CSV file

PIPELINE_COLUMNS = ("id", "age_days", "deal_size", "fit", "persona", "owner")
"""Columns a pipeline CSV may have; ``age_days`` is required, the others may be left out or empty."""
MAX_ROW_PROBLEMS = 20  # a broken export gets a readable error, not one line per row


def read_pipeline_csv(path: str | Path, personas: list[str] | None = None) -> list[dict[str, Any]]:
    """The open deals of a pipeline CSV file, as :class:`OpenDeal` fields (empty cells left out).

    Parameters
    ----------
    path
        A UTF-8 CSV file (a byte-order mark is allowed) with a header row; columns in
        :data:`PIPELINE_COLUMNS`, ``age_days`` required.
    personas
        The scenario's persona names; if given, ``persona`` (default ``"buyer"``) must be one.

    Raises
    ------
    ScenarioError
        Naming the file, line and column of every bad cell (first 20), unknown or
        missing columns, and duplicate ids.
    """
    rows, problems = _parse_pipeline_csv(Path(path), personas)
    if problems:
        raise ScenarioError(problems, str(path))
    return rows


def _read_pipeline_file(raw: Any, base_dir: Path) -> tuple[Any, list[tuple[str, str]]]:
    """``raw`` with ``initial_pipeline.file`` replaced by the rows read from it, and the problems found.

    Only valid rows are kept, so a problem is reported once, by line and column.
    """
    pipeline = raw.get("initial_pipeline") if isinstance(raw, dict) else None
    if not isinstance(pipeline, dict) or not isinstance(pipeline.get("file"), str) or pipeline.get("opportunities"):
        return raw, []  # nothing to read, or a mistake the model reports (both forms, not a string)
    path = Path(pipeline["file"])
    if not path.is_absolute():
        path = base_dir / path
    personas = raw.get("personas")
    rows, problems = _parse_pipeline_csv(path, list(personas) if isinstance(personas, dict) else None)
    resolved = {key: value for key, value in pipeline.items() if key != "file"}
    resolved["opportunities"] = rows
    return {**raw, "initial_pipeline": resolved}, problems


def _parse_pipeline_csv(path: Path, personas: list[str] | None) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    table = CsvTable("initial_pipeline.file", "pipeline", PIPELINE_COLUMNS, ("age_days",), (), MAX_PIPELINE_BYTES)
    return parse_table_csv(path, table, lambda cells: _pipeline_row(cells, personas))


@dataclass(frozen=True)
class CsvTable:
    """What a CSV file named by a scenario holds: the key naming it, what its rows are, its columns.

    ``required`` columns must be in the header; of ``one_of``, at least one (when given).
    """

    field: str
    kind: str
    columns: tuple[str, ...]
    required: tuple[str, ...]
    one_of: tuple[str, ...]
    max_bytes: int


RowParser = Callable[[dict[str, str]], tuple[dict[str, Any], list[tuple[str, str]]]]
"""One CSV row (column -> stripped text) as model fields, and ``(column, message)`` for each bad cell."""


def parse_table_csv(
    path: Path, table: CsvTable, parse_row: RowParser
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """The valid rows of a CSV file of ``table``, and a problem per bad header, cell or row (first 20).

    Shared by the initial pipeline and the installed base: a byte-order mark is allowed, blank
    lines are skipped, each problem names the file, line and column, and ``id`` must be unique.
    """
    where = str(path)
    try:
        text = read_text(path, field=table.field, max_bytes=table.max_bytes, encoding="utf-8-sig")
    except UnreadableFile as exc:
        return [], [("", str(exc))]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        return [], [(where, f"empty file; expected a header row naming at least the column {table.required[0]}")]
    except csv.Error as exc:
        return [], [(f"{where} line 1", f"not valid CSV: {exc}")]
    problems = _header_problems(header, table, where)
    if problems:
        return [], problems
    rows: list[dict[str, Any]] = []
    seen_ids: dict[str, int] = {}
    row_problems: list[tuple[str, str]] = []
    try:
        for fields in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in fields):
                continue  # a blank line
            if len(fields) != len(header):
                row_problems.append((f"{where} line {line}", f"expected {len(header)} fields, got {len(fields)}"))
                continue
            row, bad = parse_row(dict(zip(header, (c.strip() for c in fields), strict=True)))
            row_problems += [(f"{where} line {line}, column {column}", message) for column, message in bad]
            row_id = row.get("id")
            if row_id is not None:
                if row_id in seen_ids:
                    row_problems.append(
                        (
                            f"{where} line {line}, column id",
                            f"duplicate id {row_id!r} (first on line {seen_ids[row_id]})",
                        )
                    )
                    continue
                seen_ids[row_id] = line
            if not bad:
                rows.append(row)
    except csv.Error as exc:
        row_problems.append((f"{where} line {reader.line_num}", f"not valid CSV: {exc}"))
    if len(row_problems) > MAX_ROW_PROBLEMS:
        more = len(row_problems) - MAX_ROW_PROBLEMS
        row_problems = [*row_problems[:MAX_ROW_PROBLEMS], (where, f"... and {more} more problem{'s' * (more > 1)}")]
    return rows, row_problems


def _header_problems(header: list[str], table: CsvTable, where: str) -> list[tuple[str, str]]:
    """Unknown, repeated and missing columns of a header row."""
    columns = table.columns
    near = [n for n in header if len(n) <= 40 and difflib.get_close_matches(n, columns, n=1)]
    if not set(header) & set(columns) and not near:
        # Not such an export at all: say so without quoting the file (it may be anything readable).
        return [(f"{where} line 1", f"not a header of {table.kind} columns ({', '.join(columns)})")]
    problems: list[tuple[str, str]] = []
    for name in header:
        if name not in columns:
            hint = difflib.get_close_matches(name, columns, n=1)
            problems.append(
                (
                    f"{where} line 1, column {name!r}",
                    "unknown column"
                    + (f" (did you mean {hint[0]!r}?)" if hint else f"; allowed: {', '.join(columns)}"),
                )
            )
    for name in dict.fromkeys(n for n in header if header.count(n) > 1):
        problems.append((f"{where} line 1, column {name!r}", "appears more than once"))
    for name in table.required:
        if name not in header:
            problems.append((f"{where} line 1", f"missing the required column {name!r}"))
    if table.one_of and not set(table.one_of) & set(header):
        problems.append((f"{where} line 1", f"needs a column {' or '.join(repr(n) for n in table.one_of)}"))
    return problems


def _pipeline_row(cells: dict[str, str], personas: list[str] | None) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """One CSV row as OpenDeal fields, and ``(column, message)`` for each bad cell."""
    row: dict[str, Any] = {}
    bad: list[tuple[str, str]] = []
    for column, text in cells.items():
        if text == "":
            if column == "age_days":
                bad.append((column, "required, but empty"))
            continue
        if column in ("id", "owner", "persona"):
            row[column] = text
            continue
        try:
            value = float(text)
        except ValueError:
            bad.append((column, f"expected a number, got {text!r}"))
            continue
        if not math.isfinite(value):
            bad.append((column, f"must be a finite number, got {text!r}"))
        elif column == "fit" and not 0 <= value <= 1:
            bad.append((column, f"must be between 0 and 1, got {text}"))
        elif value < 0:
            bad.append((column, f"must be >= 0, got {text}"))
        else:
            row[column] = value
    persona = row.get("persona", "buyer")
    if personas is not None and persona not in personas:
        hint = difflib.get_close_matches(persona, personas, n=1)
        default = "" if "persona" in row else " (the default when the column is empty or missing)"
        bad.append(
            (
                "persona",
                f"unknown persona {persona!r}{default}"
                + (f" (did you mean {hint[0]!r}?)" if hint else f"; defined: {', '.join(personas)}"),
            )
        )
    return row, bad


# ---------------------------------------------------------------------------
# The installed base's CSV file (subscription.installed_base.file)

MAX_CUSTOMERS_BYTES = 200 * MB
CUSTOMERS_TABLE = CsvTable(
    "subscription.installed_base.file",
    "installed-base",
    CUSTOMER_COLUMNS,
    ("arr",),
    ("renewal_date", "start_date"),
    MAX_CUSTOMERS_BYTES,
)


def read_customers_csv(
    path: str | Path, start_date: dt.date | None = None, segments: list[str] | None = None
) -> list[dict[str, Any]]:
    """The customers of an installed-base CSV file, as :class:`Customer` fields (empty cells left out).

    Parameters
    ----------
    path
        A UTF-8 CSV file with a header row; columns in :data:`CUSTOMER_COLUMNS`, ``arr`` and
        ``renewal_date`` or ``start_date`` required (dates ``YYYY-MM-DD``).
    start_date
        The scenario's start date: a ``renewal_date`` must not be before it, a ``start_date``
        not after it.
    segments
        The scenario's segment names; if given (a segmented scenario), ``segment`` must be one.

    Raises
    ------
    ScenarioError
        Naming the file, line and column of every bad cell (first 20).
    """
    rows, problems = parse_table_csv(
        Path(path), CUSTOMERS_TABLE, lambda cells: customer_row(cells, start_date, segments)
    )
    if problems:
        raise ScenarioError(problems, str(path))
    return rows


def _read_customers_file(raw: Any, base_dir: Path) -> tuple[Any, list[tuple[str, str]]]:
    """``raw`` with ``subscription.installed_base.file`` replaced by the rows read from it, and the problems."""
    subscription = raw.get("subscription") if isinstance(raw, dict) else None
    if not isinstance(subscription, dict):
        return raw, []
    base = subscription.get("installed_base")
    if not isinstance(base, dict) or not isinstance(base.get("file"), str) or base.get("customers"):
        return raw, []  # nothing to read, or a mistake the model reports
    path = Path(base["file"])
    if not path.is_absolute():
        path = base_dir / path
    start, segments = _as_date(raw.get("start_date")), _segment_names(raw)
    rows, problems = parse_table_csv(path, CUSTOMERS_TABLE, lambda cells: customer_row(cells, start, segments))
    resolved = {key: value for key, value in base.items() if key != "file"}
    resolved["customers"] = rows
    return {**raw, "subscription": {**subscription, "installed_base": resolved}}, problems


def _segment_names(raw: dict[str, Any]) -> list[str] | None:
    """The scenario's segment names, or None when it has no segments."""
    segments = raw.get("segments")
    return list(segments) if isinstance(segments, dict) and segments else None


def customer_row(
    cells: dict[str, str], start_date: dt.date | None, segments: list[str] | None
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """One installed-base CSV row as Customer fields, and ``(column, message)`` for each bad cell."""
    row: dict[str, Any] = {}
    bad: list[tuple[str, str]] = []
    for column, text in cells.items():
        if text == "":
            if column == "arr":
                bad.append((column, "required, but empty"))
            continue
        if column in ("id", "segment"):
            row[column] = text
        elif column in ("renewal_date", "start_date"):
            try:
                row[column] = dt.date.fromisoformat(text)
            except ValueError:
                bad.append((column, f"expected a date YYYY-MM-DD, got {text!r}"))
        elif column == "renewals":
            if not text.isdigit():
                bad.append((column, f"expected a whole number >= 0, got {text!r}"))
            else:
                row[column] = int(text)
        else:
            try:
                value = float(text)
            except ValueError:
                bad.append((column, f"expected a number, got {text!r}"))
                continue
            if not math.isfinite(value) or value < 0:
                bad.append((column, f"must be a finite number >= 0, got {text!r}"))
            else:
                row[column] = value
    if not bad:
        bad += customer_problems(row, start_date, segments)
    return row, bad


def customer_problems(
    customer: dict[str, Any], start_date: dt.date | None, segments: list[str] | None
) -> list[tuple[str, str]]:
    """What is wrong with one customer of the installed base as ``(key, message)``: its dates against
    the scenario's ``start_date``, a missing date, an unknown segment."""
    problems: list[tuple[str, str]] = []
    renewal, started = _as_date(customer.get("renewal_date")), _as_date(customer.get("start_date"))
    if customer.get("renewal_date") is None and customer.get("start_date") is None:
        problems.append(("renewal_date", "give renewal_date or start_date (or both)"))
    if start_date is not None and renewal is not None and renewal < start_date:
        problems.append(("renewal_date", f"{renewal} is before start_date {start_date}: a renewal already past"))
    if start_date is not None and started is not None and started > start_date:
        problems.append(("start_date", f"{started} is after start_date {start_date}: not a customer on day 0"))
    if renewal is not None and started is not None and renewal <= started:
        problems.append(("renewal_date", f"{renewal} is not after the customer's start_date {started}"))
    if segments is not None:
        segment = customer.get("segment")
        if segment is None:
            problems.append(("segment", f"required: the scenario has segments ({', '.join(segments)})"))
        elif segment not in segments:
            hint = difflib.get_close_matches(str(segment), segments, n=1)
            problems.append(
                (
                    "segment",
                    f"unknown segment {segment!r}"
                    + (f" (did you mean {hint[0]!r}?)" if hint else f"; defined: {', '.join(segments)}"),
                )
            )
    return problems


def _installed_base_problems(raw: dict[str, Any]) -> list[tuple[str, str]]:
    """The inline customers of ``subscription.installed_base`` checked as the CSV rows are."""
    subscription = raw.get("subscription")
    base = subscription.get("installed_base") if isinstance(subscription, dict) else None
    customers = base.get("customers") if isinstance(base, dict) else None
    if not isinstance(customers, list):
        return []
    start, segments = _as_date(raw.get("start_date")), _segment_names(raw)
    path = "subscription.installed_base.customers"
    problems: list[tuple[str, str]] = []
    for i, customer in enumerate(customers):
        if isinstance(customer, dict):
            problems += [
                (f"{path}.{i}.{key}", message)
                for key, message in customer_problems(customer, start, segments)
                if key != "renewal_date" or "give renewal_date" not in message  # the model says so already
            ]
    return problems


def _dedupe(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(items))


_DIST_EXAMPLE = '{dist = "lognormal", mean = 20, sd = 8}'


def _describe_all(exc: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    """Every problem of a validation error, with its dotted path (after ``prefix``).

    A validator that found problems below its table (:class:`FieldProblems`) has each
    reported at its own path, and a segment's view (a scenario of its own) at the path of
    the segment.
    """
    out: list[tuple[str, str]] = []
    for err in exc.errors():
        found = err.get("ctx", {}).get("error") if err["type"] == "value_error" else None
        if isinstance(found, FieldProblems):
            where = _walk(tuple(err["loc"]))[0]
            at = ".".join(p for p in (prefix, where) if p)
            out += [(".".join(p for p in (at, path) if p), message) for path, message in found.problems]
            for path, nested in found.nested:
                out += _describe_all(nested, ".".join(p for p in (at, path) if p))
            continue
        path, message = _describe(err)
        out.append((".".join(p for p in (prefix, path) if p), message))
    return out


def _segment_reference_problems(scenario: Scenario, own: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The cross-references of each segment's view (its personas, hire dates), at the segment's path;
    those the top level has already are left out."""
    problems = []
    for name in scenario.segment_names:
        for path, message in _reference_problems(scenario.segment_data(name)):
            if (path, message) not in own:
                problems.append((f"segments.{name}.{path}", message))
    return problems


def _describe(err: Any) -> tuple[str, str]:
    loc = tuple(err["loc"])
    kind, ctx, value = err["type"], err.get("ctx", {}), err.get("input")
    path, node = _walk(loc)
    if kind == "extra_forbidden":
        allowed = _field_names(_walk(loc[:-1])[1])
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        message = f"unknown key '{loc[-1]}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
        if allowed and not hint:
            message += f"; allowed: {', '.join(sorted(allowed))}"
        return path, message
    if kind == "missing":
        return path, "required, but missing"
    bounds = {
        "less_than_equal": ("<=", "le"),
        "less_than": ("<", "lt"),
        "greater_than_equal": (">=", "ge"),
        "greater_than": (">", "gt"),
    }
    if kind in bounds:
        op, key = bounds[kind]
        bound = ctx[key]
        return path, f"must be {op} {bound:g}, got {value!r}" if isinstance(bound, int | float) else err["msg"]
    if kind == "finite_number":
        return path, f"must be a finite number, got {value!r}"
    if kind == "union_tag_invalid":
        return path, f"unknown dist {ctx.get('tag')!r}; choose one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        return path, f"a distribution needs a 'dist' key, e.g. {_DIST_EXAMPLE}"
    if _is_dist_union(node) and kind in ("model_attributes_type", "model_type", "dict_type"):
        return path, f"expected a number or a distribution table such as {_DIST_EXAMPLE}, got {value!r}"
    if kind == "value_error":
        return path, str(ctx.get("error", err["msg"]))
    if kind == "int_from_float":
        return path, f"must be a whole number, got {value!r}"
    if kind in ("too_short", "too_long") and "actual_length" in ctx:
        side, limit = ("least", ctx["min_length"]) if kind == "too_short" else ("most", ctx["max_length"])
        return path, f"needs at {side} {limit} item{'s' if limit != 1 else ''}, got {ctx['actual_length']}"
    message = err["msg"][0].lower() + err["msg"][1:]
    if isinstance(value, dict) or "got" in message.split():
        return path, message
    return path, f"{message}, got {value!r}"


def _walk(loc: tuple[Any, ...]) -> tuple[str, Any]:
    """Follow a pydantic error location through the Scenario model.

    Returns the dotted path a user wrote (without the internal tag pydantic adds
    for the chosen distribution family, so ``sales.cycle_days.sd`` rather than
    ``sales.cycle_days.lognormal.sd``) and the annotation found there (``None``
    once the location leaves the model).
    """
    node: Any = Scenario
    shown: list[str] = []
    for part in loc:
        node = _unwrap(node)
        if node is None:
            shown.append(str(part))
        elif isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(str(part)) or next(
                (f for f in node.model_fields.values() if f.alias == part), None
            )
            node = field.annotation if field is not None else None
            shown.append(str(part))
        elif typing.get_origin(node) is dict:
            node = typing.get_args(node)[1]
            shown.append(str(part))
        elif typing.get_origin(node) is list:
            node = typing.get_args(node)[0]
            shown.append(str(part))
        elif part in RATE_TAGS and len(_union_members(node)) == 2:
            node = _union_members(node)[RATE_TAGS.index(part)]  # the tag of an uncertain rate
        elif _is_dist_union(node):
            members = {m.model_fields["dist"].default: m for m in _union_members(node)}
            node = members.get(part)
            if node is None:
                shown.append(str(part))
            # else: the family tag pydantic inserts; the user never wrote it
        else:
            node = None
            shown.append(str(part))
    return ".".join(shown), _unwrap(node)


def _field_names(node: Any) -> list[str]:
    """Keys a table at this place may hold (for "did you mean" hints)."""
    if isinstance(node, type) and issubclass(node, BaseModel):
        return [f.alias or name for name, f in node.model_fields.items()]
    return []


def _is_dist_union(node: Any) -> bool:
    members = _union_members(node)
    return bool(members) and all(
        isinstance(m, type) and issubclass(m, BaseModel) and "dist" in m.model_fields for m in members
    )


def _unwrap(node: Any) -> Any:
    while typing.get_origin(node) is Annotated:
        node = typing.get_args(node)[0]
    members = [m for m in _union_members(node) if m is not type(None)]
    if len(members) == 1:
        return _unwrap(members[0])
    return node


def _union_members(node: Any) -> tuple[Any, ...]:
    if typing.get_origin(node) in (typing.Union, types.UnionType):
        return tuple(_unwrap(m) if m is not type(None) else m for m in typing.get_args(node))
    return ()


def _as_date(value: Any) -> dt.date | None:
    """A TOML date, datetime or ISO string as a date; None if it is none of these."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _reference_problems(raw: Any) -> list[tuple[str, str]]:
    """Cross-references pydantic cannot check field by field: undefined personas, dates."""
    if not isinstance(raw, dict):
        return [("", "a scenario must be a table of keys")]
    problems: list[tuple[str, str]] = []
    personas = raw.get("personas")
    names = list(personas) if isinstance(personas, dict) else []

    def check(path: str, name: Any) -> None:
        if names and name not in names:
            hint = difflib.get_close_matches(str(name), names, n=1)
            problems.append(
                (
                    path,
                    f"unknown persona {name!r}"
                    + (f" (did you mean {hint[0]!r}?)" if hint else f"; defined: {', '.join(names)}"),
                )
            )

    sources = raw.get("sources")
    if isinstance(sources, dict):
        if not sources:
            problems.append(("sources", "define at least one source"))
        for sname, source in sources.items():
            mix = source.get("persona_mix") if isinstance(source, dict) else None
            if isinstance(mix, dict):
                for pname in mix:
                    check(f"sources.{sname}.persona_mix.{pname}", pname)
    sales = raw.get("sales")
    if isinstance(sales, dict) and isinstance(sales.get("deal_size_by_persona"), dict):
        for pname in sales["deal_size_by_persona"]:
            check(f"sales.deal_size_by_persona.{pname}", pname)
    prospecting = raw.get("prospecting")
    if isinstance(prospecting, dict) and "persona" in prospecting:
        check("prospecting.persona", prospecting["persona"])
    elif names and isinstance(prospecting, dict) and prospecting.get("opportunities_per_ae_per_month"):
        check("prospecting.persona", "buyer")
    pipeline = raw.get("initial_pipeline")
    if isinstance(pipeline, dict):
        deals = pipeline.get("opportunities")
        if isinstance(deals, list):
            for i, deal in enumerate(deals):
                if isinstance(deal, dict):
                    check(f"initial_pipeline.opportunities.{i}.persona", deal.get("persona", "buyer"))
        ae_count = (
            sales.get("ae", {}).get("count") if isinstance(sales, dict) and isinstance(sales.get("ae"), dict) else None
        )
        if deals and ae_count == 0:
            problems.append(
                ("sales.ae.count", "the open deals of initial_pipeline need AEs on day 0 to hold them; got 0")
            )
        if isinstance(sources, dict) and PIPELINE_SOURCE in sources:
            problems.append(
                (
                    f"sources.{PIPELINE_SOURCE}",
                    f"the name {PIPELINE_SOURCE!r} is kept for the deals of initial_pipeline",
                )
            )
    if isinstance(personas, dict) and not personas:
        problems.append(("personas", "define at least one persona"))
    return problems + _hire_date_problems(raw) + _installed_base_problems(raw)


def _hire_date_problems(raw: dict[str, Any]) -> list[tuple[str, str]]:
    """Hires of either team dated before ``start_date``."""
    problems: list[tuple[str, str]] = []
    sales = raw.get("sales")
    start = _as_date(raw.get("start_date"))
    handoff = raw.get("handoff")
    teams = {
        "sales.ae": sales.get("ae") if isinstance(sales, dict) else None,
        "handoff.sdr": handoff.get("sdr") if isinstance(handoff, dict) else None,
    }
    for path, team in teams.items():
        hires = team.get("hires") if isinstance(team, dict) else None
        if start is not None and isinstance(hires, list):
            for i, hire in enumerate(hires):
                when = _as_date(hire.get("date")) if isinstance(hire, dict) else None
                if when is not None and when < start:
                    problems.append((f"{path}.hires.{i}.date", f"{when} is before start_date {start}"))
    return problems
