"""Nurture: marketing touches a lead until it reaches the MQL bar or goes dormant.

A lead in nurture does not interact with any other lead, so its whole path up to
the hand-off is decided by array work over all leads at once (:func:`nurture_batch`).
Recycled leads re-enter nurture one at a time during the run (:func:`nurture_one`);
both follow the same equations (:mod:`funnelsim.mechanisms`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..mechanisms import decay, score, touch
from ..scenario import Nurture, ScoringRule

OPEN, MQL, DORMANT = 0, 1, 2


def nurture_batch(
    rng_for_touch: Callable[[int], np.random.Generator],
    nurture: Nurture,
    rule: ScoringRule,
    fit: np.ndarray,
    engagement: np.ndarray,
    response: np.ndarray,
    start: np.ndarray,
    horizon: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outcome (OPEN, MQL or DORMANT), its time and the engagement then, for each lead.

    The gap before touch ``r`` of lead ``i`` is element ``i`` of a draw for all leads from
    ``rng_for_touch(r)``, so a lead's path does not depend on how many other leads there
    are (common random numbers across volumes).
    """
    n = len(fit)
    outcome = np.full(n, OPEN, dtype=np.int8)
    when = np.full(n, np.inf)
    e = np.asarray(engagement, dtype=float).copy()
    t = np.asarray(start, dtype=float).copy()

    hit = score(rule, fit, e) >= rule.threshold
    outcome[hit], when[hit] = MQL, t[hit]
    idx = np.flatnonzero(~hit)
    touch_number = 0
    while idx.size:
        gap = nurture.touch_interval_days.sample(rng_for_touch(touch_number), n)[idx]
        touch_number += 1
        t_next = t[idx] + gap
        deadline = start[idx] + nurture.max_nurture_days
        dormant = t_next > deadline
        e_next = touch(decay(e[idx], gap, nurture.engagement_half_life_days), nurture.touch_lift, response[idx])
        mql = ~dormant & (score(rule, fit[idx], e_next) >= rule.threshold)
        e[idx], t[idx] = e_next, t_next
        outcome[idx[dormant]], when[idx[dormant]] = DORMANT, deadline[dormant]
        outcome[idx[mql]], when[idx[mql]] = MQL, t_next[mql]
        # Leads past the horizon are still in nurture when the run ends: stop early.
        done = dormant | mql | (t_next >= horizon)
        idx = idx[~done]
    # A lead that went dormant after the horizon is still nurturing within it.
    late = when >= horizon
    outcome[late], when[late] = OPEN, np.inf
    return outcome, when, e


def nurture_one(
    interval: Callable[[], float],
    nurture: Nurture,
    rule: ScoringRule,
    fit: float,
    engagement: float,
    response: float,
) -> tuple[int, float, float]:
    """Outcome, delay until it and engagement then, for one lead entering nurture now."""
    if score(rule, fit, engagement) >= rule.threshold:
        return MQL, 0.0, engagement
    elapsed, e = 0.0, engagement
    half_life, lift = nurture.engagement_half_life_days, nurture.touch_lift
    while True:
        gap = interval()
        elapsed += gap
        if elapsed > nurture.max_nurture_days:
            return DORMANT, nurture.max_nurture_days, e
        e = touch(decay(e, gap, half_life), lift, response)
        if score(rule, fit, e) >= rule.threshold:
            return MQL, elapsed, e
