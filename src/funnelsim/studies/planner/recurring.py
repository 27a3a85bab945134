"""A subscription goal in the analytic model's terms: the bookings an ARR goal needs.

The analytic waterfall (:mod:`.waterfall`) expects bookings (revenue won in the period), not
ARR. For a goal on ARR (:data:`~.period.GOALS`: ARR at the period's end, or the period's net new
ARR) the customers' own model (:func:`funnelsim.engine.customers.simulate_customers`) gives the
two terms of

    E[goal measure] = base + per_booking × E[bookings in the period]

``base``: what the installed base alone gives (its renewals, churn, expansion and
contraction; no new customer). ``per_booking``: what one unit of ARR signed in the period is
worth to the measure at its end (its expansion, contraction and churn in the time left),
(of the goal's segment alone for a goal of one segment: its installed base, its new customers) from new
customers signed through the period as the analytic waterfall books (each month's
share of the period's expected bookings, evenly within the month: a cold-started company books
late in its first year, which revenue recognised in the period feels), split evenly between the
segments. The measure is linear in the new customers' ARR (their changes are fractions of it),
so this is exact up to the Monte Carlo error of :data:`ARR_RUNS` runs and the spread over time
and segments. It only gives the search its starting point and the analytic checks
their scale: plans are chosen and verified on the simulated measure itself.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd

from funnelsim.engine.customers import NewCustomers, simulate_customers
from funnelsim.model.scenario import Scenario
from funnelsim.randomness import Streams
from funnelsim.run.recurring import arr_bridge
from funnelsim.studies.planner.levers import apply_changes
from funnelsim.studies.planner.period import Period, period_revenue
from funnelsim.studies.planner.waterfall import waterfall
from funnelsim.studies.replications import MONTHLY_ARR_COLUMNS

__all__ = ["ARR_RUNS", "arr_terms", "bookings_for"]

ARR_RUNS = 16
"""Runs of the customers' model averaged for :func:`arr_terms`."""
_NEW = 600  # new customers of unit ARR per run, signed evenly through the period
_SEED = 20_270_101  # fixed: the terms are a function of the scenario and the period
_CACHE: dict[tuple[str, Period], tuple[float, float]] = {}


def bookings_for(scenario: Scenario, period: Period, goal: float) -> float:
    """The bookings in ``period`` whose expected measure is ``goal`` (``goal`` itself for a bookings goal)."""
    if period.goal == "bookings":
        return goal
    base, per_booking = arr_terms(scenario, period)
    return max(goal - base, 0.0) / per_booking


def arr_terms(scenario: Scenario, period: Period) -> tuple[float, float]:
    """``(base, per_booking)`` of the module docstring, for a subscription scenario framed to end with ``period``."""
    key = (scenario.sha256(), period)
    if key not in _CACHE:
        segments = np.array(
            [period.segment] if period.segment is not None else scenario.segment_names or ["all"], dtype=object
        )
        times = _signing_days(scenario, period)
        new = NewCustomers(times, np.ones(_NEW), np.arange(_NEW), segments[np.arange(_NEW) % len(segments)])
        none = NewCustomers(np.empty(0), np.empty(0), np.empty(0, np.int64), np.empty(0, object))
        without_base = apply_changes(scenario, {"subscription.installed_base": None})
        base, per_booking = [], []
        for run in range(ARR_RUNS):
            streams = Streams(_SEED, run, domain="planner/arr")
            base.append(_measure(scenario, simulate_customers(scenario, none, streams)[0], period))
            per_booking.append(_measure(scenario, simulate_customers(without_base, new, streams)[0], period) / _NEW)
        _CACHE[key] = (float(np.mean(base)), float(np.mean(per_booking)))
    return _CACHE[key]


def _signing_days(scenario: Scenario, period: Period) -> np.ndarray:
    """:data:`_NEW` signing days (from the scenario's start) spread like the waterfall's bookings by month (the
    goal segment's)."""
    flow = waterfall(scenario, period)
    months = flow.segments[period.segment] if period.segment and flow.segments else flow.months
    months = months[months["phase"] == "period"]
    starts = [float((dt.date.fromisoformat(f"{m}-01") - scenario.start_date).days) for m in months["month"]]
    edges = np.array([*starts, float((period.end - scenario.start_date).days + 1)])
    weight = np.clip(months["revenue"].to_numpy(float), 0.0, None)
    cumulative = np.concatenate([[0.0], np.cumsum(weight if weight.sum() > 0 else np.ones(len(weight)))])
    # The quantiles (i + 1/2) / n of the piecewise-uniform distribution of the months' weights.
    return np.interp((np.arange(_NEW) + 0.5) / _NEW * cumulative[-1], cumulative, edges)


def _measure(scenario: Scenario, ledger: pd.DataFrame, period: Period) -> float:
    """The goal's measure of one ledger (its goal segment's customers), read as the planner reads a replication's
    months."""
    if period.segment is not None:
        ledger = ledger[ledger["segment"] == period.segment]
        period = dataclasses.replace(period, segment=None)
    bridge = arr_bridge(ledger, scenario.start_date, scenario.horizon_days)
    monthly = pd.DataFrame({"replication": 0, "month": bridge["period"], "revenue": bridge["new_arr"]})
    for column, name in MONTHLY_ARR_COLUMNS.items():
        monthly[name] = bridge[column].to_numpy()
    return float(period_revenue(monthly, period)[0])
