"""The fast engine: array work up to the hand-off, SimPy only where leads interact.

Arrivals (a Poisson process per source, its rate constant within each calendar
month), lead traits, each lead's own random draws and the whole nurture phase are
drawn in numpy batches, coupled across volumes (:func:`arrival_times`): a lead
that never becomes an MQL costs a few array operations and nothing in the event
loop, not even its attributes as Python objects. From the MQL on, leads compete for
SDRs and AEs, so :class:`~.world.World` runs them event by event: a chain of timed
steps per lead (pick-up, SDR work, sales cycle) and the rep pools' queues, with no
SimPy process per lead; the MQL events and the first pick-up times are worked out
before the run (:func:`_hand_over`).
:func:`funnelsim.engine.reference.simulate_reference` is the straightforward
one-process-per-lead model of the same funnel, kept as test oracle.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from functools import partial

import numpy as np

from funnelsim.engine import warmup
from funnelsim.engine.customers import with_customers
from funnelsim.engine.nurture import DORMANT, MQL, nurture_batch
from funnelsim.engine.recorder import Recorder
from funnelsim.engine.world import MQL_CODE, World
from funnelsim.model.distributions import Spec
from funnelsim.model.mechanisms import calendar_months
from funnelsim.model.scenario import Scenario, draw_parameters
from funnelsim.model.workcal import WorkingTime, office_clock
from funnelsim.randomness import Streams, resolve_seed
from funnelsim.run.result import RunResult
from funnelsim.vocabulary import EVENT_CODE

NOT_FOLLOWED_UP = EVENT_CODE["not_followed_up"]

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

    A warm scenario (the default without an ``initial_pipeline``) is run from its burn-in
    before ``start_date`` (:func:`warm_start`); the result holds the horizon only.
    """
    seed = resolve_seed(scenario, seed)
    scenario, _ = warm_start(scenario, seed)
    streams = Streams(seed, replication)
    # A subscription scenario's customers live on after the funnel run (its own streams).
    return with_customers(run_on(scenario, streams, seed, replication), streams)


def warm_start(scenario: Scenario, seed: int) -> tuple[Scenario, warmup.BurnIn | None]:
    """``scenario`` with its warm start's burn-in fixed, chosen by pilot runs of ``seed`` if it
    does not give one (:mod:`.warmup`); any other scenario as it is, with ``None``.

    Studies call it once before handing replications out, so workers run no pilot.
    """
    return warmup.resolve(scenario, seed, partial(pilot_run, seed))


def pilot_run(seed: int, scenario: Scenario, index: int) -> RunResult:
    """Pilot run ``index`` of a warm start's burn-in choice, on streams no replication uses."""
    return run_on(scenario, Streams(seed, index, domain="pilot"), seed, index)


def run_on(reported: Scenario, streams: Streams, seed: int, replication: int) -> RunResult:
    """One run of ``reported`` (its burn-in fixed, if warm) on ``streams``: the engine proper.

    A warm scenario runs from ``burn_in_days`` before its start date; the result holds
    the horizon only (:meth:`RunResult.build`). A segmented one runs each segment's view
    as a world of its own (its own reps: territories), on streams of its own, and puts the
    results together (:meth:`RunResult.of_segments`).
    """
    if reported.segments:
        views, drawn = segment_worlds(reported, streams)
        parts = {name: run_on(view, inner, seed, replication) for name, (view, inner) in views.items()}
        return RunResult.of_segments(reported, parts, drawn)
    scenario, origin = warmup.shifted(reported)
    recorder = Recorder()
    world = World(scenario, streams, recorder, origin)
    _run_world(world, scenario, streams, recorder)  # its arrays are freed before the tables are built
    attributes = world.attributes()
    world.close()
    return RunResult.build(
        reported, seed, replication, recorder, attributes, world.source_names, world.parameters, origin
    )


def segment_streams(streams: Streams, segment: str) -> Streams:
    """The streams of segment ``segment``'s world in a run on ``streams`` (disjoint from every other segment's)."""
    return streams.within(f"segment/{segment}")


def segment_worlds(
    scenario: Scenario, streams: Streams
) -> tuple[dict[str, tuple[Scenario, Streams]], dict[str, float]]:
    """Each segment's view of a segmented scenario and its streams, for one run on ``streams``; and the
    top-level rates drawn for the run.

    A rate the top level gives as a distribution is one unknown of the organisation: it is drawn
    once, on the run's own ``parameters`` streams (as an unsegmented run draws it), and every
    segment that does not override it runs with that value; a segment's own distribution is drawn
    in its world, on its streams.
    """
    fixed, drawn = draw_parameters(scenario, lambda path: streams.rng("parameters", path))
    views = {name: (fixed.segment_view(name), segment_streams(streams, name)) for name in scenario.segment_names}
    return views, drawn


def _run_world(world: World, scenario: Scenario, streams: Streams, recorder: Recorder) -> None:
    """Draw the leads, nurture them as arrays, hand the MQLs over and run the event loop."""
    horizon = scenario.horizon_days
    leads, personas, order = draw_arrivals(scenario, streams, world)
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
                partial(_touch_stream, streams, name),
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
    # Only the MQLs' own draws are used: kept for those, in feed order, as each is drawn.
    own = own_draws(scenario, streams, personas, order[mql])
    world.add_leads(leads, engagement, mql, own)
    world.open_pipeline()  # after the drawn leads, whose ids are their array positions
    world.run(_hand_over(world, when[mql], mql, own))


def _hand_over(
    world: World, mql_time: np.ndarray, leads: np.ndarray, own: dict[str, np.ndarray]
) -> tuple[list[float], Callable[[int], None]]:
    """Every MQL's first pass to sales, decided before the run: logged in bulk; returns the
    pick-ups as a feed of the event loop (:meth:`~.world.Calendar.run_to`).

    Whether sales follows an MQL up and its response delay are the lead's own draws
    (:class:`~.world.FirstPass`), so the ``mql`` and ``not_followed_up`` events are
    written at once, and each followed MQL's pick-up time is known before the run: its
    MQL time plus its delay, the same float sum the event loop would make (with
    ``response_clock = "working"``, the time the SDR team's working-time map gives,
    :meth:`~funnelsim.model.workcal.WorkingTime.after`). ``leads``
    is in feed order (by MQL time), a lead's position ``k`` in it indexing its own draws.
    """
    followed = own["follow_up"] < world.follow_up_rate
    # One mql row per lead, followed by a not_followed_up row where sales ignores it.
    rows = np.where(followed, 1, 2)
    codes = np.full(int(rows.sum()), MQL_CODE, dtype=np.int8)
    codes[np.cumsum(rows)[~followed] - 1] = NOT_FOLLOWED_UP
    world.rec.bulk(np.repeat(mql_time, rows), np.repeat(leads, rows), codes)
    k = np.flatnonzero(followed)
    clock = world.response_clock
    if clock is None:
        pick_up = mql_time[k] + own["response_delay"][k]
    else:  # the delay is the SDR team's working time: W⁻¹(W(MQL) + delay), all leads at once
        pick_up = clock.after(mql_time[k], own["response_delay"][k])
    by_time = np.argsort(pick_up, kind="stable")
    k = k[by_time]
    lead, at, position = leads[k].tolist(), mql_time[k].tolist(), k.tolist()
    picked_up = world.picked_up

    def call(i: int) -> None:
        picked_up(lead[i], at[i], position[i])

    return pick_up[by_time].tolist(), call


ARRIVAL_BLOCK = 1024


def arrival_times(
    rng: np.random.Generator, rate: float, factors: list[float], segments: list[tuple[float, float, int]]
) -> np.ndarray:
    """Arrival times of a Poisson process whose rate is constant within each calendar month.

    ``factors`` holds the volume factor of each segment (seasonality times the month's
    multiplier, :meth:`~funnelsim.model.scenario.Source.volume_factor`). By a change of
    time: with unit exponential gaps ``E_j`` and the cumulative intensity
    ``Λ(t) = ∫ rate · factor(month(s)) ds``, lead ``j`` arrives at
    ``Λ^{-1}(E_1 + … + E_j)`` while that is within the horizon. The gaps are drawn in fixed
    blocks, so lead ``j``'s draw never depends on the volume: multiplying the volume by
    ``k`` brings the same leads at ``Λ^{-1}(S_j / k)`` and adds new ones after them. This
    coupling keeps common random numbers strong across scenarios that differ in volume.
    """
    edges = np.array([t0 for t0, _, _ in segments] + [segments[-1][1]]) if segments else np.zeros(1)
    mass = np.array([rate * factor * (t1 - t0) for (t0, t1, _), factor in zip(segments, factors, strict=True)])
    cumulative = np.concatenate([[0.0], np.cumsum(mass)])
    total = float(cumulative[-1])
    blocks, reached = [], 0.0
    while reached < total:
        block = reached + np.cumsum(rng.standard_exponential(ARRIVAL_BLOCK))
        blocks.append(block)
        reached = float(block[-1])
    if not blocks:
        return np.zeros(0)
    arrivals = np.concatenate(blocks)
    times = np.interp(arrivals[arrivals < total], cumulative, edges)
    # An arrival just below the total intensity can round to the horizon itself; the
    # horizon is open ([0, H)), so it lands on the last representable time before it.
    return np.minimum(times, np.nextafter(edges[-1], -np.inf))


def in_office_hours(
    segments: list[tuple[float, float, int]], factors: list[float], office: WorkingTime, share: float
) -> tuple[list[tuple[float, float, int]], list[float]]:
    """The months cut at the office's openings and closings, with rates that put ``share`` of each month's
    leads in office hours and keep the month's volume: a month of length ``L`` with ``H`` open days has the
    factor times ``share·L/H`` inside them and ``(1 − share)·L/(L − H)`` outside (unchanged if either is 0).
    The intensity's integral at every month boundary is unchanged, so with the same exponential gaps each
    month gets the same leads as without the profile, only at other times within it."""
    pieces: list[tuple[float, float, int]] = []
    rates: list[float] = []
    for (t0, t1, month), factor in zip(segments, factors, strict=True):
        length = t1 - t0
        open_days = float(office.working(t1) - office.working(t0))
        if not 0 < open_days < length:
            pieces.append((t0, t1, month))
            rates.append(factor)
            continue
        inside, outside = share * length / open_days, (1 - share) * length / (length - open_days)
        cuts = [t for pair in zip(office.opens, office.closes, strict=True) for t in pair if t0 < t < t1]
        edges = [t0, *cuts, t1]
        for a, b in itertools.pairwise(edges):
            pieces.append((a, b, month))
            rates.append(factor * (inside if bool(office.is_open((a + b) / 2)) else outside))
    return pieces, rates


def _touch_stream(streams: Streams, source: str, touch: int) -> np.random.Generator:
    """The stream of the ``touch``-th nurture gap of every lead of ``source``."""
    return streams.rng("nurture", source, str(touch))


# A lead's own draws (see :class:`~.world.FirstPass`): uniforms, and durations by the scenario's distribution.
UNIFORMS = ("follow_up", "contact", "recycle", "accept", "win")


def _durations(scenario: Scenario) -> dict[str, Spec | None]:
    h, s = scenario.handoff, scenario.sales
    return {
        "response_delay": h.response_delay_days,
        "sdr_patience": h.sdr.patience_days,
        "sdr_work": h.sdr.work_days,
        "ae_patience": s.patience_days,
        "cycle": s.cycle_days,
    }


def _lead_draw(scenario: Scenario, streams: Streams, quantity: str, source: str, persona: np.ndarray) -> np.ndarray:
    """One own draw of every lead of ``source``: element ``j`` for its ``j``-th lead, from the
    stream of that quantity and source, so a lead keeps its draws whatever the volume of its
    source or of the others."""
    n = len(persona)
    if quantity in UNIFORMS:
        return streams.rng("lead", quantity, source).random(n)
    if quantity != "deal_size":
        spec = _durations(scenario)[quantity]
        assert spec is not None
        return spec.sample(streams.rng("lead", quantity, source), n)
    s = scenario.sales
    deal = np.zeros(n)
    by_spec: dict[int, np.ndarray] = {}  # personas sharing a distribution share its draw (one stream)
    for index, name in enumerate(scenario.personas):
        mine = persona == index
        spec = s.deal_size_by_persona.get(name, s.deal_size)
        if id(spec) not in by_spec:
            by_spec[id(spec)] = spec.sample(streams.rng("lead", "deal_size", source), n)
        deal[mine] = by_spec[id(spec)][mine]
    return deal


def own_draws(
    scenario: Scenario, streams: Streams, personas: list[np.ndarray], picked: np.ndarray
) -> dict[str, np.ndarray]:
    """The own draws of the leads at positions ``picked`` of the leads in source order.

    Each quantity is drawn for every lead of every source (so the draws do not depend on
    which leads are picked) and only the picked elements are kept before the next quantity
    is drawn: at most one quantity of all leads is held at a time. A patience without a
    distribution is never drawn.
    """
    quantities = [*UNIFORMS, *(q for q, spec in _durations(scenario).items() if spec is not None), "deal_size"]
    sources = list(zip(scenario.sources, personas, strict=True))
    out = {}
    for quantity in quantities:
        every = [_lead_draw(scenario, streams, quantity, name, persona) for name, persona in sources]
        out[quantity] = np.concatenate(every)[picked]
    return out


def draw_arrivals(
    scenario: Scenario, streams: Streams, world: World
) -> tuple[dict[str, np.ndarray], list[np.ndarray], np.ndarray]:
    """All leads of the run, sorted by arrival time, with their traits; the personas of each
    source's leads in its own order, and ``order``: lead ``i`` is element ``order[i]`` of the
    leads in source order (what :func:`own_draws` picks from).

    Each source draws from its own streams, so changing one source's volume leaves
    the leads of the others unchanged (common random numbers across scenarios).
    """
    segments = calendar_months(scenario.start_date, scenario.horizon_days)
    month_dates = [scenario.start_date + dt.timedelta(days=t0) for t0, _, _ in segments]
    office = office_clock(scenario, world.origin)
    share = scenario.calendar.arrival_share_in_office_hours if office is not None and scenario.calendar else None
    intent = np.array([p.buying_intent for p in scenario.personas.values()])
    response = np.array([p.engagement_response for p in scenario.personas.values()])
    parts, personas = [], []
    for index, (name, source) in enumerate(scenario.sources.items()):
        factors = [source.volume_factor(d.year, d.month) for d in month_dates]
        pieces = segments
        if office is not None and share is not None:
            pieces, factors = in_office_hours(segments, factors, office, share)
        time = arrival_times(streams.rng("arrivals", name), source.leads_per_day_mean, factors, pieces)
        n = len(time)
        mix_names = list(source.persona_mix)
        mix_index = np.array([world.persona_names.index(p) for p in mix_names], dtype=np.int16)
        cumulative = np.cumsum([source.persona_mix[p] for p in mix_names])
        pick = np.searchsorted(cumulative, streams.rng("persona", name).random(n) * cumulative[-1], side="right")
        persona = mix_index[np.minimum(pick, len(mix_names) - 1)]
        personas.append(persona)
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
    merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}  # by source, then arrival
    merged["time"] = _on_grid(merged["time"])
    order = np.argsort(merged["time"], kind="stable")
    return {key: value[order] for key, value in merged.items()}, personas, order
