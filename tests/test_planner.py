"""The reverse planner: analytic inversion, round trip, monotonicity, infeasible goals, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from funnelsim import load_scenario
from funnelsim.cli import EXIT_BAD_INPUT, EXIT_INFEASIBLE, app
from funnelsim.model.analytic import delay_pmf, renewal_function
from funnelsim.model.distributions import Gamma, LogNormal
from funnelsim.studies import executors
from funnelsim.studies import replications as mc
from funnelsim.studies.planner import (
    Period,
    PlanError,
    analytic_multiplier,
    apply_changes,
    frame,
    period_revenue,
    plan,
    planned_changes,
    waterfall,
)
from funnelsim.studies.stats import probability_at_least
from scaled import TENTH

BASELINE = Path(__file__).resolve().parent.parent / "scenarios" / "baseline.toml"
runner = CliRunner()


@pytest.fixture(scope="module")
def small():
    return load_scenario(BASELINE, TENTH)


@pytest.fixture(scope="module")
def small_plan(small):
    return plan(small, 400_000, 0.8, runs=40, seed=11)


# -- analytic ---------------------------------------------------------------------


@pytest.mark.parametrize("goal", [2e6, 5e6, 8e6])
def test_analytic_waterfall_inverts_the_forward_expectation(goal):
    sc = load_scenario(BASELINE)
    period = Period.of(sc)
    framed = frame(sc, period, 6)
    k = analytic_multiplier(framed, period, goal)
    assert waterfall(apply_changes(framed, planned_changes(framed, k)), period).revenue == pytest.approx(goal, rel=1e-9)


def test_waterfall_volumes_follow_the_funnel():
    sc = load_scenario(BASELINE)
    period = Period.of(sc)
    flow = waterfall(frame(sc, period, 6), period)
    months = flow.months
    assert list(months["phase"]).count("lead-in") == 6
    assert months["month"].tolist()[6] == "2027-01"
    # Leads per month are the volume times seasonality times the days of the month.
    jan = months.set_index("month").loc["2027-01"]
    assert jan["leads_inbound"] == pytest.approx(2500 * 12 / 365.25 * 0.9 * 31)
    inside = flow.in_period
    for a, b in [("leads", "mqls"), ("mqls", "sqls"), ("opportunities", "wins")]:
        assert (inside[a] > inside[b]).all()
    # Later months carry the lead-in's pipeline: revenue in the period's first month is
    # close to the steady state, not to an empty funnel's.
    assert inside["revenue"].iloc[0] > 0.7 * inside["revenue"].mean()


def test_delay_grid_and_renewal_function():
    cycle = LogNormal(dist="lognormal", mean=60, sd=35)
    pmf = delay_pmf(cycle, 600)
    assert pmf.sum() == pytest.approx(1, abs=1e-4)
    assert (pmf * np.arange(600)).sum() == pytest.approx(60, abs=0.2)
    m = renewal_function(pmf)
    # Renewal theory: m(t) ~ t/mu + (sigma^2 - mu^2) / (2 mu^2) for large t.
    assert m[599] == pytest.approx(599 / 60 + (35**2 - 60**2) / (2 * 60**2), abs=0.05)
    gamma = delay_pmf(Gamma(dist="gamma", mean=5, sd=5), 200)  # exponential: m(t) = t / mean
    assert renewal_function(gamma)[150] == pytest.approx(150 / 5, abs=0.3)


def test_period_must_be_whole_months():
    assert Period.parse("2027-01-01:2027-03-31").months == ["2027-01", "2027-02", "2027-03"]
    for bad in ["2027-01-02:2027-03-31", "2027-01-01:2027-03-30", "2027-01-01", "2027-03-01:2027-01-31", "x:y"]:
        with pytest.raises(PlanError, match="--period"):
            Period.parse(bad)


# -- simulation -------------------------------------------------------------------


def test_plan_reaches_the_confidence_on_common_seeds(small_plan):
    p, d = small_plan
    assert p.p_goal["estimate"] >= 0.8
    assert p.p_goal["n"] == 40
    # The smallest on the grid: the next step down was tried and fell short.
    tried = d.candidates[(d.candidates["runs"] == 40) & (d.candidates["lead_multiplier"] < p.lead_multiplier)]
    assert not tried.empty and (tried["p_goal"] < 0.8).all()
    # Its revenue is the plan's replications', measured over the period only.
    revenue = period_revenue(d.replications.monthly, p.period)
    assert np.mean(revenue >= p.goal) == p.p_goal["estimate"]


def test_round_trip_planned_scenario_reaches_goal_at_promised_rate(small_plan, tmp_path):
    p, _ = small_plan
    fresh = mc.run(p.scenario, 120, seed=999)
    hits = int(np.sum(period_revenue(fresh.monthly, p.period) >= p.goal))
    ci = probability_at_least(period_revenue(fresh.monthly, p.period), p.goal)
    # Consistent with the plan's own estimate: the two 95% intervals overlap ...
    assert ci["ci_low"] <= p.p_goal["ci_high"] and p.p_goal["ci_low"] <= ci["ci_high"], (hits, p.p_goal)
    # ... and the promised confidence is not refuted by the fresh runs (two-sided 99%).
    assert ci["ci_high"] >= 0.7


def test_monotone_in_goal_and_confidence(small):
    options = {"runs": 20, "seed": 5, "lead_in_months": 4}
    base, _ = plan(small, 350_000, 0.7, **options)
    higher_goal, _ = plan(small, 420_000, 0.7, **options)
    higher_confidence, _ = plan(small, 350_000, 0.9, **options)
    assert higher_goal.lead_multiplier >= base.lead_multiplier
    assert higher_confidence.lead_multiplier >= base.lead_multiplier


def test_reps_lever_hires_aes_instead_of_buying_leads(small):
    p, d = plan(small, 600_000, 0.8, runs=20, seed=3, lever="reps", lead_in_months=4)
    assert p.lead_multiplier == 1.0
    assert p.extra_aes >= 1
    assert p.changes["sales.ae.hires"][0] == {"date": p.scenario.start_date.isoformat(), "count": p.extra_aes}
    fewer = d.candidates[(d.candidates["extra_aes"] == p.extra_aes - 1) & (d.candidates["runs"] == 20)]
    assert (fewer["p_goal"] < 0.8).all()


def test_both_levers_pick_the_cheapest_mix(small):
    p, d = plan(small, 400_000, 0.8, runs=12, seed=3, lever="both", lead_in_months=4)
    table = d.tradeoff.dropna()
    assert len(table) >= 2
    assert table.loc[table["chosen"], "cost"].iloc[0] == table["cost"].min()
    assert table.loc[table["chosen"], "extra_aes"].iloc[0] == p.extra_aes
    # More AEs never need more leads at equal confidence (beyond a grid step of noise).
    assert table["lead_multiplier"].iloc[-1] <= table["lead_multiplier"].iloc[0] * 1.02


# -- command line -----------------------------------------------------------------


def _cli(*args):
    sets = [a for item in TENTH for a in ("--set", item)]
    return runner.invoke(app, ["plan", str(BASELINE), *sets, *args])


def test_cli_writes_sheet_and_planned_toml_that_reproduces_the_plan(tmp_path):
    out = tmp_path / "plan"
    result = _cli("--goal", "400k", "--runs", "20", "--seed", "4", "--out", str(out), "--json", "--lead-in", "4")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    for key in ("goal", "confidence", "period", "p_goal", "lead_multiplier", "extra_aes", "sdrs", "cost", "revenue"):
        assert key in doc
    assert doc["goal"] == 400_000 and doc["lead_in_months"] == 4
    files = {p.name for p in out.iterdir()}
    assert {"targets.csv", "headcount.csv", "stages.csv", "planned.toml", "plan.json", "manifest.json"} <= files
    assert {f.stem for f in (out / "figures").iterdir()} == {"waterfall", "quotas", "fan_chart"}
    planned = load_scenario(out / "planned.toml")
    assert planned.start_date.isoformat() == "2026-09-01"
    assert planned.sources["inbound"].leads_per_month == pytest.approx(250 * doc["lead_multiplier"], rel=1e-12)
    # The --set overrides and the plan's edits are both in the file, comments kept.
    assert planned.sales.ae.count == 1
    text = (out / "planned.toml").read_text()
    assert "# planned (was 250)" in text and "# Baseline: a mid-market" in text
    # Re-simulating planned.toml gives the plan's own replications (same seeds).
    again = mc.run(planned, 20, seed=4)
    assert period_revenue(again.monthly, Period.of(load_scenario(BASELINE))).mean() == pytest.approx(
        doc["revenue"]["mean"], rel=1e-12
    )
    sheet = __import__("pandas").read_csv(out / "targets.csv")
    assert set(sheet["team"]) == {"marketing", "shared", "sales"}
    assert set(sheet.loc[sheet["stage"] == "sqls", "team"]) == {"shared"}


@pytest.mark.parametrize(
    ("args", "constraint"),
    [
        (("--goal", "20M"), "AE capacity"),
        (("--goal", "60k", "--lead-in", "0", "--period", "2027-01-01:2027-01-31"), "sales cycle"),
        (("--goal", "400k", "--lever", "reps", "--set", "sales.ae.ramp=[0.0]"), "hiring lead time"),
        (
            # One slow SDR, plenty of AEs who do not prospect: more leads only queue for the SDR.
            (
                *("--goal", "1.5M", "--runs", "20", "--lead-in", "4", "--set", "handoff.sdr.work_days=0.5"),
                *("--set", "sales.ae.count=20", "--set", "prospecting.opportunities_per_ae_per_month=0"),
            ),
            "SDR capacity",
        ),
    ],
)
def test_infeasible_goals_exit_3_naming_the_binding_constraint(args, constraint):
    result = _cli(*args)
    assert result.exit_code == EXIT_INFEASIBLE, result.output
    assert f"infeasible: {constraint}:" in result.stderr
    assert "To make it feasible:" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ("--goal", "12Q"),
        ("--goal", "1M", "--confidence", "1.2"),
        ("--goal", "1M", "--lever", "people"),
        ("--goal", "1M", "--period", "2027-01-15:2027-12-31"),
        ("--goal", "1M", "--runs", "5"),
    ],
)
def test_bad_plan_requests_exit_2(args):
    result = _cli(*args)
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "error:" in result.stderr


def test_existing_output_is_refused_before_planning(tmp_path):
    out = tmp_path / "plan"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = _cli("--goal", "400k", "--out", str(out))
    assert result.exit_code == EXIT_BAD_INPUT
    assert (out / "keep.txt").read_text() == "mine"


@pytest.mark.slow
def test_round_trip_on_the_baseline_at_full_size():
    sc = load_scenario(BASELINE)
    with executors.executor(2) as pool:
        p, _ = plan(sc, 5_000_000, 0.8, runs=100, seed=1, pool=pool)
        fresh = mc.run(p.scenario, 300, seed=12345, pool=pool)
    ci = probability_at_least(period_revenue(fresh.monthly, p.period), p.goal)
    assert ci["ci_low"] <= p.p_goal["ci_high"] and p.p_goal["ci_low"] <= ci["ci_high"], (ci, p.p_goal)
    assert ci["ci_low"] <= 0.8 + 0.1  # not wildly over-provisioned either


def test_planned_toml_without_the_source_file_is_the_resolved_scenario(small_plan, tmp_path):
    from funnelsim.report.scenario_file import planned_toml

    p, _ = small_plan
    path = tmp_path / "planned.toml"
    path.write_text(planned_toml(p))
    assert load_scenario(path).sha256() == p.scenario.sha256()
