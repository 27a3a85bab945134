r"""Verification: the chosen plan re-simulated on seeds the search never saw.

The search (:mod:`.search`) picks the smallest plan whose share of hits on its ``N``
common replications reaches the confidence, judged on those very replications, so it
favours plans that were lucky there (the winner's curse: a plan picked at 80% on 100
runs delivered the goal in 69% of 800 fresh ones). Verification runs the chosen plan on
an independent block of replications; the share of them that reach the goal, with its
95% Wilson interval, is the plan's *verified* ``P(goal)``.

**Seeds.** The search runs replications ``0 .. N-1`` of seed ``S``; verification round
``r`` (from 1) runs replications ``r * 10**6 .. r * 10**6 + n - 1`` of the same seed:
other children of ``SeedSequence(S)`` (:mod:`funnelsim.randomness`), independent of the
search's and of every other round's.

**Runs.** ``n`` is the smallest number of runs whose 95% Wilson interval, at a share
equal to the confidence asked for (or 1/2, if that is lower), is at most
:data:`HALF_WIDTH` (2.5 points) either side (:func:`verification_runs`): 981 at 80%,
554 at 90%. ``--verify-runs`` may set another ``n``; the half-width it gives is stated.

**Verdict.** The plan passes when the interval's lower end is at or above the
confidence: at least ``h*`` hits out of ``n``, ``h*`` the fewest whose Wilson lower end
clears it. The runs come in :data:`BATCHES` batches; after each, a plan that is unlikely
to make ``h*`` even if its remaining runs hit at the upper end of its current 95%
interval (binomial probability below :data:`FUTILITY`) fails at once, without the rest
of its runs. Stopping early only ever sends the search further up the lever, so it
cannot make a plan look better than it is.

**Stepping.** A plan that fails moves further up its lever and is verified again on a
fresh block (:mod:`.steps`): far enough that its ``1 - a`` revenue quantile is
predicted to reach the goal, ``a`` the share that passes plus half a half-width
(:func:`aim`: 83.8% at 80% with 981 runs). The search's levers,
the rounds and their runs are bounded by the work budget stated before anything runs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats

from funnelsim.model.scenario import Scenario
from funnelsim.studies import replications as mc
from funnelsim.studies.planner.errors import PlanError
from funnelsim.studies.planner.period import Period, period_revenue
from funnelsim.studies.stats import probability_at_least
from funnelsim.studies.workload import UNLIMITED

__all__ = [
    "BATCHES",
    "BLOCK",
    "HALF_WIDTH",
    "MAX_VERIFICATIONS",
    "Verdict",
    "Verifier",
    "aim",
    "hits_to_pass",
    "hopeless",
    "verification_runs",
    "wilson_half_width",
]

HALF_WIDTH = 0.025
"""The widest 95% interval of a verified ``P(goal)`` the default number of runs allows, either side."""
BLOCK = 1_000_000
"""Verification round ``r`` runs replications from ``r * BLOCK``: disjoint from the search's and each other's."""
BATCHES = 4
"""A verification round runs in this many batches, stopping early when the plan cannot pass."""
MAX_VERIFICATIONS = 4
"""Verification rounds allowed by default (the first, and up to three steps further)."""
MAX_VERIFY_RUNS = 100_000
"""The most runs one verification round may ask for."""
FUTILITY = 0.05
"""A round stops early when its chance to pass, judged optimistically, falls below this."""


def wilson_half_width(hits: int, runs: int, confidence: float = 0.95) -> float:
    """Half the width of the Wilson interval of ``hits`` out of ``runs``."""
    ci = stats.binomtest(hits, runs).proportion_ci(confidence, method="wilson")
    return float(ci.high - ci.low) / 2


def verification_runs(confidence: float, half_width: float = HALF_WIDTH) -> int:
    """Fewest runs whose 95% Wilson interval at a share of ``max(confidence, 1/2)`` is ``half_width`` or less.

    Starts from the normal approximation ``z^2 p (1 - p) / h^2`` and moves to the
    smallest ``n`` that holds with the Wilson interval itself (hits rounded to the
    nearest whole run).
    """
    p = max(confidence, 0.5)
    z = float(stats.norm.ppf(0.975))
    n = max(10, math.ceil(z * z * p * (1 - p) / half_width**2) - 20)
    while wilson_half_width(round(p * n), n) > half_width:
        n += 1
    return n


def hits_to_pass(runs: int, confidence: float) -> int:
    """Fewest hits out of ``runs`` whose 95% Wilson interval's lower end is at or above ``confidence``
    (``runs + 1`` when none is)."""
    hits = max(0, math.floor(confidence * runs))
    while hits <= runs:
        low = stats.binomtest(hits, runs).proportion_ci(0.95, method="wilson").low
        if low >= confidence:
            return hits
        hits += 1
    return runs + 1


def hopeless(hits: int, done: int, runs: int, needed: int) -> bool:
    """Whether ``needed`` hits out of ``runs`` are out of reach after ``hits`` out of ``done``: the chance
    of enough hits in the remaining runs, each a hit with the upper end of the 95% interval so far, is
    below :data:`FUTILITY`."""
    left = runs - done
    if hits >= needed:
        return False
    if hits + left < needed:
        return True
    optimistic = float(stats.binomtest(hits, done).proportion_ci(0.95, method="wilson").high)
    return float(stats.binom.sf(needed - hits - 1, left, optimistic)) < FUTILITY


def aim(confidence: float, runs: int) -> float:
    """The share a stepped plan aims at: the share that passes with ``runs`` runs (:func:`hits_to_pass`) plus
    half the interval's half-width, so it likely passes; at most ``(3 + confidence) / 4``."""
    half = wilson_half_width(round(max(confidence, 0.5) * runs), runs)
    return min(hits_to_pass(runs, confidence) / runs + half / 2, (3 + confidence) / 4)


@dataclass(frozen=True)
class Verdict:
    """One verification round: the plan's levers, the block of replications it ran and what they gave."""

    round: int
    lead_multiplier: float
    extra_aes: int
    sdrs: int
    first_replication: int
    runs: int
    hits: int
    p_goal: float
    ci_low: float
    ci_high: float
    passed: bool
    stopped_early: bool
    mean_revenue: float

    @property
    def half_width(self) -> float:
        """Half the width of the verified ``P(goal)``'s 95% interval."""
        return (self.ci_high - self.ci_low) / 2

    def describe(self, confidence: float) -> str:
        """``leads x1.23, +2 AEs, 4 SDRs: goal reached in 81.2% of 984 fresh runs (95% CI 78.7-83.5%)``."""
        levers = f"leads x{self.lead_multiplier:.3f}, +{self.extra_aes} AEs, {self.sdrs} SDRs"
        early = f", stopped early after {self.runs:,}" if self.stopped_early else ""
        return (
            f"{levers}: goal reached in {self.p_goal:.1%} of {self.runs:,} fresh runs (95% CI "
            f"{self.ci_low:.1%}-{self.ci_high:.1%}{early}), {'at least' if self.passed else 'short of'} "
            f"{confidence:.0%}"
        )


@dataclass
class Verifier:
    """Runs candidate plans on the verification stream, a fresh block per round, within ``max_rounds``.

    ``scenario_of(k, extra_aes, sdrs)`` builds a candidate; ``progress`` hears what runs.
    """

    scenario_of: Callable[[float, int, int], Scenario]
    period: Period
    goal: float
    confidence: float
    runs: int
    seed: int
    pool: Executor
    max_rounds: int
    progress: Callable[[str], None] | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    replications: dict[int, mc.Replications] = field(default_factory=dict)

    @property
    def used(self) -> int:
        """Replications run so far, over every round."""
        return sum(v.runs for v in self.verdicts)

    def table(self) -> pd.DataFrame:
        """One row per round (``verification.csv``)."""
        columns = [f for f in Verdict.__dataclass_fields__]
        rows = [{**{c: getattr(v, c) for c in columns}, "half_width": v.half_width} for v in self.verdicts]
        return pd.DataFrame(rows, columns=[*columns, "half_width"])

    def check_budget(self) -> None:
        """Raise :class:`PlanError` if every round of the budget has run (the last one failed)."""
        if len(self.verdicts) >= self.max_rounds:
            last = self.verdicts[-1]
            raise PlanError(
                f"no plan passed verification within the work budget of {self.max_rounds} rounds of "
                f"{self.runs:,} runs; the last, {last.describe(self.confidence)}. Raise --max-verifications "
                "(or --verify-runs for a narrower interval), or ask for a nearer goal"
            )

    def __call__(self, k: float, extra_aes: int, sdrs: int) -> tuple[Verdict, mc.Replications]:
        """Verify the plan with these levers on the next fresh block; its verdict and replications."""
        self.check_budget()
        number = len(self.verdicts) + 1
        first = number * BLOCK
        scenario = self.scenario_of(k, extra_aes, sdrs)
        reps: mc.Replications | None = None
        edges = np.linspace(first, first + self.runs, BATCHES + 1).round().astype(int)
        needed = hits_to_pass(self.runs, self.confidence)
        for lo, hi in itertools.pairwise(edges):
            if self.progress is not None:
                done = 0 if reps is None else reps.completed
                self.progress(
                    f"verifying leads x{k:.3f}, +{extra_aes} AEs, {sdrs} SDRs on fresh runs: {done:,}/{self.runs:,}"
                )
            more = mc.run(scenario, 0, self.seed, self.pool, replications=range(int(lo), int(hi)), budget=UNLIMITED)
            if more.stopped == "interrupted":
                raise KeyboardInterrupt
            reps = more if reps is None else _joined(reps, more)
            hits = int(np.sum(period_revenue(reps.monthly, self.period) >= self.goal))
            if hi < first + self.runs and hopeless(hits, reps.completed, self.runs, needed):
                break  # its remaining runs would be wasted
        assert reps is not None
        revenue = period_revenue(reps.monthly, self.period)
        p = probability_at_least(revenue, self.goal)
        stopped = reps.completed < self.runs
        verdict = Verdict(
            number, k, extra_aes, sdrs, first, reps.completed, int(p["hits"]), p["estimate"], p["ci_low"],
            p["ci_high"], passed=not stopped and p["ci_low"] >= self.confidence, stopped_early=stopped,
            mean_revenue=float(revenue.mean()),
        )  # fmt: skip
        self.verdicts.append(verdict)
        self.replications[number] = reps
        return verdict, reps


def _joined(a: mc.Replications, b: mc.Replications) -> mc.Replications:
    """Two batches of replications of one scenario as one."""
    table = pd.concat([a.table, b.table], ignore_index=True)
    monthly = pd.concat([a.monthly, b.monthly], ignore_index=True)
    return replace(a, table=table, monthly=monthly, requested=a.requested + b.requested)
