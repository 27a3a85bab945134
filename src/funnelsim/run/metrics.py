"""Metrics: pure functions of a run's tables (event log, level log, roster, per-lead table).

Nothing here simulates or reads files: every function takes DataFrames (see
:mod:`funnelsim.vocabulary` for their columns) and returns a DataFrame or a dict.
Times are days since the scenario's ``start_date``; a time ``t`` falls on the
calendar day ``start_date + floor(t)``, and months ("2027-01") and quarters
("2027Q1") are those of that day.

Definitions
-----------
Volumes (tallies of distinct leads)
    ``V(m)`` = number of distinct leads with at least one event ``m`` for each
    milestone ``m`` in :data:`FUNNEL` (created, mql, sql, opportunity, won). A
    recycled lead that becomes an MQL twice is one MQL.
Conversion (cohort)
    ``C(a -> b) = |{leads that reached a and b}| / V(a)``. Deals AEs prospected
    themselves (source "prospecting") skip MQL and SQL: they count in the
    opportunity and win volumes but not in the MQL-to-SQL or SQL-to-opportunity
    conversions.
Monthly volumes and flow ratios (:func:`stages_by_month`)
    A lead counts in the month it *first* reached a milestone, so the monthly
    volumes sum to ``V(m)``. The monthly ratio ``V_month(b) / V_month(a)`` is a
    *flow* ratio of two volumes of the same month, not a cohort conversion: the
    SQLs of March mostly come from MQLs of February or earlier, and prospected deals
    add opportunities without SQLs, so a monthly ratio can exceed 1.
Time in stage, days (:func:`time_in_stage`)
    For each lead that reached both milestones, ``T(a -> b) = t_first(b) - t_first(a)``
    (first time at each), summarised by n, mean, median and P90. Close is the first
    ``won`` or ``lost``.
Revenue (:func:`revenue_by_period`)
    Booked at the close date: ``R(p) = sum of won values closed in period p``;
    average deal size ``R(p) / wins(p)``; win rate ``wins / (wins + losses)``.
Leakage (:func:`leakage`)
    A lead's *final state* is ``STATE_AFTER[last event]``
    (:data:`funnelsim.vocabulary.STATE_AFTER`). Every lead is in exactly one final
    state, so ``sum(leak rows) + wins + still_open = V(created)``. Share of leads =
    rows / ``V(created)``.
Levels (time-weighted, :func:`time_weighted_mean`, :func:`utilisation`)
    The level log is a step function per team: a row's value holds until the next
    row of that team (of several rows at one time the last holds; before the first
    row the value is 0). Over a window ``[s, e)``:
    ``mean(x) = (1 / (e - s)) * integral_s^e x(t) dt`` and
    ``utilisation = integral busy(t) dt / integral capacity(t) dt``, the ratio of
    the time-weighted means (not the mean of the ratio), in [0, 1]. Per month
    (:func:`capacity_by_month`) the window is the part of the month inside the run;
    the SDR wait is the response delay since MQL (``value`` of ``sdr_start``), the AE
    wait the days from a lead's latest SQL to its opportunity.
Initial pipeline
    Deals already open on day 0 (a scenario's ``initial_pipeline``) enter the log
    with an ``opportunity`` at time 0 and no ``created``: they count as
    opportunities, wins, losses and revenue, never as leads, MQLs or SQLs (source
    "pipeline" in the per-lead table). Cycle times (``median_cycle_days``,
    ``opportunity_to_close``) leave them out, as they opened before the run.
    Leakage counts every entity of the log, so its rows, the wins and the open ones
    add up to ``V(created)`` plus the pipeline's deals.
Pipeline (:func:`pipeline_over_time`)
    ``open(t)`` = opportunities opened minus closed by ``t``; open value likewise
    with deal amounts.
Cost (:func:`costs`)
    ``marketing = sum over leads of cost_per_lead(source)`` (prospected deals cost
    nothing; a lead of a source on a spend curve costs the average on the curve,
    ``spend_per_month / leads_per_month``); ``sales = sum over reps of employed_days * cost_per_year / 365.25``,
    a rep employed (and paid in full while ramping) from its ``joined`` roster row
    until its ``left`` row or the horizon, plus the AEs' commission when they have an
    ``ote_per_year`` (:mod:`funnelsim.run.quotas`). ``cost per MQL = marketing / V(mql)``,
    ``cost per SQL = marketing / V(sql)``,
    ``CAC = cost per win = (marketing + sales) / V(won)``;
    ``revenue per AE = revenue / mean AE headcount`` with
    ``mean headcount = employed rep-days / horizon``.

A ratio whose denominator is 0 is NaN.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from funnelsim.vocabulary import EVENTS, LEAKAGE_REASONS, OPEN_STATES, SEGMENT, STAGES, STATE_AFTER, TEAMS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from funnelsim.model.scenario import Scenario
    from funnelsim.run.response import WorkingClock
    from funnelsim.run.result import RunResult

__all__ = [
    "FUNNEL",
    "SPANS",
    "by_segment",
    "capacity_by_month",
    "conversions",
    "costs",
    "leakage",
    "leakage_counts",
    "period_edges",
    "pipeline_over_time",
    "queue_visits",
    "revenue_by_period",
    "segments_by_month",
    "spend_by_period",
    "stage_volumes",
    "stages_by_month",
    "summarize_run",
    "summarize_segments",
    "summary",
    "time_in_stage",
    "time_weighted_mean",
    "utilisation",
    "yoy_growth",
]

FUNNEL = ("created", *STAGES[1:], "won")
"""Funnel milestones, as event names, top to bottom."""

_SINGULAR = {"created": "lead", "mql": "mql", "sql": "sql", "opportunity": "opportunity", "won": "win"}
STAGE_LABELS = {"created": "leads", "mql": "mqls", "sql": "sqls", "opportunity": "opportunities", "won": "wins"}

SPANS: tuple[tuple[str, str, str], ...] = (
    ("lead_to_mql", "created", "mql"),
    ("mql_to_sql", "mql", "sql"),
    ("sql_to_opportunity", "sql", "opportunity"),
    ("opportunity_to_close", "opportunity", "closed"),
    ("lead_to_win", "created", "won"),
)
"""Stages of :func:`time_in_stage`: ``(name, from milestone, to milestone)``."""


DAYS_PER_YEAR = 365.25

Freq = Literal["month", "quarter"]


# ---------------------------------------------------------------------------
# Small helpers


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def _ratios(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _time_sorted(events: pd.DataFrame) -> pd.DataFrame:
    """The events in time order; ties keep their order (the order they happened in)."""
    if events["time"].is_monotonic_increasing:
        return events
    return events.sort_values("time", kind="stable")


def _first_times(events: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    """First time of each event in ``names`` per lead: index lead, one column per name (NaN: never)."""
    hits = events.loc[events["event"].isin(names), ["lead", "event", "time"]]
    if hits.empty:
        return pd.DataFrame({name: np.array([], dtype=float) for name in names})
    hits = hits.assign(event=hits["event"].astype(str))
    wide = hits.groupby(["lead", "event"], sort=False)["time"].min().unstack("event")
    return wide.reindex(columns=list(names))


class _Log:
    """The event log as numpy columns, for the per-replication summaries (no pandas work per metric).

    ``code`` is the index of each event in :data:`funnelsim.vocabulary.EVENTS` (-1 if unknown).
    """

    def __init__(self, events: pd.DataFrame) -> None:
        event = events["event"]
        if isinstance(event.dtype, pd.CategoricalDtype) and list(event.cat.categories) == list(EVENTS):
            codes = event.cat.codes.to_numpy()
        else:
            codes = pd.Categorical(event.astype(str), categories=list(EVENTS)).codes
        self.code = codes.astype(np.int64)
        self.time = events["time"].to_numpy(float)
        self.lead = events["lead"].to_numpy(np.int64)
        self.value = events["value"].to_numpy(float)
        self.n_leads = int(self.lead.max()) + 1 if len(self.lead) else 0

    def time_sorted(self) -> bool:
        """Whether the log is in time order already."""
        return bool(np.all(self.time[1:] >= self.time[:-1]))

    def rows(self, name: str) -> np.ndarray:
        """Positions of the events ``name``, in log order."""
        return np.flatnonzero(self.code == EVENTS.index(name))

    def first_times(self, name: str) -> np.ndarray:
        """Per lead, the first time of event ``name`` (NaN: never)."""
        rows = self.rows(name)
        first = np.full(self.n_leads, np.inf)
        np.minimum.at(first, self.lead[rows], self.time[rows])
        first[np.isinf(first)] = np.nan
        return first

    def last_times(self, name: str) -> np.ndarray:
        """Per lead, the time of its last event ``name`` in log order (NaN: never)."""
        rows = self.rows(name)
        last = np.full(self.n_leads, np.nan)
        last[self.lead[rows]] = self.time[rows]
        return last

    def reached(self, name: str) -> np.ndarray:
        """Per lead, whether it had at least one event ``name``."""
        hit = np.zeros(self.n_leads, dtype=bool)
        hit[self.lead[self.rows(name)]] = True
        return hit


def _month_codes(times: np.ndarray, start_date: dt.date) -> np.ndarray:
    """Months since 1970-01 of the calendar day ``start_date + floor(time)``."""
    days = np.floor(np.asarray(times, dtype=float)).astype(np.int64).astype("timedelta64[D]")
    return (np.datetime64(start_date, "D") + days).astype("datetime64[M]").astype(np.int64)


def _period_codes(times: np.ndarray, start_date: dt.date, freq: Freq) -> np.ndarray:
    months = _month_codes(times, start_date)
    return months // 3 if freq == "quarter" else months  # 1970-01 starts a quarter


def _period_label(code: int, freq: Freq) -> str:
    if freq == "quarter":
        return f"{1970 + code // 4}Q{code % 4 + 1}"
    return f"{1970 + code // 12:04d}-{code % 12 + 1:02d}"


def _check_freq(freq: str) -> None:
    if freq not in ("month", "quarter"):
        raise ValueError(f"freq must be 'month' or 'quarter', got {freq!r}")


def _check_horizon(horizon_days: float | None) -> None:
    if horizon_days is not None and not horizon_days > 0:
        raise ValueError(f"horizon_days must be > 0, got {horizon_days}")


def _period_range(times: np.ndarray, start_date: dt.date, freq: Freq, horizon_days: float | None) -> tuple[int, int]:
    """First and last period code covering day 0, every event and the horizon's last day."""
    ends = [0.0, *([float(np.min(times)), float(np.max(times))] if len(times) else [])]
    if horizon_days is not None:
        ends.append(math.ceil(horizon_days) - 1.0)  # the last calendar day of the horizon
    codes = _period_codes(np.array(ends), start_date, freq)
    return int(codes.min()), int(codes.max())


def _per_period(codes: np.ndarray, lo: int, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(codes - lo, weights=weights, minlength=n)[:n]


# ---------------------------------------------------------------------------
# Volumes and conversions


def stage_volumes(events: pd.DataFrame) -> pd.Series:
    """Distinct leads reaching each funnel milestone.

    Parameters
    ----------
    events
        The event log.

    Returns
    -------
    pandas.Series
        Counts indexed by ``leads, mqls, sqls, opportunities, wins``.
    """
    hits = events[events["event"].isin(FUNNEL)]
    counts = hits.drop_duplicates(["lead", "event"])["event"].value_counts()
    return pd.Series({STAGE_LABELS[m]: int(counts.get(m, 0)) for m in FUNNEL})


def conversions(events: pd.DataFrame) -> dict[str, float]:
    """Share of leads reaching each milestone that reach the next one (cohort conversion).

    Parameters
    ----------
    events
        The event log.

    Returns
    -------
    dict
        ``lead_to_mql, mql_to_sql, sql_to_opportunity, opportunity_to_win``; NaN when
        nobody reached the earlier milestone.
    """
    log = _Log(events)
    return _conversions({m: log.reached(m) for m in FUNNEL})


def _conversions(reached: dict[str, np.ndarray]) -> dict[str, float]:
    """Cohort conversions from, per milestone, which leads reached it."""
    return {
        f"{_SINGULAR[a]}_to_{_SINGULAR[b]}": _ratio(int((reached[a] & reached[b]).sum()), int(reached[a].sum()))
        for a, b in itertools.pairwise(FUNNEL)
    }


def summary(events: pd.DataFrame) -> dict[str, float]:
    """Headline numbers of one run: volumes, conversions, revenue, cycle times (days).

    Parameters
    ----------
    events
        The event log.

    Returns
    -------
    dict
        ``leads, mqls, sqls, opportunities, wins`` (distinct leads), ``losses``,
        ``revenue``, the four conversions, ``win_rate`` (wins / closed deals),
        ``average_deal_size``, ``median_cycle_days`` (opportunity to won) and
        ``median_lead_to_win_days``.
    """
    return _summary(_Log(events))


def _summary(log: _Log) -> dict[str, float]:
    reached = {m: log.reached(m) for m in FUNNEL}
    out: dict[str, float] = {STAGE_LABELS[m]: int(hit.sum()) for m, hit in reached.items()}
    won, lost = log.rows("won"), log.rows("lost")
    won_value = log.value[won]
    out["losses"] = len(lost)
    out["revenue"] = float(won_value.sum())
    out.update(_conversions(reached))
    out["win_rate"] = _ratio(len(won), len(won) + len(lost))
    out["average_deal_size"] = float(won_value.mean()) if len(won) else float("nan")
    won_at, won_lead = log.time[won], log.lead[won]
    created = log.last_times("created")[won_lead]
    # Deals of the initial pipeline have no `created`: they opened before day 0, so the
    # part of their cycle inside the run is not a cycle. Both medians are over leads.
    own = ~np.isnan(created)
    cycle = (won_at - log.last_times("opportunity")[won_lead])[own]
    lead_to_win = (won_at - created)[own]
    out["median_cycle_days"] = float(np.median(cycle)) if len(cycle) else float("nan")
    out["median_lead_to_win_days"] = float(np.median(lead_to_win)) if len(lead_to_win) else float("nan")
    return out


def stages_by_month(events: pd.DataFrame, start_date: dt.date, horizon_days: float | None = None) -> pd.DataFrame:
    """Funnel volumes, revenue and flow ratios per calendar month.

    Parameters
    ----------
    events
        The event log.
    start_date
        The calendar day of time 0 (the scenario's ``start_date``).
    horizon_days
        If given, every month up to the horizon's last day is listed even when
        nothing happened in it; otherwise months run to the last event.

    Returns
    -------
    pandas.DataFrame
        One row per month from the month of day 0 on, every month present:
        ``month`` ("YYYY-MM"), ``leads, mqls, sqls, opportunities, wins`` (distinct
        leads that *first* reached the milestone that month), ``revenue`` (booked at
        close), and the flow ratios ``lead_to_mql, mql_to_sql, sql_to_opportunity,
        opportunity_to_win`` (that month's volume over the previous milestone's
        volume of the same month: a flow ratio, not a cohort conversion; NaN when
        the denominator is 0).
    """
    _check_horizon(horizon_days)
    log = _Log(events)
    lo, hi = _period_range(log.time, start_date, "month", horizon_days)
    n = hi - lo + 1 if len(log.time) or horizon_days is not None else 0
    out: dict[str, Any] = {"month": [_period_label(c, "month") for c in range(lo, lo + n)]}
    for m in FUNNEL:
        times = log.first_times(m)
        times = times[~np.isnan(times)]
        out[STAGE_LABELS[m]] = _per_period(_month_codes(times, start_date), lo, n).astype(np.int64)
    won = log.rows("won")
    won_codes = _month_codes(log.time[won], start_date)
    out["revenue"] = _per_period(won_codes, lo, n, log.value[won]).astype(float)
    for a, b in itertools.pairwise(FUNNEL):
        out[f"{_SINGULAR[a]}_to_{_SINGULAR[b]}"] = _ratios(out[STAGE_LABELS[b]], out[STAGE_LABELS[a]])
    return pd.DataFrame(out)


def time_in_stage(events: pd.DataFrame) -> pd.DataFrame:
    """Stage-to-stage velocity: days from the first time at one milestone to the first at the next.

    Parameters
    ----------
    events
        The event log.

    Returns
    -------
    pandas.DataFrame
        One row per stage of :data:`SPANS`, in order ``lead_to_mql, mql_to_sql,
        sql_to_opportunity, opportunity_to_close, lead_to_win``, with ``n`` (leads
        that reached both milestones), ``mean_days``, ``median_days``, ``p90_days``
        (NaN when n is 0). Recycled leads count the loop back through nurture;
        prospected deals appear only in ``opportunity_to_close`` and ``lead_to_win``;
        deals of the initial pipeline in none.
    """
    first = _first_times(events, ("created", "mql", "sql", "opportunity", "won", "lost"))
    first["closed"] = np.fmin(first["won"].to_numpy(), first["lost"].to_numpy())
    # A deal of the initial pipeline (no `created`) opened before day 0: its time to
    # close within the run is the rest of a cycle, so it is left out of the spans.
    first.loc[first["created"].isna(), "opportunity"] = np.nan
    rows = []
    for name, a, b in SPANS:
        days = (first[b] - first[a]).dropna().to_numpy()
        stats = (days.mean(), np.median(days), np.percentile(days, 90)) if len(days) else (np.nan,) * 3
        rows.append((name, len(days), *(float(s) for s in stats)))
    return pd.DataFrame(rows, columns=["stage", "n", "mean_days", "median_days", "p90_days"])


def revenue_by_period(
    events: pd.DataFrame, start_date: dt.date, freq: Freq = "month", horizon_days: float | None = None
) -> pd.DataFrame:
    """Revenue booked per month or quarter, at the close date.

    Parameters
    ----------
    events
        The event log.
    start_date
        The calendar day of time 0.
    freq
        ``"month"`` (periods "2027-01") or ``"quarter"`` (periods "2027Q1").
    horizon_days
        If given, every period up to the horizon's last day is listed.

    Returns
    -------
    pandas.DataFrame
        ``period``, ``wins``, ``revenue``, ``average_deal_size`` (revenue / wins, NaN
        without wins); every period from day 0 to the last event (or horizon) present.
    """
    _check_freq(freq)
    _check_horizon(horizon_days)
    lo, hi = _period_range(events["time"].to_numpy(float), start_date, freq, horizon_days)
    n = hi - lo + 1 if len(events) or horizon_days is not None else 0
    won = events[events["event"] == "won"]
    codes = _period_codes(won["time"].to_numpy(float), start_date, freq)
    wins = _per_period(codes, lo, n).astype(np.int64)
    revenue = _per_period(codes, lo, n, won["value"].to_numpy(float)).astype(float)
    return pd.DataFrame(
        {
            "period": [_period_label(c, freq) for c in range(lo, lo + n)],
            "wins": wins,
            "revenue": revenue,
            "average_deal_size": _ratios(revenue, wins),
        }
    )


# ---------------------------------------------------------------------------
# Leakage


def _final_states(events: pd.DataFrame) -> pd.Series:
    """Final state of each lead (index lead), from its last event.

    ``created`` can only be a lead's first event, so it is skipped when the lead has
    others: a tie in time (or a rounding difference of one ulp) that logs it after
    the lead's MQL must not turn a finished lead back into an open one.
    """
    ev = _time_sorted(events)
    later = ev[(ev["event"] != "created").to_numpy()]
    last = later.drop_duplicates("lead", keep="last")
    cat = pd.Categorical(last["event"])
    unknown = [str(c) for c in cat.categories if str(c) not in STATE_AFTER]
    if unknown:
        raise ValueError(f"unknown event(s) {unknown} in the event log; known: {list(STATE_AFTER)}")
    lookup = np.array([STATE_AFTER[str(c)] for c in cat.categories], dtype=object)
    final = pd.Series(lookup[cat.codes], index=last["lead"].to_numpy(), name="state")
    return final.reindex(ev["lead"].unique(), fill_value=STATE_AFTER["created"])


def leakage(events: pd.DataFrame) -> pd.DataFrame:
    """Where leads left the funnel and why, by final state.

    Parameters
    ----------
    events
        The event log.

    Returns
    -------
    pandas.DataFrame
        Columns ``reason, leads, share_of_leads`` (of all leads), ``kind`` and
        ``stage``. The ``kind == "leak"`` rows, one per reason of
        :data:`LEAKAGE_REASONS` in funnel order, count leads by final state:
        ``never_mql_dormant`` (dormant: never reached the MQL bar, or a recycled
        lead that never reached it again), ``not_followed_up``, ``sdr_abandoned``
        (went cold waiting for an SDR), ``lost_to_slow_response`` (unreached),
        ``rejected_by_sales`` (rejected and not recycled), ``disqualified_by_ae``,
        ``ae_abandoned``, ``lost_deal``; ``stage`` is the stage they left from.
        Then ``kind == "info"`` rows that overlap the others: ``recycled`` (leads
        recycled at least once) and ``recycled_then_won``; and ``still_open``
        (``kind == "open"``: final state lead, mql, sql or opportunity). The leak
        rows, the wins and ``still_open`` add up to all leads, plus the deals of an
        initial pipeline when there is one (they can end ``lost_deal``, won or open).
    """
    final = _final_states(events)
    counts = final.value_counts()
    total = len(final)
    rows: list[tuple[str, int, str, str]] = []
    for reason, state, stage in LEAKAGE_REASONS:
        rows.append((reason, int(counts.get(state, 0)), "leak", stage))
    recycled = events.loc[events["event"] == "recycled", "lead"].unique()
    recycled_won = int((final.reindex(recycled) == "won").sum())
    rows.append(("recycled", len(recycled), "info", ""))
    rows.append(("recycled_then_won", recycled_won, "info", ""))
    rows.append(("still_open", int(sum(counts.get(s, 0) for s in OPEN_STATES)), "open", ""))
    out = pd.DataFrame(rows, columns=["reason", "leads", "kind", "stage"])
    out.insert(2, "share_of_leads", _ratios(out["leads"].to_numpy(), np.full(len(out), total)))
    return out


def leakage_counts(events: pd.DataFrame) -> dict[str, int]:
    """The ``leak`` rows of :func:`leakage` as ``{"leak_<reason>": leads}``, in numpy only.

    For the per-replication tables of Monte Carlo runs, where :func:`leakage`'s pandas
    work would be repeated thousands of times. A lead's final state is the state after
    its last event in time order (ties in log order), ``created`` aside as there.
    """
    log = _Log(events)
    # A run's log comes sorted by time: skip the sort then (a stable sort of sorted times is the identity).
    order = np.arange(len(log.time)) if log.time_sorted() else np.argsort(log.time, kind="stable")
    order = order[log.code[order] != EVENTS.index("created")]
    last = np.full(log.n_leads, EVENTS.index("created"))
    last[log.lead[order]] = log.code[order]
    per_event = np.bincount(last, minlength=len(EVENTS))
    per_state: dict[str, int] = {}
    for name, count in zip(EVENTS, per_event.tolist(), strict=True):
        per_state[STATE_AFTER[name]] = per_state.get(STATE_AFTER[name], 0) + count
    return {f"leak_{reason}": per_state.get(state, 0) for reason, state, _ in LEAKAGE_REASONS}


# ---------------------------------------------------------------------------
# Levels: time-weighted queue, busy and capacity


def _steps(levels: pd.DataFrame, team: str, column: str) -> tuple[np.ndarray, np.ndarray]:
    """The step function of ``column`` for ``team``: change times and the value from each on."""
    if column not in levels.columns:
        raise ValueError(f"no column {column!r} in the level log; it has {list(levels.columns)}")
    rows = levels[levels["team"] == team]
    if rows.empty and team not in TEAMS:
        raise ValueError(f"unknown team {team!r}; expected one of {list(TEAMS)}")
    t, v = rows["time"].to_numpy(float), rows[column].to_numpy(float)
    if SEGMENT in rows.columns:
        return _summed_steps(t, v, rows[SEGMENT].to_numpy(object))
    return _as_steps(t, v)


def _summed_steps(t: np.ndarray, v: np.ndarray, segment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The team's step function over all segments: the sum of each segment's (``segment``: each row's).

    A segmented run logs one step function per team and segment (each segment's team is a
    pool of its own); the team's queue, busy reps or capacity at a time is their sum.
    """
    parts = [_as_steps(t[segment == name], v[segment == name]) for name in dict.fromkeys(segment.tolist())]
    if len(parts) <= 1:
        return parts[0] if parts else _as_steps(t, v)
    times = np.unique(np.concatenate([pt for pt, _ in parts]))
    total = np.zeros(len(times))
    for pt, pv in parts:
        i = np.searchsorted(pt, times, side="right") - 1
        total += np.where(i >= 0, pv[np.clip(i, 0, None)], 0.0)
    return times, total


def _as_steps(t: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``(t, v)`` of one team as a step function: sorted by time, the last row at each time."""
    if len(t) > 1 and np.any(np.diff(t) < 0):
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
    if len(t) == 0:
        return t, v
    last_at_time = np.append(t[1:] != t[:-1], True)  # of several rows at one time the last holds
    return t[last_at_time], v[last_at_time]


def _integral(t: np.ndarray, v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Integral of the step function ``(t, v)`` from -inf to each ``x`` (0 before ``t[0]``)."""
    x = np.asarray(x, dtype=float)
    if len(t) == 0:
        return np.zeros_like(x)
    at_rows = np.concatenate([[0.0], np.cumsum(v[:-1] * np.diff(t))])
    i = np.searchsorted(t, x, side="right") - 1
    j = np.clip(i, 0, None)
    return np.where(i < 0, 0.0, at_rows[j] + v[j] * (x - t[j]))


def _window(t: np.ndarray, start: float, end: float | None) -> tuple[float, float]:
    stop = float(end) if end is not None else (float(t[-1]) if len(t) else float(start))
    if stop < start:
        raise ValueError(f"end {stop} is before start {start}")
    return float(start), stop


def time_weighted_mean(
    levels: pd.DataFrame, team: str, column: str, start: float = 0.0, end: float | None = None
) -> float:
    """Time-weighted mean of one level (queue, busy, capacity) of a team over ``[start, end)``.

    Parameters
    ----------
    levels
        The level log ``(time, team, queue, busy, capacity)``.
    team
        ``"sdr"`` or ``"ae"``.
    column
        ``"queue"``, ``"busy"`` or ``"capacity"``.
    start, end
        The window, days. ``end`` defaults to the team's last row; pass the horizon
        to count the last value until the run ended.

    Returns
    -------
    float
        ``integral_start^end x(t) dt / (end - start)``; NaN for an empty window.
    """
    t, v = _steps(levels, team, column)
    a, b = _window(t, start, end)
    if b == a:
        return float("nan")
    area = _integral(t, v, np.array([a, b]))
    return float((area[1] - area[0]) / (b - a))


def utilisation(levels: pd.DataFrame, team: str, start: float = 0.0, end: float | None = None) -> float:
    """Time-weighted utilisation of a team: busy slot-days over available slot-days.

    Parameters
    ----------
    levels
        The level log ``(time, team, queue, busy, capacity)``.
    team
        ``"sdr"`` or ``"ae"``.
    start, end
        The window, days; ``end`` defaults to the team's last row (pass the horizon
        to include the time after the last change).

    Returns
    -------
    float
        ``integral busy dt / integral capacity dt`` over ``[start, end)``, in [0, 1];
        NaN when there was no capacity.

    Examples
    --------
    Capacity 2 for 10 days, busy 1 for the first 4 and 2 for the next 6:
    ``(1 * 4 + 2 * 6) / (2 * 10) = 0.8``.
    """
    return _utilisation(*_steps(levels, team, "busy"), *_steps(levels, team, "capacity"), start, end)


def _utilisation(
    tb: np.ndarray, busy: np.ndarray, tc: np.ndarray, cap: np.ndarray, start: float, end: float | None
) -> float:
    a, b = _window(tb, start, end)
    window = np.array([a, b])
    used = np.diff(_integral(tb, busy, window))[0]
    available = np.diff(_integral(tc, cap, window))[0]
    return _ratio(float(used), float(available))


def _month_edges(start_date: dt.date, horizon_days: float) -> tuple[np.ndarray, np.ndarray]:
    """Month codes covering ``[0, horizon_days)`` and their edges in days (first 0, last the horizon)."""
    lo, hi = _period_range(np.array([]), start_date, "month", horizon_days)
    codes = np.arange(lo, hi + 1)
    firsts = codes[1:].astype("datetime64[M]").astype("datetime64[D]")
    inner = (firsts - np.datetime64(start_date, "D")).astype(np.int64).astype(float)
    return codes, np.concatenate([[0.0], inner, [float(horizon_days)]])


def period_edges(start_date: dt.date, horizon_days: float, freq: Freq = "month") -> tuple[list[str], np.ndarray]:
    """The calendar periods covering ``[0, horizon_days)`` and their edges in days.

    Returns
    -------
    (labels, edges)
        ``labels[p]`` ("2027-01" or "2027Q1") for each period from the one of day 0 to the one of
        the horizon's last day; ``edges`` has one more element: period ``p`` is
        ``[edges[p], edges[p + 1])``, ``edges[0] = 0`` and ``edges[-1] = horizon_days`` (the first
        and last periods may be partial). A time ``t`` falls in the period of its calendar day,
        ``start_date + floor(t)``: edges inside are whole days.
    """
    _check_freq(freq)
    _check_horizon(horizon_days)
    lo, hi = _period_range(np.array([]), start_date, freq, horizon_days)
    codes = np.arange(lo, hi + 1)
    months = codes[1:] * 3 if freq == "quarter" else codes[1:]
    firsts = months.astype("datetime64[M]").astype("datetime64[D]")
    inner = (firsts - np.datetime64(start_date, "D")).astype(np.int64).astype(float)
    edges = np.concatenate([[0.0], inner, [float(horizon_days)]])
    return [_period_label(int(c), freq) for c in codes], edges


def spend_by_period(result: RunResult, freq: Freq = "quarter") -> pd.DataFrame:
    """Sales and marketing spend per calendar period: the cost of :func:`costs`, period by period.

    Parameters
    ----------
    result
        One run.
    freq
        ``"month"`` or ``"quarter"``.

    Returns
    -------
    pandas.DataFrame
        ``period``, ``marketing_cost`` (``cost_per_lead`` of the leads created in the period),
        ``sdr_cost`` and ``ae_cost`` (employed rep-days within the period × ``cost_per_year`` /
        365.25) and ``total_cost``; the periods of :func:`period_edges`. Summed over the periods,
        the columns are the run's ``marketing_cost``, ``sdr_cost``, ``ae_cost`` and ``total_cost``.
    """
    scenario = result.scenario
    horizon = float(scenario.horizon_days)
    labels, edges = period_edges(scenario.start_date, horizon, freq)
    ev = result.events
    created = (ev["event"] == "created").to_numpy()
    lead = ev["lead"].to_numpy(np.int64)[created]
    source = result.attributes["source"]
    # Prospected deals and the initial pipeline's are sources without a price.
    price = np.array([getattr(scenario.sources.get(str(c)), "cost_per_lead", 0.0) for c in source.cat.categories])
    code = source.cat.codes.to_numpy(np.int64)[lead]
    where = np.clip(np.searchsorted(edges, ev["time"].to_numpy(float)[created], side="right") - 1, 0, len(labels) - 1)
    marketing = np.bincount(where, weights=price[code], minlength=len(labels))[: len(labels)]
    roster = _Roster(result.roster)
    cost = {"sdr": scenario.handoff.sdr.cost_per_year, "ae": scenario.sales.ae.cost_per_year}
    team_cost = {
        team: np.array([roster.employed_days_between(team, a, b) for a, b in itertools.pairwise(edges)])
        * per_year
        / DAYS_PER_YEAR
        for team, per_year in cost.items()
    }
    return pd.DataFrame(
        {
            "period": labels,
            "marketing_cost": marketing.astype(float),
            "sdr_cost": team_cost["sdr"],
            "ae_cost": team_cost["ae"],
            "total_cost": marketing + team_cost["sdr"] + team_cost["ae"],
        }
    )


def _ae_waits(events: pd.DataFrame) -> pd.DataFrame:
    """Each opportunity from an SQL: its time and the days since the lead's latest SQL."""
    ev = _time_sorted(events)
    opened = ev.loc[ev["event"] == "opportunity", ["time", "lead"]]
    sqls = ev.loc[ev["event"] == "sql", ["time", "lead"]].rename(columns={"time": "sql_time"})
    if opened.empty or sqls.empty:
        empty = np.array([], dtype=float)
        return pd.DataFrame({"time": empty, "wait": empty, "lead": np.array([], dtype=np.int64)})
    both = pd.merge_asof(opened, sqls, left_on="time", right_on="sql_time", by="lead", direction="backward")
    both = both.dropna(subset=["sql_time"])  # prospected deals had no SQL
    return pd.DataFrame(
        {
            "time": both["time"].to_numpy(float),
            "wait": (both["time"] - both["sql_time"]).to_numpy(),
            "lead": both["lead"].to_numpy(np.int64),
        }
    )


# What ends a wait in each team's queue: the rep starting (served) or the lead going cold.
_SERVED = {"sdr": ("sdr_start",), "ae": ("opportunity", "disqualified")}
_ABANDONED = {"sdr": "sdr_abandoned", "ae": "ae_abandoned"}


def queue_visits(events: pd.DataFrame, team: str) -> pd.DataFrame:
    """One row per arrival at a team's queue in the log: when, whether it queued, how it ended.

    Parameters
    ----------
    events
        The event log.
    team
        ``"sdr"``: an arrival is an MQL picked up by sales (after the response delay); it
        queued if every SDR was busy (``sdr_queued``), else an SDR started at once. ``"ae"``:
        an arrival is an SQL; an AE starts on it (``opportunity`` or ``disqualified``) at once
        or after a wait. Passes whose MQL (SDR) or SQL (AE) is not in the log, a warm run's
        carried over from before day 0, are left out.

    Returns
    -------
    pandas.DataFrame
        ``time`` (arrival, days), ``queued`` (found every rep busy), ``outcome``
        (``served``, ``abandoned``, or ``waiting`` at the end of the log) and ``wait`` (days
        in the queue until served or abandoned; NaN while waiting).
    """
    if team not in TEAMS:
        raise ValueError(f"team must be one of {TEAMS}, got {team!r}")
    log = _Log(_time_sorted(events))
    code = log.code
    # By lead, in time order (the log is time-sorted and the sort is stable).
    order = np.argsort(log.lead, kind="stable")
    lead, code, time = log.lead[order], code[order], log.time[order]
    same_next = np.append(lead[1:] == lead[:-1], False)
    next_code = np.append(code[1:], -1)
    next_time = np.append(time[1:], np.nan)

    def is_(names: tuple[str, ...] | str, codes: np.ndarray) -> np.ndarray:
        wanted = [EVENTS.index(n) for n in ((names,) if isinstance(names, str) else names)]
        return np.isin(codes, wanted)

    if team == "sdr":
        prev_code = np.insert(code[:-1], 0, -1)
        same_prev = np.insert(lead[1:] == lead[:-1], 0, False)
        at_once = is_("sdr_start", code) & same_prev & is_("mql", prev_code)
        arrive = is_("sdr_queued", code) | at_once
    else:
        at_once = np.zeros(len(code), dtype=bool)
        arrive = is_("sql", code)
    served = same_next & is_(_SERVED[team], next_code)
    gone = same_next & is_(_ABANDONED[team], next_code)
    outcome = np.where(at_once | served, "served", np.where(gone, "abandoned", "waiting"))[arrive]
    wait = np.where(at_once, 0.0, np.where(served | gone, next_time - time, np.nan))[arrive]
    # Found every rep busy: an SDR pass says so (sdr_queued); an SQL waited, or still waits.
    queued = ~at_once[arrive] if team == "sdr" else np.where(np.isnan(wait), True, wait > 0)
    out = pd.DataFrame({"time": time[arrive], "queued": queued, "outcome": outcome, "wait": wait})
    out["outcome"] = pd.Categorical(out["outcome"], categories=["served", "abandoned", "waiting"])
    return out.sort_values("time", kind="stable").reset_index(drop=True)


def _response_waits(
    events: pd.DataFrame, working: Mapping[str, WorkingClock | None] | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """Per team, when a rep started on a lead, the days since its hand-off (MQL for SDRs, SQL for AEs),
    and with ``working`` the same in the team's working time (None for a team without hours)."""
    starts = events[events["event"] == "sdr_start"]
    ae = _ae_waits(events)
    found = {
        "sdr": (starts["time"].to_numpy(float), starts["value"].to_numpy(float), starts["lead"].to_numpy(np.int64)),
        "ae": (ae["time"].to_numpy(float), ae["wait"].to_numpy(float), ae["lead"].to_numpy(np.int64)),
    }
    out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}
    for team, (time, wait, lead) in found.items():
        clock = (working or {}).get(team)
        worked = None if clock is None else clock(time, lead) - clock(time - wait, lead)
        out[team] = (time, wait, worked)
    return out


def capacity_by_month(
    levels: pd.DataFrame,
    events: pd.DataFrame,
    start_date: dt.date,
    horizon_days: float,
    working: Mapping[str, WorkingClock | None] | None = None,
) -> pd.DataFrame:
    """Load of the SDR and AE teams per calendar month: capacity, utilisation, queues, waits, abandonment.

    Parameters
    ----------
    levels
        The level log ``(time, team, queue, busy, capacity)``.
    events
        The event log (for waits).
    start_date
        The calendar day of time 0.
    horizon_days
        Length of the run; the last month ends there.

    Returns
    -------
    pandas.DataFrame
        One row per month and team (``sdr`` then ``ae`` within a month): ``month``,
        ``team``, ``capacity`` and ``busy`` (time-weighted mean slots over the part
        of the month inside the run), ``utilisation`` (busy / capacity of those
        means), ``mean_queue`` (time-weighted), ``max_queue``; for the arrivals of the
        month at the team's queue (:func:`queue_visits`): ``arrivals``, ``p_wait`` (share
        that found every rep busy), ``wait_all_days`` (mean days in queue of the arrivals
        served or abandoned, 0 for those served at once: Erlang C's ``W_q``, Erlang-A's
        ``E[W]``), ``wait_served_days`` (the same over those served), ``abandoned_share``
        (of the arrivals served or abandoned), ``still_waiting`` (in queue at the end of
        the run); and ``mean_response_days`` (SDR: mean days from MQL to ``sdr_start``,
        response delay plus queue, of the leads an SDR started that month; AE: days from
        a lead's latest SQL to its opportunity, for opportunities opened that month). NaN
        where there is nothing to average. With ``working`` (a scenario with a working
        calendar: ``{team: clock}``, :func:`funnelsim.run.response.working_clock`) also
        ``mean_response_working_days``, the same in the team's working time (NaN for a team
        without working hours).
    """
    _check_horizon(horizon_days)
    codes, edges = _month_edges(start_date, horizon_days)
    n, lo = len(codes), int(codes[0])
    span = np.diff(edges)

    waits = _response_waits(events, working)

    frames = []
    for team in TEAMS:
        queues = _queue_months(queue_visits(events, team), start_date, horizon_days, lo, n)
        means = {}
        for column in ("capacity", "busy", "queue"):
            t, v = _steps(levels, team, column)
            means[column] = _ratios(np.diff(_integral(t, v, edges)), span)
        tq, vq = _steps(levels, team, "queue")
        holding = np.searchsorted(tq, edges[:-1], side="right") - 1
        after = np.searchsorted(tq, edges[1:], side="left")
        # The row in force as the month starts, and every row inside it (0 before the first row).
        max_queue = np.array([vq[max(i, 0) : k].max(initial=0.0) for i, k in zip(holding, after, strict=True)])
        responses = _response_months(waits[team], working is not None, start_date, horizon_days, lo, n)
        frames.append(
            pd.DataFrame(
                {
                    "order": np.arange(n),
                    "month": [_period_label(int(c), "month") for c in codes],
                    "team": team,
                    "capacity": means["capacity"],
                    "busy": means["busy"],
                    "utilisation": _ratios(means["busy"], means["capacity"]),
                    "mean_queue": means["queue"],
                    "max_queue": max_queue.astype(np.int64),
                    **queues,
                    **responses,
                }
            )
        )
    out = pd.concat(frames, ignore_index=True).sort_values("order", kind="stable")
    return out.drop(columns="order").reset_index(drop=True)


def _response_months(
    waits: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    with_working: bool,
    start_date: dt.date,
    horizon_days: float,
    lo: int,
    n: int,
) -> dict[str, np.ndarray]:
    """``mean_response_days`` of one team per month of the rep starting, and with a working calendar
    ``mean_response_working_days`` (NaN when the team has no working hours)."""
    wait_times, wait_days, worked = waits
    inside = (wait_times >= 0) & (wait_times < horizon_days)
    codes = _month_codes(wait_times[inside], start_date)
    count = _per_period(codes, lo, n)
    out = {"mean_response_days": _ratios(_per_period(codes, lo, n, wait_days[inside]), count)}
    if with_working:
        out["mean_response_working_days"] = (
            np.full(n, np.nan) if worked is None else _ratios(_per_period(codes, lo, n, worked[inside]), count)
        )
    return out


def _queue_months(
    visits: pd.DataFrame, start_date: dt.date, horizon_days: float, lo: int, n: int
) -> dict[str, np.ndarray]:
    """The queue columns of :func:`capacity_by_month` for one team, per month of arrival."""
    visits = visits[(visits["time"] >= 0) & (visits["time"] < horizon_days)]
    codes = _month_codes(visits["time"].to_numpy(float), start_date)
    outcome = visits["outcome"].to_numpy(object)
    served, gone = outcome == "served", outcome == "abandoned"
    decided = served | gone
    wait = np.nan_to_num(visits["wait"].to_numpy(float))
    arrivals = _per_period(codes, lo, n)
    ended = _per_period(codes, lo, n, decided.astype(float))
    return {
        "arrivals": arrivals.astype(np.int64),
        "p_wait": _ratios(_per_period(codes, lo, n, visits["queued"].to_numpy(float)), arrivals),
        "wait_all_days": _ratios(_per_period(codes, lo, n, wait * decided), ended),
        "wait_served_days": _ratios(_per_period(codes, lo, n, wait * served), _per_period(codes, lo, n, served * 1.0)),
        "abandoned_share": _ratios(_per_period(codes, lo, n, gone * 1.0), ended),
        "still_waiting": (arrivals - ended).astype(np.int64),
    }


def pipeline_over_time(events: pd.DataFrame, opening: tuple[int, float] = (0, 0.0)) -> pd.DataFrame:
    """Open pipeline as a step function: one row per time it changes.

    Parameters
    ----------
    events
        The event log.
    opening
        Opportunities open at time 0 and their value that the log does not open (a warm
        start's, see ``open_at_start`` in :attr:`RunResult.metadata`): the pipeline starts
        there, with a row at time 0.

    Returns
    -------
    pandas.DataFrame
        ``time``, ``open_opportunities`` and ``open_value`` (sum of their deal
        amounts) from that time on. An ``opportunity`` event adds its value, a
        ``won`` or ``lost`` removes the amount it carries. Several changes at one
        time give one row.
    """
    ev = _time_sorted(events)
    opened = (ev["event"] == "opportunity").to_numpy()
    closed = ev["event"].isin(("won", "lost")).to_numpy()
    sel = opened | closed
    times = ev["time"].to_numpy(float)[sel]
    step = np.where(opened[sel], 1, -1)
    value = ev["value"].to_numpy(float)[sel]
    change = np.where(opened[sel], value, -value)
    if opening[0]:
        times, step, change = np.r_[0.0, times], np.r_[opening[0], step], np.r_[float(opening[1]), change]
    count = np.cumsum(step)
    amount = np.cumsum(change)
    amount[count == 0] = 0.0  # no rounding residue in an empty pipeline
    out = pd.DataFrame({"time": times, "open_opportunities": count.astype(np.int64), "open_value": amount})
    return out.drop_duplicates("time", keep="last").reset_index(drop=True)


# ---------------------------------------------------------------------------
# Money


def costs(
    attributes: pd.DataFrame,
    roster: pd.DataFrame,
    scenario: Scenario,
    events: pd.DataFrame,
    horizon_days: float | None = None,
) -> dict[str, Any]:
    """Marketing and sales cost of a run, and cost per stage.

    Parameters
    ----------
    attributes
        Per-lead traits (one row per lead of the log, by id; column ``source``). Only the
        leads created in the run cost marketing: a warm start's leads from the burn-in
        were paid for then.
    roster
        ``(time, team, rep, change, productivity)``; ``change`` is joined, ramp or left.
    scenario
        Gives the (average) cost per lead per source and ``cost_per_year`` of SDRs and AEs.
    events
        The event log (for volumes and revenue).
    horizon_days
        Length of the run; defaults to ``scenario.horizon_days``.

    Returns
    -------
    dict
        ``marketing_cost``, ``marketing_cost_by_source`` (dict source -> cost, one
        entry per scenario source), ``sdr_cost``, ``ae_cost``, ``sales_cost``,
        ``total_cost``, ``cost_per_mql`` and ``cost_per_sql`` (marketing cost per
        distinct MQL / SQL), ``cost_per_win`` and ``cac`` (total cost per win),
        ``revenue_per_ae`` (revenue / average AE headcount), ``average_ae_headcount``
        and ``average_sdr_headcount`` (employed rep-days / horizon); with an AE
        ``ote_per_year`` also ``commission_cost`` (in ``sales_cost`` and ``total_cost``).
        Money in the scenario's currency.
    """
    horizon = float(scenario.horizon_days if horizon_days is None else horizon_days)
    _check_horizon(horizon)
    created = events.loc[events["event"] == "created", "lead"].to_numpy(np.int64)
    per_source = attributes["source"].astype(str).iloc[created].value_counts()
    vol = stage_volumes(events)
    revenue = float(events.loc[events["event"] == "won", "value"].sum())
    commission = _commission(events, roster, scenario, horizon)
    return _costs(scenario, per_source.to_dict(), _Roster(roster), vol.to_dict(), revenue, horizon, commission)


def _commission(events: pd.DataFrame, roster: pd.DataFrame, scenario: Scenario, horizon: float) -> float | None:
    """The AEs' commission over the run (:mod:`funnelsim.run.quotas`); None when no AE has an OTE."""
    from funnelsim.run.quotas import has_commission, quota_report_of

    if not has_commission(scenario):
        return None
    return quota_report_of(events, roster, scenario, horizon).summary["commission_cost"]


def _costs(
    scenario: Scenario,
    leads_by_source: dict[str, int],
    roster: _Roster,
    volumes: dict[str, float],
    revenue: float,
    horizon: float,
    commission: float | None = None,
) -> dict[str, Any]:
    by_source = {
        name: float(int(leads_by_source.get(name, 0)) * source.average_cost_per_lead)
        for name, source in scenario.sources.items()
    }
    marketing = float(sum(by_source.values()))
    sdr_days = roster.employed_days("sdr", horizon)
    ae_days = roster.employed_days("ae", horizon)
    sdr_cost, ae_cost = _team_costs(scenario, roster, horizon)
    # Commission (AEs with an OTE) is sales cost on top of the fixed pay in cost_per_year.
    sales_cost = sdr_cost + ae_cost + (commission or 0.0)
    total = marketing + sales_cost
    ae_headcount = ae_days / horizon
    return {
        "marketing_cost": marketing,
        "marketing_cost_by_source": by_source,
        "sdr_cost": float(sdr_cost),
        "ae_cost": float(ae_cost),
        **({} if commission is None else {"commission_cost": float(commission)}),
        "sales_cost": float(sales_cost),
        "total_cost": float(total),
        "cost_per_mql": _ratio(marketing, volumes["mqls"]),
        "cost_per_sql": _ratio(marketing, volumes["sqls"]),
        "cost_per_win": _ratio(total, volumes["wins"]),
        "cac": _ratio(total, volumes["wins"]),
        "revenue_per_ae": _ratio(revenue, ae_headcount),
        "average_ae_headcount": float(ae_headcount),
        "average_sdr_headcount": float(sdr_days / horizon),
    }


def _team_costs(scenario: Scenario, roster: _Roster, horizon: float) -> tuple[float, float]:
    """The SDRs' and the AEs' cost: employed rep-days times the yearly cost of a rep (each segment's
    reps at their segment's cost, :meth:`~funnelsim.model.scenario.Scenario.segment_view`)."""
    if not scenario.segments:
        return (
            roster.employed_days("sdr", horizon) * scenario.handoff.sdr.cost_per_year / DAYS_PER_YEAR,
            roster.employed_days("ae", horizon) * scenario.sales.ae.cost_per_year / DAYS_PER_YEAR,
        )
    sdr = ae = 0.0
    for name in scenario.segment_names:
        view = scenario.segment_view(name)
        sdr += roster.employed_days("sdr", horizon, name) * view.handoff.sdr.cost_per_year / DAYS_PER_YEAR
        ae += roster.employed_days("ae", horizon, name) * view.sales.ae.cost_per_year / DAYS_PER_YEAR
    return sdr, ae


# ---------------------------------------------------------------------------
# Segments and the one-line summary


def by_segment(leads: pd.DataFrame, by: Literal["source", "persona"]) -> pd.DataFrame:
    """Funnel volumes and revenue per source (channel) or persona.

    Parameters
    ----------
    leads
        The per-lead table (:attr:`funnelsim.run.result.RunResult.leads`).
    by
        ``"source"`` or ``"persona"``.

    Returns
    -------
    pandas.DataFrame
        ``<by>``, ``leads``, ``mqls``, ``sqls``, ``opportunities``, ``wins``,
        ``revenue`` (amounts of won deals), ``lead_to_win`` (wins / leads, NaN for a
        category without leads); one row per category, including categories with no
        leads, in category order. Prospected deals are the source "prospecting"; the
        deals of the initial pipeline the source "pipeline", with 0 leads.
    """
    if by not in ("source", "persona"):
        raise ValueError(f"by must be 'source' or 'persona', got {by!r}")
    won = (leads["state"] == "won").to_numpy()
    # Deals of the initial pipeline (source "pipeline", no creation time) were never leads.
    is_lead = leads["created"].notna().to_numpy() if "created" in leads else np.ones(len(leads), dtype=bool)
    frame = pd.DataFrame(
        {
            by: leads[by],
            "leads": is_lead.astype(np.int64),
            "mqls": leads["mql"].notna().to_numpy(np.int64),
            "sqls": leads["sql"].notna().to_numpy(np.int64),
            "opportunities": leads["opportunity"].notna().to_numpy(np.int64),
            "wins": won.astype(np.int64),
            "revenue": np.where(won, leads["amount"].to_numpy(float), 0.0),
        }
    )
    out = frame.groupby(by, observed=False, sort=True).sum().reset_index()
    out[by] = out[by].astype(str)
    out["lead_to_win"] = _ratios(out["wins"].to_numpy(), out["leads"].to_numpy())
    return out


def summarize_run(result: RunResult, goal: float | None = None) -> dict[str, float]:
    """Everything a planner reads first, as one flat dict (``summary.csv``, ``--json``).

    Parameters
    ----------
    result
        One run (event log, level log, roster, attributes, scenario).

    Returns
    -------
    dict
        The keys of :func:`summary`, the scalar entries of :func:`costs` plus
        ``marketing_cost_<source>`` per source, and ``sdr_utilisation`` and
        ``ae_utilisation`` over the whole horizon, and ``yoy_growth`` when the scenario
        has a ``prior_year_revenue``; with an ``initial_pipeline`` also
        ``pipeline_deals``, ``pipeline_wins``, ``pipeline_losses`` and
        ``pipeline_revenue``; with AE quotas (``sales.ae.quota_per_year``) the keys of
        :func:`funnelsim.run.quotas.quota_report` (and ``commission_cost`` among the costs with an
        ``ote_per_year``); with a ``forecast`` section those of
        :func:`funnelsim.run.pipeline_views.pipeline_views`. Plain ``int`` and ``float`` values (NaN
        where undefined). ``goal``: the command's bookings goal of the horizon (``--goal``), the plan
        of the quota and pipeline keys. With a working calendar whose SDR team has working hours, the
        keys of :func:`funnelsim.run.response.response_summary`.
    """
    scenario = result.scenario
    horizon = float(scenario.horizon_days)
    _check_horizon(horizon)
    out = _summary(_Log(result.events))
    source = result.attributes["source"]
    # Leads created in the run (a warm start's leads carried over from the burn-in were paid for then).
    created = result.events.loc[result.events["event"] == "created", "lead"].to_numpy(np.int64)
    codes = source.cat.codes.to_numpy(np.int64)[created]
    per_source = np.bincount(codes, minlength=len(source.cat.categories))
    count = dict(zip(source.cat.categories.astype(str), per_source.tolist(), strict=True))
    quotas = _quota_summary(result, goal)
    commission = quotas.pop("commission_cost", None)
    money = _costs(scenario, count, _Roster(result.roster), out, out["revenue"], horizon, commission)
    by_source = money.pop("marketing_cost_by_source")
    out.update({key: float(value) for key, value in money.items()})
    out.update({f"marketing_cost_{name}": float(cost) for name, cost in by_source.items()})
    levels = _Levels(result.levels)
    for team in TEAMS:
        out[f"{team}_utilisation"] = levels.utilisation(team, 0.0, horizon)
        out.update(_queue_summary(queue_visits(result.events, team), team, horizon))
    if scenario.prior_year_revenue is not None:
        out["yoy_growth"] = yoy_growth(out["revenue"], scenario.prior_year_revenue, horizon)
    if getattr(scenario, "calendar", None) is not None:
        from funnelsim.run.response import response_summary

        out.update(response_summary(result))
    if scenario.initial_pipeline is not None:
        from funnelsim.model.scenario import PIPELINE_SOURCE  # loaded with the scenario already

        out.update(_pipeline_outcomes(_Log(result.events), (source == PIPELINE_SOURCE).to_numpy()))
    out.update(quotas)
    if scenario.forecast is not None:
        from funnelsim.run.pipeline_views import pipeline_views

        out.update(pipeline_views(result, goal).summary)
    if result.arr_ledger is not None:
        from funnelsim.run.recurring import summarize_recurring  # imports this module

        out.update(summarize_recurring(result, out["cac"]))
    if scenario.segments:
        for row in summarize_segments(result).to_dict("records"):
            out.update({f"segment:{row[SEGMENT]}:{key}": float(row[key]) for key in SEGMENT_HEADLINE})
    return out


def _quota_summary(result: RunResult, goal: float | None) -> dict[str, float]:
    """The quota keys of a run (:func:`funnelsim.run.quotas.quota_report`), empty without quotas."""
    from funnelsim.run.quotas import has_quotas, quota_report

    return dict(quota_report(result, goal).summary) if has_quotas(result.scenario) else {}


SEGMENT_COLUMNS = (
    "leads",
    "mqls",
    "sqls",
    "opportunities",
    "wins",
    "losses",
    "revenue",
    "lead_to_mql",
    "mql_to_sql",
    "sql_to_opportunity",
    "opportunity_to_win",
    "win_rate",
    "average_deal_size",
    "median_cycle_days",
    "median_lead_to_win_days",
    "average_sdr_headcount",
    "average_ae_headcount",
    "sdr_utilisation",
    "ae_utilisation",
    "marketing_cost",
    "sales_cost",
    "total_cost",
    "cac",
)
"""Columns of :func:`summarize_segments` after ``segment``."""
SEGMENT_HEADLINE = (
    "leads",
    "mqls",
    "sqls",
    "wins",
    "revenue",
    "win_rate",
    "average_deal_size",
    "median_cycle_days",
    "average_sdr_headcount",
    "average_ae_headcount",
)
"""What :func:`summarize_run` reports per segment, as ``segment:<name>:<metric>``."""


def _segment_parts(result: RunResult) -> list[tuple[str, RunResult]]:
    """Each segment of a segmented run as a run of its own (its leads' events, its teams' levels and roster,
    its view of the scenario); lead and rep ids stay those of the whole run."""
    attributes = result.attributes
    codes = attributes[SEGMENT].cat.codes.to_numpy()
    of_event = codes[result.events["lead"].to_numpy(np.int64)]
    parts = []
    for k, name in enumerate(attributes[SEGMENT].cat.categories):
        levels, roster = result.levels, result.roster
        part = dataclasses.replace(
            result,
            scenario=result.scenario.segment_view(str(name)),
            events=result.events[of_event == k],
            levels=levels[(levels[SEGMENT] == name).to_numpy(bool)].drop(columns=SEGMENT),
            roster=roster[(roster[SEGMENT] == name).to_numpy(bool)].drop(columns=SEGMENT),
        )
        parts.append((str(name), part))
    return parts


def summarize_segments(result: RunResult) -> pd.DataFrame:
    """The headline numbers of each segment of a segmented run (``segments.csv``).

    Parameters
    ----------
    result
        A run of a scenario with segments (its per-lead table has a ``segment`` column).

    Returns
    -------
    pandas.DataFrame
        One row per segment, in the scenario's order: ``segment`` and :data:`SEGMENT_COLUMNS`,
        each as :func:`summarize_run` defines it over the segment's leads, reps and costs
        (its SDRs and AEs at its own ``cost_per_year``; marketing cost of its leads).
    """
    if SEGMENT not in result.attributes:
        raise ValueError("not a segmented run: its per-lead table has no segment column")
    horizon = float(result.scenario.horizon_days)
    rows = []
    for name, part in _segment_parts(result):
        out = _summary(_Log(part.events))
        source = part.attributes["source"].astype(str)
        created = part.events.loc[part.events["event"] == "created", "lead"].to_numpy(np.int64)
        count = source.iloc[created].value_counts().to_dict()
        out.update(_costs(part.scenario, count, _Roster(part.roster), out, out["revenue"], horizon))
        levels = _Levels(part.levels)
        out.update({f"{team}_utilisation": levels.utilisation(team, 0.0, horizon) for team in TEAMS})
        rows.append({SEGMENT: name, **{key: out[key] for key in SEGMENT_COLUMNS}})
    return pd.DataFrame(rows, columns=[SEGMENT, *SEGMENT_COLUMNS])


def segments_by_month(result: RunResult) -> pd.DataFrame:
    """:func:`stages_by_month` of each segment of a segmented run (``segments_by_month.csv``).

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`stages_by_month` with ``segment`` after ``month``: one row per
        month and segment (segments in the scenario's order within a month).
    """
    if SEGMENT not in result.attributes:
        raise ValueError("not a segmented run: its per-lead table has no segment column")
    sc = result.scenario
    frames = []
    for name, part in _segment_parts(result):
        monthly = stages_by_month(part.events, sc.start_date, float(sc.horizon_days))
        monthly.insert(1, SEGMENT, name)
        frames.append(monthly)
    out = pd.concat(frames, ignore_index=True).sort_values("month", kind="stable")
    return out.reset_index(drop=True)


def _queue_summary(visits: pd.DataFrame, team: str, horizon: float) -> dict[str, float]:
    """A team's queue over the whole run (the arrivals inside it): ``<team>_p_wait``, ``<team>_wait_all_days``
    and ``<team>_abandoned_share``, as in :func:`capacity_by_month`."""
    visits = visits[(visits["time"] >= 0) & (visits["time"] < horizon)]
    ended = visits[visits["outcome"] != "waiting"]
    n, m = len(visits), len(ended)
    return {
        f"{team}_p_wait": float(visits["queued"].mean()) if n else math.nan,
        f"{team}_wait_all_days": float(ended["wait"].mean()) if m else math.nan,
        f"{team}_abandoned_share": float((ended["outcome"] == "abandoned").mean()) if m else math.nan,
    }


def _pipeline_outcomes(log: _Log, from_pipeline: np.ndarray) -> dict[str, float]:
    """What the deals of the initial pipeline (the leads ``from_pipeline``) became in the run; a
    pipeline start's leads carried over from its burn-in are not among them."""
    pipeline = log.reached("opportunity") & from_pipeline
    won = log.rows("won")
    mine = pipeline[log.lead[won]]
    return {
        "pipeline_deals": int(pipeline.sum()),
        "pipeline_wins": int(mine.sum()),
        "pipeline_losses": int(pipeline[log.lead[log.rows("lost")]].sum()),
        "pipeline_revenue": float(log.value[won][mine].sum()),
    }


def yoy_growth(revenue: float, prior_year_revenue: float, horizon_days: float) -> float:
    """Year-over-year growth of won revenue: ``revenue * 365 / horizon_days / prior_year_revenue - 1``.

    The horizon's revenue is put on a yearly basis first, so a 365-day horizon compares
    as it is. A run that starts with an empty funnel books little in its first months;
    start from the open pipeline (``initial_pipeline``) for a fair comparison with a
    real prior year.
    """
    return float(revenue) * 365.0 / horizon_days / prior_year_revenue - 1.0


class _Roster:
    """The roster as numpy columns, for the cost of reps."""

    def __init__(self, roster: pd.DataFrame) -> None:
        self.team = roster["team"].to_numpy(object)
        self.rep = roster["rep"].to_numpy(np.int64)
        self.time = roster["time"].to_numpy(float)
        self.left = (roster["change"] == "left").to_numpy(bool)
        self.segment = roster[SEGMENT].to_numpy(object) if SEGMENT in roster.columns else None

    def employed_days_between(self, team: str, start: float, end: float) -> float:
        """Rep-days on payroll within ``[start, end)`` (as :meth:`employed_days`)."""
        rows = np.flatnonzero(self.team == team)
        if not len(rows):
            return 0.0
        reps, where = np.unique(self.rep[rows], return_inverse=True)
        first = np.full(len(reps), np.inf)
        np.minimum.at(first, where, self.time[rows])
        left_at = np.full(len(reps), np.inf)
        gone = self.left[rows]
        np.minimum.at(left_at, where[gone], self.time[rows][gone])
        stop = np.minimum(left_at, end)
        return float(np.clip(stop - np.clip(first, start, None), 0.0, None).sum())

    def employed_days(self, team: str, horizon_days: float, segment: str | None = None) -> float:
        """Rep-days on payroll within ``[0, horizon_days)``: from a rep's ``joined`` row (paid in
        full while ramping) until its ``left`` row or the horizon; of one segment's reps if given."""
        mine = self.team == team
        if segment is not None and self.segment is not None:
            mine &= self.segment == segment
        rows = np.flatnonzero(mine)
        if not len(rows):
            return 0.0
        reps, where = np.unique(self.rep[rows], return_inverse=True)
        order = np.argsort(np.unique(where, return_index=True)[1], kind="stable")  # first appearance
        first = np.full(len(reps), np.inf)
        np.minimum.at(first, where, self.time[rows])
        left_at = np.full(len(reps), np.inf)
        gone = self.left[rows]
        np.minimum.at(left_at, where[gone], self.time[rows][gone])
        end = np.minimum(np.where(np.isinf(left_at), horizon_days, left_at), horizon_days)[order]
        return float(np.clip(end - np.clip(first[order], 0.0, None), 0.0, None).sum())


class _Levels:
    """The level log as numpy columns split by team once, for :func:`utilisation` of both teams."""

    def __init__(self, levels: pd.DataFrame) -> None:
        # Compare in pandas (string columns are Arrow-backed: a vectorised compare), not
        # as a numpy object array, which costs a Python comparison per row.
        team = levels["team"]
        self.rows = {name: np.flatnonzero((team == name).to_numpy(bool, na_value=False)) for name in TEAMS}
        self.time = levels["time"].to_numpy(float)
        self.busy = levels["busy"].to_numpy(float)
        self.capacity = levels["capacity"].to_numpy(float)
        # A segmented run's team is one pool per segment: its levels are their sums.
        self.segment = levels[SEGMENT].to_numpy(object) if SEGMENT in levels.columns else None

    def utilisation(self, team: str, start: float, end: float) -> float:
        rows = self.rows[team]
        t = self.time[rows]
        if self.segment is not None:
            segment = self.segment[rows]
            busy, capacity = _summed_steps(t, self.busy[rows], segment), _summed_steps(t, self.capacity[rows], segment)
            return _utilisation(*busy, *capacity, start, end)
        return _utilisation(*_as_steps(t, self.busy[rows]), *_as_steps(t, self.capacity[rows]), start, end)
