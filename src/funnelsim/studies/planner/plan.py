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
   confidence is found (:mod:`.search`); ``lever="both"`` takes the cheapest mix;
5. write the plan: the planned scenario, the joint-target sheet, headcount and cost.

Infeasible goals raise :class:`PlanInfeasible`, naming the binding constraint. Revenue
is counted by close month within the period; extra AEs are hired at the start of the
lead-in and ramp as the scenario's ``ramp`` says. A scenario with an
``initial_pipeline`` describes the funnel as it is on its ``start_date``, so it is
never moved earlier: its open deals take the lead-in's place.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from funnelsim.model.mechanisms import productivity
from funnelsim.model.scenario import DAYS_PER_MONTH, Scenario, rate
from funnelsim.randomness import resolve_seed
from funnelsim.studies import executors
from funnelsim.studies import replications as mc
from funnelsim.studies.planner.errors import PlanError, PlanInfeasible
from funnelsim.studies.planner.levers import LEVERS, Lever, apply_changes, planned_changes
from funnelsim.studies.planner.period import Period, add_months, frame, months_between, period_revenue
from funnelsim.studies.planner.search import (
    MAX_EVALUATIONS,
    Candidate,
    Evaluator,
    Progress,
    search_both,
    search_leads,
    search_reps,
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

__all__ = ["TEAMS", "Plan", "PlanDiagnostics", "PlanError", "PlanInfeasible", "plan"]

TEAMS = {"leads": "marketing", "mqls": "marketing", "sqls": "shared", "opportunities": "sales", "wins": "sales"}
TEAMS |= {"revenue": "sales", "prospected": "sales"}


@dataclass(frozen=True)
class Plan:
    """The joint-target plan.

    Attributes
    ----------
    scenario
        The planned scenario (framed to the lead-in and period, planned volumes and
        headcount): what ``planned.toml`` holds.
    changes
        The dotted-path edits from the input scenario to ``scenario``.
    lead_multiplier, extra_aes, sdrs
        The levers: every source's volume times ``lead_multiplier``; ``extra_aes`` hired
        at the start of the lead-in; ``sdrs`` SDRs.
    p_goal
        ``estimate``, ``ci_low``, ``ci_high`` (95% Wilson), ``hits``, ``n``: the share
        of the plan's replications that reached the goal.
    sheet
        The joint-target sheet, one row per month and stage (see :func:`_sheet`).
    headcount
        One row per month: AE headcount and ramped-up equivalents, SDRs, the reps the
        expected flow keeps busy at the target utilisation (Little's law), and the
        month's cost (leads bought and salaries).
    """

    goal: float
    confidence: float
    period: Period
    lever: Lever
    lead_in_months: int
    scenario: Scenario
    changes: dict[str, Any]
    lead_multiplier: float
    extra_aes: int
    sdrs: int
    p_goal: dict[str, float]
    sheet: pd.DataFrame
    headcount: pd.DataFrame
    revenue: dict[str, float]
    cost: dict[str, float]
    handoff_terms: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document and ``plan.json`` (keys in docs/outputs.md); NaN as null."""
        sc = self.scenario
        leads = self.sheet[(self.sheet["stage"] == "leads") & (self.sheet["phase"] == "period")]
        doc = {
            "scenario": sc.name,
            "currency": sc.currency,
            "goal": self.goal,
            "confidence": self.confidence,
            "period": {"start": self.period.start.isoformat(), "end": self.period.end.isoformat()},
            "lead_in_months": self.lead_in_months,
            "lever": self.lever,
            "p_goal": self.p_goal,
            "lead_multiplier": self.lead_multiplier,
            "leads_in_period": float(leads["target"].sum()),
            "extra_aes": self.extra_aes,
            "sdrs": self.sdrs,
            "revenue": self.revenue,
            "cost": self.cost,
            "handoff_terms": self.handoff_terms,
            "changes": self.changes,
        }
        return json_ready(doc)


@dataclass(frozen=True)
class PlanDiagnostics:
    """How the plan was found.

    ``analytic`` is the waterfall at the analytic multiplier ``analytic_multiplier``
    (same headcount as the input); ``planned`` the waterfall of the chosen plan;
    ``candidates`` every simulated candidate in the order tried; ``tradeoff`` (lever
    "both") the smallest lead volume per number of extra AEs with its cost;
    ``replications`` the chosen plan's replications (for the fan chart); ``simulated``
    the replications run in all (a candidate's pilot runs are reused by its full runs).
    """

    analytic_multiplier: float
    analytic: Waterfall
    planned: Waterfall
    candidates: pd.DataFrame
    tradeoff: pd.DataFrame | None
    replications: mc.Replications
    runs: int
    seed: int
    simulated: int

    def stages(self) -> pd.DataFrame:
        """Period totals per stage: ``analytic`` (today's headcount, analytic volume),
        ``planned_analytic`` (the chosen plan, analytically) and the plan's simulated
        ``simulated_mean``, ``simulated_p10``, ``simulated_p90``."""
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


def plan(
    scenario: Scenario,
    goal: float,
    confidence: float = 0.8,
    *,
    period: Period | None = None,
    lever: Lever = "leads",
    runs: int = 100,
    seed: int | None = None,
    pool: Executor | None = None,
    lead_in_months: int | None = None,
    target_utilisation: float = TARGET_UTILISATION,
    progress: Progress | None = None,
    budget: Budget | None = None,
    max_evaluations: int = MAX_EVALUATIONS,
) -> tuple[Plan, PlanDiagnostics]:
    """Work back from ``goal`` (revenue closed in ``period``) to joint targets.

    Parameters
    ----------
    scenario
        The organisation as it is today.
    goal, confidence
        Revenue to close in the period (scenario currency); the required ``P(revenue >= goal)``.
    period
        Whole months; defaults to the scenario's horizon.
    lever
        ``"leads"``: marketing volume; ``"reps"``: AEs (SDRs sized to the flow); ``"both"``: cheapest mix.
    runs, seed, pool
        Replications per candidate, on the same seeds for every candidate, run on ``pool``
        (see :func:`funnelsim.studies.replications.executor`).
    lead_in_months
        Months simulated before the period; default: enough for 90% of leads to close (at most 12).
    budget, max_evaluations
        The work allowed (:class:`funnelsim.studies.workload.Budget`): the whole search, ``max_evaluations``
        candidates of ``runs`` replications at the analytic plan's size, is judged (and announced) before
        the first simulation, each candidate again at its own size; it stops with a :class:`PlanError`
        rather than go past ``max_evaluations * runs`` replications in all (pilot runs count too).

    Raises
    ------
    PlanError
        A bad request (goal, confidence, period, lever, runs).
    PlanInfeasible
        No plan within reach; names the binding constraint.
    """
    _check_request(goal, confidence, lever, runs, max_evaluations, target_utilisation, lead_in_months)
    period = period or Period.of(scenario)
    _check_lead_in(scenario, period, lead_in_months)
    seed = resolve_seed(scenario, seed)
    request = _Request(goal, confidence, period, lever, runs, seed, target_utilisation, max_evaluations)
    yields = source_yields(scenario)  # volumes, dates and headcount do not change them
    framed, lead_in_months = _framed(scenario, request, lead_in_months, yields)
    _check_reachable(scenario, framed, request, yields)
    start = _analytic_start(framed, request, yields)
    evaluate = _evaluator(framed, request, yields, start.multiplier, pool, budget, progress)
    chosen, tradeoff = _search(evaluate, request, start)
    reps = evaluate.replications(chosen.lead_multiplier, chosen.extra_aes, chosen.sdrs)
    result, planned = _write_plan(scenario, framed, request, lead_in_months, chosen, reps, yields)
    return result, _diagnostics(start, planned, evaluate, tradeoff, reps)


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
    max_evaluations: int


def _check_request(
    goal: float,
    confidence: float,
    lever: Lever,
    runs: int,
    max_evaluations: int,
    target_utilisation: float,
    lead_in_months: int | None,
) -> None:
    """Decides whether the request can be carried out at all: every option in its range."""
    if not (goal > 0 and math.isfinite(goal)):
        raise PlanError(f"--goal must be a positive amount, got {goal:g}")
    if not 0 < confidence < 1:
        raise PlanError(f"--confidence must be between 0 and 1, got {confidence:g}")
    if lever not in LEVERS:
        raise PlanError(f"--lever must be one of {', '.join(LEVERS)}, got {lever!r}")
    if runs < 10:
        raise PlanError(f"--runs must be >= 10 to estimate a probability, got {runs}")
    if max_evaluations < 2:
        raise PlanError(f"--max-evaluations must be >= 2 (a search compares candidates), got {max_evaluations}")
    if not 0 < target_utilisation <= 1:
        raise PlanError(f"target utilisation must be in (0, 1], got {target_utilisation:g}")
    if lead_in_months is not None and not 0 <= lead_in_months <= 24:
        raise PlanError(f"--lead-in must be between 0 and 24 months, got {lead_in_months}")


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

    By default the lead-in is the funnel's 90th-percentile lead -> win lag (at most 12
    months); the framed scenario may start later than asked (an initial pipeline).
    """
    period = request.period
    if lead_in_months is None:
        probe = waterfall(frame(scenario, period, 12), period, request.target_utilisation, yields)
        lead_in_months = min(12, math.ceil(probe.lag_p90_days / DAYS_PER_MONTH))
    framed = frame(scenario, period, lead_in_months)
    return framed, len(months_between(framed.start_date, period.start))


def _check_reachable(scenario: Scenario, framed: Scenario, request: _Request, yields: dict[str, SourceYield]) -> None:
    """Decides, before any simulation, whether AE capacity (leads only) or hiring lead time rules the goal out."""
    period, goal = request.period, request.goal
    if request.lever == "leads":
        ceiling = ae_revenue_ceiling(framed, period, yields)
        if goal > ceiling:
            earliest = frame(scenario, period, 24)
            raise _ae_bound(framed, period, goal, ceiling, ae_revenue_ceiling(earliest, period, yields))
    else:
        _check_hiring_in_time(framed, period)


@dataclass(frozen=True)
class _AnalyticStart:
    """Where the search starts: the analytic volume for the goal and the flows around it."""

    multiplier: float
    analytic: Waterfall  # at the analytic multiplier, today's headcount
    slope: float  # revenue per unit of lead multiplier, for the saturation test of the search
    flow: Callable[[float, int], Waterfall]  # the waterfall at a multiplier and extra AEs


def _analytic_start(framed: Scenario, request: _Request, yields: dict[str, SourceYield]) -> _AnalyticStart:
    """Decides the search's starting volume: the multiplier whose analytic revenue is the goal (1 for reps)."""
    period = request.period
    k_analytic = analytic_multiplier(framed, period, request.goal, yields) if request.lever != "reps" else 1.0

    def flow(k: float, extra_aes: int = 0) -> Waterfall:
        return waterfall(
            apply_changes(framed, planned_changes(framed, k, extra_aes)), period, request.target_utilisation, yields
        )

    analytic, without_leads = flow(k_analytic), flow(0.0)
    slope = (analytic.revenue - without_leads.revenue) / k_analytic if k_analytic > 0 else 0.0
    return _AnalyticStart(k_analytic, analytic, slope, flow)


def _evaluator(
    framed: Scenario,
    request: _Request,
    yields: dict[str, SourceYield],
    k_analytic: float,
    pool: Executor | None,
    budget: Budget | None,
    progress: Progress | None,
) -> Evaluator:
    """Decides whether the whole search fits the budget (judged at the analytic plan's size) and sets it up."""
    pool = pool or executors.SerialExecutor()
    budget = budget or Budget()
    allowed = request.max_evaluations * request.runs
    at_analytic = apply_changes(framed, planned_changes(framed, k_analytic, 0))
    budget.admit(estimate(at_analytic, allowed, workers_of(pool)), "this plan's search budget")
    r = request
    return Evaluator(framed, r.period, r.goal, r.confidence, r.runs, r.seed, pool, progress, yields, budget, allowed)


def _search(evaluate: Evaluator, request: _Request, start: _AnalyticStart) -> tuple[Candidate, pd.DataFrame | None]:
    """Decides the plan's levers with the search of the lever asked for; the trade-off table for ``both``."""
    if request.lever == "leads":
        return search_leads(evaluate, start.multiplier, 0, evaluate.framed.handoff.sdr.count, start.slope), None
    if request.lever == "reps":
        return search_reps(evaluate, start.analytic), None
    return search_both(evaluate, start.analytic, start.multiplier, start.slope, start.flow)


def _write_plan(
    scenario: Scenario,
    framed: Scenario,
    request: _Request,
    lead_in_months: int,
    chosen: Candidate,
    reps: mc.Replications,
    yields: dict[str, SourceYield],
) -> tuple[Plan, Waterfall]:
    """Decides what the plan says: the planned scenario and its flow, with the sheet, revenue and cost beside it."""
    period = request.period
    changes = {
        "name": f"{scenario.name}-plan",
        "start_date": framed.start_date.isoformat(),
        "horizon_days": framed.horizon_days,
        **planned_changes(framed, chosen.lead_multiplier, chosen.extra_aes, chosen.sdrs),
    }
    planned_scenario = apply_changes(scenario, changes)
    planned = waterfall(planned_scenario, period, request.target_utilisation, yields)
    result = Plan(
        goal=request.goal,
        confidence=request.confidence,
        period=period,
        lever=request.lever,
        lead_in_months=lead_in_months,
        scenario=planned_scenario,
        changes=changes,
        lead_multiplier=chosen.lead_multiplier,
        extra_aes=chosen.extra_aes,
        sdrs=chosen.sdrs,
        p_goal={
            "estimate": chosen.p_goal,
            "ci_low": chosen.ci_low,
            "ci_high": chosen.ci_high,
            "hits": chosen.hits,
            "n": chosen.runs,
        },
        sheet=_sheet(planned, reps, period),
        headcount=planned.months[
            ["month", "phase", "ae_headcount", "aes", "aes_needed", "sdrs", "sdrs_needed", "cost"]
        ],
        revenue=_revenue_summary(reps, period),
        cost=_cost_summary(planned, planned_scenario, reps, period),
        handoff_terms=_handoff_terms(framed),
    )
    return result, planned


def _revenue_summary(reps: mc.Replications, period: Period) -> dict[str, float]:
    """The mean and 10th, 50th and 90th percentiles of the plan's revenue in the period."""
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
                planned.in_period[f"leads_{n}"].sum() * src.cost_per_lead for n, src in planned_scenario.sources.items()
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
    tradeoff: pd.DataFrame | None,
    reps: mc.Replications,
) -> PlanDiagnostics:
    """How the plan was found: the analytic start, the plan's flow and every candidate simulated."""
    return PlanDiagnostics(
        analytic_multiplier=start.multiplier,
        analytic=start.analytic,
        planned=planned,
        candidates=pd.DataFrame([vars(c) for c in evaluate.seen.values()]),
        tradeoff=tradeoff,
        replications=reps,
        runs=evaluate.runs,
        seed=evaluate.seed,
        simulated=evaluate.used,
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
        f"{ceiling:,.0f} {cur} in {period}, however many leads marketing brings; the goal is {goal:,.0f} {cur}.",
        "add AEs (--lever reps or --lever both), or lower the goal.",
    )


def _check_hiring_in_time(framed: Scenario, period: Period) -> None:
    """A hire at the start of the lead-in must be productive at some point in the period."""
    ae = framed.sales.ae
    first = (period.start - framed.start_date).days / DAYS_PER_MONTH
    last = (period.end - framed.start_date).days / DAYS_PER_MONTH
    if all(productivity(ae, m) == 0 for m in np.arange(math.floor(first), last + 1)):
        months = next((i for i, x in enumerate(ae.ramp) if x > 0), len(ae.ramp))
        raise PlanInfeasible(
            "hiring lead time",
            f"a new AE sells nothing for {months} months (sales.ae.ramp), and AEs hired at the earliest date "
            f"the plan covers ({framed.start_date}) are not productive before {period} ends.",
            "start earlier (a longer --lead-in), lengthen the period, or use --lever leads.",
        )


# ---------------------------------------------------------------------------
# The joint-target sheet


def _sheet(planned: Waterfall, reps: mc.Replications, period: Period) -> pd.DataFrame:
    """One row per month and stage: ``month, phase, stage, source, team, target, analytic,
    simulated_mean, simulated_p10, simulated_p90``.

    Lead rows (one per source, and AE-prospected deals) carry the plan's quota as target;
    every later stage carries the simulated mean of the plan (queues and all), with the
    analytic expectation beside it. Revenue is by close month.
    """
    months = planned.months
    sim = reps.monthly.groupby("month")
    rows = []
    sources = [c[len("leads_") :] for c in months.columns if c.startswith("leads_")]
    for _, row in months.iterrows():
        month = row["month"]
        for name in sources:
            value = float(row[f"leads_{name}"])
            rows.append((month, row["phase"], "leads", name, "marketing", value, value, *([math.nan] * 3)))
        prospected = float(row["prospected"])
        rows.append((month, row["phase"], "leads", "prospecting", "sales", prospected, prospected, *([math.nan] * 3)))
        for stage in STAGES[1:]:
            values = sim.get_group(month)[stage].to_numpy(float) if month in sim.groups else np.zeros(1)
            p10, p90 = np.percentile(values, [10, 90])
            mean = float(values.mean())
            rows.append((month, row["phase"], stage, "", TEAMS[stage], mean, float(row[stage]), mean, p10, p90))
    columns = ["month", "phase", "stage", "source", "team", "target", "analytic"]
    return pd.DataFrame(rows, columns=[*columns, "simulated_mean", "simulated_p10", "simulated_p90"])
