"""The period a plan is for, and the time frame simulated to reach it.

Revenue in month ``m`` comes from leads of months ``m - L .. m`` (``L`` the funnel's
lag), so the scenario is framed to start ``lead_in_months`` before the period and end
on its last day (:func:`frame`); revenue is counted by close month within the period
(:func:`period_revenue`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from funnelsim.model.scenario import Scenario
from funnelsim.studies.planner.errors import PlanError
from funnelsim.studies.planner.levers import apply_changes

__all__ = ["GOALS", "GOAL_FLAGS", "Period", "add_months", "frame", "month_starts", "months_between", "period_revenue"]

GOALS = {
    "bookings": "revenue booked in the period (for subscriptions: the ARR of the new customers at signing)",
    "ending_arr": "ARR at the end of the period",
    "net_new_arr": "net new ARR of the period: new + expansion - contraction - churn",
    "recognised_revenue": "subscription revenue recognised in the period: each month's ARR / 12, the mean of its "
    "opening and closing ARR",
}
"""What a goal may measure; all but bookings need a ``subscription`` section (their columns of the monthly
table, :mod:`funnelsim.studies.replications`)."""
GOAL_FLAGS = {
    "bookings": ("--goal", "closed in", "revenue"),
    "ending_arr": ("--goal-arr", "of ARR at the end of", "ending ARR"),
    "net_new_arr": ("--goal-net-new-arr", "of net new ARR in", "net new ARR"),
    "recognised_revenue": ("--goal-revenue", "of subscription revenue recognised in", "recognised revenue"),
}
"""Per goal of :data:`GOALS`: its ``plan`` flag, how a plan's headline says it, and its short name."""


@dataclass(frozen=True)
class Period:
    """Whole calendar months from ``start`` (a 1st) to ``end`` (a last day), inclusive, and what the goal
    measures in them (``goal``, a key of :data:`GOALS`): the whole company's, or one ``segment``'s (a segmented
    scenario's, ``plan --goal-segment``)."""

    start: dt.date
    end: dt.date
    goal: str = "bookings"
    segment: str | None = None

    def __post_init__(self) -> None:
        if self.start.day != 1:
            raise PlanError(f"--period must start on the 1st of a month, got {self.start}")
        if (self.end + dt.timedelta(days=1)).day != 1:
            raise PlanError(f"--period must end on the last day of a month, got {self.end}")
        if self.end < self.start:
            raise PlanError(f"--period ends ({self.end}) before it starts ({self.start})")

    @classmethod
    def parse(cls, text: str) -> Period:
        """``"2027-01-01:2027-12-31"``."""
        first, sep, last = text.partition(":")
        try:
            if not sep:
                raise ValueError(text)
            start, end = dt.date.fromisoformat(first.strip()), dt.date.fromisoformat(last.strip())
        except ValueError:
            message = f"--period: expected START:END as ISO dates, e.g. 2027-01-01:2027-12-31, got {text!r}"
            raise PlanError(message) from None
        return cls(start, end)

    @classmethod
    def of(cls, scenario: Scenario) -> Period:
        """The scenario's own horizon, which must then be whole months."""
        try:
            return cls(scenario.start_date, scenario.end_date - dt.timedelta(days=1))
        except PlanError:
            raise PlanError(
                f"the scenario runs {scenario.start_date} to {scenario.end_date} (not whole calendar months); "
                "give the period to plan with --period START:END"
            ) from None

    @property
    def months(self) -> list[str]:
        """The period's months as ``"YYYY-MM"``, in order."""
        return [f"{d.year:04d}-{d.month:02d}" for d in month_starts(self.start, self.end)]

    def __str__(self) -> str:
        return f"{self.start}:{self.end}"


def month_starts(start: dt.date, end: dt.date) -> Iterator[dt.date]:
    """The 1st of every month from ``start``'s month to ``end`` (inclusive)."""
    day = dt.date(start.year, start.month, 1)
    while day <= end:
        yield day
        day = add_months(day, 1)


def add_months(day: dt.date, months: int) -> dt.date:
    """The 1st of the month ``months`` calendar months after ``day``'s (before, if negative)."""
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def months_between(start: dt.date, before: dt.date) -> list[dt.date]:
    """The 1st of every month from ``start``'s month up to the day before ``before`` (none if not earlier)."""
    return list(month_starts(start, before - dt.timedelta(days=1))) if start < before else []


def frame(scenario: Scenario, period: Period, lead_in_months: int) -> Scenario:
    """The scenario re-timed to run from ``lead_in_months`` before the period to its end.

    It starts at the earlier of that date and the scenario's own start (hires keep their
    dates), and ends on the period's last day. A scenario with an initial pipeline or an
    installed base of customers starts on its own ``start_date``, the date they are of.
    """
    start = min(scenario.start_date, add_months(period.start, -lead_in_months))
    if scenario.subscription is not None and scenario.subscription.installed_base is not None:
        # The installed base is the customers paying on start_date: the run starts there (no lead-in).
        start = scenario.start_date
    if scenario.initial_pipeline is not None:
        # The open deals are the pipeline on start_date: the run cannot start before it.
        if period.start < scenario.start_date:
            raise PlanError(
                f"--period starts {period.start}, before {scenario.start_date}, the date of the "
                "scenario's initial_pipeline; plan a period from that date on"
            )
        start = scenario.start_date
    horizon = (period.end - start).days + 1
    return apply_changes(scenario, {"start_date": start.isoformat(), "horizon_days": horizon})


def period_revenue(monthly: pd.DataFrame, period: Period) -> np.ndarray:
    """What the goal measures in the period (:attr:`Period.goal`), per replication (ordered by replication):
    revenue booked, ARR at the period's end, the period's net new ARR, or its recognised subscription revenue
    (each month's opening ARR, its closing ARR less its net new ARR, averaged with the closing, ÷ 12); of
    :attr:`Period.segment` alone when it is set (the monthly table's ``<column>@<segment>`` columns)."""
    inside = monthly[monthly["month"].isin(period.months)]
    if period.segment is not None:
        own = [c for c in inside.columns if c.endswith(f"@{period.segment}")]
        inside = inside[["replication", "month"]].join(inside[own].rename(columns=lambda c: c.rsplit("@", 1)[0]))
    by = inside.groupby("replication", sort=True)
    if period.goal == "ending_arr":
        return by["arr"].last().to_numpy(float)
    if period.goal in ("net_new_arr", "recognised_revenue"):
        net = inside["new_arr"] + inside["expansion_arr"] - inside["contraction_arr"] - inside["churned_arr"]
        if period.goal == "net_new_arr":
            return net.groupby(inside["replication"], sort=True).sum().to_numpy(float)
        recognised = (inside["arr"] - net / 2) / 12  # (opening + closing) / 2 / 12, opening = closing - net
        return recognised.groupby(inside["replication"], sort=True).sum().to_numpy(float)
    return by["revenue"].sum().to_numpy(float)
