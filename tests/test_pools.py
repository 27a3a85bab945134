"""The indexed rep pool (:class:`funnelsim.engine.pools.SlotPool`) against a linear-scan reference.

The pool keeps the reps with a free slot in a heap so that taking and releasing a slot
cost O(log n); these tests check, on random sequences of hires, capacity changes (ramp
steps, leavers), direct pick-ups, queued requests with and without patience, releases and
prospecting, that it picks the same rep at every step as the straightforward scan it
replaced (most free slots, ties to the lowest id), logs the same level rows, and never
leaks capacity.
"""

from __future__ import annotations

import heapq
import itertools
import typing
from typing import Any

import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from funnelsim.engine.pools import SlotPool
from funnelsim.engine.recorder import Recorder
from funnelsim.vocabulary import TEAMS


class _Request:
    def __init__(self, event: simpy.Event, lead: int) -> None:
        self.event, self.lead, self.waiting = event, lead, True


class LinearPool:
    """The pool as it was before issue 14: every pick a scan ``free.index(max(free))``."""

    def __init__(self, env: simpy.Environment, team: str, recorder: Recorder) -> None:
        self.env, self.team = env, TEAMS.index(team)
        self.levels = recorder.levels
        self.slots: list[int] = []
        self.busy: list[int] = []
        self.free_slots: list[int] = []
        self._queue: list[tuple[float, int, _Request]] = []
        self._waiting = 0
        self._seq = itertools.count()
        self.capacity = 0
        self.in_use = 0

    @property
    def queue_length(self) -> int:
        return self._waiting

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
        self.capacity += max(slots, busy) - max(self.slots[rep], self.busy[rep])
        self.in_use += busy - self.busy[rep]
        self.slots[rep], self.busy[rep], self.free_slots[rep] = slots, busy, max(slots - busy, 0)

    def acquire(self) -> int:
        if self._waiting or not any(self.free_slots):
            return -1
        rep = self.free_slots.index(max(self.free_slots))
        self._update(rep, self.slots[rep], self.busy[rep] + 1)
        self._record()
        return rep

    def request(self, lead: int, priority: float = 0.0, patience: float | None = None) -> simpy.Event:
        event = self.env.event()
        req = _Request(event, lead)
        heapq.heappush(self._queue, (priority, next(self._seq), req))
        self._waiting += 1
        if patience is not None:
            self.env.timeout(patience, req).callbacks.append(self._abandon)
        self._changed()
        return event

    def take(self, rep: int) -> None:
        self._update(rep, self.slots[rep], self.busy[rep] + 1)
        self._record()

    def release(self, rep: int) -> None:
        self._update(rep, self.slots[rep], self.busy[rep] - 1)
        self._changed()

    def _abandon(self, timeout: simpy.Event) -> None:
        req = typing.cast(_Request, timeout.value)
        if req.waiting:
            req.waiting = False
            self._waiting -= 1
            req.event.succeed(None)
            self._record()

    def _changed(self) -> None:
        while self._waiting and any(self.free_slots):
            rep = self.free_slots.index(max(self.free_slots))
            _, _, req = heapq.heappop(self._queue)
            if not req.waiting:
                continue
            req.waiting = False
            self._waiting -= 1
            self._update(rep, self.slots[rep], self.busy[rep] + 1)
            req.event.succeed(rep)
        if not self._waiting:
            self._queue.clear()
        self._record()

    def _record(self) -> None:
        self.levels.extend((self.env.now, self.team, self._waiting, self.in_use, self.capacity))


SLOTS = st.integers(0, 4)
PATIENCE = st.none() | st.sampled_from([0.0, 0.25, 0.5, 1.0, 3.0])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("hire"), SLOTS),
        st.tuples(st.just("set"), st.integers(0, 50), SLOTS),  # a ramp step; 0: a leaver
        st.tuples(st.just("acquire")),
        st.tuples(st.just("request"), st.sampled_from([0.0, -0.5, -1.0]), PATIENCE),
        st.tuples(st.just("burst"), st.integers(1, 90), PATIENCE),  # many waiting, many withdrawn
        st.tuples(st.just("release"), st.integers(0, 1000)),
        st.tuples(st.just("take"), st.integers(0, 50)),
        st.tuples(st.just("wait"), st.sampled_from([0.0, 0.1, 0.5, 2.0])),
    ),
    max_size=120,
)


def _trace(pool_type: type[Any], ops: list[tuple[Any, ...]], start_reps: list[int]) -> tuple[list[Any], list[Any]]:
    """Apply ``ops`` to a fresh pool; what it did after each (and its level log), checking invariants."""
    env = simpy.Environment()
    recorder = Recorder()
    pool = pool_type(env, "ae", recorder)
    held: list[int] = []  # the rep of each lead holding a slot
    seen: list[Any] = []
    leads = itertools.count()

    def wait_for(lead: int, request: simpy.Event) -> None:
        def done(event: simpy.Event) -> None:
            seen.append(("served", lead, event.value))
            if event.value is not None:
                held.append(event.value)

        request.callbacks.append(done)

    for slots in start_reps:
        pool.add_rep(slots)
    for op in ops:
        kind, n = op[0], len(pool.slots)
        if kind == "hire":
            seen.append(pool.add_rep(op[1]))
        elif kind == "set" and n:
            pool.set_slots(op[1] % n, op[2])
        elif kind == "acquire":
            rep = pool.acquire()
            seen.append(rep)
            if rep >= 0:
                held.append(rep)
        elif kind == "request":
            lead = next(leads)
            wait_for(lead, pool.request(lead, op[1], op[2]))
        elif kind == "burst":
            for i in range(op[1]):
                lead = next(leads)
                wait_for(lead, pool.request(lead, -float(i % 3), op[2]))
        elif kind == "release" and held:
            pool.release(held.pop(op[1] % len(held)))
        elif kind == "take" and n:
            rep = op[1] % n
            pool.take(rep)
            held.append(rep)
        elif kind == "wait" and op[1] > 0:
            env.run(until=env.now + op[1])
        elif kind == "wait":  # what is due now: the callbacks of requests just served
            while env.peek() == env.now:
                env.step()
        state = (pool.capacity, pool.in_use, pool.queue_length, list(pool.free_slots), list(pool.busy))
        seen.append(state)
        # Utilisation in [0, 1]; the totals are the sums over reps (nothing leaks).
        assert 0 <= pool.in_use <= pool.capacity
        # (A request served now is held once its callback has run.)
        assert pool.in_use == sum(pool.busy) >= len(held)
        assert pool.capacity == sum(max(s, b) for s, b in zip(pool.slots, pool.busy, strict=True))
        assert pool.free_slots == [max(s - b, 0) for s, b in zip(pool.slots, pool.busy, strict=True)]
        if isinstance(pool, SlotPool):
            assert len(pool._idle) <= 2 * len(pool.slots) + 65  # stale heap entries stay bounded
    # Drain: every lead leaves, every waiting request is served or gives up.
    env.run()
    while held:
        pool.release(held.pop())
        env.run()
    assert pool.in_use == 0
    assert pool.capacity == sum(pool.slots)
    assert pool.queue_length == 0 or not any(pool.free_slots)  # only leads no rep can take still wait
    return seen, list(recorder.levels)


@settings(max_examples=150, deadline=None)
@given(ops=OPS, start=st.lists(SLOTS, max_size=6))
def test_indexed_pool_picks_the_same_rep_as_a_linear_scan(ops: list[tuple[Any, ...]], start: list[int]) -> None:
    """Same rep for every lead, same level log, for any sequence of hires, capacity changes and leads."""
    indexed = _trace(SlotPool, ops, start)
    linear = _trace(LinearPool, ops, start)
    assert indexed == linear


def test_withdrawn_requests_compacted_out_keep_the_order_of_service() -> None:
    """Hundreds of leads give up while a few wait on: the queue is compacted, the rest served in order."""
    ops: list[tuple[Any, ...]] = []
    for priority in (0.0, -1.0, -0.5, 0.0, -1.0):
        ops += [("request", priority, None), ("burst", 90, 0.5), ("request", priority, 5.0), ("burst", 40, 1.0)]
    ops += [("wait", 0.75), ("hire", 1), ("wait", 0.5), ("hire", 2), ("wait", 0.0)]
    ops += [("release", 0), ("wait", 0.0)] * 12
    indexed = _trace(SlotPool, ops, [0, 0])
    assert indexed == _trace(LinearPool, ops, [0, 0])
    served = {e[1] for e in indexed[0] if isinstance(e, tuple) and e[0] == "served" and e[2] is not None}
    assert {0, 132, 264, 396, 528} <= served  # the leads without patience all got a rep
