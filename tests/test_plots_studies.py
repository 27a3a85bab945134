"""Figures of the studies (compare, plan, sweep, sensitivity, calibration, recurring revenue) checked by
their data, not their pixels: bar heights and labels equal the table's values, counts are on linear axes
from zero, the waterfalls start at zero, the tornado names parameters in words with units.

The run and Monte Carlo figures are checked the same way in ``test_plots.py`` and
``test_plots_montecarlo.py``; ``test_every_figure_has_a_data_test`` keeps the set complete.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from funnelsim.model.labels import parameter_label
from funnelsim.model.loading import load_scenario
from funnelsim.report import figures
from funnelsim.report.figures import (
    arr_bridge_figure,
    arr_waterfall_chart,
    calibration_arrivals_chart,
    calibration_cycle_chart,
    calibration_deal_size_chart,
    calibration_selfcheck_chart,
    compare_funnel_chart,
    compare_leakage_chart,
    compare_revenue_chart,
    lever_waterfall_chart,
    plan_waterfall_chart,
    quota_chart,
    sweep_chart,
    sweep_heatmap,
    tornado_chart,
    tradeoff_chart,
)
from funnelsim.studies.sensitivity import sensitivity_parameters

ROOT = Path(__file__).resolve().parent.parent
STAGES = ["leads", "mqls", "sqls", "opportunities", "wins"]


def _bars(ax: Axes) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def _texts(ax: Axes) -> list[str]:
    return [t.get_text() for t in ax.texts]


# --- compare --------------------------------------------------------------------------------------

COMPARISON = pd.DataFrame(
    [
        {"metric": stage, "scenario": label, "mean": mean, "ci_low": mean * 0.95, "ci_high": mean * 1.05}
        for label, scale in (("misaligned", 1.0), ("aligned", 1.6))
        for stage, mean in zip(
            STAGES, (35_000.0, 5_800.0 * scale, 900.0 * scale, 700.0 * scale, 225.0 * scale), strict=True
        )
    ]
)


def test_compare_funnel_chart_draws_the_means_on_a_linear_axis_from_zero() -> None:
    """One bar per stage and scenario with the table's mean, on a linear count axis starting at zero,
    each bar labelled with its value (the late stages are short bars)."""
    _fig, ax = compare_funnel_chart(COMPARISON)
    heights = [b.get_height() for b in _bars(ax)]
    assert heights == list(COMPARISON["mean"])
    assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0
    assert "225" in _texts(ax) and "360" in _texts(ax)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Leads", "MQLs", "SQLs", "Opportunities", "Wins"]
    assert "count" in ax.get_ylabel()


def test_compare_revenue_chart_draws_each_scenarios_ecdf() -> None:
    """One step line per scenario through its sorted revenues at heights i/n, and its mean dotted."""
    reps = pd.DataFrame({"scenario": ["a"] * 4 + ["b"] * 4, "revenue": [4.0, 1.0, 3.0, 2.0, 8.0, 5.0, 7.0, 6.0]})
    _fig, ax = compare_revenue_chart(reps, "USD")
    steps = [line for line in ax.get_lines() if line.get_label() in ("a", "b")]
    assert [list(line.get_xdata()) for line in steps] == [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]
    assert list(steps[0].get_ydata()) == [0.25, 0.5, 0.75, 1.0]
    means = [line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert means == [2.5, 6.5]
    assert "USD" in ax.get_xlabel()


def test_compare_leakage_chart_draws_each_reason_per_scenario() -> None:
    """The first reason alone on the left panel, the others on the right, one bar per scenario each,
    with the table's mean leads lost per run."""
    reasons = ["never_mql_dormant", "lost_to_slow_response", "lost_deal"]
    table = pd.DataFrame(
        [
            {"reason": r, "scenario": s, "leads": float(v)}
            for s, values in (("x", (30_000, 2_000, 500)), ("y", (29_000, 300, 700)))
            for r, v in zip(reasons, values, strict=True)
        ]
    )
    _fig, (left, right) = compare_leakage_chart(table)
    assert sorted(b.get_width() for b in _bars(left)) == [29_000, 30_000]
    assert sorted(b.get_width() for b in _bars(right)) == [300, 500, 700, 2_000]
    assert [t.get_text() for t in right.get_yticklabels()] == ["lost to slow response", "deal lost"]
    assert left.get_xscale() == right.get_xscale() == "linear"
    assert "count" in right.get_xlabel()


ATTRIBUTION = pd.DataFrame(
    {
        "lever": ["definition", "sla", "recycling", "total"],
        "contribution": [2.4e6, 2.3e6, -0.6e6, 4.1e6],
        "ci_low": [2.3e6, 2.1e6, -0.7e6, 4.0e6],
        "ci_high": [2.5e6, 2.5e6, -0.5e6, 4.2e6],
    }
)


def test_lever_waterfall_starts_at_zero_and_steps_by_each_contribution() -> None:
    """The value axis starts at zero (a truncated axis exaggerates the steps); the first bar is the
    first scenario's mean, each lever a step of its contribution from the level before, the last bar
    the level reached; every step carries its signed amount, and the axis says the currency."""
    _fig, ax = lever_waterfall_chart(ATTRIBUTION, 4.2e6, ("misaligned", "aligned"), currency="USD")
    assert ax.get_ylim()[0] == 0
    bars = _bars(ax)
    assert [b.get_height() for b in bars] == pytest.approx([4.2e6, 2.4e6, 2.3e6, -0.6e6, 8.3e6])
    assert [b.get_y() for b in bars] == pytest.approx([0, 4.2e6, 6.6e6, 8.9e6, 0])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["misaligned", "definition", "sla", "recycling", "aligned"]
    assert _texts(ax) == ["4.2M", "+2.4M", "+2.3M", "−600k", "8.3M"]
    assert "USD" in ax.get_ylabel()


# --- plan -------------------------------------------------------------------------------------------

PLAN_STAGES = pd.DataFrame(
    {
        "stage": STAGES,
        "analytic": [44_000.0, 7_300.0, 1_200.0, 950.0, 300.0],
        "simulated_mean": [40_000.0, 6_700.0, 1_100.0, 880.0, 290.0],
        "simulated_p10": [39_500.0, 6_600.0, 1_050.0, 850.0, 270.0],
        "simulated_p90": [40_500.0, 6_800.0, 1_150.0, 910.0, 310.0],
    }
)


def test_plan_waterfall_draws_analytic_and_simulated_counts_on_a_linear_axis() -> None:
    """Paired bars per stage with the table's analytic and simulated means, on a linear axis from zero,
    each labelled with its count."""
    _fig, ax = plan_waterfall_chart(PLAN_STAGES)
    widths = [b.get_width() for b in _bars(ax)]
    assert widths == [*PLAN_STAGES["analytic"], *PLAN_STAGES["simulated_mean"]]
    assert ax.get_xscale() == "linear" and ax.get_xlim()[0] == 0
    assert "290" in _texts(ax) and "300" in _texts(ax)
    assert "count" in ax.get_xlabel()


def _sheet() -> pd.DataFrame:
    rows = []
    for k, month in enumerate(["2026-12", "2027-01", "2027-02"]):
        phase = "lead_in" if k == 0 else "period"
        for source, leads in (("inbound", 2_500.0 + k), ("events", 400.0)):
            rows.append({"month": month, "phase": phase, "stage": "leads", "source": source, "team": "marketing",
                         "target": leads})  # fmt: skip
        for stage, team, target in (("mqls", "marketing", 600.0), ("sqls", "shared", 100.0),
                                    ("opportunities", "sales", 80.0), ("wins", "sales", 25.0)):  # fmt: skip
            rows.append({"month": month, "phase": phase, "stage": stage, "source": "", "team": team,
                         "target": target + k if phase == "period" else np.nan})  # fmt: skip
        rows.append({"month": month, "phase": phase, "stage": "revenue", "source": "", "team": "sales",
                     "target": 580_000.0})  # fmt: skip
    return pd.DataFrame(rows)


def test_quota_chart_stacks_the_lead_quotas_and_draws_later_targets_on_a_linear_axis() -> None:
    """Top: per month, the sources' lead quotas stacked (bar heights the sheet's targets). Bottom: the
    MQL, SQL, opportunity and win targets per month on a linear axis from zero, scaled to them (not to the
    sheet's revenue rows), each named with its team and its monthly range."""
    sheet = _sheet()
    _fig, (top, bottom) = quota_chart(sheet)
    heights = sorted(b.get_height() for b in _bars(top))
    assert heights == sorted(sheet.loc[sheet["stage"] == "leads", "target"])
    assert bottom.get_yscale() == "linear" and bottom.get_ylim()[0] == 0
    assert 602 <= bottom.get_ylim()[1] < 1_000
    lines = {line.get_label(): list(line.get_ydata()) for line in bottom.get_lines()}
    assert lines["Wins (sales): 26–27 a month"][1:] == [26.0, 27.0]
    assert "count" in bottom.get_ylabel() and "count" in top.get_ylabel()


def test_tradeoff_chart_draws_the_lead_multiple_per_number_of_aes_and_rings_the_cheapest() -> None:
    """One point per feasible row (extra AEs, lead multiple), labelled with its cost; the chosen one ringed."""
    table = pd.DataFrame(
        {
            "extra_aes": [0, 2, 4, 6],
            "lead_multiplier": [np.nan, 1.5, 1.3, 1.2],
            "cost": [np.nan, 6.1e6, 6.0e6, 6.4e6],
            "chosen": [False, False, True, False],
        }
    )
    _fig, ax = tradeoff_chart(table, "USD")
    (line,) = ax.get_lines()
    assert list(line.get_xdata()) == [2, 4, 6] and list(line.get_ydata()) == [1.5, 1.3, 1.2]
    assert _texts(ax) == ["6.10M", "6.00M", "6.40M"]
    (ring,) = ax.collections
    assert ring.get_offsets().tolist() == [[4.0, 1.3]]
    assert "USD" in ax.get_title()


# --- sweep and sensitivity --------------------------------------------------------------------------


def _sweep_table() -> pd.DataFrame:
    x = np.array([0.4, 0.5, 0.6, 0.7])
    mean = np.array([4.0e6, 5.0e6, 5.8e6, 5.1e6])
    return pd.DataFrame(
        {
            "qualification.mql.threshold": x,
            "revenue_mean": mean,
            "revenue_ci_low": mean - 1e5,
            "revenue_ci_high": mean + 1e5,
            "revenue_p10": mean - 5e5,
            "revenue_p90": mean + 5e5,
        }
    )


def test_sweep_chart_draws_the_mean_along_the_parameter_named_in_words() -> None:
    """The mean line goes through the table's means at the parameter's values; the axis names the
    parameter in words with its unit, the metric with its currency; the best point is marked."""
    _fig, ax = sweep_chart(_sweep_table(), "qualification.mql.threshold", "revenue", "USD", best=0.6)
    (mean,) = [line for line in ax.get_lines() if line.get_label() == "mean"]
    assert list(mean.get_xdata()) == [0.4, 0.5, 0.6, 0.7]
    assert list(mean.get_ydata()) == [4.0e6, 5.0e6, 5.8e6, 5.1e6]
    assert ax.get_xlabel() == "MQL rule: score a lead needs to qualify (score 0–1)"
    assert "USD" in ax.get_ylabel()
    assert any(line.get_label() == "best: 0.6" for line in ax.get_lines())
    assert ax.get_ylim()[0] == 0


def test_sweep_heatmap_shows_each_cells_mean_and_names_both_parameters() -> None:
    """The image holds the grid of means (first parameter down, second across), each cell written."""
    table = pd.DataFrame(
        {
            "sales.ae.count": [8, 8, 10, 10],
            "handoff.sdr.count": [4, 6, 4, 6],
            "revenue_mean": [1.0e6, 2.0e6, 3.0e6, 4.0e6],
        }
    )
    _fig, ax = sweep_heatmap(table, ["sales.ae.count", "handoff.sdr.count"], "revenue", "USD", currency="USD")
    (image,) = ax.get_images()
    assert np.asarray(image.get_array()).tolist() == [[1.0e6, 2.0e6], [3.0e6, 4.0e6]]
    assert _texts(ax) == ["1,000,000", "2,000,000", "3,000,000", "4,000,000"]
    assert ax.get_ylabel() == "AEs on staff at the start (people)"
    assert ax.get_xlabel() == "Number of SDRs at the start (people)"


def _tornado_table(parameters: list[str]) -> pd.DataFrame:
    n = len(parameters)
    low = -np.arange(n, 0, -1) * 1e5
    table = pd.DataFrame(
        {
            "parameter": parameters,
            "metric": "revenue",
            "low_value": np.arange(n) + 1.0,
            "high_value": np.arange(n) + 2.0,
            "low_diff": low,
            "high_diff": -low / 2,
        }
    )
    for side in ("low", "high"):
        table[f"{side}_diff_ci_low"] = table[f"{side}_diff"] - 1e4
        table[f"{side}_diff_ci_high"] = table[f"{side}_diff"] + 1e4
    return table


def test_tornado_names_every_parameter_in_words_with_its_values_and_draws_its_swings() -> None:
    """Tick labels are words with units (never the dotted path) and the low/high values; the bars are
    the table's paired differences, the largest swing on top."""
    paths = ["sales.ae.count", "qualification.mql.threshold", "sources.inbound.cost_per_lead"]
    table = _tornado_table(paths)
    _fig, ax = tornado_chart(table, "USD", currency="USD")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[::-1] == [
        "AEs on staff at the start (people)\nlow 1 / high 2",
        "MQL rule: score a lead needs to qualify\n(score\N{NO-BREAK SPACE}0–1)\nlow 2 / high 3",
        "Inbound source: marketing cost of one lead\n(USD\N{NO-BREAK SPACE}per\N{NO-BREAK SPACE}lead)\nlow 3 / high 4",
    ]
    assert not any(re.search(r"\w\.\w+\.\w", label) for label in labels)
    widths = [b.get_width() for b in _bars(ax)]
    assert widths == [*table["low_diff"][::-1], *table["high_diff"][::-1]]
    assert "USD" in ax.get_xlabel()


def test_every_sensitivity_parameter_of_the_baseline_gets_a_words_label() -> None:
    """`parameter_label` turns each parameter `sensitivity` varies in the bundled baseline into words
    from the scenario schema: no dotted path, no underscore, a capital first letter, and a unit in
    brackets unless the words already say it ("mean leads per month", "days before ...")."""
    scenario = load_scenario(ROOT / "scenarios" / "baseline.toml")
    found, _skipped = sensitivity_parameters(scenario)
    assert len(found) > 30
    for p in found:
        label = parameter_label(p.parameter, currency="USD")
        assert label != p.parameter, p.parameter
        assert "_" not in label and not re.search(r"\w\.\w", label.replace("0.5", "")), label
        assert label[0].isupper(), label
        in_words = re.search(r"\b(days|per month|times|multiplier)\b", label, re.IGNORECASE)
        assert in_words or re.search(r"\([^()]+\)$", label), label
        assert "currency" not in label, label


def test_parameter_label_reads_entries_units_and_segments() -> None:
    """The named entries of keyed tables, the currency, a distribution's mean and a segment's own key;
    a path the schema does not know comes back unchanged."""
    assert parameter_label("sources.events.cost_per_lead", currency="EUR") == (
        "Events source: marketing cost of one lead (EUR per lead)"
    )
    assert parameter_label("sales.cycle_days") == "Time from opportunity to close, mean (days)"
    assert parameter_label("personas.job_seeker.buying_intent") == (
        "Job seeker persona: share of contacts with a real buying need (share 0–1)"
    )
    assert parameter_label("segments.enterprise.sales.ae.count") == (
        "Enterprise segment: AEs on staff at the start (people)"
    )
    assert parameter_label("sales.no_such_key") == "sales.no_such_key"


# --- recurring revenue ------------------------------------------------------------------------------

BRIDGE = pd.DataFrame(
    {
        "period": ["2027-01", "2027-02"],
        "opening_arr": [1.00e6, 1.05e6],
        "new_arr": [0.08e6, 0.09e6],
        "expansion_arr": [0.01e6, 0.01e6],
        "contraction_arr": [0.01e6, 0.0],
        "churned_arr": [0.03e6, 0.02e6],
        "closing_arr": [1.05e6, 1.13e6],
        "net_new_arr": [0.05e6, 0.08e6],
    }
)


def test_arr_waterfall_starts_at_zero() -> None:
    """The ARR bridge's bars step from the opening ARR to the closing ARR on an axis from zero, so a
    month's churn is not drawn as a cliff."""
    _fig, ax = arr_waterfall_chart(BRIDGE, "USD")
    assert ax.get_ylim()[0] == 0
    heights = [b.get_height() for b in _bars(ax)]
    assert heights == pytest.approx([1.00e6, 0.17e6, 0.02e6, -0.01e6, -0.05e6, 1.13e6])
    assert "USD" in ax.get_ylabel()


def test_arr_bridge_figure_puts_the_waterfall_beside_the_months() -> None:
    """The two ARR charts side by side: the waterfall's six steps, then one net-new bar per month and
    the line of ARR at month end."""
    _fig, (waterfall, months) = arr_bridge_figure(BRIDGE, "USD")
    assert len(_bars(waterfall)) == 6
    assert [b.get_height() for b in _bars(months)] == pytest.approx([0.05e6, 0.08e6])
    (line,) = [line for line in months.get_lines() if line.get_label() == "ARR at month end"]
    assert list(line.get_ydata()) == pytest.approx([1.05e6, 1.13e6])


# --- calibration ------------------------------------------------------------------------------------


def test_calibration_cycle_chart_draws_the_kaplan_meier_share_closed_and_each_fit() -> None:
    """The KM step is 1 − the survival of the table; each fit's CDF is drawn, the closed-only one dashed."""
    km = pd.DataFrame(
        {
            "days": [0.0, 30.0, 60.0, 90.0],
            "km_sf": [1.0, 0.7, 0.4, 0.2],
            "km_ci_low": [1.0, 0.6, 0.3, 0.1],
            "km_ci_high": [1.0, 0.8, 0.5, 0.3],
            "cdf_lognormal": [0.0, 0.28, 0.62, 0.79],
            "cdf_closed_only_lognormal": [0.0, 0.5, 0.8, 0.95],
        }
    )
    _fig, ax = calibration_cycle_chart(km)
    step, fit, closed_only = ax.get_lines()
    assert list(step.get_ydata()) == pytest.approx([0.0, 0.3, 0.6, 0.8])
    assert list(fit.get_ydata()) == [0.0, 0.28, 0.62, 0.79]
    assert closed_only.get_linestyle() == "--"
    assert "days" in ax.get_xlabel()


def test_calibration_arrivals_chart_draws_the_observed_opportunities_per_month() -> None:
    """One bar per month of opportunities with the table's per-month count; other kinds are left out."""
    arrivals = pd.DataFrame(
        {
            "kind": ["opportunities"] * 3 + ["leads"],
            "month": ["2027-01", "2027-02", "2027-03", "2027-01"],
            "per_month": [30.0, 45.0, 38.0, 900.0],
            "seasonality_multiplier": [0.8, 1.2, 1.0, 1.0],
        }
    )
    _fig, ax = calibration_arrivals_chart(arrivals)
    assert [b.get_height() for b in _bars(ax)] == [30.0, 45.0, 38.0]
    assert ax.get_ylim()[0] == 0 and "count" in ax.get_ylabel() and ax.get_xlabel()


def test_calibration_deal_size_chart_marks_the_sample_mean() -> None:
    """A density histogram of the amounts (area 1) with the sample mean and the lognormal fit's mean."""
    amounts = pd.Series([10_000.0, 12_000.0, 25_000.0, 26_000.0, 60_000.0] * 4)
    _fig, ax = calibration_deal_size_chart(amounts, float(amounts.mean()), 40_000.0, "USD")
    area = sum(b.get_height() * b.get_width() for b in _bars(ax))
    assert area == pytest.approx(1.0)
    assert [line.get_xdata()[0] for line in ax.get_lines()] == [amounts.mean(), 40_000.0]
    assert "USD" in ax.get_xlabel()


def test_calibration_selfcheck_chart_marks_observed_months_outside_the_band() -> None:
    """Per quantity, the observed months; those outside the simulated P10–P90 are the red points."""
    rows = []
    for quantity, observed in (("opportunities", [30, 80]), ("wins", [8, 9]), ("won_value", [2e5, 2.2e5])):
        for month, value in zip(["2027-01", "2027-02"], observed, strict=True):
            rows.append({"month": month, "quantity": quantity, "observed": value, "sim_p10": 0.8 * observed[0],
                         "sim_p50": observed[0], "sim_p90": 1.2 * observed[0], "compared": True})  # fmt: skip
    fig, first = calibration_selfcheck_chart(pd.DataFrame(rows))
    outside = [c for c in first.collections if c.get_label() == "observed, outside"]
    assert outside[0].get_offsets().tolist() == [[1.0, 80.0]]
    assert all(ax.get_ylim()[0] == 0 for ax in fig.axes)
    assert [ax.get_ylabel() for ax in fig.axes] == [
        "opportunities (count)",
        "wins (count)",
        "won value (currency of the export)",
    ]


# --- every figure -----------------------------------------------------------------------------------


def test_every_figure_has_a_data_test() -> None:
    """Each figure the package draws is called by a test of ``tests/test_plots*.py`` or of the module
    that owns its data (quotas, pipeline views, recurring revenue, back-test): a new figure without one
    fails here."""
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").glob("test_*.py"))
    names = [n for n in figures.__all__ if n[0].islower()]
    untested = [n for n in names if not re.search(rf"\b{n}\(", tests)]
    assert untested == []


def _counts_axes() -> list[tuple[str, Axes, str]]:
    """(figure, axes, which axis holds counts) of every bar chart of counts drawn in this file."""
    return [
        ("compare funnel", compare_funnel_chart(COMPARISON)[1], "y"),
        ("plan waterfall", plan_waterfall_chart(PLAN_STAGES)[1], "x"),
        ("quota targets", quota_chart(_sheet())[1][1], "y"),
        ("quota leads", quota_chart(_sheet())[1][0], "y"),
    ]


def test_counts_are_on_linear_axes_from_zero() -> None:
    """No figure of counts uses a log scale (a log axis makes 35,000 leads and 225 wins look alike)."""
    for name, ax, axis in _counts_axes():
        scale = ax.get_yscale() if axis == "y" else ax.get_xscale()
        low = (ax.get_ylim() if axis == "y" else ax.get_xlim())[0]
        assert (scale, low) == ("linear", 0), name


BUILDERS: dict[str, Callable[[], Figure]] = {
    "compare_funnel_chart": lambda: compare_funnel_chart(COMPARISON)[0],
    "lever_waterfall_chart": lambda: lever_waterfall_chart(ATTRIBUTION, 4.2e6, ("a", "b"), currency="USD")[0],
    "plan_waterfall_chart": lambda: plan_waterfall_chart(PLAN_STAGES)[0],
    "quota_chart": lambda: quota_chart(_sheet())[0],
    "sweep_chart": lambda: sweep_chart(_sweep_table(), "qualification.mql.threshold", "revenue", "USD")[0],
    "tornado_chart": lambda: tornado_chart(_tornado_table(["sales.win_rate"]), "USD")[0],
    "arr_bridge_figure": lambda: arr_bridge_figure(BRIDGE, "USD")[0],
}


@pytest.mark.parametrize("name", BUILDERS)
def test_every_panel_has_a_title_and_axis_labels(name: str) -> None:
    """Labels in words on every panel: a title, and a label on the value axis (a chart of categories,
    the stages or the parameters, may leave that axis to its tick labels)."""
    fig: Any = BUILDERS[name]()
    for ax in fig.axes:
        if not ax.get_visible() or not (ax.patches or ax.lines or ax.images):
            continue
        assert ax.get_title(), name
        assert ax.get_xlabel() or ax.get_ylabel(), name


def test_every_figure_file_is_listed_in_docs_figures_md() -> None:
    """docs/figures.md lists each figure file a command writes (the names the report writers give their
    charts), with the question it answers: a new figure left out of the docs fails here."""
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "src" / "funnelsim" / "report").glob("*.py"))
    names = set(re.findall(r'"(\w+)": (?:figures|plots)\.\w+\(', source))
    names |= set(re.findall(r'charts\["(\w+)"\] = ', source))
    names |= {"wins", "won_value"}  # the back-test's, one per metric
    assert {"funnel", "leakage", "tornado", "levers", "quotas", "selfcheck"} <= names
    listed = set(re.findall(r"^\| `(\w+)\.png` \|", (ROOT / "docs" / "figures.md").read_text(encoding="utf-8"), re.M))
    assert sorted(names - listed) == []
