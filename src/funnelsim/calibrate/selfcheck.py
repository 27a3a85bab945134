r"""Does the calibrated scenario reproduce the history it was fitted on? Observed months against simulated ranges.

The calibrated scenario is simulated over the history window, many replications with a
fixed seed (each drawing its uncertain rates, e.g. the win rate's Beta), and each calendar
month's observed opportunities created, wins and won value are set against the P10-P90 of
the simulated months.

Start state
    A plain run starts from an empty company (cold start): no leads in nurture, no deals
    open. The simulation starts as the history does. A history that ramps up from its first
    deal (a business, or its use of the CRM, starting then) is simulated from empty on that
    day. A history that starts **mid-stream** (:func:`~funnelsim.calibrate.diagnostics.truncation`:
    its first month already at the usual rate, an import on day one, stage changes before the
    first deal) is simulated from a **lead-in** before the first month compared: the base's
    ``max_nurture_days`` (the longest a lead nurtures before it is an MQL or dormant) plus 30
    days (SDR and AE queues), rounded back to the first of a month, so the months compared are
    fed as in a going business. Either way wins and won value are compared only from the first
    month starting a P90 sales cycle after the export's first deal: before that the export's
    own wins lack the deals opened before it began (if truncated) and the simulation's are
    still filling up. (When scenarios can start ``"warm"``, the lead-in can be replaced by a
    burn-in; the table states which start was used.)

Rule
    If the model is right, each month falls outside its P10-P90 with probability 0.2. With
    ``n`` months compared for one quantity, the check fails when more months are outside than
    the :math:`1 - 0.05/3` quantile of :math:`\mathrm{Binomial}(n, 0.2)` (Bonferroni over
    the three quantities: about a 5% false alarm if months were independent). Months of one
    history are not independent (a drawn win rate shifts them all), so the false alarm is
    somewhat higher; ``tests/test_selfcheck.py`` measures it on histories the calibration did
    not choose. Too few months compared make a quantity impossible to fail: the table says so.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from funnelsim.model.scenario import Scenario
from funnelsim.studies.replications import run
from funnelsim.studies.workload import UNLIMITED, estimate, workers_of

__all__ = [
    "CHECK_RUNS",
    "CHECK_SEED",
    "QUANTITIES",
    "SelfCheck",
    "Window",
    "allowed_outside",
    "history_window",
    "lead_in_days",
    "self_check",
    "window_raw",
    "window_start",
]

CHECK_RUNS = 100
CHECK_SEED = 20_160
MIN_RUNS = 20
OUTSIDE_P = 0.2  # outside P10-P90
FAMILY_ALPHA = 0.05
QUANTITIES = {"opportunities": "opportunities", "wins": "wins", "won_value": "revenue"}
"""Observed column -> the simulated monthly column it is compared with."""
QUEUE_MARGIN_DAYS = 30


def lead_in_days(max_nurture_days: float) -> float:
    """Days simulated before the first month compared: the longest nurture, plus SDR and AE queues."""
    return float(max_nurture_days) + QUEUE_MARGIN_DAYS


def window_start(first_compared: dt.date, lead_in: float) -> dt.date:
    """The first of the month ``lead_in`` days or more before ``first_compared``."""
    day = first_compared - dt.timedelta(days=math.ceil(lead_in))
    return day.replace(day=1)


@dataclass(frozen=True)
class Window:
    """The history window simulated: from ``start`` (cold) to ``end`` (the end of the as-of day).

    The observed flow is measured over ``[measure_from, measure_to)`` (the full months, or the
    whole export when it has none); wins and won value are compared from month ``wins_from``.
    ``lead_in_days`` is 0 when the simulation starts cold on the history's first deal (a history
    that ramps up from zero), else the days simulated before ``measure_from`` (mid-stream).
    """

    start: dt.date
    end: pd.Timestamp
    measure_from: pd.Timestamp
    measure_to: pd.Timestamp
    wins_from: str
    lead_in_days: float

    def day(self, when: pd.Timestamp) -> float:
        """Days from the window's start to ``when``."""
        return float((when - pd.Timestamp(self.start)) / pd.Timedelta(days=1))

    @property
    def horizon_days(self) -> float:
        return self.day(self.end)

    def describe(self) -> str:
        """How the window starts, for the table and the report."""
        if self.lead_in_days == 0:
            return (
                f"cold start on {self.start}, the day of the first deal: the history ramps up from zero, as a "
                "simulation from an empty company does"
            )
        return (
            f"cold start on {self.start}, {(self.measure_from.date() - self.start).days} days before the first month "
            f"compared (lead-in >= {self.lead_in_days:.0f} days: the history starts mid-stream)"
        )


def history_window(
    observed: pd.DataFrame, cut: pd.Timestamp, lead_in: float, cycle_p90_days: float, mid_stream: bool
) -> Window:
    """The window to simulate for ``observed`` (:func:`~funnelsim.calibrate.diagnostics.observed_months`).

    ``mid_stream`` (a truncated start, :func:`~funnelsim.calibrate.diagnostics.truncation`): the
    simulation starts ``lead_in`` days before the first month compared, so those months are fed as
    in a going business; otherwise it starts empty on the first deal's day, as the history did.
    """
    months = pd.PeriodIndex(observed["month"], freq="M")
    full = observed["full"].to_numpy(bool)
    first_deal = cut - pd.Timedelta(days=int(observed["days_observed"].sum()))
    if full.any():
        measure_from = months[full][0].start_time
        measure_to = months[full][-1].end_time.normalize() + pd.Timedelta(days=1)
    else:
        measure_from, measure_to = first_deal, cut
    ready = first_deal + pd.Timedelta(days=float(cycle_p90_days))
    wins_from = str(ready.to_period("M") + (0 if ready == ready.to_period("M").start_time else 1))
    if mid_stream:
        return Window(window_start(measure_from.date(), lead_in), cut, measure_from, measure_to, wins_from, lead_in)
    return Window(first_deal.date(), cut, measure_from, measure_to, wins_from, 0.0)


def window_raw(document: Any, window: Window) -> dict[str, Any]:
    """The calibrated scenario's data (a tomlkit document) moved to the history window.

    Cold, without the initial pipeline (the window starts empty), no hires (the team of the as-of date
    throughout), ``start_date`` and ``horizon_days`` of the window.
    """
    import tomllib

    import tomlkit

    raw: dict[str, Any] = tomllib.loads(tomlkit.dumps(document))
    raw.pop("initial_pipeline", None)
    raw["start"] = "cold"  # empty at the window's start; a mid-stream history gets the lead-in instead
    raw["start_date"] = window.start
    raw["horizon_days"] = window.horizon_days
    raw["sales"]["ae"]["hires"] = []
    return raw


def allowed_outside(n: int) -> int:
    """Most months of ``n`` that may fall outside P10-P90 before the check fails (see the module docstring)."""
    if n <= 0:
        return 0
    return int(stats.binom.ppf(1 - FAMILY_ALPHA / len(QUANTITIES), n, OUTSIDE_P))


@dataclass
class SelfCheck:
    """The self-check: one row per month and quantity (``table``), the verdict per quantity, and how it ran.

    ``passed`` is None when the check did not run (``note`` says why).
    """

    table: pd.DataFrame
    verdicts: pd.DataFrame
    passed: bool | None
    runs: int
    seed: int
    start: str
    rule: str
    note: str = ""
    failures: list[str] = field(default_factory=list)


RULE = (
    "fails when, for any of opportunities, wins and won value, more months fall outside the simulated P10-P90 "
    "than the 98.3% quantile of Binomial(months compared, 0.2) (Bonferroni over the three: ~5% false alarm "
    "for independent months)"
)


def skipped(note: str, start: str = "") -> SelfCheck:
    """A self-check that did not run, and why."""
    return SelfCheck(pd.DataFrame(), pd.DataFrame(), None, 0, CHECK_SEED, start, RULE, note)


def self_check(
    window: Scenario,
    observed: pd.DataFrame,
    wins_from: str,
    *,
    runs: int = CHECK_RUNS,
    seed: int = CHECK_SEED,
    pool: Executor | None = None,
    budget_seconds: float = math.inf,
    start: str = "",
    progress: Callable[[str], None] | None = None,
) -> SelfCheck:
    """Simulate ``window`` ``runs`` times and set each observed month against the simulated P10-P90.

    Parameters
    ----------
    window
        The calibrated scenario over the history window (starting on the first of a month).
    observed
        :func:`funnelsim.calibrate.diagnostics.observed_months`.
    wins_from
        The first month (``YYYY-MM``) whose wins and won value are compared.
    runs, seed, pool
        Replications (fewer if ``budget_seconds`` cannot pay for them, never fewer than
        :data:`MIN_RUNS`: then the check is skipped), their seed and executor.
    start
        How the window starts (cold with a lead-in, ...), stated in the table.
    """
    if runs <= 0:
        return skipped("not run (--check-runs 0)", start)
    workers = workers_of(pool)
    per_run = estimate(window, 1, 1).seconds
    affordable = runs if per_run <= 0 or math.isinf(budget_seconds) else int(budget_seconds * workers / per_run)
    if affordable < min(runs, MIN_RUNS):
        return skipped(
            f"not run: one replication of the {window.horizon_days:.0f}-day history window is estimated at "
            f"{per_run:,.0f} s, and {MIN_RUNS} runs do not fit the {budget_seconds:,.0f} s budget",
            start,
        )
    used = min(runs, affordable)
    counted = None
    if progress is not None:
        tell = progress
        expected = estimate(window, used, workers).headline().split(" (")[0]  # "about 12 s on 2 workers"
        progress(f"self-check: simulating the history window ({used} runs, {expected})")

        def counted(done: int, total: int) -> None:
            tell(f"self-check: simulating the history window ({done}/{total} runs, {expected})")

    reps = run(window, used, seed, pool, progress=counted, budget=UNLIMITED)
    reps.raise_if_interrupted()
    table = compare_months(observed, reps.monthly, wins_from, start)
    verdicts = judge(table)
    failures = [
        f"{r.quantity}: {r.outside} of {r.months} months outside P10-P90 (at most {r.allowed} allowed)"
        for r in verdicts.itertuples()
        if not r.passed
    ]
    notes = (
        []
        if used == runs
        else [f"{used} of the {runs} runs asked: the rest do not fit the {budget_seconds:,.0f} s budget"]
    )
    if not verdicts["can_fail"].any():
        notes.append("too few full months compared for any quantity to fail: the check cannot say much")
    note = "; ".join(notes)
    return SelfCheck(table, verdicts, not failures, used, seed, start, RULE, note, failures)


def compare_months(observed: pd.DataFrame, monthly: pd.DataFrame, wins_from: str, start: str) -> pd.DataFrame:
    """One row per month and quantity: observed, simulated P10/P50/P90, compared, outside (``below``/``above``)."""
    rows: list[dict[str, Any]] = []
    by_month = {m: g for m, g in monthly.groupby("month")}
    for r in observed.to_dict("records"):
        sim = by_month.get(r["month"])
        for quantity, column in QUANTITIES.items():
            compared = bool(r["full"]) and sim is not None and (quantity == "opportunities" or r["month"] >= wins_from)
            p10 = p50 = p90 = math.nan
            if sim is not None:
                p10, p50, p90 = (float(v) for v in np.percentile(sim[column].to_numpy(float), [10, 50, 90]))
            value = float(r[quantity])
            side = ""
            if compared:
                side = "below" if value < p10 else "above" if value > p90 else "inside"
            rows.append(
                {
                    "month": r["month"],
                    "quantity": quantity,
                    "observed": value,
                    "sim_p10": p10,
                    "sim_p50": p50,
                    "sim_p90": p90,
                    "compared": compared,
                    "position": side,
                    "why_not_compared": _why_not(r, sim, quantity, wins_from) if not compared else "",
                    "simulation_start": start,
                }
            )
    return pd.DataFrame(rows)


def _why_not(r: dict[str, Any], sim: Any, quantity: str, wins_from: str) -> str:
    if not r["full"]:
        return f"partial month ({r['days_observed']} days observed)"
    if sim is None:
        return "not simulated"
    return f"before {wins_from} (a P90 sales cycle after the first deal)"


def judge(table: pd.DataFrame) -> pd.DataFrame:
    """Per quantity: months compared, months outside P10-P90, the most allowed, and whether it passes."""
    rows = []
    for quantity in QUANTITIES:
        mine = table[(table["quantity"] == quantity) & table["compared"]]
        n = len(mine)
        outside = int((mine["position"] != "inside").sum())
        allowed = allowed_outside(n)
        rows.append(
            {
                "quantity": quantity,
                "months": n,
                "outside": outside,
                "allowed": allowed,
                "passed": outside <= allowed,
                "can_fail": allowed < n,
            }
        )
    return pd.DataFrame(rows)
