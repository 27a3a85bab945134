"""A timed step of a lead without a process: the engine's cheapest scheduled callback."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

import simpy
from simpy.events import NORMAL, EventPriority

__all__ = ["Step", "StepAt"]


class Step(simpy.Event):
    """A timeout that calls ``callback(self)`` when it fires: one step of a lead, without a process.

    ``carried`` (also its ``value``) is what the callback needs (the lead, its rep, ...).
    """

    def __init__(
        self,
        env: simpy.Environment,
        delay: float,
        callback: Callable[[Step], None],
        carried: Any,
        priority: EventPriority = NORMAL,
    ) -> None:
        # Inlined Event.__init__, succeed() and Environment.schedule(), for speed.
        self.env = env
        self.callbacks = [callback]  # called with this Step
        self._value = self.carried = carried
        self._ok = True
        heapq.heappush(env._queue, (env._now + delay, priority, next(env._eid), self))


class StepAt(Step):
    """A :class:`Step` at an absolute time rather than after a delay: exact to the bit, so a
    pick-up or a desk's opening computed from the working-time map happens at the time the map
    gave (``now + (t - now)`` may differ from ``t`` in the last bit)."""

    def __init__(
        self,
        env: simpy.Environment,
        time: float,
        callback: Callable[[Step], None],
        carried: Any,
        priority: EventPriority = NORMAL,
    ) -> None:
        self.env = env
        self.callbacks = [callback]
        self._value = self.carried = carried
        self._ok = True
        heapq.heappush(env._queue, (time, priority, next(env._eid), self))
