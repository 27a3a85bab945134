"""Reading CRM exports: dialects, column mapping, dates, amounts and messy rows.

A CRM export is a CSV file whose columns a CRM named (``CreatedDate`` in Salesforce,
``createdate`` in HubSpot, whatever a spreadsheet says elsewhere). Before anything is parsed
the file is checked: a regular file (not a folder, pipe or device), under the size cap
(:data:`MAX_EXPORT_BYTES`), text (an Excel workbook, gzip or binary file is refused; a
byte-order mark says UTF-16 or UTF-32). It is then streamed through the csv module in strict
mode: a quote never closed or a stray quote is an error naming its line, and so are a field
over :data:`MAX_FIELD_CHARS` and a repeated column name; error messages never quote the file.
Reading is then three steps, kept apart so each can be tested alone:

1. **Columns** -- the header is matched against the known dialects (Salesforce, HubSpot,
   generic) to find which column holds each *field* (``id``, ``created``, ``closed``,
   ``stage``, ``amount``, ...); ``--map "Column Name=field"`` adds to or overrides that.
2. **Values** -- dates are parsed per column after detecting the column's convention
   (ISO ``2027-03-01``, US ``03/01/2027``, European ``01/03/2027`` or ``01.03.2027``,
   optionally with a time). A column whose every day and month are <= 12 cannot tell US
   from European: it is refused unless ``dayfirst`` or an explicit ``date_format`` says,
   or another date column of the same file settles it. Amounts lose currency symbols and
   thousands separators (``$1,234.50``, ``1.234,50 €``); an empty amount is missing.
3. **Rows** -- each row is checked (too few or too many fields, missing id or created date,
   unparseable values, close before create, negative amount, duplicate id, won/lost without a
   close date, ...). A
   row with a problem is *rejected*: it is counted under its reason with its line number
   and column, never silently dropped; ``strict=True`` turns the first one into an error.

Line numbers are those of the file (the header is line 1), as a spreadsheet shows them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import pandas as pd

from funnelsim.files import UnreadableFile, open_regular

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

# Stage labels -> outcome; anything else is an open stage. Keys are normalised (see normalise_label).
DEFAULT_STAGES = {"closedwon": "won", "won": "won", "closedlost": "lost", "lost": "lost"}
TRUE = {"true", "1", "yes", "y", "t"}
FALSE = {"false", "0", "no", "n", "f", ""}


def normalise_label(name: str) -> str:
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
            stages[normalise_label(left)] = right
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
    by_norm = {normalise_label(h): h for h in header}
    if fmt is not None:
        if fmt not in DIALECTS:
            raise CalibrationError(f"--format must be one of {', '.join(DIALECTS)}, got {fmt!r}")
        dialect, how = fmt, "given by --format"
    else:
        found = [d for d in DIALECTS if signature[d] and all(normalise_label(c) in by_norm for c in signature[d])]
        if found:
            dialect = found[0]
            how = f"detected from the columns {', '.join(signature[dialect])}"
        else:
            dialect, how = "generic", "detected: no Salesforce or HubSpot signature columns"
    columns: dict[str, str] = {}
    for name, candidates in known[dialect].items():
        for candidate in candidates:
            if normalise_label(candidate) in by_norm:
                columns[name] = by_norm[normalise_label(candidate)]
                break
    for column, name in mapping.items():
        if column not in header:
            hit = by_norm.get(normalise_label(column))
            if hit is None:
                continue  # --map items may name columns of another of the files
            column = hit
        columns[name] = column
    return dialect, columns, how


# --- file reading --------------------------------------------------------------------------

MAX_EXPORT_BYTES = 1024**3
"""Largest export read (1 GiB, some 8 million rows of a typical opportunities export): a bigger
file is refused before it is read, since reading holds it in memory several times over. Raise
the cap with the environment variable named by :data:`MAX_BYTES_ENV` (a number of bytes)."""
MAX_BYTES_ENV = "FUNNELSIM_MAX_EXPORT_BYTES"
MAX_FIELD_CHARS = 1024**2
"""Longest field (1 MiB of text): longer is a broken file (e.g. an unclosed quote) or not an export."""

# Formats people give where a CSV is expected, by their first bytes: say what to do instead.
_NOT_CSV = (
    (b"PK\x03\x04", "is an Excel workbook (.xlsx) or another zip archive, not CSV; export it as CSV"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "is an Excel 97-2003 workbook (.xls), not CSV; export it as CSV"),
    (b"\x1f\x8b", "is gzip-compressed; decompress it first"),
    (b"%PDF", "is a PDF document, not CSV"),
)
# Byte-order marks, longest first (the UTF-32 LE mark begins with the UTF-16 LE one).
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def _max_bytes() -> int:
    text = os.environ.get(MAX_BYTES_ENV)
    if text is None:
        return MAX_EXPORT_BYTES
    try:
        value = int(text.strip().replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise CalibrationError(f"{MAX_BYTES_ENV}: expected a positive number of bytes, got {text!r}")
    return value


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


class _Export:
    """An export opened once and checked -- a regular file, within the size cap, text -- before a byte of it
    is parsed; then read as lines, streamed (a million-row file is never held whole in memory)."""

    def __init__(self, path: Path, what: str) -> None:
        self.path, self.what = path, what
        self.cap = _max_bytes()
        try:
            self.fd = open_regular(path, field=what, max_bytes=self.cap)
        except UnreadableFile as exc:
            hint = f"; export fewer rows (e.g. a date range) or raise the limit with {MAX_BYTES_ENV}=BYTES"
            raise CalibrationError(str(exc) + (hint if "limit" in str(exc) else "")) from None
        try:
            self.encoding, self.declared = self._sniff()
        except BaseException:
            os.close(self.fd)
            raise

    def close(self) -> None:
        os.close(self.fd)

    def _binary(self) -> BinaryIO:
        """The file from its start (a duplicate descriptor: each reader closes its own)."""
        file = os.fdopen(os.dup(self.fd), "rb")
        file.seek(0)
        return file

    def _sniff(self) -> tuple[str, bool]:
        """``(encoding, declared)``: from a byte-order mark or UTF-16's NUL bytes (declared), else UTF-8.
        Formats that are not CSV are refused by their first bytes."""
        with self._binary() as file:
            head = file.read(4096)
        for magic, meaning in _NOT_CSV:
            if head.startswith(magic):
                raise CalibrationError(f"{self.what}: {self.path} {meaning}")
        encoding = next((name for bom, name in _BOMS if head.startswith(bom)), None)
        if encoding is not None:
            return encoding, True
        if b"\x00" in head:
            # UTF-16 saved without a mark: ASCII text has a NUL in every other byte.
            odd, even = head[1::2].count(0), head[0::2].count(0)
            if odd > len(head) // 4 and even == 0:
                return "utf-16-le", True
            if even > len(head) // 4 and odd == 0:
                return "utf-16-be", True
            line = _line_of(head, head.index(0))
            raise CalibrationError(f"{self.what}: {self.path} is binary (NUL bytes on line {line}), not CSV")
        return "utf-8", False

    def lines(self, encoding: str) -> Iterator[str]:
        """Decoded lines with their endings, split as ``io.StringIO(text, newline="")`` splits them."""
        with self._binary() as file:
            text = io.TextIOWrapper(file, encoding=encoding, newline="")
            chars = 0
            for number, line in enumerate(text, 1):
                if "\x00" in line:
                    raise CalibrationError(f"{self.what}: {self.path} is binary (NUL characters on line {number})")
                chars += len(line)
                if chars > self.cap:  # the file grew since it was checked, or does not report its size
                    raise CalibrationError(
                        f"{self.what}: {self.path} is over the {_size(self.cap)} limit on CRM exports ({MAX_BYTES_ENV})"
                    )
                yield line

    def undecodable(self, encoding: str) -> str:
        """Where the text stops being ``encoding`` (for the error: line and byte, never the bytes)."""
        with self._binary() as file:
            data = file.read(self.cap + 1)
        try:
            data.decode(encoding)
        except UnicodeDecodeError as exc:
            return f"line {_line_of(data, exc.start)}, byte {exc.start}"
        return "somewhere"  # pragma: no cover - only asked after a decoding error


def _line_of(data: bytes, offset: int) -> int:
    """1-based line number of a byte offset."""
    return data.count(b"\n", 0, offset) + 1


@contextmanager
def _field_limit(limit: int) -> Iterator[None]:
    """The csv module's field-size limit is process-wide: set it for one read and put it back."""
    before = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(before)


def _unclosed_quote(lines: Iterator[str], start: int, delimiter: str, header: list[str]) -> tuple[int, str]:
    """Line and column where the quote that runs to the end of the file opened (record from line ``start``)."""
    for _ in range(start - 1):
        next(lines)
    with _field_limit(sys.maxsize):
        fields = next(csv.reader(lines, delimiter=delimiter, strict=False), [""])
    # Fields before the last (closed quotes) may hold line breaks of their own.
    line = start + sum(f.count("\n") + f.count("\r") - f.count("\r\n") for f in fields[:-1])
    column = header[len(fields) - 1] if len(fields) <= len(header) else f"field {len(fields)}"
    return line, column


CHUNK_ROWS = 20_000  # rows held as Python lists before they are packed into columns


def _text_dtype() -> str:
    """Arrow-backed strings when pyarrow is installed (a tenth of the memory of Python strings), else object."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return "object"
    return "string[pyarrow]"


def _compact(rows: list[list[str]], header: list[str], dtype: str) -> pd.DataFrame:
    """Rows of cells as a frame of stripped text columns."""
    if not rows:
        return pd.DataFrame({h: pd.Series([], dtype=dtype) for h in header})
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    # strip here: one vectorised pass per column instead of one call per cell
    return pd.DataFrame({h: frame[h].str.strip().astype(dtype) for h in header})


def _join(chunks: list[pd.DataFrame], header: list[str]) -> pd.DataFrame:
    """The chunks one under the other; Arrow columns are chained, not copied (pd.concat would copy them)."""
    if len(chunks) == 1:
        return chunks[0]
    if all(isinstance(c[h].dtype, pd.StringDtype) and c[h].dtype.storage == "pyarrow" for c in chunks for h in header):
        import pyarrow as pa

        return pd.DataFrame(
            {
                h: pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([pa.array(c[h]) for c in chunks])))
                for h in header
            }
        )
    return pd.concat(chunks, ignore_index=True)


def _read_rows(path: Path, what: str) -> tuple[list[str], pd.DataFrame, list[tuple[int, str, str, str]]]:
    """All cells as text, each row's line number in the file, and the rows whose shape is wrong.

    Returns ``(header, frame, malformed)``: ``malformed`` holds ``(line, reason, column, value)``
    for rows with fewer fields than the header (``short_row``, padded with empty cells) or more
    (``extra_fields``; extra fields that are all empty, e.g. a trailing delimiter, are dropped
    quietly: they hold nothing). Whole-file problems -- not a regular file, too big, not text, a
    quote never closed, a field over :data:`MAX_FIELD_CHARS`, duplicate column names -- raise
    :class:`CalibrationError` naming the line (and column) but never quoting the content.

    The encoding is the byte-order mark's, else UTF-8, else (when UTF-8 fails anywhere) Windows-1252,
    Excel's default on Windows: the file is then read again.
    """
    export = _Export(path, what)
    try:
        for encoding in [export.encoding] if export.declared else ["utf-8", "cp1252"]:
            try:
                return _parse_rows(export, encoding)
            except UnicodeDecodeError:
                continue
        if export.declared:
            name = export.encoding.upper().replace("-SIG", "")
            raise CalibrationError(f"{what}: {path}: not valid {name} text ({export.undecodable(export.encoding)})")
        raise CalibrationError(
            f"{what}: {path}: not UTF-8 or Windows-1252 text ({export.undecodable('cp1252')}); save it as CSV UTF-8"
        )
    finally:
        export.close()


def _header(row: list[str] | None, what: str, path: Path) -> list[str]:
    """The column names of line 1: stripped, unnamed ones numbered, a name given twice refused."""
    if row is None:
        raise CalibrationError(f"{what}: {path} is empty (no header row)")
    # A column without a name (e.g. after a trailing delimiter) gets one, so it can be told apart.
    header = [h.strip() or f"(unnamed {number})" for number, h in enumerate(row, 1)]
    seen: dict[str, int] = {}
    for number, name in enumerate(header, 1):
        if name in seen:
            raise CalibrationError(
                f"{what}: {path}, line 1: column {name!r} appears twice (columns {seen[name]} and {number}); "
                "rename one in the file"
            )
        seen[name] = number
    return header


def _parse_rows(export: _Export, encoding: str) -> tuple[list[str], pd.DataFrame, list[tuple[int, str, str, str]]]:
    """:func:`_read_rows` in one encoding (a decoding error escapes as UnicodeDecodeError)."""
    path, what = export.path, export.what
    lines = export.lines(encoding)
    first = next(lines, "")
    if first == "":
        raise CalibrationError(f"{what}: {path} is empty (no header row)")
    # European spreadsheets write ';' between fields, because ',' is their decimal mark.
    delimiter = max((",", ";", "\t"), key=first.count)
    # strict: a stray quote inside a quoted field, or a quote never closed, is an error, not a guess.
    reader = csv.reader(itertools.chain([first], lines), delimiter=delimiter, strict=True)
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    chunks: list[pd.DataFrame] = []
    text_dtype = _text_dtype()
    malformed: list[tuple[int, str, str, str]] = []
    start = 1
    header: list[str] = []
    width = 0
    try:
        with _field_limit(MAX_FIELD_CHARS):
            header = _header(next(reader, None), what, path)
            width = len(header)
            start = reader.line_num + 1
            for row in reader:
                n = len(row)
                if n != width:
                    if n > width and not any(cell.strip() for cell in row[width:]):
                        row = row[:width]  # a trailing delimiter: empty extras hold nothing
                    elif not any(cell.strip() for cell in row):
                        start = reader.line_num + 1
                        continue  # a blank line
                    elif n < width:
                        malformed.append((start, "short_row", header[n], f"{n} of {width} fields"))
                        row = row + [""] * (width - n)
                    else:
                        extra = next(i for i in range(width, n) if row[i].strip())
                        malformed.append((start, "extra_fields", f"field {extra + 1}", f"{n} of {width} fields"))
                        row = row[:width]
                elif not any(row):
                    start = reader.line_num + 1
                    continue  # a blank line (or only delimiters)
                rows.append(row)
                line_numbers.append(start)
                start = reader.line_num + 1
                if len(rows) == CHUNK_ROWS:  # a million rows as Python strings would take gigabytes
                    chunks.append(_compact(rows, header, text_dtype))
                    rows = []
    except csv.Error as exc:
        message = str(exc)
        if "field larger than field limit" in message:
            raise CalibrationError(
                f"{what}: {path}, line {start}: a field is longer than {_size(MAX_FIELD_CHARS)} of text; "
                "is a quote left open on that line?"
            ) from None
        if "unexpected end of data" in message:
            line, column = _unclosed_quote(export.lines(encoding), start, delimiter, header)
            raise CalibrationError(
                f"{what}: {path}, line {line}, column {column!r}: a quote opens a field and is never closed, so "
                f"the rest of the file (to line {reader.line_num}) would be read as one field; close or remove it"
            ) from None
        raise CalibrationError(
            f"{what}: {path}, line {reader.line_num}: not valid CSV ({message}); a quote inside a quoted field "
            'must be doubled ("")'
        ) from None
    if rows or not chunks:
        chunks.append(_compact(rows, header, text_dtype))
    frame = _join(chunks, header)
    frame.index = pd.Index(line_numbers, name="line")
    return header, frame, malformed


# --- dates -------------------------------------------------------------------------------

_DATE = re.compile(
    r"^(?P<a>\d{1,5})(?P<sep>[-/.])(?P<b>\d{1,2})(?P=sep)(?P<c>\d{2,5})"
    r"(?:[T ](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.\d+)?)?\s*(?P<ampm>[AaPp][Mm])?)?"
    r"\s*(?:Z|[+-]\d{2}:?\d{2}|UTC)?$"
)
# The years a pandas timestamp (nanoseconds in 64 bits) can hold, whole years only. A date outside
# them is a typo (20270) or a placeholder (9999-12-31), never a real deal: refused, not guessed.
FIRST_YEAR, LAST_YEAR = pd.Timestamp.min.year + 1, pd.Timestamp.max.year - 1
DATE_FORMATS = {"iso": "YYYY-MM-DD", "us": "MM/DD/YYYY", "european": "DD/MM/YYYY", "european-dot": "DD.MM.YYYY"}


@dataclass
class DateColumn:
    """Parsed dates of one column: the values (NaT where unparseable), and the convention used."""

    values: pd.Series
    convention: str
    bad: pd.Series  # True where a non-empty cell could not be parsed
    out_of_range: pd.Series | None = None  # True where a date's year is outside FIRST_YEAR..LAST_YEAR


def _convention(parts: pd.DataFrame, dayfirst: bool | None) -> str | None:
    """'iso', 'us', 'european', 'european-dot', or None when US and European cannot be told apart."""
    ok = parts.dropna(subset=["a"])
    if ok.empty:
        return "iso"
    if (ok["a_len"] >= 4).all():
        return "iso"
    if (ok["sep"] == ".").all():
        return "european-dot"
    a = ok["a"]
    b = ok["b"]
    if dayfirst is not None:
        return "european" if dayfirst else "us"
    if (a > 12).any() and (b > 12).any():
        return "mixed"
    if (a > 12).any():
        return "european"
    if (b > 12).any():
        return "us"
    return None


def _date_parts(text: pd.Series) -> pd.DataFrame:
    """The pieces of each date-shaped cell as numbers (NaN where the cell is not a date), ``a_len`` (digits
    of the first number), ``sep`` and ``ampm``. In chunks: a million cells' pieces held as Python
    strings would take half a gigabyte."""
    frames = []
    step = 5 * CHUNK_ROWS
    for first in range(0, max(len(text), 1), step):
        parts = text.iloc[first : first + step].str.extract(_DATE)
        numbers = {k: pd.to_numeric(parts[k], errors="coerce") for k in ("a", "b", "c", "H", "M", "S")}
        frames.append(
            pd.DataFrame(
                {
                    "a_len": parts["a"].str.len(),
                    "sep": parts["sep"],  # one character: CPython shares those, so this costs pointers
                    **numbers,
                    "ampm": parts["ampm"].str.lower().astype("category"),
                },
                index=parts.index,
            )
        )
    return pd.concat(frames) if len(frames) > 1 else frames[0]


def parse_dates(raw: pd.Series, dayfirst: bool | None = None, date_format: str | None = None) -> DateColumn:
    """Parse one column of date (and time) text; see the module docstring for the rules.

    Times are kept (as fractions of a day); a time-zone suffix is ignored (CRM exports
    use one zone throughout). ``date_format`` is a ``strptime`` format used as given.
    Returns ``convention=None`` when the column is ambiguous (every day and month <= 12).
    """
    # Dates repeat (a million close dates fall on a few hundred days): parse each distinct text once.
    codes, distinct = pd.factorize(raw.fillna(""), sort=False)
    col = _parse_distinct(pd.Series(np.asarray(distinct, dtype=object), dtype=object), dayfirst, date_format)

    def spread(values: pd.Series) -> pd.Series:
        return pd.Series(values.to_numpy()[codes], index=raw.index)

    out_of_range = None if col.out_of_range is None else spread(col.out_of_range)
    return DateColumn(spread(col.values), col.convention, spread(col.bad), out_of_range)


def _parse_distinct(raw: pd.Series, dayfirst: bool | None, date_format: str | None) -> DateColumn:
    """:func:`parse_dates` of a column of text (each distinct, though nothing depends on it)."""
    text = raw.fillna("").astype(str).str.strip()
    empty = text == ""
    if date_format is not None:
        values = pd.to_datetime(text.where(~empty), format=date_format, errors="coerce")
        return DateColumn(values, f"--date-format {date_format}", values.isna() & ~empty)
    parts = _date_parts(text)
    unmatched = parts["a"].isna() & ~empty
    convention = _convention(parts[~unmatched & ~empty], dayfirst)
    if convention is None or convention == "mixed":
        return DateColumn(pd.Series(pd.NaT, index=raw.index), convention or "ambiguous", ~empty)
    a, b, c = parts["a"], parts["b"], parts["c"]
    if convention == "iso":
        year, month, day = a, b, c
    elif convention == "us":
        year, month, day = c, a, b
    else:
        year, month, day = c, b, a
    year = year.where(year >= 100, year + 2000)  # two-digit years: 27 -> 2027
    out_of_range = ~unmatched & ~empty & ((year < FIRST_YEAR) | (year > LAST_YEAR))
    year = year.where(~out_of_range)
    dates = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": day}).where(~unmatched), errors="coerce")
    hours = parts["H"].fillna(0)
    pm = parts["ampm"].astype(object).fillna("")
    hours = hours.where(~((pm == "pm") & (hours < 12)), hours + 12).where(~((pm == "am") & (hours == 12)), 0)
    minutes = parts["M"].fillna(0)
    seconds = parts["S"].fillna(0)
    bad_time = (hours > 23) | (minutes > 59) | (seconds > 59)
    values = dates + pd.to_timedelta(hours * 3600 + minutes * 60 + seconds, unit="s")
    values = values.where(~bad_time)
    return DateColumn(values, convention, values.isna() & ~empty, out_of_range.fillna(False).astype(bool))


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


def _by_distinct(raw: pd.Series, function: Callable[[str], object]) -> pd.Series:
    """``function`` of each cell, called once per distinct text (flags and stages take a handful of values)."""
    codes, distinct = pd.factorize(raw.fillna(""), sort=False)
    results = np.empty(len(distinct), dtype=object)
    results[:] = [function(str(text)) for text in distinct]
    return pd.Series(results[codes], index=raw.index)


def _flags(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    text = _by_distinct(raw, lambda s: s.strip().lower())
    value = text.isin(TRUE)
    bad = ~(value | text.isin(FALSE))
    return value, bad


# --- messy rows --------------------------------------------------------------------------

REASONS = {
    "short_row": "fewer fields than the header (a truncated row)",
    "extra_fields": "more fields than the header (a delimiter too many, or a quote missing)",
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
        return f"{self.where} ({self.value!r})"

    @property
    def where(self) -> str:
        """File, line, column and reason, without the cell's text (for errors, which never echo the file)."""
        return f"{self.file}, line {self.line}, column {self.column!r}: {REASONS[self.reason]}"


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

    def shape(self, malformed: list[tuple[int, str, str, str]]) -> None:
        """Rows whose number of fields is wrong (from :func:`_read_rows`): their first problem."""
        for line, reason, column, value in malformed:
            self.issues.setdefault(line, Issue(self.path.name, line, reason, column, value))

    def flag(self, mask: pd.Series, reason: str, column: str, raw: pd.Series) -> None:
        for line in mask[mask].index:
            if line in self.issues:
                continue
            self.issues[int(line)] = Issue(self.path.name, int(line), reason, column, str(raw.get(line, "")))

    def sorted(self) -> list[Issue]:
        """The issues in file order; with ``strict``, the first one as an error."""
        issues = sorted(self.issues.values(), key=lambda i: i.line)
        if self.strict and issues:
            raise CalibrationError(f"--strict: {issues[0].where}")
        return issues

    @property
    def bad(self) -> set[int]:
        return set(self.issues)


def _expected(known: dict[str, dict[str, tuple[str, ...]]], name: str) -> str:
    """The header names the dialects use for field ``name`` (what the file is missing, not what it has)."""
    names = dict.fromkeys(c for columns in known.values() for c in columns.get(name, ()))
    return ", ".join(names)


def _require(
    columns: dict[str, str],
    needed: Iterable[str],
    path: Path,
    header: list[str],
    what: str,
    known: dict[str, dict[str, tuple[str, ...]]],
) -> None:
    # The header is not quoted back: a wrong path may point at a file whose first line is private.
    missing = [name for name in needed if name not in columns]
    if missing:
        looked = "; ".join(f"{name}: {_expected(known, name)}" for name in missing)
        raise CalibrationError(
            f"{what} {path}: no column for {', '.join(missing)} among its {len(header)} columns "
            f"(looked for {looked}). Name them with --map 'COLUMN={missing[0]}'"
        )


def _in_range(parsed: DateColumn, column: str, path: Path, what: str, used: pd.Series | None = None) -> None:
    """Refuse a date whose year no timestamp can hold, naming the first such line (``used``: rows that count)."""
    if parsed.out_of_range is None:
        return
    mask = parsed.out_of_range if used is None else parsed.out_of_range & used
    if mask.any():
        line = mask[mask].index[0]
        raise CalibrationError(
            f"{what} {path}, line {line}, column {column!r}: a date's year is outside {FIRST_YEAR}-{LAST_YEAR} "
            f"({int(mask.sum())} row(s)); fix it in the file (a typo, or a placeholder such as 9999-12-31)"
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
                raw = frame[columns[name]]
                sample = raw[raw.str.match(_DATE)].iloc[0]  # date-shaped, so nothing else of the file is shown
                raise CalibrationError(
                    f"{path}: column {columns[name]!r} has dates such as "
                    f"{sample!r} where every day and month "
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
    header, frame, malformed = _read_rows(path, "--opportunities")
    col_map, stage_map = dict(mapping or {}), {**DEFAULT_STAGES, **dict(stages or {})}
    dialect, columns, how = _match_columns(header, OPPORTUNITY_COLUMNS, SIGNATURE, fmt, col_map, "opportunities")
    _require(columns, ("id", "created"), path, header, "--opportunities", OPPORTUNITY_COLUMNS)
    if "stage" not in columns and "won" not in columns:
        raise CalibrationError(
            f"--opportunities {path}: no stage/status or won-flag column among its {len(header)} columns (looked "
            f"for {_expected(OPPORTUNITY_COLUMNS, 'stage')}, {_expected(OPPORTUNITY_COLUMNS, 'won')}). "
            "Name one with --map 'COLUMN=stage' or --map 'COLUMN=won'"
        )
    check = _Checker(path, strict)
    check.shape(malformed)
    raw = {name: frame[col] for name, col in columns.items()}
    ids = raw["id"]
    check.flag(ids == "", "missing_id", columns["id"], ids)
    check.flag(raw["created"] == "", "missing_created", columns["created"], raw["created"])
    dates, conventions = _dates(frame, columns, ("created", "closed"), dayfirst, date_format, path)
    _in_range(dates["created"], columns["created"], path, "--opportunities")
    check.flag(dates["created"].bad, "bad_created", columns["created"], raw["created"])

    outcome = _outcomes(raw, columns, frame.index, stage_map, check)
    closed = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    if "closed" in columns:
        dc = dates["closed"]
        decided = outcome != "open"
        _in_range(dc, columns["closed"], path, "--opportunities", used=decided)  # open deals' close dates are ignored
        check.flag(dc.bad & decided, "bad_closed", columns["closed"], raw["closed"])
        closed = dc.values.where(decided)
    is_closed = outcome != "open"
    close_col = columns.get("closed", "closed")
    check.flag(
        is_closed & closed.isna(), "closed_without_date", close_col, raw.get("closed", pd.Series("", index=frame.index))
    )
    created = dates["created"].values
    check.flag(closed < created.dt.normalize(), "close_before_create", close_col, raw.get("closed", ids))

    amount, mark = _amounts(raw, columns, frame.index, check)
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


def _outcomes(
    raw: dict[str, pd.Series], columns: dict[str, str], index: pd.Index, stage_map: dict[str, str], check: _Checker
) -> pd.Series:
    """Each deal's outcome (won|lost|open): the won/closed flags first (what the CRM reports), then the stage."""
    outcome = pd.Series("open", index=index, dtype=object)
    if "stage" in columns:
        outcome = _by_distinct(raw["stage"], lambda s: stage_map.get(normalise_label(s), "open"))
    if "won" in columns:
        won, bad_won = _flags(raw["won"])
        check.flag(bad_won, "bad_flag", columns["won"], raw["won"])
        if "is_closed" in columns:
            closed_flag, bad_closed_flag = _flags(raw["is_closed"])
            check.flag(bad_closed_flag, "bad_flag", columns["is_closed"], raw["is_closed"])
            outcome = pd.Series(np.where(won, "won", np.where(closed_flag, "lost", "open")), index=index)
        else:
            outcome = outcome.where(~won, "won")
    return outcome


def _amounts(
    raw: dict[str, pd.Series], columns: dict[str, str], index: pd.Index, check: _Checker
) -> tuple[pd.Series, str]:
    """The deal amounts (NaN where missing) and the decimal mark they were written with."""
    if "amount" not in columns:
        return pd.Series(np.nan, index=index), "."
    amount, bad_amount, mark = parse_amounts(raw["amount"])
    check.flag(bad_amount, "bad_amount", columns["amount"], raw["amount"])
    check.flag(amount < 0, "negative_amount", columns["amount"], raw["amount"])
    return amount, mark


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
    header, frame, malformed = _read_rows(path, "--leads")
    dialect, columns, how = _match_columns(header, LEAD_COLUMNS, LEAD_SIGNATURE, fmt, dict(mapping or {}), "leads")
    _require(columns, ("id", "created"), path, header, "--leads", LEAD_COLUMNS)
    check = _Checker(path, strict)
    check.shape(malformed)
    ids = frame[columns["id"]]
    check.flag(ids == "", "missing_id", columns["id"], ids)
    created_raw = frame[columns["created"]]
    check.flag(created_raw == "", "missing_created", columns["created"], created_raw)
    dates, conventions = _dates(frame, columns, ("created", "mql", "sql", "opportunity"), dayfirst, date_format, path)
    for name, parsed in dates.items():
        _in_range(parsed, columns[name], path, "--leads")
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
    header, frame, malformed = _read_rows(path, "--history")
    dialect, columns, how = _match_columns(
        header, HISTORY_COLUMNS, HISTORY_SIGNATURE, fmt, dict(mapping or {}), "history"
    )
    _require(columns, ("id", "date", "stage"), path, header, "--history", HISTORY_COLUMNS)
    check = _Checker(path, strict)
    check.shape(malformed)
    ids = frame[columns["id"]]
    check.flag(ids == "", "missing_id", columns["id"], ids)
    dates, conventions = _dates(frame, columns, ("date",), dayfirst, date_format, path)
    _in_range(dates["date"], columns["date"], path, "--history")
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
        date = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise CalibrationError(f"--as-of: expected a date YYYY-MM-DD, got {text[:40]!r}") from None
    return check_as_of(date)


def check_as_of(date: dt.date) -> dt.date:
    """``date`` if the simulation can start on it (its year within FIRST_YEAR..LAST_YEAR), else an error."""
    if not FIRST_YEAR <= date.year <= LAST_YEAR:
        raise CalibrationError(
            f"--as-of: {date} is outside the years {FIRST_YEAR}-{LAST_YEAR} that dates can take; "
            "give the date the export was pulled"
        )
    return date
