r"""Hand-off capacity sized from the observed flow, and volumes fitted so the scenario reproduces it.

A CRM export tells how many opportunities the company opened, not how many SDRs qualified
the leads behind them. Scaling a base scenario's lead volumes to the observed opportunities
while keeping its SDRs makes them the silent bottleneck (ten times the leads on three SDRs:
every SDR always busy, MQLs going cold in the queue, a tenth of the opportunities). So the
capacity is sized from the flow it must carry, and the flow is then checked by simulation.

SDRs (an M/G/c queue, one MQL per SDR at a time)
    Offered load :math:`a = \lambda_{\text{MQL}} \cdot E[\text{work}]` SDR-days per day, with
    :math:`\lambda_{\text{MQL}}` the MQLs sales follows up per day. The team is the smallest
    :math:`c` with :math:`a / c \le \rho^*`, where :math:`\rho^*` is the base's own SDR
    utilisation (measured after its first months) kept within :data:`SDR_UTILISATION_RANGE`:
    speed to lead makes the hand-off's conversion depend on *hours* of waiting, so the
    calibrated team works at no higher a load than the base's (at the same load more SDRs
    wait less, so the base's conversions are kept or bettered, and the volumes fit absorbs
    the difference). The work time per MQL stays the base's (an export does not record it):
    the count is *sized*, not observed.

AEs (each holds ``max_open_opportunities`` deals for a cycle each)
    Little's law: deals open at once :math:`L = \lambda_{\text{opp}} \cdot E[\text{cycle}]`.
    The slots (AEs times their cap, less what attrition, ramp and backfill leave empty) must
    be at least :math:`L / \rho^*`. The AE count is the observed owners when the export has
    them (then the cap is raised if needed), the base's otherwise (then the count is raised).
    Capacity only grows here: an observed team or cap is a lower bound.

Fit by simulation (:func:`fit_flow`)
    The funnel is not linear (queues, speed to lead, AEs that prospect only when free), so
    the scenario is simulated over the history window (cold start with a lead-in, see
    :mod:`.selfcheck`) and, round by round, the marketing volumes are multiplied by
    ``target / simulated`` marketing opportunities, the prospecting rate by the same ratio
    for AE-sourced opportunities, and the SDRs and AE slots re-sized from the simulated
    offered load, until the simulated opportunities per day are within
    :data:`FIT_TOLERANCE` (or twice their Monte Carlo error) of the observed. With a leads
    export the volumes are data and are not scaled; only capacity and prospecting are fitted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from funnelsim.engine import simulate
from funnelsim.model.loading import parse_scenario
from funnelsim.model.scenario import Scenario
from funnelsim.run.metrics import time_weighted_mean
from funnelsim.studies.workload import estimate

__all__ = [
    "FIT_TOLERANCE",
    "UTILISATION_TARGET",
    "FlowFit",
    "Knobs",
    "Target",
    "ae_slots_needed",
    "base_flow",
    "fit_flow",
    "marketing_leads_per_day",
    "measure",
    "observed_prospecting_share",
    "sdr_count_for",
    "window_scenario",
]

UTILISATION_TARGET = 0.75
"""Planned utilisation of AE slots (call-centre planning works at 75-85%), and the most for SDRs."""
SDR_UTILISATION_RANGE = (0.5, UTILISATION_TARGET)
"""The SDR utilisation aimed at is the base's, kept within this range (see the module docstring)."""
RESIZE_BAND = 0.1  # keep a team whose utilisation is within +-0.1 of the target (no jitter between rounds)
FIT_TOLERANCE = 0.03
MAX_FIT_ROUNDS = 8
FIT_OPPORTUNITIES = 1_000  # simulated opportunities per round over all runs: ~3% Monte Carlo error
MAX_FIT_RUNS = 8
STEP_LIMIT = 4.0  # a round changes a volume or rate at most 4x (a first guess far off converges in steps)
SHARE_TOLERANCE = 0.05
PROSPECTING = "prospecting"


def sdr_count_for(load_sdr_days_per_day: float, target: float = UTILISATION_TARGET) -> int:
    """The smallest SDR team whose utilisation ``load / c`` is at most ``target`` (at least one SDR)."""
    return max(1, math.ceil(load_sdr_days_per_day / target - 1e-9))


def ae_slots_needed(opportunities_per_day: float, cycle_mean_days: float, target: float = UTILISATION_TARGET) -> float:
    """AE slots for ``opportunities_per_day`` deals held ``cycle_mean_days`` each at ``target`` utilisation."""
    return opportunities_per_day * cycle_mean_days / target


@dataclass(frozen=True)
class Knobs:
    """What the fit sets: a factor on the marketing volumes, the prospecting rate, SDRs and AE slots."""

    volume_factor: float
    prospecting_rate: float
    sdr_count: int
    ae_count: int
    ae_max_open: int


@dataclass(frozen=True)
class Target:
    """The observed flow the simulation must reproduce, and where in the window to measure it.

    ``start_day`` and ``end_day`` are days of the window scenario (the first created day of the
    export and the end of the as-of day); ``owners_observed`` says whether the AE count is data
    (then only the cap may grow); ``scale_marketing`` is False with a leads export.
    """

    opportunities_per_day: float
    prospecting_share: float
    share_how: str
    sdr_utilisation: float
    start_day: float
    end_day: float
    cycle_mean_days: float
    owners_observed: bool
    scale_marketing: bool


@dataclass
class FlowFit:
    """The fitted knobs, one row per simulated round (``rounds``), and whether the fit converged."""

    knobs: Knobs
    rounds: pd.DataFrame
    converged: bool
    simulated: bool
    note: str
    runs: int = 0
    seed: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def window_scenario(raw: dict[str, Any], knobs: Knobs, volumes: dict[str, float]) -> Scenario:
    """The history-window scenario ``raw`` (plain TOML data) with ``knobs`` applied.

    ``volumes`` are the marketing sources' leads per month before the factor.
    """
    data = {**raw, "sources": {name: dict(src) for name, src in raw["sources"].items()}}
    for name, per_month in volumes.items():
        for key in ("leads_per_week", "leads_per_day"):
            data["sources"][name].pop(key, None)
        data["sources"][name]["leads_per_month"] = per_month * knobs.volume_factor
    data["prospecting"] = {**raw.get("prospecting", {}), "opportunities_per_ae_per_month": knobs.prospecting_rate}
    handoff = dict(raw["handoff"])
    handoff["sdr"] = {**handoff["sdr"], "count": knobs.sdr_count}
    sales = dict(raw["sales"])
    sales["ae"] = {**sales["ae"], "count": knobs.ae_count, "max_open_opportunities": knobs.ae_max_open}
    data["handoff"], data["sales"] = handoff, sales
    return parse_scenario(data, "calibrated scenario (history window)")


def marketing_leads_per_day(scenario: Scenario) -> float:
    """Leads per day over all sources, seasonality averaged over the year."""
    return sum(src.leads_per_day_mean * float(np.mean(src.seasonality)) for src in scenario.sources.values())


def base_flow(scenario: Scenario, events: pd.DataFrame, sources: pd.Series, levels: pd.DataFrame) -> dict[str, float]:
    """What one run of the base says about flows a CRM does not record.

    ``requests_per_lead`` is MQLs sent to the SDRs per marketing lead, ``prospecting_share``
    the AE-sourced share of opportunities and ``sdr_utilisation`` the SDRs' (within
    :data:`SDR_UTILISATION_RANGE`), all measured after the base's longest nurture (or over the
    second half of the run when it is shorter): its first months start empty.
    """
    horizon = float(scenario.horizon_days)
    t0 = min(float(scenario.nurture.max_nurture_days), horizon / 2)
    m = measure(events, sources, None, t0, horizon)
    leads = marketing_leads_per_day(scenario)
    busy = time_weighted_mean(levels, "sdr", "busy", t0, horizon) / time_weighted_mean(
        levels, "sdr", "capacity", t0, horizon
    )
    return {
        "requests_per_lead": m["sdr_requests"] / leads if leads > 0 else 0.0,
        "prospecting_share": m["prospected"] / m["opportunities"] if m["opportunities"] > 0 else 0.0,
        "sdr_utilisation": float(np.clip(busy, *SDR_UTILISATION_RANGE)) if math.isfinite(busy) else UTILISATION_TARGET,
    }


PROSPECTING_LABELS = frozenset({"prospecting", "aesourced", "selfsourced", "salessourced", "salesgenerated"})
"""Lead sources (lower case, no spaces, hyphens or underscores) that mean an AE found the deal."""


def observed_prospecting_share(source: pd.Series) -> float | None:
    """The share of deals whose source says an AE found them, or None when no source says so."""
    labels = source.fillna("").astype(str).str.lower().str.replace(r"[\s_\-]", "", regex=True)
    hits = labels.isin(PROSPECTING_LABELS)
    return float(hits.mean()) if hits.any() else None


def measure(
    events: pd.DataFrame, sources: pd.Series, levels: pd.DataFrame | None, t0: float, t1: float
) -> dict[str, float]:
    """Per day over ``[t0, t1)`` of one run: opportunities (all, AE-sourced), MQLs sent to SDRs, slots held.

    ``sources`` is each lead's source (the run's ``attributes["source"]``); without ``levels`` the
    teams' slots are NaN.
    """
    ev = events[(events["time"] >= t0) & (events["time"] < t1)]
    kind = ev["event"].astype(str).to_numpy()
    leads = ev["lead"].to_numpy()
    opened = leads[kind == "opportunity"]
    names = list(sources.cat.categories)
    code = names.index(PROSPECTING) if PROSPECTING in names else -1
    prospected = int((sources.cat.codes.to_numpy()[opened] == code).sum()) if len(opened) else 0
    days = max(t1 - t0, 1e-9)
    out = {
        "opportunities": len(opened) / days,
        "prospected": float(prospected) / days,
        "sdr_requests": float((kind == "mql").sum() - (kind == "not_followed_up").sum()) / days,
    }
    for team in ("ae", "sdr"):
        for level in ("capacity", "busy"):
            out[f"{team}_{level}"] = math.nan if levels is None else time_weighted_mean(levels, team, level, t0, t1)
    return out


def _simulate_round(scenario: Scenario, target: Target, runs: int, seed: int) -> dict[str, float]:
    """The mean of :func:`measure` over ``runs`` replications (and the opportunities counted in all)."""
    rows = []
    for i in range(runs):
        result = simulate(scenario, seed=seed, replication=i)
        rows.append(
            measure(result.events, result.attributes["source"], result.levels, target.start_day, target.end_day)
        )
    mean = pd.DataFrame(rows).mean().to_dict()
    mean["counted"] = mean["opportunities"] * (target.end_day - target.start_day) * runs
    return mean


def _resize(knobs: Knobs, new: Knobs, m: dict[str, float], target: Target, work_days: float) -> Knobs:
    """SDRs for the offered load the ``new`` volumes will bring and AE slots raised to Little's law's need,
    neither ever lowered between rounds: one SDR fewer makes MQLs wait, and under the steep speed-to-lead
    curve the lost contacts swing the opportunities so far that the rounds would alternate between two
    team sizes."""
    load = m["sdr_requests"] * work_days * new.volume_factor / knobs.volume_factor
    sdr = knobs.sdr_count
    if load / sdr > target.sdr_utilisation:
        sdr = max(sdr, sdr_count_for(load, target.sdr_utilisation))
    need = ae_slots_needed(target.opportunities_per_day, target.cycle_mean_days)
    count, cap = knobs.ae_count, knobs.ae_max_open
    have = m["ae_capacity"]
    if have < (1 - RESIZE_BAND) * need:
        grow = need / max(have, 1e-9)
        if target.owners_observed:
            cap = math.ceil(cap * grow)
        else:
            count = math.ceil(max(count, 1) * grow)
    return replace(new, sdr_count=sdr, ae_count=count, ae_max_open=cap)


def _rescale(knobs: Knobs, m: dict[str, float], target: Target) -> Knobs:
    """The volume factor and prospecting rate moved by ``target / simulated`` (at most :data:`STEP_LIMIT`x)."""
    want_p = target.opportunities_per_day * target.prospecting_share
    rate = knobs.prospecting_rate
    if rate > 0 and m["prospected"] > 0:
        rate *= float(np.clip(want_p / m["prospected"], 1 / STEP_LIMIT, STEP_LIMIT))
    factor = knobs.volume_factor
    marketing = m["opportunities"] - m["prospected"]
    if target.scale_marketing:
        want_m = target.opportunities_per_day - (want_p if knobs.prospecting_rate > 0 else 0.0)
        step = want_m / marketing if marketing > 0 else STEP_LIMIT
        factor *= float(np.clip(step, 1 / STEP_LIMIT, STEP_LIMIT))
    return replace(knobs, volume_factor=factor, prospecting_rate=rate)


def _converged(knobs: Knobs, new: Knobs, m: dict[str, float], target: Target) -> bool:
    tolerance = max(FIT_TOLERANCE, 2 / math.sqrt(max(m["counted"], 1.0)))
    total_ok = abs(m["opportunities"] / target.opportunities_per_day - 1) <= tolerance
    share = m["prospected"] / m["opportunities"] if m["opportunities"] > 0 else 0.0
    share_ok = knobs.prospecting_rate == 0 or abs(share - target.prospecting_share) <= SHARE_TOLERANCE
    if not target.scale_marketing:
        total_ok = True  # volumes are data: only capacity and prospecting are fitted
    sized = (new.sdr_count, new.ae_count, new.ae_max_open) == (knobs.sdr_count, knobs.ae_count, knobs.ae_max_open)
    return total_ok and share_ok and sized


def fit_flow(
    raw: dict[str, Any],
    volumes: dict[str, float],
    start: Knobs,
    target: Target,
    *,
    seed: int,
    budget_seconds: float,
    progress: Callable[[str], None] | None = None,
) -> FlowFit:
    """Fit the knobs by simulating the history window round by round (see the module docstring).

    When ``budget_seconds`` cannot pay for :data:`MAX_FIT_ROUNDS` rounds (estimated by
    :func:`funnelsim.studies.workload.estimate`), nothing is simulated: the analytic ``start``
    is returned with ``simulated`` False and a note saying why.
    """
    scenario = window_scenario(raw, start, volumes)
    per_run = target.opportunities_per_day * (target.end_day - target.start_day)
    runs = int(np.clip(math.ceil(FIT_OPPORTUNITIES / max(per_run, 1.0)), 2, MAX_FIT_RUNS))
    cost = estimate(scenario, runs * MAX_FIT_ROUNDS).seconds
    if cost > budget_seconds:
        note = (
            f"not fitted by simulation: {MAX_FIT_ROUNDS} rounds of {runs} runs are estimated at {cost:,.0f} s, "
            f"above the {budget_seconds:,.0f} s budget; capacity sized analytically only"
        )
        return FlowFit(start, pd.DataFrame(), False, False, note, runs, seed)
    work_days = scenario.handoff.sdr.work_days.mean
    knobs, rounds, done = start, [], False
    for number in range(1, MAX_FIT_ROUNDS + 1):
        if progress is not None:
            progress(
                f"fitting volumes and capacity by simulation (round {number} of at most {MAX_FIT_ROUNDS}, "
                f"{runs} runs; all rounds about {cost:,.0f} s at most)"
            )
        m = _simulate_round(window_scenario(raw, knobs, volumes), target, runs, seed)
        rounds.append(_round_row(number, knobs, m, target, work_days))
        new = _resize(knobs, _rescale(knobs, m, target), m, target, work_days)
        if _converged(knobs, new, m, target):
            done = True
            break
        knobs = new
    table = pd.DataFrame(rounds)
    last = rounds[-1]
    note = (
        f"converged in {len(rounds)} round(s): simulated {last['opportunities_per_month']:.1f} opportunities/month "
        f"vs {last['target_per_month']:.1f} observed"
        if done
        else f"did not converge in {MAX_FIT_ROUNDS} rounds (last simulated {last['opportunities_per_month']:.1f} vs "
        f"{last['target_per_month']:.1f} observed opportunities/month); the last adjustment is kept unverified"
    )
    return FlowFit(knobs, table, done, True, note, runs, seed)


def _round_row(number: int, knobs: Knobs, m: dict[str, float], target: Target, work_days: float) -> dict[str, Any]:
    """One row of ``flow_fit.csv``: the knobs simulated and what the simulation gave (per month)."""
    per_month = 365.25 / 12
    return {
        "round": number,
        "volume_factor": knobs.volume_factor,
        "prospecting_per_ae_per_month": knobs.prospecting_rate,
        "sdr_count": knobs.sdr_count,
        "ae_count": knobs.ae_count,
        "ae_max_open": knobs.ae_max_open,
        "opportunities_per_month": m["opportunities"] * per_month,
        "target_per_month": target.opportunities_per_day * per_month,
        "prospecting_share": m["prospected"] / m["opportunities"] if m["opportunities"] > 0 else math.nan,
        "target_prospecting_share": target.prospecting_share,
        "sdr_offered_load": m["sdr_requests"] * work_days,
        "sdr_utilisation": m["sdr_busy"] / m["sdr_capacity"] if m["sdr_capacity"] else math.nan,
        "ae_slots": m["ae_capacity"],
        "ae_slots_needed": ae_slots_needed(target.opportunities_per_day, target.cycle_mean_days),
        "ae_utilisation": m["ae_busy"] / m["ae_capacity"] if m["ae_capacity"] else math.nan,
    }
