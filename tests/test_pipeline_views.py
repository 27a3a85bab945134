"""Pipeline views: coverage of the target, slipped close dates, forecast categories (``funnelsim.run.pipeline_views``).

Hand computations on a constructed event log, the views of simulated runs against the pipeline
table and the model's win probabilities (binomial intervals), targets, files and the figure.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from funnelsim import load_scenario, simulate
from funnelsim.cli import app
from funnelsim.report import tables
from funnelsim.report.figures import pipeline_views_chart
from funnelsim.run import metrics
from funnelsim.run.pipeline_views import CATEGORIES, monthly_targets, pipeline_views, pushes
from funnelsim.run.result import RunResult
from funnelsim.studies.stats import probability_at_least

sys.path.insert(0, str(Path(__file__).parent))
from scaled import TENTH

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.toml"
# A target of 1,000 a day; forecasts 30 days after opening, pushed by 30 days.
FORECAST = "forecast={bookings_target_per_year=365250, push_days=30, commit_probability=0.4, best_case_probability=0.2}"
HAND = ["start=cold", "horizon_days=90", FORECAST, "sales.forecast_cycle_days=30", "sales.win_rate=0.3"]


def _constructed(extra: list[str] | None = None) -> RunResult:
    """Three deals in the first quarter of 2027 (days 0-90): A opened day 5 worth 10k, won day 40;
    B opened day 20 worth 20k, open at the end; C opened day 50 worth 5k, lost day 70."""
    scenario = load_scenario(BASELINE, [*HAND, *(extra or [])])
    rows = [
        (5.0, 0, "opportunity", 10_000.0),
        (20.0, 1, "opportunity", 20_000.0),
        (40.0, 0, "won", 10_000.0),
        (50.0, 2, "opportunity", 5_000.0),
        (70.0, 2, "lost", 5_000.0),
    ]
    events = pd.DataFrame(
        {
            "time": [r[0] for r in rows],
            "lead": [r[1] for r in rows],
            "event": [r[2] for r in rows],
            "rep": 0,
            "value": [r[3] for r in rows],
        }
    )
    # Fits 1, 0.5 and 0: win probabilities 0.3 at fit 0.5 moved by fit_effect 2 per unit of fit.
    attributes = pd.DataFrame({"lead": [0, 1, 2], "fit": [1.0, 0.5, 0.0]})
    empty = pd.DataFrame(columns=["time", "team", "rep", "change", "productivity"])
    return RunResult(scenario, 1, 0, events, pd.DataFrame(), empty, attributes, {"parameters": {}})


def test_coverage_on_a_constructed_log_equals_a_hand_computation() -> None:
    """Open value at each month end ÷ what is left of the quarter's target (the next quarter's at its last month)."""
    months = pipeline_views(_constructed()).months
    assert months["month"].tolist() == ["2027-01", "2027-02", "2027-03"]
    assert months["month_end"].tolist() == [31.0, 59.0, 90.0]
    assert months["target"].tolist() == pytest.approx([31_000, 28_000, 31_000], rel=1e-12)
    assert months["booked"].tolist() == [0.0, 10_000.0, 0.0]
    assert months["coverage_period"].tolist() == ["2027Q1", "2027Q1", "2027Q2"]
    # End of January: Q1's 90,000, nothing booked; end of February: 10,000 booked; end of March: all of Q2 (91 days).
    assert months["remaining_target"].tolist() == pytest.approx([90_000, 80_000, 91_000], rel=1e-12)
    assert months["open_value"].tolist() == [30_000.0, 25_000.0, 20_000.0]
    assert months["open_deals"].tolist() == [2, 2, 1]
    assert months["coverage"].tolist() == pytest.approx([30 / 90, 25 / 80, 20 / 91], rel=1e-12)
    # Due in the period: at the end of January A's date (35) and B's (50) fall in Q1; at the end of February
    # B's date was pushed to 80 (in Q1), C's is 80; at the end of March B's date is 110, in Q2.
    assert months["due_in_period_value"].tolist() == [30_000.0, 25_000.0, 20_000.0]


def test_slippage_pushes_on_a_constructed_log_equal_a_hand_computation() -> None:
    """A (forecast 35, closed 40) was pushed once; B (forecast 50, open to 90) twice, at 50 and 80; C (forecast 80,
    lost 70) never."""
    views = pipeline_views(_constructed())
    deals = views.deals.set_index("lead")
    assert deals["first_forecast"].tolist() == [35.0, 50.0, 80.0]
    assert deals["pushes"].tolist() == [1.0, 2.0, 0.0]
    assert deals["last_forecast"].tolist() == [65.0, 110.0, 80.0]
    months = views.months
    # Pushes at day 35 (A, Feb 5) and 50 (B, Feb 20) in February, day 80 (B, Mar 22) in March.
    assert months["pushed_deals"].tolist() == [0, 2, 1]
    assert months["pushed_value"].tolist() == [0.0, 30_000.0, 20_000.0]
    assert months["closed_deals"].tolist() == [0, 1, 1]
    assert months["closed_late_deals"].tolist() == [0, 1, 0]
    assert views.summary["slipped_share"] == 0.5  # A late, C on time
    assert views.summary["pushes_per_closed_deal"] == 0.5


@pytest.mark.parametrize(
    ("opened", "ended", "expected"),
    [
        (0.0, 29.0, 0),  # closed before its forecast date
        (0.0, 30.0, 0),  # closed on it
        (0.0, 30.5, 1),  # just after: pushed once
        (0.0, 60.0, 1),  # on the pushed date
        (0.0, 60.5, 2),
        (10.0, 200.0, 6),  # ceil((200 - 40) / 30)
        (math.nan, 50.0, math.nan),  # opened before day 0: no forecast
    ],
)
def test_pushes_count_each_forecast_date_passed_open(opened: float, ended: float, expected: float) -> None:
    """A deal is pushed when its forecast date passes and it is still open: ``ceil((end − f0) / P)`` after ``f0``."""
    got = pushes(np.array([opened]), np.array([ended]), 30.0, 30.0)[0]
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


def test_forecast_categories_on_a_constructed_log() -> None:
    """Win probability from fit (0.3 at fit 0.5, ±1 log-odds for fit 1 / 0): commit ≥ 0.4, best case ≥ 0.2."""
    views = pipeline_views(_constructed())
    deals = views.deals.set_index("lead")
    logit = math.log(0.3 / 0.7)
    expected = [1 / (1 + math.exp(-(logit + d))) for d in (1.0, 0.0, -1.0)]
    assert deals["win_probability"].tolist() == pytest.approx(expected, rel=1e-12)
    assert deals["category"].tolist() == ["commit", "best_case", "pipeline"]  # 0.54, 0.30, 0.14
    months = views.months
    assert months["commit_value"].tolist() == [10_000.0, 0.0, 0.0]
    assert months["best_case_value"].tolist() == [20_000.0] * 3
    assert months["pipeline_value"].tolist() == [0.0, 5_000.0, 0.0]
    assert months["best_case_expected_value"].tolist() == pytest.approx([20_000 * expected[1]] * 3, rel=1e-12)
    calibration = views.calibration.set_index("category")
    assert calibration.loc["commit", ["deals", "won", "lost", "open_at_end"]].tolist() == [1, 1, 0, 0]
    assert calibration.loc["best_case", "open_at_end"] == 1
    assert math.isnan(calibration.loc["best_case", "won_share"])


def test_targets_come_from_the_goal_then_the_forecast_section_then_prior_year_revenue() -> None:
    """--goal spreads evenly over the horizon; the section's yearly target by day, a month it lists replaced."""
    by_month = 'forecast={bookings_target_per_year=365250, bookings_target_by_month={"2027-02"=50000}}'
    scenario = load_scenario(BASELINE, ["horizon_days=90", by_month])
    targets = monthly_targets(scenario, 90.0).set_index("month")
    assert targets.loc["2027-01", "target"] == pytest.approx(31_000, rel=1e-12)
    assert targets.loc["2027-02", "target"] == 50_000
    assert targets["target_in_run"].sum() == pytest.approx(31_000 + 50_000 + 31_000, rel=1e-12)
    with_goal = monthly_targets(scenario, 90.0, goal=900_000.0).set_index("month")
    assert with_goal.loc["2027-02", "target"] == pytest.approx(28 * 10_000, rel=1e-12)
    prior = load_scenario(BASELINE, ["horizon_days=90", "forecast={}", "prior_year_revenue=730500"])
    assert monthly_targets(prior, 90.0).loc[0, "target"] == pytest.approx(31 * 2_000, rel=1e-12)
    none = load_scenario(BASELINE, ["horizon_days=90", "forecast={}"])
    assert monthly_targets(none, 90.0)["target"].isna().all()


@pytest.fixture(scope="module")
def warm_run() -> RunResult:
    """Four months of the baseline company at a tenth of its volume, warm, with the pipeline views."""
    overrides = ["horizon_days=120", *TENTH, "sales.ae.count=4", "burn_in_days=240", FORECAST]
    return simulate(load_scenario(BASELINE, overrides), seed=8)


def test_the_open_pipeline_of_the_views_is_the_pipeline_table_at_each_month_end(warm_run: RunResult) -> None:
    """open_value = pipeline.csv's open value at each month end (warm start: with the deals carried over), and it is
    the sum of the categories plus the deals open all run since before day 0."""
    months = pipeline_views(warm_run).months
    opening = warm_run.metadata["open_at_start"]
    steps = metrics.pipeline_over_time(warm_run.events, (opening["opportunities"], opening["value"]))
    for end, value, count in months[["month_end", "open_value", "open_deals"]].itertuples(index=False):
        row = steps[steps["time"] < end].iloc[-1]
        assert value == pytest.approx(row["open_value"], rel=1e-9)
        assert count == row["open_opportunities"]
    parts = sum(months[f"{c}_value"] for c in CATEGORIES) + months["unseen_value"]
    assert parts.to_numpy() == pytest.approx(months["open_value"].to_numpy(), rel=1e-9)


def test_forecast_categories_of_a_simulated_run_rank_and_match_their_bands() -> None:
    """Six cold years of the baseline with bands at 0.36 and 0.28: the won share of closed commit deals exceeds
    best case's, which exceeds pipeline's (99% Wilson intervals apart), and each is within its 99% interval of the
    mean win probability its deals were given (the bands are calibrated)."""
    bands = "forecast={commit_probability=0.36, best_case_probability=0.28}"
    result = simulate(load_scenario(BASELINE, [bands, "start=cold", "horizon_days=2190"]), seed=11)
    deals = pipeline_views(result).deals
    closed = deals[deals["outcome"] != "open"]
    intervals = {}
    for name in CATEGORIES:
        mine = closed[closed["category"] == name]
        won = (mine["outcome"] == "won").to_numpy(float)
        ci = probability_at_least(won, 1.0, confidence=0.99)
        assert ci["n"] > 300, name
        assert ci["ci_low"] <= mine["win_probability"].mean() <= ci["ci_high"], name
        intervals[name] = ci
    assert intervals["commit"]["ci_low"] > intervals["best_case"]["ci_high"]
    assert intervals["best_case"]["ci_low"] > intervals["pipeline"]["ci_high"]


def test_the_pipeline_figure_stacks_the_categories_and_draws_the_coverage() -> None:
    """Bars: commit, best case, pipeline stacked per month at their values; the twin axis' line is the coverage."""
    months = pipeline_views(_constructed()).months
    fig, ax = pipeline_views_chart(months, "USD")
    bars = [c for c in ax.containers]
    assert [c.get_label() for c in bars] == ["commit", "best case", "pipeline"]
    for container, name in zip(bars, CATEGORIES, strict=True):
        assert [p.get_height() for p in container] == months[f"{name}_value"].tolist()
    tops = [sum(c[i].get_height() for c in bars) for i in range(3)]
    assert tops == months["open_value"].tolist()
    twin = next(a for a in fig.axes if a is not ax)
    assert twin.get_lines()[0].get_ydata().tolist() == pytest.approx(months["coverage"].tolist())


def test_run_writes_the_pipeline_views_only_when_the_scenario_asks(tmp_path: Path) -> None:
    """A forecast section adds pipeline_views.csv, forecast_deals.csv, forecast_calibration.csv and the figure, every
    column documented in outputs.md, and the forecast lines; without it the folder has none of them."""
    small = ["horizon_days=90", *TENTH, "burn_in_days=120"]
    args = ["run", str(BASELINE), *[f"--set={o}" for o in [*small, FORECAST]], "--seed", "3"]
    done = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "v")])
    assert done.exit_code == 0, done.output
    assert "closed after their first forecast date" in done.output and "won by category:" in done.output
    names = ("pipeline_views.csv", "forecast_deals.csv", "forecast_calibration.csv", "figures/pipeline_views.png")
    assert all((tmp_path / "v" / n).exists() for n in names)
    outputs = (ROOT / "docs" / "outputs.md").read_text(encoding="utf-8")
    result = simulate(load_scenario(BASELINE, [*small, FORECAST]), seed=3)
    written = tables._tables(result)
    missing = [f"{n}:{c}" for n in names[:3] for c in written[n].columns if f"`{c}`" not in outputs]
    missing += [k for k in metrics.summarize_run(result) if f"`{k}`" not in outputs and "marketing_cost_" not in k]
    assert not missing
    assert "`pipeline_views.png`" in outputs
    plain = CliRunner().invoke(
        app, ["run", str(BASELINE), *[f"--set={o}" for o in small], "--out", str(tmp_path / "p")]
    )
    assert plain.exit_code == 0, plain.output
    assert not [n for n in names if (tmp_path / "p" / n).exists()]
