"""Figures of a comparison (``funnelsim compare``): revenue per scenario, the funnels side by
side, leakage per scenario, and the Shapley waterfall of what each lever contributes."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter, StrMethodFormatter

from funnelsim.report.figures.style import (
    BAR_COLOR,
    LEAKAGE_NAMES,
    LINE_COLOR,
    SERIES_COLORS,
    STAGE_NAMES,
    THOUSANDS,
    check_table,
    compact_amount,
    figure_and_axes,
)

__all__ = ["compare_funnel_chart", "compare_leakage_chart", "compare_revenue_chart", "lever_waterfall_chart"]


def compare_revenue_chart(replications: pd.DataFrame, currency: str, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """Revenue across replications per scenario, overlaid as empirical CDFs with the means marked.

    Parameters
    ----------
    replications
        One row per scenario and replication: ``scenario`` and ``revenue``.
    """
    check_table(replications, "replications", ("scenario", "revenue"))
    fig, ax = figure_and_axes(ax, (8.0, 4.5))
    for i, (label, group) in enumerate(replications.groupby("scenario", sort=False)):
        values = np.sort(group["revenue"].to_numpy(float))
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post", color=color, label=str(label))
        ax.axvline(values.mean(), color=color, linestyle=":", linewidth=1)
    ax.xaxis.set_major_formatter(StrMethodFormatter(THOUSANDS))
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
    check_table(table, "table", ("metric", "scenario", "mean", "ci_low", "ci_high"))
    stages = [s for s in STAGE_NAMES if s in set(table["metric"])]
    labels = list(dict.fromkeys(table["scenario"]))
    fig, ax = figure_and_axes(ax, (9.0, 4.5))
    width = 0.8 / len(labels)
    x = np.arange(len(stages))
    top = 0.0
    for i, label in enumerate(labels):
        rows = table[table["scenario"] == label].set_index("metric").loc[stages]
        mean = rows["mean"].to_numpy(float)
        err = np.vstack([mean - rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float) - mean])
        where = x + (i - (len(labels) - 1) / 2) * width
        ax.bar(where, mean, width, yerr=np.nan_to_num(err), capsize=3,
               color=SERIES_COLORS[i % len(SERIES_COLORS)], label=label)  # fmt: skip
        # A linear axis keeps counts comparable; the late stages are short bars, so each carries its value.
        for xi, value in zip(where, mean, strict=True):
            ax.annotate(f"{value:,.0f}", xy=(xi, value), xytext=(0, 3), textcoords="offset points", ha="center",
                        va="bottom", fontsize="x-small", rotation=90 if len(labels) > 2 else 0)  # fmt: skip
        top = max(top, float(np.nanmax(rows["ci_high"].to_numpy(float), initial=0.0)), float(np.nanmax(mean)))
    ax.set_xticks(x, labels=[STAGE_NAMES[s] for s in stages])
    ax.set_ylim(0, 1.25 * top if top > 0 else 1.0)
    ax.yaxis.set_major_formatter(StrMethodFormatter(THOUSANDS))
    ax.set_xlabel("funnel stage")
    ax.set_ylabel("mean leads reaching the stage per run (count)")
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
    check_table(leakage, "leakage", ("reason", "scenario", "leads"))
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
                    color=SERIES_COLORS[i % len(SERIES_COLORS)], label=label)  # fmt: skip
        ax.set_yticks(y, labels=[LEAKAGE_NAMES.get(r, r) for r in group])
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(StrMethodFormatter(THOUSANDS))
        ax.set_xlabel("mean leads lost per run (count)")
    axes[1].legend(loc="lower right")
    fig.suptitle("Where leads leave the funnel, per scenario")
    return fig, (axes[0], axes[1])


def lever_waterfall_chart(
    attribution: pd.DataFrame,
    start: float,
    labels: tuple[str, str],
    metric: str = "revenue",
    ax: Axes | None = None,
    *,
    currency: str = "",
) -> tuple[Figure, Axes]:
    """From the first scenario to the second, one step per lever (its Shapley contribution).

    The value axis starts at zero, so a step's height reads against the whole: a truncated axis
    would make a 5% step look like a doubling. Each step is labelled with its signed amount.

    Parameters
    ----------
    attribution
        :meth:`funnelsim.studies.compare.Attribution.table` rows: ``lever``, ``contribution``,
        ``ci_low``, ``ci_high``, the last row being ``total``.
    start
        The first scenario's mean (the first bar).
    labels
        The two scenarios' names.
    currency
        Unit of the metric, shown in the axis label (the currency for revenue).
    """
    check_table(attribution, "attribution", ("lever", "contribution", "ci_low", "ci_high"))
    steps = attribution[attribution["lever"] != "total"]
    fig, ax = figure_and_axes(ax, (max(7.0, 1.1 * len(steps) + 3.0), 4.8))
    level = start
    ax.bar(0, start, color=BAR_COLOR)
    ax.annotate(compact_amount(start), xy=(0, start), xytext=(0, 3), textcoords="offset points", ha="center")
    for i, row in enumerate(steps.itertuples(), start=1):
        delta = float(row.contribution)
        ax.bar(i, delta, bottom=level, color="#55A868" if delta >= 0 else "#C44E52")
        err = [[delta - row.ci_low], [row.ci_high - delta]]
        ax.errorbar(i, level + delta, yerr=np.nan_to_num(np.abs(err)), color="black", capsize=3, linewidth=1)
        ax.plot([i - 1.4, i + 0.4], [level, level], color="grey", linewidth=0.6)
        sign = "+" if delta >= 0 else "−"
        ax.annotate(f"{sign}{compact_amount(abs(delta))}", xy=(i, max(level, level + delta)), xytext=(9, 3),
                    textcoords="offset points", ha="left", fontsize="small")  # fmt: skip
        level += delta
    end = len(steps) + 1
    ax.bar(end, level, color=LINE_COLOR)
    ax.annotate(compact_amount(level), xy=(end, level), xytext=(0, 3), textcoords="offset points", ha="center")
    ax.plot([end - 1.4, end + 0.4], [level, level], color="grey", linewidth=0.6)
    names = [labels[0], *[str(n) for n in steps["lever"]], labels[1]]
    ax.set_xticks(np.arange(end + 1), labels=names)
    ax.tick_params(axis="x", labelrotation=30)
    for text in ax.get_xticklabels():
        text.set_horizontalalignment("right")
        text.set_rotation_mode("anchor")
    ax.yaxis.set_major_formatter(StrMethodFormatter(THOUSANDS))
    ax.set_ylabel(f"mean {metric} per run" + (f" ({currency})" if currency else ""))
    levels = start + np.concatenate([[0.0], np.cumsum(steps["contribution"].to_numpy(float))])
    high = float(np.nanmax(np.append(levels, 0.0)))
    ax.set_ylim(min(0.0, float(np.nanmin(levels))), 1.12 * high if high > 0 else 1.0)  # from zero; room for labels
    ax.set_xlabel("scenario, then one lever at a time (Shapley contribution)")
    ax.set_title(f"What each lever contributes to the {metric} gap (Shapley values, whiskers: 95% CI)")
    return fig, ax
