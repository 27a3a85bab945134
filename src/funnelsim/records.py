"""The event log: one flat record per thing that happens to a lead.

Every record is ``(time, lead, event, rep, value)``:

* ``time``  -- days since the scenario's ``start_date`` (float),
* ``lead``  -- lead id (int, 0-based, unique within a run),
* ``event`` -- one of :data:`EVENTS` (a closed set, below),
* ``rep``   -- id of the SDR or AE involved, ``-1`` when none,
* ``value`` -- money for ``opportunity`` / ``won`` / ``lost`` (deal amount), the
  response delay in days for ``sdr_start``, otherwise NaN.

The state of a lead at any time is given by its last event so far
(:data:`STATE_AFTER`); so every lead is in exactly one state at every moment.

The level log has one row per change of a team's queue or capacity:
``(time, team, queue, busy, capacity)``, with ``team`` in ``{"sdr", "ae"}``.
The roster has one row per change of a rep's productivity:
``(time, team, rep, change, productivity)`` with ``change`` in
``{"joined", "ramp", "left"}`` (a new hire may join at productivity 0 while ramping).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["EVENTS", "STATE_AFTER", "TERMINAL_STATES", "Recorder"]

EVENTS: tuple[str, ...] = (
    "created",  # a lead enters the funnel (nurture, or straight to hand-off)
    "dormant",  # never reached the MQL bar within max_nurture_days
    "mql",  # marketing's score reached its threshold: handed to sales
    "not_followed_up",  # sales never worked this MQL
    "sdr_start",  # an SDR starts working the MQL (value: delay since MQL, days)
    "sdr_abandoned",  # went cold waiting for an SDR
    "unreached",  # worked too late / could not be reached (speed-to-lead decay)
    "rejected",  # reached, but below sales' bar or no buying need
    "recycled",  # sent back to nurture after unreached / rejected / disqualified
    "sql",  # passed sales' bar: waits for an AE
    "ae_abandoned",  # went cold waiting for a free AE
    "disqualified",  # the AE's discovery found no opportunity
    "opportunity",  # an AE opened a deal (value: deal amount)
    "won",  # deal closed won (value: revenue)
    "lost",  # deal closed lost (value: amount that was at stake)
)
EVENT_CODE = {name: i for i, name in enumerate(EVENTS)}

STATE_AFTER: dict[str, str] = {
    "created": "lead",
    "recycled": "lead",
    "mql": "mql",
    "sdr_start": "mql",
    "sql": "sql",
    "opportunity": "opportunity",
    "dormant": "dormant",
    "not_followed_up": "not_followed_up",
    "sdr_abandoned": "sdr_abandoned",
    "unreached": "unreached",
    "rejected": "rejected",
    "ae_abandoned": "ae_abandoned",
    "disqualified": "disqualified",
    "won": "won",
    "lost": "lost",
}
"""The state a lead is in after each event; the first four are open (still in the funnel)."""

OPEN_STATES = ("lead", "mql", "sql", "opportunity")
TERMINAL_STATES = tuple(s for s in dict.fromkeys(STATE_AFTER.values()) if s not in OPEN_STATES)
STATES = OPEN_STATES + TERMINAL_STATES

TEAMS: tuple[str, ...] = ("sdr", "ae")
"""The teams of the level log, in the order of their index in :class:`Recorder`'s flat list."""


class Recorder:
    """Collects events in one flat list (cheap per event) and bulk arrays (array work).

    Nothing is stored as one object per row: the event log and the level log are each
    one flat list, five values a row. A tuple per row would be a container the garbage
    collector tracks, and hundreds of thousands of them alive at once make it run often
    and scan far. The engine's hot path logs with :attr:`add`, the list's own
    ``extend``: one call per event, not five appends.
    """

    def __init__(self) -> None:
        self.rows: list[float | int] = []  # flat: time, lead, code, rep, value, time, ...
        self.add = self.rows.extend  # add((time, lead, code, rep, value))
        self._bulk: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.levels: list[float | int] = []  # flat: time, team index, queue, busy, capacity, time, ...
        self.roster: list[tuple[float, str, int, str, float]] = []

    def event(self, time: float, lead: int, event: int, rep: int = -1, value: float = np.nan) -> None:
        self.rows.extend((time, lead, event, rep, value))

    def bulk(self, times: np.ndarray, leads: np.ndarray, event: str | np.ndarray) -> None:
        """Many events at once, for leads decided by array work: of one kind, or one code each.

        At equal times, bulk events come before the event loop's, and earlier calls
        before later ones.
        """
        times, leads = np.asarray(times, dtype=float), np.asarray(leads, dtype=np.int64)
        codes = np.full(len(times), EVENT_CODE[event], dtype=np.int8) if isinstance(event, str) else event
        self._bulk.append((times, leads, np.asarray(codes, dtype=np.int8)))

    def events_frame(self) -> pd.DataFrame:
        """The event log sorted by time (ties keep the order events happened in)."""
        parts = self._bulk
        n_bulk = sum(len(p[0]) for p in parts)
        # One pass over the whole flat list: ids, codes and reps are small integers, exact as floats.
        rows = np.fromiter(self.rows, dtype=float, count=len(self.rows)).reshape(-1, 5)
        time = np.concatenate([p[0] for p in parts] + [rows[:, 0]])
        lead = np.concatenate([p[1] for p in parts] + [rows[:, 1].astype(np.int64)])
        code = np.concatenate([p[2] for p in parts] + [rows[:, 2].astype(np.int8)])
        rep = np.concatenate([np.full(n_bulk, -1, dtype=np.int32), rows[:, 3].astype(np.int32)])
        value = np.concatenate([np.full(n_bulk, np.nan), rows[:, 4]])
        order = np.argsort(time, kind="stable")
        return pd.DataFrame(
            {
                "time": time[order],
                "lead": lead[order],
                "event": pd.Categorical.from_codes(code[order], categories=list(EVENTS)),
                "rep": rep[order],
                "value": value[order],
            }
        )

    def level(self, time: float, team: int, queue: int, busy: int, capacity: int) -> None:
        """A team's queue or capacity changed (``team``: its index in :data:`TEAMS`)."""
        self.levels.extend((time, team, queue, busy, capacity))

    def levels_frame(self) -> pd.DataFrame:
        # The team is stored as its index, so the flat list converts to floats in one go.
        rows = np.fromiter(self.levels, dtype=float, count=len(self.levels)).reshape(-1, 5)
        team = rows[:, 1].astype(np.int64)
        return pd.DataFrame(
            {
                "time": rows[:, 0],
                "team": np.array(TEAMS, dtype=object)[team] if len(team) else np.array([], dtype=object),
                "queue": rows[:, 2].astype(np.int64),
                "busy": rows[:, 3].astype(np.int64),
                "capacity": rows[:, 4].astype(np.int64),
            }
        )

    def roster_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.roster, columns=["time", "team", "rep", "change", "productivity"])
        return frame.astype({"time": float, "rep": np.int64, "productivity": float})
