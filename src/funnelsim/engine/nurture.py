"""Nurture: marketing touches a lead until it reaches the MQL bar or goes dormant.

A lead in nurture does not interact with any other lead, so its whole path up to
the hand-off is decided by array work over all leads at once (:func:`nurture_batch`).
Recycled leads re-enter nurture one at a time during the run (:func:`nurture_one`);
both follow the same equations (:mod:`funnelsim.model.mechanisms`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from funnelsim.model import distributions as dist
from funnelsim.model.mechanisms import score
from funnelsim.model.scenario import Nurture, ScoringRule

OPEN, MQL, DORMANT = 0, 1, 2

# Distributions whose sample is one sequential numpy draw: element i of a draw of n is
# element i of a draw of any m > i from the same generator state, so a touch draws only
# up to its last open lead. Another (e.g. a future mixture) draws all n, as the contract says.
_SEQUENTIAL = (
    dist.Fixed,
    dist.Exponential,
    dist.LogNormal,
    dist.Gamma,
    dist.Weibull,
    dist.Uniform,
    dist.Triangular,
    dist.Beta,
    dist.Empirical,
)


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
    # The leads still in nurture and their columns. A lead that finishes is retired in
    # place (it can no longer reach the bar or its cutoff) and the columns are compacted
    # only once an eighth of them are retired: a touch finishes a few percent of the
    # leads, and compacting every column at every touch cost more than the touch itself.
    # The loop is the equations of decay, touch and score with their constant factors
    # taken out of it (``lift * response`` and ``fit_weight * fit`` are computed once,
    # as those functions compute them first), so the floats are the same.
    idx = np.flatnonzero(~hit)
    t, e_open = t[idx], e[idx]
    deadline = np.asarray(start, dtype=float)[idx] + nurture.max_nurture_days
    # t > cutoff: past the deadline (dormant) or at or past the horizon (t >= horizon).
    cutoff = np.minimum(deadline, np.nextafter(horizon, -np.inf))
    fit_part = rule.fit_weight * np.asarray(fit)[idx]
    lift = nurture.touch_lift * np.asarray(response)[idx]
    per_day = -nurture.engagement_half_life_days
    touch_number = retired = 0
    spec = nurture.touch_interval_days
    prefix = type(spec) in _SEQUENTIAL
    while retired < idx.size:
        gap = spec.sample(rng_for_touch(touch_number), int(idx[-1]) + 1 if prefix else n)[idx]
        touch_number += 1
        t += gap
        e_open *= np.exp2(gap / per_day)  # decay: (-gap) / h == gap / (-h)
        e_open += lift * (1.0 - e_open)  # touch
        np.minimum(e_open, 1.0, out=e_open)
        done = fit_part + rule.engagement_weight * e_open >= rule.threshold  # MQL unless dormant
        done |= t > cutoff
        finished = np.flatnonzero(done)
        if not finished.size:
            continue
        leads, t_done = idx[finished], t[finished]
        dormant = t_done > deadline[finished]
        mql = ~dormant & (fit_part[finished] + rule.engagement_weight * e_open[finished] >= rule.threshold)
        outcome[leads[dormant]], when[leads[dormant]] = DORMANT, deadline[finished][dormant]
        outcome[leads[mql]], when[leads[mql]] = MQL, t_done[mql]
        e[leads] = e_open[finished]  # a finished lead keeps the engagement of its last touch
        fit_part[finished], cutoff[finished] = -np.inf, np.inf  # retired
        retired += finished.size
        if retired * 8 > idx.size:
            stay = cutoff < np.inf
            idx, t, e_open, deadline, cutoff = idx[stay], t[stay], e_open[stay], deadline[stay], cutoff[stay]
            fit_part, lift = fit_part[stay], lift[stay]
            retired = 0
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
    """Outcome, delay until it and engagement then, for one lead entering nurture now.

    The equations of :func:`~funnelsim.model.mechanisms.decay`, :func:`~funnelsim.model.mechanisms.touch`
    and :func:`~funnelsim.model.mechanisms.score` are written out in the loop (this runs touch by
    touch for every recycled lead): the same operations in the same order, so the same floats.
    """
    fit_part, weight, threshold = rule.fit_weight * fit, rule.engagement_weight, rule.threshold
    if fit_part + weight * engagement >= threshold:
        return MQL, 0.0, engagement
    elapsed, e = 0.0, engagement
    half_life, lift, max_days = nurture.engagement_half_life_days, nurture.touch_lift, nurture.max_nurture_days
    while True:
        gap = interval()
        elapsed += gap
        if elapsed > max_days:
            return DORMANT, max_days, e
        e = e * math.exp2(-gap / half_life)
        e = min(e + lift * response * (1.0 - e), 1.0)
        if fit_part + weight * e >= threshold:
            return MQL, elapsed, e
