"""When a run has reached steady state: the daily work in progress of a run and the MSER-5 rule.

A run that starts from an empty company fills up: leads pile into nurture, deals open
faster than they close, and revenue ramps for months. A warm start simulates that
filling-up before ``start_date`` and drops it; how long it lasts is read off a pilot
run with the MSER-5 truncation rule (White 1997; White, Cobb & Spratt 2000), which
picks the truncation point ``d`` minimising the squared standard error of the mean of
what is kept::

    MSER(d) = sum_{j > d} (Y_j - mean_{>d}(Y))^2 / (n - d)^2

over the means ``Y_j`` of consecutive batches of 5 observations, ``d`` searched over the
first half of the series. A minimum at the end of that half means the series is still
trending: the pilot was too short, or the system never settles (a queue that only
grows). Pure functions of a run's tables; :mod:`funnelsim.engine.warmup` runs the pilot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from funnelsim.vocabulary import EVENTS, OPEN_STATES, STATE_AFTER

__all__ = ["BATCH", "daily_levels", "mser"]

BATCH = 5
"""Observations per batch of MSER-5."""


def mser(series: np.ndarray, batch: int = BATCH) -> tuple[int, bool]:
    """The MSER-``batch`` truncation point of ``series``, in observations, and whether it is trustworthy.

    Returns ``(d, settled)``: drop the first ``d`` observations (a multiple of ``batch``);
    ``settled`` is False when the minimum lies in the last tenth of the searched half
    (the series still trends there), or the series is shorter than 10 batches.
    """
    y = np.asarray(series, dtype=float)
    n = len(y) // batch
    if n < 10:
        return 0, False
    means = y[: n * batch].reshape(n, batch).mean(axis=1)
    # Sums over the tail j >= d, for every d at once.
    tail_sum = np.cumsum(means[::-1])[::-1]
    tail_sq = np.cumsum((means**2)[::-1])[::-1]
    kept = np.arange(n, 0, -1, dtype=float)
    sse = tail_sq - tail_sum**2 / kept
    half = n // 2
    statistic = np.maximum(sse[: half + 1], 0.0) / kept[: half + 1] ** 2
    d = int(np.argmin(statistic))
    return d * batch, d < 0.9 * half


def daily_levels(events: pd.DataFrame, days: int) -> pd.DataFrame:
    """Work in progress at the end of each day ``0 .. days - 1``, and each day's wins.

    Columns ``open_leads`` (leads in an open state: in nurture, MQL, SQL or opportunity),
    ``open_opportunities`` and ``won_value`` (revenue closed that day). A lead's state
    is that after its latest event (:data:`funnelsim.vocabulary.STATE_AFTER`).
    """
    code = pd.Categorical(events["event"].astype(str), categories=list(EVENTS)).codes.astype(np.int64)
    lead = events["lead"].to_numpy(np.int64)
    time = events["time"].to_numpy(float)
    is_open = np.array([STATE_AFTER[e] in OPEN_STATES for e in EVENTS])
    is_opp = np.array([STATE_AFTER[e] == "opportunity" for e in EVENTS])
    # Per lead, in time order (its creation first at a tie): the change of each indicator an event makes.
    order = np.lexsort((np.arange(len(lead)), code != EVENTS.index("created"), time, lead))
    lead, code, time = lead[order], code[order], time[order]
    first = np.r_[True, lead[1:] != lead[:-1]]
    before = np.r_[0, code[:-1]]
    day = np.clip(np.floor(time).astype(np.int64), 0, days)
    out = {}
    for name, flag in (("open_leads", is_open), ("open_opportunities", is_opp)):
        change = flag[code].astype(np.int64) - np.where(first, 0, flag[before].astype(np.int64))
        out[name] = np.cumsum(np.bincount(day, weights=change, minlength=days + 1)[:days]).round().astype(np.int64)
    won = code == EVENTS.index("won")
    value = events["value"].to_numpy(float)[order]
    out["won_value"] = np.bincount(day[won], weights=value[won], minlength=days + 1)[:days]
    return pd.DataFrame(out)
