r"""The simulated search: the smallest plan on a grid with ``P(revenue in period >= goal) >= confidence``.

Candidates are simulated on the *same* replication seeds (common random numbers), so
``P`` is monotone in the levers up to noise and two candidates differ only by what
changed. Lead volumes move on the grid ``k_j = 1.02^j`` times the scenario's volume
(``j >= 0``: a plan never asks for fewer leads than today), headcount in whole reps; the
smallest ``j`` (or number of AEs) is found by bracketing with doubling steps and
bisection (:func:`smallest`). ``P`` is estimated with a 95% Wilson interval. With
``lever="both"``, headcounts (extra AEs and SDRs: the rungs of :mod:`.frontier`) are
taken cheapest predicted plan first, and a rung is simulated only if it can still beat
the best plan found: by branch and bound on its cost, one sequential decision at the
most leads it can buy for less, and the rungs the simulation found infeasible
(:func:`search_both`); its grid points are settled with as few of the common runs as
the answer needs (:meth:`Evaluator.decide`). Every candidate is admitted
against the search's budget of ``max_evaluations * runs`` replications before it runs;
a search that cannot reach the goal raises :class:`PlanInfeasible` naming the binding
constraint and the lever caps. The plan the search picks is then verified on fresh
seeds (:mod:`.verify`).
"""

from __future__ import annotations

import datetime as dt
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
from funnelsim.studies.planner.frontier import Rung
from funnelsim.studies.planner.levers import (
    MAX_EXTRA_AES,
    MAX_LEAD_MULTIPLIER,
    LeadShape,
    SegmentNeeds,
    apply_changes,
    planned_changes,
)
from funnelsim.studies.planner.period import Period, period_revenue
from funnelsim.studies.planner.recurring import bookings_for
from funnelsim.studies.planner.waterfall import SourceYield, Waterfall, waterfall
from funnelsim.studies.stats import paired_difference, probability_at_least
from funnelsim.studies.workload import UNLIMITED, Budget, check, estimate, workers_of

__all__ = [
    "MAX_EVALUATIONS",
    "STEP",
    "Candidate",
    "Evaluator",
    "Progress",
    "candidate_of",
    "search_both",
    "search_leads",
    "search_reps",
    "smallest",
]

STEP = 1.02
"""Lead volumes are searched on the grid ``STEP ** j`` times the scenario's volume."""
# The search's default work budget, in candidates of --runs replications each. A leads-only
# plan of the bundled scenarios settles within ~13 (pilot included); --lever both within ~13
# (its sequential decisions count by the runs they simulated: 4.5 at 6M, 12.4 at 7M on the baseline).
MAX_EVALUATIONS = 60
DECISION_STEP = 8
"""Replications a sequential decision (:meth:`Evaluator.decide`) adds at a time, at least."""

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
    shape: LeadShape = field(default_factory=LeadShape)
    hire_date: dt.date | None = None
    needs: SegmentNeeds | None = None
    seen: dict[tuple[float, int, int, int], Candidate] = field(default_factory=dict)
    simulated: dict[tuple[float, int, int], mc.Replications] = field(default_factory=dict)
    costs: dict[tuple[float, int, int], float] = field(default_factory=dict)
    revenues: dict[tuple[float, int, int], float] = field(default_factory=dict)
    history: list[Candidate] = field(default_factory=list)

    @property
    def spends(self) -> bool:
        """Whether the lead lever is a budget split between spend curves (:mod:`.levers`)."""
        return self.shape.values is not None

    def changes(self, k: float, extra_aes: int, sdrs: int | None = None) -> dict[str, object]:
        """The dotted-path edits of the candidate's levers (shaped leads, hires on the hire date)."""
        return planned_changes(
            self.framed, k, extra_aes, sdrs, shape=self.shape, hire_date=self.hire_date, needs=self.needs
        )

    def scenario(self, k: float, extra_aes: int, sdrs: int | None = None) -> Scenario:
        """The framed scenario with the candidate's levers applied."""
        return apply_changes(self.framed, self.changes(k, extra_aes, sdrs))

    def cost(self, k: float, extra_aes: int, sdrs: int) -> float:
        """The candidate's cost in the period by the analytic waterfall (leads bought, salaries): no simulation."""
        key = (k, extra_aes, sdrs)
        if key not in self.costs:
            flow = waterfall(self.scenario(k, extra_aes, sdrs), self.period, yields=self.yields)
            self.costs[key] = float(flow.in_period["cost"].sum())
            self.revenues[key] = flow.revenue
        return self.costs[key]

    def analytic_revenue(self, k: float, extra_aes: int, sdrs: int) -> float:
        """The candidate's expected revenue in the period by the analytic waterfall (no simulation)."""
        self.cost(k, extra_aes, sdrs)
        return self.revenues[(k, extra_aes, sdrs)]

    def replications(self, k: float, extra_aes: int, sdrs: int, runs: int | None = None) -> mc.Replications:
        """Replications ``0 .. runs-1`` of the candidate, simulating only those not yet run."""
        runs = runs or self.runs
        have = self.simulated.get((k, extra_aes, sdrs))
        done = 0 if have is None else have.completed
        if done < runs:
            candidate = self.scenario(k, extra_aes, sdrs)
            self._admit(candidate, runs - done, f"the candidate plan leads x{k:.3f}, +{extra_aes} AEs, {sdrs} SDRs")
            counted = None
            if self.progress is not None:
                tell, what = self.progress, f"leads x{k:.3f}, +{extra_aes} AEs, {sdrs} SDRs"
                tell(f"simulating {runs - done} runs: {what}")

                def counted(finished: int, total: int) -> None:
                    tell(f"simulating {what}: {finished}/{total} runs")

            more = mc.run(
                candidate, 0, self.seed, self.pool, replications=range(done, runs), progress=counted, budget=UNLIMITED
            )
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
            cost = self.cost(k, extra_aes, sdrs)
            self.seen[key] = candidate_of(reps, self.period, self.goal, (k, extra_aes, sdrs), cost)
            self.history.append(self.seen[key])
        return self.seen[key]

    def ok(self, candidate: Candidate) -> bool:
        """Whether the candidate reaches the goal with the required confidence."""
        return candidate.p_goal >= self.confidence

    def decide(self, k: float, extra_aes: int, sdrs: int) -> tuple[bool, Candidate]:
        """Whether the candidate reaches the confidence on its ``runs`` replications, and the candidate as
        simulated when that was settled.

        The answer is the one ``ok(self(k, extra_aes, sdrs))`` gives, but replications ``0, 1, ...``
        run a batch at a time and stop as soon as the rest cannot change it: at ``h`` hits, ``h`` the
        fewest with ``h / runs >= confidence``, or when the misses leave fewer than ``h`` within reach.
        The first batch is the fewest runs that can settle it either way (21 of 100 at 80%) rounded
        up to whole batches, the next ones a task per worker each (:data:`DECISION_STEP` at least);
        a later call extends the same replications.
        """
        need = hits_needed(self.runs, self.confidence)
        step = max(DECISION_STEP, mc.CHUNK * workers_of(self.pool))
        n = self.completed(k, extra_aes, sdrs)
        while True:
            if n:
                revenue = period_revenue(self.replications(k, extra_aes, sdrs, n).monthly, self.period)
                hits = int(np.sum(revenue >= self.goal))
                if hits >= need or hits + self.runs - n < need:
                    return hits >= need, self(k, extra_aes, sdrs, n)
            first = min(need, self.runs - need + 1)
            n = min(self.runs, max(n + step, step * math.ceil(first / step)))

    def completed(self, k: float, extra_aes: int, sdrs: int) -> int:
        """Replications of the candidate simulated so far (0 if none)."""
        have = self.simulated.get((k, extra_aes, sdrs))
        return 0 if have is None else min(have.completed, self.runs)


def hits_needed(runs: int, confidence: float) -> int:
    """Fewest hits out of ``runs`` whose share reaches ``confidence`` (as :meth:`Evaluator.ok` judges it)."""
    hits = max(0, math.floor(confidence * runs) - 1)
    while hits / runs < confidence:
        hits += 1
    return hits


def candidate_of(
    reps: mc.Replications, period: Period, goal: float, levers: tuple[float, int, int], cost: float
) -> Candidate:
    """What the replications of a plan with ``levers`` (multiplier, extra AEs, SDRs) say about it."""
    revenue = period_revenue(reps.monthly, period)
    p = probability_at_least(revenue, goal, 0.95)
    k, extra_aes, sdrs = levers
    return Candidate(
        k,
        extra_aes,
        sdrs,
        len(revenue),
        int(p["hits"]),
        p["estimate"],
        p["ci_low"],
        p["ci_high"],
        float(revenue.mean()),
        float(np.percentile(revenue, 10)),
        float(reps.table["sdr_utilisation"].mean()),
        float(reps.table["ae_utilisation"].mean()),
        cost,
    )


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


TOP = _grid_index(MAX_LEAD_MULTIPLIER)
"""The grid point of the largest lead volume a plan may ask for."""


def grid_point(k: float) -> int:
    """The grid point at or just above ``k``, within ``0 .. TOP`` (a plan never asks for fewer leads than today)."""
    return min(max(_grid_index(k), 0), TOP)


def _pilot_start(evaluate: Evaluator, k0: float, extra_aes: int, sdrs: int) -> float:
    """Decides where the full runs start: the analytic guess rescaled by pilots on a quarter of the runs.

    The pilot's normal approximation of the revenue quantile at the confidence is scaled
    to the goal (revenue grows about in proportion to leads), at most twice.
    """
    k = STEP ** min(max(round(math.log(max(k0, 1e-3)) / math.log(STEP)), 0), TOP)
    pilot = max(10, evaluate.runs // 4)
    z = float(stats.norm.ppf(1 - evaluate.confidence))
    for _ in range(2):
        evaluate(k, extra_aes, sdrs, pilot)  # listed among the candidates
        revenue = period_revenue(evaluate.replications(k, extra_aes, sdrs, pilot).monthly, evaluate.period)
        # In bookings (an ARR goal's quantile and goal as the bookings they stand for): what leads move.
        quantile = bookings_for(evaluate.framed, evaluate.period, float(revenue.mean() + z * revenue.std(ddof=1)))
        goal = bookings_for(evaluate.framed, evaluate.period, evaluate.goal)
        if quantile <= 0 or abs(quantile / goal - 1) < 0.05:
            break
        k = min(k * min(goal / quantile, 2.0), MAX_LEAD_MULTIPLIER)
        k = STEP ** min(
            max(round(math.log(k) / math.log(STEP)), 0), TOP
        )  # on the grid: the full runs extend the pilot's
    return k


def search_leads(
    evaluate: Evaluator, k0: float, extra_aes: int, sdrs: int, slope: float, sequential: bool = False
) -> Candidate:
    """Smallest grid multiplier reaching the confidence, at fixed headcount (``j >= 0``: at least today's leads).

    A pilot on a quarter of the runs rescales the guess ``k0`` so that the normal
    approximation of the revenue quantile meets the goal (revenue grows about in
    proportion to leads); the full runs then bracket and bisect from there. A step of 8%
    or more leads that brings less than a quarter of the revenue the analytic waterfall
    expects from it (``slope`` per unit of multiplier), still short of the goal, means
    the funnel is saturated: the search stops with the binding constraint. "Less" is
    judged on the upper end of the gain's paired 95% interval, not its mean.

    ``sequential`` (the both-lever search) settles each grid point with
    :meth:`Evaluator.decide`: the same answers, on fewer replications where the first
    ones settle them.
    """
    k = _pilot_start(evaluate, k0, extra_aes, sdrs)
    largest: list[int] = []  # grid points simulated, increasing
    found: dict[int, Candidate] = {}

    def ok(j: int) -> bool:
        if sequential:
            reached, candidate = evaluate.decide(STEP**j, extra_aes, sdrs)
        else:
            candidate = evaluate(STEP**j, extra_aes, sdrs)
            reached = evaluate.ok(candidate)
        found[j] = candidate
        if not reached and largest and j >= largest[-1] + 4:
            _check_saturation(evaluate, largest[-1], j, extra_aes, sdrs, slope, candidate)
        if not largest or j > largest[-1]:
            largest.append(j)
        return reached

    first = round(math.log(k) / math.log(STEP))
    try:
        j = smallest(ok, first, low=0, high=TOP)
        if j is None:
            raise diagnose(evaluate, evaluate(STEP**TOP, extra_aes, sdrs), "leads", cap="leads")
    except PlanInfeasible:
        # Past an SDR or AE cliff more leads bring less revenue, and the search went up from a start
        # beyond the peak: the volumes below the start are tried (doubling steps, then bisection on
        # the rising side of the peak) before the goal is called infeasible.
        j = smallest(ok, 1, low=1, high=first - 1) if first > 1 else None
        if j is None:
            raise
    return found[j]


def _check_saturation(
    evaluate: Evaluator, before: int, j: int, extra_aes: int, sdrs: int, slope: float, candidate: Candidate
) -> None:
    """Stops the lead search when more leads no longer bring revenue: the gain from grid point ``before``
    to ``j``, even at the upper end of its paired 95% interval, is under a quarter of the analytic gain
    (``slope`` per unit of multiplier; on spend curves, whose returns diminish, the waterfall's own gain
    between the two budgets)."""
    # A small step (tiny multipliers) must not stop the search on noise: hence the interval's upper end.
    gained = paired_difference(
        period_revenue(evaluate.replications(STEP**before, extra_aes, sdrs).monthly, evaluate.period),
        period_revenue(evaluate.replications(STEP**j, extra_aes, sdrs).monthly, evaluate.period),
    )
    if evaluate.spends:
        expected = evaluate.analytic_revenue(STEP**j, extra_aes, sdrs)
        expected -= evaluate.analytic_revenue(STEP**before, extra_aes, sdrs)
    else:
        expected = slope * (STEP**j - STEP**before)
    if gained["ci_high"] < 0.25 * expected:
        raise diagnose(evaluate, candidate, "leads", cap="saturated")


def sdrs_for(analytic: Waterfall, framed: Scenario) -> int:
    """SDRs that keep the busiest month of the flow at the target utilisation (never fewer than today); a
    segmented scenario's, the sum of its segments' (each desk sized to its own flow; for a goal of one
    segment, only its desk, the others as they are)."""
    parts = analytic.segments or {"": analytic.months}  # view_of("") is the unsegmented scenario itself
    sized = [name for name in parts if analytic.period.segment in (None, name)]  # a segment's goal: its desk
    return sum(
        max(framed.view_of(name).handoff.sdr.count, math.ceil(float(parts[name]["sdrs_needed"].max()) - 1e-9))
        if name in sized
        else framed.view_of(name).handoff.sdr.count
        for name in parts
    )


def search_reps(evaluate: Evaluator, sdrs: int) -> Candidate:
    """Fewest extra AEs reaching the confidence with today's lead volume and ``sdrs`` SDRs (sized to the
    analytic flow, :func:`sdrs_for`)."""

    def ok(a: int) -> bool:
        return evaluate.ok(evaluate(1.0, a, sdrs))

    a = smallest(ok, 0, low=0, high=MAX_EXTRA_AES)
    if a is None:
        raise diagnose(evaluate, evaluate(1.0, MAX_EXTRA_AES, sdrs), "reps", cap="aes")
    return evaluate(1.0, a, sdrs)


@dataclass
class _Ladder:
    """What the both-lever search knows so far: the best plan, the rungs' rows, the simulated/predicted ratio
    and the rungs the simulation found infeasible."""

    rows: dict[tuple[int, int], dict[str, object]] = field(default_factory=dict)
    best: Candidate | None = None
    ratio: float = 1.0  # smallest simulated / predicted volume of the rungs searched so far
    infeasible: PlanInfeasible | None = None
    short: dict[tuple[int, int], str] = field(default_factory=dict)  # (extra AEs, SDRs) -> the binding constraint

    def dominated(self, rung: Rung) -> str | None:
        """Why fewer reps cannot reach the goal, if a rung with as many found it infeasible (``None`` if none).

        ``P(goal)`` grows with headcount on common random numbers, so a rung with at most the
        AEs and SDRs of an infeasible one is infeasible too; and a rung whose AEs could not close
        the goal (AE capacity, hiring lead time) rules out every rung with as few AEs, whatever
        its SDRs: more SDRs only bring the AEs more work.
        """
        for (a, sdrs), constraint in self.short.items():
            ae_bound = constraint in AE_CONSTRAINTS
            if rung.extra_aes <= a and (ae_bound or rung.sdrs <= sdrs):
                return f"infeasible: {constraint} (as +{a} AEs, {sdrs} SDRs)"
        return None


AE_CONSTRAINTS = ("AE capacity", "hiring lead time")
"""The binding constraints that no number of SDRs lifts."""


def search_both(
    evaluate: Evaluator, rungs: list[Rung], slope: float, more: Callable[[int], list[Rung]] | None = None
) -> tuple[Candidate, pd.DataFrame]:
    """The cheapest headcount and lead volume reaching the confidence, over a ladder of rungs (branch and bound).

    Rungs (:class:`~.frontier.Rung`: extra AEs and SDRs) are taken in order of the cost of
    their predicted plan (:mod:`.frontier`); until a plan is found each rung is searched
    in full (:func:`search_leads`, from its predicted volume). Every later rung must beat
    the best plan found, costing ``B``; cost grows with volume and no plan buys fewer
    leads than today's, so:

    1. a rung whose cost with today's leads is ``>= B`` is not simulated;
    2. nor one with at most the reps of a rung the simulation found infeasible
       (:meth:`_Ladder.dominated`);
    3. any other gets one sequential decision (:meth:`Evaluator.decide`) at the most leads it
       can buy for less than ``B``, and not past its predicted peak (more leads would bring
       less revenue): short of the confidence there, it is short at every cheaper volume too
       (``P(goal)`` grows with volume below the peak, on common random numbers); reaching it,
       its smallest volume is bracketed below that point from ``ratio`` times its predicted
       volume, ``ratio`` the smallest simulated / predicted volume of the rungs found so far.

    A rung AE capacity rules out analytically is skipped. When no rung reaches the goal (the
    analytic shortfall ignores queues), ``more(a)`` adds the rungs of twice the most AEs tried,
    up to :data:`MAX_EXTRA_AES`, until one does. Returns the plan and one row per rung.
    """
    ladder = _Ladder()
    for rung in sorted(rungs, key=lambda r: (_predicted_cost(evaluate, r), r.extra_aes, r.sdrs)):
        _climb(evaluate, rung, slope, ladder)
    extra = max(r.extra_aes for r in rungs)
    while ladder.best is None and more is not None and extra < MAX_EXTRA_AES:
        extra = min(max(2 * extra, 1), MAX_EXTRA_AES)
        for rung in sorted(more(extra), key=lambda r: (_predicted_cost(evaluate, r), r.sdrs)):
            _climb(evaluate, rung, slope, ladder)
    if ladder.best is None:
        tried = ", ".join(sorted({f"+{a}" for a, _ in ladder.rows}, key=int))
        said = f" (--lever both tried {tried} AEs, each with the lead lever up to its cap)"
        if ladder.infeasible is not None:  # what binds on the last rung simulated
            why = ladder.infeasible
            raise PlanInfeasible(why.constraint, why.explanation + said, why.remedy)
        raise PlanInfeasible(
            "AE capacity",
            f"even the largest number of extra AEs tried cannot close the goal in the period, by the analytic "
            f"bound{said}.",
            "lengthen the period, start earlier (--lead-in, --hire-month), or lower the goal.",
        )
    best = ladder.best
    table = pd.DataFrame([ladder.rows[key] for key in sorted(ladder.rows)])
    table["chosen"] = (table["extra_aes"] == best.extra_aes) & (table["sdrs"] == best.sdrs)
    return best, table


def _predicted_cost(evaluate: Evaluator, rung: Rung) -> float:
    """The cost of the rung's predicted plan (infinite when the model says it never reaches the goal)."""
    k = rung.predicted.multiplier
    return evaluate.cost(STEP ** grid_point(k), rung.extra_aes, rung.sdrs) if math.isfinite(k) else math.inf


def _climb(evaluate: Evaluator, rung: Rung, slope: float, ladder: _Ladder) -> None:
    """Search one rung, or settle that it cannot beat the best plan, recording what happened."""
    a, sdrs, k_hat = rung.extra_aes, rung.sdrs, rung.predicted.multiplier
    row: dict[str, object] = {"extra_aes": a, "sdrs": sdrs, "lead_multiplier": math.nan, "cost": math.nan}
    row |= {"analytic_multiplier": rung.analytic_multiplier, "predicted_multiplier": k_hat}
    row |= {"peak_multiplier": rung.predicted.peak, "ae_limit_multiplier": rung.predicted.ae_limit}
    floor = evaluate.cost(1.0, a, sdrs)  # no plan buys fewer leads than today's
    row |= {"cost_bound": floor, "outcome": ""}
    ladder.rows[(a, sdrs)] = row
    best, dominated = ladder.best, ladder.dominated(rung)
    if rung.ruled_out:
        row["outcome"] = "AE capacity: the goal is above what these AEs can close"
    elif dominated is not None:
        row["outcome"] = dominated
    elif best is None:
        _search_first(evaluate, rung, slope, ladder, row)
    elif floor >= best.cost:
        row["outcome"] = "pruned: costs more than the best plan even with today's leads"
    else:
        _beat(evaluate, rung, best.cost, ladder, row)


def _beat(evaluate: Evaluator, rung: Rung, budget: float, ladder: _Ladder, row: dict[str, object]) -> None:
    """Whether the rung reaches the confidence for less than ``budget``, and if so at its smallest volume."""
    a, sdrs, k_hat = rung.extra_aes, rung.sdrs, rung.predicted.multiplier
    top = _most_below(evaluate, rung, budget)
    reached, _ = evaluate.decide(STEP**top, a, sdrs)
    if not reached:
        where = "its predicted peak volume" if STEP ** (top + 1) > rung.predicted.peak else "the most leads it can buy"
        row["outcome"] = f"pruned: short of the confidence at x{STEP**top:.3f}, {where} below the best plan's cost"
        return
    start = grid_point(ladder.ratio * k_hat) if math.isfinite(k_hat) else top
    j = smallest(lambda j: evaluate.decide(STEP**j, a, sdrs)[0], min(start, top), low=0, high=top)
    assert j is not None  # the top reaches
    _reached(evaluate, rung, evaluate.decide(STEP**j, a, sdrs)[1], ladder, row)


def _search_first(evaluate: Evaluator, rung: Rung, slope: float, ladder: _Ladder, row: dict[str, object]) -> None:
    """The rung searched before any plan is known: the whole lead search, from its predicted volume."""
    k_hat = rung.predicted.multiplier
    start = k_hat if math.isfinite(k_hat) else rung.analytic_multiplier
    try:
        c = search_leads(evaluate, start, rung.extra_aes, rung.sdrs, slope, sequential=True)
    except PlanInfeasible as why:
        ladder.infeasible = why
        ladder.short[(rung.extra_aes, rung.sdrs)] = why.constraint
        row["outcome"] = f"infeasible: {why.constraint}"
        return
    _reached(evaluate, rung, c, ladder, row)


def _reached(evaluate: Evaluator, rung: Rung, c: Candidate, ladder: _Ladder, row: dict[str, object]) -> None:
    """Record the rung's smallest volume; it is the best plan if cheaper than the best so far."""
    row |= {"lead_multiplier": c.lead_multiplier, "cost": c.cost, "outcome": "reached"}
    k_hat = rung.predicted.multiplier
    if math.isfinite(k_hat) and k_hat > 0:
        ladder.ratio = min(ladder.ratio, c.lead_multiplier / k_hat)
    if ladder.best is None or c.cost < ladder.best.cost:
        ladder.best = c


def _most_below(evaluate: Evaluator, rung: Rung, budget: float) -> int:
    """The largest grid point costing less than ``budget`` on the rung, and not past its predicted peak
    (0 at least). Cost is affine in the volume (leads bought, salaries fixed), so two costs place it."""
    a, sdrs = rung.extra_aes, rung.sdrs
    peak = rung.predicted.peak
    cap = min(TOP, max(0, math.floor(math.log(peak) / math.log(STEP) + 1e-9))) if math.isfinite(peak) else TOP
    low, high = evaluate.cost(1.0, a, sdrs), evaluate.cost(STEP**TOP, a, sdrs)
    slope = (high - low) / (STEP**TOP - 1)
    j = cap if slope <= 0 else min(cap, max(0, math.floor(math.log(1 + (budget - low) / slope) / math.log(STEP))))
    while j > 0 and evaluate.cost(STEP**j, a, sdrs) >= budget:
        j -= 1
    while j < cap and evaluate.cost(STEP ** (j + 1), a, sdrs) < budget:
        j += 1
    return j


# ---------------------------------------------------------------------------
# Which constraint binds when the search falls short

CAPS = {
    "leads": f"the lead lever reached its cap of x{MAX_LEAD_MULTIPLIER:g} today's volume",
    "saturated": "the lead lever stopped adding revenue (a step of 8% or more leads brought less than a quarter "
    "of the revenue the analytic funnel expects from it)",
    "budget": f"the budget lever reached its cap of x{MAX_LEAD_MULTIPLIER:g} today's spend",
    "budget_saturated": "the budget stopped adding revenue (a step of 8% or more budget brought less than a "
    "quarter of the revenue the analytic funnel expects from it: the channels are near their ceilings)",
    "aes": f"the AE lever reached its cap of +{MAX_EXTRA_AES} AEs",
    "aes_flat": "the AE lever stopped adding revenue (one more AE brought none on the search's runs)",
}
"""Which lever hit which cap, as the infeasibility message says it."""


def diagnose(evaluate: Evaluator, best: Candidate, lever: str, cap: str = "leads") -> PlanInfeasible:
    """The binding constraint, judged on the largest candidate tried: busy SDRs, busy AEs, or the funnel itself.

    ``cap`` says which lever hit which cap (:data:`CAPS`); the message names it.
    """
    sc, cur = evaluate.framed, evaluate.framed.currency
    if evaluate.spends and cap in ("leads", "saturated"):
        cap = {"leads": "budget", "saturated": "budget_saturated"}[cap]
    reached = (
        f"{CAPS[cap]}; the largest plan tried (leads x{best.lead_multiplier:.2f}, +{best.extra_aes} AEs, "
        f"{best.sdrs} SDRs) reaches the goal in {best.p_goal:.0%} of {best.runs} runs (mean {best.mean_revenue:,.0f} "
        f"{cur}), not {evaluate.confidence:.0%}."
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
        hired = evaluate.hire_date or sc.start_date
        return PlanInfeasible(
            "hiring lead time",
            busy + f"new AEs need {months} months to ramp up and are hired on {hired}; " + reached,
            "hire earlier (--hire-month, a longer --lead-in), lengthen the period, or lower the goal.",
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
