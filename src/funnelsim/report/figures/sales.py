"""Figures of the sales team's management views: AE attainment against quota, and the pipeline by month.

Each takes a table of :mod:`funnelsim.run.quotas` or :mod:`funnelsim.run.pipeline_views`
(``attainment.csv``, ``pipeline_views.csv``) and an optional ``ax``, and returns ``(fig, ax)``;
they are the ``figures/attainment`` and ``figures/pipeline_views`` of ``funnelsim run --out``
for a scenario with AE quotas or a forecast section.

>>> import pandas as pd
>>> fig, ax = attainment_chart(pd.DataFrame({"attainment": [0.4, 0.8, 1.1, 1.3]}))
>>> fig.savefig("attainment.png")  # doctest: +SKIP
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter, StrMethodFormatter

from funnelsim.report.figures.style import (
    BAR_COLOR,
    GOAL_COLOR,
    SERIES_COLORS,
    THOUSANDS,
    figure_and_axes,
    month_ticks,
    period_labels,
)

__all__ = ["BIN_WIDTH", "CATEGORY_NAMES", "attainment_chart", "pipeline_views_chart"]

BIN_WIDTH = 0.1
"""Width of the attainment histogram's bins: 10 percentage points of quota."""
CATEGORY_NAMES = {"commit": "commit", "best_case": "best case", "pipeline": "pipeline"}
CATEGORY_COLORS = (SERIES_COLORS[2], SERIES_COLORS[0], "#A1C9F4", "0.75")
"""Commit, best case, pipeline, and deals open since before day 0 (no category)."""


def attainment_chart(attainment: pd.DataFrame, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """Histogram of AE attainment (bookings ÷ ramped quota), linear axis, with the 100% line.

    Parameters
    ----------
    attainment
        One row per AE with an ``attainment`` column (``attainment.csv``; NaN rows, AEs without
        quota, are left out).
    ax
        Axes to draw into; a new figure when omitted.

    Returns
    -------
    (fig, ax)
        Bins of :data:`BIN_WIDTH` from 0 (AEs per bin, the bars' heights sum to the AEs drawn); the
        vertical line is at 100% of quota.
    """
    values = attainment["attainment"].to_numpy(dtype=float)
    values = values[~np.isnan(values)]
    top = max(1.5, float(values.max(initial=0.0)))
    edges = np.arange(0.0, math.floor(top / BIN_WIDTH) * BIN_WIDTH + 2 * BIN_WIDTH - 1e-9, BIN_WIDTH)
    fig, ax = figure_and_axes(ax, (7.5, 4.5))
    ax.hist(values, bins=list(edges), color=BAR_COLOR, edgecolor="white")
    ax.axvline(1.0, color=GOAL_COLOR, linestyle="--", label="quota (100%)")
    at_quota, at_70 = int(np.sum(values >= 1.0)), int(np.sum(values >= 0.7))
    ax.annotate(
        f"{at_quota} of {len(values)} AEs at ≥100% of ramped quota; {at_70} at ≥70%",
        xy=(0.99, 0.97),
        xycoords="axes fraction",
        ha="right",
        va="top",
        fontsize="small",
    )
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0, edges[-1])
    ax.set_ylim(0, max(1.0, 1.25 * float(np.histogram(values, bins=edges)[0].max(initial=0))))
    ax.set_xlabel("attainment (bookings ÷ ramped quota)")
    ax.set_ylabel("AEs (count)")
    ax.legend(loc="upper left")
    ax.set_title("Quota attainment of the AEs")
    return fig, ax


def pipeline_views_chart(months: pd.DataFrame, currency: str, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """Open pipeline at each month end stacked by forecast category (bars), and coverage (line, right axis).

    Parameters
    ----------
    months
        ``pipeline_views.csv``: ``month``, ``commit_value``, ``best_case_value``, ``pipeline_value``,
        ``unseen_value`` and ``coverage`` (open value ÷ remaining target of the period).
    currency
        Currency of the amounts, shown in the axis label.
    ax
        Axes for the bars; the coverage line goes on a twin axis (``ax.twinx()``, in ``fig.axes``).

    Returns
    -------
    (fig, ax)
        ``ax`` holds the stacked bars, in the order commit, best case, pipeline, no category.
    """
    labels = period_labels(months)
    x = np.arange(len(labels))
    fig, ax = figure_and_axes(ax, (9.0, 4.5))
    bottom = np.zeros(len(x))
    handles = []
    parts = [*CATEGORY_NAMES.items(), ("unseen", "open since before day 0")]
    for (key, name), color in zip(parts, CATEGORY_COLORS, strict=True):
        values = np.nan_to_num(months[f"{key}_value"].to_numpy(dtype=float))
        if key == "unseen" and not values.any():
            continue
        handles.append(ax.bar(x, values, bottom=bottom, width=0.7, color=color, label=name))
        bottom += values
    coverage_ax = ax.twinx()
    coverage_ax.set_zorder(ax.get_zorder() + 1)  # the line over the bars
    coverage_ax.patch.set_visible(False)
    (line,) = coverage_ax.plot(
        x, months["coverage"].to_numpy(dtype=float), color=GOAL_COLOR, marker="o", label="coverage (right)"
    )
    coverage_ax.axhline(1.0, color=GOAL_COLOR, linestyle=":", linewidth=1)
    month_ticks(ax, x, labels)
    ax.yaxis.set_major_formatter(StrMethodFormatter(THOUSANDS))
    ax.set_ylim(0, 1.3 * float(bottom.max(initial=0.0)) or 1.0)
    top = float(np.nanmax(months["coverage"].to_numpy(dtype=float), initial=0.0))
    coverage_ax.set_ylim(0, max(1.5, 1.3 * top) if math.isfinite(top) else 1.5)
    coverage_ax.yaxis.set_major_formatter(StrMethodFormatter("{x:.1f}x"))
    ax.set_xlabel("month end")
    ax.set_ylabel(f"open pipeline ({currency})")
    coverage_ax.set_ylabel("coverage (open pipeline ÷ remaining target)")
    ax.legend(handles=[*handles, line], loc="upper left", ncols=3, fontsize="small")
    ax.set_title("Open pipeline by forecast category, and its coverage of the target")
    return fig, ax
