"""The recorder: the engine's columnar writer of the event, level and roster logs.

Records are appended to flat Python lists (cheap per event) and turned into the tidy
tables of :mod:`funnelsim.vocabulary` once, at the end of a run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from funnelsim.vocabulary import EVENT_CODE, EVENTS, TEAMS

__all__ = ["Recorder"]


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
        """The event log sorted by time (ties keep the order events happened in).

        Built once, at the end of a run: the flat list is emptied as it is converted, and
        each column is sorted on its own, so the peak is about two copies of the log's
        arrays rather than the list and every intermediate at once.
        """
        parts = self._bulk
        n_bulk = sum(len(p[0]) for p in parts)
        # One pass over the whole flat list: ids, codes and reps are small integers, exact as floats.
        rows = np.fromiter(self.rows, dtype=float, count=len(self.rows)).reshape(-1, 5)
        self.rows.clear()
        order = np.argsort(np.concatenate([p[0] for p in parts] + [rows[:, 0]]), kind="stable")

        def column(bulk: list[np.ndarray], loop: np.ndarray, dtype: type) -> np.ndarray:
            return np.concatenate([*bulk, loop.astype(dtype)])[order]

        frame = pd.DataFrame(
            {
                "time": column([p[0] for p in parts], rows[:, 0], float),
                "lead": column([p[1] for p in parts], rows[:, 1], np.int64),
                "event": pd.Categorical.from_codes(
                    column([p[2] for p in parts], rows[:, 2], np.int8), categories=list(EVENTS)
                ),
                "rep": column([np.full(n_bulk, -1, dtype=np.int32)], rows[:, 3], np.int32),
                "value": column([np.full(n_bulk, np.nan)], rows[:, 4], float),
            },
            copy=False,
        )
        self._bulk = []
        return frame

    def level(self, time: float, team: int, queue: int, busy: int, capacity: int) -> None:
        """A team's queue or capacity changed (``team``: its index in :data:`TEAMS`)."""
        self.levels.extend((time, team, queue, busy, capacity))

    def levels_frame(self) -> pd.DataFrame:
        # The team is stored as its index, so the flat list converts to floats in one go.
        rows = np.fromiter(self.levels, dtype=float, count=len(self.levels)).reshape(-1, 5)
        self.levels.clear()
        team = rows[:, 1].astype(np.int64)
        return pd.DataFrame(
            {
                "time": rows[:, 0].copy(),
                "team": np.array(TEAMS, dtype=object)[team] if len(team) else np.array([], dtype=object),
                "queue": rows[:, 2].astype(np.int64),
                "busy": rows[:, 3].astype(np.int64),
                "capacity": rows[:, 4].astype(np.int64),
            },
            copy=False,
        )

    def roster_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.roster, columns=["time", "team", "rep", "change", "productivity"])
        return frame.astype({"time": float, "rep": np.int64, "productivity": float})
