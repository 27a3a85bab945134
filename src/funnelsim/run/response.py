r"""How fast sales answers, in calendar and in working time: pure functions of a run's event log.

Only for a scenario with a working calendar (``[calendar]`` and a team's ``working_hours``,
:mod:`funnelsim.model.workcal`); a scenario without one reports none of this.

Passes
    Each ``mql`` event that sales follows up (no ``not_followed_up`` after it) is a *pass*
    handed to the SDR team at time ``m``; an SDR starts on it at ``s`` (``sdr_start``) or it
    goes cold waiting, or is still waiting at the end. Its response time is ``s − m`` in
    calendar (elapsed) time and ``W(s) − W(m)`` in the SDR team's working time
    (:class:`~funnelsim.model.workcal.WorkingTime`). A warm run's passes handed over before
    day 0 are left out.
Arrival class
    A pass arrives in the SDR team's working hours, outside them on a working day, or on a
    weekend day or holiday (:data:`~funnelsim.model.workcal.ARRIVAL_CLASSES`), in the
    team's own time zone.
Answered within 5 minutes
    The share of the passes of a class that an SDR started within 5 minutes of elapsed time
    (passes never started count as not answered): the speed-to-lead studies' first band.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from funnelsim.model.workcal import ARRIVAL_CLASSES, WorkingTime, clock_of
from funnelsim.vocabulary import EVENTS

if TYPE_CHECKING:
    from funnelsim.run.result import RunResult

__all__ = [
    "FIVE_MINUTES_DAYS",
    "WorkingClock",
    "has_calendar",
    "response_summary",
    "sdr_passes",
    "speed_to_lead_by_arrival",
    "working_clock",
]

FIVE_MINUTES_DAYS = 5 / 1440
HOURS_PER_DAY = 24.0

WorkingClock = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``(times, leads) -> W(times)``: a team's working time at each time, for the lead it concerns."""


def has_calendar(result: RunResult, team: str = "sdr") -> bool:
    """True if the run's scenario gives ``team`` (``"sdr"`` or ``"ae"``) working hours."""
    which: Literal["sdr", "ae"] = "sdr" if team == "sdr" else "ae"
    return clock_of(result.scenario, which) is not None


def working_clock(result: RunResult, team: str) -> WorkingClock | None:
    """``team``'s working time over the run's reported window, or None without working hours.

    With segments (a ``segment`` column in the leads' attributes) each lead is read on the
    clock of its segment's team (:meth:`~funnelsim.model.scenario.Scenario.view_of`).
    """
    which: Literal["sdr", "ae"] = "sdr" if team == "sdr" else "ae"
    if "segment" not in result.attributes.columns:
        clock = clock_of(result.scenario, which)
        if clock is None:
            return None
        return lambda times, leads: clock.working(times)
    segment = result.attributes["segment"].astype(str).to_numpy()
    clocks: dict[str, WorkingTime | None] = {
        name: clock_of(result.scenario.view_of(str(name)), which) for name in np.unique(segment)
    }
    if all(c is None for c in clocks.values()):
        return None

    def by_segment(times: np.ndarray, leads: np.ndarray) -> np.ndarray:
        out = np.asarray(times, dtype=float).copy()  # a segment without hours: working time is calendar time
        for name, clock in clocks.items():
            mine = segment[leads] == name
            if clock is not None and mine.any():
                out[mine] = clock.working(out[mine])
        return out

    return by_segment


def sdr_passes(events: pd.DataFrame) -> pd.DataFrame:
    """One row per MQL pass sales follows up (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        ``lead``, ``mql`` (time handed over), ``start`` (time an SDR started, NaN if none),
        ``sql`` (the pass ended as an SQL), in order of ``mql``.
    """
    code = pd.Categorical(events["event"].astype(str), categories=list(EVENTS)).codes.astype(np.int64)
    time = events["time"].to_numpy(float)
    lead = events["lead"].to_numpy(np.int64)
    order = np.lexsort((np.arange(len(time)), time, lead))  # by lead, then time, then log order
    code, time, lead = code[order], time[order], lead[order]

    def ahead(k: int, a: np.ndarray, fill: float | int) -> np.ndarray:
        out = np.full(len(a), fill, dtype=a.dtype)
        out[: len(a) - k] = a[k:]
        return out

    def same(k: int) -> np.ndarray:
        return ahead(k, lead, -1) == lead

    is_ = {name: EVENTS.index(name) for name in ("mql", "not_followed_up", "sdr_queued", "sdr_start", "sql")}
    passes = (code == is_["mql"]) & ~(same(1) & (ahead(1, code, -1) == is_["not_followed_up"]))
    at_once = same(1) & (ahead(1, code, -1) == is_["sdr_start"])
    queued = same(2) & (ahead(1, code, -1) == is_["sdr_queued"]) & (ahead(2, code, -1) == is_["sdr_start"])
    start = np.where(at_once, ahead(1, time, np.nan), np.where(queued, ahead(2, time, np.nan), np.nan))
    outcome = np.where(at_once & same(2), ahead(2, code, -1), np.where(queued & same(3), ahead(3, code, -1), -1))
    out = pd.DataFrame(
        {"lead": lead[passes], "mql": time[passes], "start": start[passes], "sql": (outcome == is_["sql"])[passes]}
    )
    return out.sort_values("mql", kind="stable").reset_index(drop=True)


def speed_to_lead_by_arrival(
    passes: pd.DataFrame, clock: WorkingTime, working: WorkingClock | None = None, horizon_days: float | None = None
) -> pd.DataFrame:
    """How fast MQLs are answered by when they arrive: in the SDR team's hours, outside them, on days off.

    Parameters
    ----------
    passes
        :func:`sdr_passes` of the run.
    clock
        The SDR team's working time (classifies the arrivals).
    working
        The working time used for response times (default: ``clock``'s; per segment with
        :func:`working_clock`).
    horizon_days
        Passes handed over at or after it are left out (none: all from day 0).

    Returns
    -------
    pandas.DataFrame
        One row per :data:`~funnelsim.model.workcal.ARRIVAL_CLASSES` and ``all``:
        ``arrival``, ``mqls`` (passes handed over), ``share_of_mqls``,
        ``answered_within_5_min`` (share started within 5 minutes of elapsed time),
        ``median_response_hours`` and ``median_response_working_hours`` (of the passes an
        SDR started), ``sql_share`` (share of the passes that became an SQL).
    """
    inside = passes["mql"].to_numpy(float) >= 0
    if horizon_days is not None:
        inside &= passes["mql"].to_numpy(float) < horizon_days
    p = passes[inside]
    m, s, leads = p["mql"].to_numpy(float), p["start"].to_numpy(float), p["lead"].to_numpy(np.int64)
    w = working or (lambda times, _: clock.working(times))
    started = ~np.isnan(s)
    elapsed = s - m
    worked = np.full(len(m), np.nan)
    worked[started] = w(s[started], leads[started]) - w(m[started], leads[started])
    kind = clock.arrival_class(m)
    rows = []
    for index, name in enumerate((*ARRIVAL_CLASSES, "all")):
        mine = kind == index if name != "all" else np.ones(len(m), dtype=bool)
        n, done = int(mine.sum()), mine & started
        rows.append(
            {
                "arrival": name,
                "mqls": n,
                "share_of_mqls": n / len(m) if len(m) else np.nan,
                "answered_within_5_min": float((elapsed[done] <= FIVE_MINUTES_DAYS).sum() / n) if n else np.nan,
                "median_response_hours": float(np.median(elapsed[done]) * HOURS_PER_DAY) if done.any() else np.nan,
                "median_response_working_hours": float(np.median(worked[done]) * HOURS_PER_DAY)
                if done.any()
                else np.nan,
                "sql_share": float(p["sql"].to_numpy(bool)[mine].mean()) if n else np.nan,
            }
        )
    return pd.DataFrame(rows)


def response_summary(result: RunResult) -> dict[str, float]:
    """The calendar keys of :func:`funnelsim.run.metrics.summarize_run`, for a run whose SDR team has
    working hours (else an empty dict).

    ``mqls_in_hours_share`` (passes handed over in the SDR team's hours),
    ``answered_5min_in_hours`` and ``answered_5min_off_hours`` (answered within 5 minutes,
    of those arriving in hours and of the others), ``sdr_response_days_mean`` and
    ``sdr_response_working_days_mean`` (mean time from MQL to an SDR starting, elapsed and
    in the SDR team's working time, of the passes started).
    """
    clock = clock_of(result.scenario, "sdr")
    if clock is None:
        return {}
    horizon = float(result.scenario.horizon_days)
    passes = sdr_passes(result.events)
    passes = passes[(passes["mql"] >= 0) & (passes["mql"] < horizon)]
    m, s, leads = passes["mql"].to_numpy(float), passes["start"].to_numpy(float), passes["lead"].to_numpy(np.int64)
    started = ~np.isnan(s)
    working = working_clock(result, "sdr")
    assert working is not None
    fast = started & (s - m <= FIVE_MINUTES_DAYS)
    in_hours = clock.arrival_class(m) == 0
    worked = working(s[started], leads[started]) - working(m[started], leads[started])

    def share(x: np.ndarray, of: np.ndarray) -> float:
        return float(x[of].mean()) if of.any() else np.nan

    return {
        "mqls_in_hours_share": float(in_hours.mean()) if len(m) else np.nan,
        "answered_5min_in_hours": share(fast, in_hours),
        "answered_5min_off_hours": share(fast, ~in_hours),
        "sdr_response_days_mean": float((s - m)[started].mean()) if started.any() else np.nan,
        "sdr_response_working_days_mean": float(worked.mean()) if started.any() else np.nan,
    }
