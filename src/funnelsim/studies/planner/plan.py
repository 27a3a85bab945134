r"""The reverse planner's entry point: from one revenue goal to joint targets for marketing and sales.

Finance, marketing and sales agree on one number ``G``, revenue booked in a period; the
plan is the smallest change of the levers (lead volume ``k``, extra AEs ``a``, SDRs)
with ``P(revenue in period >= G) >= confidence``, worked back up the funnel month by
month. :func:`plan` is a short sequence of steps:

1. check the request and choose the lead-in (by default long enough for 90% of leads
   to have closed, at most 12 months), framing the scenario to it (:mod:`.period`);
2. rule out goals AE capacity or hiring lead time cannot reach, before any simulation;
3. start from the analytic waterfall's volume for ``G`` (:mod:`.waterfall`);
4. simulate candidates on common random numbers until the smallest plan reaching the
   confidence is found (:mod:`.search`); ``lever="both"`` takes the cheapest mix of leads,
   AEs and SDRs (:mod:`.frontier`); on a scenario with spend curves the lead lever is the
   budget, split between the channels in its best mix (:mod:`.levers`, :mod:`.spend`);
5. verify that plan on seeds the search never saw, stepping further up the lever until
   the lower end of its verified ``P(goal)`` interval reaches the confidence
   (:mod:`.verify`, :mod:`.steps`); the unchanged scenario passing is "already met";
6. write the plan: the planned scenario, the joint-target sheet, headcount and cost.

Infeasible goals raise :class:`PlanInfeasible`, naming the binding constraint and the
lever caps; a plan that does not pass verification within the work budget (stated up
front, :class:`~.steps.WorkBudget`) raises :class:`PlanError`. Revenue is counted by
close month within the period; extra reps are hired on the hire date (by default the
start of the lead-in) and ramp as the scenario's ``ramp`` says. A scenario with an
``initial_pipeline`` describes the funnel as it is on its ``start_date``, so it is never
moved earlier: its open deals take the lead-in's place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import math
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Literal

import numpy as np
import pandas as pd

from funnelsim.model.mechanisms import productivity
from funnelsim.model.scenario import DAYS_PER_MONTH, Scenario, rate
from funnelsim.randomness import resolve_seed
from funnelsim.studies import executors
from funnelsim.studies import replications as mc
from funnelsim.studies.planner.errors import PlanError, PlanInfeasible
from funnelsim.studies.planner.frontier import Calibration, Rung, ae_ladder, calibrate, sdr_rungs
from funnelsim.studies.planner.levers import (
    LeadShape,
    Lever,
    SegmentNeeds,
    apply_changes,
    budget_of,
    frame_months,
    lever_name,
    planned_changes,
    spend_channels,
    team_size,
)
from funnelsim.studies.planner.period import (
    GOAL_FLAGS,
    GOALS,
    Period,
    add_months,
    frame,
    months_between,
    period_revenue,
)
from funnelsim.studies.planner.recurring import bookings_for
from funnelsim.studies.planner.search import (
    MAX_EVALUATIONS,
    Candidate,
    Evaluator,
    Progress,
    sdrs_for,
    search_both,
    search_leads,
    search_reps,
)
from funnelsim.studies.planner.sheet import TEAMS, headcount_table, joint_target_sheet
from funnelsim.studies.planner.spend import channel_values, spend_summary
from funnelsim.studies.planner.steps import WorkBudget, step
from funnelsim.studies.planner.verify import (
    MAX_VERIFICATIONS,
    MAX_VERIFY_RUNS,
    Verdict,
    Verifier,
    aim,
    verification_runs,
)
from funnelsim.studies.planner.waterfall import (
    STAGES,
    TARGET_UTILISATION,
    SourceYield,
    Waterfall,
    ae_revenue_ceiling,
    analytic_multiplier,
    source_yields,
    waterfall,
)
from funnelsim.studies.stats import json_ready
from funnelsim.studies.workload import Budget, estimate, workers_of

__all__ = ["TEAMS", "Plan", "PlanDiagnostics", "PlanError", "PlanInfeasible", "plan", "work_budget"]

Status = Literal["planned", "already met"]


@dataclass(frozen=True)
class Plan:
    """The joint-target plan.

    Attributes
    ----------
    status
        ``"planned"``, or ``"already met"``: the scenario as it is passed verification, so
        the plan changes nothing (it never plans fewer leads or reps than today).
    scenario
        The planned scenario (framed to the lead-in and period, planned volumes and
        headcount): what ``planned.toml`` holds.
    changes
        The dotted-path edits from the input scenario to ``scenario``.
    lead_multiplier, extra_aes, sdrs, hire_date
        The levers: volume ``k`` times today's (shaped by the lead shape); ``extra_aes``
        and the SDRs above today's hired on ``hire_date``; ``sdrs`` SDRs in all.
    p_goal
        The *verified* ``P(goal)``: ``estimate``, ``ci_low``, ``ci_high`` (95% Wilson),
        ``half_width``, ``hits``, ``n``, and the ``seed`` and ``first_replication`` of the
        fresh runs it was measured on (:mod:`.verify`).
    search_p_goal
        The same share on the search's runs (``estimate``, ``ci_low``, ``ci_high``, ``hits``,
        ``n``): optimistic, since the search chose the plan on them.
    sheet
        The joint-target sheet, one row per month and stage (:func:`.sheet.joint_target_sheet`).
    headcount
        One row per month: expected headcount of both teams (hires, ramp, attrition,
        backfills), the reps the expected flow keeps busy, and the month's cost.
    hires
        Per team: ``planned`` (the plan's hires), ``hire_date``, ``backfills_expected`` and
        ``leavers_expected`` (the hires it takes to hold the headcount) over the frame.
    budget
        The work budget stated before anything ran (:class:`~.steps.WorkBudget`).
    spend
        On a scenario with spend curves, the spend per channel today and in the plan
        (:func:`.spend.spend_summary`; ``lead_multiplier`` is then the budget's multiple of
        today's); empty otherwise.
    segments
        A segmented scenario's analytic months at the plan, per segment (:attr:`.waterfall.Waterfall.segments`:
        leads, SQLs, wins, bookings, SDRs and AEs of each segment); empty otherwise.
    """

    goal: float
    confidence: float
    period: Period
    lever: Lever
    lead_in_months: int
    status: Status
    scenario: Scenario
    changes: dict[str, Any]
    lead_multiplier: float
    extra_aes: int
    sdrs: int
    hire_date: dt.date
    p_goal: dict[str, float]
    search_p_goal: dict[str, float]
    sheet: pd.DataFrame
    headcount: pd.DataFrame
    revenue: dict[str, float]
    cost: dict[str, float]
    handoff_terms: dict[str, Any]
    hires: dict[str, dict[str, Any]]
    budget: dict[str, int]
    lead_shape: dict[str, Any] = field(default_factory=dict)
    spend: dict[str, Any] = field(default_factory=dict)
    segments: dict[str, pd.DataFrame] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document and ``plan.json`` (keys in docs/outputs.md); NaN as null."""
        sc = self.scenario
        leads = self.sheet[(self.sheet["stage"] == "leads") & (self.sheet["phase"] == "period")]
        doc = {
            "scenario": sc.name,
            "currency": sc.currency,
            "status": self.status,
            "goal": self.goal,
            "confidence": self.confidence,
            "period": {"start": self.period.start.isoformat(), "end": self.period.end.isoformat()},
            "goal_measure": self.period.goal,
            **({"goal_segment": self.period.segment} if self.period.segment is not None else {}),
            "lead_in_months": self.lead_in_months,
            "lever": self.lever,
            "p_goal": self.p_goal,
            "search_p_goal": self.search_p_goal,
            "lead_multiplier": self.lead_multiplier,
            "lead_shape": self.lead_shape,
            "leads_in_period": float(leads["target"].sum()),
            "extra_aes": self.extra_aes,
            "sdrs": self.sdrs,
            "hire_date": self.hire_date.isoformat(),
            "hires": self.hires,
            "revenue": self.revenue,
            "cost": self.cost,
            "handoff_terms": self.handoff_terms,
            "budget": self.budget,
            "changes": self.changes,
        }
        if self.spend:
            doc["spend"] = self.spend
        return json_ready(doc)


@dataclass(frozen=True)
class PlanDiagnostics:
    """How the plan was found.

    ``analytic`` is the waterfall at the analytic multiplier ``analytic_multiplier``
    (same headcount as the input); ``planned`` the waterfall of the chosen plan;
    ``candidates`` every candidate simulated by the search in the order tried;
    ``tradeoff`` (lever "both") each rung (extra AEs, SDRs) with its smallest lead volume, cost
    and what the search did with it; ``verifications`` every verification round;
    ``replications`` the plan's verification replications (fresh seeds: the sheet's
    ranges and the fan chart come from them); ``simulated`` the replications the search
    ran, ``verified`` those verification ran.
    """

    analytic_multiplier: float
    analytic: Waterfall
    planned: Waterfall
    candidates: pd.DataFrame
    tradeoff: pd.DataFrame | None
    verifications: pd.DataFrame
    replications: mc.Replications
    runs: int
    seed: int
    simulated: int
    verified: int

    def stages(self) -> pd.DataFrame:
        """Period totals per stage: ``analytic`` (today's headcount, analytic volume),
        ``planned_analytic`` (the chosen plan, analytically) and the plan's simulated
        ``simulated_mean``, ``simulated_p10``, ``simulated_p90`` (per-run totals over the period)."""
        period = self.analytic.period
        inside = self.replications.monthly[self.replications.monthly["month"].isin(period.months)]
        per_run = inside.groupby("replication")[list(STAGES)].sum()
        rows = []
        for stage in STAGES:
            values = per_run[stage].to_numpy(float)
            rows.append(
                {
                    "stage": stage,
                    "team": TEAMS[stage],
                    "analytic": float(self.analytic.in_period[stage].sum()),
                    "planned_analytic": float(self.planned.in_period[stage].sum()),
                    "simulated_mean": float(values.mean()),
                    "simulated_p10": float(np.percentile(values, 10)),
                    "simulated_p90": float(np.percentile(values, 90)),
                }
            )
        return pd.DataFrame(rows)


def work_budget(
    confidence: float,
    runs: int = 100,
    max_evaluations: int = MAX_EVALUATIONS,
    verify_runs: int | None = None,
    max_verifications: int = MAX_VERIFICATIONS,
) -> WorkBudget:
    """The most work :func:`plan` may do with these options (verification runs from the confidence when not
    given); :class:`PlanError` naming the option out of range."""
    if not 0 < confidence < 1:
        raise PlanError(f"--confidence must be between 0 and 1, got {confidence:g}")
    if runs < 10:
        raise PlanError(f"--runs must be >= 10 to estimate a probability, got {runs}")
    if max_evaluations < 2:
        raise PlanError(f"--max-evaluations must be >= 2 (a search compares candidates), got {max_evaluations}")
    if verify_runs is not None and not 30 <= verify_runs <= MAX_VERIFY_RUNS:
        raise PlanError(f"--verify-runs must be between 30 and {MAX_VERIFY_RUNS:,}, got {verify_runs}")
    if max_verifications < 1:
        raise PlanError(f"--max-verifications must be >= 1, got {max_verifications}")
    return WorkBudget(runs, max_evaluations, verify_runs or verification_runs(confidence), max_verifications)


def plan(
    scenario: Scenario,
    goal: float,
    confidence: float = 0.8,
    *,
    period: Period | None = None,
    lever: Lever | str = "leads",
    runs: int = 100,
    seed: int | None = None,
    pool: Executor | None = None,
    lead_in_months: int | None = None,
    target_utilisation: float = TARGET_UTILISATION,
    progress: Progress | None = None,
    budget: Budget | None = None,
    max_evaluations: int = MAX_EVALUATIONS,
    verify_runs: int | None = None,
    max_verifications: int = MAX_VERIFICATIONS,
    lead_shape: LeadShape | None = None,
    hire_month: dt.date | None = None,
    goal_kind: str = "bookings",
    goal_segment: str | None = None,
) -> tuple[Plan, PlanDiagnostics]:
    """Work back from ``goal`` (revenue closed in ``period``) to joint targets, verified on fresh seeds.

    Parameters
    ----------
    scenario
        The organisation as it is today.
    goal, confidence
        Revenue to close in the period (scenario currency); the required ``P(revenue >= goal)``.
    period
        Whole months; defaults to the scenario's horizon.
    lever
        ``"leads"``: marketing volume; ``"reps"`` (or ``"aes"``): AEs, SDRs sized to the
        flow; ``"both"``: the cheapest mix of leads, AEs and SDRs (:func:`.search.search_both`);
        ``"budget"``: the marketing budget on a scenario with spend curves, split in its best
        mix at every budget (:mod:`.levers`; ``leads`` and ``both`` do the same there).
    runs, seed, pool
        Replications per candidate of the search, on the same seeds for every candidate,
        run on ``pool`` (see :func:`funnelsim.studies.replications.executor`).
    lead_in_months
        Months simulated before the period; default: enough for 90% of leads to close (at most 12).
    budget, max_evaluations, verify_runs, max_verifications
        The work allowed: the search simulates at most ``max_evaluations`` candidates of
        ``runs`` replications, verification at most ``max_verifications`` rounds of
        ``verify_runs`` (default: enough for a 95% interval of +-2.5 points); the whole
        (:func:`work_budget`) is judged by ``budget`` (:class:`funnelsim.studies.workload.Budget`)
        at the analytic plan's size before the first simulation.
    lead_shape
        Which sources and months the lead lever scales, with what weight (:class:`~.levers.LeadShape`).
    hire_month
        The 1st of the month extra AEs and SDRs join (default: the first simulated day).
    goal_kind, goal_segment
        What ``goal`` measures (a key of :data:`~.period.GOALS`, read by :func:`~.period.period_revenue`), and
        of which segment alone (``None``: the company's; the levers still act on every segment).

    Raises
    ------
    PlanError
        A bad request, or no plan passing verification within the work budget.
    PlanInfeasible
        No plan within reach; names the binding constraint and the lever caps.
    """
    request = _request(scenario, goal, confidence, period, lever, runs, seed, target_utilisation, lead_in_months)
    request = dataclasses.replace(request, period=_goal_of(scenario, request.period, goal_kind, goal_segment))
    request = request.with_work(max_evaluations, verify_runs, max_verifications, lead_shape, hire_month)
    yields = source_yields(scenario)  # volumes, dates and headcount do not change them
    framed, lead_in_months = _framed(scenario, request, lead_in_months, yields)
    request = _check_levers(framed, request, yields)
    _check_reachable(scenario, framed, request, yields)
    start = _analytic_start(framed, request, yields)
    evaluate = _evaluator(framed, request, yields, start.multiplier, pool, budget, progress)
    verifier = Verifier(
        evaluate.scenario, request.period, goal, confidence, request.budget.verify_runs, request.seed,
        evaluate.pool, request.budget.max_verifications, progress,
    )  # fmt: skip
    verdict, reps, tradeoff = _find(evaluate, verifier, request, start)
    result, planned = _write_plan(scenario, framed, request, lead_in_months, verdict, reps, evaluate, yields)
    return result, _diagnostics(start, planned, evaluate, verifier, tradeoff, reps)


# ---------------------------------------------------------------------------
# The steps of plan()


@dataclass(frozen=True)
class _Request:
    """A checked planning request: the goal, how surely to reach it, and the search's options."""

    goal: float
    confidence: float
    period: Period
    lever: Lever
    runs: int
    seed: int
    target_utilisation: float
    budget: WorkBudget = field(default_factory=lambda: WorkBudget(100, MAX_EVALUATIONS, 1))
    shape: LeadShape = field(default_factory=LeadShape)
    hire_month: dt.date | None = None
    needs: SegmentNeeds | None = None

    @property
    def max_evaluations(self) -> int:
        return self.budget.max_evaluations

    def with_work(
        self,
        max_evaluations: int,
        verify_runs: int | None,
        max_verifications: int,
        shape: LeadShape | None,
        hire_month: dt.date | None,
    ) -> _Request:
        """The request with its work budget and lever options, each checked."""
        if hire_month is not None and hire_month.day != 1:
            raise PlanError(f"--hire-month is a month (YYYY-MM), got the date {hire_month}")
        work = work_budget(self.confidence, self.runs, max_evaluations, verify_runs, max_verifications)
        return replace(self, budget=work, shape=shape or LeadShape(), hire_month=hire_month)


def _request(
    scenario: Scenario,
    goal: float,
    confidence: float,
    period: Period | None,
    lever: Lever | str,
    runs: int,
    seed: int | None,
    target_utilisation: float,
    lead_in_months: int | None,
) -> _Request:
    """Decides whether the request can be carried out at all: every option in its range."""
    if not (goal > 0 and math.isfinite(goal)):
        raise PlanError(f"--goal must be a positive amount, got {goal:g}")
    if not 0 < confidence < 1:
        raise PlanError(f"--confidence must be between 0 and 1, got {confidence:g}")
    name = lever_name(str(lever))
    if runs < 10:
        raise PlanError(f"--runs must be >= 10 to estimate a probability, got {runs}")
    if not 0 < target_utilisation <= 1:
        raise PlanError(f"target utilisation must be in (0, 1], got {target_utilisation:g}")
    if lead_in_months is not None and not 0 <= lead_in_months <= 24:
        raise PlanError(f"--lead-in must be between 0 and 24 months, got {lead_in_months}")
    if name == "budget" and not spend_channels(scenario):
        raise PlanError(
            "--lever budget: no source of this scenario has a spend curve (give sources.<name>.spend_per_month "
            "and max_leads_per_month); plan its lead volume with --lever leads"
        )
    period = period or Period.of(scenario)
    _check_lead_in(scenario, period, lead_in_months)
    seed = resolve_seed(scenario, seed)
    return _Request(goal, confidence, period, name, runs, seed, target_utilisation)


def _goal_of(scenario: Scenario, period: Period, goal_kind: str, segment: str | None) -> Period:
    """The period with what its goal measures (of which segment), if the scenario can measure it."""
    if goal_kind not in GOALS:
        raise PlanError(f"unknown goal {goal_kind!r}; choose one of {', '.join(GOALS)}")
    if goal_kind != "bookings" and scenario.subscription is None:
        flag = GOAL_FLAGS[goal_kind][0]
        raise PlanError(f"{flag}: the scenario sells no subscriptions (no [subscription] section); plan --goal")
    if segment is not None and segment not in scenario.segments:
        known = f"its segments are {', '.join(scenario.segment_names)}" if scenario.segments else "it has no segments"
        raise PlanError(f"--goal-segment: the scenario has no segment {segment!r}; {known}")
    return dataclasses.replace(period, goal=goal_kind, segment=segment)


def _check_lead_in(scenario: Scenario, period: Period, lead_in_months: int | None) -> None:
    """Decides whether a lead-in asked for fits: none can reach before an initial pipeline's date."""
    if (
        scenario.initial_pipeline is not None
        and lead_in_months is not None
        and add_months(period.start, -lead_in_months) < scenario.start_date
    ):
        raise PlanError(
            f"--lead-in {lead_in_months}: the scenario starts from its initial pipeline on {scenario.start_date}, "
            "so nothing can be simulated before that date (the open deals take the lead-in's place); "
            "leave --lead-in out"
        )


def _framed(
    scenario: Scenario, request: _Request, lead_in_months: int | None, yields: dict[str, SourceYield]
) -> tuple[Scenario, int]:
    """Decides the lead-in and frames the scenario to it; returns the framed scenario and its lead-in in months.

    A warm scenario needs none by default: its burn-in (chosen once here, for the base, and
    kept by every candidate and the planned scenario) fills the funnel before the period.
    Otherwise the lead-in is the funnel's 90th-percentile lead -> win lag (at most 12
    months); the framed scenario may start later than asked (an initial pipeline).
    """
    period = request.period
    if lead_in_months is None and scenario.burns_in:
        lead_in_months = 0
    if lead_in_months is None:
        probe = waterfall(frame(scenario, period, 12), period, request.target_utilisation, yields)
        lead_in_months = min(12, math.ceil(probe.lag_p90_days / DAYS_PER_MONTH))
    framed = frame(scenario, period, lead_in_months)
    framed = mc.same_burn_in([framed], request.seed, [framed])[0]
    return framed, len(months_between(framed.start_date, period.start))


def _check_levers(framed: Scenario, request: _Request, yields: dict[str, SourceYield]) -> _Request:
    """Decides whether the lead shape and hire month fit the simulated months; the hire date (default: day 0);
    with spend curves, what a lead of each channel is worth to the budget's mix."""
    months = frame_months(framed)
    request.shape.check(framed, months)
    request = _with_spend(framed, request, yields)
    request = replace(request, needs=_segment_needs(framed, request, yields))
    hire = request.hire_month
    if hire is None:
        return replace(request, hire_month=framed.start_date)
    if not framed.start_date <= hire <= request.period.end:
        raise PlanError(
            f"--hire-month {hire:%Y-%m} is outside the simulated months ({months[0]} to {months[-1]}: the lead-in "
            "and the period); hire within them, or lengthen the lead-in (--lead-in)"
        )
    return request


def _segment_needs(framed: Scenario, request: _Request, yields: dict[str, SourceYield]) -> SegmentNeeds | None:
    """A segmented scenario's AEs and SDRs needed per segment at today's volume (busiest month of the period),
    by which its extra heads are split (:func:`~.levers.split_heads`); ``None`` without segments. For a goal of
    one segment, only that segment's teams need heads (the others' need counts as 0: no head goes there)."""
    if not framed.segments:
        return None
    parts = waterfall(framed, request.period, request.target_utilisation, yields).segments
    period = {name: months[months["phase"] == "period"] for name, months in parts.items()}
    counts = {name: request.period.segment in (None, name) for name in period}
    return SegmentNeeds(
        {name: float(months["aes_needed"].max()) * counts[name] for name, months in period.items()},
        {name: float(months["sdrs_needed"].max()) * counts[name] for name, months in period.items()},
    )


def _with_spend(framed: Scenario, request: _Request, yields: dict[str, SourceYield]) -> _Request:
    """The request with the channel values the budget lever splits its spend by (unchanged without spend
    curves); :class:`PlanError` when there is no spend to multiply."""
    if not spend_channels(framed):
        return request
    if request.lever != "reps" and budget_of(framed, request.shape) <= 0:
        raise PlanError(
            f"--lever {request.lever}: today's spend on {', '.join(spend_channels(framed, request.shape))} is 0, "
            "and the budget lever multiplies it; give one of them a spend_per_month > 0"
        )
    return replace(request, shape=replace(request.shape, values=channel_values(framed, yields)))


def _check_reachable(scenario: Scenario, framed: Scenario, request: _Request, yields: dict[str, SourceYield]) -> None:
    """Decides, before any simulation, whether AE capacity (leads only) or hiring lead time rules the goal out."""
    period, goal = request.period, bookings_for(framed, request.period, request.goal)
    if request.lever in ("leads", "budget"):
        ceiling = ae_revenue_ceiling(framed, period, yields)
        if goal > ceiling:
            earliest = frame(scenario, period, 24)
            raise _ae_bound(framed, period, goal, ceiling, ae_revenue_ceiling(earliest, period, yields))
    else:
        _check_hiring_in_time(framed, period, request.hire_month or framed.start_date)


@dataclass(frozen=True)
class _AnalyticStart:
    """Where the search starts: the analytic volume for the goal and the flows around it."""

    multiplier: float
    analytic: Waterfall  # at the analytic multiplier, today's headcount
    slope: float  # revenue per unit of lead multiplier, for the saturation test of the search
    flow: Callable[[float, int], Waterfall]  # the waterfall at a multiplier and extra AEs


def _analytic_start(framed: Scenario, request: _Request, yields: dict[str, SourceYield]) -> _AnalyticStart:
    """Decides the search's starting volume: the multiplier whose analytic revenue is the goal (1 for reps)."""
    period, shape = request.period, request.shape
    k_analytic = 1.0
    if request.lever != "reps":
        k_analytic = analytic_multiplier(framed, period, request.goal, yields, shape=shape)

    def flow(k: float, extra_aes: int = 0) -> Waterfall:
        changes = _planned(framed, request, k, extra_aes)
        return waterfall(apply_changes(framed, changes), period, request.target_utilisation, yields)

    analytic, without_leads = flow(k_analytic), flow(0.0)
    slope = (analytic.revenue - without_leads.revenue) / k_analytic if k_analytic > 0 else 0.0
    return _AnalyticStart(k_analytic, analytic, slope, flow)


def _planned(framed: Scenario, request: _Request, k: float, extra_aes: int, sdrs: int | None = None) -> dict[str, Any]:
    """The edits of these levers, shaped and dated as the request says."""
    return planned_changes(
        framed, k, extra_aes, sdrs, shape=request.shape, hire_date=request.hire_month, needs=request.needs
    )


def _evaluator(
    framed: Scenario,
    request: _Request,
    yields: dict[str, SourceYield],
    k_analytic: float,
    pool: Executor | None,
    budget: Budget | None,
    progress: Progress | None,
) -> Evaluator:
    """Decides whether the whole plan fits the budget (search and verification, judged at the analytic plan's
    size) and sets the search up."""
    pool = pool or executors.SerialExecutor()
    budget = budget or Budget()
    work = request.budget
    at_analytic = apply_changes(framed, _planned(framed, request, max(k_analytic, 1.0), 0))
    budget.admit(
        estimate(at_analytic, work.replications, workers_of(pool)), f"this plan's work budget ({work.describe()})"
    )
    r = request
    return Evaluator(
        framed, r.period, r.goal, r.confidence, r.runs, r.seed, pool, progress, yields, budget,
        work.search_replications, shape=r.shape, hire_date=r.hire_month, needs=r.needs,
    )  # fmt: skip


def _find(
    evaluate: Evaluator, verifier: Verifier, request: _Request, start: _AnalyticStart
) -> tuple[Verdict, mc.Replications, pd.DataFrame | None]:
    """Decides the plan: the unchanged scenario if it passes verification, else the search's pick, verified and
    stepped further up the lever until it passes."""
    today = (1.0, 0, team_size(evaluate.framed, "sdr"))
    checked = None
    if evaluate.ok(evaluate(*today)):
        # The search's own runs say no change is needed: verify that first. (The lead search starts from the
        # analytic volume and goes up when that falls short: past an SDR cliff it would never come back to today.)
        checked = verifier(*today)
        if checked[0].passed:
            return *checked, None
    chosen, tradeoff = _search(evaluate, request, start)
    levers = (chosen.lead_multiplier, chosen.extra_aes, chosen.sdrs)
    # The unchanged scenario failed verification but the search picks it again: step from its verdict.
    verdict, reps = checked if checked is not None and levers == today else verifier(*levers)
    level = aim(request.confidence, verifier.runs)
    while not verdict.passed:
        verifier.check_budget()  # before the step's search: say so if no round is left to verify it
        verdict, reps = verifier(*step(evaluate, verifier, level, request.lever))
    return verdict, reps, tradeoff


def _search(evaluate: Evaluator, request: _Request, start: _AnalyticStart) -> tuple[Candidate, pd.DataFrame | None]:
    """Decides the plan's levers with the search of the lever asked for; the trade-off table for ``both``."""
    if request.lever in ("leads", "budget"):
        return search_leads(evaluate, start.multiplier, 0, team_size(evaluate.framed, "sdr"), start.slope), None
    if request.lever == "reps":
        return search_reps(evaluate, sdrs_for(start.analytic, evaluate.framed)), None
    today = (1.0, 0, team_size(evaluate.framed, "sdr"))  # simulated before any search (_find)
    calibration = calibrate(
        evaluate.scenario(*today), request.period, evaluate.yields, evaluate.replications(*today), request.goal,
        request.confidence,
    )  # fmt: skip
    short = float((start.analytic.in_period["aes_needed"] - start.analytic.in_period["aes"]).max())
    rungs = [r for extra in ae_ladder(short) for r in _rungs(evaluate, request, start, calibration, extra)]
    more = partial(_rungs, evaluate, request, start, calibration)
    return search_both(evaluate, rungs, start.slope, more)


def _rungs(
    evaluate: Evaluator, request: _Request, start: _AnalyticStart, calibration: Calibration, extra: int
) -> list[Rung]:
    """The rungs of ``extra`` AEs (:func:`~.frontier.sdr_rungs`): SDRs from the Little's-law sizing of their
    analytic flow up, each with its analytic and predicted volume."""
    sdrs = sdrs_for(start.flow(start.multiplier, extra), evaluate.framed)
    staffed = evaluate.scenario(1.0, extra, sdrs)
    analytic = math.inf
    if ae_revenue_ceiling(staffed, request.period, evaluate.yields) >= bookings_for(
        staffed, request.period, request.goal
    ):
        with contextlib.suppress(PlanInfeasible):
            analytic = analytic_multiplier(staffed, request.period, request.goal, evaluate.yields, shape=request.shape)
    return sdr_rungs(
        extra, sdrs, team_size(evaluate.framed, "sdr"), analytic, partial(_candidate, evaluate, extra),
        request.period, evaluate.yields, calibration,
    )  # fmt: skip


def _candidate(evaluate: Evaluator, extra: int, k: float, sdrs: int) -> Scenario:
    """The candidate plan at volume ``k`` with ``extra`` AEs and ``sdrs`` SDRs."""
    return evaluate.scenario(k, extra, sdrs)


def _write_plan(
    scenario: Scenario,
    framed: Scenario,
    request: _Request,
    lead_in_months: int,
    verdict: Verdict,
    reps: mc.Replications,
    evaluate: Evaluator,
    yields: dict[str, SourceYield],
) -> tuple[Plan, Waterfall]:
    """Decides what the plan says: the planned scenario and its flow, with the sheet, revenue and cost beside it."""
    period = request.period
    k, extra_aes, sdrs = verdict.lead_multiplier, verdict.extra_aes, verdict.sdrs
    changes = {
        "name": f"{scenario.name}-plan",
        "start_date": framed.start_date.isoformat(),
        "horizon_days": framed.horizon_days,
        **({"burn_in_days": framed.burn_in_days} if framed.burn_in_days is not None else {}),
        **_planned(framed, request, k, extra_aes, sdrs),
    }
    planned_scenario = apply_changes(scenario, changes)
    planned = waterfall(planned_scenario, period, request.target_utilisation, yields)
    today = (k, extra_aes, sdrs) == (1.0, 0, team_size(framed, "sdr"))
    hire_date = request.hire_month or framed.start_date
    result = Plan(
        goal=request.goal,
        confidence=request.confidence,
        period=period,
        lever=request.lever,
        lead_in_months=lead_in_months,
        status="already met" if today else "planned",
        scenario=planned_scenario,
        changes=changes,
        lead_multiplier=k,
        extra_aes=extra_aes,
        sdrs=sdrs,
        hire_date=hire_date,
        p_goal=_verified(verdict, request.seed),
        search_p_goal=_search_p_goal(evaluate, verdict),
        sheet=joint_target_sheet(planned, reps, _sheet_goal(framed, request, reps)),
        headcount=headcount_table(planned),
        revenue=_revenue_summary(reps, period),
        cost=_cost_summary(planned, planned_scenario, reps, period),
        handoff_terms=_handoff_terms(framed),
        hires=_hires(planned, framed, extra_aes, sdrs, hire_date, changes),
        budget=request.budget.to_json(),
        lead_shape={
            "sources": None if request.shape.sources is None else dict(request.shape.sources),
            "months": None if request.shape.months is None else dict(request.shape.months),
        },
        spend=spend_summary(framed, planned_scenario, k, request.shape, yields),
        segments=planned.segments,
    )
    return result, planned


def _verified(verdict: Verdict, seed: int) -> dict[str, Any]:
    """The verified ``P(goal)`` as the plan reports it, with where its runs came from."""
    return {
        "estimate": verdict.p_goal,
        "ci_low": verdict.ci_low,
        "ci_high": verdict.ci_high,
        "half_width": verdict.half_width,
        "hits": verdict.hits,
        "n": verdict.runs,
        "seed": seed,
        "first_replication": verdict.first_replication,
        "round": verdict.round,
    }


def _search_p_goal(evaluate: Evaluator, verdict: Verdict) -> dict[str, Any]:
    """The plan's share of hits on the search's runs (simulated there if verification stepped past the search)."""
    c = evaluate(verdict.lead_multiplier, verdict.extra_aes, verdict.sdrs)
    return {"estimate": c.p_goal, "ci_low": c.ci_low, "ci_high": c.ci_high, "hits": c.hits, "n": c.runs}


def _sheet_goal(framed: Scenario, request: _Request, reps: mc.Replications) -> float:
    """The bookings the joint-target sheet spreads over the period: those the goal needs; for a goal of one
    segment, its segment's need plus the other segments' simulated mean (the sheet is the company's)."""
    period = request.period
    needed = bookings_for(framed, period, request.goal)
    if period.segment is None:
        return needed
    bookings = dataclasses.replace(period, goal="bookings")
    others = [name for name in framed.segment_names if name != period.segment]
    return needed + sum(
        float(period_revenue(reps.monthly, dataclasses.replace(bookings, segment=name)).mean()) for name in others
    )


def _hires(
    planned: Waterfall, framed: Scenario, extra_aes: int, sdrs: int, hire_date: dt.date, changes: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Per team: the plan's hires (a segmented plan's also by segment, ``by_segment``) and the expected backfills
    and leavers over the simulated months."""
    months = planned.months
    out: dict[str, dict[str, Any]] = {}
    for team, extra in (("ae", extra_aes), ("sdr", sdrs - team_size(framed, "sdr"))):
        out[team] = {
            "planned": extra,
            "hire_date": hire_date.isoformat(),
            "backfills_expected": float(months[f"{team}_backfills"].sum()),
            "leavers_expected": float(months[f"{team}_leavers"].sum()),
        }
        if framed.segments:  # the plan's hire is the first of a segment's list (levers._segment_hires)
            path = "sales.ae" if team == "ae" else "handoff.sdr"
            lists = {name: changes.get(f"segments.{name}.{path}.hires") for name in framed.segment_names}
            out[team]["by_segment"] = {name: hires[0]["count"] if hires else 0 for name, hires in lists.items()}
    return out


def _revenue_summary(reps: mc.Replications, period: Period) -> dict[str, float]:
    """The mean and 10th, 50th and 90th percentiles of the plan's revenue in the period (verification runs)."""
    revenue = period_revenue(reps.monthly, period)
    return {
        "mean": float(revenue.mean()),
        "p10": float(np.percentile(revenue, 10)),
        "p50": float(np.percentile(revenue, 50)),
        "p90": float(np.percentile(revenue, 90)),
    }


def _cost_summary(
    planned: Waterfall, planned_scenario: Scenario, reps: mc.Replications, period: Period
) -> dict[str, float]:
    """The period's cost (leads and salaries, analytically), its marketing part, and cost per simulated win."""
    wins = reps.monthly[reps.monthly["month"].isin(period.months)].groupby("replication")["wins"].sum()
    period_cost = float(planned.in_period["cost"].sum())
    return {
        "period_total": period_cost,
        "marketing": float(
            sum(
                planned.in_period[f"leads_{n}"].sum() * src.average_cost_per_lead
                for n, src in planned_scenario.sources.items()
            )
        ),
        "cac": period_cost / float(wins.mean()) if float(wins.mean()) > 0 else math.nan,
    }


def _handoff_terms(framed: Scenario) -> dict[str, Any]:
    """The hand-off agreement between marketing and sales the plan assumes."""
    h = framed.handoff
    return {
        "follow_up_rate": rate(h.follow_up_rate),
        "response_time_hours_mean": h.response_delay_days.mean * 24,
        "sdr_patience_days_mean": None if h.sdr.patience_days is None else h.sdr.patience_days.mean,
        "mql_threshold": framed.qualification.mql.threshold,
        "sql_threshold": framed.qualification.sql.threshold,
    }


def _diagnostics(
    start: _AnalyticStart,
    planned: Waterfall,
    evaluate: Evaluator,
    verifier: Verifier,
    tradeoff: pd.DataFrame | None,
    reps: mc.Replications,
) -> PlanDiagnostics:
    """How the plan was found: the analytic start, the plan's flow, every candidate and verification round."""
    return PlanDiagnostics(
        analytic_multiplier=start.multiplier,
        analytic=start.analytic,
        planned=planned,
        candidates=pd.DataFrame([vars(c) for c in evaluate.history]),
        tradeoff=tradeoff,
        verifications=verifier.table(),
        replications=reps,
        runs=evaluate.runs,
        seed=evaluate.seed,
        simulated=evaluate.used,
        verified=verifier.used,
    )


# ---------------------------------------------------------------------------
# Infeasibility known before any simulation


def _ae_bound(framed: Scenario, period: Period, goal: float, ceiling: float, earliest: float) -> PlanInfeasible:
    """The sales cycle binds if even the earliest start cannot close the goal; AE capacity otherwise."""
    ae, cur = framed.sales.ae, framed.currency
    if goal <= earliest:
        return PlanInfeasible(
            "sales cycle",
            f"deals take {framed.sales.cycle_days.mean:.0f} days on average and the funnel starts on "
            f"{framed.start_date}; even with unlimited leads at most {ceiling:,.0f} {cur} can close in {period}, "
            f"below the goal of {goal:,.0f} {cur}.",
            "start generating leads earlier (a longer --lead-in), lengthen the period, or lower the goal.",
        )
    return PlanInfeasible(
        "AE capacity",
        f"{ae.count} AEs (plus {sum(h.count for h in ae.hires)} planned hires) with {ae.max_open_opportunities} "
        f"open deals each and a {framed.sales.cycle_days.mean:.0f}-day mean cycle can close at most "
        f"{ceiling:,.0f} {cur} in {period}, however many leads marketing brings (with --lever leads the AE "
        f"team stays as it is); the goal is {goal:,.0f} {cur}.",
        "add AEs (--lever reps or --lever both), or lower the goal.",
    )


def _check_hiring_in_time(framed: Scenario, period: Period, hire_date: dt.date) -> None:
    """A hire on the hire date must be productive at some point in the period."""
    ae = framed.sales.ae
    first = (period.start - hire_date).days / DAYS_PER_MONTH
    last = (period.end - hire_date).days / DAYS_PER_MONTH
    if all(productivity(ae, m) == 0 for m in np.arange(math.floor(first), last + 1)):
        months = next((i for i, x in enumerate(ae.ramp) if x > 0), len(ae.ramp))
        raise PlanInfeasible(
            "hiring lead time",
            f"a new AE sells nothing for {months} months (sales.ae.ramp), and AEs hired on {hire_date} "
            f"are not productive before {period} ends.",
            "hire earlier (--hire-month, a longer --lead-in), lengthen the period, or use --lever leads.",
        )
