"""The straightforward model: one SimPy process per source and per lead, touch by touch.

Kept as the test oracle of the fast engine (:mod:`.fast`): it draws arrivals by
thinning a Poisson process, each lead's traits one at a time, and advances every
nurture touch as a SimPy timeout. It shares the hand-off and sales mechanisms
with the engine (:class:`~.world.World`), so a test comparing the two checks the
shortcut the fast engine takes: array work for everything before the MQL.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from funnelsim.engine import warmup
from funnelsim.engine.customers import with_customers
from funnelsim.engine.fast import segment_worlds, warm_start
from funnelsim.engine.recorder import Recorder
from funnelsim.engine.world import Process, World
from funnelsim.model.mechanisms import calendar_months, decay, score, touch
from funnelsim.model.scenario import Scenario, Source
from funnelsim.randomness import Streams, buffered, resolve_seed
from funnelsim.run.result import RunResult
from funnelsim.vocabulary import EVENT_CODE


class ReferenceWorld(World):
    def __init__(self, scenario: Scenario, streams: Streams, recorder: Recorder, origin: float = 0.0) -> None:
        super().__init__(scenario, streams, recorder, origin)
        self.open_pipeline()
        self.touch_gap = buffered(scenario.nurture.touch_interval_days, streams.rng("reference_nurture"))
        persona_names = self.persona_names
        for index, (name, source) in enumerate(scenario.sources.items()):
            self.env.process(self._arrivals(index, name, source, streams, persona_names))

    def _arrivals(self, index: int, name: str, source: Source, streams: Streams, persona_names: list[str]) -> Process:
        sc = self.sc
        rng = streams.rng("reference_arrivals", name)
        traits = streams.rng("reference_traits", name)
        # The peak over the year's seasonality (and any month multiplier), as before multipliers existed.
        factors = [source.volume_factor(y, m) for y, m in _months(sc)]
        peak = source.leads_per_day_mean * max([*source.seasonality, *factors])
        if peak <= 0:
            return
        mix = list(source.persona_mix)
        shares = np.array([source.persona_mix[p] for p in mix])
        while True:
            yield self.env.timeout(rng.exponential(1 / peak))
            day = type(sc.start_date).fromordinal(sc.start_date.toordinal() + int(self.env.now))
            if rng.random() * peak >= source.leads_per_day_mean * source.volume_factor(day.year, day.month):
                continue  # thinning: seasonality (and month multipliers) below its peak
            persona = persona_names.index(mix[int(traits.choice(len(mix), p=shares / shares.sum()))])
            p = sc.personas[persona_names[persona]]
            lead = self.new_lead(
                index,
                persona,
                float(source.fit.sample(traits, 1)[0]),
                float(source.initial_engagement.sample(traits, 1)[0]),
                p.engagement_response,
                bool(traits.random() < p.buying_intent),
            )
            self.rec.event(self.env.now, lead, EVENT_CODE["created"])
            if source.entry_stage == "mql":
                self._hand_off(lead)
            else:
                self.renurture(lead)

    def _hand_off(self, lead: int) -> None:
        # One process per lead: sales' response starts as a process of its own would.
        if self.mql(lead):
            self.soon(self.respond, lead, self.env.now)

    def renurture(self, lead: int) -> None:
        """Nurture touch by touch in a process of its own, each touch a SimPy timeout."""
        self.env.process(self._nurture(lead))

    def _nurture(self, lead: int) -> Process:
        n, rule = self.sc.nurture, self.sc.qualification.mql
        if score(rule, self.fit[lead], self.engagement[lead]) >= rule.threshold:
            self._hand_off(lead)
            return
        elapsed = 0.0
        while True:
            gap = self.touch_gap()
            if elapsed + gap > n.max_nurture_days:
                yield self.env.timeout(n.max_nurture_days - elapsed)
                self.rec.event(self.env.now, lead, EVENT_CODE["dormant"])
                return
            yield self.env.timeout(gap)
            elapsed += gap
            self.engagement[lead] = touch(
                decay(self.engagement[lead], gap, n.engagement_half_life_days), n.touch_lift, self.response[lead]
            )
            if score(rule, self.fit[lead], self.engagement[lead]) >= rule.threshold:
                self._hand_off(lead)
                return


def _months(scenario: Scenario) -> list[tuple[int, int]]:
    """The (year, month) of every calendar month the run touches."""
    start = scenario.start_date
    months = []
    for t0, _, _ in calendar_months(start, scenario.horizon_days):
        day = start + dt.timedelta(days=t0)
        months.append((day.year, day.month))
    return months


def simulate_reference(scenario: Scenario, seed: int | None = None, replication: int = 0) -> RunResult:
    """Run one replication with the one-process-per-lead model (slow; for tests and benchmarks)."""
    seed = resolve_seed(scenario, seed)
    # A warm start's burn-in is chosen as the fast engine chooses it (the same pilot runs).
    reported, _ = warm_start(scenario, seed)
    streams = Streams(seed, replication)
    return with_customers(_reference_run(reported, streams, seed, replication), streams)  # as the fast engine


def _reference_run(reported: Scenario, streams: Streams, seed: int, replication: int) -> RunResult:
    """One run on ``streams``; a segmented scenario segment by segment, as the fast engine runs it."""
    if reported.segments:
        views, drawn = segment_worlds(reported, streams)
        parts = {name: _reference_run(view, inner, seed, replication) for name, (view, inner) in views.items()}
        return RunResult.of_segments(reported, parts, drawn)
    scenario, origin = warmup.shifted(reported)
    recorder = Recorder()
    world = ReferenceWorld(scenario, streams, recorder, origin)
    world.run()
    result = RunResult.build(
        reported, seed, replication, recorder, world.attributes(), world.source_names, world.parameters, origin
    )
    return result
