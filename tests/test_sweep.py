"""Sweeps and one-at-a-time sensitivity on common random numbers: shapes, directions, rules, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from typer.testing import CliRunner

from funnelsim import ScenarioError, load_scenario
from funnelsim.cli import EXIT_BAD_INPUT, app
from funnelsim.report.figures import sweep_chart, sweep_heatmap, tornado_chart
from funnelsim.studies import executors
from funnelsim.studies import replications as mc
from funnelsim.studies.sensitivity import sensitivity, sensitivity_parameters
from funnelsim.studies.sweep import SWEEP_METRICS, SweepError, parse_param, sweep
from scaled import TENTH

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
BASELINE = SCENARIOS / "baseline.toml"
MQL = "qualification.mql.threshold"
runner = CliRunner()


@pytest.fixture(scope="module")
def tenth():
    return load_scenario(BASELINE, TENTH)


@pytest.fixture(scope="module")
def grid(tenth):
    """A 2 x 3 grid of the tenth-size baseline, 4 replications per point."""
    return sweep(tenth, {"sales.win_rate": [0.15, 0.35], "handoff.follow_up_rate": [0.4, 0.7, 1.0]}, 4, seed=11)


@pytest.fixture(scope="module")
def sens(tenth):
    """Sensitivity of the tenth-size baseline to a few parameters of each kind, 10 replications."""
    params = ["sales.win_rate", "handoff.follow_up_rate", "handoff.sdr.count", "sales.cycle_days"]
    return sensitivity(tenth, 0.2, 10, 5, params=params)


def _edges_significantly_worse(result, metric="revenue"):
    """The optimum is interior and both ends of the range are below it with paired CIs excluding 0."""
    best = result.optimum(metric)
    diffs = result.differences(metric).set_index("point")
    ends = [0, len(result.runs) - 1]
    return best, diffs, best.interior and all(diffs.loc[k, "diff_ci_high"] < 0 for k in ends)


# --- sweep: shapes and directions ---------------------------------------------------------


def test_sweep_table_has_one_row_per_grid_point(grid):
    """Rows are the grid points (first parameter slowest); columns the values, runs and six
    statistics per metric; the replications stack points x runs rows."""
    table = grid.table()
    assert len(table) == 6
    assert list(table["sales.win_rate"]) == [0.15, 0.15, 0.15, 0.35, 0.35, 0.35]
    assert list(table["handoff.follow_up_rate"]) == [0.4, 0.7, 1.0, 0.4, 0.7, 1.0]
    stats = ("mean", "ci_low", "ci_high", "p10", "p50", "p90")
    assert list(table.columns) == [
        "point",
        "sales.win_rate",
        "handoff.follow_up_rate",
        "runs",
        *[f"{m}_{s}" for m in SWEEP_METRICS for s in stats],
    ]
    assert (table["runs"] == 4).all()
    assert (table["revenue_ci_low"] <= table["revenue_mean"]).all()
    assert (table["revenue_mean"] <= table["revenue_ci_high"]).all()
    reps = grid.replications()
    assert len(reps) == 24 and list(reps.columns[:3]) == ["point", "sales.win_rate", "handoff.follow_up_rate"]
    # Point k is replications 0..3 of the same seed, exactly what montecarlo.run gives for it.
    assert list(reps["replication"]) == [0, 1, 2, 3] * 6
    assert grid.table("wins").shape == (6, 4 + 6)


def test_points_share_their_replications(grid, tenth):
    """Every grid point runs replications 0..N-1 of the same seed: a point equals a plain run."""
    point = grid.grid.set_index("point").loc[4]
    plain = load_scenario(BASELINE, [*TENTH, f"sales.win_rate={point['sales.win_rate']}",
                                     f"handoff.follow_up_rate={point['handoff.follow_up_rate']}"])  # fmt: skip
    again = mc.run(plain, 4, 11)
    pd.testing.assert_series_equal(grid.runs[4].table["revenue"], again.table["revenue"])


def test_more_follow_up_gives_more_sqls_and_higher_win_rate_more_wins(tenth):
    """On common random numbers the direction is known: following up more MQLs adds SQLs,
    a higher win rate adds wins; each step's paired difference is positive with its CI."""
    follow = sweep(tenth, {"handoff.follow_up_rate": [0.3, 0.6, 0.9]}, 8, seed=3)
    win = sweep(tenth, {"sales.win_rate": [0.15, 0.25, 0.35]}, 8, seed=3)
    for result, metric in ((follow, "sqls"), (win, "wins")):
        for k in (1, 2):
            step = result.differences(metric, against=k - 1).set_index("point").loc[k]
            assert step["difference"] > 0 and step["diff_ci_low"] > 0, (metric, k, step.to_dict())


def test_optimum_reports_edge_interior_and_neighbours(grid):
    """The best point of a monotone grid is at the edge (win rate and follow-up both highest);
    its neighbours are one step along each parameter."""
    best = grid.optimum("wins")
    assert best.values == {"sales.win_rate": 0.35, "handoff.follow_up_rate": 1.0}
    assert not best.interior
    assert sorted(best.neighbours["point"]) == [2, 4]
    assert best.neighbours["difference"].lt(0).all()
    # Lower is better for costs: the optimum of CAC is its minimum.
    cac = grid.optimum("cac")
    assert not cac.maximize
    assert cac.mean == pytest.approx(grid.table("cac")["cac_mean"].min())


def test_mql_threshold_has_an_interior_optimum_fast(tenth):
    """Tenth-size baseline: too loose a MQL bar floods the SDR (utilisation near 1, MQLs go
    cold in its queue or are reached too late), too narrow starves sales; revenue peaks in
    between and both ends are significantly worse on paired replications."""
    result = sweep(tenth, {MQL: [0.3, 0.425, 0.55, 0.675, 0.8]}, 12, seed=2027)
    best, diffs, ok = _edges_significantly_worse(result)
    assert ok, diffs
    table = result.table(["sdr_utilisation", "sqls", "leak_sdr_abandoned"]).set_index(MQL)
    loose, tight, top = 0.3, 0.8, best.values[MQL]
    assert table.loc[loose, "sdr_utilisation_mean"] > 0.9 > table.loc[top, "sdr_utilisation_mean"]
    assert table.loc[loose, "leak_sdr_abandoned_mean"] > 10 * max(table.loc[top, "leak_sdr_abandoned_mean"], 1)
    assert table.loc[tight, "sqls_mean"] < 0.5 * table.loc[top, "sqls_mean"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["baseline", "misaligned", "aligned"])
def test_mql_threshold_has_an_interior_optimum_full_size(name):
    """Full-size scenarios, 12 thresholds from 0.3 to 0.85, 20 runs each: the revenue optimum is
    interior and both edges are significantly worse (paired 95% CIs)."""
    scenario = load_scenario(SCENARIOS / f"{name}.toml")
    result = sweep(scenario, dict([parse_param(f"{MQL}=0.3:0.85:12")]), 20, seed=2027)
    best, diffs, ok = _edges_significantly_worse(result)
    assert ok, (best.values, diffs)


# --- sweep: bad requests --------------------------------------------------------------------


def test_parse_param_ranges_and_lists():
    """lo:hi:n is n evenly spaced values (whole numbers when they can be); v1,v2 a list."""
    assert parse_param("qualification.mql.threshold=0.3:0.85:12")[1][:3] == [0.3, 0.35, 0.4]
    assert parse_param("handoff.sdr.count=1:5:5") == ("handoff.sdr.count", [1, 2, 3, 4, 5])
    assert parse_param('sales.queue="fifo","score"') == ("sales.queue", ["fifo", "score"])
    for bad, message in [
        ("foo", "expected dotted.path"),
        ("x=0.1:0.5:1", "whole number >= 2"),
        ("x=0.1:0.5", "lo:hi:n"),
        ("x=a:b:3", "must be numbers"),
        ("x=0.3", "at least two values"),
    ]:
        with pytest.raises(SweepError, match=message):
            parse_param(bad)


def test_sweep_refuses_bad_grids_before_running(tenth):
    """Unknown paths get a hint; three parameters, the seed or one value are refused; a value
    out of range is a ScenarioError naming the path and the value."""
    with pytest.raises(SweepError, match=r"did you mean 'sales\.win_rate'"):
        sweep(tenth, {"sales.win_rat": [0.1, 0.2]}, 3, 1)
    with pytest.raises(SweepError, match="one or two parameters, got 3"):
        sweep(tenth, {"sales.win_rate": [0.1, 0.2], "handoff.follow_up_rate": [1, 0.5], MQL: [0.5, 0.6]}, 3, 1)
    with pytest.raises(SweepError, match="--seed"):
        sweep(tenth, {"seed": [1, 2]}, 3, 1)
    with pytest.raises(SweepError, match="must differ"):
        sweep(tenth, dict([parse_param("handoff.sdr.count=2:2:3")]), 3, 1)
    with pytest.raises(SweepError, match="runs must be >= 2"):
        sweep(tenth, {"sales.win_rate": [0.1, 0.2]}, 1, 1)
    with pytest.raises(ScenarioError, match=r"sales.win_rate=1.4(.|\n)*sales.win_rate: must be <= 1, got 1.4"):
        sweep(tenth, {"sales.win_rate": [0.2, 1.4]}, 3, 1)
    with pytest.raises(SweepError, match="unknown metric 'revenu'"):
        sweep(tenth, {"sales.win_rate": [0.2, 0.3]}, 2, 1, metric="revenu")


# --- sensitivity ----------------------------------------------------------------------------


def test_sensitivity_base_is_a_plain_run(sens, tenth):
    """The base of the sensitivity is exactly `montecarlo.run` with the same seed and runs."""
    plain = mc.run(tenth, 10, 5)
    pd.testing.assert_frame_equal(sens.base.table, plain.table)
    table = sens.table()
    assert (table["base_mean"] == plain.table["revenue"].mean()).all()


def test_sensitivity_table_is_sorted_by_swing_with_known_signs(sens):
    """One row per parameter, sorted by swing; a higher win rate raises revenue and a lower one
    cuts it, a second SDR raises it (the tenth company's one SDR makes MQLs wait, and a waiting MQL is
    mostly lost; paired CIs exclude 0)."""
    table = sens.table()
    assert len(table) == 4 and table["swing"].is_monotonic_decreasing
    rows = table.set_index("parameter")
    win = rows.loc["sales.win_rate"]
    assert win["high_diff_ci_low"] > 0 and win["low_diff_ci_high"] < 0, win.to_dict()
    assert win["elasticity"] > 0
    assert rows.loc["handoff.sdr.count", "high_diff_ci_low"] > 0
    # The swing is at least either side's effect (it does not vanish at an optimum).
    assert (table["swing"] >= np.maximum(table["low_diff"].abs(), table["high_diff"].abs()) - 1e-6).all()
    assert rows.loc["sales.win_rate", "swing"] == pytest.approx(
        abs(rows.loc["sales.win_rate", "high_mean"] - rows.loc["sales.win_rate", "low_mean"])
    )


def test_sensitivity_rules_for_each_kind_of_parameter(tenth):
    """Shares are clipped to [0, 1] and report the value used; counts move by at least one and stay
    in range; an open bound leaves its side unrun; distributions keep their CV, a beta its a + b."""
    found, _ = sensitivity_parameters(tenth, 0.2)
    by = {p.parameter: p for p in found}
    follow = by["handoff.follow_up_rate"]
    assert (follow.low_value, follow.high_value) == (0.68, 1.0) and "clipped to 1" in follow.note
    sdr = by["handoff.sdr.count"]  # one SDR at tenth size: no fewer than one
    assert (sdr.low_value, sdr.high_value) == (1, 2) and sdr.low is None
    assert sensitivity_parameters(load_scenario(BASELINE), 0.1)[0][27].parameter == "handoff.sdr.count"
    three = {p.parameter: p for p in sensitivity_parameters(load_scenario(BASELINE), 0.1)[0]}["handoff.sdr.count"]
    assert (three.low_value, three.high_value) == (3, 5)  # ±10% of 4 rounds to 4: moved by one
    contact = by["handoff.speed_to_lead.contact_rate_immediate"]
    assert contact.high is None and "must stay below 1" in contact.note
    cycle = by["sales.cycle_days"]
    base_cycle, high_cycle = tenth.sales.cycle_days, cycle.high.sales.cycle_days
    assert high_cycle.mean == pytest.approx(1.2 * base_cycle.mean)
    assert high_cycle.sd / high_cycle.mean == pytest.approx(base_cycle.sd / base_cycle.mean)
    fit = by["sources.inbound.fit"]
    low_fit = fit.low.sources["inbound"].fit
    assert low_fit.mean == pytest.approx(0.8 * 0.4) and low_fit.a + low_fit.b == pytest.approx(5.0)


def test_sensitivity_lists_everything_it_does_not_vary(tenth):
    """Nothing is dropped silently: every value of the resolved scenario is either varied or
    listed with a reason (seed, horizon, mixes, weights, profiles, knots, unset, zero)."""
    found, skipped = sensitivity_parameters(tenth)
    reasons = dict(zip(skipped["parameter"], skipped["reason"], strict=True))
    for path, word in [
        ("seed", "seed"),
        ("horizon_days", "period"),
        ("start_date", "date"),
        ("sources.inbound.persona_mix", "sum to 1"),
        ("sources.inbound.seasonality", "profile"),
        ("qualification.mql.fit_weight", "sum to 1"),
        ("handoff.speed_to_lead.knots_hours", "knots"),
        ("sales.ae.hires", "schedule"),
        ("sources.inbound.leads_per_week", "not set"),
        ("personas.job_seeker.buying_intent", "zero"),
    ]:
        assert word in reasons[path], (path, reasons.get(path))

    def leaves(node, prefix=""):
        for key, value in node.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict) and "dist" not in value:
                yield from leaves(value, path + ".")
            else:
                yield path

    covered = {p.parameter for p in found} | set(reasons)
    # A leaf is covered when it, or a table holding it (a mix), is varied or listed.
    missing = [
        leaf for leaf in leaves(tenth.to_dict()) if not any(leaf == c or leaf.startswith(c + ".") for c in covered)
    ]
    assert missing == []
    assert not {p.parameter for p in found} & set(reasons)


def test_sensitivity_refuses_bad_requests(tenth):
    """by outside (0, 1), a path that is not varied (with its reason) or unknown (with a hint)."""
    with pytest.raises(SweepError, match="between 0 and 100%"):
        sensitivity(tenth, 1.5, 3, 1)
    with pytest.raises(SweepError, match="persona_mix: not varied by sensitivity: a mix"):
        sensitivity(tenth, 0.2, 3, 1, params=["sources.inbound.persona_mix"])
    with pytest.raises(SweepError, match=r"did you mean 'sales\.win_rate'"):
        sensitivity(tenth, 0.2, 3, 1, params=["sales.winrate"])


# --- figures --------------------------------------------------------------------------------


def test_figures_take_tables_and_an_axis(grid, sens):
    """Each chart draws from the tables and returns (fig, ax); an ax passed in is used."""
    one = sweep_chart(grid.table().query("`sales.win_rate` == 0.35"), "handoff.follow_up_rate", "wins", best=1.0)
    assert isinstance(one[0], Figure) and len(one[1].lines) >= 1
    fig = Figure()
    ax = fig.add_subplot()
    assert sweep_heatmap(grid.table(), grid.parameters, "revenue", ax=ax) == (fig, ax)
    _, tornado_ax = tornado_chart(sens.table(), "USD")
    assert len(tornado_ax.patches) == 2 * 4
    with pytest.raises(ValueError, match="two parameters"):
        sweep_heatmap(grid.table(), ["sales.win_rate"])


# --- CLI ------------------------------------------------------------------------------------


def _tenth_sets():
    return [arg for item in TENTH for arg in ("--set", item)]


def test_cli_sweep_writes_files_and_json(tmp_path):
    """`funnelsim sweep --out --json`: the folder holds the tables, figure and manifest; stdout
    one JSON document with the grid, the points and the optimum."""
    out = tmp_path / "sw"
    args = ["sweep", str(BASELINE), "--param", f"{MQL}=0.4:0.6:3", "--runs", "3", "--seed", "4", *_tenth_sets()]
    result = runner.invoke(app, [*args, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["parameters"] == {MQL: [0.4, 0.5, 0.6]} and doc["runs"] == 3 and len(doc["points"]) == 3
    assert {"values", "interior", "distinguishable", "neighbours"} <= set(doc["optimum"])
    assert {p.name for p in out.iterdir()} == {
        "sweep.csv", "differences.csv", "replications.csv", "manifest.json", "report.html", "figures",
    }  # fmt: skip
    assert [p.name for p in (out / "figures").iterdir()] == ["sweep.png"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parameters"] == {MQL: [0.4, 0.5, 0.6]} and manifest["metric"] == "revenue"
    assert len(pd.read_csv(out / "replications.csv")) == 9


def test_cli_sensitivity_writes_files_and_json(tmp_path):
    """`funnelsim sensitivity --param ... --out --json`: tables, skipped list, tornado, JSON."""
    out = tmp_path / "sens"
    args = ["sensitivity", str(BASELINE), "--by", "10%", "--param", "sales.win_rate", "--runs", "3", *_tenth_sets()]
    result = runner.invoke(app, [*args, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["by"] == pytest.approx(0.1) and [p["parameter"] for p in doc["parameters"]] == ["sales.win_rate"]
    assert any(s["parameter"] == "seed" for s in doc["skipped"])
    assert {p.name for p in out.iterdir()} == {
        "sensitivity.csv", "skipped.csv", "replications.csv", "manifest.json", "report.html", "figures",
    }  # fmt: skip
    assert not math.isnan(pd.read_csv(out / "sensitivity.csv")["swing"].iloc[0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sweep", str(BASELINE), "--param", "foo", "--runs", "2"], "expected dotted.path"),
        (["sweep", str(BASELINE), "--param", f"{MQL}=0.3:0.8:1", "--runs", "2"], "whole number >= 2"),
        (["sweep", str(BASELINE), "--param", "sales.nope=1,2", "--runs", "2"], "no such parameter"),
        (["sweep", str(BASELINE), "--runs", "2"], "one or two parameters"),
        (
            [
                "sweep",
                str(BASELINE),
                "--param",
                "sales.win_rate=0.2,0.3",
                "--param",
                f"{MQL}=0.5,0.6",
                "--param",
                "handoff.follow_up_rate=0.5,0.6",
                "--runs",
                "2",
            ],
            "one or two parameters, got 3",
        ),
        (["sweep", str(BASELINE), "--param", "sales.win_rate=0.2,1.5", "--runs", "2"], "must be <= 1, got 1.5"),
        (["sensitivity", str(BASELINE), "--by", "150%"], "between 0 and 100%"),
        (["sensitivity", str(BASELINE), "--by", "lots"], "expected a share"),
        (["sensitivity", str(BASELINE), "--param", "seed"], "not varied"),
    ],
)
def test_cli_bad_input_exits_2(args, message):
    """Bad specs exit with code 2 and name the problem, without a traceback."""
    result = runner.invoke(app, args)
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert message in result.stderr and "Traceback" not in result.output


def test_sweep_is_the_same_on_two_processes(tenth):
    """The grid's numbers do not depend on the executor (replication i = child i of the seed)."""
    with executors.executor(2) as pool:
        parallel = sweep(tenth, {MQL: [0.5, 0.6]}, 5, 9, pool)
    serial = sweep(tenth, {MQL: [0.5, 0.6]}, 5, 9)
    pd.testing.assert_frame_equal(parallel.table(), serial.table())
    assert np.array_equal(parallel.replications()["revenue"], serial.replications()["revenue"])
