"""The plan as a workbook a planner can send on (``targets.xlsx`` of ``funnelsim plan --out``).

The CSV files of a plan are long tables, one row per month and stage; a team reads its
targets the other way round: one sheet per team, its measures down the side and the months
across. The workbook is built from the very frames the CSV files are written from
(``plan.sheet`` is ``targets.csv``, ``plan.headcount`` is ``headcount.csv``, ``plan.segments``
is ``segment_targets.csv``), and every number in it is one of theirs **rounded half up as
people plan**: whole leads, whole heads, money to the unit. A period total is the exact total
rounded, not the sum of the rounded months, so it may differ from that sum by a unit or two
(and the bookings of the period are what the goal needs: for ``--goal``, the goal itself).

Sheets: ``Summary`` (the goal, what it measures, the verified confidence and its interval,
the levers and every change the plan made, the assumptions, and a segmented scenario's
targets per segment), then ``Marketing``, ``SDR`` and ``Sales``.

Text that came from a user (scenario, source and segment names) is written as text, never
as a formula: a cell that would start with ``=``, ``+``, ``-`` or ``@`` gets a leading quote
(:func:`funnelsim.report.spreadsheet.neutralise_text`, as in the CSV files). openpyxl is an
optional dependency (the ``excel`` extra), imported only when a workbook is written.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from funnelsim.studies.planner import Plan, PlanDiagnostics

__all__ = ["INSTALL_HINT", "SHEETS", "available", "team_rows", "whole", "write_targets"]

SHEETS = ("Summary", "Marketing", "SDR", "Sales")
INSTALL_HINT = "targets.xlsx not written: pip install 'funnelsim[excel]' gives it (openpyxl)"

# Number formats: thousands separators, whole numbers; shares as percentages.
WHOLE = "#,##0"
SHARE = "0.0%"
RATIO = "0.000"
MAX_WIDTH = 60


def available() -> bool:
    """Whether openpyxl can be imported (the ``excel`` extra), without importing it."""
    try:
        return importlib.util.find_spec("openpyxl") is not None
    except (ImportError, ValueError):  # blocked (``sys.modules["openpyxl"] = None``) or broken
        return False


def whole(value: float) -> int | None:
    """``value`` rounded half up to a whole number, as people plan (``None`` if it is not finite)."""
    if not math.isfinite(value):
        return None
    return math.floor(value + 0.5)


# -- the team sheets -------------------------------------------------------------------------


def team_rows(plan: Plan) -> dict[str, list[tuple[str, str, dict[str, float], bool]]]:
    """Each team sheet's rows: ``(measure, unit, exact value per month, whether the period total is a sum)``.

    The values are the plan's own (``targets.csv``'s ``target``, ``headcount.csv``'s columns), not rounded;
    :func:`write_targets` rounds them with :func:`whole`. Headcount is a stock: it has no period total.
    """
    sheet, heads, cur = plan.sheet, plan.headcount.set_index("month"), plan.scenario.currency

    def stage(name: str, source: str = "") -> dict[str, float]:
        rows = sheet[(sheet["stage"] == name) & (sheet["source"].fillna("") == source)]
        return dict(zip(rows["month"], rows["target"].astype(float), strict=True))

    def head(column: str) -> dict[str, float]:
        return {str(m): float(v) for m, v in heads[column].items()}

    bought = sheet[(sheet["stage"] == "leads") & (sheet["team"] == "marketing")]
    sources = list(dict.fromkeys(bought["source"]))
    channels = list(dict.fromkeys(sheet.loc[sheet["stage"] == "spend", "source"]))
    all_leads = bought.groupby("month", sort=False)["target"].sum().astype(float).to_dict()
    marketing = [(f"Leads: {s}", "leads", stage("leads", s), True) for s in sources]
    marketing += [("Leads: all sources", "leads", all_leads, True)]
    marketing += [(f"Spend: {c}", cur, stage("spend", c), True) for c in channels]
    marketing += [("MQLs", "MQLs", stage("mqls"), True)]
    sdr = [("SQLs", "SQLs", stage("sqls"), True), ("SDR headcount", "heads", head("sdr_headcount"), False)]
    sdr += [("SDR hires", "heads", head("sdr_hires"), True), ("SDR backfills", "heads", head("sdr_backfills"), True)]
    sdr += [("SDR leavers (expected)", "heads", head("sdr_leavers"), True)]
    sales = [("Deals AEs prospect", "opportunities", stage("leads", "prospecting"), True)]
    sales += [("Opportunities", "opportunities", stage("opportunities"), True), ("Wins", "wins", stage("wins"), True)]
    sales += [("Bookings", cur, stage("revenue"), True), ("AE headcount", "heads", head("ae_headcount"), False)]
    sales += [("AE hires", "heads", head("ae_hires"), True), ("AE backfills", "heads", head("ae_backfills"), True)]
    sales += [("AE leavers (expected)", "heads", head("ae_leavers"), True)]
    return {"Marketing": marketing, "SDR": sdr, "Sales": sales}


def _team_sheet(ws: Any, plan: Plan, rows: list[tuple[str, str, dict[str, float], bool]]) -> None:
    """Measures down, months across (row 1 the month, row 2 its phase), then the period total."""
    phases = dict(zip(plan.headcount["month"], plan.headcount["phase"], strict=True))
    months = list(phases)
    inside = [m for m in months if phases[m] == "period"]
    _header(ws, ["measure", "unit", *months, "period total"])
    ws.append(["phase", "", *(phases[m] for m in months), ""])
    for measure, unit, values, summed in rows:
        total = whole(sum(values.get(m, 0.0) for m in inside)) if summed else None
        ws.append([_text(measure), _text(unit), *(whole(values[m]) if m in values else None for m in months), total])
    for row in ws.iter_rows(min_row=3, min_col=3):
        for cell in row:
            cell.number_format = WHOLE
    ws.freeze_panes = "C3"
    ws.cell(row=len(rows) + 4, column=1, value=_BASIS_NOTE)


_BASIS_NOTE = (
    "Leads per source: the quota; MQLs to wins, deals AEs prospect, lead-in bookings: the plan's mean over its "
    "verification runs; bookings in the period: the bookings the goal needs (a --goal: the goal itself; an ARR "
    "goal: the new ARR it takes) spread like the plan's mean; "
    "headcount: expected heads (hires, ramp, attrition). Numbers rounded half up; period totals are exact totals "
    "rounded. Full precision: targets.csv and headcount.csv."
)


# -- the summary -----------------------------------------------------------------------------


def _summary_rows(plan: Plan, diagnostics: PlanDiagnostics) -> list[tuple[str, Any, str]]:
    """``(item, value, format or unit note)`` rows of the summary, in reading order."""
    from funnelsim.engine.warmup import start_of
    from funnelsim.studies.planner.period import GOALS

    sc, pg, cur = plan.scenario, plan.p_goal, plan.scenario.currency
    months = len(plan.headcount)
    runs = f"{pg['n']} fresh runs ({pg['hits']} reached the goal), replications {pg['first_replication']}+ of seed "
    horizon = f"{plan.lead_in_months} months lead-in + {months - plan.lead_in_months} months period"
    return [
        ("Goal", plan.goal, cur),
        ("Goal measure", plan.period.goal, GOALS.get(plan.period.goal, "")),
        ("Period", f"{plan.period.start} to {plan.period.end}", ""),
        ("Confidence asked", plan.confidence, SHARE),
        ("Verified confidence P(goal)", pg["estimate"], SHARE),
        ("95% interval, low", pg["ci_low"], SHARE),
        ("95% interval, high", pg["ci_high"], SHARE),
        ("Verified on", f"{runs}{pg['seed']}", ""),
        ("Status", plan.status, ""),
        ("Lever", plan.lever, ""),
        ("Leads, times today's volume", plan.lead_multiplier, RATIO),
        ("AEs hired by the plan", plan.extra_aes, WHOLE),
        ("SDRs in all", plan.sdrs, WHOLE),
        ("Hires join on", plan.hire_date.isoformat(), ""),
        ("Bookings in the period, mean", plan.revenue.get("mean", math.nan), cur),
        ("Bookings in the period, P10", plan.revenue.get("p10", math.nan), cur),
        ("Bookings in the period, P90", plan.revenue.get("p90", math.nan), cur),
        ("Cost in the period", plan.cost.get("period_total", math.nan), cur),
        ("Marketing cost in the period", plan.cost.get("marketing", math.nan), cur),
        ("Assumptions", "", ""),
        ("Scenario", sc.name, ""),
        ("Horizon", f"{horizon}, from {sc.start_date} ({sc.horizon_days:g} days)", ""),
        ("Start mode", start_of(sc)["mode"], ""),
        ("Seed", diagnostics.seed, ""),
        ("Runs per candidate (search)", diagnostics.runs, WHOLE),
        ("Currency", cur, ""),
        ("funnelsim version", _version(), ""),
    ]


def _summary_sheet(ws: Any, plan: Plan, diagnostics: PlanDiagnostics) -> None:
    """Item, value and a note per row; then what the plan changed; then the targets per segment."""
    from openpyxl.styles import Font

    _header(ws, ["item", "value", "note"])
    for item, value, note in _summary_rows(plan, diagnostics):
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        money = note == plan.scenario.currency
        cell_value = whole(value) if number and money else _number_or_text(value)
        ws.append([_text(item), cell_value, _text("" if note in (SHARE, RATIO, WHOLE) else note)])
        if number:
            ws.cell(row=ws.max_row, column=2).number_format = WHOLE if money else note
        if item == "Assumptions":
            ws.cell(row=ws.max_row, column=1).font = Font(bold=True)
    ws.append([])
    ws.append([_text("Changed by the plan"), _text("value")])
    _bold_row(ws)
    for path, value in plan.changes.items():
        ws.append([_text(path), _number_or_text(value)])
    if plan.segments:
        ws.append([])
        _segment_block(ws, plan)
    ws.freeze_panes = "A2"


SEGMENT_COLUMNS = (("leads", "leads"), ("sqls", "SQLs"), ("wins", "wins"), ("revenue", "bookings"))
SEGMENT_HEADS = (("sdr_headcount", "SDRs (mean)"), ("ae_headcount", "AEs (mean)"))


def segment_totals(months: pd.DataFrame) -> list[int | None]:
    """A segment's period targets (``segment_targets.csv``'s rows of the period): leads, SQLs, wins and
    bookings summed, SDR and AE headcount averaged, each rounded with :func:`whole`."""
    inside = months[months["phase"] == "period"]
    sums = [whole(float(inside[column].sum())) for column, _ in SEGMENT_COLUMNS]
    return sums + [whole(float(inside[column].mean())) for column, _ in SEGMENT_HEADS]


def _segment_block(ws: Any, plan: Plan) -> None:
    ws.append([_text("Targets per segment in the period (analytic, at the plan's volume)")])
    _bold_row(ws)
    titles = [label for _, label in SEGMENT_COLUMNS]
    titles[-1] = f"bookings ({plan.scenario.currency})"
    ws.append(["segment", *titles, *(label for _, label in SEGMENT_HEADS)])
    _bold_row(ws)
    for name, months in plan.segments.items():
        ws.append([_text(name), *segment_totals(months)])
        for cell in ws[ws.max_row][1:]:
            cell.number_format = WHOLE


# -- writing ---------------------------------------------------------------------------------


def write_targets(plan: Plan, diagnostics: PlanDiagnostics, path: Path) -> Path:
    """Write ``targets.xlsx`` (the module docstring says what is in it) and return its path."""
    from openpyxl import Workbook

    book = Workbook()
    summary = book.active
    summary.title = SHEETS[0]
    _summary_sheet(summary, plan, diagnostics)
    for title, rows in team_rows(plan).items():
        _team_sheet(book.create_sheet(title), plan, rows)
    for ws in book.worksheets:
        _fit_columns(ws)
    book.properties.creator = "funnelsim"
    # A fixed date: the same plan writes the same workbook contents (the file's own timestamps aside).
    book.properties.created = book.properties.modified = dt.datetime(2000, 1, 1)
    book.save(path)
    return path


def _header(ws: Any, titles: list[str]) -> None:
    ws.append([_text(t) for t in titles])
    _bold_row(ws)


def _bold_row(ws: Any) -> None:
    from openpyxl.styles import Font

    for cell in ws[ws.max_row]:
        cell.font = Font(bold=True)


def _fit_columns(ws: Any) -> None:
    """Each column as wide as its longest cell (numbers with their separators), within MAX_WIDTH."""
    from openpyxl.utils import get_column_letter

    widths: dict[int, int] = {}
    for row in ws.iter_rows():
        for cell in row:
            if cell.value is None or (cell.column == 1 and len(str(cell.value)) > MAX_WIDTH):
                continue  # the long note under a team's table spills over, as notes do
            shown = f"{cell.value:,}" if isinstance(cell.value, int) else str(cell.value)
            widths[cell.column] = max(widths.get(cell.column, 0), len(shown))
    for column, width in widths.items():
        ws.column_dimensions[get_column_letter(column)].width = min(MAX_WIDTH, width + 2)


def _number_or_text(value: Any) -> Any:
    """Numbers as numbers, everything else as text (lists and tables as JSON)."""
    if isinstance(value, bool):
        return _text(str(value).lower())
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else None
    if isinstance(value, (dt.date, str)):
        return _text(str(value))
    return _text(json.dumps(value, default=str))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("funnelsim")
    except PackageNotFoundError:
        return "not installed"


def _text(value: str) -> str:
    """``value`` safe as a text cell: never read as a formula, no characters a workbook cannot hold."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    from funnelsim.report.spreadsheet import neutralise_text

    return str(neutralise_text(ILLEGAL_CHARACTERS_RE.sub("", value)))
