"""Monte Carlo figures: each range drawn is the percentile of the replications it claims to be.

The tables are small and hand-made, with percentiles worked out by hand (numpy's
``"linear"`` method: with five sorted values ``a0..a4``, P10 sits at index 0.4, P25 at
1, P50 at 2, P75 at 3 and P90 at 3.6), so the tests hold every band, line and whisker
against known numbers rather than against the code that drew them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from funnelsim.report.figures import fan_chart, funnel_range_chart, revenue_distribution

MONTHS = ["2027-01", "2027-02", "2027-03"]

# Cumulative revenue per replication and month (each row non-decreasing, as a running total is).
CUMULATIVE = {
    1: [100.0, 500.0, 1_000.0],
    2: [200.0, 1_000.0, 2_000.0],
    3: [300.0, 2_000.0, 4_000.0],
    4: [400.0, 3_000.0, 5_000.0],
    5: [500.0, 10_000.0, 20_000.0],
}
# Worked by hand from the columns above: month 1 is 100..500, month 2 is 500, 1,000, 2,000,
# 3,000, 10,000 (P10 = 500 + 0.4 * 500, P90 = 3,000 + 0.6 * 7,000), month 3 likewise.
P10 = [140.0, 700.0, 1_400.0]
P25 = [200.0, 1_000.0, 2_000.0]
P50 = [300.0, 2_000.0, 4_000.0]
P75 = [400.0, 3_000.0, 5_000.0]
P90 = [460.0, 7_200.0, 14_000.0]


def _monthly(cumulative: dict[int, list[float]]) -> pd.DataFrame:
    rows = []
    for replication, totals in cumulative.items():
        booked = np.diff(totals, prepend=0.0)
        for month, total, revenue in zip(MONTHS, totals, booked, strict=True):
            rows.append(
                {
                    "replication": replication,
                    "month": month,
                    "leads": 400,
                    "mqls": 80,
                    "sqls": 30,
                    "opportunities": 20,
                    "wins": 5,
                    "revenue": revenue,
                    "cumulative_revenue": total,
                }
            )
    # Shuffled rows: the chart must group by month and sort, not trust the row order.
    table = pd.DataFrame(rows)
    return table.sample(frac=1.0, random_state=7).reset_index(drop=True)


MONTHLY = _monthly(CUMULATIVE)

# Stage volumes per replication, in a scrambled order; mean, P10 and P90 worked by hand.
REPLICATIONS = pd.DataFrame(
    {
        "run_id": ["baseline"] * 5,
        "replication": [0, 1, 2, 3, 4],
        "seed": [11, 12, 13, 14, 15],
        "leads": [4_800, 4_600, 5_000, 4_700, 4_900],  # mean 4,800; P10 4,640; P90 4,960
        "mqls": [1_000, 1_500, 900, 1_100, 1_000],  # mean 1,100; P10 940; P90 1,340
        "sqls": [430, 400, 440, 410, 420],  # mean 420; P10 404; P90 436
        "opportunities": [200, 200, 200, 200, 200],  # no spread: P10 = P90 = 200
        "wins": [70, 40, 80, 50, 60],  # mean 60; P10 44; P90 76
        "revenue": [300_000.0, 100_000.0, 500_000.0, 200_000.0, 400_000.0],
    }
)
MEANS = [4_800.0, 1_100.0, 420.0, 200.0, 60.0]
STAGE_P10 = [4_640.0, 940.0, 404.0, 200.0, 44.0]
STAGE_P90 = [4_960.0, 1_340.0, 436.0, 200.0, 76.0]


def _band(ax: Axes, label: str) -> PolyCollection:
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection) and c.get_label() == label]
    return band


def _band_edges(band: PolyCollection, x: int) -> tuple[float, float]:
    vertices = band.get_paths()[0].vertices
    at_x = vertices[np.isclose(vertices[:, 0], x), 1]
    return float(at_x.min()), float(at_x.max())


def _line(ax: Axes, label_start: str) -> Line2D:
    (line,) = [line for line in ax.get_lines() if str(line.get_label()).startswith(label_start)]
    return line


def _all_texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [t.get_text() for t in fig.texts]


def test_fan_chart_bands_and_median_are_the_monthly_percentiles() -> None:
    """Per month, the light band spans P10–P90, the dark band P25–P75 and the line is the median
    of cumulative revenue across replications; months run in calendar order."""
    fig, ax = fan_chart(MONTHLY, "USD")
    assert isinstance(fig, Figure) and isinstance(ax, Axes)
    outer, inner = _band(ax, "P10–P90"), _band(ax, "P25–P75")
    for i in range(len(MONTHS)):
        assert _band_edges(outer, i) == pytest.approx((P10[i], P90[i]))
        assert _band_edges(inner, i) == pytest.approx((P25[i], P75[i]))
    assert outer.get_alpha() is not None and inner.get_alpha() is not None
    assert inner.get_alpha() > outer.get_alpha()  # the middle half is the darker band
    median = _line(ax, "median")
    np.testing.assert_array_equal(median.get_xdata(), [0, 1, 2])
    np.testing.assert_allclose(median.get_ydata(), P50)
    assert [t.get_text() for t in ax.get_xticklabels()] == MONTHS
    assert "5 replications" in ax.get_title()
    assert "USD" in ax.get_ylabel()
    assert ax.yaxis.get_major_formatter()(1_234_567.0) == "1,234,567"
    legend = ax.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == ["P10–P90", "P25–P75", "median (P50)"]


def test_fan_chart_draws_the_goal_line_only_when_given() -> None:
    """A goal is a labelled horizontal line at its amount, inside the visible range; without a
    goal there is no such line."""
    _fig, ax = fan_chart(MONTHLY, "EUR", goal=15_000.0)
    goal = _line(ax, "goal")
    np.testing.assert_array_equal(goal.get_ydata(), [15_000.0, 15_000.0])
    assert goal.get_label() == "goal: 15,000 EUR"
    assert ax.get_ylim()[1] > 15_000.0
    legend = ax.get_legend()
    assert legend is not None and "goal: 15,000 EUR" in [t.get_text() for t in legend.get_texts()]

    _fig, ax = fan_chart(MONTHLY, "EUR")
    assert not [line for line in ax.get_lines() if "goal" in str(line.get_label())]
    assert len(ax.get_lines()) == 1  # the median only


def test_fan_chart_with_one_replication_collapses_the_bands_onto_the_line() -> None:
    """One replication has no spread: both bands and the median are that replication's path."""
    _fig, ax = fan_chart(_monthly({1: [100.0, 250.0, 900.0]}), "USD", goal=1_000.0)
    for label in ("P10–P90", "P25–P75"):
        band = _band(ax, label)
        for i, total in enumerate([100.0, 250.0, 900.0]):
            assert _band_edges(band, i) == pytest.approx((total, total))
    np.testing.assert_allclose(_line(ax, "median").get_ydata(), [100.0, 250.0, 900.0])
    assert "1 replication" in ax.get_title() and "1 replications" not in ax.get_title()


def test_revenue_distribution_draws_histogram_and_ecdf_of_revenue() -> None:
    """Two panels of one figure: a histogram counting every replication, and an ECDF whose steps
    are the sorted revenues at heights i/n; the median is marked on both."""
    table = REPLICATIONS.assign(revenue=[300_000.0, 100_000.0, 500_000.0, 100_000.0, 400_000.0])
    fig, axes = revenue_distribution(table, "USD")
    hist_ax, ecdf_ax = axes
    assert hist_ax is not ecdf_ax and set(fig.axes) == {hist_ax, ecdf_ax}
    bars = [p for p in hist_ax.patches if isinstance(p, Rectangle)]
    assert sum(b.get_height() for b in bars) == 5
    assert min(b.get_x() for b in bars) == pytest.approx(100_000.0)
    (ecdf,) = [line for line in ecdf_ax.get_lines() if line.get_label() == "ECDF"]
    assert ecdf.get_drawstyle() == "steps-post"
    np.testing.assert_array_equal(ecdf.get_xdata(), [100_000.0, 100_000.0, 300_000.0, 400_000.0, 500_000.0])
    np.testing.assert_allclose(ecdf.get_ydata(), [0.2, 0.4, 0.6, 0.8, 1.0])
    for panel in axes:
        median = _line(panel, "median")
        np.testing.assert_array_equal(median.get_xdata(), [300_000.0, 300_000.0])
        assert median.get_label() == "median: 300,000 USD"
        assert "USD" in panel.get_xlabel()
        assert panel.xaxis.get_major_formatter()(250_000.0) == "250,000"
        assert not [line for line in panel.get_lines() if "goal" in str(line.get_label())]
    assert "5 replications" in hist_ax.get_title()
    assert not [t for t in _all_texts(fig) if t.startswith("P(")]


def test_revenue_distribution_marks_the_goal_and_its_probability() -> None:
    """With a goal, both panels carry a vertical line at it; with P(goal), the figure says it."""
    fig, (hist_ax, ecdf_ax) = revenue_distribution(REPLICATIONS, "USD", goal=250_000.0, p_goal=0.725)
    for panel in (hist_ax, ecdf_ax):
        goal = _line(panel, "goal")
        np.testing.assert_array_equal(goal.get_xdata(), [250_000.0, 250_000.0])
        assert goal.get_label() == "goal: 250,000 USD"
    assert "P(revenue ≥ goal) = 72.5%" in _all_texts(fig)


def test_revenue_distribution_of_one_replication_stays_visible() -> None:
    """A single replication (or many that agree) is one histogram bar a few percent wide, not a
    one-unit sliver lost on a scale of millions, and a one-point ECDF at height 1."""
    _fig, (hist_ax, ecdf_ax) = revenue_distribution(REPLICATIONS.iloc[:1], "USD")
    (bar,) = [p for p in hist_ax.patches if isinstance(p, Rectangle) and p.get_height() > 0]
    assert bar.get_height() == 1
    assert bar.get_width() == pytest.approx(0.1 * 300_000.0)
    (ecdf,) = [line for line in ecdf_ax.get_lines() if line.get_label() == "ECDF"]
    np.testing.assert_array_equal(ecdf.get_xdata(), [300_000.0])
    np.testing.assert_array_equal(ecdf.get_ydata(), [1.0])
    assert ecdf.get_marker() == "o"
    assert "1 replication" in hist_ax.get_title() and "1 replications" not in hist_ax.get_title()


def test_revenue_distribution_refuses_a_probability_outside_0_1() -> None:
    """P(goal) is a probability; 72.5 (a percent passed by mistake) is refused."""
    with pytest.raises(ValueError, match="p_goal"):
        revenue_distribution(REPLICATIONS, "USD", goal=250_000.0, p_goal=72.5)


def test_funnel_range_chart_draws_mean_bars_with_p10_p90_whiskers() -> None:
    """Each stage's bar is its mean volume; its whisker runs from P10 to P90, and its label gives
    all three with thousands separators."""
    _fig, ax = funnel_range_chart(REPLICATIONS)
    (container,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    np.testing.assert_allclose([b.get_width() for b in container.patches], MEANS)
    assert container.errorbar is not None
    (whiskers,) = [c for c in container.errorbar.lines[2] if isinstance(c, LineCollection)]
    segments = whiskers.get_segments()
    np.testing.assert_allclose([s[:, 0].min() for s in segments], STAGE_P10)
    np.testing.assert_allclose([s[:, 0].max() for s in segments], STAGE_P90)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Leads", "MQLs", "SQLs", "Opportunities", "Wins"]
    assert ax.yaxis_inverted()  # leads at the top
    assert [t.get_text() for t in ax.texts] == [
        "4,800 (P10 4,640 – P90 4,960)",
        "1,100 (P10 940 – P90 1,340)",
        "420 (P10 404 – P90 436)",
        "200 (P10 200 – P90 200)",
        "60 (P10 44 – P90 76)",
    ]
    assert "5 replications" in ax.get_title()


def test_funnel_range_chart_handles_a_mean_outside_p10_p90() -> None:
    """One rare big outcome can lift the mean above P90 (19 runs with no wins, one with 100:
    mean 5, P90 0); the chart still draws, and the label keeps the true percentiles."""
    table = pd.DataFrame(
        {"leads": [1_000] * 20, "mqls": [200] * 20, "sqls": [50] * 20, "opportunities": [10] * 20}
    ).assign(wins=[0] * 19 + [100])
    _fig, ax = funnel_range_chart(table)
    assert ax.texts[-1].get_text() == "5 (P10 0 – P90 0)"


@pytest.mark.parametrize(
    ("draw", "table", "message"),
    [
        (lambda t: fan_chart(t, "USD"), MONTHLY.iloc[0:0], "monthly is empty"),
        (lambda t: fan_chart(t, "USD"), MONTHLY.drop(columns="cumulative_revenue"), "cumulative_revenue"),
        (lambda t: fan_chart(t, "USD"), MONTHLY.drop(columns="month"), "'month'"),
        (lambda t: revenue_distribution(t, "USD"), REPLICATIONS.iloc[0:0], "replications is empty"),
        (lambda t: revenue_distribution(t, "USD"), REPLICATIONS.drop(columns="revenue"), "revenue"),
        (lambda t: funnel_range_chart(t), pd.DataFrame(), "replications is empty"),
        (lambda t: funnel_range_chart(t), REPLICATIONS.drop(columns=["sqls", "wins"]), r"\['sqls', 'wins'\]"),
    ],
)
def test_charts_refuse_an_empty_table_or_a_missing_column(
    draw: Callable[[pd.DataFrame], Any], table: pd.DataFrame, message: str
) -> None:
    """An empty table or a missing column is refused with a message naming the table or column,
    not a bare KeyError or an empty figure."""
    with pytest.raises(ValueError, match=message):
        draw(table)


def test_fan_chart_refuses_replications_with_different_months() -> None:
    """Percentiles per month need every replication in every month; a gap is refused."""
    with pytest.raises(ValueError, match="every month"):
        fan_chart(MONTHLY.drop(index=MONTHLY.index[0]), "USD")


CHARTS: dict[str, Callable[[], tuple[Figure, Any]]] = {
    "fan": lambda: fan_chart(MONTHLY, "USD", goal=15_000.0),
    "distribution": lambda: revenue_distribution(REPLICATIONS, "USD", goal=250_000.0, p_goal=0.6),
    "funnel_range": lambda: funnel_range_chart(REPLICATIONS),
    "fan_one_run": lambda: fan_chart(_monthly({1: CUMULATIVE[1]}), "USD"),
    "distribution_one_run": lambda: revenue_distribution(REPLICATIONS.iloc[:1], "USD", goal=1.0, p_goal=1.0),
    "funnel_range_one_run": lambda: funnel_range_chart(REPLICATIONS.iloc[:1]),
}


@pytest.mark.parametrize("name", CHARTS)
def test_chart_saves_as_png_and_svg_and_leaves_no_pyplot_figures(name: str, tmp_path: Path) -> None:
    """Batch runs draw many charts (one replication included): none is registered with pyplot,
    and each saves as PNG and SVG."""
    before = plt.get_fignums()
    fig, _ = CHARTS[name]()
    assert plt.get_fignums() == before
    png, svg = tmp_path / f"{name}.png", tmp_path / f"{name}.svg"
    fig.savefig(png)
    fig.savefig(svg)
    assert png.read_bytes().startswith(b"\x89PNG")
    assert b"<svg" in svg.read_bytes()
    assert plt.get_fignums() == before


@pytest.mark.parametrize(
    "draw",
    [lambda ax: fan_chart(MONTHLY, "USD", ax=ax), lambda ax: funnel_range_chart(REPLICATIONS, ax=ax)],
    ids=["fan", "funnel_range"],
)
def test_chart_draws_into_a_given_axes(draw: Callable[[Axes], tuple[Figure, Axes]]) -> None:
    """A chart can be one panel of the caller's own figure: it draws into the given axes and
    returns that figure and axes."""
    fig = Figure()
    left = fig.add_subplot(1, 2, 1)
    right = fig.add_subplot(1, 2, 2)
    got_fig, got_ax = draw(right)
    assert got_fig is fig and got_ax is right
    assert right.patches or right.collections
    assert not left.patches and not left.collections and not left.lines
