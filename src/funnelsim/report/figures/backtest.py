"""Figures of a back-test (``funnelsim backtest``): each quarter's forecast range against what happened.

Ranges are percentiles across the forecast's replications (numpy's ``"linear"`` method), as in
the Monte Carlo figures: P10–P90 holds the middle 80% of outcomes, P25–P75 the middle half.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from funnelsim.report.figures.style import (
    BANDS,
    BAR_COLOR,
    GOAL_COLOR,
    check_table,
    compact_amount,
    figure_and_axes,
    month_ticks,
    replications_label,
)

__all__ = ["backtest_chart"]

METRIC_NAMES = {"wins": "wins", "won_value": "won value"}


def backtest_chart(
    forecast: pd.DataFrame, actuals: pd.DataFrame, metric: str, currency: str, ax: Axes | None = None
) -> tuple[Figure, Axes]:
    """Per quarter, the forecast's P10–P90 and P25–P75 bands and median, and the actual as a dot:
    filled when inside P10–P90, a hollow red ring outside.

    Parameters
    ----------
    forecast
        One row per replication and quarter: ``replication, quarter`` and the ``metric`` column.
    actuals
        One row per quarter: ``quarter, label`` and the ``metric`` column.
    metric
        ``"wins"`` or ``"won_value"``.
    currency
        Shown on the axis of won value.
    ax
        Axes to draw into; a new figure when omitted.

    Returns
    -------
    (fig, ax)
    """
    check_table(forecast, "forecast", ("replication", "quarter", metric))
    check_table(actuals, "actuals", ("quarter", "label", metric))
    quarters = sorted(actuals["quarter"])
    missing = sorted(set(quarters) - set(forecast["quarter"]))
    if missing:
        raise ValueError(f"forecast has no replications for quarter(s) {missing}")
    bands = np.array(
        [np.percentile(forecast.loc[forecast["quarter"] == q, metric].to_numpy(float), BANDS) for q in quarters]
    )
    actual = actuals.set_index("quarter").loc[quarters, metric].to_numpy(float)
    inside = (bands[:, 0] <= actual) & (actual <= bands[:, -1])
    fig, ax = figure_and_axes(ax, (max(4.5, 1.6 * len(quarters) + 2.5), 4.5))
    x = np.arange(len(quarters))
    ax.bar(x, bands[:, 4] - bands[:, 0], bottom=bands[:, 0], width=0.5, color=BAR_COLOR, alpha=0.25)
    ax.bar(x, bands[:, 3] - bands[:, 1], bottom=bands[:, 1], width=0.5, color=BAR_COLOR, alpha=0.45)
    ax.hlines(bands[:, 2], x - 0.25, x + 0.25, color=BAR_COLOR, linewidth=2)
    ax.scatter(x[inside], actual[inside], s=60, color="black", zorder=3)
    ax.scatter(x[~inside], actual[~inside], s=80, facecolors="none", edgecolors=GOAL_COLOR, linewidths=2, zorder=3)
    labels = actuals.set_index("quarter").loc[quarters, "label"].astype(str).tolist()
    month_ticks(ax, x, labels)
    ax.set_xlabel("quarter after the cut-off")
    name = METRIC_NAMES.get(metric, metric)
    if metric == "won_value":
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: compact_amount(v)))
        ax.set_ylabel(f"{name} ({currency})")
    else:
        ax.set_ylabel(f"{name} (count)")
    runs = forecast["replication"].nunique()
    ax.set_title(f"Back-test: {name} per quarter, forecast ({replications_label(runs)}) vs actual")
    top = max(float(bands.max()), float(actual.max()), 1.0)
    ax.set_ylim(bottom=0, top=1.4 * top)  # headroom for the legend
    handles = [
        Patch(color=BAR_COLOR, alpha=0.25, label="forecast P10–P90"),
        Patch(color=BAR_COLOR, alpha=0.45, label="forecast P25–P75"),
        Line2D([], [], color=BAR_COLOR, linewidth=2, label="forecast median"),
        Line2D([], [], marker="o", linestyle="", color="black", label="actual, inside P10–P90"),
        Line2D([], [], marker="o", linestyle="", markerfacecolor="none", markeredgecolor=GOAL_COLOR,
               markeredgewidth=2, label="actual, outside"),
    ]  # fmt: skip
    ax.legend(handles=handles, loc="upper left", fontsize="small", ncols=2)
    return fig, ax
