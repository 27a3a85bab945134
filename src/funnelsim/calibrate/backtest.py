"""Back-test a calibration on a CRM export: fit on the data before a cut-off date, forecast the
quarters after it, and score what the export says happened (the scores are
:mod:`funnelsim.studies.backtest`'s).

:func:`backtest` takes the whole export and a cut-off date ``D``:

1. it reads the exports whole, with the same readers and options as
   :func:`funnelsim.calibrate.calibrate` (``--format``, ``--map``, ``--dayfirst``, ``--date-format``);
2. it **cuts** them at 00:00 on ``D``, the instant calibrate's as-of date means: deals and leads
   created on or after it are dropped, a deal closed on or after it is open, a lead's MQL, SQL and
   opportunity dates on or after it are blanked (and a conversion flag without a date is dropped,
   since it cannot be placed before the cut), stage-history rows on or after it are dropped. The cut
   tables are written as generic CSV files and *those* are calibrated, so nothing after the cut
   reaches the fit, whatever calibrate itself does with later dates;
3. it loads the calibrated scenario with its open pipeline (the deals open at the cut) and runs it
   from ``D`` to the end of the last quarter (:func:`funnelsim.studies.backtest.forecast`);
4. it counts the wins and won value of each quarter in the whole export (won deals by close
   date) and scores them against the forecast.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from funnelsim.calibrate import Calibration, calibrate
from funnelsim.calibrate.readers import (
    CalibrationError,
    Table,
    as_of_date,
    parse_mapping,
    read_history,
    read_leads,
    read_opportunities,
)
from funnelsim.model.loading import load_scenario
from funnelsim.model.scenario import Scenario, ScenarioError
from funnelsim.studies.backtest import Backtest, BacktestError, Quarter, forecast, quarters_after, score_quarters
from funnelsim.studies.workload import Budget

__all__ = ["DEFAULT_RUNS", "Exports", "actuals", "backtest", "cut_exports", "fit_before", "read_exports"]

DEFAULT_RUNS = 200
"""Replications of the forecast: P10 and P90 of 200 draws are within about ±0.03 in probability."""
DATE_TIME = "%Y-%m-%d %H:%M:%S"  # how the cut exports write dates (read back with --date-format)
PIPELINE_FILE = "calibrated.pipeline.csv"


@dataclass(frozen=True)
class Exports:
    """The exports as read (whole), and the stage labels ``--map`` gave outcomes."""

    opportunities: Table
    leads: Table | None
    history: Table | None
    stages: dict[str, str]

    def first_created(self) -> pd.Timestamp:
        """When the first usable deal was created."""
        created = self.opportunities.rows["created"]
        if created.empty:
            raise CalibrationError(
                f"{self.opportunities.path}: no usable rows (every row was rejected; see the messy rows)"
            )
        return pd.Timestamp(created.min())

    def last_date(self) -> pd.Timestamp:
        """The latest date anywhere in the exports (the export is taken as pulled the day after)."""
        rows = self.opportunities.rows
        latest = pd.concat([rows["created"], rows["closed"]]).max()
        if self.leads is not None:
            latest = max(latest, self.leads.rows[["created", "mql", "sql", "opportunity"]].max().max())
        if self.history is not None and len(self.history.rows):
            latest = max(latest, self.history.rows["date"].max())
        return pd.Timestamp(latest)


def read_exports(
    opportunities: str | Path,
    leads: str | Path | None = None,
    history: str | Path | None = None,
    *,
    fmt: str | None = None,
    mapping: Sequence[str] = (),
    dayfirst: bool | None = None,
    date_format: str | None = None,
) -> Exports:
    """Read the exports whole, as :func:`funnelsim.calibrate.calibrate` reads them."""
    columns, stages = parse_mapping(mapping)
    opps = read_opportunities(opportunities, fmt, columns, stages, dayfirst, date_format)
    lead_table = read_leads(leads, fmt, columns, dayfirst, date_format) if leads is not None else None
    hist = read_history(history, fmt, columns, dayfirst, date_format) if history is not None else None
    return Exports(opps, lead_table, hist, stages)


def _stamp(values: pd.Series) -> pd.Series:
    return values.dt.strftime(DATE_TIME).fillna("")


def _amount_text(values: pd.Series) -> list[str]:
    # Positional digits, never an exponent: the reader takes "1e+16" for text, and a float round-trips exactly.
    return ["" if pd.isna(a) else np.format_float_positional(float(a), trim="-") for a in values]


def cut_exports(exports: Exports, cut: pd.Timestamp, folder: Path) -> tuple[Path, Path | None, Path | None, list[str]]:
    """Write the exports as they stood at ``cut`` into ``folder`` as generic CSV files; return their
    paths (leads and history None when not given) and notes on what the cut dropped."""
    notes: list[str] = []
    rows = exports.opportunities.rows
    before = rows[rows["created"] < cut]
    closed = before["closed"].where((before["outcome"] != "open") & (before["closed"] < cut))
    pd.DataFrame(
        {
            "id": before["id"].astype(str),
            "created": _stamp(before["created"]),
            "closed": _stamp(closed),
            "status": before["outcome"].where(closed.notna(), "open"),
            "amount": _amount_text(before["amount"]),
            "owner": before["owner"].astype(str),
            "source": before["source"].astype(str),
            "segment": before["segment"].astype(str),
        }
    ).to_csv(folder / "opportunities.csv", index=False)
    leads = history = None
    if exports.leads is not None:
        leads = folder / "leads.csv"
        notes += _cut_leads(exports.leads.rows, cut, leads)
    if exports.history is not None:
        history = folder / "history.csv"
        hist = exports.history.rows
        hist = hist[hist["date"] < cut]
        frame = {"id": hist["id"].astype(str), "date": _stamp(hist["date"]), "stage": hist["stage"].astype(str)}
        pd.DataFrame(frame).to_csv(history, index=False)
    return folder / "opportunities.csv", leads, history, notes


def _cut_leads(rows: pd.DataFrame, cut: pd.Timestamp, path: Path) -> list[str]:
    """The leads created before ``cut``, with their later stage dates blanked; notes on what was dropped."""
    before = rows[rows["created"] < cut]
    seen = {stage: before[stage].where(before[stage] < cut) for stage in ("mql", "sql", "opportunity")}
    undated = int((before["converted"] & before["opportunity"].isna()).sum())
    pd.DataFrame(
        {
            "id": before["id"].astype(str),
            "created": _stamp(before["created"]),
            **{stage: _stamp(values) for stage, values in seen.items()},
            "converted": np.where(seen["opportunity"].notna(), "true", "false"),
            "source": before["source"].astype(str),
        }
    ).to_csv(path, index=False)
    if undated:
        return [
            f"leads: {undated} lead(s) flagged converted without a conversion date are counted as not converted "
            "(the flag may have been set after the cut-off)"
        ]
    return []


def _stage_items(stages: dict[str, str]) -> tuple[str, ...]:
    """``--map`` stage items for the cut files (whose status column says won, lost or open itself)."""
    return tuple(f"{label}={outcome}" for label, outcome in stages.items() if label not in ("won", "lost", "open"))


def fit_before(
    exports: Exports,
    as_of: dt.date,
    folder: Path,
    *,
    base: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[Calibration, list[str]]:
    """Calibrate on the exports cut at 00:00 on ``as_of`` (files written into ``folder``); return the
    calibration and notes on the cut. Nothing dated on or after the cut reaches the fit."""
    opps, leads, history, notes = cut_exports(exports, pd.Timestamp(as_of), folder)
    cal = calibrate(
        opps,
        leads,
        history,
        fmt="generic",
        mapping=_stage_items(exports.stages),
        # calibrate's as-of date is the end of that day: the end of the day before the cut is 00:00 on
        # it, so the calibrated scenario starts on the cut-off, the first day forecast.
        as_of=as_of - dt.timedelta(days=1),
        base=base,
        date_format=DATE_TIME,
        pipeline_file=PIPELINE_FILE,
        name=f"backtest-{as_of.isoformat()}",
        progress=progress,
    )
    return cal, notes


def actuals(rows: pd.DataFrame, quarters: Sequence[Quarter]) -> pd.DataFrame:
    """Wins and won value per quarter among ``rows`` (an opportunities table as read): won deals by
    close date; ``won_without_amount`` counts the wins that have no amount (not in ``won_value``)."""
    won = rows[rows["outcome"] == "won"]
    out = []
    for q in quarters:
        mine = won[(won["closed"] >= pd.Timestamp(q.start)) & (won["closed"] < pd.Timestamp(q.end))]
        out.append(
            {
                "quarter": q.number,
                "label": q.label,
                "wins": len(mine),
                "won_value": float(mine["amount"].sum()),
                "won_without_amount": int(mine["amount"].isna().sum()),
            }
        )
    return pd.DataFrame(out)


def _check_window(exports: Exports, as_of: dt.date, quarters: list[Quarter]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Refuse a cut-off outside the export, or quarters running past its end; return (first, last) dates."""
    first, last = exports.first_created(), exports.last_date()
    name = exports.opportunities.path.name
    if pd.Timestamp(as_of) <= first:
        raise CalibrationError(
            f"--as-of {as_of}: on or before the first deal of {name} ({first.date()}); nothing to fit on. "
            f"The export runs from {first.date()} to {last.date()}"
        )
    pulled = (last.normalize() + pd.Timedelta(days=1)).date()
    if pd.Timestamp(as_of) >= pd.Timestamp(pulled):
        raise CalibrationError(
            f"--as-of {as_of}: after the last date of {name} ({last.date()}); nothing to score. "
            f"The export runs from {first.date()} to {last.date()}"
        )
    end = quarters[-1].end
    if end > pulled:
        raise CalibrationError(
            f"--quarters {len(quarters)}: the last quarter ({quarters[-1].label}) ends {end - dt.timedelta(days=1)}, "
            f"after the last date of {name} ({last.date()}), so its actuals are incomplete; "
            "ask for fewer quarters or an earlier --as-of"
        )
    return first, last


def _forecast_scenario(cal: Calibration, folder: Path) -> Scenario:
    """The calibrated scenario as ``calibrate --out`` writes it, loaded with its open pipeline."""
    if not cal.pipeline_supported:
        raise CalibrationError("this funnelsim cannot start a scenario from an open pipeline; no back-test possible")
    (folder / PIPELINE_FILE).write_text(cal.pipeline.to_csv(index=False), encoding="utf-8")
    path = folder / "calibrated.toml"
    path.write_text(cal.text(), encoding="utf-8")
    try:
        return load_scenario(path)
    except ScenarioError as exc:
        raise CalibrationError(f"the calibrated scenario does not load (a bug, please report): {exc}") from None


def backtest(
    opportunities: str | Path,
    *,
    as_of: str | dt.date,
    quarters: int = 3,
    leads: str | Path | None = None,
    history: str | Path | None = None,
    fmt: str | None = None,
    mapping: Sequence[str] = (),
    base: str | Path | None = None,
    dayfirst: bool | None = None,
    date_format: str | None = None,
    runs: int = DEFAULT_RUNS,
    seed: int | None = None,
    pool: Executor | None = None,
    progress: Callable[[str], None] | None = None,
    budget: Budget | None = None,
) -> Backtest:
    """Fit on the exports before ``as_of``, forecast ``quarters`` quarters after it, score what happened.

    Parameters
    ----------
    opportunities, leads, history
        The whole exports (they must reach the end of the last quarter: the actuals are read from them).
    as_of
        The cut-off date (``YYYY-MM-DD`` or a date): the fit sees what happened before 00:00 that day.
    quarters
        How many quarters to forecast and score (see :mod:`funnelsim.studies.backtest` for where they start).
    runs, seed, pool, budget
        The forecast's replications (seed default: the base scenario's).
    fmt, mapping, base, dayfirst, date_format
        As for :func:`funnelsim.calibrate.calibrate`.

    Raises
    ------
    CalibrationError
        Bad dates, quarters < 1, a cut-off outside the export, quarters past its end, or anything
        :func:`~funnelsim.calibrate.calibrate` refuses (each message names the option or file).
    """
    phase = progress or (lambda _: None)
    day = as_of_date(as_of) if isinstance(as_of, str) else as_of
    if day is None:
        raise CalibrationError("--as-of: a cut-off date is needed (YYYY-MM-DD)")
    try:
        windows = quarters_after(day, quarters)
    except BacktestError as exc:
        raise CalibrationError(str(exc)) from None
    phase("reading the exports")
    exports = read_exports(
        opportunities, leads, history, fmt=fmt, mapping=mapping, dayfirst=dayfirst, date_format=date_format
    )
    first, last = _check_window(exports, day, windows)
    with tempfile.TemporaryDirectory(prefix="funnelsim-backtest-") as tmp:
        cal, notes = fit_before(exports, day, Path(tmp), base=base, progress=phase)
        scenario = _forecast_scenario(cal, Path(tmp))

    def replications_done(done: int, total: int) -> None:
        phase(f"forecasting: {done} of {total} replications")

    phase("forecasting")
    reps, table = forecast(scenario, windows, runs, seed, pool, progress=replications_done, budget=budget)
    actual = actuals(exports.opportunities.rows, windows)
    scores = score_quarters(table, actual, windows)
    facts = _facts(exports, cal, day, windows, first, last)
    notes += _notes(exports, actual, windows, day)
    name = exports.opportunities.path.name
    return Backtest(day, windows, reps, table, actual, scores, name, facts, notes, calibration=cal)


def _facts(
    exports: Exports, cal: Calibration, day: dt.date, windows: list[Quarter], first: pd.Timestamp, last: pd.Timestamp
) -> dict[str, Any]:
    """What the back-test stood on: the export's span, the deals the fit saw, the pipeline at the cut."""
    rows = exports.opportunities.rows
    before = rows["created"] < pd.Timestamp(day)
    return {
        "export_first_created": first.date().isoformat(),
        "export_last_date": last.date().isoformat(),
        "deals_in_export": len(rows),
        "rows_rejected": len(exports.opportunities.issues),
        "deals_before_cutoff": int(before.sum()),
        "open_at_cutoff": len(cal.pipeline),
        "days_not_scored": (windows[0].start - day).days,
        "win_probability": cal.win["competing_risks"],
        "cycle_mean_days": cal.best.mean,
        "cycle_family": cal.best.family,
    }


def _notes(exports: Exports, actual: pd.DataFrame, windows: list[Quarter], day: dt.date) -> list[str]:
    """What a reader of the scores should know: unscored days, wins without amount, rejected rows."""
    notes = []
    if windows[0].start > day:
        notes.append(
            f"the {(windows[0].start - day).days} day(s) from {day} to {windows[0].start} are simulated but not "
            "scored (quarters are whole calendar months)"
        )
    missing = int(actual["won_without_amount"].sum())
    if missing:
        notes.append(
            f"{missing} won deal(s) in the scored quarters have no amount: counted in wins, not in won value "
            "(the forecast gives every win a deal size, so won value is scored low)"
        )
    rejected = len(exports.opportunities.issues)
    if rejected:
        notes.append(
            f"{exports.opportunities.path.name}: {rejected} row(s) rejected (messy), in neither fit nor actuals"
        )
    return notes
