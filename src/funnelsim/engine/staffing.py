"""The SDR team over time: hires join on their dates and ramp up, reps leave and are backfilled.

An SDR is a rep with one slot in the SDR pool (:class:`~.pools.SlotPool`). A new SDR
works at ``ramp[m]`` of full productivity in its ``m``-th month, so it takes leads from
the month its ramp reaches 0.5 (:func:`funnelsim.model.mechanisms.slots`); a rep's
tenure is exponential with mean ``365.25 / attrition_per_year`` days, and a leaver
finishes the lead in hand, takes no more and, with ``backfill_days``, is replaced by a
new hire that long after. The AE team follows the same rules in
:class:`~.world.World`, where prospecting also follows it.

Tenures draw from their own stream (``sdr_staffing``), so a scenario that adds SDR
attrition leaves every other draw of a replication as it was, and a scenario without
SDR hires or attrition runs exactly as before this team could change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from funnelsim.engine.pools import SlotPool
from funnelsim.model.mechanisms import productivity, slots
from funnelsim.model.scenario import DAYS_PER_MONTH, SDRTeam

__all__ = ["SdrStaffing"]

Process = Generator[simpy.Event, Any, None]


class SdrStaffing:
    """Hires, ramp-up, leavers and backfills of the SDRs in ``pool`` (roster rows in ``roster``)."""

    def __init__(
        self,
        env: simpy.Environment,
        pool: SlotPool,
        team: SDRTeam,
        start_date: dt.date,
        rng: np.random.Generator,
        roster: list[tuple[float, str, int, str, float]],
    ) -> None:
        self.env, self.pool, self.team, self.rng, self.roster = env, pool, team, rng, roster
        self.start_date = start_date
        self.left: dict[int, bool] = {}

    @staticmethod
    def needed(team: SDRTeam) -> bool:
        """Whether the team ever changes (hires or attrition): without either it is fixed and needs no process."""
        return bool(team.hires) or team.attrition_per_year > 0

    def start(self, reps: list[int], origin: float = 0.0) -> None:
        """The reps on staff at the start (``reps``, fully ramped) may leave from ``origin`` on (a warm
        start's ``start_date``, see :class:`~.world.World`); hires join on their dates."""
        for rep in reps:
            self._tenure_of(rep, origin)
        for hire in self.team.hires:
            self.env.process(self._hire_on(float((hire.date - self.start_date).days), hire.count))

    def _hire_on(self, day: float, count: int) -> Process:
        yield self.env.timeout(day)
        for _ in range(count):
            self._join()

    def _join(self) -> None:
        share = productivity(self.team, 0)
        rep = self.pool.add_rep(slots(self.team, share))
        self.roster.append((self.env.now, "sdr", rep, "joined", share))
        if len(self.team.ramp) > 1:
            self.env.process(self._ramp(rep))
        self._tenure_of(rep)

    def _tenure_of(self, rep: int, tenure_from: float = 0.0) -> None:
        self.left[rep] = False
        if self.team.attrition_per_year > 0:
            self.env.process(self._tenure(rep, tenure_from))

    def _ramp(self, rep: int) -> Process:
        for month in range(1, len(self.team.ramp)):
            yield self.env.timeout(DAYS_PER_MONTH)
            if self.left[rep]:
                return  # left before ramping up
            self._set(rep, productivity(self.team, month), "ramp")

    def _tenure(self, rep: int, tenure_from: float) -> Process:
        yield self.env.timeout(tenure_from + self.rng.exponential(365.25 / self.team.attrition_per_year))
        self.left[rep] = True  # the lead in hand is finished; no new one is taken
        self._set(rep, 0.0, "left")
        if self.team.backfill_days is not None:
            yield self.env.timeout(self.team.backfill_days)
            self._join()

    def _set(self, rep: int, share: float, change: str) -> None:
        self.roster.append((self.env.now, "sdr", rep, change, share))
        self.pool.set_slots(rep, slots(self.team, share))
