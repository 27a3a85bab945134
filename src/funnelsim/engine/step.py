"""A timed step of a lead without a process: the engine's cheapest scheduled callback."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

import simpy
from simpy.events import NORMAL, EventPriority

__all__ = ["Step"]


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
