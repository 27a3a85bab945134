r"""The map of the both-lever search: which headcounts are worth simulating, and at what lead volume.

A *rung* is a headcount: ``a`` extra AEs and ``s`` SDRs in all. For each, a model of the
funnel predicts the lead multiplier :math:`\hat k` at which the rung reaches the goal with
the confidence asked, and the multiplier :math:`k_\text{peak}` past which more leads bring
*less* revenue (MQLs queue for the SDRs and go cold), so that the search
(:func:`~.search.search_both`) simulates the cheapest rungs first, near their predicted
volume, and never past their peak.

**The model.** The analytic waterfall (:mod:`.waterfall`) with the SDR desk as a queue
(:mod:`.desk`), calibrated on the simulation of today's scenario, which the planner runs
before any search: the desk's load factor :math:`\varphi` is fitted so that the share of
MQLs that wait for an SDR is the simulated one, and the difference :math:`\Delta` between
the simulated mean revenue and the model's (the warm start's pipeline, recycled leads:
what the waterfall leaves out) is added to every prediction. Revenue in the period is
about normal with the coefficient of variation ``cv`` of today's runs, so a rung reaches
``P(revenue >= G) >= c`` when its mean is about

.. math:: T = \frac{G}{1 + z_{1-c}\, \text{cv}}, \qquad \hat R(k) = R_\varphi(k) + \Delta,

:math:`z_{1-c}` the standard normal quantile (negative for ``c > 1/2``) and
:math:`\hat k` the smallest volume with :math:`\hat R(k) \ge T` (infinite when
:math:`\hat R` peaks below ``T`` or the lead lever's cap is reached first).

**The ladder.** The AE counts are the analytic shortfall's ladder (0, 1/2, 1, 2, 3 times
the AEs the flow needs beyond today's, :func:`ae_ladder`); for each, SDRs start from the
Little's-law sizing of the flow (never fewer than today's) and go up one at a time while
the desk still loses :data:`SDR_LOSS` or more of its contacts to waiting at the rung's
predicted volume (or the rung cannot reach the goal at all), at most :data:`MAX_SDR_STEPS`
above that sizing: past that point an SDR more buys almost nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from funnelsim.model.scenario import Scenario
from funnelsim.studies import replications as mc
from funnelsim.studies.planner.levers import MAX_EXTRA_SDRS, MAX_LEAD_MULTIPLIER
from funnelsim.studies.planner.period import Period, period_revenue
from funnelsim.studies.planner.waterfall import Expectation, SourceYield, desk_of, expected

__all__ = ["MAX_SDR_STEPS", "SDR_LOSS", "Calibration", "Prediction", "Rung", "ae_ladder", "calibrate", "predict"]

SDR_LOSS = 0.01
"""A rung gets one SDR more while its desk loses at least this share of contacts to waiting."""
MAX_SDR_STEPS = 6
"""The most SDRs a rung's ladder adds above the Little's-law sizing of its flow."""
_SCAN = (0, 1, 3, 7, 15, 31, 63, 127)  # 2% steps of volume: the doubling scan of a prediction
_STEP = 1.02


@dataclass(frozen=True)
class Calibration:
    """What the simulation of today's scenario says of the model: the desk's load factor, the revenue the
    model leaves out, and the mean revenue the confidence needs."""

    sdr_load: float
    offset: float
    target: float
    ae_load: float = 1.0


def calibrate(
    today: Scenario,
    period: Period,
    yields: dict[str, SourceYield],
    reps: mc.Replications,
    goal: float,
    confidence: float,
) -> Calibration:
    """The model fitted to ``reps``, the simulated replications of ``today`` (see the module docstring)."""
    waited = float(np.nanmean(reps.table["sdr_p_wait"])) if len(reps.table) else 0.0
    load = desk_of(today, yields).fit_load(waited if math.isfinite(waited) else 0.0)
    revenue = period_revenue(reps.monthly, period)
    mean = float(revenue.mean())
    cv = float(revenue.std(ddof=1)) / mean if len(revenue) > 1 and mean > 0 else 0.0
    z = float(stats.norm.ppf(1 - confidence))
    model = expected(today, period, yields, load)
    busy = float(np.nanmean(reps.table["ae_utilisation"])) if len(reps.table) else math.nan
    ae_load = busy / model.ae_utilisation if model.ae_utilisation > 0 and math.isfinite(busy) else 1.0
    return Calibration(load, mean - model.revenue, goal / max(1 + z * cv, 0.2), ae_load)


@dataclass(frozen=True)
class Prediction:
    """A rung's predicted volume for the goal (``inf``: never), the volume past which more leads bring less
    revenue (``peak``: the SDR desk saturates; ``inf``: none below the cap) and the volume at which its AEs
    are predicted full (``ae_limit``; ``inf``: never below the peak and the cap)."""

    multiplier: float
    peak: float
    ae_limit: float = math.inf


def predict(model: Callable[[float], Expectation], calibration: Calibration) -> Prediction:
    """The smallest multiplier (at least 1) whose calibrated mean revenue reaches the calibration's target with
    AEs not full, the multiplier past which revenue falls, and the one at which AEs fill up (calibrated
    utilisation 1): doubling steps on the 2% grid, then bisection and a golden-section search, each to
    about one grid step."""
    seen: dict[float, Expectation] = {}

    def at(k: float) -> float:
        if k not in seen:
            seen[k] = model(k)
        return seen[k].revenue + calibration.offset

    def full(k: float) -> bool:
        at(k)
        return seen[k].ae_utilisation * calibration.ae_load >= 1.0

    scan = [_STEP**j for j in _SCAN if _STEP**j < MAX_LEAD_MULTIPLIER] + [MAX_LEAD_MULTIPLIER]
    found, limit, peak = math.inf, math.inf, math.inf
    target = calibration.target
    for i, k in enumerate(scan):
        if not math.isfinite(limit) and full(k):
            limit = k if i == 0 else _bisect(full, scan[i - 1], k)
        if not math.isfinite(found) and at(k) >= target:
            found = k if i == 0 else _bisect(lambda x: at(x) >= target, scan[i - 1], k)
        if i and at(k) < at(scan[i - 1]):
            peak = _peak(at, scan[max(i - 2, 0)], k)
            break
    return Prediction(found if found <= min(peak, limit) else math.inf, peak, limit)


def _bisect(reached: Callable[[float], bool], low: float, high: float) -> float:
    """The volume between ``low`` (not ``reached``) and ``high`` (``reached``) where it turns, to 1%."""
    while high / low > 1.01:
        mid = math.sqrt(low * high)
        low, high = (low, mid) if reached(mid) else (mid, high)
    return high


def _peak(at: Callable[[float], float], low: float, high: float) -> float:
    """The volume of the largest ``at`` between ``low`` and ``high`` (unimodal there), to about 2%: a
    golden-section search on log-volume."""
    g = (math.sqrt(5) - 1) / 2
    x, y = math.log(low), math.log(high)
    c, d = y - g * (y - x), x + g * (y - x)
    while y - x > math.log(_STEP):
        if at(math.exp(c)) >= at(math.exp(d)):
            y, d = d, c
            c = y - g * (y - x)
        else:
            x, c = c, d
            d = x + g * (y - x)
    return math.exp((x + y) / 2)


@dataclass(frozen=True)
class Rung:
    """One headcount of the both-lever search, with what the analytic model says of it.

    ``analytic_multiplier`` is the waterfall's own volume for the goal (no queues, not
    calibrated; infinite when AE capacity rules the rung out); ``predicted`` the
    calibrated model's (:class:`Prediction`); ``kept`` the share of contacts its desk
    keeps at the predicted volume (or the peak).
    """

    extra_aes: int
    sdrs: int
    analytic_multiplier: float
    predicted: Prediction
    kept: float

    @property
    def ruled_out(self) -> bool:
        """Whether AE capacity rules the rung out before any simulation."""
        return not math.isfinite(self.analytic_multiplier)


def ae_ladder(shortfall: float) -> list[int]:
    """Extra AEs to try: 0, 1/2, 1, 2 and 3 times the analytic AE ``shortfall`` (at least one AE)."""
    base = max(1, math.ceil(shortfall))
    return sorted({0, base // 2, base, 2 * base, 3 * base})


def sdr_rungs(
    extra_aes: int,
    first_sdrs: int,
    today_sdrs: int,
    analytic: float,
    scenario_of: Callable[[float, int], Scenario],
    period: Period,
    yields: dict[str, SourceYield],
    calibration: Calibration,
) -> list[Rung]:
    """The rungs of ``extra_aes`` AEs: ``first_sdrs`` SDRs, then one more while the desk still loses
    :data:`SDR_LOSS` of its contacts at the rung's predicted volume (see the module docstring).

    ``scenario_of(k, sdrs)`` is the candidate at volume ``k`` with these AEs and ``sdrs`` SDRs;
    ``analytic`` the waterfall's own volume for the goal (``inf``: AE capacity rules them out).
    """
    if not math.isfinite(analytic):
        return [Rung(extra_aes, first_sdrs, analytic, Prediction(math.inf, math.inf), math.nan)]
    rungs: list[Rung] = []
    load = calibration.sdr_load
    for sdrs in range(first_sdrs, min(first_sdrs + MAX_SDR_STEPS, today_sdrs + MAX_EXTRA_SDRS) + 1):

        def model(k: float, sdrs: int = sdrs) -> Expectation:
            return expected(scenario_of(k, sdrs), period, yields, load)

        prediction = predict(model, calibration)
        at = prediction.multiplier
        at = at if math.isfinite(at) else min(prediction.peak, prediction.ae_limit, MAX_LEAD_MULTIPLIER)
        kept = _kept(scenario_of(at, sdrs), yields, load)
        rungs.append(Rung(extra_aes, sdrs, analytic, prediction, kept))
        if kept > 1 - SDR_LOSS:
            break
    return rungs


def _kept(scenario: Scenario, yields: dict[str, SourceYield], load: float) -> float:
    """The share of contacts the desk of ``scenario`` keeps, over its MQLs (at load factor ``load``)."""
    desk = desk_of(scenario, yields)
    total = float(desk.arrivals.sum())
    return float(desk.arrivals @ desk.kept(load)) / total if total > 0 else 1.0
