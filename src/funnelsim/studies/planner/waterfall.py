r"""The analytic funnel worked backwards: the expected daily flow of a scenario, and the volume a goal needs.

Every stage is the one before it convolved with that stage's delay on a grid of whole
days (:func:`funnelsim.model.analytic.delay_pmf`) and multiplied by its conversion.
For source ``s`` with ``r_s(t)`` leads a day,

.. math:: \text{mql}_s = y_s\,(r_s * g_s), \qquad
          \text{sql} = \sum_s q_s\,(\text{mql}_s * h), \qquad
          \text{win} = w\,(o\,\text{sql} * c),

``*`` the convolution, ``g_s`` the time to MQL, ``h`` the response delay plus the SDR's
work, ``c`` the sales cycle, ``y_s``, ``q_s``, ``o``, ``w`` the lead -> MQL, MQL -> SQL,
SQL -> opportunity and opportunity -> win shares. ``y_s``, ``g_s`` and the fit and
engagement of the MQLs come from the nurture equations applied to a fixed sample of
40,000 leads (:func:`source_yields`; there is no closed form); the rest is exact
(:mod:`funnelsim.model.analytic`). Queues, abandonment, recycling and randomness are
ignored, except that AEs prospect only with their free slots (mean field; Little's law
gives the open deals). :func:`analytic_multiplier` finds the lead volume whose expected
revenue in the period is the goal; :func:`ae_revenue_ceiling` bounds what AE capacity
alone can close.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize

from funnelsim.engine.nurture import MQL, nurture_batch
from funnelsim.model.analytic import contact_rate, delay_pmf, expectation, renewal_function
from funnelsim.model.mechanisms import score, slots, win_probability
from funnelsim.model.scenario import DAYS_PER_MONTH, Scenario, Source, rate
from funnelsim.studies import replications as mc
from funnelsim.studies.planner.desk import Desks, SDRDesk, sdr_desk
from funnelsim.studies.planner.errors import PlanInfeasible
from funnelsim.studies.planner.levers import MAX_LEAD_MULTIPLIER, LeadShape, apply_changes, planned_changes
from funnelsim.studies.planner.period import Period
from funnelsim.studies.planner.staffing import TeamSchedule, team_schedule

__all__ = [
    "NURTURE_SAMPLE",
    "STAGES",
    "TARGET_UTILISATION",
    "Expectation",
    "PipelineFlow",
    "SourceYield",
    "Waterfall",
    "ae_revenue_ceiling",
    "analytic_multiplier",
    "desk_of",
    "expected",
    "pipeline_flow",
    "segment_yields",
    "source_yields",
    "waterfall",
]

TARGET_UTILISATION = 0.8
"""The share of their time reps are planned to be busy (Little's law sizing)."""
NURTURE_SAMPLE = 40_000
"""Leads per source run through the nurture equations for :func:`source_yields`."""
_ANALYTIC_SEED = 20_270_101  # fixed: the analytic waterfall is a pure function of the scenario
STAGES = mc.MONTHLY_COLUMNS  # leads, mqls, sqls, opportunities, wins, revenue
_LEVELS = dict.fromkeys(("sdrs_needed", "aes_needed", "sdrs", "sdr_headcount", "aes", "ae_headcount"), "mean")
_TEAM_FLOWS = tuple(f"{t}_{f}" for t in ("sdr", "ae") for f in ("hires", "backfills", "leavers"))  # summed per month


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

    @property
    def sqls_per_lead(self) -> float:
        """Expected SQLs of one lead."""
        return self.mql_rate * self.sqls_per_mql

    @property
    def wins_per_lead(self) -> float:
        """Expected wins of one lead."""
        return self.sqls_per_lead * self.opportunity * self.win

    @property
    def revenue_per_lead(self) -> float:
        """Expected revenue of one lead: what the budget's mix weighs a channel's leads by."""
        return self.wins_per_lead * self.deal_size


@dataclass(frozen=True)
class Waterfall:
    """The analytic flow of one scenario.

    ``months`` has one row per month of the scenario: ``month``, ``phase`` ("lead-in" or
    "period"), ``leads_<source>`` per source, ``spend_<source>`` per source on a spend curve
    (its leads times their average cost on the curve), ``prospected`` (deals AEs source
    themselves), ``leads`` (all, prospected included, as the simulation counts them),
    ``mqls``, ``sqls``, ``opportunities``, ``wins``, ``revenue`` (expected counts by the
    month they happen), ``sdrs_needed``, ``aes_needed`` (Little's law at the target
    utilisation), the expected planned headcount (:mod:`.staffing`: hires, ramp,
    attrition, backfills): ``sdrs`` (SDRs taking leads), ``sdr_headcount``, ``aes`` (AEs
    in ramped-up equivalents), ``ae_headcount``, the month's ``*_hires`` (planned),
    ``*_backfills`` and ``*_leavers`` (the hires it takes to hold the headcount), and ``cost``
    (leads bought plus the salaries of the reps on staff in the month).
    """

    months: pd.DataFrame
    period: Period
    yields: dict[str, SourceYield]
    lag_p90_days: float
    segments: dict[str, pd.DataFrame] = field(default_factory=dict)
    """A segmented scenario's months per segment (the columns of ``months``; they sum to it)."""

    @property
    def in_period(self) -> pd.DataFrame:
        """The rows of the period's months."""
        return self.months[self.months["phase"] == "period"]

    @property
    def revenue(self) -> float:
        """Expected revenue closed in the period (by the goal's segment alone, :attr:`Period.segment`)."""
        months = self.segments[self.period.segment] if self.period.segment and self.segments else self.months
        return float(months.loc[months["phase"] == "period", "revenue"].sum())


# ---------------------------------------------------------------------------
# Yields per source


def source_yields(scenario: Scenario) -> dict[str, SourceYield]:
    """Per-source conversion rates and time to MQL; deterministic (fixed sample, fixed seed).

    A segmented scenario's are each segment's (its own qualification and sales), keyed
    ``"<segment>/<source>"`` (:func:`segment_yields` takes one segment's back).
    """
    if scenario.segments:
        return {
            f"{name}/{source}": y
            for name in scenario.segment_names
            for source, y in source_yields(scenario.view_of(name)).items()
        }
    h, s = scenario.handoff, scenario.sales
    mql_rule, sql_rule = scenario.qualification.mql, scenario.qualification.sql
    contact = contact_rate(scenario)  # with SDR working hours: the nights and weekends count
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
        passes = score(sql_rule, fit[mql], engagement[mql]) >= sql_rule.threshold
        qualify = intent[persona[mql]] * (passes | (src.qualified_by == "source"))
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


def segment_yields(yields: dict[str, SourceYield], segment: str) -> dict[str, SourceYield]:
    """One segment's yields out of a segmented scenario's (:func:`source_yields`), keyed by source."""
    prefix = f"{segment}/"
    return {key[len(prefix) :]: y for key, y in yields.items() if key.startswith(prefix)}


def _touch_streams(source: int) -> Callable[[int], np.random.Generator]:
    """One random stream per nurture touch of a source's sample, fixed by the analytic seed."""
    return lambda touch: np.random.default_rng([_ANALYTIC_SEED, source, touch + 1])


# ---------------------------------------------------------------------------
# The day grid and what flows on it


def _conv(x: np.ndarray, pmf: np.ndarray) -> np.ndarray:
    """``x`` delayed by ``pmf`` on the day grid (mass past the grid's end dropped)."""
    return np.convolve(x, pmf)[: len(x)]


def _days_to_months(scenario: Scenario, days: int) -> np.ndarray:
    """The ``"YYYY-MM"`` of every day of the grid."""
    start = scenario.start_date
    dates = [start + dt.timedelta(days=d) for d in range(days)]
    return np.array([f"{d.year:04d}-{d.month:02d}" for d in dates])


@dataclass(frozen=True)
class _DayGrid:
    """The scenario's days, their months, and the stage delays on the grid."""

    days: int
    month: np.ndarray  # "YYYY-MM" per day
    handoff: np.ndarray  # MQL -> SQL: response delay plus SDR work
    cycle: np.ndarray  # opportunity -> close
    survival: np.ndarray  # P(a deal is still open d days after it opened)


def _day_grid(scenario: Scenario) -> _DayGrid:
    """Decides the grid (one cell per day of the horizon) and the delays every stage convolves with."""
    days = round(scenario.horizon_days)
    h, s = scenario.handoff, scenario.sales
    day_month = _days_to_months(scenario, days)
    handoff = np.convolve(delay_pmf(h.response_delay_days, days), delay_pmf(h.sdr.work_days, days))[:days]
    cycle = delay_pmf(s.cycle_days, days)
    return _DayGrid(days, day_month, handoff, cycle, 1 - np.cumsum(cycle))


@dataclass(frozen=True)
class _LeadFlow:
    """The expected daily flow of the sources' leads down the funnel (prospecting and pipeline apart)."""

    leads: dict[str, np.ndarray]  # "leads_<source>" -> leads per day
    mqls: np.ndarray
    sqls: np.ndarray
    opportunities: np.ndarray
    wins: np.ndarray
    revenue: np.ndarray
    marketing_cost: np.ndarray
    spend: dict[str, np.ndarray]  # "spend_<source>" -> spend per day, sources on a spend curve only


def _lead_flow(
    scenario: Scenario, grid: _DayGrid, yields: dict[str, SourceYield], kept: np.ndarray | None = None
) -> _LeadFlow:
    """Decides each source's leads per day (volume x seasonality) and carries them stage by stage.

    ``kept`` (per day) scales the MQLs' hand-off to sales: the share of contacts an SDR desk
    keeps when MQLs wait for it (:mod:`.desk`); none lost without it.
    """
    columns: dict[str, np.ndarray] = {}
    spend: dict[str, np.ndarray] = {}
    mqls = np.zeros(grid.days)
    sqls = np.zeros(grid.days)
    opps = np.zeros(grid.days)
    wins = np.zeros(grid.days)
    revenue = np.zeros(grid.days)
    marketing_cost = np.zeros(grid.days)
    for name, src in scenario.sources.items():
        y = yields[name]
        leads = src.leads_per_day_mean * _volume_factors(src, grid.month)
        columns[f"leads_{name}"] = leads
        marketing_cost += leads * src.average_cost_per_lead
        if src.curve is not None:
            spend[f"spend_{name}"] = leads * src.average_cost_per_lead
        m = _conv(leads, y.mql_delay) * y.mql_rate
        q = _conv(m if kept is None else m * kept, grid.handoff) * y.sqls_per_mql
        mqls += m
        sqls += q
        opps += q * y.opportunity
        w = _conv(q * y.opportunity, grid.cycle) * y.win
        wins += w
        revenue += w * y.deal_size
    return _LeadFlow(columns, mqls, sqls, opps, wins, revenue, marketing_cost, spend)


def _volume_factors(source: Source, day_month: np.ndarray) -> np.ndarray:
    """Each day's volume factor of ``source``: seasonality times the month's multiplier."""
    factor = {m: source.volume_factor(int(m[:4]), int(m[5:])) for m in np.unique(day_month)}
    return np.array([factor[m] for m in day_month])


def _prospected_win_rate(scenario: Scenario) -> float:
    """Win probability of a deal an AE sources, averaged over ``prospecting.fit``."""
    s = scenario.sales
    win_rate = rate(s.win_rate)
    return expectation(scenario.prospecting.fit, lambda f: win_probability(win_rate, s.fit_effect, f))


def _prospecting_per_ae_day(scenario: Scenario) -> float:
    """Deals one ramped-up AE with every slot free sources a day."""
    return scenario.prospecting.opportunities_per_ae_per_month / DAYS_PER_MONTH


def _prospecting(
    scenario: Scenario, grid: _DayGrid, open_from_leads: np.ndarray, fte: np.ndarray, slot: np.ndarray
) -> np.ndarray:
    """Decides the deals AEs source per day: rate x ramped AEs x free share of their slots (mean field).

    A slot is busy with a deal from leads or the pipeline (``open_from_leads``) or with an
    earlier prospected deal still open (Little's law, day by day).
    """
    prospected = np.zeros(grid.days)
    per_ae = _prospecting_per_ae_day(scenario)
    if per_ae > 0:
        survival = grid.survival
        for t in range(grid.days):
            busy = open_from_leads[t] + float(prospected[:t] @ survival[t - 1 :: -1][:t]) if t else open_from_leads[t]
            free = max(0.0, 1.0 - busy / slot[t]) if slot[t] > 0 else 0.0
            prospected[t] = per_ae * fte[t] * free
    return prospected


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

    .. math:: \text{wins}(d) = \sum_i p_i \, \frac{S(a_i + d - \tfrac12) - S(a_i + d + \tfrac12)}{S(a_i)}
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
    drawn = _prospected_win_rate(scenario)
    win = np.array([drawn if d.fit is None else float(win_probability(win_rate, s.fit_effect, d.fit)) for d in deals])
    amount = np.array(
        [s.deal_size_by_persona.get(d.persona, s.deal_size).mean if d.deal_size is None else d.deal_size for d in deals]
    )
    return PipelineFlow(len(deals), win @ closes, (win * amount) @ closes, still_open[:, 1:].sum(axis=0))


# ---------------------------------------------------------------------------
# The waterfall


def _capacity_columns(
    scenario: Scenario,
    mqls: np.ndarray,
    open_deals: np.ndarray,
    teams: dict[str, TeamSchedule],
    marketing_cost: np.ndarray,
    target_utilisation: float,
) -> dict[str, np.ndarray]:
    """Decides the reps the flow keeps busy (Little's law at the target utilisation), the planned ones, and cost
    (``marketing_cost``: the day's cost other than headcount, the AEs' commission included).

    Planned headcount is the expected one: hires, ramp, attrition and backfills
    (:mod:`.staffing`); ``*_leavers`` are the hires it takes to hold it.
    """
    h, s = scenario.handoff, scenario.sales
    ae, sdr = teams["ae"], teams["sdr"]
    sdr_load = mqls * rate(h.follow_up_rate) * h.sdr.work_days.mean  # busy SDRs (Little's law)
    return {
        "sdrs_needed": sdr_load / target_utilisation,
        "aes_needed": open_deals / (slots(s.ae, 1.0) * target_utilisation),
        "sdrs": sdr.slots,
        "sdr_headcount": sdr.heads,
        "sdr_hires": sdr.joins - sdr.backfills,
        "sdr_backfills": sdr.backfills,
        "sdr_leavers": sdr.leavers,
        "aes": ae.fte,
        "ae_headcount": ae.heads,
        "ae_hires": ae.joins - ae.backfills,
        "ae_backfills": ae.backfills,
        "ae_leavers": ae.leavers,
        "cost": marketing_cost + (ae.heads * s.ae.cost_per_year + sdr.heads * h.sdr.cost_per_year) / 365.25,
    }


def _commission(scenario: Scenario, revenue: np.ndarray) -> np.ndarray | float:
    """The AEs' expected commission per day: the base rate ``variable_share × ote_per_year / quota_per_year`` on
    the expected bookings (attainment of 100% on average: no accelerator or cap); 0 without an OTE."""
    ae = scenario.sales.ae
    if ae.ote_per_year is None or ae.quota_per_year is None:
        return 0.0
    return ae.variable_share * ae.ote_per_year / ae.quota_per_year * revenue


def _monthly(daily: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Decides the month rows: flows summed, headcounts averaged, each month marked lead-in or period."""
    flows = [
        c
        for c in daily.columns
        if c.startswith(("leads", "spend_")) or c in (*STAGES, *_TEAM_FLOWS, "prospected", "cost")
    ]
    months = daily.groupby("month", sort=True).agg({**dict.fromkeys(flows, "sum"), **_LEVELS}).reset_index()
    months.insert(1, "phase", np.where(months["month"].isin(period.months), "period", "lead-in"))
    return months


def _lag_p90_days(
    scenario: Scenario, grid: _DayGrid, leads: dict[str, np.ndarray], yields: dict[str, SourceYield]
) -> float:
    """Decides the default lead-in: the 90th percentile of the lead -> win lag, sources weighted by their wins."""
    mix = [
        (sum(leads[f"leads_{n}"]) * y.mql_rate * y.sqls_per_mql * y.opportunity * y.win, y) for n, y in yields.items()
    ]
    lag = sum(weight * np.convolve(np.convolve(y.mql_delay, grid.handoff), grid.cycle) for weight, y in mix)
    total = float(np.sum(lag)) if np.ndim(lag) else 0.0
    return float(np.searchsorted(np.cumsum(lag) / total, 0.9)) if total > 0 else float(scenario.sales.cycle_days.mean)


@dataclass(frozen=True)
class _DayFlow:
    """Everything the waterfall expects, per day of the grid, before it is summed into months."""

    grid: _DayGrid
    flow: _LeadFlow
    teams: dict[str, TeamSchedule]
    pipe: PipelineFlow
    prospected: np.ndarray
    prospected_wins: np.ndarray
    revenue: np.ndarray
    open_deals: np.ndarray


def _day_flow(scenario: Scenario, yields: dict[str, SourceYield], sdr_load: float | None) -> _DayFlow:
    """Decides the expected daily flow: leads down the funnel (through the SDR desk's queue with ``sdr_load``),
    the initial pipeline, and what the AEs prospect with their free slots."""
    grid = _day_grid(scenario)
    flow = _lead_flow(scenario, grid, yields)
    teams = {team: team_schedule(scenario, team, grid.days) for team in ("ae", "sdr")}
    if sdr_load is not None:
        kept = sdr_desk(scenario, flow.mqls, teams["sdr"].slots).kept(sdr_load)
        flow = _lead_flow(scenario, grid, yields, kept)
    pipe = pipeline_flow(scenario, grid.days)
    revenue = flow.revenue
    revenue += pipe.revenue
    # Deals held by AEs that prospecting did not bring: from leads and from the initial pipeline.
    open_from_leads = _conv(flow.opportunities, grid.survival) + pipe.open
    prospected = _prospecting(scenario, grid, open_from_leads, teams["ae"].fte, teams["ae"].slots)
    if _prospecting_per_ae_day(scenario) > 0:
        s, p = scenario.sales, scenario.prospecting
        w = _conv(prospected, grid.cycle) * _prospected_win_rate(scenario)
        revenue += w * s.deal_size_by_persona.get(p.persona, s.deal_size).mean
    else:
        w = np.zeros(grid.days)
    open_deals = open_from_leads + _conv(prospected, grid.survival)
    return _DayFlow(grid, flow, teams, pipe, prospected, w, revenue, open_deals)


def waterfall(
    scenario: Scenario,
    period: Period,
    target_utilisation: float = TARGET_UTILISATION,
    yields: dict[str, SourceYield] | None = None,
    sdr_load: float | None = None,
) -> Waterfall:
    """The expected monthly flow of ``scenario`` (framed to end with ``period``), analytically.

    Every stage is the one before it, convolved with that stage's delay (whole days)
    and multiplied by its conversion; see the module docstring for what is ignored.
    ``yields`` (from :func:`source_yields`) may be passed when the scenario differs from
    the one they were computed for only in volumes, dates or headcount. With
    ``sdr_load``, MQLs also queue for the SDRs (:mod:`.desk`, at that load factor) and
    lose the contacts that waiting costs them; without it the hand-off has no queue.
    """
    yields = yields or source_yields(scenario)
    if scenario.segments:
        return _segmented(scenario, period, target_utilisation, yields, sdr_load)
    day = _day_flow(scenario, yields, sdr_load)
    grid, flow, pipe = day.grid, day.flow, day.pipe
    opportunities = flow.opportunities + day.prospected
    opportunities[0] += pipe.deals  # the open deals count as opportunities of day 0, as in the simulation
    daily = pd.DataFrame(
        {
            "month": grid.month,
            **flow.leads,
            **flow.spend,
            "prospected": day.prospected,
            "leads": sum(flow.leads.values()) + day.prospected,
            "mqls": flow.mqls,
            "sqls": flow.sqls,
            "opportunities": opportunities,
            "wins": flow.wins + day.prospected_wins + pipe.wins,
            "revenue": day.revenue,
            **_capacity_columns(
                scenario,
                flow.mqls,
                day.open_deals,
                day.teams,
                flow.marketing_cost + _commission(scenario, day.revenue),  # every cost that is not headcount
                target_utilisation,
            ),
        }
    )
    return Waterfall(_monthly(daily, period), period, yields, _lag_p90_days(scenario, grid, flow.leads, yields))


def _segmented(
    scenario: Scenario,
    period: Period,
    target_utilisation: float,
    yields: dict[str, SourceYield],
    sdr_load: float | None,
) -> Waterfall:
    """The waterfall of a segmented scenario: its segments' (each a funnel of its own, with its own teams),
    summed month by month; each segment's months kept in :attr:`Waterfall.segments`."""
    parts = {
        name: waterfall(scenario.view_of(name), period, target_utilisation, segment_yields(yields, name), sdr_load)
        for name in scenario.segment_names
    }
    frames = [part.months.set_index(["month", "phase"]) for part in parts.values()]
    total = frames[0]
    for frame in frames[1:]:
        total = total.add(frame, fill_value=0.0)
    months = total.reset_index()
    lag = max(part.lag_p90_days for part in parts.values())
    return Waterfall(months, period, yields, lag, {name: part.months for name, part in parts.items()})


@dataclass(frozen=True)
class Expectation:
    """Two numbers of the waterfall: ``revenue`` expected in the period (:attr:`Waterfall.revenue`, summed by
    day rather than by month: the same up to rounding) and ``ae_utilisation``, the share of AE slots
    its open deals hold over the whole grid (as the simulation's ``ae_utilisation`` measures it)."""

    revenue: float
    ae_utilisation: float


def expected(
    scenario: Scenario, period: Period, yields: dict[str, SourceYield] | None = None, sdr_load: float | None = None
) -> Expectation:
    """:class:`Expectation` of ``scenario``, without building the waterfall's tables (``sdr_load`` as
    :func:`waterfall`); a segmented scenario's, its segments' summed (AE utilisation over all their slots)."""
    yields = yields or source_yields(scenario)
    revenue = slots = busy = 0.0
    counted = scenario.segment_names if period.segment is None else [period.segment]
    for name, (view, own) in zip(scenario.segment_names or [""], _segment_parts(scenario, yields), strict=True):
        day = _day_flow(view, own, sdr_load)
        if not scenario.segments or name in counted:  # the goal's segment's revenue (AEs: all of them)
            revenue += float(day.revenue[np.isin(day.grid.month, period.months)].sum())
        slots += float(day.teams["ae"].slots.sum())
        busy += float(day.open_deals.sum())
    return Expectation(revenue, busy / slots if slots > 0 else math.inf)


def desk_of(scenario: Scenario, yields: dict[str, SourceYield] | None = None) -> SDRDesk | Desks:
    """The SDR desk of ``scenario``'s analytic flow: its MQLs a day and its SDR slots (:mod:`.desk`); a segmented
    scenario's desks, one per segment (:class:`~.desk.Desks`)."""
    desks = []
    for view, own in _segment_parts(scenario, yields or source_yields(scenario)):
        grid = _day_grid(view)
        flow = _lead_flow(view, grid, own)
        desks.append(sdr_desk(view, flow.mqls, team_schedule(view, "sdr", grid.days).slots))
    return desks[0] if not scenario.segments else Desks(desks)


def _segment_parts(scenario: Scenario, yields: dict[str, SourceYield]) -> list[tuple[Scenario, dict[str, SourceYield]]]:
    """Each segment's view with its own yields (:func:`segment_yields`); the scenario itself without segments."""
    if not scenario.segments:
        return [(scenario, yields)]
    return [(scenario.view_of(name), segment_yields(yields, name)) for name in scenario.segment_names]


# ---------------------------------------------------------------------------
# Working back from the goal


def analytic_multiplier(
    scenario: Scenario,
    period: Period,
    goal: float,
    yields: dict[str, SourceYield] | None = None,
    shape: LeadShape | None = None,
) -> float:
    """The lead volume multiplier whose analytic expected revenue in ``period`` is ``goal`` (for an ARR goal,
    :attr:`Period.goal`, the bookings it needs: :func:`.recurring.bookings_for`).

    Revenue from leads is linear in the multiplier; prospecting is not (more deals from
    leads leave AEs fewer free slots), so the equation is solved numerically (Brent).
    ``shape`` says where the extra leads go (:class:`~.levers.LeadShape`; every source
    and month alike by default).

    Raises
    ------
    PlanInfeasible
        If even ``MAX_LEAD_MULTIPLIER`` times the volume falls short.
    """

    yields = yields or source_yields(scenario)
    if period.goal != "bookings":  # an ARR goal: the bookings it needs (imported here: it imports this module)
        from funnelsim.studies.planner.recurring import bookings_for

        goal = bookings_for(scenario, period, goal)

    def gap(k: float) -> float:
        flow = waterfall(apply_changes(scenario, planned_changes(scenario, k, shape=shape)), period, yields=yields)
        return flow.revenue - goal

    if gap(0.0) >= 0:
        return 0.0
    if gap(MAX_LEAD_MULTIPLIER) < 0:
        what = "budget (its channels near their ceilings)" if shape is not None and shape.values else "leads"
        raise PlanInfeasible(
            "lead volume",
            f"even {MAX_LEAD_MULTIPLIER:g}x today's {what} would not close {goal:,.0f} {scenario.currency} in "
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
    if scenario.segments:  # each segment's AEs close only its own deals (the goal's segment's, for its goal)
        return sum(
            ae_revenue_ceiling(scenario.view_of(name), period, segment_yields(yields, name))
            for name in scenario.segment_names
            if period.segment in (None, name)
        )
    days = round(scenario.horizon_days)
    s = scenario.sales
    slot = team_schedule(scenario, "ae", days, attrition=False).slots
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
