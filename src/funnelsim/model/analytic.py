r"""Closed forms of the funnel: what the simulation must reproduce where the maths is exact.

The planner uses these for its first, analytic waterfall; the tests hold the engine
against them. Every function is pure and cheap; none simulates.

Expected arrivals
    Source ``s`` brings leads as a Poisson process whose rate is constant within each
    calendar month ``m``: ``r_s * k_s(m)``, with ``r_s`` the mean leads per day and
    ``k_s(m)`` the seasonality multiplier (times the month's entry of
    ``month_multipliers``). Over a window ``[t0, t1)`` (days)

    .. math:: \Lambda_s(t_0, t_1) = \sum_m r_s\, k_s(m)\, |[t_0, t_1) \cap \text{month } m|.

Erlang C (M/M/c)
    Poisson arrivals at rate ``lam`` into ``c`` servers with exponential work of mean
    ``1/mu``; offered load ``a = lam/mu``, utilisation ``rho = a/c < 1``. Erlang B by
    the stable recursion ``B(0) = 1``, ``B(k) = a B(k-1) / (k + a B(k-1))``; then the
    probability of waiting and the mean wait in queue are

    .. math:: C(c, a) = \frac{B(c, a)}{1 - \rho\,(1 - B(c, a))}, \qquad
              W_q = \frac{C(c, a)}{c\mu - \lambda}.

    Typical SDR desks run at ``rho`` 0.6-0.9; ``W_q`` explodes as ``rho -> 1``.

Little's law
    For any stage in steady state, mean number in stage = arrival rate x mean time
    in stage: ``L = lam * W``.

Yield of an MQL with unlimited capacity
    With no queue anywhere (no waits, so no one abandons) and no recycling, an MQL
    of fit ``F``, engagement ``E`` and buying need ``N`` becomes a win with probability

    .. math:: f \cdot E_D[P_c(D)] \cdot P(N) \cdot o \cdot
              E_{F,E}\big[\mathbf 1\{s(F, E) \ge \theta\}\, P_w(F)\big],

    ``f`` the follow-up rate, ``P_c(D)`` the speed-to-lead contact probability at
    response delay ``D``, ``s`` sales' score and ``theta`` its threshold (for a source
    with ``qualified_by = "source"`` the indicator is 1: sales takes it by its source),
    ``o`` the opportunity rate and ``P_w`` the win probability
    (:mod:`funnelsim.model.mechanisms`). Need is drawn from the persona alone, so it is
    independent of fit and engagement; the mean deal of a win weighs each persona's
    mean deal size by ``mix_p * intent_p``. The mean time from MQL to win is
    ``E[D] + E[SDR work] + E[cycle]``.

    When the SDR team has working hours (:mod:`funnelsim.model.workcal`), ``E_D[P_c(D)]``
    becomes the average over MQLs arriving evenly around the clock of the curve at the
    delay it reads (:func:`calendar_contact_rate`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from funnelsim.model.distributions import Dist, Empirical, Fixed
from funnelsim.model.mechanisms import calendar_months, contact_probability, score, win_probability
from funnelsim.model.scenario import Scenario, SpeedToLead, rate
from funnelsim.model.workcal import clock_of, contact_delay

__all__ = [
    "ErlangA",
    "MQLYield",
    "calendar_contact_rate",
    "contact_rate",
    "delay_pmf",
    "erlang_a",
    "erlang_b",
    "erlang_c",
    "expectation",
    "expected_contact_rate",
    "expected_leads",
    "littles_law",
    "mmc_mean_wait",
    "mql_yield",
    "renewal_function",
]

QUADRATURE_POINTS = 2048
"""Quantile points per continuous distribution in :func:`expectation` (error <= 1/n for a bounded monotone f)."""


# ---------------------------------------------------------------------------
# Arrivals


def expected_leads(
    scenario: Scenario, source: str | None = None, start_day: float = 0.0, end_day: float | None = None
) -> float:
    """Expected number of leads arriving in ``[start_day, end_day)``.

    .. math:: \\Lambda = \\sum_s \\sum_m r_s\\, k_s(m)\\, |[t_0, t_1) \\cap \\text{month } m|

    Parameters
    ----------
    scenario
        A validated scenario.
    source
        Name of one source; ``None`` sums over all sources (prospected deals excluded).
    start_day, end_day
        The window in days since ``start_date``; ``end_day`` defaults to the horizon
        (no lead arrives after it).

    Raises
    ------
    KeyError
        If ``source`` is not a source of the scenario.
    ValueError
        If the window is not ``0 <= start_day <= end_day``.
    """
    end = scenario.horizon_days if end_day is None else end_day
    if start_day < 0 or end < start_day:
        raise ValueError(f"need 0 <= start_day <= end_day, got {start_day}, {end}")
    if source is not None and source not in scenario.sources:
        raise KeyError(f"unknown source {source!r}; defined: {list(scenario.sources)}")
    names = [source] if source is not None else list(scenario.sources)
    total = 0.0
    for t0, t1, _ in calendar_months(scenario.start_date, scenario.horizon_days):
        overlap = max(0.0, min(t1, end) - max(t0, start_day))
        if overlap > 0:
            day = scenario.start_date + dt.timedelta(days=t0)
            for name in names:
                src = scenario.sources[name]
                total += src.leads_per_day_mean * src.volume_factor(day.year, day.month) * overlap
    return total


# ---------------------------------------------------------------------------
# Queues


def erlang_b(servers: int, offered_load: float) -> float:
    """Blocking probability of M/M/c/c (Erlang B), by the stable recursion.

    .. math:: B(0) = 1, \\qquad B(k) = \\frac{a B(k-1)}{k + a B(k-1)}

    Parameters
    ----------
    servers
        Number of servers ``c >= 1``.
    offered_load
        ``a = lam / mu`` in Erlangs, ``>= 0``.
    """
    if servers < 1 or offered_load < 0 or not math.isfinite(offered_load):
        raise ValueError(f"need servers >= 1 and a finite offered_load >= 0, got {servers}, {offered_load}")
    b = 1.0
    for k in range(1, servers + 1):
        b = offered_load * b / (k + offered_load * b)
    return b


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival has to wait in M/M/c (Erlang C).

    .. math:: C(c, a) = \\frac{B(c, a)}{1 - \\rho (1 - B(c, a))}, \\qquad \\rho = a / c < 1

    Raises
    ------
    ValueError
        If the queue is unstable (``a >= c``).
    """
    if offered_load >= servers:
        raise ValueError(f"unstable queue: offered load {offered_load:g} >= {servers} servers")
    b = erlang_b(servers, offered_load)
    rho = offered_load / servers
    return b / (1 - rho * (1 - b))


def mmc_mean_wait(arrival_rate: float, mean_service: float, servers: int) -> float:
    """Mean wait in queue ``W_q`` of M/M/c, in the time unit of the arguments.

    .. math:: W_q = \\frac{C(c, a)}{c\\mu - \\lambda}, \\qquad a = \\lambda / \\mu

    Parameters
    ----------
    arrival_rate
        ``lam``, arrivals per unit of time (e.g. MQLs per day).
    mean_service
        ``1/mu``, mean work per arrival (e.g. SDR days per MQL).
    servers
        ``c``, number of reps working one lead at a time each.
    """
    if arrival_rate < 0 or mean_service <= 0:
        raise ValueError(f"need arrival_rate >= 0 and mean_service > 0, got {arrival_rate}, {mean_service}")
    offered_load = arrival_rate * mean_service
    return erlang_c(servers, offered_load) * mean_service / (servers - offered_load)


@dataclass(frozen=True)
class ErlangA:
    """Steady-state quantities of M/M/c+M (Erlang-A), per arrival (PASTA), in the time unit of the rates."""

    p_wait: float
    """Share of arrivals that find every server busy (they queue; some abandon)."""
    p_abandon: float
    """Share of arrivals that abandon before service."""
    wait_all: float
    """Mean time in queue of all arrivals (0 for those served at once, the time to abandon for abandoners)."""
    wait_served: float
    """Mean time in queue of the arrivals that are served."""


def erlang_a(servers: int, arrival_rate: float, service_rate: float, patience_rate: float) -> ErlangA:
    """Erlang-A (M/M/c+M): Poisson arrivals ``lam``, exponential service ``mu`` on ``c`` servers, FCFS
    queue, each waiting arrival abandoning after an exponential patience of rate ``theta``.

    The number in system is a birth-death chain (births ``lam``, deaths ``min(n, c) mu + (n - c)+
    theta``), solved numerically up to a state whose probability is negligible. Then, by PASTA and
    Little's law on the queue: ``P(wait) = P(N >= c)``, ``E[W] = E[Q] / lam`` and ``P(ab) = theta E[Q]
    / lam``. An arrival with ``j`` waiting ahead moves up at rate ``c mu + j theta`` and abandons at
    ``theta``, which gives its chance of being served and its expected wait if served. With
    ``theta = 0`` it is Erlang C (then it needs ``lam < c mu``).
    """
    if servers < 1 or arrival_rate < 0 or service_rate <= 0 or patience_rate < 0:
        raise ValueError(
            f"need servers >= 1, arrival_rate >= 0, service_rate > 0, patience_rate >= 0; got "
            f"{servers}, {arrival_rate}, {service_rate}, {patience_rate}"
        )
    c, lam, mu, theta = servers, arrival_rate, service_rate, patience_rate
    if theta == 0 and lam >= c * mu:
        raise ValueError(f"unstable queue: offered load {lam / mu:g} >= {c} servers and no abandonment")
    # Unnormalised log-probabilities until the ratio to the largest falls below 1e-16.
    log_p, n, best = [0.0], 0, 0.0
    while True:
        death = min(n + 1, c) * mu + max(n + 1 - c, 0) * theta
        log_p.append(log_p[-1] + math.log(lam / death) if lam > 0 else -math.inf)
        n += 1
        best = max(best, log_p[-1])
        if n > c and log_p[-1] < best - 37 and log_p[-1] < log_p[-2]:
            break
    pi = np.exp(np.array(log_p) - best)
    pi /= pi.sum()
    states = np.arange(len(pi))
    queue = np.maximum(states - c, 0)
    mean_queue = float((pi * queue).sum())
    p_wait = float(pi[c:].sum())
    # A tagged arrival with j ahead in queue: served with chance S_j, wait-if-served weight M_j.
    ahead = len(pi) - c
    served_chance, weighted_wait = np.empty(ahead), np.empty(ahead)
    s_prev, m_prev = 1.0, 0.0
    for j in range(ahead):
        moves = c * mu + j * theta
        total = moves + theta
        s_prev, m_prev = moves / total * s_prev, moves / total * (s_prev / total + m_prev)
        served_chance[j], weighted_wait[j] = s_prev, m_prev
    p_served = float(pi[:c].sum() + (pi[c:] * served_chance).sum())
    return ErlangA(
        p_wait=p_wait,
        p_abandon=theta * mean_queue / lam if lam > 0 else 0.0,
        wait_all=mean_queue / lam if lam > 0 else 0.0,
        wait_served=float((pi[c:] * weighted_wait).sum()) / p_served,
    )


def littles_law(arrival_rate: float, mean_time_in_stage: float) -> float:
    """Mean number in a stage in steady state: ``L = lam * W``."""
    return arrival_rate * mean_time_in_stage


# ---------------------------------------------------------------------------
# Expectations over distribution specs


def _nodes(spec: Dist, points: int) -> tuple[np.ndarray, np.ndarray]:
    """Points and weights representing ``spec``: exact for fixed and empirical, quantile midpoints otherwise."""
    if isinstance(spec, Fixed) or spec.variance == 0:
        return np.array([spec.mean]), np.array([1.0])
    if isinstance(spec, Empirical):
        values = np.asarray(spec.values, dtype=float)
        return values, np.full(len(values), 1 / len(values))
    u = (np.arange(points) + 0.5) / points
    return np.asarray(spec.scipy().ppf(u), dtype=float), np.full(points, 1 / points)


def expectation(spec: Dist, f: Callable[[np.ndarray], np.ndarray], points: int = QUADRATURE_POINTS) -> float:
    """``E[f(X)]`` for ``X ~ spec``.

    .. math:: E[f(X)] \\approx \\frac1n \\sum_{i=0}^{n-1} f\\big(F^{-1}((i + 1/2)/n)\\big)

    Exact for ``fixed`` and ``empirical`` specs; for continuous ones the quantile
    midpoint rule, whose error is at most ``(sup f - inf f) / n`` for a monotone ``f``.
    """
    x, w = _nodes(spec, points)
    return float(np.sum(w * np.asarray(f(x), dtype=float)))


def delay_pmf(spec: Dist, days: int) -> np.ndarray:
    """A delay on a grid of whole days: ``p[d] = P(d - 1/2 <= X < d + 1/2)`` for ``d = 0 .. days-1``.

    Mass beyond the last day is dropped (the grid covers the planning window), so the
    sum is ``P(X < days - 1/2)``. Convolving two such grids adds the delays.
    """
    if days < 1:
        raise ValueError(f"need days >= 1, got {days}")
    if isinstance(spec, Fixed | Empirical) or spec.variance == 0:
        values, weights = _nodes(spec, 1)
        index = np.floor(values + 0.5).astype(int)
        keep = index < days
        return np.bincount(index[keep], weights=weights[keep], minlength=days).astype(float)
    cdf = np.asarray(spec.scipy().cdf(np.arange(days) + 0.5), dtype=float)
    return np.diff(cdf, prepend=0.0)


def renewal_function(pmf: np.ndarray) -> np.ndarray:
    """Expected number of completions by day ``t`` of back-to-back jobs with duration ``pmf``.

    The discrete renewal equation :math:`m(t) = F(t) + \\sum_{u=0}^{t} f(u)\\, m(t-u)`,
    solved day by day; it bounds what one AE slot can close in a window.
    """
    f = np.asarray(pmf, dtype=float)
    if f[0] >= 1:
        raise ValueError("jobs of zero duration complete without bound")
    cdf = np.cumsum(f)
    m = np.zeros(len(f))
    for t in range(len(f)):
        m[t] = (cdf[t] + float(f[1 : t + 1] @ m[t - 1 :: -1][:t])) / (1 - f[0]) if t else cdf[0] / (1 - f[0])
    return m


def expected_contact_rate(
    speed: SpeedToLead, response_delay_days: Dist, wait_days: float = 0.0, points: int = QUADRATURE_POINTS
) -> float:
    """Share of worked MQLs sales reaches, ``E[P_c(D + w)]`` for response delay ``D`` and queue wait ``w``."""
    return expectation(response_delay_days, lambda d: contact_probability(speed, d + wait_days), points)


CALENDAR_ARRIVALS_PER_DAY = 24
"""Arrival times per day of the run averaged over by :func:`calendar_contact_rate` (midpoints of hours)."""
CALENDAR_DELAY_POINTS = 256
"""Quantile points of the response delay in :func:`calendar_contact_rate`."""


def calendar_contact_rate(scenario: Scenario, points: int = CALENDAR_DELAY_POINTS) -> float | None:
    r"""Share of worked MQLs reached when the SDR team has working hours (None when it has none).

    .. math:: \frac1n \sum_{k} E_D\big[P_c(\delta(t_k, D))\big]

    over arrival times ``t_k`` spread evenly over the run (:data:`CALENDAR_ARRIVALS_PER_DAY`
    a day: MQLs arrive around the clock), ``δ`` the delay the curve reads when an SDR starts
    at once (:func:`funnelsim.model.workcal.contact_delay`: the working-time pick-up or the next
    opening, read as elapsed or working time). No queue: the desk is never short, as in
    :func:`mql_yield`.
    """
    clock = clock_of(scenario, "sdr")
    if clock is None:
        return None
    h = scenario.handoff
    d, w = _nodes(h.response_delay_days, points)
    n = max(1, math.ceil(scenario.horizon_days * CALENDAR_ARRIVALS_PER_DAY))
    arrivals = (np.arange(n) + 0.5) * (scenario.horizon_days / n)
    total = 0.0
    for chunk in np.array_split(arrivals, max(1, n // 1024)):
        delays = contact_delay(clock, h.response_clock, h.speed_to_lead_clock, chunk[:, None], d[None, :])
        total += float((contact_probability(h.speed_to_lead, delays) @ w).sum())
    return total / n


def contact_rate(scenario: Scenario, points: int = QUADRATURE_POINTS) -> float:
    """The expected contact rate of a worked MQL with no queue: :func:`calendar_contact_rate` when the
    SDR team has working hours, else :func:`expected_contact_rate` of the response delay."""
    h = scenario.handoff
    on_calendar = calendar_contact_rate(scenario, min(points, CALENDAR_DELAY_POINTS))
    return (
        expected_contact_rate(h.speed_to_lead, h.response_delay_days, 0.0, points)
        if on_calendar is None
        else on_calendar
    )


# ---------------------------------------------------------------------------
# The funnel below the MQL


@dataclass(frozen=True)
class MQLYield:
    """What one MQL of a source is expected to yield when reps are never the bottleneck.

    Each conversion is conditional on the stage before it; their product is the
    expected number of wins per MQL.

    Attributes
    ----------
    follow_up
        MQL -> worked by an SDR (the follow-up rate).
    contact
        Worked -> reached, ``E[P_c(D)]`` over the response delay.
    qualify
        Reached -> SQL: ``P(need) * P(score >= threshold)``; ``P(need)`` for a source
        qualified by source.
    opportunity
        SQL -> opportunity (the opportunity rate).
    win
        Opportunity -> won: ``E[1{pass} P_w(F)] / P(pass)``.
    deal_size
        Mean revenue of a won deal.
    mean_days_to_win
        Mean time from MQL to win: ``E[D] + E[SDR work] + E[cycle]``.
    """

    follow_up: float
    contact: float
    qualify: float
    opportunity: float
    win: float
    deal_size: float
    mean_days_to_win: float

    @property
    def sqls_per_mql(self) -> float:
        return self.follow_up * self.contact * self.qualify

    @property
    def wins_per_mql(self) -> float:
        return self.sqls_per_mql * self.opportunity * self.win

    @property
    def revenue_per_mql(self) -> float:
        return self.wins_per_mql * self.deal_size


def mql_yield(scenario: Scenario, source: str, points: int = 512) -> MQLYield:
    """Expected conversions of an MQL from ``source`` with unlimited SDR and AE capacity, no recycling.

    .. math:: \\frac{\\text{wins}}{\\text{MQL}} = f \\cdot E_D[P_c(D)] \\cdot P(N) \\cdot o \\cdot
              E_{F,E}[\\mathbf 1\\{s(F,E) \\ge \\theta\\} P_w(F)]

    (the indicator is 1 for a source with ``qualified_by = "source"``).

    The MQLs must be the source's arrivals as they come (``entry_stage = "mql"``, or an
    MQL bar every arriving lead already meets): leads selected by nurture have a fit
    and engagement that only simulation gives.

    Parameters
    ----------
    scenario
        A validated scenario; its SDR and AE teams and recycling are ignored (assumed
        unlimited and off).
    source
        Name of the source whose MQLs are meant.
    points
        Quantile points per continuous distribution (fit, engagement, response delay).

    Raises
    ------
    ValueError
        If the source's leads reach the MQL bar only through nurture.
    """
    if source not in scenario.sources:
        raise KeyError(f"unknown source {source!r}; defined: {list(scenario.sources)}")
    src, h, s = scenario.sources[source], scenario.handoff, scenario.sales
    mql_rule, sql_rule = scenario.qualification.mql, scenario.qualification.sql
    if src.entry_stage == "lead" and score(mql_rule, src.fit.lower, src.initial_engagement.lower) < mql_rule.threshold:
        raise ValueError(
            f"leads of source {source!r} become MQLs through nurture; their fit and engagement have no closed form"
        )
    mix = {p: share * scenario.personas[p].buying_intent for p, share in src.persona_mix.items()}
    need = sum(mix.values())

    fit, fit_w = _nodes(src.fit, points)
    eng, eng_w = _nodes(src.initial_engagement, points)
    passes = np.asarray(score(sql_rule, fit[:, None], eng[None, :])) >= sql_rule.threshold
    if src.qualified_by == "source":
        passes = np.ones_like(passes)  # sales takes a reached lead with a need whatever its score
    pass_given_fit = passes.astype(float) @ eng_w
    p_pass = float(fit_w @ pass_given_fit)
    pass_and_win = float(fit_w @ (pass_given_fit * win_probability(rate(s.win_rate), s.fit_effect, fit)))

    deal = (
        sum(weight * s.deal_size_by_persona.get(p, s.deal_size).mean for p, weight in mix.items()) / need
        if need > 0
        else math.nan
    )
    return MQLYield(
        follow_up=rate(h.follow_up_rate),
        contact=contact_rate(scenario, points),
        qualify=need * p_pass,
        opportunity=rate(s.opportunity_rate),
        win=pass_and_win / p_pass if p_pass > 0 else math.nan,
        deal_size=deal,
        mean_days_to_win=h.response_delay_days.mean + h.sdr.work_days.mean + s.cycle_days.mean,
    )
