"""Figures of many runs (``funnelsim run --runs N``): a fan chart of cumulative revenue,
the distribution of revenue, and the funnel with its P10–P90 range.

Ranges across replications are percentiles of the replications' values (numpy's
``"linear"`` method): P10–P90 holds the middle 80% of outcomes, P25–P75 the middle half.
A single replication is allowed; its ranges collapse to a line.

:func:`revenue_distribution` is the one figure that always draws its own figure, of two
panels side by side (histogram and ECDF), and returns ``(fig, (hist_ax, ecdf_ax))``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter, StrMethodFormatter

from funnelsim.report.figures.style import (
    BANDS,
    BAR_COLOR,
    GOAL_COLOR,
    LINE_COLOR,
    STAGE_NAMES,
    THOUSANDS,
    check_table,
    figure_and_axes,
    month_ticks,
    percent,
    replications_label,
)

__all__ = ["fan_chart", "funnel_range_chart", "revenue_distribution"]


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
    check_table(monthly, "monthly", ("replication", "month", "cumulative_revenue"))
    table = monthly.assign(month=monthly["month"].astype(str))
    if table.duplicated(["replication", "month"]).any():
        raise ValueError("monthly has more than one row for the same replication and month")
    by_month = table.pivot(index="replication", columns="month", values="cumulative_revenue")
    months = sorted(str(m) for m in by_month.columns)
    values = by_month[months].to_numpy(dtype=float)
    if np.isnan(values).any():
        raise ValueError("monthly: every replication must have a cumulative_revenue for every month")
    runs = len(by_month)
    p10, p25, p50, p75, p90 = np.percentile(values, BANDS, axis=0, method="linear")
    fig, ax = figure_and_axes(ax, (9.0, 4.5))
    x = np.arange(len(months))
    ax.fill_between(x, p10, p90, color=BAR_COLOR, alpha=0.2, linewidth=0, label="P10–P90")
    ax.fill_between(x, p25, p75, color=BAR_COLOR, alpha=0.45, linewidth=0, label="P25–P75")
    ax.plot(x, p50, color=BAR_COLOR, marker="o", label="median (P50)")
    if goal is not None:
        ax.axhline(goal, color=GOAL_COLOR, linestyle="--", label=f"goal: {goal:,.0f} {currency}")
    month_ticks(ax, x, months)
    top = max(float(p90.max(initial=0.0)), 0.0 if goal is None else goal)
    ax.set_ylim(0, 1.15 * top if top > 0 else 1.0)  # headroom for the legend
    ax.yaxis.set_major_formatter(StrMethodFormatter(THOUSANDS))
    ax.set_xlabel("month (by close date)")
    ax.set_ylabel(f"cumulative revenue ({currency})")
    ax.legend(loc="upper left")
    ax.set_title(f"Cumulative revenue across {replications_label(runs)}")
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
    revenue = _sorted_revenue(replications, p_goal)
    median = float(np.percentile(revenue, 50, method="linear"))
    fig = Figure(figsize=(11.0, 4.5), layout="constrained")
    hist_ax = fig.add_subplot(1, 2, 1)
    ecdf_ax = fig.add_subplot(1, 2, 2)
    _draw_histogram(hist_ax, revenue)
    _draw_ecdf(ecdf_ax, revenue)
    for panel in (hist_ax, ecdf_ax):
        _mark_revenue_axis(panel, median, goal, currency)
    # The ECDF rises from bottom left, leaving its top left free; a histogram's free corner varies.
    hist_ax.legend(loc="best", fontsize="small")
    ecdf_ax.legend(loc="upper left", fontsize="small")
    if p_goal is not None:
        _annotate_p_goal(ecdf_ax, p_goal)
    return fig, (hist_ax, ecdf_ax)


def _sorted_revenue(replications: pd.DataFrame, p_goal: float | None) -> np.ndarray:
    """The replications' revenues, sorted; refuses missing values and a ``p_goal`` outside 0-1."""
    check_table(replications, "replications", ("revenue",))
    revenue = np.sort(replications["revenue"].to_numpy(dtype=float))
    if np.isnan(revenue).any():
        raise ValueError("replications: revenue has missing values")
    if p_goal is not None and not 0.0 <= p_goal <= 1.0:
        raise ValueError(f"p_goal must be a probability between 0 and 1, got {p_goal}")
    return revenue


def _draw_histogram(ax: Axes, revenue: np.ndarray) -> None:
    """The left panel: how many replications fall in each revenue bin."""
    # "auto" bins suit a few replications and many alike; cap them so thousands stay readable.
    bins = min(len(np.histogram_bin_edges(revenue, bins="auto")) - 1, 50)
    # Replications that all agree would get a bin one unit wide, invisible on a scale of millions.
    half_width = max(0.05 * abs(revenue[0]), 0.5)
    spread = None if revenue[-1] > revenue[0] else (revenue[0] - half_width, revenue[0] + half_width)
    ax.hist(revenue, bins=bins, range=spread, color=BAR_COLOR, alpha=0.8, label="replications")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("replications (count)")
    ax.set_title(f"Revenue across {replications_label(len(revenue))}")


def _draw_ecdf(ax: Axes, revenue: np.ndarray) -> None:
    """The right panel: a step through the sorted revenues at heights ``i / n``."""
    runs = len(revenue)
    ax.step(
        revenue,
        np.arange(1, runs + 1) / runs,
        where="post",
        color=BAR_COLOR,
        marker="o" if runs == 1 else None,
        label="ECDF",
    )
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set_ylabel("share of replications with revenue ≤ x")
    ax.set_title("Cumulative share of replications")


def _mark_revenue_axis(ax: Axes, median: float, goal: float | None, currency: str) -> None:
    """Median and goal lines, and a money x axis, shared by both panels."""
    ax.axvline(median, color=LINE_COLOR, label=f"median: {median:,.0f} {currency}")
    if goal is not None:
        ax.axvline(goal, color=GOAL_COLOR, linestyle="--", label=f"goal: {goal:,.0f} {currency}")
    # Money in full (12,000,000) is wide: few ticks, slanted, so neighbours never overlap.
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.xaxis.set_major_formatter(StrMethodFormatter(THOUSANDS))
    ax.tick_params(axis="x", labelrotation=30)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
        label.set_rotation_mode("anchor")
    ax.set_xlabel(f"revenue over the horizon ({currency})")


def _annotate_p_goal(ax: Axes, p_goal: float) -> None:
    ax.annotate(
        f"P(revenue ≥ goal) = {percent(p_goal)}",
        xy=(0.98, 0.04),
        xycoords="axes fraction",
        ha="right",
        va="bottom",
        bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "0.7"},
    )


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
    check_table(replications, "replications", stages)
    volumes = replications[stages].to_numpy(dtype=float)
    if np.isnan(volumes).any():
        raise ValueError("replications: stage volumes have missing values")
    means = volumes.mean(axis=0)
    p10, p90 = np.percentile(volumes, [10, 90], axis=0, method="linear")
    fig, ax = figure_and_axes(ax, (8.5, 1.2 + 0.6 * len(stages)))
    y = np.arange(len(stages))
    # A skewed stage (a rare large outcome) can put the mean outside P10–P90; the whisker then
    # stops at the bar on that side, and the label still gives the true percentiles.
    xerr = np.vstack([np.maximum(means - p10, 0.0), np.maximum(p90 - means, 0.0)])
    ax.barh(y, means, height=0.6, color=BAR_COLOR, xerr=xerr, capsize=4, error_kw={"ecolor": "0.2"})
    ax.set_yticks(y, labels=[STAGE_NAMES[s] for s in stages])
    ax.invert_yaxis()
    for i in range(len(stages)):
        text = f"{means[i]:,.0f} (P10 {p10[i]:,.0f} – P90 {p90[i]:,.0f})"
        right = max(means[i], p90[i])
        ax.annotate(text, xy=(right, y[i]), xytext=(6, 0), textcoords="offset points", va="center", ha="left")
    top = float(np.maximum(means, p90).max())
    ax.set_xlim(0, 1.7 * top if top > 0 else 1.0)  # room for the labels
    ax.xaxis.set_major_formatter(StrMethodFormatter(THOUSANDS))
    ax.set_xlabel("leads reaching the stage (count; mean, whiskers P10–P90)")
    ax.set_title(f"Funnel across {replications_label(len(volumes))}: mean and P10–P90")
    return fig, ax
