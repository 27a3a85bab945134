r"""Reverse planner: from one revenue goal to joint targets for marketing and sales.

Finance, marketing and sales agree on one number, revenue booked in a period; the
planner works back up the funnel to what each team must deliver, month by month.

1. **Analytic waterfall** (:func:`waterfall`): the expected flow through the funnel on a
   grid of days, with each stage's delay as a distribution, so a lead created in month
   ``m`` closes months later. Per source, the lead -> MQL share, the time to MQL and the
   fit and engagement of the MQLs come from the nurture equations applied to a fixed
   sample of 40,000 leads (there is no closed form); the rest is exact
   (:mod:`funnelsim.model.analytic`). Queues, abandonment, recycling and randomness are
   ignored, except that AEs prospect only with their free slots (mean field: Little's
   law gives the open deals). The plan's volume is the one that makes the expected
   revenue in the period equal to the goal (:func:`analytic_multiplier`); a Little's law
   capacity check says how many SDRs and AEs that flow keeps busy at the target
   utilisation, month by month.
2. **Simulation to a confidence level** (:func:`plan`): candidates are simulated on
   the *same* replication seeds (common random numbers), and the smallest one on a
   fixed grid with ``P(revenue in period >= goal) >= confidence`` is found by
   bracketing and bisection. Lead volumes move on a grid of 2% steps; headcount in
   whole reps.
3. **Cost-optimal mix** (``lever="both"``): for each number of extra AEs, the smallest
   lead volume reaching the confidence; the plan is the cheapest of these.
4. **Infeasible goals** raise :class:`PlanInfeasible`, naming the binding constraint.

Time frame: the simulated scenario starts ``lead_in_months`` before the period (by
default long enough for 90% of leads to have closed), because revenue in January comes
from leads of the autumn before. Revenue is counted by close month within the period.
Extra AEs are hired at the start of the lead-in and ramp as the scenario's ``ramp`` says.
A scenario with an ``initial_pipeline`` describes the funnel as it is on its
``start_date``, so it is never moved earlier: its open deals take the lead-in's place,
and the waterfall counts their expected closes by day (:func:`pipeline_flow`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize, stats

from funnelsim.engine.nurture import MQL, nurture_batch
from funnelsim.model.analytic import delay_pmf, expectation, expected_contact_rate, renewal_function
from funnelsim.model.loading import parse_scenario
from funnelsim.model.mechanisms import productivity, score, slots, win_probability
from funnelsim.model.paths import set_paths
from funnelsim.model.scenario import DAYS_PER_MONTH, Scenario, rate
from funnelsim.randomness import resolve_seed
from funnelsim.studies import executors
from funnelsim.studies import replications as mc
from funnelsim.studies.stats import json_ready, paired_difference, probability_at_least
from funnelsim.studies.workload import UNLIMITED, Budget, check, estimate, workers_of

__all__ = [
    "LEVERS",
    "Candidate",
    "Period",
    "Plan",
    "PlanDiagnostics",
    "PlanError",
    "PlanInfeasible",
    "Waterfall",
    "ae_revenue_ceiling",
    "analytic_multiplier",
    "apply_changes",
    "frame",
    "plan",
    "planned_changes",
    "source_yields",
    "waterfall",
]

Lever = Literal["leads", "reps", "both"]
LEVERS: tuple[Lever, ...] = ("leads", "reps", "both")
STEP = 1.02
"""Lead volumes are searched on the grid ``STEP ** j`` times the scenario's volume."""
TARGET_UTILISATION = 0.8
# The search's default work budget, in candidates of --runs replications each. A leads-only
# plan of the bundled scenarios settles within ~10 (pilot included); --lever both within ~30.
MAX_EVALUATIONS = 60
MAX_LEAD_MULTIPLIER = 50.0
MAX_EXTRA_AES = 200
NURTURE_SAMPLE = 40_000
_ANALYTIC_SEED = 20_270_101  # fixed: the analytic waterfall is a pure function of the scenario
STAGES = mc.MONTHLY_COLUMNS  # leads, mqls, sqls, opportunities, wins, revenue
TEAMS = {"leads": "marketing", "mqls": "marketing", "sqls": "shared", "opportunities": "sales", "wins": "sales"}
TEAMS |= {"revenue": "sales", "prospected": "sales"}

Progress = Callable[[str], None]


class PlanError(ValueError):
    """A planning request that cannot be carried out as asked (bad goal, period, option)."""


class PlanInfeasible(Exception):
    """No plan within reach meets the goal; ``constraint`` names what binds."""

    def __init__(self, constraint: str, explanation: str, remedy: str) -> None:
        self.constraint, self.explanation, self.remedy = constraint, explanation, remedy
        super().__init__(f"{constraint}: {explanation} To make it feasible: {remedy}")


# ---------------------------------------------------------------------------
# The period and the time frame


@dataclass(frozen=True)
class Period:
    """Whole calendar months from ``start`` (a 1st) to ``end`` (a last day), inclusive."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.start.day != 1:
            raise PlanError(f"--period must start on the 1st of a month, got {self.start}")
        if (self.end + dt.timedelta(days=1)).day != 1:
            raise PlanError(f"--period must end on the last day of a month, got {self.end}")
        if self.end < self.start:
            raise PlanError(f"--period ends ({self.end}) before it starts ({self.start})")

    @classmethod
    def parse(cls, text: str) -> Period:
        """``"2027-01-01:2027-12-31"``."""
        first, sep, last = text.partition(":")
        try:
            if not sep:
                raise ValueError(text)
            start, end = dt.date.fromisoformat(first.strip()), dt.date.fromisoformat(last.strip())
        except ValueError:
            message = f"--period: expected START:END as ISO dates, e.g. 2027-01-01:2027-12-31, got {text!r}"
            raise PlanError(message) from None
        return cls(start, end)

    @classmethod
    def of(cls, scenario: Scenario) -> Period:
        """The scenario's own horizon, which must then be whole months."""
        try:
            return cls(scenario.start_date, scenario.end_date - dt.timedelta(days=1))
        except PlanError:
            raise PlanError(
                f"the scenario runs {scenario.start_date} to {scenario.end_date} (not whole calendar months); "
                "give the period to plan with --period START:END"
            ) from None

    @property
    def months(self) -> list[str]:
        return [f"{d.year:04d}-{d.month:02d}" for d in _month_starts(self.start, self.end)]

    def __str__(self) -> str:
        return f"{self.start}:{self.end}"


def _month_starts(start: dt.date, end: dt.date) -> Iterator[dt.date]:
    day = dt.date(start.year, start.month, 1)
    while day <= end:
        yield day
        day = _add_months(day, 1)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def frame(scenario: Scenario, period: Period, lead_in_months: int) -> Scenario:
    """The scenario re-timed to run from ``lead_in_months`` before the period to its end.

    It starts at the earlier of that date and the scenario's own start (hires keep their
    dates), and ends on the period's last day. A scenario with an initial pipeline starts
    on its own ``start_date``, the date of the pipeline.
    """
    start = min(scenario.start_date, _add_months(period.start, -lead_in_months))
    if scenario.initial_pipeline is not None:
        # The open deals are the pipeline on start_date: the run cannot start before it.
        if period.start < scenario.start_date:
            raise PlanError(
                f"--period starts {period.start}, before {scenario.start_date}, the date of the "
                "scenario's initial_pipeline; plan a period from that date on"
            )
        start = scenario.start_date
    horizon = (period.end - start).days + 1
    return apply_changes(scenario, {"start_date": start.isoformat(), "horizon_days": horizon})


def apply_changes(scenario: Scenario, changes: dict[str, Any]) -> Scenario:
    """``scenario`` with dotted-path values replaced (see :func:`planned_changes`), validated again."""
    return parse_scenario(set_paths(scenario.to_dict(), changes), f"{scenario.name} (planned)")


def planned_changes(
    scenario: Scenario, lead_multiplier: float = 1.0, extra_aes: int = 0, sdrs: int | None = None
) -> dict[str, Any]:
    """The dotted-path edits that turn a framed scenario into a candidate plan.

    Every source's volume is multiplied by ``lead_multiplier`` (seasonality and mix
    kept); ``extra_aes`` join as one hire at the scenario's start and ramp; ``sdrs``
    sets the SDR team size.
    """
    changes: dict[str, Any] = {}
    if lead_multiplier != 1.0:
        for name, source in scenario.sources.items():
            for key in ("leads_per_month", "leads_per_week", "leads_per_day"):
                value = getattr(source, key)
                if value is not None:
                    changes[f"sources.{name}.{key}"] = value * lead_multiplier
    if extra_aes:
        hires = [{"date": h.date.isoformat(), "count": h.count} for h in scenario.sales.ae.hires]
        changes["sales.ae.hires"] = [{"date": scenario.start_date.isoformat(), "count": extra_aes}, *hires]
    if sdrs is not None and sdrs != scenario.handoff.sdr.count:
        changes["handoff.sdr.count"] = sdrs
    return changes


# ---------------------------------------------------------------------------
# Analytic waterfall


@dataclass(frozen=True)
class SourceYield:
    """What one lead of a source is expected to become (unlimited capacity, no recycling).

    ``mql_delay`` is the distribution of days from lead to MQL on the day grid
    (given the lead becomes an MQL).
    """

    mql_rate: float
    mql_delay: np.ndarray
    sqls_per_mql: float
    opportunity: float
    win: float
    deal_size: float


@dataclass(frozen=True)
class Waterfall:
    """The analytic flow of one scenario.

    ``months`` has one row per month of the scenario: ``month``, ``phase`` ("lead-in" or
    "period"), ``leads_<source>`` per source, ``prospected`` (deals AEs source
    themselves), ``leads`` (all, prospected included, as the simulation counts them),
    ``mqls``, ``sqls``, ``opportunities``, ``wins``, ``revenue`` (expected counts by the
    month they happen), ``sdrs_needed``, ``aes_needed`` (Little's law at the target
    utilisation), ``sdrs``, ``aes`` (planned headcount, AEs in ramped-up equivalents),
    and ``cost`` (leads bought plus rep salaries in the month).
    """

    months: pd.DataFrame
    period: Period
    yields: dict[str, SourceYield]
    lag_p90_days: float

    @property
    def in_period(self) -> pd.DataFrame:
        return self.months[self.months["phase"] == "period"]

    @property
    def revenue(self) -> float:
        """Expected revenue closed in the period."""
        return float(self.in_period["revenue"].sum())


def source_yields(scenario: Scenario) -> dict[str, SourceYield]:
    """Per-source conversion rates and time to MQL; deterministic (fixed sample, fixed seed)."""
    h, s = scenario.handoff, scenario.sales
    mql_rule, sql_rule = scenario.qualification.mql, scenario.qualification.sql
    contact = expected_contact_rate(h.speed_to_lead, h.response_delay_days)
    intent = np.array([p.buying_intent for p in scenario.personas.values()])
    response = np.array([p.engagement_response for p in scenario.personas.values()])
    deal = np.array([s.deal_size_by_persona.get(p, s.deal_size).mean for p in scenario.personas])
    names = list(scenario.personas)
    days = math.ceil(scenario.nurture.max_nurture_days) + 2
    out = {}
    for index, (name, src) in enumerate(scenario.sources.items()):
        rng = np.random.default_rng([_ANALYTIC_SEED, index])
        n = NURTURE_SAMPLE
        mix = np.array([src.persona_mix.get(p, 0.0) for p in names])
        persona = rng.choice(len(names), size=n, p=mix / mix.sum())
        fit = src.fit.sample(rng, n)
        engagement = src.initial_engagement.sample(rng, n)
        if src.entry_stage == "mql":
            mql, when = np.ones(n, dtype=bool), np.zeros(n)
        else:
            outcome, when, engagement = nurture_batch(
                _touch_streams(index),
                scenario.nurture,
                mql_rule,
                fit,
                engagement,
                response[persona],
                np.zeros(n),
                math.inf,
            )
            mql = outcome == MQL
        if not mql.any():
            out[name] = SourceYield(0.0, np.eye(1, days)[0], 0.0, rate(s.opportunity_rate), 0.0, 0.0)
            continue
        qualify = intent[persona[mql]] * (score(sql_rule, fit[mql], engagement[mql]) >= sql_rule.threshold)
        won = qualify * win_probability(rate(s.win_rate), s.fit_effect, fit[mql])
        out[name] = SourceYield(
            mql_rate=float(mql.mean()),
            mql_delay=np.bincount(np.floor(when[mql] + 0.5).astype(int), minlength=days)[:days] / mql.sum(),
            sqls_per_mql=rate(h.follow_up_rate) * contact * float(qualify.mean()),
            opportunity=rate(s.opportunity_rate),
            win=float(won.sum() / qualify.sum()) if qualify.sum() > 0 else 0.0,
            deal_size=float((won * deal[persona[mql]]).sum() / won.sum()) if won.sum() > 0 else 0.0,
        )
    return out


def _touch_streams(source: int) -> Callable[[int], np.random.Generator]:
    return lambda touch: np.random.default_rng([_ANALYTIC_SEED, source, touch + 1])


def _conv(x: np.ndarray, pmf: np.ndarray) -> np.ndarray:
    return np.convolve(x, pmf)[: len(x)]


def _ae_schedule(scenario: Scenario, days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per day: AE headcount, ramped-up equivalents and open-deal slots (attrition ignored)."""
    ae = scenario.sales.ae
    t = np.arange(days) + 0.5
    heads = np.full(days, float(ae.count))
    fte = np.full(days, float(ae.count))
    slot = np.full(days, float(ae.count * slots(ae, 1.0)))
    for hire in ae.hires:
        day = (hire.date - scenario.start_date).days
        months = (t - day) / DAYS_PER_MONTH
        share = np.array([productivity(ae, m) for m in months]) * (t >= day)
        heads += hire.count * (t >= day)
        fte += hire.count * share
        slot += hire.count * np.array([slots(ae, x) for x in share])
    return heads, fte, slot


@dataclass(frozen=True)
class PipelineFlow:
    """The expected path of the deals open on day 0, per day of the grid."""

    deals: int
    wins: np.ndarray
    revenue: np.ndarray
    open: np.ndarray


def pipeline_flow(scenario: Scenario, days: int) -> PipelineFlow:
    r"""Expected closes, wins and revenue of the initial pipeline per day, and its open deals.

    Deal ``i``, open for ``a_i`` days on day 0, is still open at time ``t`` with
    probability ``S(a_i + t) / S(a_i)`` (``S`` the survival of ``cycle_days``), so it
    closes on day ``d`` of the grid (``d - 1/2 <= t < d + 1/2``, as :func:`delay_pmf`)
    with the difference of two such terms; a deal the cycle cannot reach
    (``S(a_i) = 0``) closes on day 0, as in the engine. It is won with
    ``p_i = win_probability(win_rate, fit_effect, fit_i)`` (averaged over
    ``prospecting.fit`` when its fit is not given) and worth its ``deal_size`` (or the
    mean deal size of its persona).

    .. math:: 	ext{wins}(d) = \sum_i p_i \, rac{S(a_i + d - 	frac12) - S(a_i + d + 	frac12)}{S(a_i)}
    """
    s = scenario.sales
    deals = scenario.open_deals
    if not deals:
        zero = np.zeros(days)
        return PipelineFlow(0, zero, zero, zero)
    age = np.array([d.age_days for d in deals], dtype=float)[:, None]
    edges = np.arange(days + 1) - 0.5
    edges[0] = 0.0
    start = s.cycle_days.survival(age)
    reached = start > 0
    still_open = np.where(reached, s.cycle_days.survival(age + edges) / np.where(reached, start, 1.0), 0.0)
    still_open[:, 0] = 1.0  # open at day 0, even a deal the cycle cannot reach (it closes at once)
    closes = -np.diff(still_open, axis=1)
    win_rate = rate(s.win_rate)
    drawn = expectation(scenario.prospecting.fit, lambda f: win_probability(win_rate, s.fit_effect, f))
    win = np.array([drawn if d.fit is None else float(win_probability(win_rate, s.fit_effect, d.fit)) for d in deals])
    amount = np.array(
        [s.deal_size_by_persona.get(d.persona, s.deal_size).mean if d.deal_size is None else d.deal_size for d in deals]
    )
    return PipelineFlow(len(deals), win @ closes, (win * amount) @ closes, still_open[:, 1:].sum(axis=0))


def _days_to_months(scenario: Scenario, days: int) -> np.ndarray:
    start = scenario.start_date
    dates = [start + dt.timedelta(days=d) for d in range(days)]
    return np.array([f"{d.year:04d}-{d.month:02d}" for d in dates])


def waterfall(
    scenario: Scenario,
    period: Period,
    target_utilisation: float = TARGET_UTILISATION,
    yields: dict[str, SourceYield] | None = None,
) -> Waterfall:
    """The expected monthly flow of ``scenario`` (framed to end with ``period``), analytically.

    Every stage is the one before it, convolved with that stage's delay (whole days)
    and multiplied by its conversion; see the module docstring for what is ignored.
    ``yields`` (from :func:`source_yields`) may be passed when the scenario differs from
    the one they were computed for only in volumes, dates or headcount.
    """
    days = round(scenario.horizon_days)
    h, s = scenario.handoff, scenario.sales
    yields = yields or source_yields(scenario)
    day_month = _days_to_months(scenario, days)
    calendar = np.array([int(m[5:]) - 1 for m in day_month])
    handoff = np.convolve(delay_pmf(h.response_delay_days, days), delay_pmf(h.sdr.work_days, days))[:days]
    cycle = delay_pmf(s.cycle_days, days)
    survival = 1 - np.cumsum(cycle)

    columns: dict[str, np.ndarray] = {}
    mqls = np.zeros(days)
    sqls = np.zeros(days)
    opps = np.zeros(days)
    won_from_leads = np.zeros(days)
    revenue = np.zeros(days)
    marketing_cost = np.zeros(days)
    for name, src in scenario.sources.items():
        y = yields[name]
        leads = src.leads_per_day_mean * np.array(src.seasonality)[calendar]
        columns[f"leads_{name}"] = leads
        marketing_cost += leads * src.cost_per_lead
        m = _conv(leads, y.mql_delay) * y.mql_rate
        q = _conv(m, handoff) * y.sqls_per_mql
        mqls += m
        sqls += q
        opps += q * y.opportunity
        w = _conv(q * y.opportunity, cycle) * y.win
        won_from_leads += w
        revenue += w * y.deal_size

    # Prospecting by AEs with free slots (mean field): rate * ramped AEs * free share of slots.
    heads, fte, slot = _ae_schedule(scenario, days)
    pipe = pipeline_flow(scenario, days)
    revenue += pipe.revenue
    # Deals held by AEs that prospecting did not bring: from leads and from the initial pipeline.
    open_from_leads = _conv(opps, survival) + pipe.open
    prospected = np.zeros(days)
    p = scenario.prospecting
    per_ae = p.opportunities_per_ae_per_month / DAYS_PER_MONTH
    if per_ae > 0:
        for t in range(days):
            busy = open_from_leads[t] + float(prospected[:t] @ survival[t - 1 :: -1][:t]) if t else open_from_leads[t]
            free = max(0.0, 1.0 - busy / slot[t]) if slot[t] > 0 else 0.0
            prospected[t] = per_ae * fte[t] * free
        pw = expectation(p.fit, lambda f: win_probability(rate(s.win_rate), s.fit_effect, f))
        deal = s.deal_size_by_persona.get(p.persona, s.deal_size).mean
        w = _conv(prospected, cycle) * pw
        revenue += w * deal
    else:
        w = np.zeros(days)
    wins = won_from_leads + w + pipe.wins
    all_opps = opps + prospected
    all_opps[0] += pipe.deals  # the open deals count as opportunities of day 0, as in the simulation
    open_deals = open_from_leads + _conv(prospected, survival)
    sdr_load = mqls * rate(h.follow_up_rate) * h.sdr.work_days.mean  # busy SDRs (Little's law)

    daily = pd.DataFrame(
        {
            "month": day_month,
            **columns,
            "prospected": prospected,
            "leads": sum(columns.values()) + prospected,
            "mqls": mqls,
            "sqls": sqls,
            "opportunities": all_opps,
            "wins": wins,
            "revenue": revenue,
            "sdrs_needed": sdr_load / target_utilisation,
            "aes_needed": open_deals / (slots(s.ae, 1.0) * target_utilisation),
            "sdrs": np.full(days, float(h.sdr.count)),
            "aes": fte,
            "ae_headcount": heads,
            "cost": marketing_cost + (heads * s.ae.cost_per_year + h.sdr.count * h.sdr.cost_per_year) / 365.25,
        }
    )
    flows = [c for c in daily.columns if c.startswith("leads") or c in (*STAGES, "prospected", "cost")]
    months = daily.groupby("month", sort=True).agg({**dict.fromkeys(flows, "sum"), **_LEVELS}).reset_index()
    months.insert(1, "phase", np.where(months["month"].isin(period.months), "period", "lead-in"))
    # Lead -> win lag of the whole funnel, for the default lead-in.
    mix = [
        (sum(columns[f"leads_{n}"]) * y.mql_rate * y.sqls_per_mql * y.opportunity * y.win, y) for n, y in yields.items()
    ]
    lag = sum(weight * np.convolve(np.convolve(y.mql_delay, handoff), cycle) for weight, y in mix)
    total = float(np.sum(lag)) if np.ndim(lag) else 0.0
    p90 = float(np.searchsorted(np.cumsum(lag) / total, 0.9)) if total > 0 else float(s.cycle_days.mean)
    return Waterfall(months, period, yields, p90)


_LEVELS = {"sdrs_needed": "mean", "aes_needed": "mean", "sdrs": "mean", "aes": "mean", "ae_headcount": "mean"}


def analytic_multiplier(
    scenario: Scenario, period: Period, goal: float, yields: dict[str, SourceYield] | None = None
) -> float:
    """The lead volume multiplier whose analytic expected revenue in ``period`` is ``goal``.

    Revenue from leads is linear in the multiplier; prospecting is not (more deals from
    leads leave AEs fewer free slots), so the equation is solved numerically (Brent).

    Raises
    ------
    PlanInfeasible
        If even ``MAX_LEAD_MULTIPLIER`` times the volume falls short.
    """

    yields = yields or source_yields(scenario)

    def gap(k: float) -> float:
        flow = waterfall(apply_changes(scenario, planned_changes(scenario, k)), period, yields=yields)
        return flow.revenue - goal

    if gap(0.0) >= 0:
        return 0.0
    if gap(MAX_LEAD_MULTIPLIER) < 0:
        raise PlanInfeasible(
            "lead volume",
            f"even {MAX_LEAD_MULTIPLIER:g}x today's leads would not close {goal:,.0f} {scenario.currency} in "
            f"{period} by the analytic waterfall.",
            "lower the goal, lengthen the period, or improve conversion (qualification, hand-off, win rate).",
        )
    return float(optimize.brentq(gap, 0.0, MAX_LEAD_MULTIPLIER, xtol=1e-10, rtol=1e-12))


def ae_revenue_ceiling(scenario: Scenario, period: Period, yields: dict[str, SourceYield]) -> float:
    """Upper bound on revenue in the period from AE capacity alone (leads unlimited).

    Every slot is kept busy back to back from the moment it exists (renewal function of
    the cycle), every deal has the best win rate times deal size of any source or of
    prospecting. Attrition is ignored, so this is optimistic: a goal above it is
    infeasible without more AEs.
    """
    days = round(scenario.horizon_days)
    s = scenario.sales
    _, _, slot = _ae_schedule(scenario, days)
    m = np.concatenate([[0.0], renewal_function(delay_pmf(s.cycle_days, days))])
    p0 = (period.start - scenario.start_date).days
    added = np.diff(slot, prepend=0.0)
    starts: list[int] = np.flatnonzero(added > 0).tolist()
    closes = sum(added[day] * (m[max(days - day, 0)] - m[max(p0 - day, 0)]) for day in starts)
    pw = win_probability(rate(s.win_rate), s.fit_effect, 1.0)  # a perfect fit wins most often
    best_deal = max([y.deal_size for y in yields.values()] + [spec.mean for spec in s.deal_size_by_persona.values()])
    best_deal = max(best_deal, s.deal_size.mean)
    # A deal open on day 0 closes sooner than a fresh cycle: at most one more close per
    # deal than the renewal count of its slot (and over-cap deals hold no slot at all).
    pipeline = sum(best_deal if d.deal_size is None else max(d.deal_size, best_deal) for d in scenario.open_deals)
    return float((closes * best_deal + pipeline) * pw)


# ---------------------------------------------------------------------------
# Simulation


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
class _Evaluator:
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
        return candidate.p_goal >= self.confidence


def period_revenue(monthly: pd.DataFrame, period: Period) -> np.ndarray:
    """Revenue closed within the period, per replication (ordered by replication)."""
    inside = monthly[monthly["month"].isin(period.months)]
    return inside.groupby("replication", sort=True)["revenue"].sum().to_numpy(float)


def _smallest(ok: Callable[[int], bool], start: int, low: int, high: int) -> int | None:
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
# The plan


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
    goal
        Revenue to close in the period, in the scenario's currency.
    confidence
        Required ``P(revenue in period >= goal)``.
    period
        Whole months; defaults to the scenario's horizon.
    lever
        ``"leads"``: marketing volume only; ``"reps"``: AEs (and SDRs sized to the flow)
        with today's volume; ``"both"``: the cheapest mix.
    runs
        Replications per candidate (the same seeds for every candidate).
    lead_in_months
        Months simulated before the period; default: enough for 90% of leads to close
        (at most 12).
    pool
        Executor for the replications (see :func:`funnelsim.studies.replications.executor`).
    budget
        The work allowed (:class:`funnelsim.studies.workload.Budget`): the whole search,
        ``max_evaluations`` candidates of ``runs`` replications at the analytic plan's
        size, is judged (and announced) before the first simulation; each candidate
        is judged again at its own size before it runs.
    max_evaluations
        The search's work budget, in candidates of ``runs`` replications: it stops
        with a :class:`PlanError` rather than go past ``max_evaluations * runs``
        replications in all (a pilot's runs count too).

    Raises
    ------
    PlanError
        A bad request (goal, confidence, period, lever, runs).
    PlanInfeasible
        No plan within reach; names the binding constraint.
    """
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
    period = period or Period.of(scenario)
    if (
        scenario.initial_pipeline is not None
        and lead_in_months is not None
        and _add_months(period.start, -lead_in_months) < scenario.start_date
    ):
        raise PlanError(
            f"--lead-in {lead_in_months}: the scenario starts from its initial pipeline on {scenario.start_date}, "
            "so nothing can be simulated before that date (the open deals take the lead-in's place); "
            "leave --lead-in out"
        )
    seed = resolve_seed(scenario, seed)
    yields = source_yields(scenario)  # volumes, dates and headcount do not change them
    if lead_in_months is None:
        probe = waterfall(frame(scenario, period, 12), period, target_utilisation, yields)
        lead_in_months = min(12, math.ceil(probe.lag_p90_days / DAYS_PER_MONTH))
    framed = frame(scenario, period, lead_in_months)
    lead_in_months = len(_list_months(framed.start_date, period.start))

    if lever == "leads":
        ceiling = ae_revenue_ceiling(framed, period, yields)
        if goal > ceiling:
            earliest = frame(scenario, period, 24)
            raise _ae_bound(framed, period, goal, ceiling, ae_revenue_ceiling(earliest, period, yields))
    else:
        _check_hiring_in_time(framed, period)
    k_analytic = analytic_multiplier(framed, period, goal, yields) if lever != "reps" else 1.0

    def flow(k: float, extra_aes: int = 0) -> Waterfall:
        return waterfall(
            apply_changes(framed, planned_changes(framed, k, extra_aes)), period, target_utilisation, yields
        )

    analytic, without_leads = flow(k_analytic), flow(0.0)
    # Revenue per unit of lead multiplier, for the saturation test of the search.
    slope = (analytic.revenue - without_leads.revenue) / k_analytic if k_analytic > 0 else 0.0

    pool = pool or executors.SerialExecutor()
    budget = budget or Budget()
    at_analytic = apply_changes(framed, planned_changes(framed, k_analytic, 0))
    budget.admit(estimate(at_analytic, max_evaluations * runs, workers_of(pool)), "this plan's search budget")
    evaluate = _Evaluator(
        framed, period, goal, confidence, runs, seed, pool, progress, yields, budget, max_evaluations * runs
    )
    tradeoff = None
    if lever == "leads":
        chosen = _search_leads(evaluate, k_analytic, 0, framed.handoff.sdr.count, slope)
    elif lever == "reps":
        chosen = _search_reps(evaluate, analytic)
    else:
        chosen, tradeoff = _search_both(evaluate, analytic, k_analytic, slope, flow)
    reps = evaluate.replications(chosen.lead_multiplier, chosen.extra_aes, chosen.sdrs)
    changes = {
        "name": f"{scenario.name}-plan",
        "start_date": framed.start_date.isoformat(),
        "horizon_days": framed.horizon_days,
        **planned_changes(framed, chosen.lead_multiplier, chosen.extra_aes, chosen.sdrs),
    }
    planned_scenario = apply_changes(scenario, changes)
    planned = waterfall(planned_scenario, period, target_utilisation, yields)
    revenue = period_revenue(reps.monthly, period)
    wins = reps.monthly[reps.monthly["month"].isin(period.months)].groupby("replication")["wins"].sum()
    period_cost = float(planned.in_period["cost"].sum())
    h = framed.handoff
    result = Plan(
        goal=goal,
        confidence=confidence,
        period=period,
        lever=lever,
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
        revenue={
            "mean": float(revenue.mean()),
            "p10": float(np.percentile(revenue, 10)),
            "p50": float(np.percentile(revenue, 50)),
            "p90": float(np.percentile(revenue, 90)),
        },
        cost={
            "period_total": period_cost,
            "marketing": float(
                sum(
                    planned.in_period[f"leads_{n}"].sum() * src.cost_per_lead
                    for n, src in planned_scenario.sources.items()
                )
            ),
            "cac": period_cost / float(wins.mean()) if float(wins.mean()) > 0 else math.nan,
        },
        handoff_terms={
            "follow_up_rate": rate(h.follow_up_rate),
            "response_time_hours_mean": h.response_delay_days.mean * 24,
            "sdr_patience_days_mean": None if h.sdr.patience_days is None else h.sdr.patience_days.mean,
            "mql_threshold": framed.qualification.mql.threshold,
            "sql_threshold": framed.qualification.sql.threshold,
        },
    )
    diagnostics = PlanDiagnostics(
        analytic_multiplier=k_analytic,
        analytic=analytic,
        planned=planned,
        candidates=pd.DataFrame([vars(c) for c in evaluate.seen.values()]),
        tradeoff=tradeoff,
        replications=reps,
        runs=runs,
        seed=seed,
        simulated=evaluate.used,
    )
    return result, diagnostics


def _list_months(start: dt.date, before: dt.date) -> list[dt.date]:
    return list(_month_starts(start, before - dt.timedelta(days=1))) if start < before else []


def _grid_index(k: float) -> int:
    return math.ceil(math.log(k) / math.log(STEP) - 1e-9) if k > 0 else -200


def _search_leads(evaluate: _Evaluator, k0: float, extra_aes: int, sdrs: int, slope: float) -> Candidate:
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
                raise _diagnose(evaluate, candidate, "leads")
        if not largest or j > largest[-1]:
            largest.append(j)
        return reached

    j = _smallest(ok, round(math.log(k) / math.log(STEP)), low=_grid_index(1e-3), high=top)
    if j is None:
        raise _diagnose(evaluate, evaluate(STEP**top, extra_aes, sdrs), "leads")
    return evaluate(STEP**j, extra_aes, sdrs)


def _sdrs_for(analytic: Waterfall, framed: Scenario) -> int:
    """SDRs that keep the busiest month of the flow at the target utilisation (never fewer than today)."""
    need = float(analytic.months["sdrs_needed"].max())
    return max(framed.handoff.sdr.count, math.ceil(need - 1e-9))


def _search_reps(evaluate: _Evaluator, analytic: Waterfall) -> Candidate:
    sdrs = _sdrs_for(analytic, evaluate.framed)

    def ok(a: int) -> bool:
        return evaluate.ok(evaluate(1.0, a, sdrs))

    a = _smallest(ok, 0, low=0, high=MAX_EXTRA_AES)
    if a is None:
        raise _diagnose(evaluate, evaluate(1.0, MAX_EXTRA_AES, sdrs), "reps")
    return evaluate(1.0, a, sdrs)


def _search_both(
    evaluate: _Evaluator, analytic: Waterfall, k0: float, slope: float, flow: Callable[[float, int], Waterfall]
) -> tuple[Candidate, pd.DataFrame]:
    """For a ladder of extra AEs, the smallest lead volume; the cheapest wins."""
    short = float((analytic.in_period["aes_needed"] - analytic.in_period["aes"]).max())
    base = max(1, math.ceil(short))
    ladder = sorted({0, base // 2, base, 2 * base, 3 * base})
    rows, found = [], []
    infeasible: PlanInfeasible | None = None
    for extra in ladder:
        sdrs = _sdrs_for(flow(k0, extra), evaluate.framed)
        try:
            c = _search_leads(evaluate, k0, extra, sdrs, slope)
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
# Infeasibility: which constraint binds


def _ae_bound(framed: Scenario, period: Period, goal: float, ceiling: float, earliest: float) -> PlanInfeasible:
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


def _diagnose(evaluate: _Evaluator, best: Candidate, lever: str) -> PlanInfeasible:
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
