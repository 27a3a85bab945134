"""Figures of a parameter study: a metric along one swept parameter (``funnelsim sweep``), a
heat map over two, and the tornado of ``funnelsim sensitivity``."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, StrMethodFormatter

from funnelsim.model.labels import parameter_label
from funnelsim.report.figures.style import (
    BAR_COLOR,
    GOAL_COLOR,
    LINE_COLOR,
    THOUSANDS,
    check_table,
    compact_amount,
    figure_and_axes,
    tick_label,
)

__all__ = ["sweep_chart", "sweep_heatmap", "tornado_chart"]


def sweep_chart(
    table: pd.DataFrame,
    parameter: str,
    metric: str = "revenue",
    unit: str = "",
    best: Any = None,
    ax: Axes | None = None,
    *,
    currency: str | None = None,
) -> tuple[Figure, Axes]:
    """A metric against one swept parameter: the mean, its 95% CI band and the P10–P90 band.

    The parameter is named in words with its unit (:func:`funnelsim.model.labels.parameter_label`;
    ``currency`` for its amounts).

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
    check_table(table, "table", [parameter, *columns])
    fig, ax = figure_and_axes(ax, (8.0, 4.5))
    values = table[parameter].tolist()
    numeric = all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in values)
    x = np.asarray(values, float) if numeric else np.arange(len(values), dtype=float)
    mean, lo, hi, p10, p90 = (table[c].to_numpy(float) for c in columns)
    ax.fill_between(x, p10, p90, color=BAR_COLOR, alpha=0.15, linewidth=0, label="P10–P90 across replications")
    ax.fill_between(x, lo, hi, color=BAR_COLOR, alpha=0.4, linewidth=0, label="95% CI of the mean")
    ax.plot(x, mean, color=BAR_COLOR, marker="o", label="mean")
    if best is not None:
        where = float(best) if numeric else float(values.index(best))
        ax.axvline(where, color=GOAL_COLOR, linestyle=":", label=f"best: {best:g}" if numeric else f"best: {best}")
    if not numeric:
        ax.set_xticks(x, labels=[str(v) for v in values])
    ax.yaxis.set_major_formatter(StrMethodFormatter(THOUSANDS if np.nanmax(np.abs(mean)) >= 100 else "{x:,.3g}"))
    if np.nanmin(np.concatenate([p10, lo, mean])) >= 0:
        ax.set_ylim(bottom=0)  # a non-negative metric from zero: the bands read against the whole
    ax.set_xlabel(parameter_label(parameter, currency=currency))
    ax.set_ylabel(f"{metric} over the horizon" + (f" ({unit})" if unit else ""))
    ax.legend(loc="best", fontsize="small")
    ax.set_title(f"{metric.capitalize()} along the sweep (same seeds at every point)")
    return fig, ax


def sweep_heatmap(
    table: pd.DataFrame,
    parameters: Sequence[str],
    metric: str = "revenue",
    unit: str = "",
    ax: Axes | None = None,
    *,
    currency: str | None = None,
) -> tuple[Figure, Axes]:
    """Mean of a metric over a grid of two parameters, each cell labelled; the best cell outlined.

    ``table`` is :meth:`funnelsim.studies.sweep.Sweep.table` of a two-parameter sweep; the first
    parameter runs down the rows, the second across the columns.
    """
    if len(parameters) != 2:
        raise ValueError(f"a heat map needs two parameters, got {list(parameters)}")
    rows_p, cols_p = parameters
    check_table(table, "table", [rows_p, cols_p, f"{metric}_mean"])
    grid = table.pivot(index=rows_p, columns=cols_p, values=f"{metric}_mean")
    fig, ax = figure_and_axes(ax, (8.0, 6.0))
    data = grid.to_numpy(float)
    image = ax.imshow(data, cmap="viridis", aspect="auto", origin="lower")
    fig.colorbar(image, ax=ax, label=f"mean {metric}" + (f" ({unit})" if unit else ""))
    ax.set_xticks(np.arange(data.shape[1]), labels=[tick_label(v) for v in grid.columns])
    ax.set_yticks(np.arange(data.shape[0]), labels=[tick_label(v) for v in grid.index])
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
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor=GOAL_COLOR, linewidth=2))
    ax.set_xlabel(parameter_label(cols_p, currency=currency))
    ax.set_ylabel(parameter_label(rows_p, currency=currency))
    ax.set_title(f"Mean {metric} (outlined: highest)")
    return fig, ax


def tornado_chart(
    table: pd.DataFrame, unit: str = "", top: int = 15, ax: Axes | None = None, *, currency: str | None = None
) -> tuple[Figure, Axes]:
    """One-at-a-time sensitivity as a tornado: per parameter, the effect of its low and high value.

    Each parameter is named in words with its unit (:func:`funnelsim.model.labels.parameter_label`,
    amounts in ``currency``), its low and high value on the line below.

    Parameters
    ----------
    table
        :meth:`funnelsim.studies.sensitivity.Sensitivity.table` rows (sorted by swing): ``parameter``,
        ``metric``, ``low_value``, ``high_value``, ``low_diff``, ``high_diff`` (paired
        differences against the base) and their ``_ci_low``/``_ci_high``.
    top
        The parameters with the largest swings to show.
    """
    needed = ["parameter", "metric", "low_value", "high_value", "low_diff", "high_diff"]
    check_table(
        table, "table", [*needed, "low_diff_ci_low", "low_diff_ci_high", "high_diff_ci_low", "high_diff_ci_high"]
    )
    rows = table.head(top).iloc[::-1]  # largest swing at the top
    fig, ax = figure_and_axes(ax, (10.0, 0.62 * len(rows) + 1.6))
    y = np.arange(len(rows))
    for side, color, offset in (("low", BAR_COLOR, -0.2), ("high", LINE_COLOR, 0.2)):
        diff = rows[f"{side}_diff"].to_numpy(float)
        err = np.vstack(
            [diff - rows[f"{side}_diff_ci_low"].to_numpy(float), rows[f"{side}_diff_ci_high"].to_numpy(float) - diff]
        )
        ax.barh(y + offset, diff, height=0.4, color=color, xerr=np.nan_to_num(err), capsize=2,
                label=f"parameter {side}")  # fmt: skip
    ax.axvline(0, color="black", linewidth=0.8)
    labels = [
        _wrapped(parameter_label(str(p), currency=currency)) + f"\nlow {tick_label(lo)} / high {tick_label(hi)}"
        for p, lo, hi in zip(rows["parameter"], rows["low_value"], rows["high_value"], strict=True)
    ]
    ax.set_yticks(y, labels=labels, fontsize="small")
    metric = str(table["metric"].iloc[0])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: compact_amount(x)))
    ax.set_xlabel(
        f"change in mean {metric} against the base" + (f" ({unit})" if unit else "") + "; whiskers: paired 95% CI"
    )
    ax.legend(loc="best", fontsize="small")
    ax.set_title(f"Sensitivity of {metric}, one parameter at a time")
    return fig, ax


def _wrapped(label: str, width: int = 44) -> str:
    """A tick label on lines of ``width`` characters; the unit in brackets is never split."""
    head, bracket, unit = label.rpartition(" (")
    if bracket and unit.endswith(")"):
        label = head + " (" + unit.replace(" ", "\N{NO-BREAK SPACE}")
    return "\n".join(textwrap.wrap(label, width))
