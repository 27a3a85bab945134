"""What an opportunities export says about itself: stale open deals, a truncated history, the observed months.

Stale open deals
    A deal still open long after every comparable deal has closed is usually dead but never
    closed in the CRM. Left open it is censored at its age, and the censored cycle fit reads
    it as *slow*: a few such zombies double the tail of the cycle and keep the win rate's
    denominator short. A deal is **stale** when its age on the as-of date exceeds the
    :data:`STALE_QUANTILE` (P99) of the cycles of the closed deals. ``--stale`` says what to
    do with them (:data:`STALE_POLICIES`):

    ``close-lost`` (default)
        lost, on the day it went stale (its age set to the P99) for the win rate's competing
        risks; left out of the cycle fit, since when it died is unknown (placing it at the P99
        would pile up mass there and lengthen the mean), and out of the initial pipeline.
    ``drop``
        left out of every fit and of the initial pipeline (the win rate is then that of the
        deals whose fate is known).
    ``keep``
        open, as the CRM says (censored at its age, and in the initial pipeline).

Truncated history
    An export that starts mid-stream lacks the deals opened before its first date, so the
    wins of its first months are undercounted (their deals are missing) while its
    opportunity counts are not. :func:`truncation` looks for the signs: a first month already
    at the usual rate (a business that started then would ramp up), a pile of deals created on
    the very first day (an import), stage changes before the first deal, and an as-of date
    well after the latest date in the files (the export was pulled earlier).

Observed months
    :func:`observed_months`: opportunities created, deals won and won value per calendar
    month, each month with the days of it the export covers, for the self-check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_STALE",
    "MID_STREAM",
    "STALE_POLICIES",
    "STALE_QUANTILE",
    "Finding",
    "StaleDeals",
    "observed_months",
    "stale_deals",
    "truncation",
]

STALE_QUANTILE = 0.99
STALE_POLICIES = ("close-lost", "drop", "keep")
DEFAULT_STALE = "close-lost"
FLAT_START = 0.6  # a first month at >= 60% of the median month's rate started mid-stream
SPIKE_FACTOR = 10.0  # a first day with >= 10x the mean daily count (and >= 5 deals) is an import
SPIKE_MIN = 5
AS_OF_GAP_DAYS = 7  # an as-of date a week or more after the latest date: the export was pulled earlier
MID_STREAM = frozenset({"flat_start", "first_day_spike", "history_before_first_deal"})
"""The findings that say the history starts mid-stream (deals opened before it are missing)."""


@dataclass(frozen=True)
class StaleDeals:
    """The open deals older than the P99 of closed cycles, and what ``policy`` does with them.

    ``mask`` is over the deals passed to :func:`stale_deals` (True: stale); ``ages`` their ages in
    days on the as-of date.
    """

    policy: str
    threshold_days: float
    n_closed: int
    n_open: int
    mask: np.ndarray
    ages: np.ndarray

    @property
    def count(self) -> int:
        return int(self.mask.sum())

    @property
    def oldest_days(self) -> float:
        return float(self.ages.max()) if len(self.ages) else math.nan

    def describe(self) -> str:
        """One line for the terminal and the report."""
        if not self.count:
            return (
                f"no stale deals: no open deal older than {self.threshold_days:.0f} days "
                f"(P99 of {self.n_closed} closed cycles)"
            )
        what = {
            "close-lost": "counted as lost for the win rate, left out of the cycle fit and the initial pipeline",
            "drop": "left out of the fits and of the initial pipeline",
            "keep": "kept open (censored at their age) and in the initial pipeline",
        }[self.policy]
        return (
            f"{self.count} of {self.n_open} open deals are stale (open longer than {self.threshold_days:.0f} days, "
            f"the P99 of {self.n_closed} closed cycles; the oldest {self.oldest_days:.0f} days): {what} "
            f"(--stale {self.policy})"
        )

    def apply(self, outcome: pd.Series, duration: np.ndarray) -> tuple[np.ndarray, pd.Series, np.ndarray]:
        """``(keep, outcome, duration)``: the deals kept for the win rate, with the stale ones treated per ``policy``.

        The cycle fit takes the kept deals less :attr:`dead` (see :attr:`in_cycle_fit`).
        """
        keep = np.ones(len(duration), dtype=bool)
        if self.policy == "close-lost":
            outcome = outcome.where(~self.mask, "lost")
            duration = np.where(self.mask, self.threshold_days, duration)
        elif self.policy == "drop":
            keep = ~self.mask
        return keep, outcome, duration

    def in_cycle_fit(self, keep: np.ndarray) -> np.ndarray:
        """Of the kept deals, those the cycle fit uses: all but the ones closed as lost by ``close-lost``."""
        mask = self.mask[keep]
        return ~mask if self.policy == "close-lost" else np.ones(len(mask), dtype=bool)


def stale_deals(outcome: pd.Series, duration: np.ndarray, policy: str) -> StaleDeals:
    """Find the open deals whose age exceeds the :data:`STALE_QUANTILE` of the closed deals' cycles.

    Parameters
    ----------
    outcome
        ``won``, ``lost`` or ``open`` on the as-of date, one per deal.
    duration
        Days from created to closed (closed deals) or to the as-of date (open deals).
    policy
        One of :data:`STALE_POLICIES`.
    """
    if policy not in STALE_POLICIES:
        raise ValueError(f"--stale must be one of {', '.join(STALE_POLICIES)}, got {policy!r}")
    is_open = (outcome == "open").to_numpy()
    closed = duration[~is_open]
    threshold = float(np.quantile(closed, STALE_QUANTILE)) if len(closed) else math.inf
    mask = is_open & (duration > threshold)
    return StaleDeals(policy, threshold, len(closed), int(is_open.sum()), mask, duration[mask])


def observed_months(
    created: pd.Series, closed: pd.Series, won: np.ndarray, amount: pd.Series, cut: pd.Timestamp
) -> pd.DataFrame:
    """Opportunities created, deals won and won value per calendar month, up to the as-of date.

    Parameters
    ----------
    created, closed
        Each deal's created and close timestamps (close: NaT while open).
    won
        True for the deals won before ``cut``.
    amount
        Each deal's amount (NaN when missing: a win without an amount adds nothing to the value
        and is counted in ``wins_without_amount``).
    cut
        The end of the as-of day (00:00 of the day after).

    Returns
    -------
    pandas.DataFrame
        ``month`` (``YYYY-MM``), ``days_observed`` (days of the month from the first created day
        to the as-of day), ``full`` (every day of the month observed), ``opportunities``,
        ``wins``, ``won_value``, ``wins_without_amount``.
    """
    first = created.min().normalize()
    months = pd.period_range(first.to_period("M"), (cut - pd.Timedelta(days=1)).to_period("M"), freq="M")
    made = created.dt.to_period("M").value_counts()
    won = np.asarray(won, dtype=bool)
    won_month = closed[won].dt.to_period("M")
    value = amount[won]
    wins = won_month.value_counts()
    won_value = value.groupby(won_month.to_numpy()).sum()
    unknown = value.isna().groupby(won_month.to_numpy()).sum()
    rows = []
    for m in months:
        lo = max(m.start_time, first)
        hi = min(m.end_time.normalize() + pd.Timedelta(days=1), cut)
        days = max((hi - lo).days, 0)
        rows.append(
            {
                "month": str(m),
                "days_observed": days,
                "full": days == m.days_in_month,
                "opportunities": int(made.get(m, 0)),
                "wins": int(wins.get(m, 0)),
                "won_value": float(won_value.get(m, 0.0)),
                "wins_without_amount": int(unknown.get(m, 0)),
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Finding:
    """One sign that the history is truncated: ``kind`` (a short name) and what it means."""

    kind: str
    message: str


def truncation(
    created: pd.Series,
    months: pd.DataFrame,
    cut: pd.Timestamp,
    latest: pd.Timestamp,
    history_first: pd.Timestamp | None = None,
) -> list[Finding]:
    """The signs that the export starts (or ends) mid-stream; see the module docstring.

    Parameters
    ----------
    created
        The created timestamps of the usable deals.
    months
        :func:`observed_months` of the same deals.
    cut
        The end of the as-of day.
    latest
        The latest date in the exports.
    history_first
        The earliest stage change of the stage history, when one was given.
    """
    found: list[Finding] = []
    first = created.min().normalize()
    found += _flat_start(months)
    found += _first_day_spike(created, first, cut)
    if history_first is not None and pd.notna(history_first) and history_first.normalize() < first:
        found.append(
            Finding(
                "history_before_first_deal",
                f"the stage history has changes from {history_first.date()}, before the first opportunity of the "
                f"export ({first.date()}): deals open before the export begins are not in it",
            )
        )
    gap = (cut - pd.Timedelta(days=1) - latest.normalize()).days
    if gap >= AS_OF_GAP_DAYS:
        found.append(
            Finding(
                "as_of_after_data",
                f"--as-of is {gap} days after the latest date in the exports ({latest.date()}): if the export was "
                "pulled earlier, the deals created and closed since are missing and open deals look older than "
                "they are (give --as-of the day the export was pulled)",
            )
        )
    return found


def _flat_start(months: pd.DataFrame) -> list[Finding]:
    """A first month (at least a week of it observed) already at the usual rate of opportunities."""
    full = months[months["full"]]
    head = months.iloc[0] if len(months) else None
    if head is None or len(full) < 3 or head["days_observed"] < 7:
        return []
    later = full[full["month"] != head["month"]]
    typical = float(np.median(later["opportunities"] / later["days_observed"]))
    rate = head["opportunities"] / head["days_observed"]
    if typical <= 0 or rate < FLAT_START * typical:
        return []
    return [
        Finding(
            "flat_start",
            f"the history starts mid-stream: its first month ({head['month']}) already has {rate / typical:.0%} of "
            "a typical month's opportunities (a business that started then would ramp up), so deals opened before "
            "it are probably missing and the wins of its first months are undercounted",
        )
    ]


def _first_day_spike(created: pd.Series, first: pd.Timestamp, cut: pd.Timestamp) -> list[Finding]:
    """Many deals created on the very first day: an import of older deals under one date."""
    days = max((cut - first).days, 1)
    on_first = int((created.dt.normalize() == first).sum())
    mean_daily = len(created) / days
    if on_first < SPIKE_MIN or on_first < SPIKE_FACTOR * mean_daily:
        return []
    return [
        Finding(
            "first_day_spike",
            f"{on_first} deals were created on the first day ({first.date()}), {on_first / mean_daily:.0f}x the mean "
            "daily count: an import of older deals under one date, whose true ages (and cycle times) are unknown",
        )
    ]
