r"""Moving a plan that failed verification further up its lever, and the work budget that bounds it.

A plan fails verification when its fresh runs reach the goal too rarely. Its fresh
revenues say how far it is: the next plan should lift their ``1 - a`` quantile ``q``
to the goal ``G``, ``a`` the share a step aims at (:func:`~.verify.aim`), that is
multiply revenue by ``G / q`` (the shape of the distribution assumed to scale with it;
the next verification round checks that on fresh runs). How far a lever must move for
that is read from the fresh rounds themselves where they can tell, else from a model:

- **leads** (also ``both``, at the chosen AEs): after two failed rounds at the same
  headcount, of :data:`SECANT_RUNS` runs or more each, the secant of their quantiles in
  log-log gives revenue's elasticity to volume, ``e = log(q2 / q1) / log(k2 / k1)``
  (held within 0.5 and 2: noise must not make a leap), and ``k' = k2 (G / q2)^(1/e)``; else,
  the analytic funnel's shape does: ``k'`` is the volume whose analytic revenue is
  ``G / q`` times the failed plan's (it knows prospecting, not queues, so it tends to
  step short rather than past the goal, and the next round corrects it);
- **AEs** (``reps``): revenue per extra AE is the least-squares slope of mean revenue
  over the AE counts the search simulated (common random numbers; one more AE is
  simulated there if it has fewer than two), scaled to the fresh runs:
  ``a' = a + (G - q) / (slope * q / mean)``, ``mean`` the search's mean revenue at ``a``.

The quantile is read off the runs when at least :data:`TAIL_RUNS` lie below it, else from
a normal fit (a round stopped after its first batch); ``G / q`` is capped at
:data:`MAX_FACTOR` a step. Every step moves at least one grid point (one AE) up. An AE lever that no longer adds
revenue on the search's runs (elasticity below :data:`MIN_ELASTICITY`), or a step past a
lever's cap, raises :class:`PlanInfeasible` naming the lever and the cap; a saturated
lead lever is the search's to find, on common random numbers, not the noisy secant's.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from funnelsim.studies.planner.errors import PlanInfeasible
from funnelsim.studies.planner.levers import MAX_EXTRA_AES, MAX_LEAD_MULTIPLIER, team_size
from funnelsim.studies.planner.period import period_revenue
from funnelsim.studies.planner.recurring import bookings_for
from funnelsim.studies.planner.search import STEP, TOP, Evaluator, candidate_of, diagnose, grid_point
from funnelsim.studies.planner.verify import MAX_VERIFICATIONS, Verdict, Verifier
from funnelsim.studies.planner.waterfall import analytic_multiplier, waterfall

__all__ = ["MAX_FACTOR", "MIN_ELASTICITY", "SECANT_RUNS", "TAIL_RUNS", "WorkBudget", "step"]

TAIL_RUNS = 10
"""Fewest fresh runs below a quantile for it to be read off the runs (else a normal fit)."""
MAX_FACTOR = 1.5
"""The most a step may ask revenue to grow (a bigger shortfall takes more rounds, never one leap past the goal)."""
SECANT_RUNS = 200
"""Fewest fresh runs in each of two failed rounds for their secant to steer the next lead step."""
MIN_ELASTICITY = 0.1
"""Below this elasticity of revenue to a lever (1% more of it, under 0.1% more revenue) the lever has nothing
left to give: the step stops with the binding constraint."""


@dataclass(frozen=True)
class WorkBudget:
    """The most work a plan may take, stated before anything runs.

    The search simulates at most ``max_evaluations`` candidates of ``runs`` replications
    (pilots count by their runs); verification at most ``max_verifications`` rounds of
    ``verify_runs``.
    """

    runs: int
    max_evaluations: int
    verify_runs: int
    max_verifications: int = MAX_VERIFICATIONS

    @property
    def search_replications(self) -> int:
        """Replications the search may run."""
        return self.runs * self.max_evaluations

    @property
    def verify_replications(self) -> int:
        """Replications verification may run."""
        return self.verify_runs * self.max_verifications

    @property
    def replications(self) -> int:
        """Replications the whole plan may run."""
        return self.search_replications + self.verify_replications

    def describe(self) -> str:
        """``search: up to 60 candidates x 100 runs; verification: up to 4 rounds x 981 fresh runs; ...``."""
        return (
            f"search: up to {self.max_evaluations} candidates x {self.runs} runs; verification: up to "
            f"{self.max_verifications} rounds x {self.verify_runs:,} fresh runs; at most {self.replications:,} "
            "replications in all"
        )

    def to_json(self) -> dict[str, int]:
        """The budget as plan.json and the manifest state it."""
        return {
            "runs": self.runs,
            "max_evaluations": self.max_evaluations,
            "verify_runs": self.verify_runs,
            "max_verifications": self.max_verifications,
            "max_replications": self.replications,
        }


def step(evaluate: Evaluator, verifier: Verifier, level: float, lever: str) -> tuple[float, int, int]:
    """The levers of the next plan after the last verification round failed (see the module docstring)."""
    verdict = verifier.verdicts[-1]
    fresh = _quantiles(evaluate, verifier, level)
    if lever == "reps":
        return 1.0, _next_aes(evaluate, verdict, fresh), verdict.sdrs
    return _next_leads(evaluate, verifier, verdict, fresh), verdict.extra_aes, verdict.sdrs


def _quantiles(evaluate: Evaluator, verifier: Verifier, level: float) -> dict[int, float]:
    """The ``1 - level`` revenue quantile of each verification round's fresh runs, by round.

    Empirical when at least :data:`TAIL_RUNS` runs lie below it; else (a round stopped
    after its first batch) from a normal fit, ``mean + z * sd``, which a handful of
    extreme runs cannot drag down.
    """
    z = float(stats.norm.ppf(1 - level))
    out = {}
    for number, reps in verifier.replications.items():
        revenue = period_revenue(reps.monthly, evaluate.period)
        if len(revenue) * (1 - level) >= TAIL_RUNS:
            out[number] = float(np.quantile(revenue, 1 - level))
        else:
            out[number] = float(revenue.mean() + z * revenue.std(ddof=1))
    return out


def _factor(goal: float, q: float) -> float:
    """How much revenue must grow to lift the quantile ``q`` to ``goal``: at most :data:`MAX_FACTOR` a step."""
    return min(goal / q, MAX_FACTOR) if q > 0 else MAX_FACTOR


def _previous(verifier: Verifier, verdict: Verdict) -> Verdict | None:
    """The last earlier round at the same headcount and another volume, if any."""
    for old in reversed(verifier.verdicts[:-1]):
        same = (old.extra_aes, old.sdrs) == (verdict.extra_aes, verdict.sdrs)
        if same and old.lead_multiplier != verdict.lead_multiplier:
            return old
    return None


def _next_leads(evaluate: Evaluator, verifier: Verifier, verdict: Verdict, fresh: dict[int, float]) -> float:
    """The next lead multiplier, on the grid, at least one step up (see the module docstring)."""

    # In bookings (for an ARR goal, the bookings each quantile stands for): what the lead lever moves.
    def booked(x: float) -> float:
        return bookings_for(evaluate.framed, evaluate.period, x)

    k, q = verdict.lead_multiplier, booked(fresh[verdict.round])
    goal = booked(evaluate.goal)
    current = grid_point(k)
    before = _previous(verifier, verdict)
    wanted: float | None = None
    if before is not None:
        q0 = booked(fresh[before.round])
        if q > 0 and q0 > 0 and min(before.runs, verdict.runs) >= SECANT_RUNS:
            # Clamped: two quantiles of a few hundred runs each give the elasticity to within a factor of two.
            elasticity = math.log(q / q0) / math.log(k / before.lead_multiplier)
            wanted = k * _factor(goal, q) ** (1 / min(max(elasticity, 0.5), 2.0))
    if wanted is None:
        wanted = _analytic_guess(evaluate, verdict, _factor(goal, q))
    if current >= TOP:
        _saturated(evaluate, verdict, verifier, "leads")
    return float(STEP ** min(max(grid_point(wanted), current + 1), TOP))


def _next_aes(evaluate: Evaluator, verdict: Verdict, fresh: dict[int, float]) -> int:
    """The next number of extra AEs, at least one more (see the module docstring)."""
    a, sdrs, q = verdict.extra_aes, verdict.sdrs, fresh[verdict.round]
    tried = sorted({c.extra_aes for c in evaluate.history if c.sdrs == sdrs and c.lead_multiplier == 1.0})
    tried = [x for x in tried if evaluate.replications(1.0, x, sdrs).completed >= evaluate.runs]
    if a not in tried or len(tried) < 2:
        tried = sorted({a, a + 1, *tried})  # one more AE on the search's runs: the slope needs two points
    means = [float(period_revenue(evaluate.replications(1.0, x, sdrs).monthly, evaluate.period).mean()) for x in tried]
    slope = float(np.polyfit(tried, means, 1)[0])
    mean_here = means[tried.index(a)]
    aes = team_size(evaluate.framed, "ae") + a + 1
    if not slope * aes > MIN_ELASTICITY * mean_here:  # the elasticity of revenue to the AE count
        raise diagnose(evaluate, evaluate(1.0, a + 1, sdrs), "reps", "aes_flat")
    if a >= MAX_EXTRA_AES:
        raise diagnose(evaluate, evaluate(1.0, a, sdrs), "reps", "aes")
    # The fresh quantile must rise by G - q; revenue moves as the search's mean does, scaled to the fresh runs.
    needed = (min(evaluate.goal, MAX_FACTOR * q) - q) * mean_here / max(q, 1e-9)
    return min(a + max(1, math.ceil(needed / slope)), MAX_EXTRA_AES)


def _saturated(evaluate: Evaluator, verdict: Verdict, verifier: Verifier, cap: str) -> None:
    """Raise the binding constraint for a lead lever that can go no further, judged on the failed plan's fresh runs."""
    reps = verifier.replications[verdict.round]
    levers = (verdict.lead_multiplier, verdict.extra_aes, verdict.sdrs)
    candidate = candidate_of(reps, evaluate.period, evaluate.goal, levers, evaluate.cost(*levers))
    raise diagnose(evaluate, candidate, "leads", cap)


def _analytic_guess(evaluate: Evaluator, verdict: Verdict, factor: float) -> float:
    """The volume whose analytic revenue is ``factor`` times the failed plan's."""
    k, extra_aes, sdrs = verdict.lead_multiplier, verdict.extra_aes, verdict.sdrs
    expected = waterfall(evaluate.scenario(k, extra_aes, sdrs), evaluate.period, yields=evaluate.yields).revenue
    base = evaluate.scenario(1.0, extra_aes, sdrs)  # the other levers, today's leads
    bookings = dataclasses.replace(evaluate.period, goal="bookings")  # expected * factor is bookings
    try:
        return analytic_multiplier(base, bookings, expected * factor, evaluate.yields, shape=evaluate.shape)
    except PlanInfeasible:
        return MAX_LEAD_MULTIPLIER
