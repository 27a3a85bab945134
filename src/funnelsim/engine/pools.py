"""A team of reps as a pool of slots, with a queue of leads waiting for one.

An AE is a resource with a limited number of open opportunities; an SDR is one
with a single slot (one lead worked at a time). Unlike ``simpy.Resource`` the
number of slots of each rep changes over time (new hires ramp up, leavers drop to
zero), and a waiting lead may go cold: it then *withdraws* its request, so no slot
is ever held by a lead that left (a known trap of SimPy models). Waiting with
abandonment is the M/M/c+G queue of call centres.

Every operation costs O(log n) in the number of reps and waiting leads, none a scan
over all reps: the reps with a free slot are kept in a heap keyed by (most free slots,
lowest id), the order in which they take leads, with lazy deletion (a rep's entry
is pushed again whenever its free slots change, and an entry that no longer matches
is dropped when it reaches the top).

A team with working hours (:mod:`funnelsim.model.workcal`) has its pool closed outside
them (:meth:`SlotPool.set_open`): a lead arriving then, or a rep freed then, waits for
the next opening, when the free reps take the waiting leads in queue order.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any

import simpy
from simpy.events import NORMAL, PENDING

from funnelsim.engine.recorder import Recorder
from funnelsim.engine.step import Step
from funnelsim.vocabulary import TEAMS


class Request(simpy.Event):
    """A lead waiting for a rep: the event that fires when a rep takes it, or its patience ends.

    ``rep`` (also its ``value``) is the rep that took the lead, ``None`` if it gave up first;
    ``carried`` is what the waiting lead's callback needs. The request is its own event, so a
    wait costs no other object; it fires as ``succeed`` would (now, normal priority).
    """

    def __init__(
        self, env: simpy.Environment, lead: int, callback: Callable[[Request], None] | None, carried: Any
    ) -> None:
        # Inlined Event.__init__ (see Step): a request is created per waiting lead.
        self.env = env
        self.callbacks = [callback] if callback is not None else []
        self._value = PENDING
        self.lead, self.carried, self.waiting = lead, carried, True
        self.rep: int | None = None

    def serve(self, rep: int | None) -> None:
        """Fire now with ``rep`` (``None``: the lead gave up): ``succeed(rep)``, inlined."""
        self.waiting = False
        self.rep = self._value = rep
        self._ok = True
        env = self.env
        heapq.heappush(env._queue, (env._now, NORMAL, next(env._eid), self))


class SlotPool:
    """Reps with slots; leads queue FIFO or by priority (lower key first).

    ``request`` returns a :class:`Request`, an event whose value is the rep id that took the
    lead, or ``None`` when the lead's patience ran out first.
    """

    def __init__(self, env: simpy.Environment, team: str, recorder: Recorder) -> None:
        self.env, self.team = env, TEAMS.index(team)  # the level log stores the team's index
        self._level = recorder.levels.extend  # one call per row (see Recorder.level)
        self.slots: list[int] = []
        self.busy: list[int] = []
        self.free_slots: list[int] = []  # max(slots - busy, 0) per rep
        # Reps with a free slot, best first: (-free slots, rep). An entry is current while
        # free_slots[rep] == -key; others are stale and dropped when they reach the top.
        # Every rep with a free slot has a current entry (pushed when its free slots change).
        self._idle: list[tuple[int, int]] = []
        self._queue: list[tuple[float, int, Request]] = []
        self._waiting = 0
        self._seq = itertools.count()
        # A rep whose slots drop below its open work (a leaver, a lower ramp step)
        # keeps that work until it finishes; capacity counts max(slots, busy) per rep,
        # so utilisation in_use / capacity never exceeds 1.
        self.capacity = 0
        self.in_use = 0
        self._free = 0  # sum of free slots: lets dispatch skip the heap when all are taken
        # Outside the team's working hours the desk is closed: nobody takes a lead, from the
        # queue or on arrival; slots still free up as work ends (see set_open).
        self.open = True

    # -- reps -------------------------------------------------------------
    def add_rep(self, slots: int) -> int:
        self.slots.append(0)
        self.busy.append(0)
        self.free_slots.append(0)
        self.set_slots(len(self.slots) - 1, slots)
        return len(self.slots) - 1

    def set_slots(self, rep: int, slots: int) -> None:
        self._update(rep, slots, self.busy[rep])
        self._changed()

    def _update(self, rep: int, slots: int, busy: int) -> None:
        old_slots, old_busy = self.slots[rep], self.busy[rep]
        self.capacity += max(slots, busy) - max(old_slots, old_busy)
        self.in_use += busy - old_busy
        free = max(slots - busy, 0)
        if free != self.free_slots[rep]:
            self._free += free - self.free_slots[rep]
            self.free_slots[rep] = free
            if free:
                self._push_idle(free, rep)
        self.slots[rep], self.busy[rep] = slots, busy

    def _push_idle(self, free: int, rep: int) -> None:
        idle = self._idle
        heapq.heappush(idle, (-free, rep))
        # Stale entries are at most one per push: rebuilt from the current free slots once
        # they outnumber the reps, the heap stays O(n) (amortised O(1) per push).
        if len(idle) > 2 * len(self.free_slots) + 64:
            idle[:] = [(-f, r) for r, f in enumerate(self.free_slots) if f]
            heapq.heapify(idle)

    @property
    def queue_length(self) -> int:
        return self._waiting

    # -- leads ------------------------------------------------------------
    def acquire(self) -> int:
        """A rep for a lead that arrives now, if one is free and nobody waits; else -1.

        Taking a free slot directly costs no SimPy event; only leads that must wait
        go through :meth:`request`.
        """
        if self._waiting or not self._free or not self.open:
            return -1
        # The rep with the most free slots takes the lead (ties: lowest id). It has a
        # free slot, so slots >= busy + 1 and its capacity max(slots, busy) is unchanged:
        # this is _update(rep, slots, busy + 1) with the terms that cancel left out.
        rep = self._best_rep()
        self.busy[rep] += 1
        free = self.free_slots[rep] - 1
        self.free_slots[rep] = free
        # The best rep's current entry is the heap's top: replace it by the new one.
        if free:
            heapq.heapreplace(self._idle, (-free, rep))
        else:
            heapq.heappop(self._idle)
        self._free -= 1
        self.in_use += 1
        self._level((self.env._now, self.team, 0, self.in_use, self.capacity))  # 0: nobody waits
        return rep

    def request(
        self,
        lead: int,
        priority: float = 0.0,
        patience: float | None = None,
        callback: Callable[[Request], None] | None = None,
        carried: Any = None,
    ) -> Request:
        """Queue ``lead``; ``callback(request)`` runs when a rep takes it or its patience ends."""
        req = Request(self.env, lead, callback, carried)
        heapq.heappush(self._queue, (priority, next(self._seq), req))
        self._waiting += 1
        if patience is not None:
            # A Step keys the heap as env.timeout(patience) would: same time, priority and order.
            Step(self.env, patience, self._abandon, req)
        self._changed()
        return req

    def take(self, rep: int) -> None:
        """A rep fills one of its own free slots directly (prospecting)."""
        self._update(rep, self.slots[rep], self.busy[rep] + 1)
        self._record()

    def release(self, rep: int) -> None:
        # _update(rep, slots, busy - 1) with the terms that cancel left out: a rep still
        # at or over its slots (a leaver, a lower ramp step) loses capacity, not a slot;
        # any other gets a free slot back.
        busy = self.busy[rep] - 1
        self.busy[rep] = busy
        self.in_use -= 1
        if busy >= self.slots[rep]:
            self.capacity -= 1
        else:
            free = self.free_slots[rep] + 1
            self.free_slots[rep] = free
            self._free += 1
            self._push_idle(free, rep)
        if self._waiting:
            self._changed()
        else:  # nobody to dispatch to: what _changed() would do
            if self._queue:
                self._queue.clear()
            self._level((self.env._now, self.team, 0, self.in_use, self.capacity))

    def _abandon(self, timer: Step) -> None:
        req: Request = timer.carried
        if req.waiting:
            # Withdraw the request: it stays in the heap but is skipped when popped.
            req.waiting = False
            self._waiting -= 1
            queue = self._queue
            if len(queue) > 2 * self._waiting + 64:
                # Mostly withdrawn requests: keep the waiting ones. Their keys (priority,
                # sequence number) are unique, so they are popped in the same order.
                queue[:] = [entry for entry in queue if entry[2].waiting]
                heapq.heapify(queue)
            req.serve(None)
            self._record()

    def set_open(self, is_open: bool) -> None:
        """Open or close the desk (working hours): on opening, the free reps take the waiting leads."""
        self.open = is_open
        if is_open and self._waiting:
            self._changed()

    def _changed(self) -> None:
        while self._waiting and self._free and self.open:
            rep = self._best_rep()
            _, _, req = heapq.heappop(self._queue)
            if not req.waiting:
                continue
            self._waiting -= 1
            self._update(rep, self.slots[rep], self.busy[rep] + 1)
            req.serve(rep)
        if not self._waiting:
            self._queue.clear()
        self._level((self.env._now, self.team, self._waiting, self.in_use, self.capacity))

    def _best_rep(self) -> int:
        """The rep with the most free slots, ties to the lowest id (call only when one is free)."""
        idle, free = self._idle, self.free_slots
        while True:
            key, rep = idle[0]
            if free[rep] == -key:
                return rep
            heapq.heappop(idle)  # stale

    def _record(self) -> None:
        self._level((self.env._now, self.team, self._waiting, self.in_use, self.capacity))
