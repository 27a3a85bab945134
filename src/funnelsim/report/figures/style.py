"""Shared look of every funnelsim figure: stage and team names, colours, percentile bands,
and the small helpers that make a figure (or draw into a given ``ax``) and format its axes.

The figure modules import from here, so one palette and one set of labels hold across
the run, Monte Carlo, plan, comparison, sweep and calibration charts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure

__all__ = [
    "BANDS",
    "BAR_COLOR",
    "GOAL_COLOR",
    "INFO_REASONS",
    "LEAKAGE_NAMES",
    "LINE_COLOR",
    "SERIES_COLORS",
    "SINGULAR",
    "STAGE_IN_TEXT",
    "STAGE_NAMES",
    "TEAM_COLORS",
    "TEAM_NAMES",
    "THOUSANDS",
    "check_table",
    "compact_amount",
    "figure_and_axes",
    "month_ticks",
    "percent",
    "period_labels",
    "replications_label",
    "root_figure",
    "tick_label",
]

STAGE_NAMES = {"leads": "Leads", "mqls": "MQLs", "sqls": "SQLs", "opportunities": "Opportunities", "wins": "Wins"}
INFO_REASONS = ("recycled", "recycled_then_won", "still_open")
"""Leakage rows that are not a loss (a recycled lead may still win; an open lead is still in play)."""
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
TEAM_NAMES = {"sdr": "SDR", "ae": "AE"}
STAGE_IN_TEXT = {"leads": "leads", "mqls": "MQLs", "sqls": "SQLs", "opportunities": "opportunities", "wins": "wins"}
SINGULAR = {"leads": "lead", "mqls": "mql", "sqls": "sql", "opportunities": "opportunity", "wins": "win"}
THOUSANDS = "{x:,.0f}"
BAR_COLOR = "#4C72B0"
LINE_COLOR = "#DD8452"
TEAM_COLORS = {"sdr": "#4C72B0", "ae": "#C44E52"}
GOAL_COLOR = "#C44E52"
BANDS = [10, 25, 50, 75, 90]
SERIES_COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860"]


def figure_and_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return root_figure(ax), ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def root_figure(ax: Axes) -> Figure:
    parent: Figure | SubFigure | None = ax.get_figure()
    while isinstance(parent, SubFigure):
        parent = parent.get_figure()
    if not isinstance(parent, Figure):
        raise ValueError("ax is not attached to a figure")
    return parent


def period_labels(table: pd.DataFrame) -> list[str]:
    for column in ("period", "month"):
        if column in table:
            return [str(p) for p in table[column]]
    raise ValueError(f"expected a 'period' or 'month' column, got {list(table.columns)}")


def month_ticks(ax: Axes, x: np.ndarray, labels: list[str]) -> None:
    ax.set_xticks(x, labels=labels)
    if len(labels) > 6:
        ax.tick_params(axis="x", labelrotation=45)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")


def percent(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}%"


def check_table(table: pd.DataFrame, name: str, columns: Sequence[str]) -> None:
    if len(table) == 0:
        raise ValueError(f"{name} is empty: need at least one replication")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{name} is missing column(s) {missing}; got {list(table.columns)}")


def replications_label(runs: int) -> str:
    return f"{runs:,} replication" + ("" if runs == 1 else "s")


def tick_label(value: Any) -> str:
    if not isinstance(value, float | np.floating):
        return str(value)
    number = float(value)
    return f"{number:,.0f}" if abs(number) >= 1e4 else f"{number:.4g}"


def compact_amount(x: float) -> str:
    """1.5M, 250k, -3M: axis labels that do not run into each other."""
    for size, suffix in ((1e9, "bn"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= size:
            return f"{x / size:.3g}{suffix}"
    return f"{x:.3g}"
