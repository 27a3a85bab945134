"""The interacting part of the funnel, event by event: hand-off, SDRs, AEs, prospecting.

From the moment a lead becomes an MQL it competes with other leads for reps, so
it needs the event loop. :class:`World` holds the SimPy environment, the two rep
pools, the lead attributes and the random streams, and runs every mechanism after
nurture. The fast engine and the reference model differ only in how leads reach the
hand-off (array work vs. one process per lead, see :meth:`World.renurture`).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from ..mechanisms import ContactCurve, productivity, score, slots, win_probability
from ..randomness import Buffered, Streams
from ..records import EVENT_CODE, Recorder
from ..scenario import DAYS_PER_MONTH, Scenario, draw_parameters, rate
from .nurture import MQL, nurture_one
from .pools import SlotPool

PROSPECTING = "prospecting"

Process = Generator[simpy.Event, Any, None]

E = EVENT_CODE  # short alias for the per-event code below


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

        # Lead attributes, indexed by lead id (lists: cheap scalar access per event).
        self.source: list[int] = []
        self.persona: list[int] = []
        self.fit: list[float] = []
        self.engagement: list[float] = []
        self.response: list[float] = []
        self.need: list[bool] = []
        self.recycles: list[int] = []

        h, s = sc.handoff, sc.sales
        self.follow_up_rate = rate(h.follow_up_rate)
        self.recycle_probability = rate(sc.recycling.probability)
        self.opportunity_rate = rate(s.opportunity_rate)
        self.win_rate = rate(s.win_rate)
        self.follow_up = Buffered(None, streams.rng("follow_up"))
        self.response_delay = Buffered(h.response_delay_days, streams.rng("response_delay"))
        self.sdr_work = Buffered(h.sdr.work_days, streams.rng("sdr_work"))
        self.sdr_patience = Buffered(h.sdr.patience_days, streams.rng("sdr_patience")) if h.sdr.patience_days else None
        self.contact = Buffered(None, streams.rng("contact"))
        self.contact_curve = ContactCurve(h.speed_to_lead)
        self.recycle_draw = Buffered(None, streams.rng("recycle"))
        self.renurture_gap = Buffered(sc.nurture.touch_interval_days, streams.rng("renurture"))
        self.accept = Buffered(None, streams.rng("opportunity"))
        self.ae_patience = Buffered(s.patience_days, streams.rng("ae_patience")) if s.patience_days else None
        self.cycle = Buffered(s.cycle_days, streams.rng("cycle"))
        self.win = Buffered(None, streams.rng("win"))
        self.deal_size = [
            Buffered(s.deal_size_by_persona.get(p, s.deal_size), streams.rng("deal_size", p))
            for p in self.persona_names
        ]
        self.staffing = streams.rng("staffing")
        self.prospect_gap = streams.rng("prospecting_gap")
        self.prospect_draw = Buffered(None, streams.rng("prospecting"))
        self.prospect_fit = Buffered(sc.prospecting.fit, streams.rng("prospecting_fit"))

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
    def new_lead(self, source: int, persona: int, fit: float, engagement: float, response: float, need: bool) -> int:
        self.source.append(source)
        self.persona.append(persona)
        self.fit.append(fit)
        self.engagement.append(engagement)
        self.response.append(response)
        self.need.append(need)
        self.recycles.append(0)
        return len(self.fit) - 1

    def attributes(self) -> dict[str, np.ndarray]:
        return {
            "source": np.asarray(self.source, dtype=np.int16),
            "persona": np.asarray(self.persona, dtype=np.int16),
            "fit": np.asarray(self.fit, dtype=float),
            "has_need": np.asarray(self.need, dtype=bool),
            "recycles": np.asarray(self.recycles, dtype=np.int16),
        }

    def run(self) -> None:
        self.env.run(until=self.horizon)

    # -- hand-off -------------------------------------------------------------
    def mql(self, lead: int) -> None:
        """A lead reaches marketing's bar now: sales follows it up, or never does."""
        now = self.env.now
        self.rec.event(now, lead, E["mql"])
        if self.follow_up() >= self.follow_up_rate:
            self.rec.event(now, lead, E["not_followed_up"])
            return
        self.env.process(self._handoff(lead, now))

    def _handoff(self, lead: int, mql_time: float) -> Process:
        env, rec, sc = self.env, self.rec, self.sc
        yield env.timeout(self.response_delay())
        rep = self.sdr.acquire()
        if rep < 0:
            patience = self.sdr_patience() if self.sdr_patience else None
            rep = yield self.sdr.request(lead, 0.0, patience)
            if rep is None:
                rec.event(env.now, lead, E["sdr_abandoned"])
                return
        delay = env.now - mql_time
        rec.event(env.now, lead, E["sdr_start"], rep, delay)
        yield env.timeout(self.sdr_work())
        self.sdr.release(rep)
        if self.contact() >= self.contact_curve(delay):
            rec.event(env.now, lead, E["unreached"], rep)
            self._recycle_or_drop(lead)
            return
        rule = sc.qualification.sql
        if not self.need[lead] or score(rule, self.fit[lead], self.engagement[lead]) < rule.threshold:
            rec.event(env.now, lead, E["rejected"], rep)
            self._recycle_or_drop(lead)
            return
        rec.event(env.now, lead, E["sql"], rep)
        yield from self._sell(lead)

    def _recycle_or_drop(self, lead: int) -> None:
        r = self.sc.recycling
        if self.recycles[lead] < r.max_times and self.recycle_draw() < self.recycle_probability:
            self.recycles[lead] += 1
            self.engagement[lead] *= r.engagement_kept
            self.rec.event(self.env.now, lead, E["recycled"])
            self.env.process(self.renurture(lead))

    def renurture(self, lead: int) -> Process:
        """A recycled lead back in nurture: one draw of its path, one timeout."""
        outcome, delay, engagement = nurture_one(
            self.renurture_gap,
            self.sc.nurture,
            self.sc.qualification.mql,
            self.fit[lead],
            self.engagement[lead],
            self.response[lead],
        )
        yield self.env.timeout(delay)
        self.engagement[lead] = engagement
        if outcome == MQL:
            self.mql(lead)
        else:
            self.rec.event(self.env.now, lead, E["dormant"])

    # -- sales ----------------------------------------------------------------
    def _sell(self, lead: int) -> Process:
        env, s = self.env, self.sc.sales
        priority = 0.0
        if s.queue == "score":
            priority = -score(self.sc.qualification.sql, self.fit[lead], self.engagement[lead])
        rep = self.ae.acquire()
        if rep < 0:
            patience = self.ae_patience() if self.ae_patience else None
            rep = yield self.ae.request(lead, priority, patience)
            if rep is None:
                self.rec.event(env.now, lead, E["ae_abandoned"])
                return
        if self.accept() >= self.opportunity_rate:
            self.rec.event(env.now, lead, E["disqualified"], rep)
            self.ae.release(rep)
            self._recycle_or_drop(lead)
            return
        yield from self._deal(lead, rep)

    def _deal(self, lead: int, rep: int) -> Process:
        env, s = self.env, self.sc.sales
        amount = self.deal_size[self.persona[lead]]()
        self.rec.event(env.now, lead, E["opportunity"], rep, amount)
        yield env.timeout(self.cycle())
        self.ae.release(rep)
        won = self.win() < win_probability(self.win_rate, s.fit_effect, self.fit[lead])
        self.rec.event(env.now, lead, E["won"] if won else E["lost"], rep, amount)

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
                self.env.process(self._deal(lead, rep))
