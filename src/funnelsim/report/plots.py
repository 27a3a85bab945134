"""Figures of one run (the funnel, revenue per month, rep capacity, where leads leak) and of
many (Monte Carlo ranges: a fan chart of cumulative revenue, the distribution of revenue,
the funnel with its P10–P90 range).

Every function takes tidy tables (from :mod:`funnelsim.run.metrics`, or the per-replication
tables of the Monte Carlo runs) and an optional matplotlib ``ax`` to draw into, and
returns ``(fig, ax)``. The one exception is :func:`revenue_distribution`, which always
draws its own figure of two panels side by side (histogram and ECDF) and returns
``(fig, (hist_ax, ecdf_ax))``. None of them calls ``plt.show()`` or touches pyplot's
state: a new figure is a bare :class:`matplotlib.figure.Figure`, so a batch of runs
accumulates no open figures and any backend (including a headless one) works. Save with
``fig.savefig(path)``.

Ranges across replications are percentiles of the replications' values (numpy's
``"linear"`` method): P10–P90 holds the middle 80% of outcomes, P25–P75 the middle half.
A single replication is allowed; its ranges collapse to a line.

>>> import pandas as pd
>>> volumes = pd.Series({"leads": 1000, "mqls": 200, "sqls": 90, "opportunities": 60, "wins": 15})
>>> fig, ax = funnel_chart(volumes)
>>> fig.savefig("funnel.png")  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter, StrMethodFormatter

__all__ = [
    "INFO_REASONS",
    "calibration_arrivals_chart",
    "calibration_cycle_chart",
    "calibration_deal_size_chart",
    "capacity_chart",
    "compare_funnel_chart",
    "compare_leakage_chart",
    "compare_revenue_chart",
    "fan_chart",
    "funnel_chart",
    "funnel_range_chart",
    "leakage_chart",
    "lever_waterfall_chart",
    "plan_waterfall_chart",
    "quota_chart",
    "revenue_chart",
    "revenue_distribution",
    "sweep_chart",
    "sweep_heatmap",
    "tornado_chart",
    "tradeoff_chart",
]

STAGE_NAMES = {"leads": "Leads", "mqls": "MQLs", "sqls": "SQLs", "opportunities": "Opportunities", "wins": "Wins"}
_STAGE_IN_TEXT = {"leads": "leads", "mqls": "MQLs", "sqls": "SQLs", "opportunities": "opportunities", "wins": "wins"}
_SINGULAR = {"leads": "lead", "mqls": "mql", "sqls": "sql", "opportunities": "opportunity", "wins": "win"}

LEAKAGE_NAMES = {
    "never_mql_dormant": "never an MQL, went dormant",
    "not_followed_up": "MQL never followed up",
    "sdr_abandoned": "went cold waiting for an SDR",
    "lost_to_slow_response": "lost to slow response",
    "rejected_by_sales": "rejected by sales, dropped",
    "disqualified_by_ae": "disqualified by the AE",
    "ae_abandoned": "went cold waiting for an AE",
    "lost_deal": "deal lost",
}
INFO_REASONS = ("recycled", "recycled_then_won", "still_open")
"""Leakage rows that are not a loss (a recycled lead may still win; an open lead is still in play)."""

TEAM_NAMES = {"sdr": "SDR", "ae": "AE"}

_THOUSANDS = "{x:,.0f}"
_BAR = "#4C72B0"
_LINE = "#DD8452"
_TEAM_COLORS = {"sdr": "#4C72B0", "ae": "#C44E52"}
_GOAL = "#C44E52"
_BANDS = [10, 25, 50, 75, 90]
_SERIES = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860"]


def funnel_chart(
    volumes: pd.Series, ax: Axes | None = None, *, conversions: Mapping[str, float] | None = None
) -> tuple[Figure, Axes]:
    """Horizontal bars of the leads reaching each stage, top of the funnel first.

    Parameters
    ----------
    volumes
        Leads reaching each stage, in funnel order (``metrics.stage_volumes``:
        index ``leads, mqls, sqls, opportunities, wins``).
    ax
        Axes to draw into; a new figure when omitted.
    conversions
        Stage-to-stage conversions as returned by ``metrics.conversions``
        (keys such as ``"mql_to_sql"``). Each bar after the first is annotated with
        its conversion from the stage above; without this mapping (or for a key it
        lacks) the annotation is the ratio of the two volumes, which can exceed 100%
        when AEs source opportunities themselves.

    Returns
    -------
    (fig, ax)
    """
    stages = [str(s) for s in volumes.index]
    counts = volumes.to_numpy(dtype=float)
    fig, ax = _figure_and_axes(ax, (7.5, 1.2 + 0.6 * max(len(stages), 1)))
    y = np.arange(len(stages))
    ax.barh(y, counts, height=0.6, color=_BAR)
    ax.set_yticks(y, labels=[STAGE_NAMES.get(s, s) for s in stages])
    ax.invert_yaxis()
    for i, count in enumerate(counts):
        text = f"{count:,.0f}"
        if i > 0:
            above = stages[i - 1]
            key = f"{_SINGULAR.get(above, above)}_to_{_SINGULAR.get(stages[i], stages[i])}"
            if conversions is not None and key in conversions:
                rate = float(conversions[key])
            else:
                rate = count / counts[i - 1] if counts[i - 1] else math.nan
            text += f"  ({_pct(rate)} of {_STAGE_IN_TEXT.get(above, above)})"
        ax.annotate(text, xy=(count, y[i]), xytext=(4, 0), textcoords="offset points", va="center", ha="left")
    if np.any(counts[1:] > counts[:-1]):
        ax.annotate(
            "A stage can outnumber the one above it: AEs also source opportunities themselves.",
            xy=(1.0, 0.0),
            xycoords="axes fraction",
            xytext=(-4, 4),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize="small",
            color="0.4",
        )
    top = float(np.nanmax(counts)) if len(counts) else 0.0
    ax.set_xlim(0, 1.45 * top if top > 0 else 1.0)  # room for the annotations
    ax.xaxis.set_major_formatter(StrMethodFormatter(_THOUSANDS))
    ax.set_xlabel("leads reaching the stage (count)")
    ax.set_title("Funnel: leads reaching each stage, and conversion from the stage above")
    return fig, ax


def revenue_chart(revenue_by_month: pd.DataFrame, currency: str, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """Revenue booked per month (bars) and cumulative revenue (line, right-hand axis).

    Parameters
    ----------
    revenue_by_month
        One row per month with a ``revenue`` column and the month in ``period``
        (``metrics.revenue_by_period(..., freq="month")``) or ``month``
        (``metrics.stages_by_month``).
    currency
        Currency of the amounts, shown in the axis labels.
    ax
        Axes for the bars; the cumulative line goes on a twin axis
        (``ax.twinx()``, found in ``fig.axes``).

    Returns
    -------
    (fig, ax)
        ``ax`` holds the monthly bars.
    """
    labels = _period_labels(revenue_by_month)
    revenue = revenue_by_month["revenue"].to_numpy(dtype=float)
    fig, ax = _figure_and_axes(ax, (9.0, 4.5))
    x = np.arange(len(labels))
    bars = ax.bar(x, revenue, width=0.7, color=_BAR, label="booked in the month")
    cumulative = ax.twinx()
    (line,) = cumulative.plot(x, np.nancumsum(revenue), color=_LINE, marker="o", label="cumulative")
    _month_ticks(ax, x, labels)
    ax.set_xlabel("month (by close date)")
    ax.set_ylabel(f"revenue booked ({currency})")
    cumulative.set_ylabel(f"cumulative revenue ({currency})")
    for axis, values in ((ax, revenue), (cumulative, np.nancumsum(revenue))):
        axis.yaxis.set_major_formatter(StrMethodFormatter(_THOUSANDS))
        top = float(np.nanmax(values, initial=0.0))
        axis.set_ylim(0, 1.2 * top if top > 0 else 1.0)  # headroom for the legend
    ax.legend(handles=[bars, line], loc="upper left")
    ax.set_title("Revenue booked per month")
    return fig, ax


def capacity_chart(capacity_by_month: pd.DataFrame, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """Rep utilisation per month (one line per team) and mean queue (bars, right-hand axis).

    Parameters
    ----------
    capacity_by_month
        ``metrics.capacity_by_month``: one row per month and team, with columns
        ``month``, ``team`` (``"sdr"``, ``"ae"``), ``utilisation`` (time-weighted share
        of capacity busy, 0 to 1) and ``mean_queue`` (time-weighted leads waiting).
    ax
        Axes for the utilisation lines; the queue bars go on a twin axis
        (``ax.twinx()``, found in ``fig.axes``), drawn behind the lines.

    Returns
    -------
    (fig, ax)
        ``ax`` holds the utilisation lines.
    """
    months = sorted({str(m) for m in capacity_by_month["month"]})
    present = [str(t) for t in dict.fromkeys(capacity_by_month["team"])]
    teams = [t for t in TEAM_NAMES if t in present] + [t for t in present if t not in TEAM_NAMES]
    table = capacity_by_month.assign(
        month=capacity_by_month["month"].astype(str), team=capacity_by_month["team"].astype(str)
    )
    fig, ax = _figure_and_axes(ax, (9.0, 4.5))
    queue_ax = ax.twinx()
    # The lines are the message: draw the primary axes above its twin, with a clear background.
    ax.set_zorder(queue_ax.get_zorder() + 1)
    ax.patch.set_visible(False)
    x = np.arange(len(months))
    width = 0.8 / max(len(teams), 1)
    handles = []
    for i, team in enumerate(teams):
        rows = table[table["team"] == team].set_index("month").reindex(months)
        name = TEAM_NAMES.get(team, team)
        color = _TEAM_COLORS.get(team)
        (line,) = ax.plot(
            x, rows["utilisation"].to_numpy(dtype=float), marker="o", color=color, label=f"{name} utilisation"
        )
        offset = (i - (len(teams) - 1) / 2) * width
        bars = queue_ax.bar(
            x + offset,
            rows["mean_queue"].to_numpy(dtype=float),
            width=width,
            color=color,
            alpha=0.3,
            label=f"{name} mean queue",
        )
        handles += [line, bars]
    _month_ticks(ax, x, months)
    # Headroom above 100% (and above the tallest bar) keeps the legend clear of the data.
    ax.set_ylim(0, 1.3)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set_xlabel("month")
    ax.set_ylabel("utilisation (time-weighted, % of capacity)")
    queue_ax.set_ylabel("mean queue (leads waiting)")
    # A queue that never forms still gets a readable 0-1 scale.
    queue_ax.set_ylim(0, max(1.0, 1.3 * float(np.nan_to_num(table["mean_queue"].to_numpy(dtype=float)).max(initial=0))))
    queue_ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,g}"))
    if handles:
        ax.legend(handles=handles, loc="upper left", ncols=2, fontsize="small")
    ax.set_title("Rep utilisation and queue per month")
    return fig, ax


def leakage_chart(leakage: pd.DataFrame, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """Horizontal bars of why leads left the funnel, largest loss first.

    Parameters
    ----------
    leakage
        ``metrics.leakage``: columns ``reason``, ``leads`` and ``share_of_leads``,
        optionally ``kind``. Only losses are drawn: rows whose ``kind`` is ``"leak"``,
        or, without a ``kind`` column, every row but the informational ones
        (:data:`INFO_REASONS`: recycled, recycled then won, still open).
    ax
        Axes to draw into; a new figure when omitted.

    Returns
    -------
    (fig, ax)
    """
    if "kind" in leakage:
        losses = leakage[leakage["kind"].astype(str) == "leak"]
    else:
        losses = leakage[~leakage["reason"].astype(str).isin(INFO_REASONS)]
    losses = losses.sort_values("leads", ascending=False, kind="stable")
    reasons = [str(r) for r in losses["reason"]]
    counts = losses["leads"].to_numpy(dtype=float)
    shares = (
        losses["share_of_leads"].to_numpy(dtype=float) if "share_of_leads" in losses else np.full(len(counts), np.nan)
    )
    fig, ax = _figure_and_axes(ax, (8.0, 1.2 + 0.5 * max(len(reasons), 1)))
    y = np.arange(len(reasons))
    ax.barh(y, counts, height=0.6, color="#C44E52")
    ax.set_yticks(y, labels=[LEAKAGE_NAMES.get(r, r.replace("_", " ")) for r in reasons])
    ax.invert_yaxis()
    for i, (count, share) in enumerate(zip(counts, shares, strict=True)):
        text = f"{count:,.0f}" if math.isnan(share) else f"{count:,.0f}  ({_pct(share)} of leads)"
        ax.annotate(text, xy=(count, y[i]), xytext=(4, 0), textcoords="offset points", va="center", ha="left")
    top = float(np.nanmax(counts)) if len(counts) else 0.0
    ax.set_xlim(0, 1.45 * top if top > 0 else 1.0)
    ax.xaxis.set_major_formatter(StrMethodFormatter(_THOUSANDS))
    ax.set_xlabel("leads lost (count)")
    ax.set_title("Where leads leave the funnel")
    return fig, ax


def fan_chart(
    monthly: pd.DataFrame, currency: str, goal: float | None = None, ax: Axes | None = None
) -> tuple[Figure, Axes]:
    """Cumulative revenue over the horizon across replications: P10–P90 and P25–P75 bands
    around the median, month by month.

    Parameters
    ----------
    monthly
        One row per replication and month, with columns ``replication``, ``month``
        (e.g. ``"2027-01"``) and ``cumulative_revenue`` (running total within the
        replication). Every replication must cover the same months.
    currency
        Currency of the amounts, shown in the axis label and the goal's label.
    goal
        Revenue goal for the horizon, drawn as a dashed horizontal line; none when omitted.
    ax
        Axes to draw into; a new figure when omitted.

    Returns
    -------
    (fig, ax)
    """
    _check_table(monthly, "monthly", ("replication", "month", "cumulative_revenue"))
    table = monthly.assign(month=monthly["month"].astype(str))
    if table.duplicated(["replication", "month"]).any():
        raise ValueError("monthly has more than one row for the same replication and month")
    by_month = table.pivot(index="replication", columns="month", values="cumulative_revenue")
    months = sorted(str(m) for m in by_month.columns)
    values = by_month[months].to_numpy(dtype=float)
    if np.isnan(values).any():
        raise ValueError("monthly: every replication must have a cumulative_revenue for every month")
    runs = len(by_month)
    p10, p25, p50, p75, p90 = np.percentile(values, _BANDS, axis=0, method="linear")
    fig, ax = _figure_and_axes(ax, (9.0, 4.5))
    x = np.arange(len(months))
    ax.fill_between(x, p10, p90, color=_BAR, alpha=0.2, linewidth=0, label="P10–P90")
    ax.fill_between(x, p25, p75, color=_BAR, alpha=0.45, linewidth=0, label="P25–P75")
    ax.plot(x, p50, color=_BAR, marker="o", label="median (P50)")
    if goal is not None:
        ax.axhline(goal, color=_GOAL, linestyle="--", label=f"goal: {goal:,.0f} {currency}")
    _month_ticks(ax, x, months)
    top = max(float(p90.max(initial=0.0)), 0.0 if goal is None else goal)
    ax.set_ylim(0, 1.15 * top if top > 0 else 1.0)  # headroom for the legend
    ax.yaxis.set_major_formatter(StrMethodFormatter(_THOUSANDS))
    ax.set_xlabel("month (by close date)")
    ax.set_ylabel(f"cumulative revenue ({currency})")
    ax.legend(loc="upper left")
    ax.set_title(f"Cumulative revenue across {_replications(runs)}")
    return fig, ax


def revenue_distribution(
    replications: pd.DataFrame, currency: str, goal: float | None = None, p_goal: float | None = None
) -> tuple[Figure, tuple[Axes, Axes]]:
    """Revenue over the horizon across replications: a histogram and its empirical CDF.

    Parameters
    ----------
    replications
        One row per replication with a ``revenue`` column (revenue over the horizon).
    currency
        Currency of the amounts, shown in the axis labels.
    goal
        Revenue goal, drawn as a dashed vertical line on both panels; none when omitted.
    p_goal
        Probability of reaching the goal (0 to 1), e.g. from the Monte Carlo summary;
        written on the ECDF panel as ``"P(revenue ≥ goal) = 72.5%"`` when given.

    Returns
    -------
    (fig, (hist_ax, ecdf_ax))
        A new figure of two panels: the histogram on the left, the ECDF on the right.
        The ECDF is a step line through the sorted revenues at heights ``i / n``.
        The median is marked on both panels.
    """
    _check_table(replications, "replications", ("revenue",))
    revenue = np.sort(replications["revenue"].to_numpy(dtype=float))
    if np.isnan(revenue).any():
        raise ValueError("replications: revenue has missing values")
    if p_goal is not None and not 0.0 <= p_goal <= 1.0:
        raise ValueError(f"p_goal must be a probability between 0 and 1, got {p_goal}")
    runs = len(revenue)
    median = float(np.percentile(revenue, 50, method="linear"))
    fig = Figure(figsize=(11.0, 4.5), layout="constrained")
    hist_ax = fig.add_subplot(1, 2, 1)
    ecdf_ax = fig.add_subplot(1, 2, 2)
    # "auto" bins suit a few replications and many alike; cap them so thousands stay readable.
    bins = min(len(np.histogram_bin_edges(revenue, bins="auto")) - 1, 50)
    # Replications that all agree would get a bin one unit wide, invisible on a scale of millions.
    half_width = max(0.05 * abs(revenue[0]), 0.5)
    spread = None if revenue[-1] > revenue[0] else (revenue[0] - half_width, revenue[0] + half_width)
    hist_ax.hist(revenue, bins=bins, range=spread, color=_BAR, alpha=0.8, label="replications")
    hist_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    hist_ax.set_ylabel("replications (count)")
    hist_ax.set_title(f"Revenue across {_replications(runs)}")
    ecdf_ax.step(
        revenue,
        np.arange(1, runs + 1) / runs,
        where="post",
        color=_BAR,
        marker="o" if runs == 1 else None,
        label="ECDF",
    )
    ecdf_ax.set_ylim(0, 1.05)
    ecdf_ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ecdf_ax.set_ylabel("share of replications with revenue ≤ x")
    ecdf_ax.set_title("Cumulative share of replications")
    for panel in (hist_ax, ecdf_ax):
        panel.axvline(median, color=_LINE, label=f"median: {median:,.0f} {currency}")
        if goal is not None:
            panel.axvline(goal, color=_GOAL, linestyle="--", label=f"goal: {goal:,.0f} {currency}")
        # Money in full (12,000,000) is wide: few ticks, slanted, so neighbours never overlap.
        panel.xaxis.set_major_locator(MaxNLocator(nbins=5))
        panel.xaxis.set_major_formatter(StrMethodFormatter(_THOUSANDS))
        panel.tick_params(axis="x", labelrotation=30)
        for label in panel.get_xticklabels():
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")
        panel.set_xlabel(f"revenue over the horizon ({currency})")
    # The ECDF rises from bottom left, leaving its top left free; a histogram's free corner varies.
    hist_ax.legend(loc="best", fontsize="small")
    ecdf_ax.legend(loc="upper left", fontsize="small")
    if p_goal is not None:
        ecdf_ax.annotate(
            f"P(revenue ≥ goal) = {_pct(p_goal)}",
            xy=(0.98, 0.04),
            xycoords="axes fraction",
            ha="right",
            va="bottom",
            bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "0.7"},
        )
    return fig, (hist_ax, ecdf_ax)


def funnel_range_chart(replications: pd.DataFrame, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """Horizontal bars of the mean volume per stage across replications, with P10–P90 error bars.

    Parameters
    ----------
    replications
        One row per replication with the stage volumes ``leads``, ``mqls``, ``sqls``,
        ``opportunities`` and ``wins``.
    ax
        Axes to draw into; a new figure when omitted.

    Returns
    -------
    (fig, ax)
        Each bar is labelled ``"4,724 (P10 4,610 – P90 4,850)"``.
    """
    stages = list(STAGE_NAMES)
    _check_table(replications, "replications", stages)
    volumes = replications[stages].to_numpy(dtype=float)
    if np.isnan(volumes).any():
        raise ValueError("replications: stage volumes have missing values")
    means = volumes.mean(axis=0)
    p10, p90 = np.percentile(volumes, [10, 90], axis=0, method="linear")
    fig, ax = _figure_and_axes(ax, (8.5, 1.2 + 0.6 * len(stages)))
    y = np.arange(len(stages))
    # A skewed stage (a rare large outcome) can put the mean outside P10–P90; the whisker then
    # stops at the bar on that side, and the label still gives the true percentiles.
    xerr = np.vstack([np.maximum(means - p10, 0.0), np.maximum(p90 - means, 0.0)])
    ax.barh(y, means, height=0.6, color=_BAR, xerr=xerr, capsize=4, error_kw={"ecolor": "0.2"})
    ax.set_yticks(y, labels=[STAGE_NAMES[s] for s in stages])
    ax.invert_yaxis()
    for i in range(len(stages)):
        text = f"{means[i]:,.0f} (P10 {p10[i]:,.0f} – P90 {p90[i]:,.0f})"
        right = max(means[i], p90[i])
        ax.annotate(text, xy=(right, y[i]), xytext=(6, 0), textcoords="offset points", va="center", ha="left")
    top = float(np.maximum(means, p90).max())
    ax.set_xlim(0, 1.7 * top if top > 0 else 1.0)  # room for the labels
    ax.xaxis.set_major_formatter(StrMethodFormatter(_THOUSANDS))
    ax.set_xlabel("leads reaching the stage (count; mean, whiskers P10–P90)")
    ax.set_title(f"Funnel across {_replications(len(volumes))}: mean and P10–P90")
    return fig, ax


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
        Paired horizontal bars on a log scale (stages span orders of magnitude); the
        simulated bar has a P10–P90 whisker.
    """
    _check_table(stages, "stages", ("stage", "analytic", "simulated_mean", "simulated_p10", "simulated_p90"))
    table = stages.set_index("stage").loc[[s for s in STAGE_NAMES if s in set(stages["stage"])]]
    fig, ax = _figure_and_axes(ax, (8.5, 1.4 + 0.7 * len(table)))
    y = np.arange(len(table))
    sim = table["simulated_mean"].to_numpy(float)
    err = np.vstack([sim - table["simulated_p10"].to_numpy(float), table["simulated_p90"].to_numpy(float) - sim])
    ax.barh(y - 0.2, table["analytic"], height=0.38, color="0.65", label="analytic (no queues, mean)")
    ax.barh(y + 0.2, sim, height=0.38, color=_BAR, xerr=np.maximum(err, 0), capsize=3, label="simulated plan (P10–P90)")
    for i, value in enumerate(sim):
        ax.annotate(f"{value:,.0f}", xy=(value, y[i] + 0.2), xytext=(4, 0), textcoords="offset points", va="center")
    ax.set_yticks(y, labels=[STAGE_NAMES[s] for s in table.index])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("count in the period (log scale)")
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
        SQL, opportunity and win targets per month, labelled with the owning team.
    """
    _check_table(sheet, "sheet", ("month", "phase", "stage", "source", "team", "target"))
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
        color = _SERIES[i % len(_SERIES)]
        top.bar(x[~lead_in], values[~lead_in], bottom=base[~lead_in], color=color, label=source)
        top.bar(x[lead_in], values[lead_in], bottom=base[lead_in], color=color, alpha=0.45)
        base += values
    top.set_ylim(0, 1.3 * float(base.max(initial=0.0)) or 1.0)  # headroom for the legend
    top.set_ylabel("leads per month")
    top.yaxis.set_major_formatter(StrMethodFormatter(_THOUSANDS))
    top.legend(loc="upper left", ncols=min(4, len(leads.columns)), title="leads by source")
    top.set_title("Marketing: lead quotas per month (lighter: lead-in months)")
    for i, stage in enumerate(("mqls", "sqls", "opportunities", "wins")):
        rows = sheet[sheet["stage"] == stage].set_index("month").reindex(months)
        team = str(rows["team"].dropna().iloc[0]) if rows["team"].notna().any() else ""
        bottom.plot(
            x, rows["target"].to_numpy(float), marker="o", color=_SERIES[i], label=f"{STAGE_NAMES[stage]} ({team})"
        )
    bottom.set_yscale("log")
    low, high = bottom.get_ylim()
    bottom.set_ylim(low, high * 8)  # headroom for the legend
    bottom.set_ylabel("per month (log scale)")
    bottom.legend(loc="upper left", ncols=4)
    bottom.set_title("Targets per stage (simulated mean of the plan) and the team that owns them")
    _month_ticks(bottom, x, months)
    return fig, (top, bottom)


def tradeoff_chart(tradeoff: pd.DataFrame, currency: str, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """Leads vs. reps at equal confidence: the smallest lead volume for each number of extra AEs.

    Parameters
    ----------
    tradeoff
        Columns ``extra_aes``, ``lead_multiplier`` (NaN where no volume reaches the goal),
        ``cost`` and ``chosen`` (the cheapest).
    """
    _check_table(tradeoff, "tradeoff", ("extra_aes", "lead_multiplier", "cost", "chosen"))
    table = tradeoff.dropna(subset=["lead_multiplier"])
    fig, ax = _figure_and_axes(ax, (7.5, 4.5))
    ax.plot(table["extra_aes"], table["lead_multiplier"], marker="o", color=_BAR, label="same confidence")
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
        edgecolors=_GOAL,
        linewidths=2,
        label="cheapest plan",
        zorder=3,
    )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("extra AEs hired at the start of the lead-in")
    ax.set_ylabel("lead volume (x today's)")
    ax.legend(loc="upper right")
    ax.set_title(f"Leads vs. reps at equal confidence (labels: cost in the period, {currency})")
    return fig, ax


def compare_revenue_chart(replications: pd.DataFrame, currency: str, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """Revenue across replications per scenario, overlaid as empirical CDFs with the means marked.

    Parameters
    ----------
    replications
        One row per scenario and replication: ``scenario`` and ``revenue``.
    """
    _check_table(replications, "replications", ("scenario", "revenue"))
    fig, ax = _figure_and_axes(ax, (8.0, 4.5))
    for i, (label, group) in enumerate(replications.groupby("scenario", sort=False)):
        values = np.sort(group["revenue"].to_numpy(float))
        color = _SERIES[i % len(_SERIES)]
        ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post", color=color, label=str(label))
        ax.axvline(values.mean(), color=color, linestyle=":", linewidth=1)
    ax.xaxis.set_major_formatter(StrMethodFormatter(_THOUSANDS))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel(f"revenue over the horizon ({currency}); dotted: mean")
    ax.set_ylabel("share of replications at or below")
    ax.legend(loc="lower right")
    ax.set_title("Revenue across replications (same seeds for every scenario)")
    return fig, ax


def compare_funnel_chart(table: pd.DataFrame, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """Mean volume per stage, scenarios side by side, with the 95% confidence interval of each mean.

    Parameters
    ----------
    table
        :meth:`funnelsim.studies.compare.Comparison.table` rows: ``metric`` (the stages ``leads``,
        ``mqls``, ``sqls``, ``opportunities``, ``wins``), ``scenario``, ``mean``,
        ``ci_low`` and ``ci_high``.
    """
    _check_table(table, "table", ("metric", "scenario", "mean", "ci_low", "ci_high"))
    stages = [s for s in STAGE_NAMES if s in set(table["metric"])]
    labels = list(dict.fromkeys(table["scenario"]))
    fig, ax = _figure_and_axes(ax, (9.0, 4.5))
    width = 0.8 / len(labels)
    x = np.arange(len(stages))
    for i, label in enumerate(labels):
        rows = table[table["scenario"] == label].set_index("metric").loc[stages]
        mean = rows["mean"].to_numpy(float)
        err = np.vstack([mean - rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float) - mean])
        ax.bar(x + (i - (len(labels) - 1) / 2) * width, mean, width, yerr=np.nan_to_num(err), capsize=3,
               color=_SERIES[i % len(_SERIES)], label=label)  # fmt: skip
    ax.set_xticks(x, labels=[STAGE_NAMES[s] for s in stages])
    ax.set_yscale("log")
    ax.set_ylabel("mean count per run (log scale)")
    ax.legend(loc="upper right")
    ax.set_title("Funnel per scenario (whiskers: 95% CI of the mean)")
    return fig, ax


def compare_leakage_chart(leakage: pd.DataFrame) -> tuple[Figure, tuple[Axes, Axes]]:
    """Where leads leave the funnel, scenarios side by side: mean leads per run for each reason.

    Leads that never become an MQL outnumber every later loss by far, so they get their
    own panel (left) and the losses after the hand-off share the right one.

    Parameters
    ----------
    leakage
        :meth:`funnelsim.studies.compare.Comparison.leakage` rows: ``reason``, ``scenario``, ``leads``.
    """
    _check_table(leakage, "leakage", ("reason", "scenario", "leads"))
    labels = list(dict.fromkeys(leakage["scenario"]))
    reasons = list(dict.fromkeys(leakage["reason"]))
    top, rest = reasons[:1], reasons[1:]
    fig = Figure(figsize=(11.0, 4.8), layout="constrained")
    axes = fig.subplots(1, 2, width_ratios=[1, 3], sharey=False)
    height = 0.8 / len(labels)
    for ax, group in zip(axes, (top, rest), strict=True):
        y = np.arange(len(group))
        for i, label in enumerate(labels):
            rows = leakage[leakage["scenario"] == label].set_index("reason").loc[group]
            ax.barh(y - (i - (len(labels) - 1) / 2) * height, rows["leads"].to_numpy(float), height,
                    color=_SERIES[i % len(_SERIES)], label=label)  # fmt: skip
        ax.set_yticks(y, labels=[LEAKAGE_NAMES.get(r, r) for r in group])
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(StrMethodFormatter(_THOUSANDS))
        ax.set_xlabel("mean leads per run")
    axes[1].legend(loc="lower right")
    fig.suptitle("Where leads leave the funnel, per scenario")
    return fig, (axes[0], axes[1])


def lever_waterfall_chart(
    attribution: pd.DataFrame, start: float, labels: tuple[str, str], metric: str = "revenue", ax: Axes | None = None
) -> tuple[Figure, Axes]:
    """From the first scenario to the second, one step per lever (its Shapley contribution).

    Parameters
    ----------
    attribution
        :meth:`funnelsim.studies.compare.Attribution.table` rows: ``lever``, ``contribution``,
        ``ci_low``, ``ci_high``, the last row being ``total``.
    start
        The first scenario's mean (the first bar).
    labels
        The two scenarios' names.
    """
    _check_table(attribution, "attribution", ("lever", "contribution", "ci_low", "ci_high"))
    steps = attribution[attribution["lever"] != "total"]
    fig, ax = _figure_and_axes(ax, (max(7.0, 1.1 * len(steps) + 3.0), 4.8))
    level = start
    ax.bar(0, start, color=_BAR)
    for i, row in enumerate(steps.itertuples(), start=1):
        delta = float(row.contribution)
        ax.bar(i, delta, bottom=level, color="#55A868" if delta >= 0 else "#C44E52")
        err = [[delta - row.ci_low], [row.ci_high - delta]]
        ax.errorbar(i, level + delta, yerr=np.nan_to_num(np.abs(err)), color="black", capsize=3, linewidth=1)
        ax.plot([i - 1.4, i + 0.4], [level, level], color="grey", linewidth=0.6)
        level += delta
    end = len(steps) + 1
    ax.bar(end, level, color=_LINE)
    ax.plot([end - 1.4, end + 0.4], [level, level], color="grey", linewidth=0.6)
    names = [labels[0], *[str(n) for n in steps["lever"]], labels[1]]
    ax.set_xticks(np.arange(end + 1), labels=names)
    ax.tick_params(axis="x", labelrotation=30)
    for text in ax.get_xticklabels():
        text.set_horizontalalignment("right")
        text.set_rotation_mode("anchor")
    ax.yaxis.set_major_formatter(StrMethodFormatter(_THOUSANDS))
    ax.set_ylabel(f"mean {metric} per run")
    # Start the axis one span below the lowest step, so the steps are not lost on top of tall bars.
    levels = start + np.concatenate([[0.0], np.cumsum(steps["contribution"].to_numpy(float))])
    span = levels.max() - levels.min()
    ax.set_ylim(bottom=max(0.0, levels.min() - max(span, 0.05 * abs(levels.min()))))
    ax.set_title(f"What each lever contributes to the {metric} gap (Shapley values, whiskers: 95% CI)")
    return fig, ax


def _figure_and_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return _root_figure(ax), ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _root_figure(ax: Axes) -> Figure:
    parent: Figure | SubFigure | None = ax.get_figure()
    while isinstance(parent, SubFigure):
        parent = parent.get_figure()
    if not isinstance(parent, Figure):
        raise ValueError("ax is not attached to a figure")
    return parent


def _period_labels(table: pd.DataFrame) -> list[str]:
    for column in ("period", "month"):
        if column in table:
            return [str(p) for p in table[column]]
    raise ValueError(f"expected a 'period' or 'month' column, got {list(table.columns)}")


def _month_ticks(ax: Axes, x: np.ndarray, labels: list[str]) -> None:
    ax.set_xticks(x, labels=labels)
    if len(labels) > 6:
        ax.tick_params(axis="x", labelrotation=45)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}%"


def _check_table(table: pd.DataFrame, name: str, columns: Sequence[str]) -> None:
    if len(table) == 0:
        raise ValueError(f"{name} is empty: need at least one replication")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{name} is missing column(s) {missing}; got {list(table.columns)}")


def _replications(runs: int) -> str:
    return f"{runs:,} replication" + ("" if runs == 1 else "s")


# --- calibration (funnelsim calibrate) ------------------------------------------------------


def calibration_cycle_chart(km: pd.DataFrame, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """Kaplan–Meier share of deals closed by day ``t`` (with its 95% band) against each fitted CDF.

    ``km`` is the calibration's ``km.csv``: ``days, km_sf, km_ci_low, km_ci_high`` and one
    ``cdf_<family>`` column per fit (``cdf_closed_only_lognormal`` is drawn dashed: the
    biased fit that ignores open deals).
    """
    _check_table(km, "km", ["days", "km_sf", "km_ci_low", "km_ci_high"])
    fig, ax = _figure_and_axes(ax, (7, 4.5))
    days = km["days"].to_numpy(float)
    ax.step(days, 1 - km["km_sf"], where="post", color="black", label="Kaplan–Meier (open deals censored)")
    ax.fill_between(days, 1 - km["km_ci_high"], 1 - km["km_ci_low"], step="post", color="0.85", label="95% band")
    grid = np.linspace(0, days.max(), 200)
    fits = [c for c in km.columns if c.startswith("cdf_")]
    for i, column in enumerate(fits):
        dashed = "closed_only" in column
        label = column.removeprefix("cdf_").replace("_", " ")
        ax.plot(
            days,
            km[column],
            color=_SERIES[i % len(_SERIES)],
            linestyle="--" if dashed else "-",
            label=f"{label} fit" + (" (open deals dropped: biased)" if dashed else ""),
        )
    ax.set_xlim(0, grid.max())
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("days from opportunity created")
    ax.set_ylabel("share of deals closed")
    ax.set_title("Sales cycle: Kaplan–Meier vs fitted distributions")
    ax.legend(loc="lower right", fontsize="small")
    return fig, ax


def calibration_arrivals_chart(arrivals: pd.DataFrame, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """Opportunities per month (scaled to full months) and the fitted seasonal level.

    ``arrivals`` is the calibration's ``arrivals.csv``; the rows with ``kind == "opportunities"``
    are drawn: ``month``, ``per_month`` and ``seasonality_multiplier``.
    """
    _check_table(arrivals, "arrivals", ["kind", "month", "per_month", "seasonality_multiplier"])
    rows = arrivals[arrivals["kind"] == "opportunities"]
    fig, ax = _figure_and_axes(ax, (8, 4))
    x = np.arange(len(rows))
    ax.bar(x, rows["per_month"], color=_BAR, label="observed (per full month)")
    weights = rows["days_observed"].to_numpy(float) if "days_observed" in rows else np.ones(len(rows))
    level = np.nansum(rows["per_month"] * weights) / weights.sum() if weights.sum() else math.nan
    ax.plot(x, level * rows["seasonality_multiplier"], color=_LINE, marker="o", label="mean x seasonality")
    _month_ticks(ax, x, [str(m) for m in rows["month"]])
    ax.set_ylabel("opportunities per month")
    ax.set_title("Opportunity arrivals by month")
    ax.legend(loc="upper left", fontsize="small")
    return fig, ax


def calibration_deal_size_chart(
    amounts: pd.Series, mean: float, sd: float, currency: str = "", ax: Axes | None = None
) -> tuple[Figure, Axes]:
    """Histogram of deal amounts with the fitted lognormal density (parametrised by mean and sd)."""
    from scipy import stats

    values = np.asarray(amounts, float)
    values = values[np.isfinite(values) & (values > 0)]
    if len(values) == 0:
        raise ValueError("amounts is empty: need at least one positive amount")
    fig, ax = _figure_and_axes(ax, (7, 4))
    ax.hist(values, bins=min(40, max(10, len(values) // 10)), density=True, color=_BAR, alpha=0.7, label="deals")
    sigma2 = math.log1p((sd / mean) ** 2)
    grid = np.linspace(0, values.max(), 300)[1:]
    density = stats.lognorm.pdf(grid, math.sqrt(sigma2), scale=mean * math.exp(-sigma2 / 2))
    ax.plot(grid, density, color=_LINE, label=f"lognormal fit: mean {mean:,.0f}, sd {sd:,.0f}")
    ax.xaxis.set_major_formatter(StrMethodFormatter(_THOUSANDS))
    ax.set_xlabel(f"deal amount ({currency})" if currency else "deal amount")
    ax.set_ylabel("density")
    ax.set_title("Deal size")
    ax.legend(loc="upper right", fontsize="small")
    return fig, ax


# --- sweeps and sensitivity (funnelsim sweep / sensitivity) ---------------------------------


def sweep_chart(
    table: pd.DataFrame,
    parameter: str,
    metric: str = "revenue",
    unit: str = "",
    best: Any = None,
    ax: Axes | None = None,
) -> tuple[Figure, Axes]:
    """A metric against one swept parameter: the mean, its 95% CI band and the P10–P90 band.

    Parameters
    ----------
    table
        :meth:`funnelsim.studies.sweep.Sweep.table` rows: the ``parameter`` column and
        ``<metric>_mean``, ``_ci_low``, ``_ci_high``, ``_p10``, ``_p90``.
    unit
        Shown in the axis label (e.g. the currency).
    best
        The parameter value of the optimum, marked with a dotted line.
    """
    columns = [f"{metric}_{s}" for s in ("mean", "ci_low", "ci_high", "p10", "p90")]
    _check_table(table, "table", [parameter, *columns])
    fig, ax = _figure_and_axes(ax, (8.0, 4.5))
    values = table[parameter].tolist()
    numeric = all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in values)
    x = np.asarray(values, float) if numeric else np.arange(len(values), dtype=float)
    mean, lo, hi, p10, p90 = (table[c].to_numpy(float) for c in columns)
    ax.fill_between(x, p10, p90, color=_BAR, alpha=0.15, linewidth=0, label="P10–P90 across replications")
    ax.fill_between(x, lo, hi, color=_BAR, alpha=0.4, linewidth=0, label="95% CI of the mean")
    ax.plot(x, mean, color=_BAR, marker="o", label="mean")
    if best is not None:
        where = float(best) if numeric else float(values.index(best))
        ax.axvline(where, color=_GOAL, linestyle=":", label=f"best: {best:g}" if numeric else f"best: {best}")
    if not numeric:
        ax.set_xticks(x, labels=[str(v) for v in values])
    ax.yaxis.set_major_formatter(StrMethodFormatter(_THOUSANDS if np.nanmax(np.abs(mean)) >= 100 else "{x:,.3g}"))
    ax.set_xlabel(parameter)
    ax.set_ylabel(f"{metric} ({unit})" if unit else metric)
    ax.legend(loc="best", fontsize="small")
    ax.set_title(f"{metric} against {parameter} (same seeds at every point)")
    return fig, ax


def sweep_heatmap(
    table: pd.DataFrame, parameters: Sequence[str], metric: str = "revenue", unit: str = "", ax: Axes | None = None
) -> tuple[Figure, Axes]:
    """Mean of a metric over a grid of two parameters, each cell labelled; the best cell outlined.

    ``table`` is :meth:`funnelsim.studies.sweep.Sweep.table` of a two-parameter sweep; the first
    parameter runs down the rows, the second across the columns.
    """
    if len(parameters) != 2:
        raise ValueError(f"a heat map needs two parameters, got {list(parameters)}")
    rows_p, cols_p = parameters
    _check_table(table, "table", [rows_p, cols_p, f"{metric}_mean"])
    grid = table.pivot(index=rows_p, columns=cols_p, values=f"{metric}_mean")
    fig, ax = _figure_and_axes(ax, (8.0, 6.0))
    data = grid.to_numpy(float)
    image = ax.imshow(data, cmap="viridis", aspect="auto", origin="lower")
    fig.colorbar(image, ax=ax, label=f"mean {metric}" + (f" ({unit})" if unit else ""))
    ax.set_xticks(np.arange(data.shape[1]), labels=[_tick(v) for v in grid.columns])
    ax.set_yticks(np.arange(data.shape[0]), labels=[_tick(v) for v in grid.index])
    finite = np.isfinite(data).any()
    scale = np.nanmax(np.abs(data)) if finite else 0.0
    low, high = (np.nanmin(data), np.nanmax(data)) if finite else (0.0, 0.0)
    shade = (data - low) / (high - low) if high > low else np.zeros_like(data)
    for (i, j), value in np.ndenumerate(data):
        text = "n/a" if not math.isfinite(value) else (f"{value:,.0f}" if scale >= 100 else f"{value:.3g}")
        # Dark text on the bright (yellow) end of viridis, white on the dark end.
        ax.text(
            j, i, text, ha="center", va="center", fontsize="x-small", color="black" if shade[i, j] > 0.6 else "white"
        )
    if np.isfinite(data).any():
        i, j = np.unravel_index(np.nanargmax(data), data.shape)
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor=_GOAL, linewidth=2))
    ax.set_xlabel(cols_p)
    ax.set_ylabel(rows_p)
    ax.set_title(f"Mean {metric} (outlined: highest)")
    return fig, ax


def tornado_chart(table: pd.DataFrame, unit: str = "", top: int = 15, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """One-at-a-time sensitivity as a tornado: per parameter, the effect of its low and high value.

    Parameters
    ----------
    table
        :meth:`funnelsim.studies.sweep.Sensitivity.table` rows (sorted by swing): ``parameter``,
        ``metric``, ``low_value``, ``high_value``, ``low_diff``, ``high_diff`` (paired
        differences against the base) and their ``_ci_low``/``_ci_high``.
    top
        The parameters with the largest swings to show.
    """
    needed = ["parameter", "metric", "low_value", "high_value", "low_diff", "high_diff"]
    _check_table(
        table, "table", [*needed, "low_diff_ci_low", "low_diff_ci_high", "high_diff_ci_low", "high_diff_ci_high"]
    )
    rows = table.head(top).iloc[::-1]  # largest swing at the top
    fig, ax = _figure_and_axes(ax, (9.0, 0.45 * len(rows) + 1.6))
    y = np.arange(len(rows))
    for side, color, offset in (("low", _BAR, -0.2), ("high", _LINE, 0.2)):
        diff = rows[f"{side}_diff"].to_numpy(float)
        err = np.vstack(
            [diff - rows[f"{side}_diff_ci_low"].to_numpy(float), rows[f"{side}_diff_ci_high"].to_numpy(float) - diff]
        )
        ax.barh(y + offset, diff, height=0.4, color=color, xerr=np.nan_to_num(err), capsize=2,
                label=f"parameter {side}")  # fmt: skip
    ax.axvline(0, color="black", linewidth=0.8)
    labels = [
        f"{p}  ({_tick(lo)} / {_tick(hi)})"
        for p, lo, hi in zip(rows["parameter"], rows["low_value"], rows["high_value"], strict=True)
    ]
    ax.set_yticks(y, labels=labels, fontsize="small")
    metric = str(table["metric"].iloc[0])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: _compact(x)))
    ax.set_xlabel(
        f"change in mean {metric} against the base" + (f" ({unit})" if unit else "") + "; whiskers: paired 95% CI"
    )
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title(f"Sensitivity of {metric}, one parameter at a time")
    return fig, ax


def _tick(value: Any) -> str:
    if not isinstance(value, float | np.floating):
        return str(value)
    number = float(value)
    return f"{number:,.0f}" if abs(number) >= 1e4 else f"{number:.4g}"


def _compact(x: float) -> str:
    """1.5M, 250k, -3M: axis labels that do not run into each other."""
    for size, suffix in ((1e9, "bn"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= size:
            return f"{x / size:.3g}{suffix}"
    return f"{x:.3g}"
