"""Warm start: how long to run a scenario before ``start_date`` so that day 0 looks like any other day.

A warm run simulates a burn-in of ``burn_in_days`` before ``start_date`` at the
scenario's own rates (its seasonality by calendar month, its team, its prospecting)
and reports only the horizon. The initial AEs are on staff and fully ramped at the
start of the burn-in, and attrition starts on ``start_date`` (so the team on day 0 is
``sales.ae.count``, as the scenario says); dated hires keep their dates.

A pipeline start burns in the same way, with one difference: sales' side of the
burn-in is the CRM's history, not a simulation. SQLs handed to sales before
``start_date`` leave the run (their fate is in the export, closed or among the open
deals), AEs do not prospect before it, and ``initial_pipeline``'s deals open on
``start_date``. So day 0 has a steady marketing funnel and SDR queue in front of the
CRM's own open deals, rather than an empty company with a few deals.

The burn-in, unless the scenario fixes it, is chosen once per scenario and seed by a
pilot (:func:`choose_burn_in`): :data:`PILOT_RUNS` cold runs of the scenario with its
seasonality flattened to its yearly mean, no month multipliers, no dated hires and
uncertain rates at their means, on streams of their own (no replication sees them). The daily work in
progress (open leads, open opportunities) and won value, averaged over the pilot
runs, each get an MSER-5 truncation point (:mod:`funnelsim.run.steady`); the burn-in
is the largest, never less than :data:`CYCLES_FLOOR` mean sales cycles (MSER-5 missed the
slow filling of an overloaded AE queue: 30 days chosen for a 20-day cycle, abandonment 5%
low against Erlang-A), rounded up to whole 30-day months. When a series has not settled
within the pilot, the pilot is doubled, up to :data:`PILOT_DAYS`'s last length; a
funnel that never settles (a queue that only grows) keeps the longest burn-in tried
and is reported as not settled.

A segmented scenario has one burn-in for all its segments, so a study that fixes it once
keeps working: the pilot runs every segment (each on its own streams), MSER-5 cuts each
segment's series on its own (``truncation_days`` keyed ``<segment>:<series>``), and the
burn-in is the longest cut, never less than three mean cycles of the slowest segment.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from funnelsim.model.scenario import Scenario, Segment, merge_tables
from funnelsim.run.result import RunResult
from funnelsim.run.steady import daily_levels, mser
from funnelsim.vocabulary import SEGMENT

__all__ = [
    "PILOT_DAYS",
    "PILOT_RUNS",
    "BurnIn",
    "choose_burn_in",
    "pilot_scenario",
    "resolve",
    "shifted",
    "start_of",
    "with_burn_in",
]

PILOT_RUNS = 8
"""Pilot runs averaged before the MSER-5 rule is applied."""
PILOT_DAYS = (1095, 2190)
"""Pilot lengths tried, days: three years, then six."""
MONTH = 30
CYCLES_FLOOR = 3
"""The burn-in is never shorter than this many mean sales cycles: the AE slots turn over slowly, and a
queue for them (abandonment-limited) fills slower than MSER-5 on the pilot's daily series can see."""

Pilot = Callable[[Scenario, int], RunResult]
"""Runs pilot run ``i`` of a scenario (on streams no replication uses)."""

_CHOSEN: dict[tuple[str, int], BurnIn] = {}  # by (scenario as given, seed)
_RESOLVED: dict[str, BurnIn] = {}  # by the scenario with its burn-in fixed


@dataclass(frozen=True)
class BurnIn:
    """The burn-in of a warm start and how it was chosen."""

    days: float
    chosen_by: str
    settled: bool = True
    truncation_days: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "burn_in_days": self.days,
            "chosen_by": self.chosen_by,
            "settled": self.settled,
            "truncation_days": dict(self.truncation_days),
        }


def pilot_scenario(scenario: Scenario, days: float) -> Scenario:
    """The scenario the pilot runs: cold, ``days`` long, flat seasonality and no month multipliers, no
    dated hires (AEs or SDRs), mean rates."""
    sources = {
        name: source.model_copy(
            update={"seasonality": [float(np.mean(source.seasonality))] * 12, "month_multipliers": {}}
        )
        for name, source in scenario.sources.items()
    }
    means = {path: spec.mean for path, spec in scenario.uncertain_parameters().items()}
    sales = scenario.sales.model_copy(update={"ae": scenario.sales.ae.model_copy(update={"hires": []})})
    sdr = scenario.handoff.sdr.model_copy(update={"hires": []})
    handoff = scenario.handoff.model_copy(update={"sdr": sdr})
    pilot = scenario.with_parameters(means) if means else scenario
    update: dict[str, Any] = {
        "sources": sources,
        "sales": sales,
        "handoff": handoff,
        "horizon_days": float(days),
        "start": "cold",
        "burn_in_days": None,
        "initial_pipeline": None,
    }
    if scenario.segments:
        update["segments"] = {name: _pilot_segment(scenario, name) for name in scenario.segment_names}
    return pilot.model_copy(update=update)


def _pilot_segment(scenario: Scenario, name: str) -> Segment:
    """Segment ``name`` as the pilot runs it: no dated hires, its own uncertain rates at their means."""
    view = scenario.segment_view(name)
    pilot: dict[str, Any] = {"sales": {"ae": {"hires": []}}, "handoff": {"sdr": {"hires": []}}}
    for path, spec in view.uncertain_parameters().items():
        section, key = path.split(".")
        pilot = merge_tables(pilot, {section: {key: spec.mean}})
    segment = scenario.segments[name]
    return Segment.model_validate({"description": segment.description, **merge_tables(segment.overrides(), pilot)})


def choose_burn_in(scenario: Scenario, pilot_run: Pilot) -> BurnIn:
    """The burn-in of a warm start by MSER-5 on pilot runs (see the module docstring)."""
    cuts: dict[str, int] = {}
    for days in PILOT_DAYS:
        pilot = pilot_scenario(scenario, days)
        runs = [pilot_run(pilot, i) for i in range(PILOT_RUNS)]
        found: dict[str, tuple[int, bool]] = {}
        for prefix, logs in _by_segment(runs).items():
            mean = sum(daily_levels(events, days) for events in logs) / PILOT_RUNS
            found |= {prefix + name: mser(mean[name].to_numpy()) for name in mean.columns}
        cuts = {name: cut for name, (cut, _) in found.items()}
        settled = all(ok for _, ok in found.values())
        if settled:
            break
    how = f"MSER-5 on daily open leads, open deals and won value (mean of {PILOT_RUNS} pilot runs, {days:,} days)"
    if scenario.segments:
        how += ", in each segment"
    burn_in: float = days // 2 if not settled else max(cuts.values())
    views = [scenario.segment_view(name) for name in scenario.segment_names] or [scenario]
    floor = CYCLES_FLOOR * max(view.sales.cycle_days.mean for view in views)
    if floor > burn_in:
        how += f"; raised to {CYCLES_FLOOR} mean sales cycles ({floor:,.0f} days), the floor"
        burn_in = floor
    return BurnIn(float(MONTH * max(1, math.ceil(burn_in / MONTH))), how, settled, cuts)


def _by_segment(runs: list[RunResult]) -> dict[str, list[pd.DataFrame]]:
    """The event logs of the pilot runs, by series prefix: ``""`` for one funnel, ``"<segment>:"`` for each
    segment of a segmented one (each settles on its own; the burn-in is the longest)."""
    if SEGMENT not in runs[0].attributes:
        return {"": [run.events for run in runs]}
    out: dict[str, list[pd.DataFrame]] = {}
    for run in runs:
        segment = run.attributes[SEGMENT]
        of_event = segment.to_numpy()[run.events["lead"].to_numpy()]
        for name in segment.cat.categories:
            out.setdefault(f"{name}:", []).append(run.events[of_event == name])
    return out


def resolve(scenario: Scenario, seed: int, pilot_run: Pilot) -> tuple[Scenario, BurnIn | None]:
    """The scenario with its burn-in fixed (``burn_in_days`` set) and how it was chosen.

    Scenarios that start cold come back as they are with ``None``; a warm or pipeline one with
    ``burn_in_days`` given keeps it. A chosen burn-in is remembered per scenario and
    seed within the process.
    """
    if not scenario.burns_in:
        return scenario, None
    if scenario.burn_in_days is not None:
        return scenario, BurnIn(scenario.burn_in_days, "burn_in_days in the scenario")
    key = (scenario.sha256(), seed)
    if key not in _CHOSEN:
        if len(_CHOSEN) > 64:
            _CHOSEN.clear()
            _RESOLVED.clear()
        _CHOSEN[key] = choose_burn_in(scenario, pilot_run)
    burn_in = _CHOSEN[key]
    resolved = scenario.model_copy(update={"burn_in_days": burn_in.days})
    _RESOLVED[resolved.sha256()] = burn_in
    return resolved, burn_in


def with_burn_in(scenario: Scenario, burn_in: BurnIn) -> Scenario:
    """``scenario`` warm-started with ``burn_in`` (chosen for another scenario of the same study)."""
    fixed = scenario.model_copy(update={"burn_in_days": burn_in.days})
    _RESOLVED[fixed.sha256()] = burn_in
    return fixed


def start_of(scenario: Scenario) -> dict[str, Any]:
    """How a (resolved) scenario starts, for manifests: ``mode``, and for a warm start the
    burn-in and what chose it (a pilot in this process, or the scenario's ``burn_in_days``)."""
    if not scenario.burns_in or scenario.burn_in_days is None:
        return {"mode": scenario.start_mode}
    given = BurnIn(scenario.burn_in_days, "burn_in_days in the scenario")
    return {"mode": scenario.start_mode, **_RESOLVED.get(scenario.sha256(), given).to_json()}


def shifted(scenario: Scenario) -> tuple[Scenario, float]:
    """The scenario as the engine runs it, and the day of the event log that is ``start_date``.

    A warm or pipeline scenario (with its burn-in fixed) starts ``burn_in_days`` earlier and
    runs that much longer; any other runs as it is, from 0.
    """
    if not scenario.burns_in or not scenario.burn_in_days:
        return scenario, 0.0
    days = math.ceil(scenario.burn_in_days)
    start = scenario.start_date - dt.timedelta(days=days)
    # A pipeline start stays one: the World hands its deals out on the reported start date.
    shifted_start = "pipeline" if scenario.start_mode == "pipeline" else "cold"
    update = {
        "start_date": start,
        "horizon_days": scenario.horizon_days + days,
        "start": shifted_start,
        "burn_in_days": None,
    }
    return scenario.model_copy(update=update), float(days)
