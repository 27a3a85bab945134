"""Figures of a calibration (``funnelsim calibrate``): the Kaplan–Meier sales cycle against
each fitted distribution, monthly arrivals, the deal sizes, and the self-check."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter, StrMethodFormatter

from funnelsim.report.figures.style import (
    BAR_COLOR,
    LINE_COLOR,
    SERIES_COLORS,
    THOUSANDS,
    check_table,
    figure_and_axes,
    month_ticks,
)

SELFCHECK_LABELS = {
    "opportunities": "opportunities (count)",
    "wins": "wins (count)",
    "won_value": "won value (currency of the export)",
}
__all__ = [
    "calibration_arrivals_chart",
    "calibration_cycle_chart",
    "calibration_deal_size_chart",
    "calibration_selfcheck_chart",
]


def calibration_cycle_chart(km: pd.DataFrame, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """Kaplan–Meier share of deals closed by day ``t`` (with its 95% band) against each fitted CDF.

    ``km`` is the calibration's ``km.csv``: ``days, km_sf, km_ci_low, km_ci_high`` and one
    ``cdf_<family>`` column per fit (``cdf_closed_only_lognormal`` is drawn dashed: the
    biased fit that ignores open deals).
    """
    check_table(km, "km", ["days", "km_sf", "km_ci_low", "km_ci_high"])
    fig, ax = figure_and_axes(ax, (7, 4.5))
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
            color=SERIES_COLORS[i % len(SERIES_COLORS)],
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
    check_table(arrivals, "arrivals", ["kind", "month", "per_month", "seasonality_multiplier"])
    rows = arrivals[arrivals["kind"] == "opportunities"]
    fig, ax = figure_and_axes(ax, (8, 4))
    x = np.arange(len(rows))
    ax.bar(x, rows["per_month"], color=BAR_COLOR, label="observed (per full month)")
    weights = rows["days_observed"].to_numpy(float) if "days_observed" in rows else np.ones(len(rows))
    level = np.nansum(rows["per_month"] * weights) / weights.sum() if weights.sum() else math.nan
    ax.plot(x, level * rows["seasonality_multiplier"], color=LINE_COLOR, marker="o", label="mean x seasonality")
    month_ticks(ax, x, [str(m) for m in rows["month"]])
    ax.set_xlabel("month (opportunity created)")
    ax.set_ylabel("opportunities per month (count)")
    ax.set_title("Opportunity arrivals by month")
    ax.legend(loc="upper left", fontsize="small")
    return fig, ax


def calibration_deal_size_chart(
    amounts: pd.Series, mean: float, lognormal_mean: float, currency: str = "", ax: Axes | None = None
) -> tuple[Figure, Axes]:
    """Histogram of deal amounts, their mean (what the resampled deal size gives) and a lognormal fit's mean.

    A price list is multimodal; a lognormal through it can put the mean well away from the
    sample's, which is why the scenario resamples the amounts instead.
    """
    values = np.asarray(amounts, float)
    values = values[np.isfinite(values) & (values >= 0)]
    if len(values) == 0:
        raise ValueError("amounts is empty: need at least one amount")
    fig, ax = figure_and_axes(ax, (7, 4))
    ax.hist(values, bins=min(60, max(10, len(values) // 10)), density=True, color=BAR_COLOR, alpha=0.7, label="deals")
    ax.axvline(mean, color=LINE_COLOR, label=f"sample mean {mean:,.0f} (the scenario's)")
    if math.isfinite(lognormal_mean):
        ax.axvline(lognormal_mean, color="0.4", linestyle="--", label=f"lognormal fit's mean {lognormal_mean:,.0f}")
    ax.xaxis.set_major_formatter(StrMethodFormatter(THOUSANDS))
    ax.set_xlabel(f"deal amount ({currency or 'currency of the export'})")
    ax.set_ylabel("density (share of deals per unit of amount)")
    ax.set_title("Deal size: observed amounts, resampled")
    ax.legend(loc="upper right", fontsize="small")
    return fig, ax


def calibration_selfcheck_chart(table: pd.DataFrame, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """Observed months against the simulated P10–P90 band, one panel per quantity (``selfcheck.csv``).

    Months outside the band are drawn filled red; months not compared hollow. Returns the figure
    and the first panel's axes (with ``ax`` given, only opportunities are drawn on it).
    """
    check_table(table, "selfcheck", ["month", "quantity", "observed", "sim_p10", "sim_p50", "sim_p90", "compared"])
    quantities = ["opportunities", "wins", "won_value"]
    if ax is not None:
        fig, first = figure_and_axes(ax, (8, 3))
        axes, quantities = [first], quantities[:1]
    else:
        fig = Figure(figsize=(8, 8), layout="constrained")
        axes = list(fig.subplots(len(quantities), 1, sharex=True, squeeze=False)[:, 0])
    for panel, quantity in zip(axes, quantities, strict=True):
        rows = table[table["quantity"] == quantity]
        x = np.arange(len(rows))
        panel.fill_between(x, rows["sim_p10"], rows["sim_p90"], color="0.85", step="mid", label="simulated P10–P90")
        panel.plot(x, rows["sim_p50"], color="0.5", drawstyle="steps-mid", label="simulated median")
        compared = rows["compared"].to_numpy(bool)
        outside = compared & ((rows["observed"] < rows["sim_p10"]) | (rows["observed"] > rows["sim_p90"])).to_numpy()
        y = rows["observed"].to_numpy(float)
        inside = compared & ~outside
        panel.scatter(x[inside], y[inside], color=LINE_COLOR, zorder=3, label="observed")
        panel.scatter(x[outside], y[outside], color="tab:red", zorder=3, label="observed, outside")
        panel.scatter(
            x[~compared], y[~compared], facecolors="none", edgecolors=LINE_COLOR, zorder=3, label="not compared"
        )
        panel.set_ylabel(SELFCHECK_LABELS[quantity])
        panel.set_ylim(bottom=0)  # counts and amounts: read against zero
        if quantity == "won_value":
            panel.yaxis.set_major_formatter(StrMethodFormatter(THOUSANDS))
        month_ticks(panel, x, [str(m) for m in rows["month"]])
    axes[-1].set_xlabel("month")
    axes[0].set_title("Self-check: observed months against the calibrated scenario")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", fontsize="small", ncol=5)
    return fig, axes[0]
