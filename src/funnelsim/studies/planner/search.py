r"""The simulated search: the smallest plan on a grid with ``P(revenue in period >= goal) >= confidence``.

Candidates are simulated on the *same* replication seeds (common random numbers), so
``P`` is monotone in the levers up to noise and two candidates differ only by what
changed. Lead volumes move on the grid ``k_j = 1.02^j`` times the scenario's volume,
headcount in whole reps; the smallest ``j`` (or number of AEs) is found by bracketing
with doubling steps and bisection (:func:`smallest`). ``P`` is estimated with a 95%
Wilson interval. With ``lever="both"``, for each of a ladder of extra AEs the smallest
lead volume is found and the cheapest plan wins. Every candidate is admitted against the
search's budget of ``max_evaluations * runs`` replications before it runs; a search
that cannot reach the goal raises :class:`PlanInfeasible` naming the binding constraint.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats

from funnelsim.model.scenario import Scenario
from funnelsim.studies import replications as mc
from funnelsim.studies.planner.errors import PlanError, PlanInfeasible
from funnelsim.studies.planner.levers import MAX_EXTRA_AES, MAX_LEAD_MULTIPLIER, apply_changes, planned_changes
from funnelsim.studies.planner.period import Period, period_revenue
from funnelsim.studies.planner.waterfall import SourceYield, Waterfall, waterfall
from funnelsim.studies.stats import paired_difference, probability_at_least
from funnelsim.studies.workload import UNLIMITED, Budget, check, estimate, workers_of

__all__ = [
    "MAX_EVALUATIONS",
    "STEP",
    "Candidate",
    "Evaluator",
    "Progress",
    "search_both",
    "search_leads",
    "search_reps",
    "smallest",
]

STEP = 1.02
"""Lead volumes are searched on the grid ``STEP ** j`` times the scenario's volume."""
# The search's default work budget, in candidates of --runs replications each. A leads-only
# plan of the bundled scenarios settles within ~10 (pilot included); --lever both within ~30.
MAX_EVALUATIONS = 60

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Candidate:
    """One simulated plan: its levers and what its replications gave."""

    lead_multiplier: float
    extra_aes: int
    sdrs: int
    runs: int
    hits: int
    p_goal: float
    ci_low: float
    ci_high: float
    mean_revenue: float
    p10_revenue: float
    sdr_utilisation: float
    ae_utilisation: float
    cost: float


@dataclass
class Evaluator:
    """Simulates candidates on the same seeds (common random numbers) and caches them.

    Replication ``i`` of a candidate is the same whatever the number of runs asked, so a
    candidate first simulated with a few runs (the pilot) is only extended later.
    """

    framed: Scenario
    period: Period
    goal: float
    confidence: float
    runs: int
    seed: int
    pool: Executor
    progress: Progress | None
    yields: dict[str, SourceYield]
    budget: Budget
    max_replications: int
    seen: dict[tuple[float, int, int, int], Candidate] = field(default_factory=dict)
    simulated: dict[tuple[float, int, int], mc.Replications] = field(default_factory=dict)

    def scenario(self, k: float, extra_aes: int, sdrs: int) -> Scenario:
        """The framed scenario with the candidate's levers applied."""
        return apply_changes(self.framed, planned_changes(self.framed, k, extra_aes, sdrs))

    def replications(self, k: float, extra_aes: int, sdrs: int, runs: int | None = None) -> mc.Replications:
        """Replications ``0 .. runs-1`` of the candidate, simulating only those not yet run."""
        runs = runs or self.runs
        have = self.simulated.get((k, extra_aes, sdrs))
        done = 0 if have is None else have.completed
        if done < runs:
            candidate = self.scenario(k, extra_aes, sdrs)
            self._admit(candidate, runs - done, f"the candidate plan leads x{k:.3f}, +{extra_aes} AEs, {sdrs} SDRs")
            if self.progress is not None:
                self.progress(f"simulating {runs - done} runs: leads x{k:.3f}, +{extra_aes} AEs, {sdrs} SDRs")
            more = mc.run(candidate, 0, self.seed, self.pool, replications=range(done, runs), budget=UNLIMITED)
            if more.stopped == "interrupted":
                raise KeyboardInterrupt
            if have is not None:
                table = pd.concat([have.table, more.table], ignore_index=True)
                more = replace(more, table=table, monthly=pd.concat([have.monthly, more.monthly], ignore_index=True))
            self.simulated[(k, extra_aes, sdrs)] = replace(more, requested=runs)
        reps = self.simulated[(k, extra_aes, sdrs)]
        if reps.completed == runs:
            return reps
        return replace(
            reps,
            table=reps.table[reps.table["replication"] < runs],
            monthly=reps.monthly[reps.monthly["replication"] < runs],
            requested=runs,
        )

    @property
    def used(self) -> int:
        """Replications simulated so far, over every candidate."""
        return sum(reps.completed for reps in self.simulated.values())

    def _admit(self, candidate: Scenario, more: int, what: str) -> None:
        """Refuse to go past the search's budget, or to simulate a candidate too large for the machine."""
        if self.used + more > self.max_replications:
            raise PlanError(
                f"the search has used {self.used:,} of its {self.max_replications:,} replications "
                f"({self.max_replications // self.runs} candidates x {self.runs} runs) without settling on a plan; "
                "raise --max-evaluations, lower --runs, or ask for a nearer goal"
            )
        check(estimate(candidate, more, workers_of(self.pool)), self.budget.allow_large, self.budget.limits, what)

    def __call__(self, k: float, extra_aes: int, sdrs: int, runs: int | None = None) -> Candidate:
        """The candidate with these levers, simulated on ``runs`` replications (cached)."""
        runs = runs or self.runs
        key = (k, extra_aes, sdrs, runs)
        if key not in self.seen:
            reps = self.replications(k, extra_aes, sdrs, runs)
            revenue = period_revenue(reps.monthly, self.period)
            p = probability_at_least(revenue, self.goal, 0.95)
            self.seen[key] = Candidate(
                k,
                extra_aes,
                sdrs,
                runs,
                int(p["hits"]),
                p["estimate"],
                p["ci_low"],
                p["ci_high"],
                float(revenue.mean()),
                float(np.percentile(revenue, 10)),
                float(reps.table["sdr_utilisation"].mean()),
                float(reps.table["ae_utilisation"].mean()),
                float(waterfall(reps.scenario, self.period, yields=self.yields).in_period["cost"].sum()),
            )
        return self.seen[key]

    def ok(self, candidate: Candidate) -> bool:
        """Whether the candidate reaches the goal with the required confidence."""
        return candidate.p_goal >= self.confidence


def smallest(ok: Callable[[int], bool], start: int, low: int, high: int) -> int | None:
    """Smallest integer ``j`` in ``[low, high]`` with ``ok(j)``, assuming ``ok`` is monotone.

    Brackets from ``start`` with doubling steps, then bisects; ``None`` if ``ok(high)`` fails.
    """
    start = min(max(start, low), high)
    if ok(start):
        good, step = start, 1
        while True:
            j = max(good - step, low)
            if j == good:
                return good
            if not ok(j):
                bad = j
                break
            good, step = j, 2 * step
    else:
        bad, step = start, 1
        while True:
            j = min(bad + step, high)
            if j == bad:
                return None
            if ok(j):
                good = j
                break
            bad, step = j, 2 * step
    while good - bad > 1:
        mid = (good + bad) // 2
        if ok(mid):
            good = mid
        else:
            bad = mid
    return good


# ---------------------------------------------------------------------------
# The searches, one per lever


def _grid_index(k: float) -> int:
    """The grid point ``j`` at or just above multiplier ``k`` (``STEP ** j >= k``)."""
    return math.ceil(math.log(k) / math.log(STEP) - 1e-9) if k > 0 else -200


def _pilot_start(evaluate: Evaluator, k0: float, extra_aes: int, sdrs: int) -> float:
    """Decides where the full runs start: the analytic guess rescaled by pilots on a quarter of the runs.

    The pilot's normal approximation of the revenue quantile at the confidence is scaled
    to the goal (revenue grows about in proportion to leads), at most twice.
    """
    k = STEP ** round(math.log(max(k0, 1e-3)) / math.log(STEP))
    pilot = max(10, evaluate.runs // 4)
    z = float(stats.norm.ppf(1 - evaluate.confidence))
    for _ in range(2):
        evaluate(k, extra_aes, sdrs, pilot)  # listed among the candidates
        revenue = period_revenue(evaluate.replications(k, extra_aes, sdrs, pilot).monthly, evaluate.period)
        quantile = float(revenue.mean() + z * revenue.std(ddof=1))
        if quantile <= 0 or abs(quantile / evaluate.goal - 1) < 0.05:
            break
        k = min(k * min(evaluate.goal / quantile, 2.0), MAX_LEAD_MULTIPLIER)
        k = STEP ** round(math.log(k) / math.log(STEP))  # on the grid: the full runs extend the pilot's
    return k


def search_leads(evaluate: Evaluator, k0: float, extra_aes: int, sdrs: int, slope: float) -> Candidate:
    """Smallest grid multiplier reaching the confidence, at fixed headcount.

    A pilot on a quarter of the runs rescales the analytic guess so that the normal
    approximation of the revenue quantile meets the goal (revenue grows about in
    proportion to leads); the full runs then bracket and bisect from there. A step of 8%
    or more leads that brings less than a quarter of the revenue the analytic waterfall
    expects from it (``slope`` per unit of multiplier), still short of the goal, means
    the funnel is saturated: the search stops with the binding constraint. "Less" is
    judged on the upper end of the gain's paired 95% interval, not its mean.
    """
    top = _grid_index(MAX_LEAD_MULTIPLIER)
    k = _pilot_start(evaluate, k0, extra_aes, sdrs)
    largest: list[int] = []  # grid points tried, increasing

    def ok(j: int) -> bool:
        candidate = evaluate(STEP**j, extra_aes, sdrs)
        reached = evaluate.ok(candidate)
        if not reached and largest and j >= largest[-1] + 4:
            before = largest[-1]
            # Saturated only if even the upper end of the gain's paired 95% interval is short:
            # a small step (tiny multipliers) must not stop the search on noise.
            gained = paired_difference(
                period_revenue(evaluate.replications(STEP**before, extra_aes, sdrs).monthly, evaluate.period),
                period_revenue(evaluate.replications(STEP**j, extra_aes, sdrs).monthly, evaluate.period),
            )
            if gained["ci_high"] < 0.25 * slope * (STEP**j - STEP**before):
                raise diagnose(evaluate, candidate, "leads")
        if not largest or j > largest[-1]:
            largest.append(j)
        return reached

    j = smallest(ok, round(math.log(k) / math.log(STEP)), low=_grid_index(1e-3), high=top)
    if j is None:
        raise diagnose(evaluate, evaluate(STEP**top, extra_aes, sdrs), "leads")
    return evaluate(STEP**j, extra_aes, sdrs)


def sdrs_for(analytic: Waterfall, framed: Scenario) -> int:
    """SDRs that keep the busiest month of the flow at the target utilisation (never fewer than today)."""
    need = float(analytic.months["sdrs_needed"].max())
    return max(framed.handoff.sdr.count, math.ceil(need - 1e-9))


def search_reps(evaluate: Evaluator, analytic: Waterfall) -> Candidate:
    """Fewest extra AEs reaching the confidence with today's lead volume, SDRs sized to the analytic flow."""
    sdrs = sdrs_for(analytic, evaluate.framed)

    def ok(a: int) -> bool:
        return evaluate.ok(evaluate(1.0, a, sdrs))

    a = smallest(ok, 0, low=0, high=MAX_EXTRA_AES)
    if a is None:
        raise diagnose(evaluate, evaluate(1.0, MAX_EXTRA_AES, sdrs), "reps")
    return evaluate(1.0, a, sdrs)


def search_both(
    evaluate: Evaluator, analytic: Waterfall, k0: float, slope: float, flow: Callable[[float, int], Waterfall]
) -> tuple[Candidate, pd.DataFrame]:
    """For a ladder of extra AEs, the smallest lead volume; the cheapest wins."""
    short = float((analytic.in_period["aes_needed"] - analytic.in_period["aes"]).max())
    base = max(1, math.ceil(short))
    ladder = sorted({0, base // 2, base, 2 * base, 3 * base})
    rows, found = [], []
    infeasible: PlanInfeasible | None = None
    for extra in ladder:
        sdrs = sdrs_for(flow(k0, extra), evaluate.framed)
        try:
            c = search_leads(evaluate, k0, extra, sdrs, slope)
        except PlanInfeasible as why:
            infeasible = why
            rows.append({"extra_aes": extra, "sdrs": sdrs, "lead_multiplier": math.nan, "cost": math.nan})
            continue
        found.append(c)
        rows.append({"extra_aes": extra, "sdrs": sdrs, "lead_multiplier": c.lead_multiplier, "cost": c.cost})
    if not found:
        assert infeasible is not None
        raise infeasible  # what binds with the most AEs tried
    best = min(found, key=lambda c: c.cost)
    table = pd.DataFrame(rows)
    table["chosen"] = table["extra_aes"] == best.extra_aes
    return best, table


# ---------------------------------------------------------------------------
# Which constraint binds when the search falls short


def diagnose(evaluate: Evaluator, best: Candidate, lever: str) -> PlanInfeasible:
    """The binding constraint, judged on the largest candidate tried: busy SDRs, busy AEs, or the funnel itself."""
    sc, cur = evaluate.framed, evaluate.framed.currency
    reached = (
        f"the largest plan tried (leads x{best.lead_multiplier:.2f}, +{best.extra_aes} AEs, {best.sdrs} SDRs) "
        f"reaches the goal in {best.p_goal:.0%} of runs (mean {best.mean_revenue:,.0f} {cur}), "
        f"not {evaluate.confidence:.0%}."
    )
    busy = f"SDRs are busy {best.sdr_utilisation:.0%} and AEs {best.ae_utilisation:.0%} of the time; "
    if best.sdr_utilisation > 0.85:
        return PlanInfeasible(
            "SDR capacity",
            busy + "MQLs queue for an SDR and go cold; " + reached,
            "add SDRs (--lever reps or both, or --set handoff.sdr.count=N), or lower the goal.",
        )
    if best.ae_utilisation > 0.85 and lever == "leads":
        return PlanInfeasible(
            "AE capacity",
            busy + "more leads only lengthen the queue for an AE; " + reached,
            "add AEs (--lever reps or --lever both), or lower the goal.",
        )
    if best.ae_utilisation > 0.85:
        ramp = sc.sales.ae.ramp
        months = next((i for i, x in enumerate(ramp) if x >= 1), len(ramp))
        return PlanInfeasible(
            "hiring lead time",
            busy
            + f"new AEs need {months} months to ramp up and are hired at {sc.start_date} at the earliest; "
            + reached,
            "start earlier (a longer --lead-in), lengthen the period, or lower the goal.",
        )
    if lever == "reps":
        return PlanInfeasible(
            "lead volume",
            busy + f"today's leads do not carry {evaluate.goal:,.0f} {cur} whatever the headcount; " + reached,
            "add leads (--lever leads or --lever both), or lower the goal.",
        )
    return PlanInfeasible(
        "funnel throughput",
        busy + "more leads add little revenue in the period (leads wait, go cold or close too late); " + reached,
        "improve conversion or speed (qualification, hand-off SLA, cycle), start earlier (--lead-in), "
        "or lower the goal.",
    )
