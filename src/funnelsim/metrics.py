"""Metrics: pure functions of a run's tables (event log, level log, per-lead table).

Stage volumes count *distinct leads* that reached a stage at least once (a
recycled lead that becomes an MQL twice is one MQL). Conversion from stage A to
stage B is the share of the leads that reached A which also reached B, so deals
AEs prospected themselves (which skip MQL and SQL) count in the opportunity and
win volumes but not in the MQL-to-SQL or SQL-to-opportunity conversions.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

__all__ = ["FUNNEL", "conversions", "stage_volumes", "summary"]

FUNNEL = ("created", "mql", "sql", "opportunity", "won")
"""Funnel milestones, as event names, top to bottom."""

_SINGULAR = {"created": "lead", "mql": "mql", "sql": "sql", "opportunity": "opportunity", "won": "win"}
STAGE_LABELS = {"created": "leads", "mql": "mqls", "sql": "sqls", "opportunity": "opportunities", "won": "wins"}


def stage_volumes(events: pd.DataFrame) -> pd.Series:
    """Distinct leads reaching each funnel milestone, indexed by label (leads, mqls, ...)."""
    hits = events[events["event"].isin(FUNNEL)]
    counts = hits.drop_duplicates(["lead", "event"])["event"].value_counts()
    return pd.Series({STAGE_LABELS[m]: int(counts.get(m, 0)) for m in FUNNEL})


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def conversions(events: pd.DataFrame) -> dict[str, float]:
    """Share of leads reaching each milestone that reach the next one."""
    hits = events[events["event"].isin(FUNNEL)].drop_duplicates(["lead", "event"])
    reached = {m: set(hits.loc[hits["event"] == m, "lead"].to_numpy().tolist()) for m in FUNNEL}
    out = {}
    for a, b in itertools.pairwise(FUNNEL):
        key = f"{_SINGULAR[a]}_to_{_SINGULAR[b]}"
        out[key] = _ratio(len(reached[a] & reached[b]), len(reached[a]))
    return out


def summary(events: pd.DataFrame) -> dict[str, float]:
    """Headline numbers of one run: volumes, conversions, revenue, cycle times (days)."""
    vol = stage_volumes(events)
    won = events[events["event"] == "won"]
    lost = events[events["event"] == "lost"]
    opened = events[events["event"] == "opportunity"].drop_duplicates("lead", keep="last").set_index("lead")["time"]
    created = events[events["event"] == "created"].set_index("lead")["time"]
    won_at = won.set_index("lead")["time"]
    cycle = (won_at - opened.reindex(won_at.index)).to_numpy()
    lead_to_win = (won_at - created.reindex(won_at.index)).to_numpy()
    out: dict[str, float] = {str(k): int(v) for k, v in vol.items()}
    out["losses"] = len(lost)
    out["revenue"] = float(won["value"].sum())
    out.update(conversions(events))
    out["win_rate"] = _ratio(len(won), len(won) + len(lost))
    out["average_deal_size"] = float(won["value"].mean()) if len(won) else float("nan")
    out["median_cycle_days"] = float(np.median(cycle)) if len(cycle) else float("nan")
    out["median_lead_to_win_days"] = float(np.median(lead_to_win)) if len(lead_to_win) else float("nan")
    return out
