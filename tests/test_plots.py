"""Figures: each chart draws what its table says, into a given axes if asked, and leaks no figures.

A planner reads these charts without the tables beside them, so the tests check
what is drawn (one bar per stage, month or loss reason; one line per team), the
labels a reader sees, and that a batch of runs leaves nothing open in pyplot.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from funnelsim.report.figures import capacity_chart, funnel_chart, leakage_chart, revenue_chart

VOLUMES = pd.Series({"leads": 10_000, "mqls": 2_000, "sqls": 800, "opportunities": 400, "wins": 100})

REVENUE = pd.DataFrame(
    {
        "period": ["2027-01", "2027-02", "2027-03"],
        "wins": [2, 0, 5],
        "revenue": [50_000.0, 0.0, 125_000.0],
        "average_deal_size": [25_000.0, np.nan, 25_000.0],
    }
)

CAPACITY = pd.DataFrame(
    {
        "month": ["2027-01", "2027-01", "2027-02", "2027-02", "2027-03", "2027-03"],
        "team": ["sdr", "ae", "sdr", "ae", "sdr", "ae"],
        "capacity": [3.0, 150.0, 3.0, 150.0, 3.0, 180.0],
        "busy": [1.5, 30.0, 2.7, 60.0, 3.0, 90.0],
        "utilisation": [0.5, 0.2, 0.9, 0.4, 1.0, 0.5],
        "mean_queue": [0.0, 0.0, 2.5, 0.0, 12.0, 1.0],
        "max_queue": [0, 0, 6, 0, 30, 4],
        "mean_response_days": [0.1, 0.0, 0.8, 0.0, 3.5, 0.4],
    }
)

LEAKAGE = pd.DataFrame(
    {
        "reason": [
            "never_mql_dormant",
            "not_followed_up",
            "sdr_abandoned",
            "lost_to_slow_response",
            "rejected_by_sales",
            "disqualified_by_ae",
            "ae_abandoned",
            "lost_deal",
            "recycled",
            "recycled_then_won",
            "still_open",
        ],
        "leads": [5_000, 600, 0, 300, 400, 50, 10, 250, 700, 20, 3_000],
    }
).assign(share_of_leads=lambda t: t["leads"] / 10_000)


def _texts(ax: Axes) -> list[str]:
    return [t.get_text() for t in ax.texts]


def _bars(ax: Axes) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def _twin(fig: Figure, ax: Axes) -> Axes:
    (other,) = [a for a in fig.axes if a is not ax]
    return other


def test_funnel_chart_draws_one_bar_per_stage_with_volume_and_conversion() -> None:
    """The funnel shows each stage top to bottom, its volume with thousands separators, and the
    conversion from the stage above (the volume ratio unless conversions are given)."""
    fig, ax = funnel_chart(VOLUMES)
    assert isinstance(fig, Figure) and isinstance(ax, Axes)
    bars = _bars(ax)
    assert [b.get_width() for b in bars] == [10_000, 2_000, 800, 400, 100]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Leads", "MQLs", "SQLs", "Opportunities", "Wins"]
    assert ax.yaxis_inverted()  # leads at the top
    assert _texts(ax) == [
        "10,000",
        "2,000  (20.0% of leads)",
        "800  (40.0% of MQLs)",
        "400  (50.0% of SQLs)",
        "100  (25.0% of opportunities)",
    ]
    assert "count" in ax.get_xlabel()
    assert ax.get_title()


def test_funnel_chart_uses_lead_based_conversions_and_explains_prospected_deals() -> None:
    """Given ``metrics.conversions``, the annotations show them; when AEs' own deals make a stage
    outnumber the one above, a note says why instead of leaving a puzzling 150%."""
    volumes = pd.Series({"leads": 1_000, "mqls": 200, "sqls": 40, "opportunities": 60, "wins": 15})
    rates = {"lead_to_mql": 0.2, "mql_to_sql": 0.2, "sql_to_opportunity": 0.75, "opportunity_to_win": 0.25}
    _fig, ax = funnel_chart(volumes, conversions=rates)
    texts = _texts(ax)
    assert "60: 30 from SQLs (75.0% of SQLs) + 30 not from an SQL (prospected, or open on day 0)" in texts
    _fig, ax = funnel_chart(volumes)
    assert any("source opportunities themselves" in t for t in _texts(ax))


def test_funnel_chart_names_the_denominator_when_prospected_deals_are_mixed_in() -> None:
    """The baseline's rough edge: 752 opportunities labelled "74.1% of SQLs" read as 752 ÷ 959 SQLs,
    while 41 of them were prospected by AEs and never were SQLs. The label splits the bar by origin,
    and the bar itself is split: 711 from SQLs plus a lighter part of 41."""
    volumes = pd.Series({"leads": 34_992, "mqls": 4_598, "sqls": 959, "opportunities": 752, "wins": 243})
    rates = {"lead_to_mql": 4_598 / 34_992, "mql_to_sql": 959 / 4_598, "sql_to_opportunity": 711 / 959}
    rates["opportunity_to_win"] = 210 / 752
    _fig, ax = funnel_chart(volumes, conversions=rates, prospected=41)
    texts = _texts(ax)
    assert texts[3] == "752: 711 from SQLs (74.1% of SQLs) + 41 prospected by AEs"
    assert texts[4] == "243: 210 from opportunities (27.9% of opportunities) + 33 from deals open on day 0"
    assert texts[2] == "959  (20.9% of MQLs)"
    split = [(b.get_x(), b.get_width()) for b in _bars(ax)[5:]]
    assert split == [(711, 41), (210, 33)]
    _fig, ax = funnel_chart(volumes, conversions=rates, prospected=11, pipeline=30)
    assert _texts(ax)[3] == "752: 711 from SQLs (74.1% of SQLs) + 11 prospected by AEs + 30 open on day 0"
    assert ax.get_xscale() == "linear" and ax.get_xlim()[0] == 0


def test_funnel_chart_with_empty_stages_says_n_a() -> None:
    """A funnel that never got past leads shows n/a rather than dividing by zero."""
    _fig, ax = funnel_chart(pd.Series({"leads": 0, "mqls": 0, "sqls": 0, "opportunities": 0, "wins": 0}))
    assert _texts(ax)[1] == "0  (n/a of leads)"


def test_revenue_chart_draws_monthly_bars_and_cumulative_line() -> None:
    """One bar per month with its revenue, a cumulative line on the right-hand axis, and the
    currency in both axis labels."""
    fig, ax = revenue_chart(REVENUE, "EUR")
    assert [b.get_height() for b in _bars(ax)] == [50_000.0, 0.0, 125_000.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2027-01", "2027-02", "2027-03"]
    twin = _twin(fig, ax)
    (line,) = twin.get_lines()
    np.testing.assert_array_equal(line.get_ydata(), [50_000.0, 50_000.0, 175_000.0])
    assert "EUR" in ax.get_ylabel() and "EUR" in twin.get_ylabel()
    assert ax.get_title() == "Revenue booked per month"
    assert ax.yaxis.get_major_formatter()(125_000.0) == "125,000"


def test_revenue_chart_accepts_a_month_column() -> None:
    """``stages_by_month`` names its period column ``month``; the chart takes it too."""
    _fig, ax = revenue_chart(REVENUE.rename(columns={"period": "month"}), "USD")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2027-01", "2027-02", "2027-03"]


def test_capacity_chart_draws_utilisation_lines_and_queue_bars_per_team() -> None:
    """Utilisation is one line per team (SDR, AE) in percent; the mean queue is one bar per team
    and month on the right-hand axis."""
    fig, ax = capacity_chart(CAPACITY)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["SDR utilisation", "AE utilisation"]
    np.testing.assert_array_equal(lines[0].get_ydata(), [0.5, 0.9, 1.0])
    np.testing.assert_array_equal(lines[1].get_ydata(), [0.2, 0.4, 0.5])
    twin = _twin(fig, ax)
    bars = _bars(twin)
    assert len(bars) == 6
    assert sorted(b.get_height() for b in bars) == sorted(CAPACITY["mean_queue"])
    assert "%" in ax.get_ylabel() and "queue" in twin.get_ylabel()
    assert ax.yaxis.get_major_formatter()(0.5) == "50%"
    assert ax.get_zorder() > twin.get_zorder()  # lines stay in front of the bars
    legend = ax.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == [
        "SDR utilisation",
        "SDR mean queue",
        "AE utilisation",
        "AE mean queue",
    ]


def test_leakage_chart_accounts_for_every_lead_with_the_still_open_and_won_bars() -> None:
    """Losses come first, the largest on top, then the leads still in the funnel at the horizon and
    the won ones: every lead is in one bar, so the counts add up to all leads and the shares to
    100%; recycled and recycled-then-won (which overlap the others) are not drawn."""
    _fig, ax = leakage_chart(LEAKAGE)
    widths = [b.get_width() for b in _bars(ax)]
    assert widths == [5_000, 600, 400, 300, 250, 50, 10, 0, 3_000, 390]
    assert sum(widths) == 10_000
    assert ax.yaxis_inverted()
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "never an MQL, went dormant",
        "MQL never followed up",
        "rejected by sales, dropped",
        "lost to slow response",
        "deal lost",
        "disqualified by the AE",
        "went cold waiting for an AE",
        "went cold waiting for an SDR",
        "still in the funnel at the horizon",
        "won",
    ]
    texts = _texts(ax)
    assert texts[0] == "5,000  (50.0% of leads)"
    assert texts[-2] == "3,000  (30.0% of leads)"
    shares = [float(t.split("(")[1].split("%")[0]) for t in texts]
    assert sum(shares) == pytest.approx(100.0, abs=0.05 * len(shares))
    assert "count" in ax.get_xlabel() and "10,000 leads" in ax.get_xlabel()
    assert ax.get_xscale() == "linear"


def test_leakage_chart_follows_the_kind_column() -> None:
    """When the table says which rows are leaks (``kind``), the chart draws exactly those as losses."""
    table = LEAKAGE.assign(kind=["leak"] * 8 + ["info", "info", "open"])
    table.loc[table["reason"] == "lost_deal", "kind"] = "info"
    _fig, ax = leakage_chart(table)
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert len(names) == 7 + 2
    assert "deal lost" not in names


def test_leakage_chart_without_shares_still_shows_the_open_leads() -> None:
    """Without ``share_of_leads`` the total is unknown: the open leads are drawn, no won bar is guessed."""
    _fig, ax = leakage_chart(LEAKAGE.drop(columns="share_of_leads"))
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert names[-1] == "still in the funnel at the horizon"
    assert _texts(ax)[-1] == "3,000"


CHARTS: dict[str, Callable[..., tuple[Figure, Any]]] = {
    "funnel": lambda ax=None: funnel_chart(VOLUMES, ax=ax),
    "revenue": lambda ax=None: revenue_chart(REVENUE, "USD", ax=ax),
    "capacity": lambda ax=None: capacity_chart(CAPACITY, ax=ax),
    "leakage": lambda ax=None: leakage_chart(LEAKAGE, ax=ax),
}


@pytest.mark.parametrize("name", CHARTS)
def test_chart_draws_into_a_given_axes(name: str) -> None:
    """A chart can be one panel of the caller's own figure: it draws into the given axes and
    returns that figure and axes."""
    fig = Figure()
    left, right = fig.subplots(1, 2)
    got_fig, got_ax = CHARTS[name](ax=right)
    assert got_fig is fig and got_ax is right
    assert right.patches or right.lines
    assert not left.patches and not left.lines


def test_chart_draws_into_a_subfigure_axes() -> None:
    """Axes inside a subfigure work too; the figure returned is the one to save."""
    fig = Figure()
    sub = fig.subfigures(1, 2)[1]
    got_fig, _ = funnel_chart(VOLUMES, ax=sub.subplots())
    assert got_fig is fig


@pytest.mark.parametrize("name", CHARTS)
def test_chart_leaves_no_open_pyplot_figures_and_saves(name: str) -> None:
    """Batch runs draw many charts: none is registered with pyplot, and each saves as PNG and SVG."""
    plt.close("all")
    fig, _ = CHARTS[name]()
    assert plt.get_fignums() == []
    for fmt in ("png", "svg"):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt)
        assert buffer.tell() > 0
    assert plt.get_fignums() == []
