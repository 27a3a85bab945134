"""Figures of a plan (``funnelsim plan``): the stage waterfall (analytic against simulated),
the monthly quotas of marketing and sales, and the leads-versus-AEs trade-off."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, StrMethodFormatter

from funnelsim.report.figures.style import (
    BAR_COLOR,
    GOAL_COLOR,
    SERIES_COLORS,
    STAGE_NAMES,
    THOUSANDS,
    check_table,
    figure_and_axes,
    month_ticks,
)

__all__ = ["plan_waterfall_chart", "quota_chart", "tradeoff_chart"]

LATER_STAGES = ("mqls", "sqls", "opportunities", "wins")
"""The stages of the quota chart's lower panel (the sheet's other rows, revenue, are in currency)."""


def plan_waterfall_chart(stages: pd.DataFrame, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """The reverse waterfall of a plan: volume per stage over the period, analytic vs. simulated.

    Parameters
    ----------
    stages
        One row per stage (``stage``: leads, mqls, sqls, opportunities, wins) with
        ``analytic`` (the closed-form plan at today's headcount), ``simulated_mean``,
        ``simulated_p10`` and ``simulated_p90`` (the chosen plan's replications).

    Returns
    -------
    (fig, ax)
        Paired horizontal bars on a linear axis from zero (counts are read as counts: the late
        stages are short bars, each labelled with its value); the simulated bar has a P10–P90
        whisker.
    """
    check_table(stages, "stages", ("stage", "analytic", "simulated_mean", "simulated_p10", "simulated_p90"))
    table = stages.set_index("stage").loc[[s for s in STAGE_NAMES if s in set(stages["stage"])]]
    fig, ax = figure_and_axes(ax, (8.5, 1.4 + 0.7 * len(table)))
    y = np.arange(len(table))
    analytic = table["analytic"].to_numpy(float)
    sim = table["simulated_mean"].to_numpy(float)
    p90 = table["simulated_p90"].to_numpy(float)
    err = np.vstack([sim - table["simulated_p10"].to_numpy(float), p90 - sim])
    ax.barh(y - 0.2, analytic, height=0.38, color="0.65", label="analytic (no queues, mean)")
    ax.barh(
        y + 0.2, sim, height=0.38, color=BAR_COLOR, xerr=np.maximum(err, 0), capsize=3, label="simulated plan (P10–P90)"
    )
    for i in range(len(table)):
        ax.annotate(f"{analytic[i]:,.0f}", xy=(analytic[i], y[i] - 0.2), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize="small", color="0.35")  # fmt: skip
        right = max(sim[i], p90[i]) if np.isfinite(p90[i]) else sim[i]
        ax.annotate(f"{sim[i]:,.0f}", xy=(right, y[i] + 0.2), xytext=(4, 0), textcoords="offset points", va="center")
    ax.set_yticks(y, labels=[STAGE_NAMES[s] for s in table.index])
    ax.invert_yaxis()
    top = float(np.nanmax(np.concatenate([analytic, sim, p90]), initial=0.0))
    ax.set_xlim(0, 1.25 * top if top > 0 else 1.0)  # room for the labels
    ax.xaxis.set_major_formatter(StrMethodFormatter(THOUSANDS))
    ax.set_xlabel("leads reaching the stage in the plan's period (count)")
    ax.legend(loc="lower right")
    ax.set_title("Reverse waterfall: what the goal needs at each stage")
    return fig, ax


def quota_chart(sheet: pd.DataFrame) -> tuple[Figure, tuple[Axes, Axes]]:
    """Monthly quotas of a plan: leads per source (marketing) and the later stages' targets.

    Parameters
    ----------
    sheet
        The joint-target sheet (:attr:`funnelsim.studies.planner.Plan.sheet`): columns ``month``,
        ``phase``, ``stage``, ``source``, ``team`` and ``target``.

    Returns
    -------
    (fig, (leads_ax, stages_ax))
        Top: stacked bars of leads per source, lead-in months lighter. Bottom: MQL,
        SQL, opportunity and win targets per month on a linear axis from zero, each line
        labelled with the owning team and its monthly range (so wins read as numbers too).
    """
    check_table(sheet, "sheet", ("month", "phase", "stage", "source", "team", "target"))
    fig = Figure(figsize=(10.0, 7.0), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    months = sorted(sheet["month"].unique())
    x = np.arange(len(months))
    phase = sheet.drop_duplicates("month").set_index("month").loc[months, "phase"].to_numpy()
    marketing = sheet[(sheet["stage"] == "leads") & (sheet["team"] == "marketing")]
    leads = marketing.pivot_table(index="month", columns="source", values="target")
    leads = leads.reindex(months).fillna(0.0)
    base = np.zeros(len(months))
    lead_in = phase != "period"
    for i, source in enumerate(leads.columns):
        values = leads[source].to_numpy(float)
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        top.bar(x[~lead_in], values[~lead_in], bottom=base[~lead_in], color=color, label=source)
        top.bar(x[lead_in], values[lead_in], bottom=base[lead_in], color=color, alpha=0.45)
        base += values
    top.set_ylim(0, 1.3 * float(base.max(initial=0.0)) or 1.0)  # headroom for the legend
    top.set_ylabel("lead target per month (count)")
    top.yaxis.set_major_formatter(StrMethodFormatter(THOUSANDS))
    top.legend(loc="upper left", ncols=min(4, len(leads.columns)), title="leads by source")
    top.set_title("Marketing: lead quotas per month" + (" (lighter: lead-in months)" if lead_in.any() else ""))
    for i, stage in enumerate(LATER_STAGES):
        rows = sheet[sheet["stage"] == stage].set_index("month").reindex(months)
        team = str(rows["team"].dropna().iloc[0]) if rows["team"].notna().any() else ""
        values = rows["target"].to_numpy(float)
        # The range in the legend: a small stage (wins) reads as a number on the linear axis too.
        span = f": {np.nanmin(values):,.0f}–{np.nanmax(values):,.0f} a month" if np.isfinite(values).any() else ""
        bottom.plot(x, values, marker="o", color=SERIES_COLORS[i], label=f"{STAGE_NAMES[stage]} ({team}){span}")
    later = sheet.loc[sheet["stage"].isin(LATER_STAGES), "target"].to_numpy(float)  # not revenue, not headcount
    high = float(np.nanmax(later, initial=0.0))
    bottom.set_ylim(0, 1.35 * high if high > 0 else 1.0)  # a linear axis from zero; headroom for the legend
    bottom.yaxis.set_major_formatter(StrMethodFormatter(THOUSANDS))
    bottom.set_ylabel("target per month (count)")
    bottom.set_xlabel("month")
    bottom.legend(loc="upper left", ncols=2, fontsize="small")
    bottom.set_title("Targets per stage (simulated mean of the plan) and the team that owns them")
    month_ticks(bottom, x, months)
    return fig, (top, bottom)


def tradeoff_chart(tradeoff: pd.DataFrame, currency: str, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """Leads vs. reps at equal confidence: the smallest lead volume for each number of extra AEs (one line
    per number of SDRs, when the table has ``sdrs``).

    Parameters
    ----------
    tradeoff
        Columns ``extra_aes``, ``lead_multiplier`` (NaN where no volume reaches the goal),
        ``cost`` and ``chosen`` (the cheapest); optionally ``sdrs``.
    """
    check_table(tradeoff, "tradeoff", ("extra_aes", "lead_multiplier", "cost", "chosen"))
    table = tradeoff.dropna(subset=["lead_multiplier"])
    fig, ax = figure_and_axes(ax, (7.5, 4.5))
    groups = table.groupby("sdrs") if "sdrs" in table.columns else [(None, table)]
    for sdrs, rows in groups:
        label = "same confidence" if sdrs is None else f"same confidence, {sdrs} SDRs"
        ax.plot(rows["extra_aes"], rows["lead_multiplier"], marker="o", label=label)
    for _, row in table.iterrows():
        ax.annotate(
            f"{row['cost'] / 1e6:,.2f}M",
            xy=(row["extra_aes"], row["lead_multiplier"]),
            xytext=(5, 5),
            textcoords="offset points",
        )
    best = table[table["chosen"]]
    ax.scatter(
        best["extra_aes"],
        best["lead_multiplier"],
        s=160,
        facecolors="none",
        edgecolors=GOAL_COLOR,
        linewidths=2,
        label="cheapest plan",
        zorder=3,
    )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("extra AEs hired at the start of the lead-in")
    ax.set_ylabel("lead volume (multiple of today's)")
    ax.legend(loc="upper right")
    ax.set_title(f"Leads vs. reps at equal confidence (labels: cost in the period, {currency})")
    return fig, ax
