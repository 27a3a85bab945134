"""Monte Carlo: replications that do not depend on how they were run, honest intervals, clean stops."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from funnelsim import load_scenario
from funnelsim.cli import app
from funnelsim.model import analytic
from funnelsim.model.loading import parse_scenario
from funnelsim.model.paths import apply_overrides
from funnelsim.model.scenario import Scenario, ScenarioError
from funnelsim.studies import executors
from funnelsim.studies import replications as mc
from funnelsim.studies.stats import describe, probability_at_least, relative_half_width
from funnelsim.units import parse_amount
from scaled import TENTH_VOLUME

sys.path.insert(0, str(Path(__file__).parent / "validation"))
from test_closed_forms import open_funnel  # the capacity-free funnel with closed-form yields

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.toml"
# The baseline company at a tenth of its size over four months: every mechanism on, ~0.05 s a run.
SMALL = (
    "horizon_days=120",
    *TENTH_VOLUME,
    "handoff.sdr.count=1",
    "sales.ae.count=2",
    "sales.ae.hires=[]",
)


@pytest.fixture(scope="module")
def small() -> Scenario:
    return load_scenario(BASELINE, SMALL)


@pytest.fixture(scope="module")
def serial_12(small: Scenario) -> mc.Replications:
    return mc.run(small, 12, seed=11)


def test_jobs_and_dask_give_identical_replication_tables(small: Scenario, serial_12: mc.Replications) -> None:
    with executors.executor(jobs=2) as pool:
        parallel = mc.run(small, 12, seed=11, pool=pool)
    pd.testing.assert_frame_equal(parallel.table, serial_12.table, check_exact=True)
    pd.testing.assert_frame_equal(parallel.monthly, serial_12.monthly, check_exact=True)

    distributed = pytest.importorskip("distributed")  # in the test extra; importorskip keeps the message clear
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_dask = mc.run(small, 12, seed=11, pool=client.get_executor())
    pd.testing.assert_frame_equal(on_dask.table, serial_12.table, check_exact=True)


def test_a_replication_alone_equals_the_same_replication_in_a_batch(
    small: Scenario, serial_12: mc.Replications
) -> None:
    alone = mc.run(small, 1, seed=11, replications=[7])
    expected = serial_12.table[serial_12.table["replication"] == 7].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone.table, expected, check_exact=True)
    assert alone.table["run_id"].item() == "baseline-11-7"
    # Another seed is another set of replications.
    other = mc.run(small, 1, seed=12, replications=[7])
    assert other.table["revenue"].item() != alone.table["revenue"].item()


def _no_arrivals_after_september(scenario: Scenario) -> Scenario:
    """Leads arrive January to September only, so by the end of the year every lead has finished."""
    raw = scenario.to_dict()
    for source in raw["sources"].values():
        source["seasonality"] = [*source["seasonality"][:9], 0.0, 0.0, 0.0]
    return parse_scenario(raw, "open_funnel_to_september")


def test_confidence_interval_of_the_mean_covers_the_analytic_expectation() -> None:
    scenario = _no_arrivals_after_september(open_funnel())
    expected = {"leads": 0.0, "sqls": 0.0, "wins": 0.0, "revenue": 0.0}
    for name in scenario.sources:
        leads = analytic.expected_leads(scenario, name, 0.0, scenario.horizon_days)
        y = analytic.mql_yield(scenario, name, points=4096)
        expected["leads"] += leads
        expected["sqls"] += leads * y.sqls_per_mql
        expected["wins"] += leads * y.wins_per_mql
        expected["revenue"] += leads * y.revenue_per_mql
    reps = mc.run(scenario, 40, seed=3, confidence=0.99)
    summary = reps.summary().set_index("metric")
    for metric, value in expected.items():
        row = summary.loc[metric]
        assert row["ci_low"] <= value <= row["ci_high"], (metric, value, row["ci_low"], row["ci_high"])
        # The interval is informative (about 60 wins a run: +-6% after 40 runs), not a wide net.
        assert row["ci_high"] - row["ci_low"] < 0.2 * value


def test_describe_is_the_student_t_interval_and_linear_percentiles() -> None:
    values = np.array([10.0, 12.0, 9.0, 15.0, 14.0, np.nan])
    d = describe(values, 0.95)
    x = values[:5]
    half = stats.t.ppf(0.975, 4) * x.std(ddof=1) / math.sqrt(5)
    assert d["n"] == 5  # the NaN is dropped, not counted
    assert d["mean"] == pytest.approx(12.0)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((12.0 - half, 12.0 + half))
    assert (d["p10"], d["p50"], d["p90"]) == pytest.approx((9.4, 12.0, 14.6))
    one = describe(np.array([5.0]))
    assert one["mean"] == 5.0 and math.isnan(one["ci_low"]) and math.isnan(one["sd"])


def test_probability_of_the_goal_has_a_wilson_interval() -> None:
    revenue = np.array([90.0, 100.0, 110.0, 120.0, 80.0, 130.0, 100.0, 70.0])
    p = probability_at_least(revenue, 100.0)
    assert (p["hits"], p["n"], p["estimate"]) == (5, 8, 5 / 8)  # reaching the goal exactly counts
    z = stats.norm.ppf(0.975)
    centre = (5 + z**2 / 2) / (8 + z**2)
    half = z * math.sqrt(5 * 3 / 8 + z**2 / 4) / (8 + z**2)
    assert (p["ci_low"], p["ci_high"]) == pytest.approx((centre - half, centre + half))


def test_precision_rule_stops_where_the_replications_say(small: Scenario) -> None:
    full = mc.run(small, 60, seed=5)
    revenue = full.table["revenue"].to_numpy()
    widths = {n: relative_half_width(revenue[:n]) for n in range(10, 61, 10)}
    precision = widths[30]
    # Batches: 10, then 10 at a time; the rule stops at the first batch end within the target.
    needed = min(n for n, w in widths.items() if w <= precision)
    assert needed <= 30

    reps = mc.run(small, 10, seed=5, precision=precision, max_runs=60, batch=10)
    assert reps.stopped == "precision reached"
    assert reps.completed == needed
    assert relative_half_width(reps.table["revenue"]) <= precision
    pd.testing.assert_frame_equal(reps.table, full.table.iloc[:needed], check_exact=True)
    # The textbook estimate n = (t * sd / (precision * mean))^2 agrees with where it stopped, to a batch.
    sd, mean = revenue[:needed].std(ddof=1), revenue[:needed].mean()
    estimate = (stats.t.ppf(0.975, needed - 1) * sd / (precision * mean)) ** 2
    assert needed - 10 < estimate <= needed

    capped = mc.run(small, 10, seed=5, precision=precision / 10, max_runs=25, batch=10)
    assert capped.stopped == "max runs reached"
    assert capped.completed == 25
    doc = capped.to_json()
    assert doc["requested"] == 25 and doc["revenue_ci_half_width_relative"] > precision / 10


def test_ctrl_c_keeps_the_finished_replications(small: Scenario) -> None:
    calls = []

    def progress(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    reps = mc.run(small, 20, seed=5, progress=progress)
    assert reps.stopped == "interrupted"
    assert reps.completed == 2 * mc.CHUNK
    assert reps.table["replication"].tolist() == list(range(2 * mc.CHUNK))
    assert reps.to_json()["completed"] == 2 * mc.CHUNK and reps.requested == 20


def test_a_rate_given_as_a_distribution_is_drawn_once_per_replication(small: Scenario) -> None:
    # No prospecting: every opportunity then comes from an SQL.
    raw = apply_overrides(
        small.to_dict(),
        [
            'sales.opportunity_rate={dist = "beta", a = 2, b = 2}',
            "prospecting.opportunities_per_ae_per_month=0",
            "horizon_days=365",  # a year of SQLs (about 60), so a run's realised rate is close to its draw
            "handoff.sdr.count=3",
        ],
    )
    uncertain = parse_scenario(raw, "uncertain")
    reps = mc.run(uncertain, 30, seed=9)
    drawn = reps.table["parameter:sales.opportunity_rate"]
    assert drawn.nunique() == 30
    # Beta(2, 2): mean 0.5, sd 0.2236; the mean of 30 draws is within 4 standard errors.
    assert abs(drawn.mean() - 0.5) < 4 * 0.2236 / math.sqrt(30)
    again = mc.run(uncertain, 1, seed=9, replications=[3])
    assert again.table["parameter:sales.opportunity_rate"].item() == drawn.iloc[3]
    # The draw is what the replication runs with: SQLs become opportunities at about that rate.
    realised = reps.table["sql_to_opportunity"]
    assert np.corrcoef(drawn, realised)[0, 1] > 0.9
    fixed = mc.run(parse_scenario(apply_overrides(small.to_dict(), ["sales.opportunity_rate=0.5"]), "fixed"), 5, seed=9)
    assert not any(c.startswith("parameter:") for c in fixed.table.columns)


def test_a_bad_rate_distribution_is_named_by_its_path(small: Scenario) -> None:
    raw = apply_overrides(small.to_dict(), ['sales.win_rate={dist = "uniform", low = 0.2, high = 1.5}'])
    with pytest.raises(ScenarioError) as info:
        parse_scenario(raw, "bad")
    assert info.value.problems == [("sales.win_rate", "must stay within [0, 1]; this uniform spans [0.2, 1.5]")]


@pytest.mark.parametrize(("text", "value"), [("12M", 12e6), ("750k", 750e3), ("12,000,000", 12e6), ("1.5bn", 1.5e9)])
def test_amounts_accept_suffixes(text: str, value: float) -> None:
    assert parse_amount(text) == value


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["run", str(BASELINE), *(f"--set={o}" for o in SMALL), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


def test_cli_json_has_every_headline_metric_and_the_goal_probability() -> None:
    code, stdout, stderr = _cli("--runs", "5", "--seed", "4", "--goal", "150k", "--json")
    assert code == 0 and stderr == ""
    doc: dict[str, Any] = json.loads(stdout)
    assert (doc["requested"], doc["completed"], doc["stopped"]) == (5, 5, "completed")
    for metric in mc.HEADLINE:
        assert set(doc["summary"][metric]) >= {"mean", "ci_low", "ci_high", "p10", "p50", "p90"}
    assert doc["goal"] == 150_000
    assert set(doc["p_goal"]) == {"estimate", "ci_low", "ci_high", "hits", "n"}


def test_cli_replication_alone_matches_its_row_in_the_batch(tmp_path: Path) -> None:
    code, _, _ = _cli("--runs", "3", "--seed", "4", "--out", str(tmp_path / "batch"), "-q")
    assert code == 0
    table = pd.read_csv(tmp_path / "batch" / "replications.csv")
    assert (tmp_path / "batch" / "figures" / "fan_chart.png").is_file()
    code, stdout, _ = _cli("--replication", "2", "--seed", "4", "--json")
    assert code == 0
    alone = json.loads(stdout)["summary"]
    row = table[table["replication"] == 2].iloc[0]
    for key, value in alone.items():
        assert (value is None and pd.isna(row[key])) or row[key] == value, key


def test_cli_interrupt_writes_the_finished_replications(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = mc._replicate_chunk
    calls = []

    def interrupted_on_the_third_task(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(mc, "_replicate_chunk", interrupted_on_the_third_task)
    code, _, stderr = _cli("--runs", "20", "--out", str(tmp_path / "out"))
    assert code == 130
    assert f"interrupted: {2 * mc.CHUNK} of 20 replications completed" in stderr
    assert len(pd.read_csv(tmp_path / "out" / "replications.csv")) == 2 * mc.CHUNK
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert (manifest["completed"], manifest["requested"], manifest["stopped"]) == (8, 20, "interrupted")


def test_cli_bad_monte_carlo_options_are_bad_input() -> None:
    code, _, stderr = _cli("--runs", "3", "--goal", "lots")
    assert code == 2 and "--goal" in stderr and "'lots'" in stderr
    code, _, stderr = _cli("--runs", "3", "--replication", "1")
    assert code == 2 and "--replication" in stderr
    code, _, stderr = _cli("--runs", "3", "--precision", "1.5")
    assert code == 2 and "--precision" in stderr


def test_every_monte_carlo_column_and_json_key_is_documented(serial_12: mc.Replications) -> None:
    text = (ROOT / "docs" / "outputs.md").read_text(encoding="utf-8")
    summary_keys = set(serial_12.table.columns) - {"run_id", "replication", "seed"}
    columns = {"run_id", "replication", "seed", *serial_12.monthly.columns, *serial_12.summary().columns}
    # Per-replication metrics are the single-run summary keys, documented there.
    # Per-source cost columns are documented by their pattern.
    named = {c for c in columns | summary_keys if not c.startswith("marketing_cost_")} | {"marketing_cost_<source>"}
    missing = [c for c in sorted(named) if f"`{c}`" not in text]
    missing += [k for k in serial_12.to_json() if f"`{k}`" not in text]
    assert not missing, f"not in docs/outputs.md: {missing}"
