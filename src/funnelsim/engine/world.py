"""The interacting part of the funnel, event by event: hand-off, SDRs, AEs, prospecting.

From the moment a lead becomes an MQL it competes with other leads for reps, so
it needs the event loop. :class:`World` holds the SimPy environment, the two rep
pools, the lead attributes and the random streams, and runs every mechanism after
nurture (the SDR team's hires and leavers are :mod:`.staffing`'s). The fast engine
and the reference model differ only in how leads reach the hand-off (array work vs.
one process per lead, see :meth:`World.renurture`).

A lead's way through the hand-off and sales is a chain of :class:`Step` events,
each calling the next stage when it fires (response delay, SDR work, sales cycle),
rather than a SimPy process per lead: a lead waits for nothing but its own timer
or a rep, so a generator per lead would only add events (its start and its end)
and the cost of resuming it. Steps are scheduled at the same moments, times and
priorities as the process's timeouts would be, so every tie in time is broken as
it would be with one process per lead and the event log is the same. (One exception:
a lead's first pick-up is not an event but an entry of a feed read beside the queue,
see ``fast._hand_over`` and :meth:`Calendar.run_to`, so an exact tie between it and an
event, which takes fixed durations, may be broken the other way.)

A team with working hours (a ``[calendar]`` and the team's ``working_hours``) has its rep
pool closed outside them (:meth:`World._keep_hours`): one step at each opening and closing,
the opening urgent, so nobody is started at night and a rep freed at night takes the next
lead at the next opening. SDR work then counts working time, and with ``response_clock =
"working"`` so does the response delay (:class:`~funnelsim.model.workcal.WorkingTime`).

The chain carries the lead's position ``k`` among the leads fed to sales by the
fast engine while it is on its first way through (``-1`` otherwise): its own draws
for that pass were made before the run (:class:`FirstPass`), so a step reads them
from a list instead of drawing; a recycled pass or a prospected deal draws from the
shared streams, at the same moments as a process would.
"""

from __future__ import annotations

import bisect
import gc
import heapq
import math
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import simpy
from simpy.events import NORMAL, URGENT

from funnelsim.engine.nurture import MQL, nurture_one
from funnelsim.engine.pools import Request, SlotPool
from funnelsim.engine.recorder import Recorder
from funnelsim.engine.staffing import SdrStaffing
from funnelsim.engine.step import Step, StepAt
from funnelsim.model.mechanisms import ContactCurve, productivity, score, slots, win_probability
from funnelsim.model.scenario import DAYS_PER_MONTH, PIPELINE_SOURCE, Scenario, draw_parameters, rate
from funnelsim.model.workcal import WorkingTime, clock_of
from funnelsim.randomness import Streams, buffered
from funnelsim.vocabulary import EVENT_CODE

PROSPECTING = "prospecting"
PIPELINE = PIPELINE_SOURCE

Process = Generator[simpy.Event, Any, None]

E = EVENT_CODE  # short alias for the per-event code below
MQL_CODE = EVENT_CODE["mql"]
NAN = float("nan")

# What each lead draws for itself, once, in the fast engine (see FirstPass).
LEAD_DRAWS = (
    "follow_up",
    "response_delay",
    "sdr_patience",
    "sdr_work",
    "contact",
    "recycle",
    "ae_patience",
    "accept",
    "deal_size",
    "cycle",
    "win",
)
BEFORE_RUN = ("follow_up", "response_delay")  # used to schedule the first pick-up, not in the run


class Calendar(simpy.Environment):
    """SimPy's environment with a tighter run loop: the same events in the same order.

    :meth:`run_to` is ``run(until=horizon)`` without a step method call, an until event
    and a ``StopSimulation`` per run: it pops ``(time, priority, id, event)`` as
    :meth:`~simpy.Environment.step` does and stops before the first event at or after
    the horizon. (``run(until=h)`` also stops there: its stop event is urgent at ``h``
    and scheduled before any event the run schedules; only urgent events at ``h``
    scheduled before the run could come first, and the engine schedules none.)

    A *feed* is a list of times known before the run, in order, each a call ``call(i)``:
    merged with the queue as the run goes, so that it costs no event (the fast engine's
    first pick-ups). At a tie in time the queue's event comes first.
    """

    def run_to(self, horizon: float, feed: tuple[list[float], Callable[[int], None]] | None = None) -> None:
        queue, pop = self._queue, heapq.heappop
        times, call = feed if feed is not None else ([], None)
        i, n = 0, len(times)
        fed = times[0] if n else math.inf
        while True:
            if queue and queue[0][0] <= fed:
                if queue[0][0] >= horizon:
                    break
                self._now, _, _, event = pop(queue)
                callbacks, event.callbacks = event.callbacks, None  # type: ignore[assignment]
                for callback in callbacks:
                    callback(event)
                if not event._ok and not hasattr(event, "_defused"):
                    # A failed process nobody waited for: raise a copy, as step() does.
                    exc = type(event._value)(*event._value.args)
                    exc.__cause__ = event._value
                    raise exc
            elif fed < horizon:
                self._now = fed
                call(i)  # type: ignore[misc]
                i += 1
                fed = times[i] if i < n else math.inf
            else:
                break
        self._now = horizon


class FirstPass:
    """The leads fed to sales, on their first way through, by feed position ``k``.

    Their traits and one list per draw of :data:`LEAD_DRAWS` the steps read (lists: the
    cheapest scalar access per event; whether sales follows the MQL up and its response
    delay are used before the run, see ``fast._hand_over``), and what can be decided
    from them before the run, the comparisons the steps would make, made in numpy:
    ``qualified`` (it has a need, and its source qualifies it (``qualified_by =
    "source"``) or it passes sales' bar with its engagement at the hand-off, which
    only recycling changes) and ``win_probability`` (of its fit). A
    lead leaving its first pass alive (recycled) has its traits copied to the world's
    dicts (:meth:`World.adopt`).
    """

    def __init__(
        self,
        traits: dict[str, list[Any]],
        draws: dict[str, list[float]],
        decided: dict[str, list[Any]],
    ) -> None:
        empty: list[float] = []
        self.persona: list[int] = traits["persona"]
        self.fit: list[float] = traits["fit"]
        self.engagement: list[float] = traits["engagement"]
        self.response: list[float] = traits["response"]
        self.need: list[bool] = traits["need"]
        self.sdr_patience = draws.get("sdr_patience", empty)
        self.sdr_work = draws["sdr_work"]
        self.contact = draws["contact"]
        self.recycle = draws["recycle"]
        self.ae_patience = draws.get("ae_patience", empty)
        self.accept = draws["accept"]
        self.deal_size = draws["deal_size"]
        self.cycle = draws["cycle"]
        self.win = draws["win"]
        self.qualified: list[bool] = decided["qualified"]
        self.win_probability: list[float] = decided["win_probability"]

    @classmethod
    def empty(cls) -> FirstPass:
        return cls(
            {name: [] for name in ("persona", "fit", "engagement", "response", "need")},
            {name: [] for name in LEAD_DRAWS},
            {name: [] for name in ("qualified", "win_probability")},
        )


def assign_owners(owners: list[str | None], aes: int) -> list[int]:
    """The AE (0 .. ``aes - 1``) that holds each open deal of the initial pipeline.

    The deals of one CRM owner stay together: owners, in order of first appearance,
    each go to the AE holding the fewest deals so far; deals without an owner then go
    one by one to the AE holding the fewest (ties: the lowest id). Deterministic, so
    the same pipeline always lands on the same AEs.
    """
    if aes < 1:
        raise ValueError(f"open deals need at least one AE, got {aes}")
    held = [0] * aes
    rep_of: list[int] = [-1] * len(owners)
    groups: dict[str, list[int]] = {}
    for i, owner in enumerate(owners):
        if owner is not None:
            groups.setdefault(owner, []).append(i)
    for members in groups.values():
        rep = held.index(min(held))
        held[rep] += len(members)
        for i in members:
            rep_of[i] = rep
    for i, owner in enumerate(owners):
        if owner is None:
            rep = held.index(min(held))
            held[rep] += 1
            rep_of[i] = rep
    return rep_of


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused, for the event loop and the steps set up for it.

    The loop creates no reference cycles that need collecting while it runs (a step
    is freed by reference counting once it fired), but it creates tens of thousands of
    objects and keeps thousands alive at a time (pending steps and their tuples): each
    automatic collection scans them, promotes them to the older generations, and every
    few replications that triggers a full collection of the whole process. Pausing the
    collector saved about a tenth of a 100k-lead replication in the loop, and most of
    the cost of scheduling the pick-ups before it. It is restored as it was, even on error.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class World:
    """Shared state of one run; see the module docstring."""

    def __init__(self, scenario: Scenario, streams: Streams, recorder: Recorder, origin: float = 0.0) -> None:
        """``origin``: the day the reported run starts (after a warm start's burn-in, else 0); the
        starting AEs' attrition begins then, so the team on that day is ``sales.ae.count``."""
        self.origin = origin
        # A pipeline start's burn-in: sales' side before origin is the CRM's history (see _sell).
        self.sales_from = origin if scenario.start_mode == "pipeline" else 0.0
        # Rates given as distributions are drawn once, here: one value per replication.
        sc, self.parameters = draw_parameters(scenario, lambda path: streams.rng("parameters", path))
        self.sc = sc
        self.env = Calendar()
        self.rec = recorder
        self.horizon = sc.horizon_days
        self.persona_names = list(sc.personas)
        # "pipeline" only when the scenario has one, so results without it keep their categories.
        self.source_names = [*sc.sources, PROSPECTING, *([PIPELINE] if sc.initial_pipeline is not None else [])]
        self._streams = streams

        # Attributes of the leads in the event loop after their first pass, or created in it,
        # by lead id (dicts: cheap scalar access per event). The fast engine's MQLs start in
        # self.own (FirstPass) and are copied here only if they are recycled (adopt).
        self.n_leads = 0
        self._drawn: dict[str, np.ndarray] = {}  # traits of the first leads, drawn as arrays
        self._new_source: list[int] = []  # sources of the leads created during the run
        self.persona: dict[int, int] = {}
        self.fit: dict[int, float] = {}
        self.engagement: dict[int, float] = {}
        self.response: dict[int, float] = {}
        self.need: dict[int, bool] = {}
        self.recycles: dict[int, int] = {}  # only leads recycled at least once
        # Draws made per lead before the run (fast engine): a lead's first way through the
        # hand-off and sales uses its own, so adding leads elsewhere does not change its fate
        # (common random numbers across volumes). Recycled passes and prospected deals draw
        # from the shared streams below.
        self.own = FirstPass.empty()

        h, s = sc.handoff, sc.sales
        self.follow_up_rate = rate(h.follow_up_rate)
        self.recycle_probability = rate(sc.recycling.probability)
        self.opportunity_rate = rate(s.opportunity_rate)
        self.win_rate = rate(s.win_rate)
        # Scenario values read per event, looked up once (pydantic attribute access is slow).
        self.sql_rule = sc.qualification.sql
        # Per source index: sales accepts its reached leads with a need, whatever their score
        # (``qualified_by = "source"``); prospected and pipeline deals never meet an SDR.
        self.by_source = [source.qualified_by == "source" for source in sc.sources.values()]
        self.by_source += [False] * (len(self.source_names) - len(self.by_source))
        self.max_recycles = sc.recycling.max_times
        self.engagement_kept = sc.recycling.engagement_kept
        self.queue_by_score = s.queue == "score"
        self.fit_effect = s.fit_effect
        self._log = recorder.add
        self._open_streams(sc, streams)

        self.sdr = SlotPool(self.env, "sdr", recorder)
        self.ae = SlotPool(self.env, "ae", recorder)
        self.ae_productivity: list[float] = []
        self.ae_left: list[bool] = []
        # The AEs with productivity > 0, by id: the reps prospecting picks from, kept
        # sorted as reps join, ramp up and leave rather than listed at every candidate.
        self.ae_active: list[int] = []
        self._staff_changed = self.env.event()
        for _ in range(h.sdr.count):
            rep = self.sdr.add_rep(1)
            recorder.roster.append((0.0, "sdr", rep, "joined", 1.0))
        if SdrStaffing.needed(h.sdr):
            # Its own stream: SDR tenures shift no other draw of the replication.
            staffing = SdrStaffing(
                self.env, self.sdr, h.sdr, sc.start_date, streams.rng("sdr_staffing"), recorder.roster
            )
            staffing.start(list(range(h.sdr.count)), self.origin)
        self._start_sales_team()
        self._keep_hours(sc, origin)
        if sc.prospecting.opportunities_per_ae_per_month > 0:
            self.env.process(self._prospect())

    def _open_streams(self, sc: Scenario, streams: Streams) -> None:
        """The shared random streams of the event loop, one per purpose (buffered draws)."""
        h, s = sc.handoff, sc.sales
        self.follow_up = buffered(None, streams.rng("follow_up"))
        self.response_delay = buffered(h.response_delay_days, streams.rng("response_delay"))
        self.sdr_work = buffered(h.sdr.work_days, streams.rng("sdr_work"))
        self.sdr_patience = buffered(h.sdr.patience_days, streams.rng("sdr_patience")) if h.sdr.patience_days else None
        self.contact = buffered(None, streams.rng("contact"))
        self.contact_curve = ContactCurve(h.speed_to_lead)
        self.recycle_draw = buffered(None, streams.rng("recycle"))
        self.renurture_gap = buffered(sc.nurture.touch_interval_days, streams.rng("renurture"))
        self.accept = buffered(None, streams.rng("opportunity"))
        self.ae_patience = buffered(s.patience_days, streams.rng("ae_patience")) if s.patience_days else None
        self.cycle = buffered(s.cycle_days, streams.rng("cycle"))
        self.win = buffered(None, streams.rng("win"))
        self.deal_size = [
            buffered(s.deal_size_by_persona.get(p, s.deal_size), streams.rng("deal_size", p))
            for p in self.persona_names
        ]
        self.staffing = streams.rng("staffing")
        self.prospect_gap = streams.rng("prospecting_gap")
        self.prospect_draw = buffered(None, streams.rng("prospecting"))
        self.prospect_fit = buffered(sc.prospecting.fit, streams.rng("prospecting_fit"))

    # -- leads ----------------------------------------------------------------
    def add_leads(
        self, traits: dict[str, np.ndarray], engagement: np.ndarray, active: np.ndarray, draws: dict[str, np.ndarray]
    ) -> None:
        """Leads drawn as arrays (before any other): all count, the ``active`` ones enter the event loop.

        ``traits`` holds ``source, persona, fit, response, need`` per lead; ``engagement``
        is each lead's engagement when it leaves nurture. ``active`` is in feed order: the
        position of a lead in it is its ``k`` (:class:`FirstPass`), and ``draws`` holds
        the :data:`LEAD_DRAWS` of the active leads in that order (but a patience without
        a distribution).
        """
        self._drawn = {key: traits[key] for key in ("source", "persona", "fit", "need")}
        self.n_leads = len(traits["fit"])
        rule = self.sql_rule
        need, fit, kept = traits["need"][active], traits["fit"][active], engagement[active]
        by_source = np.array(self.by_source, dtype=bool)[traits["source"][active]]
        self.own = FirstPass(
            {
                "persona": traits["persona"][active].tolist(),
                "fit": fit.tolist(),
                "engagement": kept.tolist(),
                "response": traits["response"][active].tolist(),
                "need": need.tolist(),
            },
            {name: draws[name].tolist() for name in LEAD_DRAWS if name in draws and name not in BEFORE_RUN},
            {
                "qualified": (need & (by_source | (score(rule, fit, kept) >= rule.threshold))).tolist(),
                "win_probability": win_probability(self.win_rate, self.fit_effect, fit).tolist(),
            },
        )

    def adopt(self, lead: int, k: int) -> None:
        """Copy a fed lead's traits from its first pass (``self.own``) to the dicts, for the passes after it."""
        own = self.own
        self.persona[lead] = own.persona[k]
        self.fit[lead] = own.fit[k]
        self.engagement[lead] = own.engagement[k]
        self.response[lead] = own.response[k]
        self.need[lead] = own.need[k]

    def open_pipeline(self) -> None:
        """The deals of ``initial_pipeline``, open on the start date (call before the run starts).

        Each deal holds a slot of one of the starting AEs (:func:`assign_owners`), even
        beyond the AE's ``max_open_opportunities``: a rep over the cap keeps its deals
        and takes no new ones until it is back under. It closes after the time still to
        go of a cycle that has lasted ``age_days`` (``cycle_days - a`` given
        ``cycle_days > a``, by inverse transform) and is won with the win probability
        of its fit. Every draw comes from the streams ``"pipeline", <quantity>``, deal
        ``i`` taking element ``i``: a scenario without a pipeline draws nothing more,
        and adding deals at the end of the file leaves the others' fates unchanged.
        """
        deals = self.sc.open_deals
        if not deals:
            return
        n, sc, s = len(deals), self.sc, self.sc.sales
        rng = self._streams.rng
        age = np.array([d.age_days for d in deals], dtype=float)
        remaining = s.cycle_days.remaining_after(age, 1.0 - rng("pipeline", "remaining").random(n))
        win = rng("pipeline", "win").random(n)
        drawn_fit = sc.prospecting.fit.sample(rng("pipeline", "fit"), n)
        persona = np.array([self.persona_names.index(d.persona) for d in deals])
        drawn_size = np.zeros(n)
        for index, name in enumerate(self.persona_names):
            mine = persona == index
            if mine.any():
                spec = s.deal_size_by_persona.get(name, s.deal_size)
                drawn_size[mine] = spec.sample(rng("pipeline", "deal_size", name), n)[mine]
        reps = assign_owners([d.owner for d in deals], s.ae.count)
        source = self.source_names.index(PIPELINE)
        for i, deal in enumerate(deals):
            fit = float(drawn_fit[i]) if deal.fit is None else deal.fit
            amount = float(drawn_size[i]) if deal.deal_size is None else deal.deal_size
            lead = self.new_lead(source, int(persona[i]), fit, 0.0, 1.0, True)
            self.rec.event(self.sales_from, lead, E["opportunity"], reps[i], amount)
            self.ae.take(reps[i])  # from day 0: before a pipeline start no deal reaches the AEs anyway
            p_win = float(win_probability(self.win_rate, self.fit_effect, fit))
            close = self.sales_from + float(remaining[i])
            Step(self.env, close, self._close, (lead, reps[i], amount, (float(win[i]), p_win)))

    def new_lead(self, source: int, persona: int, fit: float, engagement: float, response: float, need: bool) -> int:
        lead = self.n_leads
        self.n_leads += 1
        self._new_source.append(source)
        self.persona[lead] = persona
        self.fit[lead] = fit
        self.engagement[lead] = engagement
        self.response[lead] = response
        self.need[lead] = need
        return lead

    def attributes(self) -> dict[str, np.ndarray]:
        first = len(self._drawn.get("fit", ()))
        later = range(first, self.n_leads)

        def column(name: str, values: dict[int, Any] | list[int], dtype: type) -> np.ndarray:
            drawn = self._drawn.get(name, np.array([], dtype=dtype))
            new = values if isinstance(values, list) else [values[i] for i in later]
            return np.concatenate([drawn.astype(dtype), np.array(new, dtype=dtype)])

        recycles = np.zeros(self.n_leads, dtype=np.int16)
        recycles[list(self.recycles)] = list(self.recycles.values())
        return {
            "source": column("source", self._new_source, np.int16),
            "persona": column("persona", self.persona, np.int16),
            "fit": column("fit", self.fit, float),
            "has_need": column("need", self.need, bool),
            "recycles": recycles,
        }

    def close(self) -> None:
        """Drop what only the run needed (pending steps, lead state), once :meth:`attributes` is taken.

        Pending steps and the rep pools refer back to the world, so without this the
        whole run would stay in memory as a cycle, while the tables are built, until the
        garbage collector finds it.
        """
        self.env._queue.clear()
        self.own = FirstPass.empty()
        self._drawn = {}
        for state in (self.persona, self.fit, self.engagement, self.response, self.need, self.recycles):
            state.clear()
        self._new_source = []

    def run(self, feed: tuple[list[float], Callable[[int], None]] | None = None) -> None:
        """Run the event loop to the horizon, with Python's cyclic garbage collector paused;
        ``feed``: calls at times known before the run (:meth:`Calendar.run_to`)."""
        with gc_paused():
            self.env.run_to(self.horizon, feed)

    # -- working hours --------------------------------------------------------
    def _keep_hours(self, sc: Scenario, origin: float) -> None:
        """The teams' working hours (a ``[calendar]`` and a team's ``working_hours``; None: around the
        clock): each team's desk is open only in them (:meth:`SlotPool.set_open`)."""
        self.sdr_clock = clock_of(sc, "sdr", origin)
        self.ae_clock = clock_of(sc, "ae", origin)
        h = sc.handoff
        self.response_clock = self.sdr_clock if h.response_clock == "working" else None
        self.contact_clock = self.sdr_clock if h.speed_to_lead_clock == "working" else None
        for pool, clock in ((self.sdr, self.sdr_clock), (self.ae, self.ae_clock)):
            if clock is not None:
                self._open_and_close(pool, clock)

    def _open_and_close(self, pool: SlotPool, clock: WorkingTime) -> None:
        """Open and close ``pool`` at the team's hours, one step to the next boundary at a time.

        An opening is urgent: a lead picked up, or a rep freed, at the very moment the desk
        opens finds it open.
        """
        changes = [(t, opening) for t, opening in clock.boundaries() if 0.0 < t < self.horizon]
        pool.open = bool(clock.is_open(0.0))

        def toggle(step: Step) -> None:
            i = step.carried
            pool.set_open(changes[i][1])
            if i + 1 < len(changes):
                StepAt(self.env, changes[i + 1][0], toggle, i + 1, URGENT if changes[i + 1][1] else NORMAL)

        if changes:
            StepAt(self.env, changes[0][0], toggle, 0, URGENT if changes[0][1] else NORMAL)

    # -- hand-off -------------------------------------------------------------
    def mql(self, lead: int) -> bool:
        """A lead reaches marketing's bar again (recycled, or in the reference model): True if
        sales will follow it up (:meth:`respond`). Fed leads' first pass: see ``fast._hand_over``."""
        now = self.env._now
        self._log((now, lead, MQL_CODE, -1, NAN))
        if self.follow_up() >= self.follow_up_rate:
            self._log((now, lead, E["not_followed_up"], -1, NAN))
            return False
        return True

    def respond(self, lead: int, mql_time: float) -> None:
        """Sales picks the MQL up after its response delay, drawn now from the shared stream (in the
        SDR team's working time with ``response_clock = "working"``)."""
        clock = self.response_clock
        if clock is None:
            Step(self.env, self.response_delay(), self.pick_up, (lead, mql_time, -1))
        else:
            StepAt(self.env, clock.after_one(self.env._now, self.response_delay()), self.pick_up, (lead, mql_time, -1))

    def soon(self, fn: Callable[..., None], *args: Any) -> None:
        """Call ``fn(*args)`` in an urgent step at this time: where a new SimPy process would start.

        A process starts in an urgent event scheduled when it is created; doing the
        same keeps the order of events that tie in time as it would be with a process.
        """
        Step(self.env, 0, lambda _: fn(*args), None, URGENT)

    def pick_up(self, step: Step) -> None:
        """Sales picks an MQL up: an SDR starts on it now if one is free, else it queues."""
        self.picked_up(*step.carried)

    def picked_up(self, lead: int, mql_time: float, k: int) -> None:
        """The pick-up itself: from a step (:meth:`pick_up`) or the first pass's feed (``fast._hand_over``)."""
        rep = self.sdr.acquire()
        if rep >= 0:
            self._sdr_start(lead, mql_time, k, rep)
            return
        self._log((self.env._now, lead, E["sdr_queued"], -1, NAN))
        patience = None
        if self.sdr_patience is not None:
            patience = self.own.sdr_patience[k] if k >= 0 else self.sdr_patience()
        self.sdr.request(lead, 0.0, patience, self._sdr_served, (mql_time, k))

    def _sdr_served(self, req: Request) -> None:
        mql_time, k = req.carried
        self._sdr_start(req.lead, mql_time, k, req.rep)

    def _sdr_start(self, lead: int, mql_time: float, k: int, rep: int | None) -> None:
        now = self.env._now
        if rep is None:
            self._log((now, lead, E["sdr_abandoned"], -1, NAN))
            return
        delay = now - mql_time
        self._log((now, lead, E["sdr_start"], rep, delay))
        work = self.own.sdr_work[k] if k >= 0 else self.sdr_work()
        clock = self.sdr_clock
        if clock is None:
            Step(self.env, work, self._sdr_done, (lead, rep, delay, k))
            return
        # An SDR works in its hours: the work is working time, and speed to lead reads the
        # buyer's elapsed time (or the desk's working time, speed_to_lead_clock = "working").
        if self.contact_clock is not None:
            delay = self.contact_clock.working_one(now) - self.contact_clock.working_one(mql_time)
        StepAt(self.env, clock.after_one(now, work), self._sdr_done, (lead, rep, delay, k))

    def _sdr_done(self, step: Step) -> None:
        lead, rep, delay, k = step.carried
        now = self.env._now
        self.sdr.release(rep)
        contact = self.own.contact[k] if k >= 0 else self.contact()
        if contact >= self.contact_curve(delay):
            self._log((now, lead, E["unreached"], rep, NAN))
            self._recycle_or_drop(lead, k)
            return
        qualified = self.own.qualified[k] if k >= 0 else self.need[lead] and self.passes_sales_bar(lead)
        if not qualified:
            self._log((now, lead, E["rejected"], rep, NAN))
            self._recycle_or_drop(lead, k)
            return
        self._log((now, lead, E["sql"], rep, NAN))
        self._sell(lead, k)

    def passes_sales_bar(self, lead: int) -> bool:
        """True if sales' bar lets a reached lead through, need aside, on a pass not decided
        before the run (a recycled one; every one in the reference model): its source
        qualifies it (``qualified_by = "source"``), or its score reaches sales' threshold."""
        if self.by_source[self.source_of(lead)]:
            return True
        rule = self.sql_rule
        return bool(score(rule, self.fit[lead], self.engagement[lead]) >= rule.threshold)

    def source_of(self, lead: int) -> int:
        """The index of a lead's source: drawn as arrays before the run, or created during it."""
        first = len(self._drawn.get("source", ()))
        return int(self._drawn["source"][lead]) if lead < first else self._new_source[lead - first]

    def _recycle_or_drop(self, lead: int, k: int) -> None:
        recycled = self.recycles.get(lead, 0)
        # The shared draw is made only while the lead may still be recycled: which draw of
        # the shared stream goes to which lead depends on it.
        if recycled < self.max_recycles and (
            (self.own.recycle[k] if k >= 0 else self.recycle_draw()) < self.recycle_probability
        ):
            if k >= 0:
                self.adopt(lead, k)
            self.recycles[lead] = recycled + 1
            self.engagement[lead] *= self.engagement_kept
            self._log((self.env._now, lead, E["recycled"], -1, NAN))
            self.renurture(lead)

    def renurture(self, lead: int) -> None:
        """A recycled lead back in nurture: one draw of its path, one timed step."""
        outcome, delay, engagement = nurture_one(
            self.renurture_gap,
            self.sc.nurture,
            self.sc.qualification.mql,
            self.fit[lead],
            self.engagement[lead],
            self.response[lead],
        )
        Step(self.env, delay, self._renurtured, (lead, outcome, engagement))

    def _renurtured(self, step: Step) -> None:
        lead, outcome, engagement = step.carried
        self.engagement[lead] = engagement
        if outcome != MQL:
            self._log((self.env._now, lead, E["dormant"], -1, NAN))
        elif self.mql(lead):
            self.respond(lead, self.env._now)

    # -- sales ----------------------------------------------------------------
    def _sell(self, lead: int, k: int) -> None:
        if self.env._now < self.sales_from:
            return  # handed to sales before a pipeline start: its fate is in the CRM history
        rep = self.ae.acquire()
        if rep >= 0:
            self._ae_start(lead, k, rep)
            return
        priority = 0.0
        if self.queue_by_score:
            own = k >= 0
            fit = self.own.fit[k] if own else self.fit[lead]
            engagement = self.own.engagement[k] if own else self.engagement[lead]
            priority = -score(self.sql_rule, fit, engagement)
        patience = None
        if self.ae_patience is not None:
            patience = self.own.ae_patience[k] if k >= 0 else self.ae_patience()
        self.ae.request(lead, priority, patience, self._ae_served, k)

    def _ae_served(self, req: Request) -> None:
        self._ae_start(req.lead, req.carried, req.rep)

    def _ae_start(self, lead: int, k: int, rep: int | None) -> None:
        if rep is None:
            self._log((self.env._now, lead, E["ae_abandoned"], -1, NAN))
            return
        if (self.own.accept[k] if k >= 0 else self.accept()) >= self.opportunity_rate:
            self._log((self.env._now, lead, E["disqualified"], rep, NAN))
            self.ae.release(rep)
            self._recycle_or_drop(lead, k)
            return
        self._deal(lead, rep, k)

    def _deal(self, lead: int, rep: int, k: int) -> None:
        own = self.own
        amount = own.deal_size[k] if k >= 0 else self.deal_size[self.persona[lead]]()
        self._log((self.env._now, lead, E["opportunity"], rep, amount))
        cycle = own.cycle[k] if k >= 0 else self.cycle()
        # The win draw and probability ride along when they are the lead's own; None: the
        # draw comes from the shared stream at close, as a process would make it.
        outcome = (own.win[k], own.win_probability[k]) if k >= 0 else None
        Step(self.env, cycle, self._close, (lead, rep, amount, outcome))

    def _close(self, step: Step) -> None:
        lead, rep, amount, outcome = step.carried
        self.ae.release(rep)
        if outcome is None:
            won = self.win() < win_probability(self.win_rate, self.fit_effect, self.fit[lead])
        else:
            won = outcome[0] < outcome[1]
        self._log((self.env._now, lead, E["won"] if won else E["lost"], rep, amount))

    # -- the sales team over time ---------------------------------------------
    def _start_sales_team(self) -> None:
        ae = self.sc.sales.ae
        for _ in range(ae.count):
            self._join(ramped=True, tenure_from=self.origin)
        for hire in ae.hires:
            day = (hire.date - self.sc.start_date).days
            self.env.process(self._hire_on(day, hire.count))

    def _hire_on(self, day: float, count: int) -> Process:
        yield self.env.timeout(day)
        for _ in range(count):
            self._join(ramped=False)

    def _join(self, ramped: bool, tenure_from: float = 0.0) -> None:
        ae = self.sc.sales.ae
        share = 1.0 if ramped else productivity(ae, 0)
        rep = self.ae.add_rep(slots(ae, share))
        self.ae_productivity.append(share)
        if share > 0:
            self.ae_active.append(rep)  # the highest id so far
        self.ae_left.append(False)
        self.rec.roster.append((self.env._now, "ae", rep, "joined", share))
        if not ramped and len(ae.ramp) > 1:
            self.env.process(self._ramp(rep))
        if ae.attrition_per_year > 0:
            self.env.process(self._tenure(rep, tenure_from))
        self._staff_changed.succeed()
        self._staff_changed = self.env.event()

    def _ramp(self, rep: int) -> Process:
        ae = self.sc.sales.ae
        for month in range(1, len(ae.ramp)):
            yield self.env.timeout(DAYS_PER_MONTH)
            if self.ae_left[rep]:
                return  # left before ramping up
            self._set_productivity(rep, productivity(ae, month), "ramp")

    def _tenure(self, rep: int, tenure_from: float) -> Process:
        ae = self.sc.sales.ae
        yield self.env.timeout(tenure_from + self.staffing.exponential(365.25 / ae.attrition_per_year))
        # A leaver takes no new deals; open ones are handed over and run to close.
        self.ae_left[rep] = True
        self._set_productivity(rep, 0.0, "left")
        if ae.backfill_days is not None:
            yield self.env.timeout(ae.backfill_days)
            self._join(ramped=False)

    def _set_productivity(self, rep: int, share: float, change: str) -> None:
        was = self.ae_productivity[rep]
        self.ae_productivity[rep] = share
        if (was > 0) != (share > 0):
            active = self.ae_active
            if share > 0:
                bisect.insort(active, rep)
            else:
                del active[bisect.bisect_left(active, rep)]
        self.rec.roster.append((self.env._now, "ae", rep, change, share))
        self.ae.set_slots(rep, slots(self.sc.sales.ae, share))

    def _prospect(self) -> Process:
        """Idle AEs source their own deals; a rep with full slots stops prospecting.

        Candidate times come at rate ``r * n_active``; a candidate is given to a
        random active rep and kept with probability ``productivity * free / slots``
        (thinning), so each rep prospects at ``r * productivity * free share``.
        """
        p = self.sc.prospecting
        rate = p.opportunities_per_ae_per_month / DAYS_PER_MONTH
        persona = self.persona_names.index(p.persona)
        source = self.source_names.index(PROSPECTING)
        active = self.ae_active  # kept up to date by _join and _set_productivity
        if self.sales_from:
            yield self.env.timeout(self.sales_from)  # deals sourced before a pipeline start are the CRM's
        while True:
            if not active:
                yield self._staff_changed
                continue
            yield self.env.timeout(self.prospect_gap.exponential(1 / (rate * len(active))))
            if not active:
                continue
            rep = active[min(int(self.prospect_draw() * len(active)), len(active) - 1)]
            total = self.ae.slots[rep]
            keep = self.ae_productivity[rep] * self.ae.free_slots[rep] / total if total else 0.0
            if self.prospect_draw() < keep:
                lead = self.new_lead(source, persona, self.prospect_fit(), 0.0, 1.0, True)
                self.rec.event(self.env._now, lead, E["created"])
                self.ae.take(rep)
                self.soon(self._deal, lead, rep, -1)
