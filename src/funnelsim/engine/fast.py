"""The fast engine: array work up to the hand-off, SimPy only where leads interact.

Arrivals (a Poisson process per source, its rate constant within each calendar
month), lead traits and the whole nurture phase are drawn in numpy batches: a lead
that never becomes an MQL costs a few array operations and nothing in the event
loop, not even its attributes as Python objects. From the MQL on, leads compete for
SDRs and AEs, so :class:`~.world.World` runs them event by event: one feed step per
MQL time, then a chain of timed steps per lead (response delay, SDR work, sales
cycle) and the rep pools' queues, with no SimPy process per lead.
:func:`funnelsim.engine.reference.simulate_reference` is the straightforward
one-process-per-lead model of the same funnel, kept as test oracle.
"""

from __future__ import annotations

import numpy as np

from ..mechanisms import calendar_months
from ..randomness import Streams
from ..records import Recorder
from ..results import RunResult, resolve_seed
from ..scenario import Scenario
from .nurture import DORMANT, MQL, nurture_batch
from .world import Step, World

# Times decided by array work are put on a grid of 2**-20 days (0.08 s): the feeder's
# `now + (t - now)` is then exact, so an MQL on arrival is logged at its creation time.
GRID = 2.0**-20


def _on_grid(times: np.ndarray) -> np.ndarray:
    return np.round(times / GRID) * GRID


def simulate(scenario: Scenario, seed: int | None = None, replication: int = 0) -> RunResult:
    """Run one replication of ``scenario``.

    Parameters
    ----------
    scenario
        A validated scenario (see :func:`funnelsim.load_scenario`).
    seed
        Root seed; ``None`` takes the scenario's ``seed``, or fresh entropy (recorded
        in the result so the run can be replayed).
    replication
        Index of the replication: child ``replication`` of ``SeedSequence(seed)``.
    """
    seed = resolve_seed(scenario, seed)
    streams = Streams(seed, replication)
    recorder = Recorder()
    world = World(scenario, streams, recorder)
    horizon = scenario.horizon_days

    leads = draw_arrivals(scenario, streams, world)
    ids = np.arange(len(leads["time"]))
    recorder.bulk(leads["time"], ids, "created")

    outcome = np.full(len(ids), MQL, dtype=np.int8)
    when = leads["time"].copy()
    engagement = leads["engagement"].copy()
    qual = scenario.qualification.mql
    for index, (name, source) in enumerate(scenario.sources.items()):
        sel = np.flatnonzero((leads["source"] == index) & (source.entry_stage == "lead"))
        if sel.size:
            outcome[sel], when[sel], engagement[sel] = nurture_batch(
                streams.rng("nurture", name),
                scenario.nurture,
                qual,
                leads["fit"][sel],
                leads["engagement"][sel],
                leads["response"][sel],
                leads["time"][sel],
                horizon,
            )
    when = _on_grid(when)
    dormant = outcome == DORMANT
    recorder.bulk(when[dormant], ids[dormant], "dormant")

    mql = np.flatnonzero(outcome == MQL)
    mql = mql[np.argsort(when[mql], kind="stable")]
    world.add_leads(leads, engagement, mql)
    world.soon(_Feed(world, when[mql].tolist(), mql.tolist()))
    world.run()
    return RunResult.build(
        scenario, seed, replication, recorder, world.attributes(), world.source_names, world.parameters
    )


class _Feed:
    """Hands each lead to sales at the moment it becomes an MQL: one timed step per MQL time.

    The leads that became MQLs at one time are all handed over in one step; sales
    starts responding to them once the step for the next MQL time is scheduled, as
    it would if the feed were a SimPy process (see :class:`~.world.Step`).
    """

    def __init__(self, world: World, times: list[float], leads: list[int]) -> None:
        self.world, self.times, self.leads, self.next = world, times, leads, 0

    def __call__(self, _: object = None) -> None:
        world, times = self.world, self.times
        now = world.env.now
        i, n = self.next, len(times)
        followed = []
        while i < n and times[i] <= now:
            if world.mql(self.leads[i]):
                followed.append(self.leads[i])
            i += 1
        self.next = i
        if i < n:
            # now + (t - now) is exactly t: times are on the grid.
            Step(world.env, times[i] - now, self, None)
        for lead in followed:
            world.respond(lead, now)


def draw_arrivals(scenario: Scenario, streams: Streams, world: World) -> dict[str, np.ndarray]:
    """All leads of the run, sorted by arrival time, with their traits.

    Each source draws from its own streams, so changing one source's volume leaves
    the leads of the others unchanged (common random numbers across scenarios).
    """
    segments = calendar_months(scenario.start_date, scenario.horizon_days)
    intent = np.array([p.buying_intent for p in scenario.personas.values()])
    response = np.array([p.engagement_response for p in scenario.personas.values()])
    parts = []
    for index, (name, source) in enumerate(scenario.sources.items()):
        rng = streams.rng("arrivals", name)
        rate = source.leads_per_day_mean
        counts = rng.poisson([rate * source.seasonality[m] * (t1 - t0) for t0, t1, m in segments])
        time = np.concatenate(
            [np.sort(rng.uniform(t0, t1, k)) for (t0, t1, _), k in zip(segments, counts, strict=True)]
        )
        n = len(time)
        mix_names = list(source.persona_mix)
        mix_index = np.array([world.persona_names.index(p) for p in mix_names], dtype=np.int16)
        cumulative = np.cumsum([source.persona_mix[p] for p in mix_names])
        pick = np.searchsorted(cumulative, streams.rng("persona", name).random(n) * cumulative[-1], side="right")
        persona = mix_index[np.minimum(pick, len(mix_names) - 1)]
        parts.append(
            {
                "time": time,
                "source": np.full(n, index, dtype=np.int16),
                "persona": persona,
                "fit": source.fit.sample(streams.rng("fit", name), n),
                "engagement": source.initial_engagement.sample(streams.rng("engagement", name), n),
                "response": response[persona],
                "need": streams.rng("need", name).random(n) < intent[persona],
            }
        )
    merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    merged["time"] = _on_grid(merged["time"])
    order = np.argsort(merged["time"], kind="stable")
    return {key: value[order] for key, value in merged.items()}
