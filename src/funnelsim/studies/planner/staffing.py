r"""A team's expected headcount over time: who is on staff, how ramped, who leaves, who is hired.

A rep's tenure is exponential with rate :math:`\lambda` = ``attrition_per_year`` / 365.25
a day, so of ``n`` reps who joined on day ``j``, :math:`n\,S(t - j)` are on staff on day
``t``, :math:`S(u) = e^{-\lambda u}`, and :math:`n\,(S(t - j) - S(t + 1 - j))` leave on
day ``t``. With ``backfill_days`` ``b``, everyone who leaves on day ``t`` is replaced by a
new hire on day ``t + b`` (who ramps and may leave in turn), so the joins of day ``t``
are the planned hires plus the leavers of day ``t - b``: a renewal recursion, solved day
by day. On day ``t`` (its midpoint ``t + 1/2``), with :math:`J_j` the joins of day ``j``,

.. math:: \text{heads}(t) = \sum_{j \le t} J_j\, S(t + \tfrac12 - j), \qquad
          \text{fte}(t) = \sum_{j \le t} J_j\, S(t + \tfrac12 - j)\, \rho(t + \tfrac12 - j),

:math:`\rho(u)` the ramp (productivity ``ramp[floor(u / 30.44)]``, 1 for the reps on staff
on day 0), and the slots likewise with ``slots(rho)``. Without attrition this is the
hiring plan itself. *Hires to hold the headcount* are the expected leavers: with a
backfill they are hired automatically (``b`` days later); without one, the headcount
falls by that much unless someone hires them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from funnelsim.model.mechanisms import productivity, slots
from funnelsim.model.scenario import DAYS_PER_MONTH, AETeam, Scenario, SDRTeam

__all__ = ["TeamSchedule", "team_schedule"]


@dataclass(frozen=True)
class TeamSchedule:
    """Per day of the grid: expected ``heads`` on staff, ramped equivalents ``fte``, ``slots``, ``joins``
    (planned hires and backfills), ``backfills`` (the joins that replace leavers) and ``leavers``."""

    heads: np.ndarray
    fte: np.ndarray
    slots: np.ndarray
    joins: np.ndarray
    backfills: np.ndarray
    leavers: np.ndarray


def team_schedule(scenario: Scenario, team: str, days: int, attrition: bool = True) -> TeamSchedule:
    """The expected schedule of ``team`` (``"ae"`` or ``"sdr"``) over ``days`` days from ``start_date``.

    ``attrition=False`` ignores leavers (and so backfills): the hiring plan as written, an
    upper bound on capacity.
    """
    spec: AETeam | SDRTeam = scenario.sales.ae if team == "ae" else scenario.handoff.sdr
    rate = spec.attrition_per_year / 365.25 if attrition else 0.0
    u = np.arange(days, dtype=float)
    on_staff = np.exp(-rate * (u + 0.5))  # S(u + 1/2): still there mid-day, u days after joining
    share = np.array([productivity(spec, x / DAYS_PER_MONTH) for x in u + 0.5])
    seat = np.array([float(slots(spec, x)) for x in share])
    leave = np.exp(-rate * u) - np.exp(-rate * (u + 1))  # left on day u after joining
    planned = np.zeros(days)
    for hire in spec.hires:
        day = (hire.date - scenario.start_date).days
        if 0 <= day < days:
            planned[day] += hire.count
    backfills, leavers = _renewals(float(spec.count), planned, leave, spec.backfill_days, days)
    joins = planned + backfills
    start = spec.count * on_staff
    heads = start + np.convolve(joins, on_staff)[:days]
    fte = start + np.convolve(joins, on_staff * share)[:days]
    slot = start * slots(spec, 1.0) + np.convolve(joins, on_staff * seat)[:days]
    return TeamSchedule(heads, fte, slot, joins, backfills, leavers)


def _renewals(
    count: float, planned: np.ndarray, leave: np.ndarray, backfill_days: float | None, days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Backfill hires and leavers per day: the leavers of day ``t`` join again on day ``t + b``."""
    backfills = np.zeros(days)
    leavers = np.zeros(days)
    if not leave.any():
        return backfills, leavers
    lag = None if backfill_days is None else max(1, math.floor(backfill_days + 0.5))
    for t in range(days):
        joined = planned[: t + 1] + backfills[: t + 1]
        leavers[t] = count * leave[t] + float(joined @ leave[t::-1])
        if lag is not None and t + lag < days:
            backfills[t + lag] += leavers[t]
    return backfills, leavers
