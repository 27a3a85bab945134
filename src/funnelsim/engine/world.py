"""The interacting part of the funnel, event by event: hand-off, SDRs, AEs, prospecting.

From the moment a lead becomes an MQL it competes with other leads for reps, so
it needs the event loop. :class:`World` holds the SimPy environment, the two rep
pools, the lead attributes and the random streams, and runs every mechanism after
nurture. The fast engine and the reference model differ only in how leads reach the
hand-off (array work vs. one process per lead, see :meth:`World.renurture`).

A lead's way through the hand-off and sales is a chain of :class:`Step` events,
each calling the next stage when it fires (response delay, SDR work, sales cycle),
rather than a SimPy process per lead: a lead waits for nothing but its own timer
or a rep, so a generator per lead would only add events (its start and its end)
and the cost of resuming it. Steps are scheduled at the same moments, times and
priorities as the process's timeouts would be, so every tie in time is broken as
it would be with one process per lead and the event log is the same.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy
from simpy.events import NORMAL, URGENT, EventPriority

from ..mechanisms import ContactCurve, productivity, score, slots, win_probability
from ..randomness import Streams, buffered
from ..records import EVENT_CODE, Recorder
from ..scenario import DAYS_PER_MONTH, Scenario, draw_parameters, rate
from .nurture import MQL, nurture_one
from .pools import SlotPool

PROSPECTING = "prospecting"

Process = Generator[simpy.Event, Any, None]

E = EVENT_CODE  # short alias for the per-event code below

# What each lead draws for itself, once, in the fast engine (see World.lead_draws).
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


class Step(simpy.Event):
    """A timeout that calls ``callback(self)`` when it fires: one step of a lead, without a process.

    ``value`` carries what the callback needs (the lead, its rep, ...).
    """

    def __init__(
        self,
        env: simpy.Environment,
        delay: float,
        callback: Callable[[simpy.Event], None],
        value: Any,
        priority: EventPriority = NORMAL,
    ) -> None:
        # Inlined Event.__init__ and succeed(), as simpy.Timeout does, for speed.
        self.env = env
        self.callbacks = [callback]
        self._value = value
        self._ok = True
        env.schedule(self, priority, delay)


def _carried(step: simpy.Event) -> Any:
    # What a Step carries, as Any: Event.value is typed Optional, which cannot be unpacked.
    return step.value


class World:
    """Shared state of one run; see the module docstring."""

    def __init__(self, scenario: Scenario, streams: Streams, recorder: Recorder) -> None:
        # Rates given as distributions are drawn once, here: one value per replication.
        sc, self.parameters = draw_parameters(scenario, lambda path: streams.rng("parameters", path))
        self.sc = sc
        self.env = simpy.Environment()
        self.rec = recorder
        self.horizon = sc.horizon_days
        self.persona_names = list(sc.personas)
        self.source_names = [*sc.sources, PROSPECTING]

        # Attributes of the leads in the event loop, by lead id (dicts: cheap scalar access
        # per event; a fast run loads only its MQLs, see add_leads).
        self.n_leads = 0
        self._drawn: dict[str, np.ndarray] = {}  # traits of the first leads, drawn as arrays
        self.source: dict[int, int] = {}
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
        self.lead_draws: dict[str, dict[int, float]] = {name: {} for name in LEAD_DRAWS}

        h, s = sc.handoff, sc.sales
        self.follow_up_rate = rate(h.follow_up_rate)
        self.recycle_probability = rate(sc.recycling.probability)
        self.opportunity_rate = rate(s.opportunity_rate)
        self.win_rate = rate(s.win_rate)
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

        self.sdr = SlotPool(self.env, "sdr", recorder)
        self.ae = SlotPool(self.env, "ae", recorder)
        self.ae_productivity: list[float] = []
        self.ae_left: list[bool] = []
        self._staff_changed = self.env.event()
        for _ in range(h.sdr.count):
            rep = self.sdr.add_rep(1)
            recorder.roster.append((0.0, "sdr", rep, "joined", 1.0))
        self._start_sales_team()
        if sc.prospecting.opportunities_per_ae_per_month > 0:
            self.env.process(self._prospect())

    # -- leads ----------------------------------------------------------------
    def add_leads(self, traits: dict[str, np.ndarray], engagement: np.ndarray, active: np.ndarray) -> None:
        """Leads drawn as arrays (before any other): all count, the ``active`` ones enter the event loop.

        ``traits`` holds ``source, persona, fit, response, need`` per lead and any of the
        :data:`LEAD_DRAWS`; ``engagement`` is each lead's engagement when it leaves nurture.
        """
        self._drawn = {key: traits[key] for key in ("source", "persona", "fit", "need")}
        self.n_leads = len(traits["fit"])
        ids = active.tolist()
        for name, values in (
            ("source", traits["source"]),
            ("persona", traits["persona"]),
            ("fit", traits["fit"]),
            ("engagement", engagement),
            ("response", traits["response"]),
            ("need", traits["need"]),
        ):
            getattr(self, name).update(zip(ids, values[active].tolist(), strict=True))
        for name in LEAD_DRAWS:
            if name in traits:
                self.lead_draws[name].update(zip(ids, traits[name][active].tolist(), strict=True))

    def draw(self, name: str, lead: int, shared: Callable[[], float]) -> float:
        """The lead's own draw ``name`` on its first pass, else the next draw of ``shared``."""
        own = self.lead_draws[name]
        if lead in own and lead not in self.recycles:
            return own[lead]
        return shared()

    def new_lead(self, source: int, persona: int, fit: float, engagement: float, response: float, need: bool) -> int:
        lead = self.n_leads
        self.n_leads += 1
        self.source[lead] = source
        self.persona[lead] = persona
        self.fit[lead] = fit
        self.engagement[lead] = engagement
        self.response[lead] = response
        self.need[lead] = need
        return lead

    def attributes(self) -> dict[str, np.ndarray]:
        first = len(self._drawn.get("fit", ()))
        later = range(first, self.n_leads)

        def column(name: str, values: dict[int, Any], dtype: type) -> np.ndarray:
            drawn = self._drawn.get(name, np.array([], dtype=dtype))
            return np.concatenate([drawn.astype(dtype), np.array([values[i] for i in later], dtype=dtype)])

        recycles = np.zeros(self.n_leads, dtype=np.int16)
        recycles[list(self.recycles)] = list(self.recycles.values())
        return {
            "source": column("source", self.source, np.int16),
            "persona": column("persona", self.persona, np.int16),
            "fit": column("fit", self.fit, float),
            "has_need": column("need", self.need, bool),
            "recycles": recycles,
        }

    def run(self) -> None:
        self.env.run(until=self.horizon)

    # -- hand-off -------------------------------------------------------------
    def mql(self, lead: int) -> bool:
        """A lead reaches marketing's bar now: True if sales will follow it up (:meth:`respond`)."""
        now = self.env.now
        self.rec.event(now, lead, E["mql"])
        if self.draw("follow_up", lead, self.follow_up) >= self.follow_up_rate:
            self.rec.event(now, lead, E["not_followed_up"])
            return False
        return True

    def respond(self, lead: int, mql_time: float) -> None:
        """Sales picks the MQL up after its response delay, drawn now."""
        Step(self.env, self.draw("response_delay", lead, self.response_delay), self._pick_up, (lead, mql_time))

    def soon(self, fn: Callable[..., None], *args: Any) -> None:
        """Call ``fn(*args)`` in an urgent step at this time: where a new SimPy process would start.

        A process starts in an urgent event scheduled when it is created; doing the
        same keeps the order of events that tie in time as it would be with a process.
        """
        Step(self.env, 0, lambda _: fn(*args), None, URGENT)

    def _pick_up(self, step: simpy.Event) -> None:
        lead, mql_time = _carried(step)
        rep = self.sdr.acquire()
        if rep >= 0:
            self._sdr_start(lead, mql_time, rep)
            return
        patience = self.draw("sdr_patience", lead, self.sdr_patience) if self.sdr_patience else None
        self.sdr.request(lead, 0.0, patience).callbacks.append(lambda ev: self._sdr_start(lead, mql_time, ev.value))

    def _sdr_start(self, lead: int, mql_time: float, rep: int | None) -> None:
        now = self.env.now
        if rep is None:
            self.rec.event(now, lead, E["sdr_abandoned"])
            return
        delay = now - mql_time
        self.rec.event(now, lead, E["sdr_start"], rep, delay)
        Step(self.env, self.draw("sdr_work", lead, self.sdr_work), self._sdr_done, (lead, rep, delay))

    def _sdr_done(self, step: simpy.Event) -> None:
        lead, rep, delay = _carried(step)
        now = self.env.now
        self.sdr.release(rep)
        if self.draw("contact", lead, self.contact) >= self.contact_curve(delay):
            self.rec.event(now, lead, E["unreached"], rep)
            self._recycle_or_drop(lead)
            return
        rule = self.sc.qualification.sql
        if not self.need[lead] or score(rule, self.fit[lead], self.engagement[lead]) < rule.threshold:
            self.rec.event(now, lead, E["rejected"], rep)
            self._recycle_or_drop(lead)
            return
        self.rec.event(now, lead, E["sql"], rep)
        self._sell(lead)

    def _recycle_or_drop(self, lead: int) -> None:
        r = self.sc.recycling
        recycled = self.recycles.get(lead, 0)
        if recycled < r.max_times and self.draw("recycle", lead, self.recycle_draw) < self.recycle_probability:
            self.recycles[lead] = recycled + 1
            self.engagement[lead] *= r.engagement_kept
            self.rec.event(self.env.now, lead, E["recycled"])
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

    def _renurtured(self, step: simpy.Event) -> None:
        lead, outcome, engagement = _carried(step)
        self.engagement[lead] = engagement
        if outcome != MQL:
            self.rec.event(self.env.now, lead, E["dormant"])
        elif self.mql(lead):
            self.respond(lead, self.env.now)

    # -- sales ----------------------------------------------------------------
    def _sell(self, lead: int) -> None:
        s = self.sc.sales
        rep = self.ae.acquire()
        if rep >= 0:
            self._ae_start(lead, rep)
            return
        priority = 0.0
        if s.queue == "score":
            priority = -score(self.sc.qualification.sql, self.fit[lead], self.engagement[lead])
        patience = self.draw("ae_patience", lead, self.ae_patience) if self.ae_patience else None
        self.ae.request(lead, priority, patience).callbacks.append(lambda ev: self._ae_start(lead, ev.value))

    def _ae_start(self, lead: int, rep: int | None) -> None:
        if rep is None:
            self.rec.event(self.env.now, lead, E["ae_abandoned"])
            return
        if self.draw("accept", lead, self.accept) >= self.opportunity_rate:
            self.rec.event(self.env.now, lead, E["disqualified"], rep)
            self.ae.release(rep)
            self._recycle_or_drop(lead)
            return
        self._deal(lead, rep)

    def _deal(self, lead: int, rep: int) -> None:
        amount = self.draw("deal_size", lead, self.deal_size[self.persona[lead]])
        self.rec.event(self.env.now, lead, E["opportunity"], rep, amount)
        Step(self.env, self.draw("cycle", lead, self.cycle), self._close, (lead, rep, amount))

    def _close(self, step: simpy.Event) -> None:
        lead, rep, amount = _carried(step)
        self.ae.release(rep)
        s = self.sc.sales
        won = self.draw("win", lead, self.win) < win_probability(self.win_rate, s.fit_effect, self.fit[lead])
        self.rec.event(self.env.now, lead, E["won"] if won else E["lost"], rep, amount)

    # -- the sales team over time ---------------------------------------------
    def _start_sales_team(self) -> None:
        ae = self.sc.sales.ae
        for _ in range(ae.count):
            self._join(ramped=True)
        for hire in ae.hires:
            day = (hire.date - self.sc.start_date).days
            self.env.process(self._hire_on(day, hire.count))

    def _hire_on(self, day: float, count: int) -> Process:
        yield self.env.timeout(day)
        for _ in range(count):
            self._join(ramped=False)

    def _join(self, ramped: bool) -> None:
        ae = self.sc.sales.ae
        share = 1.0 if ramped else productivity(ae, 0)
        rep = self.ae.add_rep(slots(ae, share))
        self.ae_productivity.append(share)
        self.ae_left.append(False)
        self.rec.roster.append((self.env.now, "ae", rep, "joined", share))
        if not ramped and len(ae.ramp) > 1:
            self.env.process(self._ramp(rep))
        if ae.attrition_per_year > 0:
            self.env.process(self._tenure(rep))
        self._staff_changed.succeed()
        self._staff_changed = self.env.event()

    def _ramp(self, rep: int) -> Process:
        ae = self.sc.sales.ae
        for month in range(1, len(ae.ramp)):
            yield self.env.timeout(DAYS_PER_MONTH)
            if self.ae_left[rep]:
                return  # left before ramping up
            self._set_productivity(rep, productivity(ae, month), "ramp")

    def _tenure(self, rep: int) -> Process:
        ae = self.sc.sales.ae
        yield self.env.timeout(self.staffing.exponential(365.25 / ae.attrition_per_year))
        # A leaver takes no new deals; open ones are handed over and run to close.
        self.ae_left[rep] = True
        self._set_productivity(rep, 0.0, "left")
        if ae.backfill_days is not None:
            yield self.env.timeout(ae.backfill_days)
            self._join(ramped=False)

    def _set_productivity(self, rep: int, share: float, change: str) -> None:
        self.ae_productivity[rep] = share
        self.rec.roster.append((self.env.now, "ae", rep, change, share))
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
        while True:
            active = [rep for rep, share in enumerate(self.ae_productivity) if share > 0]
            if not active:
                yield self._staff_changed
                continue
            yield self.env.timeout(self.prospect_gap.exponential(1 / (rate * len(active))))
            active = [rep for rep, share in enumerate(self.ae_productivity) if share > 0]
            if not active:
                continue
            rep = active[min(int(self.prospect_draw() * len(active)), len(active) - 1)]
            total = self.ae.slots[rep]
            keep = self.ae_productivity[rep] * self.ae.free_slots[rep] / total if total else 0.0
            if self.prospect_draw() < keep:
                lead = self.new_lead(source, persona, self.prospect_fit(), 0.0, 1.0, True)
                self.rec.event(self.env.now, lead, E["created"])
                self.ae.take(rep)
                self.soon(self._deal, lead, rep)
