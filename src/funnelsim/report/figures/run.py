"""Figures of one run: the funnel, revenue per month, rep capacity and where leads leak.

Each takes a table of :mod:`funnelsim.run.metrics` (stage volumes, revenue by period,
capacity by month, leakage) and an optional ``ax``, and returns ``(fig, ax)``; they are the
``figures/`` of ``funnelsim run --out``.

>>> import pandas as pd
>>> volumes = pd.Series({"leads": 1000, "mqls": 200, "sqls": 90, "opportunities": 60, "wins": 15})
>>> fig, ax = funnel_chart(volumes)
>>> fig.savefig("funnel.png")  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter, StrMethodFormatter

from funnelsim.report.figures.style import (
    BAR_COLOR,
    INFO_REASONS,
    LEAKAGE_NAMES,
    LINE_COLOR,
    SINGULAR,
    STAGE_IN_TEXT,
    STAGE_NAMES,
    TEAM_COLORS,
    TEAM_NAMES,
    THOUSANDS,
    figure_and_axes,
    month_ticks,
    percent,
    period_labels,
)

__all__ = ["OPEN_LABEL", "WON_LABEL", "capacity_chart", "funnel_chart", "leakage_chart", "revenue_chart"]

OTHER_COLOR = "#A1C9F4"
LOSS_COLOR = "#C44E52"
OPEN_COLOR = "0.6"
WON_COLOR = "#55A868"


def funnel_chart(
    volumes: pd.Series,
    ax: Axes | None = None,
    *,
    conversions: Mapping[str, float] | None = None,
    prospected: int | None = None,
    pipeline: int | None = None,
) -> tuple[Figure, Axes]:
    """Horizontal bars of the leads reaching each stage, top of the funnel first, on a linear axis.

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
        lacks) the annotation is the ratio of the two volumes.
        With ``conversions`` (cohort shares), a stage that holds more than the share of the
        stage above (a warm start's MQLs from leads created before day 0, AEs' own
        opportunities, wins of deals open on day 0) is split: the part from the stage above,
        and the rest drawn lighter, both counted in the label ("752: 711 from SQLs (74.1% of
        SQLs) + 41 prospected by AEs").
    prospected
        Opportunities the AEs sourced themselves (source ``prospecting``), when the caller
        knows them, and ``pipeline`` the deals of an initial pipeline (open on day 0): when they
        account for the rest of the opportunities bar, the label counts each ("+ 44 prospected by
        AEs + 120 open on day 0").

    Returns
    -------
    (fig, ax)
    """
    stages = [str(s) for s in volumes.index]
    counts = volumes.to_numpy(dtype=float)
    fig, ax = figure_and_axes(ax, (8.5, 1.2 + 0.6 * max(len(stages), 1)))
    y = np.arange(len(stages))
    ax.barh(y, counts, height=0.6, color=BAR_COLOR)
    ax.set_yticks(y, labels=[STAGE_NAMES.get(s, s) for s in stages])
    ax.invert_yaxis()
    for i, count in enumerate(counts):
        text = f"{count:,.0f}"
        if i > 0:
            text = _stage_text(ax, stages, counts, i, conversions, (prospected, pipeline))
        ax.annotate(text, xy=(count, y[i]), xytext=(4, 0), textcoords="offset points", va="center", ha="left")
    if len(ax.patches) > len(counts):  # a stage was split by origin
        handles = [
            Patch(color=BAR_COLOR, label="from the stage above"),
            Patch(facecolor=OTHER_COLOR, hatch="//", edgecolor="white", label="another way (see label)"),
        ]
        ax.legend(handles=handles, loc="center right", fontsize="small")
    if np.any(counts[1:] > counts[:-1]) and conversions is None:
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
    ax.set_xlim(0, 1.6 * top if top > 0 else 1.0)  # room for the annotations
    ax.xaxis.set_major_formatter(StrMethodFormatter(THOUSANDS))
    ax.set_xlabel("leads reaching the stage (count)")
    ax.set_title("Funnel: leads reaching each stage, and conversion from the stage above")
    return fig, ax


OTHER_ORIGINS = {
    "mqls": "from leads created before day 0",
    "sqls": "not from an MQL",
    "opportunities": "not from an SQL (prospected, or open on day 0)",
    "wins": "from deals open on day 0",
}
"""Where the part of a stage that did not come from the stage above came from (a warm start's
nurture pool and open deals, AEs' own prospecting, an initial pipeline)."""


def _stage_text(
    ax: Axes,
    stages: list[str],
    counts: np.ndarray,
    i: int,
    conversions: Mapping[str, float] | None,
    origins: tuple[int | None, int | None],
) -> str:
    """The label of stage ``i``: its count and what share of the stage above it converted.

    With a cohort conversion, the bar is split: ``conversion × stage above`` came from the stage
    above, the rest another way (:data:`OTHER_ORIGINS`); that part is drawn lighter and hatched and
    the label names both counts, so that no reader divides the whole bar by the stage above.
    """
    above, stage, count = stages[i - 1], stages[i], counts[i]
    key = f"{SINGULAR.get(above, above)}_to_{SINGULAR.get(stage, stage)}"
    above_text = STAGE_IN_TEXT.get(above, above)
    if conversions is None or key not in conversions:
        rate = count / counts[i - 1] if counts[i - 1] else math.nan
        return f"{count:,.0f}  ({percent(rate)} of {above_text})"
    rate = float(conversions[key])
    text = f"{count:,.0f}  ({percent(rate)} of {above_text})"
    if not math.isfinite(rate):
        return text
    from_above = round(rate * counts[i - 1])
    other = int(count - from_above)
    if other <= 0:
        return text
    ax.barh(i, other, left=from_above, height=0.6, color=OTHER_COLOR, hatch="//", edgecolor="white")
    rest = f"{other:,} {OTHER_ORIGINS.get(stage, f'not from {above_text}')}"
    named = [(n, what) for n, what in zip(origins, ("prospected by AEs", "open on day 0"), strict=True) if n]
    if stage == "opportunities" and named and sum(n for n, _ in named) == other:
        rest = " + ".join(f"{n:,} {what}" for n, what in named)
    return f"{count:,.0f}: {from_above:,} from {above_text} ({percent(rate)} of {above_text}) + {rest}"


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
    labels = period_labels(revenue_by_month)
    revenue = revenue_by_month["revenue"].to_numpy(dtype=float)
    fig, ax = figure_and_axes(ax, (9.0, 4.5))
    x = np.arange(len(labels))
    bars = ax.bar(x, revenue, width=0.7, color=BAR_COLOR, label="booked in the month")
    cumulative = ax.twinx()
    (line,) = cumulative.plot(x, np.nancumsum(revenue), color=LINE_COLOR, marker="o", label="cumulative")
    month_ticks(ax, x, labels)
    ax.set_xlabel("month (by close date)")
    ax.set_ylabel(f"revenue booked ({currency})")
    cumulative.set_ylabel(f"cumulative revenue ({currency})")
    for axis, values in ((ax, revenue), (cumulative, np.nancumsum(revenue))):
        axis.yaxis.set_major_formatter(StrMethodFormatter(THOUSANDS))
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
    fig, ax = figure_and_axes(ax, (9.0, 4.5))
    queue_ax = ax.twinx()
    # The lines are the message: draw the primary axes above its twin, with a clear background.
    ax.set_zorder(queue_ax.get_zorder() + 1)
    ax.patch.set_visible(False)
    x = np.arange(len(months))
    handles = _draw_teams(ax, queue_ax, table, teams, months)
    month_ticks(ax, x, months)
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


def _draw_teams(ax: Axes, queue_ax: Axes, table: pd.DataFrame, teams: list[str], months: list[str]) -> list[Any]:
    """One utilisation line (on ``ax``) and one mean-queue bar series (on ``queue_ax``) per team."""
    x = np.arange(len(months))
    width = 0.8 / max(len(teams), 1)
    handles: list[Any] = []
    for i, team in enumerate(teams):
        rows = table[table["team"] == team].set_index("month").reindex(months)
        name = TEAM_NAMES.get(team, team)
        color = TEAM_COLORS.get(team)
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
    return handles


OPEN_LABEL = "still in the funnel at the horizon"
WON_LABEL = "won"


def leakage_chart(leakage: pd.DataFrame, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """Where every lead ended at the horizon: one bar per way of leaving the funnel (largest loss
    first), then the leads still in the funnel and those won, so the bars cover all leads.

    Parameters
    ----------
    leakage
        ``metrics.leakage``: columns ``reason``, ``leads`` and ``share_of_leads``,
        optionally ``kind``. Losses are the rows whose ``kind`` is ``"leak"`` or, without a
        ``kind`` column, every row but the informational ones (:data:`INFO_REASONS`). The
        ``still_open`` row (``kind == "open"``) is drawn as "still in the funnel at the
        horizon". The won leads are the rest of all leads: with ``share_of_leads``, all leads
        are ``leads ÷ share_of_leads`` of any row, and the leaks, the open leads and the wins
        add up to them (``metrics.leakage``), so the shares of the bars sum to 100%.
    ax
        Axes to draw into; a new figure when omitted.

    Returns
    -------
    (fig, ax)
        Losses in red, still in the funnel in grey, won in green.
    """
    reasons_col = leakage["reason"].astype(str)
    if "kind" in leakage:
        losses = leakage[leakage["kind"].astype(str) == "leak"]
    else:
        losses = leakage[~reasons_col.isin(INFO_REASONS)]
    losses = losses.sort_values("leads", ascending=False, kind="stable")
    names = [LEAKAGE_NAMES.get(str(r), str(r).replace("_", " ")) for r in losses["reason"]]
    counts = list(losses["leads"].to_numpy(dtype=float))
    colors = [LOSS_COLOR] * len(counts)
    open_rows = leakage[reasons_col == "still_open"]
    total = _all_leads(leakage)
    if len(open_rows):
        names.append(OPEN_LABEL)
        counts.append(float(open_rows["leads"].iloc[0]))
        colors.append(OPEN_COLOR)
        if math.isfinite(total):
            names.append(WON_LABEL)
            counts.append(max(total - sum(counts), 0.0))
            colors.append(WON_COLOR)
    values = np.asarray(counts, dtype=float)
    fig, ax = figure_and_axes(ax, (8.5, 1.4 + 0.5 * max(len(names), 1)))
    y = np.arange(len(names))
    ax.barh(y, values, height=0.6, color=colors)
    ax.set_yticks(y, labels=names)
    ax.invert_yaxis()
    for i, count in enumerate(values):
        text = f"{count:,.0f}" if not math.isfinite(total) else f"{count:,.0f}  ({percent(count / total)} of leads)"
        ax.annotate(text, xy=(count, y[i]), xytext=(4, 0), textcoords="offset points", va="center", ha="left")
    top = float(np.nanmax(values)) if len(values) else 0.0
    ax.set_xlim(0, 1.45 * top if top > 0 else 1.0)
    ax.xaxis.set_major_formatter(StrMethodFormatter(THOUSANDS))
    every = (
        "" if not math.isfinite(total) else f"; shares of all {total:,.0f} leads of the run, incl. those open on day 0"
    )
    ax.set_xlabel("leads (count)" + every)
    ax.set_title("Where the leads are at the horizon: lost, still in the funnel, or won")
    return fig, ax


def _all_leads(leakage: pd.DataFrame) -> float:
    """All leads of the run, read back from a row's count and share (NaN when no row says)."""
    if "share_of_leads" not in leakage:
        return math.nan
    shares = leakage["share_of_leads"].to_numpy(dtype=float)
    counts = leakage["leads"].to_numpy(dtype=float)
    usable = np.isfinite(shares) & (shares > 0)
    if not usable.any():
        return math.nan
    best = int(np.argmax(np.where(usable, counts, -1.0)))  # the largest count: the least rounding in its share
    return float(round(counts[best] / shares[best]))
