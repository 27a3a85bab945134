"""``report.html``: one self-contained page per output folder, the file a planner sends on.

A page reads top to bottom as a short memo: the question the command answers, the answer in
one sentence with its range, the assumptions it rests on (the scenario in words and units),
the figures, the tables, and what produced it (version, seed, runs, start, scenario hash).
What each command says is built in :mod:`funnelsim.report.pages`; this module renders it.

The page is a Jinja2 template (``report/templates/<kind>.html.j2``, each extending
``base.html.j2``) with autoescaping on: scenario names, descriptions and CSV cells are user
data and reach the page as text, never as markup. It needs nothing but itself: the CSS is
inline, every figure of the folder's ``figures/`` is embedded (PNG as a ``data:`` URI, SVG
inline), and it references no network resource, so it opens the same from an e-mail, a
file share or a laptop offline, and prints cleanly.

Jinja2 is imported when a report is written, not when :mod:`funnelsim.cli` is imported.
"""

from __future__ import annotations

import base64
import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2
    import pandas as pd

__all__ = [
    "KINDS",
    "REPORT_FILE",
    "Figure",
    "HtmlTable",
    "count",
    "days",
    "embedded_figures",
    "frame_table",
    "money",
    "percent",
    "short_money",
    "write_report",
]

REPORT_FILE = "report.html"

KINDS = ("run", "replications", "plan", "compare", "sweep", "sensitivity", "calibrate", "backtest", "mix")
"""The pages there are: one per command's folder (``replications`` is ``run --runs N``)."""

KIND_LABELS = {
    "run": "one run",
    "replications": "Monte Carlo run",
    "plan": "joint-target plan",
    "compare": "comparison",
    "sweep": "what-if grid",
    "sensitivity": "sensitivity",
    "calibrate": "calibration",
    "backtest": "back-test",
    "mix": "budget mix",
}


@dataclass
class HtmlTable:
    """A table as the page shows it: every cell already formatted as text (escaped when rendered).

    ``align`` holds ``"l"`` or ``"r"`` per column (numbers right); ``strong`` the indexes of rows
    shown in bold (totals, the best point); ``source`` the CSV the numbers come from.
    """

    title: str
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    source: str = ""
    align: list[str] = field(default_factory=list)
    strong: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        if not self.align:
            self.align = ["l", *["r"] * (len(self.columns) - 1)]


@dataclass
class Figure:
    """A figure file of the folder, ready to embed: ``kind`` is ``"png"`` (``src`` a data URI) or ``"svg"``
    (``svg`` the markup of the file without its XML prolog)."""

    name: str
    file: str
    kind: str
    caption: str
    src: str = ""
    svg: str = ""


def write_report(folder: Path, kind: str, context: dict[str, Any]) -> Path:
    """Render ``report.html`` into ``folder`` and return its path.

    Parameters
    ----------
    folder
        The output folder being written (inside :func:`~funnelsim.report.folder.write_atomically`'s
        ``fill``); every file of its ``figures/`` is embedded.
    kind
        One of :data:`KINDS`: the template ``<kind>.html.j2``.
    context
        What the page says (:mod:`funnelsim.report.pages` builds it): ``title``, ``question``,
        ``answer`` (one sentence), and optionally ``description``, ``answer_note``, ``key_numbers``
        (label, value, unit triples shown as cards under the answer), ``assumptions`` (an
        :class:`HtmlTable`), ``tables`` (a list of them), ``figure_captions`` (figure name →
        caption, in the order to show them), ``notes`` (lines) and ``metadata`` (label, value pairs).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown report kind {kind!r}; one of {', '.join(KINDS)}")
    page: dict[str, Any] = {
        "answer_note": "",
        "assumptions": None,
        "tables": [],
        "notes": [],
        "metadata": [],
        "description": "",
    }
    page["key_numbers"] = []
    page |= {"version": _version(), "kind_label": KIND_LABELS[kind], **context}
    page["figures"] = embedded_figures(folder / "figures", context.get("figure_captions", {}))
    html = _environment().get_template(f"{kind}.html.j2").render(kind=kind, **page)
    path = folder / REPORT_FILE
    path.write_text(html, encoding="utf-8")
    return path


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("funnelsim.report", "templates"),
        autoescape=True,  # scenario names and CSV cells are user data
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("funnelsim")
    except PackageNotFoundError:
        return "unknown"


_PROLOG = re.compile(r"\A\s*(<\?xml[^>]*\?>\s*)?(<!DOCTYPE[^>]*>\s*)?", re.IGNORECASE)
# The file's RDF block (creator, date, licence URIs): nothing the page shows, and no URL to carry.
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)


def embedded_figures(folder: Path, captions: dict[str, str]) -> list[Figure]:
    """Every PNG and SVG file of ``folder``, ready to embed: those named in ``captions`` first, in its order,
    then the others by name (a figure the page does not describe is still shown)."""
    if not folder.is_dir():
        return []
    files = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix in (".png", ".svg") and p.is_file()}
    order = [name for name in captions if name in files] + [name for name in files if name not in captions]
    figures = []
    for name in order:
        path = files[name]
        fig = Figure(name, f"figures/{path.name}", path.suffix[1:], captions.get(name, ""))
        if fig.kind == "png":
            fig.src = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
        else:  # matplotlib's SVG: inline markup, from our own drawing (its text is escaped by matplotlib)
            fig.svg = _METADATA.sub("", _PROLOG.sub("", path.read_text(encoding="utf-8"), count=1), count=1)
        figures.append(fig)
    return figures


# --- numbers as the page writes them ------------------------------------------------------------------


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def short_money(x: Any) -> str:
    """Three significant digits with a suffix: ``5.60M``, ``18.0M``, ``950k``, ``1.20bn``, ``420``."""
    if not _finite(x):
        return "n/a"
    v = float(x)
    for size, suffix in ((1e9, "bn"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= size * 0.9995:
            return f"{v / size:#.3g}".rstrip(".") + suffix
    return f"{v:,.0f}"


def money(x: Any) -> str:
    """Money in full: ``5,600,093``."""
    return f"{float(x):,.0f}" if _finite(x) else "n/a"


def count(x: Any) -> str:
    """A count: ``34,992``; a non-integer mean keeps one decimal (``7.2``)."""
    if not _finite(x):
        return "n/a"
    v = float(x)
    return f"{v:,.0f}" if v.is_integer() or abs(v) >= 100 else f"{v:,.1f}"


def percent(x: Any) -> str:
    """A fraction as a percentage: ``0.131`` → ``13.1%``."""
    return f"{100 * float(x):.1f}%" if _finite(x) else "n/a"


def days(x: Any) -> str:
    """Days with one decimal: ``55.3``."""
    return f"{float(x):,.1f}" if _finite(x) else "n/a"


def number(x: Any) -> str:
    """Any cell: integers with thousands separators, floats to four significant digits, text as it is."""
    if isinstance(x, bool) or x is None:
        return "" if x is None else ("yes" if x else "no")
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if not math.isfinite(x):
            return "" if math.isnan(x) else str(x)
        return f"{x:,.0f}" if abs(x) >= 1e4 or x.is_integer() else f"{x:.4g}"
    try:  # numpy scalars
        return number(x.item())
    except AttributeError:
        return str(x)


FORMATS: dict[str, Callable[[Any], str]] = {
    "money": money,
    "short": short_money,
    "count": count,
    "percent": percent,
    "days": days,
    "text": str,
}


def frame_table(
    frame: pd.DataFrame,
    title: str,
    columns: list[tuple[str, str, str]] | None = None,
    *,
    caption: str = "",
    source: str = "",
    strong: set[int] | None = None,
) -> HtmlTable:
    """``frame`` as an :class:`HtmlTable`: ``columns`` lists ``(column, header, format)`` (a format of
    :data:`FORMATS` or ``"number"``); by default every column, formatted by :func:`number`."""
    if columns is None:
        columns = [(str(c), str(c), "number") for c in frame.columns]
    rows = []
    for record in frame.to_dict("records"):
        rows.append([_cell(record[col], fmt) for col, _, fmt in columns])
    align = ["l" if fmt == "text" or (fmt == "number" and _texty(frame[col])) else "r" for col, _, fmt in columns]
    return HtmlTable(title, [h for _, h, _ in columns], rows, caption, source, align, strong or set())


def _cell(value: Any, fmt: str) -> str:
    """A table cell: a missing number is a dash (NaN in the CSV), anything else in its format."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return FORMATS.get(fmt, number)(value)


def _texty(column: pd.Series) -> bool:
    return column.dtype.kind in "OSUb" or str(column.dtype) in ("string", "str", "category")
