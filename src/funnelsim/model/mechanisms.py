"""The model's equations, as pure numpy functions shared by the engine, the oracle and the planner.

Engagement (nurture)
    Between touches engagement decays exponentially with half-life ``h``:
    ``e(t + dt) = e(t) * 2 ** (-dt / h)``. A touch closes a share of the gap to full
    engagement: ``e <- e + lift * response * (1 - e)``, clipped to [0, 1], where
    ``response`` is the persona's ``engagement_response``.

Scores (qualification)
    ``score = fit_weight * fit + engagement_weight * engagement``; a lead is an MQL
    when marketing's score reaches its threshold right after a touch, and passes
    sales' bar when sales' score (of the same fit and engagement) reaches its own;
    a lead of a source with ``qualified_by = "source"`` passes sales' bar whatever
    its score (it still needs a buying need to become an SQL).

Speed to lead (hand-off)
    ``P(contact | d) = o(d) / (1 + o(d))``, ``o(d) = o0 * m(d)``, ``o0 = p0 / (1 - p0)``
    and ``m`` interpolated log-linearly between knots (hours) and flat outside them.
    The studies report *odds* (21x for 5 vs 30 minutes; about 7x for the first hour
    vs. the second; about 60x for the first hour vs. 24 hours), a hazard that falls
    with time, which a single exponential cannot match.

Win probability (sales)
    ``logit P(win) = logit(win_rate) + fit_effect * (fit - 0.5)``, so
    ``P(win) = 1 / (1 + exp(-logit))`` (:func:`logistic`).

Ramp-up (both teams)
    A rep hired ``m`` whole months ago works at ``ramp[min(m, len(ramp) - 1)]`` of full
    productivity and has ``floor(capacity * share + 1/2)`` slots: an AE's capacity is
    its ``max_open_opportunities``, an SDR's one lead, so an SDR takes leads from 0.5 on.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from typing import TypeVar

import numpy as np

from funnelsim.model.scenario import AETeam, ScoringRule, SDRTeam, SpeedToLead

HOURS_PER_DAY = 24.0

Num = TypeVar("Num", np.ndarray, float)


def score(rule: ScoringRule, fit: Num, engagement: Num) -> Num:
    """Weighted score of a lead under one team's rule, in [0, 1]."""
    return rule.fit_weight * fit + rule.engagement_weight * engagement


def decay(engagement: Num, days: Num, half_life_days: float) -> Num:
    """Engagement left after ``days`` without a touch (arrays or floats).

    ``exp2`` rather than ``2.0 ** x``: the same value to within one unit in the last
    place, at a sixth of the cost of a general power (it runs for every lead at every
    touch). ``math.exp2`` gives the same floats for one lead at a time.
    """
    return engagement * np.exp2(-days / half_life_days)


def touch(engagement: Num, lift: float, response: Num) -> Num:
    """Engagement right after a nurture touch (arrays or floats)."""
    raised = engagement + lift * response * (1.0 - engagement)
    return np.minimum(raised, 1.0) if isinstance(raised, np.ndarray) else min(raised, 1.0)


def odds_multiplier(speed: SpeedToLead, delay_days: np.ndarray | float) -> np.ndarray:
    """Odds of a contact at ``delay_days`` relative to an immediate answer."""
    hours = np.asarray(delay_days, dtype=float) * HOURS_PER_DAY
    log_m = np.interp(hours, speed.knots_hours, np.log(speed.odds_multiplier))
    return np.exp(log_m)


def contact_probability(speed: SpeedToLead, delay_days: np.ndarray | float) -> np.ndarray:
    """Chance that sales reaches and can qualify a lead first worked after ``delay_days``."""
    p0 = speed.contact_rate_immediate
    odds = p0 / (1 - p0) * odds_multiplier(speed, delay_days)
    return odds / (1 + odds)


class ContactCurve:
    """:func:`contact_probability` for one delay at a time, without numpy overhead per call."""

    def __init__(self, speed: SpeedToLead) -> None:
        self.knots = [h / HOURS_PER_DAY for h in speed.knots_hours]
        self.log_odds = [
            math.log(speed.contact_rate_immediate / (1 - speed.contact_rate_immediate)) + math.log(m)
            for m in speed.odds_multiplier
        ]

    def __call__(self, delay_days: float) -> float:
        knots, log_odds = self.knots, self.log_odds
        i = bisect.bisect_right(knots, delay_days)
        if i == 0:
            lo = log_odds[0]
        elif i == len(knots):
            lo = log_odds[-1]
        else:
            w = (delay_days - knots[i - 1]) / (knots[i] - knots[i - 1])
            lo = log_odds[i - 1] + w * (log_odds[i] - log_odds[i - 1])
        return 1.0 / (1.0 + math.exp(-lo))


def win_probability(win_rate: float, fit_effect: float, fit: np.ndarray | float) -> np.ndarray:
    """Chance an opportunity with this fit is won."""
    if win_rate <= 0 or win_rate >= 1:
        return np.full(np.shape(fit), win_rate, dtype=float)
    logit = math.log(win_rate / (1 - win_rate)) + fit_effect * (np.asarray(fit, dtype=float) - 0.5)
    return logistic(logit)


def logistic(x: np.ndarray | float) -> np.ndarray:
    """``1 / (1 + exp(-x))``, elementwise: the formula of ``scipy.special.expit`` (without importing scipy).

    Equal to expit but where numpy's ``exp`` and the C library's differ in the last bit (a
    relative 5e-16 at most); ``exp(-x)`` overflows to infinity for ``x < -709``, giving the
    exact 0 expit gives, so that overflow is not warned about.
    """
    with np.errstate(over="ignore"):
        return np.asarray(1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float))))


def productivity(ae: AETeam | SDRTeam, months_since_hire: float) -> float:
    """Ramp-up: share of full capacity of a rep (AE or SDR) hired ``months_since_hire`` ago."""
    if months_since_hire < 0:
        return 0.0
    return ae.ramp[min(int(months_since_hire), len(ae.ramp) - 1)]


def slots(ae: AETeam | SDRTeam, share: float) -> int:
    """Slots of a rep working at ``share`` of full productivity: open deals of an AE, leads of an SDR (one)."""
    capacity = ae.max_open_opportunities if isinstance(ae, AETeam) else 1
    return math.floor(capacity * share + 0.5)


def calendar_months(start: dt.date, horizon_days: float) -> list[tuple[float, float, int]]:
    """Split ``[0, horizon_days)`` at calendar month boundaries: ``(t0, t1, month 0-11)``."""
    segments = []
    t0, day = 0.0, start
    while t0 < horizon_days:
        nxt = dt.date(day.year + (day.month == 12), day.month % 12 + 1, 1)
        t1 = min(t0 + (nxt - day).days, horizon_days)
        segments.append((t0, t1, day.month - 1))
        t0, day = t1, nxt
    return segments
