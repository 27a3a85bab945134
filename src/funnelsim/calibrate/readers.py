"""Reading CRM exports: dialects, column mapping, dates, amounts and messy rows.

A CRM export is a CSV file whose columns a CRM named (``CreatedDate`` in Salesforce,
``createdate`` in HubSpot, whatever a spreadsheet says elsewhere). Reading one is three
steps, kept apart so each can be tested alone:

1. **Columns** -- the header is matched against the known dialects (Salesforce, HubSpot,
   generic) to find which column holds each *field* (``id``, ``created``, ``closed``,
   ``stage``, ``amount``, ...); ``--map "Column Name=field"`` adds to or overrides that.
2. **Values** -- dates are parsed per column after detecting the column's convention
   (ISO ``2027-03-01``, US ``03/01/2027``, European ``01/03/2027`` or ``01.03.2027``,
   optionally with a time). A column whose every day and month are <= 12 cannot tell US
   from European: it is refused unless ``dayfirst`` or an explicit ``date_format`` says,
   or another date column of the same file settles it. Amounts lose currency symbols and
   thousands separators (``$1,234.50``, ``1.234,50 €``); an empty amount is missing.
3. **Rows** -- each row is checked (missing id or created date, unparseable values, close
   before create, negative amount, duplicate id, won/lost without a close date, ...). A
   row with a problem is *rejected*: it is counted under its reason with its line number
   and column, never silently dropped; ``strict=True`` turns the first one into an error.

Line numbers are those of the file (the header is line 1), as a spreadsheet shows them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "DIALECTS",
    "OUTCOMES",
    "CalibrationError",
    "Issue",
    "Table",
    "parse_amounts",
    "parse_dates",
    "parse_mapping",
    "read_history",
    "read_leads",
    "read_opportunities",
]

Dialect = Literal["salesforce", "hubspot", "generic"]
DIALECTS: tuple[str, ...] = ("salesforce", "hubspot", "generic")
OUTCOMES = ("won", "lost", "open")


class CalibrationError(ValueError):
    """CRM input that cannot be used: a missing file or column, an ambiguous date, a strict-mode row."""


# --- columns -----------------------------------------------------------------------------

# Field -> header names each dialect uses (matched case-insensitively, spaces and
# underscores ignored). The first dialect whose *signature* columns are all present wins.
OPPORTUNITY_FIELDS = ("id", "created", "closed", "stage", "won", "is_closed", "amount", "owner", "source", "segment")
OPPORTUNITY_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "salesforce": {
        "id": ("Id", "OpportunityId"),
        "created": ("CreatedDate",),
        "closed": ("CloseDate",),
        "stage": ("StageName",),
        "won": ("IsWon",),
        "is_closed": ("IsClosed",),
        "amount": ("Amount",),
        "owner": ("OwnerId", "Owner.Name"),
        "source": ("LeadSource",),
        "segment": ("Type", "Product__c", "Segment__c"),
    },
    "hubspot": {
        "id": ("hs_object_id", "Deal ID", "Record ID"),
        "created": ("createdate", "Create Date"),
        "closed": ("closedate", "Close Date"),
        "stage": ("dealstage", "Deal Stage"),
        "won": ("hs_is_closed_won", "Is Closed Won"),
        "is_closed": ("hs_is_closed", "Is Deal Closed?"),
        "amount": ("amount", "Amount"),
        "owner": ("hubspot_owner_id", "Deal owner"),
        "source": ("hs_analytics_source", "Original Source Type"),
        "segment": ("dealtype", "Deal Type", "pipeline"),
    },
    "generic": {
        "id": ("id",),
        "created": ("created",),
        "closed": ("closed",),
        "stage": ("status", "stage"),
        "won": ("won",),
        "amount": ("amount",),
        "owner": ("owner",),
        "source": ("source",),
        "segment": ("segment", "product"),
    },
}
SIGNATURE = {"salesforce": ("StageName", "CreatedDate"), "hubspot": ("dealstage", "createdate"), "generic": ()}

LEAD_FIELDS = ("id", "created", "mql", "sql", "opportunity", "converted", "source")
LEAD_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "salesforce": {
        "id": ("Id",),
        "created": ("CreatedDate",),
        "mql": ("MQL_Date__c",),
        "sql": ("SQL_Date__c",),
        "opportunity": ("ConvertedDate",),
        "converted": ("IsConverted",),
        "source": ("LeadSource",),
    },
    "hubspot": {
        "id": ("hs_object_id", "Record ID", "Contact ID"),
        "created": ("createdate", "Create Date"),
        "mql": ("hs_lifecyclestage_marketingqualifiedlead_date",),
        "sql": ("hs_lifecyclestage_salesqualifiedlead_date",),
        "opportunity": ("hs_lifecyclestage_opportunity_date",),
        "source": ("hs_analytics_source", "Original Source"),
    },
    "generic": {
        "id": ("id",),
        "created": ("created",),
        "mql": ("mql",),
        "sql": ("sql",),
        "opportunity": ("opportunity",),
        "converted": ("converted",),
        "source": ("source",),
    },
}
LEAD_SIGNATURE = {"salesforce": ("CreatedDate",), "hubspot": ("createdate",), "generic": ()}

HISTORY_FIELDS = ("id", "date", "stage")
HISTORY_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "salesforce": {"id": ("OpportunityId",), "date": ("CreatedDate",), "stage": ("StageName",)},
    "hubspot": {"id": ("hs_object_id", "Deal ID"), "date": ("timestamp", "Date entered"), "stage": ("dealstage",)},
    "generic": {"id": ("id",), "date": ("date",), "stage": ("stage",)},
}
HISTORY_SIGNATURE = {"salesforce": ("OpportunityId", "StageName"), "hubspot": ("dealstage",), "generic": ()}

# Stage labels -> outcome; anything else is an open stage. Keys are normalised (see _norm).
DEFAULT_STAGES = {"closedwon": "won", "won": "won", "closedlost": "lost", "lost": "lost"}
TRUE = {"true", "1", "yes", "y", "t"}
FALSE = {"false", "0", "no", "n", "f", ""}


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


def parse_mapping(items: Iterable[str], fields: Iterable[str] = ()) -> tuple[dict[str, str], dict[str, str]]:
    """Split ``--map`` items into column renames and stage-label outcomes.

    ``"Deal Owner=owner"`` maps a column to a field; ``"Verbal Yes=won"`` maps a stage
    label to an outcome (``won``, ``lost`` or ``open``): the right-hand side says which.

    Returns
    -------
    (columns, stages)
        ``{column header: field}`` and ``{normalised stage label: outcome}``.
    """
    known = set(fields) | set(OPPORTUNITY_FIELDS) | set(LEAD_FIELDS) | set(HISTORY_FIELDS)
    columns: dict[str, str] = {}
    stages: dict[str, str] = {}
    for item in items:
        left, sep, right = item.rpartition("=")
        left, right = left.strip(), right.strip().lower()
        if not sep or not left or not right:
            raise CalibrationError(f"--map: expected COLUMN=FIELD or STAGE=won|lost|open, got {item!r}")
        if right in OUTCOMES:
            stages[_norm(left)] = right
        elif right in known:
            columns[left] = right
        else:
            raise CalibrationError(
                f"--map {item!r}: {right!r} is neither a field ({', '.join(sorted(known))}) "
                f"nor an outcome ({', '.join(OUTCOMES)})"
            )
    return columns, stages


def _match_columns(
    header: list[str],
    known: dict[str, dict[str, tuple[str, ...]]],
    signature: dict[str, tuple[str, ...]],
    fmt: str | None,
    mapping: Mapping[str, str],
    what: str,
) -> tuple[str, dict[str, str], str]:
    """Choose the dialect and the column of each field; returns (dialect, {field: column}, how)."""
    by_norm = {_norm(h): h for h in header}
    if fmt is not None:
        if fmt not in DIALECTS:
            raise CalibrationError(f"--format must be one of {', '.join(DIALECTS)}, got {fmt!r}")
        dialect, how = fmt, "given by --format"
    else:
        found = [d for d in DIALECTS if signature[d] and all(_norm(c) in by_norm for c in signature[d])]
        if found:
            dialect = found[0]
            how = f"detected from the columns {', '.join(signature[dialect])}"
        else:
            dialect, how = "generic", "detected: no Salesforce or HubSpot signature columns"
    columns: dict[str, str] = {}
    for name, candidates in known[dialect].items():
        for candidate in candidates:
            if _norm(candidate) in by_norm:
                columns[name] = by_norm[_norm(candidate)]
                break
    for column, name in mapping.items():
        if column not in header:
            hit = by_norm.get(_norm(column))
            if hit is None:
                continue  # --map items may name columns of another of the files
            column = hit
        columns[name] = column
    return dialect, columns, how


# --- file reading --------------------------------------------------------------------------


def _read_rows(path: Path, what: str) -> tuple[list[str], pd.DataFrame]:
    """All cells as text, plus each row's line number in the file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CalibrationError(f"{what}: file not found: {path}") from None
    except UnicodeDecodeError:
        try:
            text = path.read_text(encoding="cp1252")  # Excel's default on Windows
        except UnicodeDecodeError as exc:  # pragma: no cover - cp1252 decodes nearly anything
            raise CalibrationError(f"{what}: {path}: not UTF-8 or Windows-1252 text: {exc}") from None
    except OSError as exc:
        raise CalibrationError(f"{what}: cannot read {path}: {exc.strerror}") from None
    first = text.split("\n", 1)[0]
    # European spreadsheets write ';' between fields, because ',' is their decimal mark.
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise CalibrationError(f"{what}: {path} is empty (no header row)") from None
    rows: list[list[str]] = []
    lines: list[int] = []
    start = 2
    for row in reader:
        if any(cell.strip() for cell in row):
            rows.append([cell.strip() for cell in row] + [""] * (len(header) - len(row)))
            lines.append(start)
        start = reader.line_num + 1
    frame = pd.DataFrame([r[: len(header)] for r in rows], columns=header, dtype=object)
    if not rows:
        frame = pd.DataFrame({h: pd.Series([], dtype=object) for h in header})
    frame.index = pd.Index(lines, name="line")
    return header, frame


# --- dates -------------------------------------------------------------------------------

_DATE = re.compile(
    r"^(?P<a>\d{1,4})(?P<sep>[-/.])(?P<b>\d{1,2})(?P=sep)(?P<c>\d{2,4})"
    r"(?:[T ](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.\d+)?)?\s*(?P<ampm>[AaPp][Mm])?)?"
    r"\s*(?:Z|[+-]\d{2}:?\d{2}|UTC)?$"
)
DATE_FORMATS = {"iso": "YYYY-MM-DD", "us": "MM/DD/YYYY", "european": "DD/MM/YYYY", "european-dot": "DD.MM.YYYY"}


@dataclass
class DateColumn:
    """Parsed dates of one column: the values (NaT where unparseable), and the convention used."""

    values: pd.Series
    convention: str
    bad: pd.Series  # True where a non-empty cell could not be parsed


def _convention(parts: pd.DataFrame, dayfirst: bool | None) -> str | None:
    """'iso', 'us', 'european', 'european-dot', or None when US and European cannot be told apart."""
    ok = parts.dropna(subset=["a"])
    if ok.empty:
        return "iso"
    if (ok["a"].str.len() == 4).all():
        return "iso"
    if (ok["sep"] == ".").all():
        return "european-dot"
    a = ok["a"].astype(int)
    b = ok["b"].astype(int)
    if dayfirst is not None:
        return "european" if dayfirst else "us"
    if (a > 12).any() and (b > 12).any():
        return "mixed"
    if (a > 12).any():
        return "european"
    if (b > 12).any():
        return "us"
    return None


def parse_dates(raw: pd.Series, dayfirst: bool | None = None, date_format: str | None = None) -> DateColumn:
    """Parse one column of date (and time) text; see the module docstring for the rules.

    Times are kept (as fractions of a day); a time-zone suffix is ignored (CRM exports
    use one zone throughout). ``date_format`` is a ``strptime`` format used as given.
    Returns ``convention=None`` when the column is ambiguous (every day and month <= 12).
    """
    text = raw.fillna("").astype(str).str.strip()
    empty = text == ""
    if date_format is not None:
        values = pd.to_datetime(text.where(~empty), format=date_format, errors="coerce")
        return DateColumn(values, f"--date-format {date_format}", values.isna() & ~empty)
    parts = text.str.extract(_DATE)
    unmatched = parts["a"].isna() & ~empty
    convention = _convention(parts[~unmatched & ~empty], dayfirst)
    if convention is None or convention == "mixed":
        return DateColumn(pd.Series(pd.NaT, index=raw.index), convention or "ambiguous", ~empty)
    a, b, c = (pd.to_numeric(parts[k], errors="coerce") for k in ("a", "b", "c"))
    if convention == "iso":
        year, month, day = a, b, c
    elif convention == "us":
        year, month, day = c, a, b
    else:
        year, month, day = c, b, a
    year = year.where(year >= 100, year + 2000)  # two-digit years: 27 -> 2027
    dates = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": day}).where(~unmatched), errors="coerce")
    hours = pd.to_numeric(parts["H"], errors="coerce").fillna(0)
    pm = parts["ampm"].fillna("").str.lower()
    hours = hours.where(~((pm == "pm") & (hours < 12)), hours + 12).where(~((pm == "am") & (hours == 12)), 0)
    minutes = pd.to_numeric(parts["M"], errors="coerce").fillna(0)
    seconds = pd.to_numeric(parts["S"], errors="coerce").fillna(0)
    bad_time = (hours > 23) | (minutes > 59) | (seconds > 59)
    values = dates + pd.to_timedelta(hours * 3600 + minutes * 60 + seconds, unit="s")
    values = values.where(~bad_time)
    return DateColumn(values, convention, values.isna() & ~empty)


# --- amounts -----------------------------------------------------------------------------

_CURRENCY = re.compile(r"[$€£¥₹]|\b(?:USD|EUR|GBP|CHF|JPY|CAD|AUD|INR)\b|\s|'|\u00a0|\u202f", re.IGNORECASE)


def parse_amounts(raw: pd.Series) -> tuple[pd.Series, pd.Series, str]:
    """Amount text -> floats: currency symbols and codes dropped, thousands separators resolved.

    The decimal mark is decided per column: ``,`` when some value shows it as one
    (``1.234,50``, or a comma followed by other than three digits, ``12,5``), else ``.``.
    Parentheses mean a negative number (accounting style). Empty means missing.

    Returns
    -------
    (values, bad, decimal_mark)
        ``bad`` is True where a non-empty cell is not a number.
    """
    text = raw.fillna("").astype(str).str.replace(_CURRENCY, "", regex=True)
    empty = text == ""
    negative = text.str.startswith("(") & text.str.endswith(")")
    text = text.str.strip("()")
    comma_decimal = text.str.contains(r"\.\d{3},\d*$") | text.str.contains(r"^-?\d+,(?:\d{1,2}|\d{4,})$")
    dot_decimal = text.str.contains(r",\d{3}\.\d*$") | text.str.contains(r"^-?\d+\.(?:\d{1,2}|\d{4,})$")
    mark = "," if comma_decimal.any() and not dot_decimal.any() else "."
    if mark == ",":
        text = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    else:
        text = text.str.replace(",", "", regex=False)
    values = pd.to_numeric(text.where(~empty), errors="coerce")
    values = values.where(~negative, -values)
    return values.astype(float), values.isna() & ~empty, mark


def _flags(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    text = raw.fillna("").astype(str).str.strip().str.lower()
    value = text.isin(TRUE)
    bad = ~(value | text.isin(FALSE))
    return value, bad


# --- messy rows --------------------------------------------------------------------------

REASONS = {
    "missing_id": "missing id",
    "duplicate_id": "duplicate id (the first row with this id is kept)",
    "missing_created": "missing created date",
    "bad_created": "unparseable created date",
    "bad_closed": "unparseable close date",
    "bad_date": "unparseable date",
    "close_before_create": "close date before created date",
    "closed_without_date": "won/lost without a close date",
    "bad_amount": "unparseable amount",
    "negative_amount": "negative amount",
    "bad_flag": "not a true/false value",
    "stage_before_create": "stage date before created date",
    "created_after_as_of": "created after --as-of",
}


@dataclass(frozen=True)
class Issue:
    """One rejected row: file, line, reason key, column and the offending text."""

    file: str
    line: int
    reason: str
    column: str
    value: str

    @property
    def message(self) -> str:
        return f"{self.file}, line {self.line}, column {self.column!r}: {REASONS[self.reason]} ({self.value!r})"


@dataclass
class Table:
    """A cleaned export: one row per kept record (index: line number) and what was learned reading it."""

    path: Path
    dialect: str
    dialect_how: str
    columns: dict[str, str]
    rows: pd.DataFrame
    rows_read: int
    issues: list[Issue] = field(default_factory=list)
    date_conventions: dict[str, str] = field(default_factory=dict)
    decimal_mark: str = "."

    @property
    def rejected(self) -> pd.Series:
        """Rejected rows per reason."""
        return pd.Series([i.reason for i in self.issues], dtype=object).value_counts()


class _Checker:
    """Collects issues; a row keeps only its first problem, so each rejected row counts once."""

    def __init__(self, path: Path, strict: bool) -> None:
        self.path = path
        self.strict = strict
        self.issues: dict[int, Issue] = {}

    def flag(self, mask: pd.Series, reason: str, column: str, raw: pd.Series) -> None:
        for line in mask[mask].index:
            if line in self.issues:
                continue
            self.issues[int(line)] = Issue(self.path.name, int(line), reason, column, str(raw.get(line, "")))

    def sorted(self) -> list[Issue]:
        """The issues in file order; with ``strict``, the first one as an error."""
        issues = sorted(self.issues.values(), key=lambda i: i.line)
        if self.strict and issues:
            raise CalibrationError(f"--strict: {issues[0].message}")
        return issues

    @property
    def bad(self) -> set[int]:
        return set(self.issues)


def _require(columns: dict[str, str], needed: Iterable[str], path: Path, header: list[str], what: str) -> None:
    missing = [name for name in needed if name not in columns]
    if missing:
        raise CalibrationError(
            f"{what} {path}: no column for {', '.join(missing)}; columns are {', '.join(header)}. "
            f"Name them with --map 'COLUMN={missing[0]}'"
        )


def _dates(
    frame: pd.DataFrame,
    columns: dict[str, str],
    names: Iterable[str],
    dayfirst: bool | None,
    date_format: str | None,
    path: Path,
) -> tuple[dict[str, DateColumn], dict[str, str]]:
    """Parse every date field; an ambiguous column follows the file's other date columns if they agree."""
    parsed = {n: parse_dates(frame[columns[n]], dayfirst, date_format) for n in names if n in columns}
    settled = {p.convention for p in parsed.values() if p.convention in ("us", "european")}
    for name, col in parsed.items():
        if col.convention == "mixed":
            raise CalibrationError(
                f"{path}: column {columns[name]!r} mixes US (MM/DD) and European (DD/MM) dates; "
                "fix the file or give --date-format"
            )
        if col.convention == "ambiguous":
            if len(settled) == 1:
                parsed[name] = parse_dates(frame[columns[name]], next(iter(settled)) == "european")
                parsed[name].convention += " (from the file's other date columns)"
            else:
                raise CalibrationError(
                    f"{path}: column {columns[name]!r} has dates such as "
                    f"{frame[columns[name]].loc[frame[columns[name]] != ''].iloc[0]!r} where every day and month "
                    "is <= 12, so MM/DD and DD/MM cannot be told apart; pass --dayfirst (DD/MM) or "
                    "--no-dayfirst (MM/DD), or --date-format"
                )
    conventions = {columns[n]: DATE_FORMATS.get(c.convention, c.convention) for n, c in parsed.items()}
    return parsed, conventions


def read_opportunities(
    path: str | Path,
    fmt: str | None = None,
    mapping: Mapping[str, str] | None = None,
    stages: Mapping[str, str] | None = None,
    dayfirst: bool | None = None,
    date_format: str | None = None,
    strict: bool = False,
) -> Table:
    """Read an opportunities (deals) export.

    Returns a :class:`Table` whose ``rows`` have columns ``id, created, closed (NaT while
    open), outcome (won|lost|open), amount (NaN if missing), owner, source, segment``.
    The outcome comes from the won/closed flags when present (``IsWon``/``IsClosed``,
    ``hs_is_closed_won``/``hs_is_closed``), else from the stage label. The close date of
    an *open* deal is ignored (Salesforce fills it with the expected close date).
    """
    path = Path(path)
    header, frame = _read_rows(path, "--opportunities")
    col_map, stage_map = dict(mapping or {}), {**DEFAULT_STAGES, **dict(stages or {})}
    dialect, columns, how = _match_columns(header, OPPORTUNITY_COLUMNS, SIGNATURE, fmt, col_map, "opportunities")
    _require(columns, ("id", "created"), path, header, "--opportunities")
    if "stage" not in columns and "won" not in columns:
        raise CalibrationError(
            f"--opportunities {path}: no stage/status or won-flag column; columns are {', '.join(header)}. "
            "Name one with --map 'COLUMN=stage' or --map 'COLUMN=won'"
        )
    check = _Checker(path, strict)
    raw = {name: frame[col] for name, col in columns.items()}
    ids = raw["id"]
    check.flag(ids == "", "missing_id", columns["id"], ids)
    check.flag(raw["created"] == "", "missing_created", columns["created"], raw["created"])
    dates, conventions = _dates(frame, columns, ("created", "closed"), dayfirst, date_format, path)
    check.flag(dates["created"].bad, "bad_created", columns["created"], raw["created"])

    # Outcome: flags first (they are what the CRM reports), then the stage label.
    outcome = pd.Series("open", index=frame.index, dtype=object)
    if "stage" in columns:
        outcome = raw["stage"].map(lambda s: stage_map.get(_norm(s), "open"))
    if "won" in columns:
        won, bad_won = _flags(raw["won"])
        check.flag(bad_won, "bad_flag", columns["won"], raw["won"])
        if "is_closed" in columns:
            closed_flag, bad_closed_flag = _flags(raw["is_closed"])
            check.flag(bad_closed_flag, "bad_flag", columns["is_closed"], raw["is_closed"])
            outcome = pd.Series(np.where(won, "won", np.where(closed_flag, "lost", "open")), index=frame.index)
        else:
            outcome = outcome.where(~won, "won")
    closed = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    if "closed" in columns:
        dc = dates["closed"]
        decided = outcome != "open"
        check.flag(dc.bad & decided, "bad_closed", columns["closed"], raw["closed"])
        closed = dc.values.where(decided)
    is_closed = outcome != "open"
    close_col = columns.get("closed", "closed")
    check.flag(
        is_closed & closed.isna(), "closed_without_date", close_col, raw.get("closed", pd.Series("", index=frame.index))
    )
    created = dates["created"].values
    check.flag(closed < created.dt.normalize(), "close_before_create", close_col, raw.get("closed", ids))

    amount = pd.Series(np.nan, index=frame.index)
    mark = "."
    if "amount" in columns:
        amount, bad_amount, mark = parse_amounts(raw["amount"])
        check.flag(bad_amount, "bad_amount", columns["amount"], raw["amount"])
        check.flag(amount < 0, "negative_amount", columns["amount"], raw["amount"])
    dup = ids.duplicated(keep="first") & (ids != "")
    check.flag(dup, "duplicate_id", columns["id"], ids)

    rows = pd.DataFrame(
        {
            "id": ids,
            "created": created,
            "closed": closed,
            "outcome": outcome,
            "amount": amount,
            "owner": raw.get("owner", pd.Series("", index=frame.index)),
            "source": raw.get("source", pd.Series("", index=frame.index)),
            "segment": raw.get("segment", pd.Series("", index=frame.index)),
        }
    )
    keep = ~rows.index.isin(list(check.bad))
    issues = check.sorted()
    return Table(path, dialect, how, columns, rows[keep], len(frame), issues, conventions, mark)


def read_leads(
    path: str | Path,
    fmt: str | None = None,
    mapping: Mapping[str, str] | None = None,
    dayfirst: bool | None = None,
    date_format: str | None = None,
    strict: bool = False,
) -> Table:
    """Read a leads (contacts) export: ``id, created, mql, sql, opportunity`` dates and ``source``.

    A ``converted`` flag (Salesforce ``IsConverted``) without an opportunity date counts
    as converted at an unknown date. Rows are checked as for opportunities; a stage date
    before the created date is a messy row.
    """
    path = Path(path)
    header, frame = _read_rows(path, "--leads")
    dialect, columns, how = _match_columns(header, LEAD_COLUMNS, LEAD_SIGNATURE, fmt, dict(mapping or {}), "leads")
    _require(columns, ("id", "created"), path, header, "--leads")
    check = _Checker(path, strict)
    ids = frame[columns["id"]]
    check.flag(ids == "", "missing_id", columns["id"], ids)
    created_raw = frame[columns["created"]]
    check.flag(created_raw == "", "missing_created", columns["created"], created_raw)
    dates, conventions = _dates(frame, columns, ("created", "mql", "sql", "opportunity"), dayfirst, date_format, path)
    check.flag(dates["created"].bad, "bad_created", columns["created"], created_raw)
    out = pd.DataFrame({"id": ids, "created": dates["created"].values}, index=frame.index)
    for stage in ("mql", "sql", "opportunity"):
        if stage in dates:
            check.flag(dates[stage].bad, "bad_date", columns[stage], frame[columns[stage]])
            out[stage] = dates[stage].values
            check.flag(
                out[stage] < out["created"].dt.normalize(), "stage_before_create", columns[stage], frame[columns[stage]]
            )
        else:
            out[stage] = pd.NaT
    converted = out["opportunity"].notna()
    if "converted" in columns:
        flag, bad = _flags(frame[columns["converted"]])
        check.flag(bad, "bad_flag", columns["converted"], frame[columns["converted"]])
        converted = converted | flag
    out["converted"] = converted
    out["source"] = frame[columns["source"]] if "source" in columns else ""
    check.flag(ids.duplicated(keep="first") & (ids != ""), "duplicate_id", columns["id"], ids)
    keep = ~out.index.isin(list(check.bad))
    issues = check.sorted()
    return Table(path, dialect, how, columns, out[keep], len(frame), issues, conventions)


def read_history(
    path: str | Path,
    fmt: str | None = None,
    mapping: Mapping[str, str] | None = None,
    dayfirst: bool | None = None,
    date_format: str | None = None,
    strict: bool = False,
) -> Table:
    """Read a stage history (Salesforce OpportunityHistory style): one row per stage change,
    ``id`` (the opportunity), ``date`` of the change and the new ``stage``."""
    path = Path(path)
    header, frame = _read_rows(path, "--history")
    dialect, columns, how = _match_columns(
        header, HISTORY_COLUMNS, HISTORY_SIGNATURE, fmt, dict(mapping or {}), "history"
    )
    _require(columns, ("id", "date", "stage"), path, header, "--history")
    check = _Checker(path, strict)
    ids = frame[columns["id"]]
    check.flag(ids == "", "missing_id", columns["id"], ids)
    dates, conventions = _dates(frame, columns, ("date",), dayfirst, date_format, path)
    check.flag(dates["date"].bad | (frame[columns["date"]] == ""), "bad_date", columns["date"], frame[columns["date"]])
    out = pd.DataFrame({"id": ids, "date": dates["date"].values, "stage": frame[columns["stage"]]})
    keep = ~out.index.isin(list(check.bad))
    issues = check.sorted()
    return Table(path, dialect, how, columns, out[keep], len(frame), issues, conventions)


def as_of_date(text: str | None) -> dt.date | None:
    """``--as-of`` text as a date (ISO ``YYYY-MM-DD`` only, so it is never ambiguous)."""
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise CalibrationError(f"--as-of: expected a date YYYY-MM-DD, got {text!r}") from None
