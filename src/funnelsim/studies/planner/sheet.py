r"""The joint-target sheet and the headcount table of a plan: what each team commits to, month by month.

Each row of the sheet says on what ``basis`` its ``target`` stands:

- ``quota`` (leads per source): the plan's volume, the expected count (volume x
  seasonality x month multiplier x days); marketing's commitment.
- ``budget`` (spend per source, only for sources on a spend curve): what the month's
  quota costs, its leads times their average cost on the curve at the planned spend
  (``spend_per_month`` times the month's volume factor and length); marketing's budget.
- ``expected`` (MQLs, SQLs, opportunities, wins, deals AEs prospect, and revenue in the
  lead-in): the mean over the plan's verification runs of the count in the month; the
  flow the quotas carry, queues and all.
- ``goal`` (revenue in the period): the goal spread over the months in proportion to
  the plan's mean monthly revenue, :math:`G \cdot \bar r_m / \sum_{m'} \bar r_{m'}`, so
  the period's months sum to the goal ``G`` exactly. The plan's mean revenue is above
  ``G`` (that margin is what buys the confidence), so this is the pace that books the
  goal, not a forecast.

Beside each target: ``analytic`` (the analytic waterfall's expectation) and the month's
``simulated_mean``, ``simulated_p10`` and ``simulated_p90`` over the verification runs.
These are quantiles *of the month*: the P10s of twelve months do not add up to the P10 of
the year (a run low in one month is rarely low in all), so the period's quantiles are
taken over per-run totals (``stages.csv``), never summed from the months.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from funnelsim.studies import replications as mc
from funnelsim.studies.planner.waterfall import STAGES, Waterfall

__all__ = ["HEADCOUNT_COLUMNS", "SHEET_COLUMNS", "TEAMS", "headcount_table", "joint_target_sheet"]

TEAMS = {"leads": "marketing", "mqls": "marketing", "sqls": "shared", "opportunities": "sales", "wins": "sales"}
TEAMS |= {"revenue": "sales", "prospected": "sales", "spend": "marketing"}
SHEET_COLUMNS = ["month", "phase", "stage", "source", "team", "basis", "target", "analytic"]
SHEET_COLUMNS += ["simulated_mean", "simulated_p10", "simulated_p90"]
HEADCOUNT_COLUMNS = ["month", "phase", "ae_headcount", "aes", "aes_needed", "ae_hires", "ae_backfills", "ae_leavers"]
HEADCOUNT_COLUMNS += ["sdr_headcount", "sdrs", "sdrs_needed", "sdr_hires", "sdr_backfills", "sdr_leavers", "cost"]


def joint_target_sheet(planned: Waterfall, reps: mc.Replications, goal: float) -> pd.DataFrame:
    """One row per month and stage (:data:`SHEET_COLUMNS`); see the module docstring for each ``basis``."""
    months = planned.months
    sim = reps.monthly.groupby("month")
    period = set(planned.period.months)
    means = {m: float(sim.get_group(m)["revenue"].mean()) for m in period if m in sim.groups}
    scale = goal / sum(means.values()) if sum(means.values()) > 0 else math.nan
    rows = []
    sources = [c[len("leads_") :] for c in months.columns if c.startswith("leads_")]
    spenders = [c[len("spend_") :] for c in months.columns if c.startswith("spend_")]
    nan3 = [math.nan] * 3
    for _, row in months.iterrows():
        month, phase = row["month"], row["phase"]
        for name in sources:
            value = float(row[f"leads_{name}"])
            rows.append((month, phase, "leads", name, "marketing", "quota", value, value, *nan3))
        for name in spenders:
            value = float(row[f"spend_{name}"])
            rows.append((month, phase, "spend", name, "marketing", "budget", value, value, *nan3))
        prospected = float(row["prospected"])
        rows.append((month, phase, "leads", "prospecting", "sales", "expected", prospected, prospected, *nan3))
        for stage in STAGES[1:]:
            values = sim.get_group(month)[stage].to_numpy(float) if month in sim.groups else np.zeros(1)
            p10, p90 = np.percentile(values, [10, 90])
            mean = float(values.mean())
            basis, target = "expected", mean
            if stage == "revenue" and month in period:
                basis, target = "goal", mean * scale
            rows.append((month, phase, stage, "", TEAMS[stage], basis, target, float(row[stage]), mean, p10, p90))
    return pd.DataFrame(rows, columns=SHEET_COLUMNS)


def headcount_table(planned: Waterfall) -> pd.DataFrame:
    """One row per month (:data:`HEADCOUNT_COLUMNS`): both teams' expected headcount, hires, backfills and
    leavers (:mod:`.staffing`), the reps the flow keeps busy at the target utilisation, and the month's cost."""
    return planned.months[HEADCOUNT_COLUMNS].reset_index(drop=True)
