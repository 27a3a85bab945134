"""Figures of recurring revenue: the ARR bridge as a waterfall, and ARR month by month.

Both take the monthly ARR bridge (:func:`funnelsim.run.recurring.arr_bridge`) and an optional
``ax``, and return ``(fig, ax)``; :func:`arr_bridge_figure` puts the two side by side (the
``figures/arr_bridge`` of ``funnelsim run --out`` on a subscription scenario).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter

from funnelsim.report.figures.style import (
    BAR_COLOR,
    LINE_COLOR,
    THOUSANDS,
    check_table,
    compact_amount,
    figure_and_axes,
    month_ticks,
    period_labels,
)

__all__ = ["WATERFALL_STEPS", "arr_bridge_figure", "arr_by_month_chart", "arr_waterfall_chart", "waterfall_steps"]

GAIN_COLOR = "#55A868"
LOSS_COLOR = "#C44E52"
WATERFALL_STEPS = (
    ("opening\nARR", "opening_arr", 0),
    ("new\ncustomers", "new_arr", 1),
    ("expansion", "expansion_arr", 1),
    ("contraction", "contraction_arr", -1),
    ("churn", "churned_arr", -1),
    ("closing\nARR", "closing_arr", 0),
)
"""The bars of the waterfall: label, bridge column, and +1 / -1 for a step up or down (0: a total)."""
BRIDGE = ("opening_arr", "new_arr", "expansion_arr", "contraction_arr", "churned_arr", "closing_arr")


def waterfall_steps(bridge: pd.DataFrame) -> pd.DataFrame:
    """The waterfall's bars over the whole table: ``step``, ``bottom``, ``height`` (signed) and ``top``.

    Opening is the first period's opening ARR, closing the last period's closing ARR, and each
    flow the sum over the periods, stacked from the opening: so the last step's top is the closing.
    """
    check_table(bridge, "bridge", BRIDGE)
    totals = {
        "opening_arr": float(bridge["opening_arr"].iloc[0]),
        "closing_arr": float(bridge["closing_arr"].iloc[-1]),
    }
    rows, level = [], 0.0
    for label, column, sign in WATERFALL_STEPS:
        if sign == 0:
            value = totals[column]
            rows.append((label, 0.0, value, value))
            level = value
        else:
            delta = sign * float(bridge[column].sum())
            rows.append((label, level, delta, level + delta))
            level += delta
    return pd.DataFrame(rows, columns=["step", "bottom", "height", "top"])


def arr_waterfall_chart(bridge: pd.DataFrame, currency: str, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """From opening to closing ARR: new customers and expansion up, contraction and churn down.

    Parameters
    ----------
    bridge
        The ARR bridge by period (:func:`funnelsim.run.recurring.arr_bridge`), over the horizon.
    currency
        Currency of the amounts, shown in the axis label.
    ax
        Axes to draw into; a new figure when omitted.

    Returns
    -------
    (fig, ax)
        One bar per step of :data:`WATERFALL_STEPS`, in that order (:func:`waterfall_steps`).
    """
    steps = waterfall_steps(bridge)
    fig, ax = figure_and_axes(ax, (7.5, 4.5))
    colors = [BAR_COLOR if sign == 0 else GAIN_COLOR if sign > 0 else LOSS_COLOR for _, _, sign in WATERFALL_STEPS]
    x = np.arange(len(steps))
    ax.bar(x, steps["height"], bottom=steps["bottom"], color=colors, width=0.6)
    for i, row in enumerate(steps.itertuples()):
        sign = WATERFALL_STEPS[i][2]
        text = (
            compact_amount(row.height) if sign == 0 else f"{'+' if sign > 0 else '−'}{compact_amount(abs(row.height))}"
        )
        ax.annotate(text, xy=(i, max(row.bottom, row.top)), xytext=(0, 3), textcoords="offset points", ha="center")
        if i + 1 < len(steps):
            ax.plot([i + 0.3, i + 0.7], [row.top, row.top], color="grey", linewidth=0.6)
    ax.set_xticks(x, labels=[str(s) for s in steps["step"]])
    ax.yaxis.set_major_formatter(StrMethodFormatter(THOUSANDS))
    top = float(np.nanmax(steps[["bottom", "top"]].to_numpy(), initial=0.0))
    ax.set_ylim(0, 1.15 * top if top > 0 else 1.0)
    ax.set_xlabel("step of the bridge over the horizon")
    ax.set_ylabel(f"annual recurring revenue ({currency})")
    ax.set_title("ARR bridge: opening + new + expansion − contraction − churn = closing")
    return fig, ax


def arr_by_month_chart(bridge: pd.DataFrame, currency: str, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """ARR at the end of each month (line) and the month's net new ARR (bars).

    Parameters
    ----------
    bridge
        The monthly ARR bridge (:func:`funnelsim.run.recurring.arr_bridge`).
    currency
        Currency of the amounts.
    ax
        Axes to draw into; a new figure when omitted.

    Returns
    -------
    (fig, ax)
        ``ax`` holds one bar per month (``net_new_arr``, green up, red down) and the line of
        ``closing_arr``.
    """
    check_table(bridge, "bridge", ("closing_arr", "net_new_arr"))
    labels = period_labels(bridge)
    fig, ax = figure_and_axes(ax, (9.0, 4.5))
    x = np.arange(len(labels))
    net = bridge["net_new_arr"].to_numpy(float)
    bars = ax.bar(x, net, width=0.7, color=np.where(net >= 0, GAIN_COLOR, LOSS_COLOR), label="net new ARR in the month")
    (line,) = ax.plot(x, bridge["closing_arr"].to_numpy(float), color=LINE_COLOR, marker="o", label="ARR at month end")
    ax.axhline(0, color="grey", linewidth=0.6)
    month_ticks(ax, x, labels)
    ax.yaxis.set_major_formatter(StrMethodFormatter(THOUSANDS))
    ax.set_xlabel("month")
    ax.set_ylabel(f"annual recurring revenue ({currency})")
    ax.legend(handles=[line, bars], loc="upper left")
    ax.set_title("ARR by month")
    return fig, ax


def arr_bridge_figure(bridge: pd.DataFrame, currency: str) -> tuple[Figure, tuple[Axes, Axes]]:
    """:func:`arr_waterfall_chart` and :func:`arr_by_month_chart` side by side, in a new figure.

    Returns
    -------
    (fig, (waterfall_ax, months_ax))
    """
    fig = Figure(figsize=(15.0, 4.8), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.3])
    arr_waterfall_chart(bridge, currency, left)
    arr_by_month_chart(bridge, currency, right)
    return fig, (left, right)
