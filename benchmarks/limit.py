"""The least work that computes a run's answer: a minimal event calendar (heapq) with vectorised draws.

    python benchmarks/limit.py [--scenario scenarios/baseline.toml] [--runs 200] [--set path=value ...]

A yardstick for the engine, not a second engine: it computes what a planner reads of a
run (leads, MQLs, SQLs, opportunities, wins and revenue, and revenue by month) with the
same model as :mod:`funnelsim.engine` and nothing else: no event log, no queue or
roster tables, no common random numbers across volumes, no warm start (it runs what a
cold or pipeline-at-day-0 scenario describes). It uses the model's own equations
(:mod:`funnelsim.model.mechanisms`: scores, contact curve, ramp, slots, win
probability) and distributions, so what differs from the engine is the machinery only:

- arrivals: Poisson counts per calendar month, uniform times within it (one draw per month
  and source, not an exponential gap per lead);
- nurture: all leads touch by touch as arrays, compacted as they finish;
- the rest: one heap of ``(time, priority, seq, kind, a, b)`` tuples and a dispatch on
  ``kind``; waiting leads go cold *lazily* (a lead whose patience ran out is dropped when a
  rep reaches it, which serves the same leads as an abandonment event per lead); per-event
  draws come from blocks of 4,096 drawn at once.

Run as a script it prints the limit's means over ``--runs`` replications beside the
engine's on the same scenario (``tests/test_limit.py`` checks that they agree within
their confidence intervals). ``benchmarks/engine.py`` times the two.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import heapq
import math
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

from funnelsim.model.distributions import Spec
from funnelsim.model.mechanisms import ContactCurve, calendar_months, productivity, score, slots, win_probability
from funnelsim.model.scenario import DAYS_PER_MONTH, Scenario, draw_parameters, rate

ROOT = Path(__file__).resolve().parent.parent
BLOCK = 4096
OUTPUTS = ("leads", "mqls", "sqls", "opportunities", "wins", "revenue")

# Event kinds, in the heap as (time, priority, seq, kind, a, b); priority 0 before 1 at a tie.
PICK_UP, SDR_DONE, CLOSE, RENURTURED, HIRE, RAMP, LEAVE, PROSPECT = range(8)


def draws(rng: np.random.Generator, spec: Spec | None = None) -> Callable[[], float]:
    """One value at a time from blocks drawn at once (uniforms without ``spec``)."""
    values: list[float] = []

    def next_value() -> float:
        if not values:
            block = rng.random(BLOCK) if spec is None else spec.sample(rng, BLOCK)
            values.extend(block[::-1].tolist())
        return values.pop()

    return next_value


def arrivals(sc: Scenario, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every lead of every source: time, source, fit, engagement, response and need, sorted by time."""
    months = calendar_months(sc.start_date, sc.horizon_days)
    intent = np.array([p.buying_intent for p in sc.personas.values()])
    response = np.array([p.engagement_response for p in sc.personas.values()])
    names = list(sc.personas)
    parts = []
    for index, source in enumerate(sc.sources.values()):
        times = []
        for t0, t1, _ in months:
            day = sc.start_date + dt.timedelta(days=t0)
            n = rng.poisson(source.leads_per_day_mean * source.volume_factor(day.year, day.month) * (t1 - t0))
            times.append(t0 + (t1 - t0) * rng.random(n))
        time = np.concatenate(times)
        n = len(time)
        mix = np.array([source.persona_mix.get(p, 0.0) for p in names])
        persona = rng.choice(len(names), size=n, p=mix / mix.sum())
        parts.append(
            {
                "time": time,
                "source": np.full(n, index),
                "fit": source.fit.sample(rng, n),
                "engagement": source.initial_engagement.sample(rng, n),
                "response": response[persona],
                "need": rng.random(n) < intent[persona],
                "persona": persona,
                "at_mql": np.full(n, source.entry_stage == "mql"),
            }
        )
    leads = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    order = np.argsort(leads["time"], kind="stable")
    return {key: value[order] for key, value in leads.items()}


def nurture(sc: Scenario, leads: dict[str, np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """MQL time of each lead (inf: dormant or still nurturing at the horizon) and its engagement then."""
    n, rule, nu = len(leads["time"]), sc.qualification.mql, sc.nurture
    mql_at = np.full(n, np.inf)
    e_all = leads["engagement"].copy()
    at_once = leads["at_mql"] | (score(rule, leads["fit"], e_all) >= rule.threshold)
    mql_at[at_once] = leads["time"][at_once]
    idx = np.flatnonzero(~at_once)
    t, e = leads["time"][idx].copy(), e_all[idx].copy()
    deadline = t + nu.max_nurture_days
    fit_part = rule.fit_weight * leads["fit"][idx]
    lift = nu.touch_lift * leads["response"][idx]
    while idx.size:
        gap = nu.touch_interval_days.sample(rng, idx.size)
        t += gap
        e *= np.exp2(-gap / nu.engagement_half_life_days)
        e = np.minimum(e + lift * (1.0 - e), 1.0)
        hit = (fit_part + rule.engagement_weight * e >= rule.threshold) & (t <= deadline)
        mql_at[idx[hit]], e_all[idx[hit]] = t[hit], e[hit]
        stay = ~hit & (t <= deadline) & (t < sc.horizon_days)
        idx, t, e, deadline, fit_part, lift = idx[stay], t[stay], e[stay], deadline[stay], fit_part[stay], lift[stay]
    mql_at[mql_at >= sc.horizon_days] = np.inf
    return mql_at, e_all


class Limit:
    """One replication's event loop; see the module docstring."""

    def __init__(self, scenario: Scenario, seed: int, replication: int = 0) -> None:
        self.rng = rng = np.random.default_rng([seed, replication])
        self.sc = sc = draw_parameters(scenario, lambda path: rng)[0]
        h, s = sc.handoff, sc.sales
        self.heap: list[tuple] = []
        self.seq = 0
        self.u = draws(rng)
        self.response_delay = draws(rng, h.response_delay_days)
        self.sdr_work = draws(rng, h.sdr.work_days)
        self.sdr_patience = draws(rng, h.sdr.patience_days) if h.sdr.patience_days else None
        self.ae_patience = draws(rng, s.patience_days) if s.patience_days else None
        self.cycle = draws(rng, s.cycle_days)
        self.gap = draws(rng, sc.nurture.touch_interval_days)
        self.deal_size = [draws(rng, s.deal_size_by_persona.get(p, s.deal_size)) for p in sc.personas]
        self.contact = ContactCurve(h.speed_to_lead)
        self.follow_up, self.recycle_p = rate(h.follow_up_rate), rate(sc.recycling.probability)
        self.accept_p, self.win_rate = rate(s.opportunity_rate), rate(s.win_rate)
        self.by_source = [src.qualified_by == "source" for src in sc.sources.values()]
        self.sdr_free, self.sdr_queue = h.sdr.count, deque()  # (lead, mql time, deadline)
        self.ae_slots: list[int] = []
        self.ae_busy: list[int] = []
        self.ae_prod: list[float] = []
        self.ae_active: list[int] = []  # reps with productivity > 0, by id
        self.ae_idle: list[tuple[int, int]] = []  # (-free slots, rep), stale entries skipped
        self.ae_queue: list[tuple] = []  # (priority, seq, lead, deadline)
        self.prospect_waiting = False
        self.now = 0.0
        self.reached = {name: set() for name in ("mqls", "sqls", "opportunities")}
        self.wins, self.revenue, self.leads = 0, 0.0, 0
        edges = [t0 for t0, _, _ in calendar_months(sc.start_date, sc.horizon_days)]
        self.month_edges = edges
        self.monthly = [0.0] * len(edges)

    # -- the calendar ---------------------------------------------------------
    def at(self, time: float, kind: int, a: object = None, b: object = None, priority: int = 1) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (time, priority, self.seq, kind, a, b))

    def run(self) -> dict[str, float]:
        sc = self.sc
        leads = arrivals(sc, self.rng)
        self.leads = len(leads["time"])
        self.fit = leads["fit"].tolist()
        self.need = leads["need"].tolist()
        self.source = leads["source"].tolist()
        self.persona = leads["persona"].tolist()
        self.response = leads["response"].tolist()
        mql_at, engagement = nurture(sc, leads, self.rng)
        self.engagement = engagement.tolist()
        self.p_win = win_probability(self.win_rate, sc.sales.fit_effect, leads["fit"]).tolist()
        self.recycles: dict[int, int] = {}
        mql = np.flatnonzero(np.isfinite(mql_at))
        self.reached["mqls"].update(mql.tolist())
        followed = mql[self.rng.random(mql.size) < self.follow_up]
        pick_up = mql_at[followed] + sc.handoff.response_delay_days.sample(self.rng, followed.size)
        order = np.argsort(pick_up, kind="stable")
        # The first pick-ups are known before the run: a sorted list merged with the heap
        # (which then holds only what the run schedules) rather than pushed into it.
        first = (pick_up[order].tolist(), followed[order].tolist(), mql_at[followed][order].tolist())
        self._start_sales_team()
        self._loop(sc.horizon_days, *first)
        return {
            "leads": self.leads,
            **{name: len(hit) for name, hit in self.reached.items()},
            "wins": self.wins,
            "revenue": self.revenue,
        }

    def _loop(self, horizon: float, times: list[float], leads: list[int], mql_times: list[float]) -> None:
        heap, pop = self.heap, heapq.heappop
        handlers = (
            self._pick_up,
            self._sdr_done,
            self._close,
            self._renurtured,
            self._hire,
            self._ramp,
            self._leave,
            self._prospect,
        )
        times.append(math.inf)
        i = 0
        while True:
            t = times[i]
            if heap and heap[0][0] <= t:
                if heap[0][0] >= horizon:
                    return
                self.now, _, _, kind, a, b = pop(heap)
                handlers[kind](a, b)
            elif t < horizon:
                self.now = t
                self._pick_up(leads[i], mql_times[i])
                i += 1
            else:
                return

    # -- SDRs -----------------------------------------------------------------
    def _pick_up(self, lead: int, mql_time: float) -> None:
        if self.sdr_free and not self.sdr_queue:
            self.sdr_free -= 1
            self._sdr_start(lead, mql_time)
        else:
            patience = self.sdr_patience() if self.sdr_patience else math.inf
            self.sdr_queue.append((lead, mql_time, self.now + patience))

    def _sdr_start(self, lead: int, mql_time: float) -> None:
        self.at(self.now + self.sdr_work(), SDR_DONE, lead, self.now - mql_time)

    def _sdr_done(self, lead: int, delay: float) -> None:
        queue, now = self.sdr_queue, self.now
        while queue and queue[0][2] < now:  # went cold while waiting
            queue.popleft()
        if queue:
            waiting, mql_time, _ = queue.popleft()
            self._sdr_start(waiting, mql_time)
        else:
            self.sdr_free += 1
        if self.u() >= self.contact(delay):
            self._recycle(lead)
            return
        sql = self.sc.qualification.sql
        if self.need[lead] and (
            self.by_source[self.source[lead]] or score(sql, self.fit[lead], self.engagement[lead]) >= sql.threshold
        ):
            self.reached["sqls"].add(lead)
            self._sell(lead)
        else:
            self._recycle(lead)

    def _recycle(self, lead: int) -> None:
        done = self.recycles.get(lead, 0)
        if done >= self.sc.recycling.max_times or self.u() >= self.recycle_p:
            return
        self.recycles[lead] = done + 1
        e = self.engagement[lead] * self.sc.recycling.engagement_kept
        nu, rule = self.sc.nurture, self.sc.qualification.mql
        fit_part, elapsed, lift = rule.fit_weight * self.fit[lead], 0.0, nu.touch_lift * self.response[lead]
        while fit_part + rule.engagement_weight * e < rule.threshold:
            gap = self.gap()
            elapsed += gap
            if elapsed > nu.max_nurture_days:
                return
            e *= math.exp2(-gap / nu.engagement_half_life_days)
            e = min(e + lift * (1.0 - e), 1.0)
        self.engagement[lead] = e
        self.at(self.now + elapsed, RENURTURED, lead)

    def _renurtured(self, lead: int, _: object) -> None:
        self.reached["mqls"].add(lead)
        if self.u() < self.follow_up:
            self.at(self.now + self.response_delay(), PICK_UP, lead, self.now)

    # -- AEs ------------------------------------------------------------------
    def _best_ae(self) -> int:
        idle, busy, cap = self.ae_idle, self.ae_busy, self.ae_slots
        while idle:
            free, rep = idle[0]
            if cap[rep] - busy[rep] == -free:
                return rep
            heapq.heappop(idle)
        return -1

    def _set_busy(self, rep: int, delta: int) -> None:
        self.ae_busy[rep] += delta
        free = self.ae_slots[rep] - self.ae_busy[rep]
        if free > 0:
            heapq.heappush(self.ae_idle, (-free, rep))

    def _sell(self, lead: int) -> None:
        rep = -1 if self.ae_queue else self._best_ae()
        if rep >= 0:
            self._ae_start(lead, rep)
            return
        s = self.sc.sales
        priority = -score(self.sc.qualification.sql, self.fit[lead], self.engagement[lead]) if s.queue == "score" else 0
        patience = self.ae_patience() if self.ae_patience else math.inf
        self.seq += 1
        heapq.heappush(self.ae_queue, (priority, self.seq, lead, self.now + patience))

    def _ae_start(self, lead: int, rep: int) -> None:
        self._set_busy(rep, 1)
        if self.u() >= self.accept_p:
            self._release(rep)
            self._recycle(lead)
            return
        self._deal(lead, rep)

    def _deal(self, lead: int, rep: int) -> None:
        self.reached["opportunities"].add(lead)
        amount = self.deal_size[self.persona[lead]]()
        self.at(self.now + self.cycle(), CLOSE, (lead, rep), amount)

    def _release(self, rep: int) -> None:
        self._set_busy(rep, -1)
        queue, now = self.ae_queue, self.now
        while queue and (rep := self._best_ae()) >= 0:
            _, _, lead, deadline = heapq.heappop(queue)
            if deadline >= now:
                self._ae_start(lead, rep)

    def _close(self, deal: tuple[int, int], amount: float) -> None:
        lead, rep = deal
        self._release(rep)
        if self.u() < self.p_win[lead]:
            self.wins += 1
            self.revenue += amount
            self.monthly[max(0, bisect.bisect_right(self.month_edges, self.now) - 1)] += amount

    # -- the sales team -------------------------------------------------------
    def _start_sales_team(self) -> None:
        ae, sc = self.sc.sales.ae, self.sc
        for _ in range(ae.count):
            self._join(True)
        for hire in ae.hires:
            self.at((hire.date - sc.start_date).days, HIRE, hire.count, None, 0)
        if sc.prospecting.opportunities_per_ae_per_month > 0:
            self.prospect_rate = sc.prospecting.opportunities_per_ae_per_month / DAYS_PER_MONTH
            self.prospect_fit = draws(self.rng, sc.prospecting.fit)
            self._prospect(False, None)
        self._pipeline()

    def _join(self, ramped: bool) -> None:
        ae = self.sc.sales.ae
        share = 1.0 if ramped else productivity(ae, 0)
        rep = len(self.ae_slots)
        self.ae_slots.append(slots(ae, share))
        self.ae_busy.append(0)
        self.ae_prod.append(share)
        if share > 0:
            self.ae_active.append(rep)
        self._set_busy(rep, 0)
        if not ramped and len(ae.ramp) > 1:
            self.at(self.now + DAYS_PER_MONTH, RAMP, rep, 1)
        if ae.attrition_per_year > 0:
            self.at(self.now + self.rng.exponential(365.25 / ae.attrition_per_year), LEAVE, rep)
        self._staffed()

    def _set_share(self, rep: int, share: float) -> None:
        if (self.ae_prod[rep] > 0) != (share > 0):
            if share > 0:
                bisect.insort(self.ae_active, rep)
            else:
                self.ae_active.remove(rep)
        self.ae_prod[rep] = share
        self.ae_slots[rep] = slots(self.sc.sales.ae, share)
        self._set_busy(rep, 0)
        queue, now = self.ae_queue, self.now
        while queue and (free := self._best_ae()) >= 0:
            _, _, lead, deadline = heapq.heappop(queue)
            if deadline >= now:
                self._ae_start(lead, free)
        self._staffed()

    def _hire(self, count: int, _: object) -> None:
        for _ in range(count):
            self._join(False)

    def _ramp(self, rep: int, month: int) -> None:
        ae = self.sc.sales.ae
        if self.ae_prod[rep] < 0:
            return  # left before ramping up
        self._set_share(rep, productivity(ae, month))
        if month + 1 < len(ae.ramp):
            self.at(self.now + DAYS_PER_MONTH, RAMP, rep, month + 1)

    def _leave(self, rep: int, _: object) -> None:
        self._set_share(rep, 0.0)
        self.ae_prod[rep] = -1.0  # left: ramp steps no longer apply
        if self.sc.sales.ae.backfill_days is not None:
            self.at(self.now + self.sc.sales.ae.backfill_days, HIRE, 1)

    def _staffed(self) -> None:
        if self.prospect_waiting:
            self.prospect_waiting = False
            self._prospect(False, None)

    def _prospect(self, candidate: bool, _: object) -> None:
        """A candidate prospected deal (``candidate``), thinned as the engine does; then the next candidate."""
        active = self.ae_active
        if candidate and active:
            rep = active[min(int(self.u() * len(active)), len(active) - 1)]
            total = self.ae_slots[rep]
            keep = self.ae_prod[rep] * (total - self.ae_busy[rep]) / total if total else 0.0
            if self.u() < keep:
                lead = self._new_lead(self.sc.prospecting.persona, self.prospect_fit())
                self._set_busy(rep, 1)
                self._deal(lead, rep)
        if not active:
            self.prospect_waiting = True
            return
        self.at(self.now + self.rng.exponential(1 / (self.prospect_rate * len(active))), PROSPECT, True)

    def _new_lead(self, persona: str, fit: float) -> int:
        lead = len(self.fit)
        self.leads += 1
        self.fit.append(fit)
        self.persona.append(list(self.sc.personas).index(persona))
        self.engagement.append(0.0)
        self.need.append(True)
        self.source.append(0)  # never read: a prospected or pipeline deal meets no SDR
        self.response.append(1.0)
        self.p_win.append(float(win_probability(self.win_rate, self.sc.sales.fit_effect, fit)))
        return lead

    def _pipeline(self) -> None:
        """The open deals of an initial pipeline, at day 0, on the AE holding the fewest deals."""
        s, rng = self.sc.sales, self.rng
        for deal in self.sc.open_deals:
            fit = deal.fit if deal.fit is not None else float(self.sc.prospecting.fit.sample(rng, 1)[0])
            lead = self._new_lead(deal.persona, fit)
            self.leads -= 1  # opened before day 0: not a lead of the run, but an opportunity in it
            self.reached["opportunities"].add(lead)
            rep = min(range(len(self.ae_busy)), key=self.ae_busy.__getitem__)
            self._set_busy(rep, 1)
            size = deal.deal_size if deal.deal_size is not None else self.deal_size[self.persona[lead]]()
            left = float(s.cycle_days.remaining_after(np.array([deal.age_days]), 1.0 - rng.random(1))[0])
            self.at(left, CLOSE, (lead, rep), size)


def simulate_limit(scenario: Scenario, seed: int, replication: int = 0) -> dict[str, float]:
    """The headline outputs of one replication (:data:`OUTPUTS`), by the least-work model."""
    if scenario.handoff.sdr.hires or scenario.handoff.sdr.attrition_per_year > 0:
        raise NotImplementedError("the limit model keeps the SDR team fixed (no bundled scenario changes it)")
    if scenario.burns_in and scenario.burn_in_days:
        raise NotImplementedError("the limit model has no warm start: run it with start = 'cold' or burn_in_days = 0")
    return Limit(scenario, seed, replication).run()


def main() -> None:
    import pandas as pd

    from funnelsim import load_scenario, simulate, summary

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default=str(ROOT / "scenarios" / "baseline.toml"))
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    sc = load_scenario(args.scenario, ['start="cold"', *args.overrides])
    limit = pd.DataFrame([simulate_limit(sc, 1, i) for i in range(args.runs)])
    engine = pd.DataFrame([summary(simulate(sc, 1, i).events) for i in range(args.runs)])[list(OUTPUTS)]
    for name in OUTPUTS:
        a, b = limit[name], engine[name]
        half = 1.96 * math.hypot(a.std() / math.sqrt(len(a)), b.std() / math.sqrt(len(b)))
        print(
            f"{name:>14}: limit {a.mean():>14,.1f}  engine {b.mean():>14,.1f}  difference {a.mean() - b.mean():+,.1f} "
            f"(95% interval +-{half:,.1f})"
        )


if __name__ == "__main__":
    main()
