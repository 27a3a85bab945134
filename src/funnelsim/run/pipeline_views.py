"""Pipeline views: coverage of the target by open pipeline, slipped close dates, forecast categories.

What a sales manager reads in a pipeline review, computed from a run's event log (pure
functions, no simulation); they apply when the scenario has a ``forecast`` section
(docs/model.md, "Pipeline views").

Targets
    A month's bookings target is ``rate * days`` with ``rate`` the command's ``--goal`` ÷
    ``horizon_days``, else ``forecast.bookings_target_per_year`` ÷ 365.25, else
    ``prior_year_revenue`` ÷ 365.25; ``forecast.bookings_target_by_month`` replaces it for the
    months it lists (not with a ``--goal``).
Coverage
    At the end ``e`` of each month, ``coverage = open value at e / remaining target``, with the
    remaining target that of the period (``forecast.coverage_period``) holding day ``e`` less what
    was booked in it before ``e`` (from day 0 on); NaN once the period's target is met.
Slippage
    An AE forecasts a deal opened at ``o`` to close at ``f0 = o + F`` (``F`` =
    ``sales.forecast_cycle_days``, default the median of ``cycle_days``) and pushes the date by
    ``P = forecast.push_days`` each time it passes with the deal still open, so a deal that ends
    (closes, or the run ends) at ``c`` was pushed ``n = ceil((c - f0) / P)`` times if ``c > f0``,
    else 0; each push moves its value out of the month of the date it passed. A deal opened before
    day 0 (a warm start's) has no known opening and no forecast.
Forecast categories
    A deal's win probability is the model's ``P(win | fit)`` (:func:`~funnelsim.model.mechanisms.win_probability`,
    with the replication's win rate). The model draws a deal's cycle length independently of its
    outcome, so a deal still open at any age keeps that probability. Commit: ``p >=
    commit_probability``; best case: ``p >= best_case_probability``; pipeline: below. At each
    month end the open deals of each category, their value and expected value ``sum p * value``;
    and (calibration) how the deals open at one month end or more closed, per category.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from funnelsim.model.mechanisms import win_probability
from funnelsim.model.scenario import Sales, rate
from funnelsim.run.quotas import ALL, period_edges

if TYPE_CHECKING:
    from funnelsim.model.distributions import Spec
    from funnelsim.model.scenario import Scenario
    from funnelsim.run.result import RunResult

__all__ = [
    "CATEGORIES",
    "PipelineViews",
    "categorise",
    "forecast_cycle_days",
    "median_of",
    "monthly_targets",
    "pipeline_views",
    "pushes",
    "sales_settings_of",
]

CATEGORIES = ("commit", "best_case", "pipeline")
DAYS_PER_YEAR = 365.25


def sales_settings_of(scenario: Scenario, segment: str) -> Sales:
    """The sales settings (cycle, win rate, forecast cycle) of one segment (:meth:`Scenario.view_of`)."""
    return scenario.view_of(segment).sales


def median_of(spec: Spec) -> float:
    """The median of a distribution spec."""
    if spec.variance == 0:
        return float(spec.mean)
    values = getattr(spec, "values", None)
    if values is not None:  # empirical: the median of the values
        return float(np.median(values))
    return float(spec.scipy().median())


def forecast_cycle_days(sales: Sales) -> float:
    """Days from opening to the first forecast close date: ``forecast_cycle_days``, or the median cycle."""
    return float(sales.forecast_cycle_days) if sales.forecast_cycle_days is not None else median_of(sales.cycle_days)


def pushes(opened: np.ndarray, ended: np.ndarray, cycle_days: np.ndarray | float, push_days: float) -> np.ndarray:
    """Times each deal's forecast close date was pushed: ``ceil((c - f0) / P)`` for ``c > f0``, else 0.

    ``opened`` (NaN: unknown, gives NaN), ``ended`` (its close, or the end of the run while open),
    ``cycle_days`` ``F`` (``f0 = opened + F``) and ``push_days`` ``P``.
    """
    opened, ended = np.asarray(opened, dtype=float), np.asarray(ended, dtype=float)
    late = ended - (opened + cycle_days)
    out = np.where(late > 0, np.ceil(late / push_days), 0.0)
    return np.where(np.isnan(opened), np.nan, out)


def categorise(probability: np.ndarray, commit: float, best_case: float) -> np.ndarray:
    """Forecast category of each win probability: ``commit``, ``best_case`` or ``pipeline``."""
    p = np.asarray(probability, dtype=float)
    return np.where(p >= commit, "commit", np.where(p >= best_case, "best_case", "pipeline")).astype(object)


def monthly_targets(
    scenario: Scenario, horizon_days: float, goal: float | None = None, through_days: float | None = None
) -> pd.DataFrame:
    """The bookings target of each calendar month from day 0's to the one holding ``through_days``.

    Returns
    -------
    pandas.DataFrame
        ``month`` ("YYYY-MM"), ``start`` and ``end`` (days since ``start_date``; the first month's start
        may be negative), ``target`` (the whole month's) and ``target_in_run`` (its share of days inside
        ``[0, horizon_days)``); NaN targets when the scenario and the command give none (module docstring).
    """
    last = max(float(horizon_days), float(through_days or 0.0))
    labels, _ = period_edges(scenario.start_date, last + 1.0, "month")
    day_0 = np.datetime64(scenario.start_date, "D")
    months = np.datetime64(scenario.start_date, "M") + np.arange(len(labels) + 1)
    bounds = (months.astype("datetime64[D]") - day_0).astype(np.int64).astype(float)
    starts, ends = bounds[:-1], bounds[1:]
    per_day, by_month = _target_rate(scenario, horizon_days, goal)
    target = np.array([by_month.get(m, per_day * (e - s)) for m, s, e in zip(labels, starts, ends, strict=True)])
    inside = np.clip(np.minimum(ends, horizon_days) - np.maximum(starts, 0.0), 0.0, None)
    return pd.DataFrame(
        {
            "month": labels,
            "start": starts,
            "end": ends,
            "target": target,
            "target_in_run": target * inside / (ends - starts),
        }
    )


def _target_rate(scenario: Scenario, horizon_days: float, goal: float | None) -> tuple[float, dict[str, float]]:
    """Bookings target per day, and the months given their own target."""
    if goal is not None:
        return float(goal) / float(horizon_days), {}
    forecast = scenario.forecast
    by_month = dict(forecast.bookings_target_by_month) if forecast is not None else {}
    if forecast is not None and forecast.bookings_target_per_year is not None:
        return forecast.bookings_target_per_year / DAYS_PER_YEAR, by_month
    if scenario.prior_year_revenue is not None:
        return scenario.prior_year_revenue / DAYS_PER_YEAR, by_month
    return math.nan, by_month


@dataclass(frozen=True)
class PipelineViews:
    """The pipeline views of one run: by month, per deal, the calibration of the categories, summary keys."""

    months: pd.DataFrame
    deals: pd.DataFrame
    calibration: pd.DataFrame
    summary: dict[str, float] = field(default_factory=dict)


def pipeline_views(result: RunResult, goal: float | None = None) -> PipelineViews:
    """Coverage, slippage and forecast categories of a run (module docstring).

    Parameters
    ----------
    result
        The run; its scenario must have a ``forecast`` section.
    goal
        The command's bookings goal for the horizon (``--goal``), which then sets the targets.

    Returns
    -------
    PipelineViews
        ``months`` (``pipeline_views.csv``), ``deals`` (``forecast_deals.csv``), ``calibration``
        (``forecast_calibration.csv``) and ``summary`` (the keys
        :func:`funnelsim.run.metrics.summarize_run` adds); columns in docs/outputs.md.
    """
    scenario = result.scenario
    forecast = scenario.forecast
    if forecast is None:
        raise ValueError("the scenario has no forecast section: no pipeline views")
    horizon = float(scenario.horizon_days)
    deals = deal_table(result)
    labels, edges = period_edges(scenario.start_date, horizon, "month")
    month_ends = edges[1:]
    is_open = _open_at(deals, month_ends)
    months = pd.DataFrame({"month": labels, "month_end": month_ends})
    months = months.join(_coverage(result, deals, is_open, month_ends, goal))
    months = months.join(_categories(deals, is_open))
    months = months.join(_slipped(deals, edges, forecast.push_days))
    calibration = _calibration(deals[is_open.any(axis=1)])
    return PipelineViews(months, deals, calibration, _views_summary(deals, months, calibration))


def deal_table(result: RunResult) -> pd.DataFrame:
    """One row per opportunity of the run's log: when it opened and closed, its win probability,
    forecast category and forecast close dates (columns in docs/outputs.md, ``forecast_deals.csv``)."""
    scenario, ev = result.scenario, result.events
    forecast = scenario.forecast
    assert forecast is not None
    kind = ev["event"].astype(str).to_numpy()
    opened = ev[kind == "opportunity"].drop_duplicates("lead", keep="last").set_index("lead")
    closed = ev[np.isin(kind, ("won", "lost"))].drop_duplicates("lead", keep="last").set_index("lead")
    leads = opened.index.union(closed.index)
    opened, closed = opened.reindex(leads), closed.reindex(leads)
    lead = leads.to_numpy(np.int64)
    attributes = result.attributes
    segment = attributes["segment"].astype(str).to_numpy()[lead] if "segment" in attributes else np.full(len(lead), ALL)
    fit = attributes["fit"].to_numpy(float)[lead]
    p, cycle = np.full(len(lead), np.nan), np.full(len(lead), np.nan)
    drawn = result.metadata.get("parameters", {})
    for name in pd.unique(segment):
        sales, mine = sales_settings_of(scenario, str(name)), segment == name
        win_rate = drawn.get("sales.win_rate", rate(sales.win_rate)) if name == ALL else rate(sales.win_rate)
        p[mine] = win_probability(float(win_rate), sales.fit_effect, fit[mine])
        cycle[mine] = forecast_cycle_days(sales)
    start = opened["time"].to_numpy(float)
    end = closed["time"].to_numpy(float)
    ended = np.where(np.isnan(end), float(scenario.horizon_days), end)
    pushed = pushes(start, ended, cycle, forecast.push_days)
    outcome = closed["event"].astype(object).where(closed["event"].notna(), "open").astype(str)
    out = pd.DataFrame(
        {
            "lead": lead,
            "segment": segment,
            "rep": np.where(opened["rep"].notna(), opened["rep"], closed["rep"]).astype(np.int64),
            "opened": start,
            "closed": end,
            "outcome": outcome.to_numpy(),
            "value": np.where(opened["value"].notna(), opened["value"], closed["value"]).astype(float),
            "win_probability": p,
            "category": categorise(p, forecast.commit_probability, forecast.best_case_probability),
            "first_forecast": start + cycle,
            "pushes": pushed,
            "last_forecast": start + cycle + pushed * forecast.push_days,
        }
    )
    return out if "segment" in attributes else out.drop(columns="segment")


def _open_at(deals: pd.DataFrame, times: np.ndarray) -> np.ndarray:
    """Whether each deal is open at each time (deals × times): opened before it (or before day 0), not closed."""
    opened = deals["opened"].to_numpy(float)[:, None]
    closed = deals["closed"].to_numpy(float)[:, None]
    t = np.asarray(times, dtype=float)[None, :]
    return (np.isnan(opened) | (opened < t)) & ~(closed < t)


def _unseen_opening(result: RunResult, deals: pd.DataFrame) -> tuple[int, float]:
    """Deals open on day 0 that have no event in the run (a warm start's, open all year): count and value."""
    if result.scenario.start_mode != "warm":
        return 0, 0.0  # a cold start has none; a pipeline start's open deals are in the log at day 0
    opening = result.metadata.get("open_at_start", {})
    carried = deals[deals["opened"].isna()]
    count = int(opening.get("opportunities", 0)) - len(carried)
    value = float(opening.get("value", 0.0)) - float(carried["value"].sum())
    return (count, max(value, 0.0)) if count > 0 else (0, 0.0)


def _coverage(
    result: RunResult, deals: pd.DataFrame, is_open: np.ndarray, month_ends: np.ndarray, goal: float | None
) -> pd.DataFrame:
    """Per month end: this month's target and bookings, the coverage period's remaining target, open pipeline,
    coverage, and the open value forecast to close in the rest of the period."""
    scenario = result.scenario
    forecast = scenario.forecast
    assert forecast is not None
    horizon = float(scenario.horizon_days)
    targets = monthly_targets(scenario, horizon, goal, through_days=horizon + 366.0)
    step = {"month": 1, "quarter": 3, "year": 12}[forecast.coverage_period]
    codes = np.datetime64(scenario.start_date, "M").astype(np.int64) + np.arange(len(targets))
    period = codes // step
    won = result.events[(result.events["event"] == "won").to_numpy(bool)]
    won_at = won["time"].to_numpy(float)
    order = np.argsort(won_at, kind="stable")
    won_at, booked_by = won_at[order], np.concatenate([[0.0], np.cumsum(won["value"].to_numpy(float)[order])])

    def booked(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return booked_by[np.searchsorted(won_at, b, side="left")] - booked_by[np.searchsorted(won_at, a, side="left")]

    holding = np.searchsorted(targets["start"].to_numpy(float), month_ends, side="right") - 1
    in_period = period[:, None] == period[holding][None, :]
    period_target = (targets["target"].to_numpy(float)[:, None] * in_period).sum(axis=0)
    period_start = np.array([targets["start"].to_numpy(float)[in_period[:, j]].min() for j in range(len(month_ends))])
    period_end = np.array([targets["end"].to_numpy(float)[in_period[:, j]].max() for j in range(len(month_ends))])
    remaining = period_target - booked(np.maximum(period_start, 0.0), month_ends)
    unseen_count, unseen_value = _unseen_opening(result, deals)
    values = deals["value"].to_numpy(float)
    open_value = values @ is_open + unseen_value
    current = _forecast_at(deals["first_forecast"].to_numpy(float), month_ends, forecast.push_days)
    due = is_open & (current < period_end[None, :])
    starts = np.append(0.0, month_ends[:-1])
    in_run = targets["target_in_run"].to_numpy(float)[: len(month_ends)]
    return pd.DataFrame(
        {
            "target": in_run,
            "booked": booked(starts, month_ends),
            "coverage_period": [_period_label(int(period[i]), forecast.coverage_period, step) for i in holding],
            "remaining_target": remaining,
            "open_deals": is_open.sum(axis=0) + unseen_count,
            "open_value": open_value,
            "unseen_value": np.full(len(month_ends), unseen_value),
            "coverage": np.where(remaining > 0, open_value / np.where(remaining > 0, remaining, 1.0), np.nan),
            "due_in_period_value": values @ due,
        }
    )


def _forecast_at(first_forecast: np.ndarray, times: np.ndarray, push_days: float) -> np.ndarray:
    """Each deal's forecast close date as it stands at each time (deals × times): the first date, pushed by
    ``push_days`` each time it passed; NaN without a forecast."""
    first = np.asarray(first_forecast, dtype=float)[:, None]
    t = np.asarray(times, dtype=float)[None, :]
    with np.errstate(invalid="ignore"):
        passed = np.where(t > first, np.ceil((t - first) / push_days), 0.0)
    return first + passed * push_days


def _period_label(code: int, kind: str, step: int) -> str:
    months = code * step
    if kind == "year":
        return f"{1970 + months // 12}"
    if kind == "quarter":
        return f"{1970 + months // 12}Q{months % 12 // 3 + 1}"
    return f"{1970 + months // 12:04d}-{months % 12 + 1:02d}"


def _categories(deals: pd.DataFrame, is_open: np.ndarray) -> pd.DataFrame:
    """Per month end and category: open deals, their value and expected value (win probability × value)."""
    values = deals["value"].to_numpy(float)
    expected = values * deals["win_probability"].to_numpy(float)
    category = deals["category"].to_numpy(object)
    columns: dict[str, np.ndarray] = {}
    for name in CATEGORIES:
        mine = is_open & (category == name)[:, None]
        columns[f"{name}_deals"] = mine.sum(axis=0)
        columns[f"{name}_value"] = values @ mine
        columns[f"{name}_expected_value"] = expected @ mine
    return pd.DataFrame(columns)


def _slipped(deals: pd.DataFrame, edges: np.ndarray, push_days: float) -> pd.DataFrame:
    """Per month: the deals whose forecast close date passed in it with the deal still open (a push), their value;
    and the deals closed in it (with a forecast), those closed after their first forecast date."""
    n = len(edges) - 1
    count = np.nan_to_num(deals["pushes"].to_numpy(float)).astype(np.int64)
    first = deals["first_forecast"].to_numpy(float)
    # One row per push: deal i's j-th push (j = 0 .. count_i - 1) happens on first_i + j * push_days.
    which = np.repeat(np.arange(len(count)), count)
    j = np.arange(len(which)) - np.repeat(np.cumsum(count) - count, count)
    month = np.searchsorted(edges, first[which] + j * push_days, side="right") - 1
    value = deals["value"].to_numpy(float)
    closed = deals["closed"].to_numpy(float)
    known = ~np.isnan(first) & ~np.isnan(closed)
    closed_month = np.searchsorted(edges, closed[known], side="right") - 1
    late = (closed > first)[known]
    return pd.DataFrame(
        {
            "pushed_deals": np.bincount(month, minlength=n)[:n],
            "pushed_value": np.bincount(month, weights=value[which], minlength=n)[:n],
            "closed_deals": np.bincount(closed_month, minlength=n)[:n],
            "closed_late_deals": np.bincount(closed_month[late], minlength=n)[:n],
        }
    )


def _calibration(deals: pd.DataFrame) -> pd.DataFrame:
    """How the deals of each category closed: deals, won, lost, still open, won share of the closed ones and
    their mean win probability (what the band promised)."""
    rows = []
    for name in CATEGORIES:
        mine = deals[(deals["category"] == name).to_numpy(bool)]
        outcome = mine["outcome"].to_numpy(object)
        won, lost = int(np.sum(outcome == "won")), int(np.sum(outcome == "lost"))
        closed = mine[(outcome == "won") | (outcome == "lost")]
        rows.append(
            {
                "category": name,
                "deals": len(mine),
                "won": won,
                "lost": lost,
                "open_at_end": len(mine) - won - lost,
                "won_share": won / (won + lost) if won + lost else math.nan,
                "mean_win_probability": float(closed["win_probability"].mean()) if len(closed) else math.nan,
                "value": float(mine["value"].sum()),
                "won_value": float(mine.loc[outcome == "won", "value"].sum()),
            }
        )
    return pd.DataFrame(rows)


def _views_summary(deals: pd.DataFrame, months: pd.DataFrame, calibration: pd.DataFrame) -> dict[str, float]:
    """The summary keys of the pipeline views (docs/outputs.md, "Pipeline view keys")."""
    closed = deals[deals["opened"].notna().to_numpy(bool) & deals["closed"].notna().to_numpy(bool)]
    late = closed["closed"].to_numpy(float) > closed["first_forecast"].to_numpy(float)
    coverage = months["coverage"].to_numpy(float)
    out = {
        "slipped_share": float(late.mean()) if len(closed) else math.nan,
        "pushes_per_closed_deal": float(closed["pushes"].mean()) if len(closed) else math.nan,
        "mean_pipeline_coverage": float(np.nanmean(coverage)) if np.any(~np.isnan(coverage)) else math.nan,
    }
    for row in calibration.itertuples():
        out[f"{row.category}_won_share"] = float(row.won_share)
    return out
