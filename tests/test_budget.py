"""Channel spend with diminishing returns: the saturation curve, the best mix of a budget, ``funnelsim mix``,
and ``plan --lever budget``.

Closed forms are checked to floating-point precision; the optimiser against a brute-force grid (its
tolerance is the grid's own resolution, stated in each test); the plan's confidence by the Wilson
interval of its verification runs and of runs on a seed the planner never saw, as tests/test_planner.py
does. The small scenario is ``tests/scenarios/channels.toml``.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from funnelsim import load_scenario
from funnelsim.cli import EXIT_BAD_INPUT, app
from funnelsim.engine import simulate
from funnelsim.model.scenario import DAYS_PER_MONTH, ScenarioError
from funnelsim.model.spend import SpendCurve, allocate
from funnelsim.run.metrics import summarize_run
from funnelsim.studies import replications as mc
from funnelsim.studies.budget import MIX_COLUMNS, BudgetError, mix
from funnelsim.studies.planner import LeadShape, Period, PlanError, apply_changes, period_revenue, plan, planned_changes
from funnelsim.studies.planner.levers import budget_of, spend_channels
from funnelsim.studies.planner.waterfall import source_yields
from funnelsim.studies.stats import probability_at_least

ROOT = Path(__file__).resolve().parents[1]
CHANNELS = ROOT / "tests" / "scenarios" / "channels.toml"
BASELINE = ROOT / "scenarios" / "baseline.toml"
QUARTER = Period.parse("2027-01-01:2027-03-31")
runner = CliRunner()


@pytest.fixture(scope="module")
def channels():
    return load_scenario(CHANNELS)


# -- the saturation curve -------------------------------------------------------------


@pytest.mark.parametrize(("c", "m"), [(25.0, 800.0), (150.0, 40.0), (0.5, 1e6)])
def test_curve_closed_form_inverse_and_marginal_cost(c, m):
    """L(S) = M(1 - exp(-S/(cM))); S(L) inverts it; dS/dL = c exp(S/(cM)) = c/(1 - L/M); the first leads cost c."""
    curve = SpendCurve(c, m)
    for spend in (0.0, 0.1 * c * m, c * m, 3.7 * c * m):
        leads = curve.leads(spend)
        assert leads == pytest.approx(m * (1 - math.exp(-spend / (c * m))), rel=1e-12, abs=1e-12)
        assert curve.spend(leads) == pytest.approx(spend, rel=1e-9, abs=1e-9)
        marginal = curve.marginal_cost(spend)
        assert marginal == pytest.approx(c / (1 - leads / m), rel=1e-9)
        # The derivative of the inverse, by a central difference.
        h = 1e-4 * (m - leads)
        if leads > h:
            assert (curve.spend(leads + h) - curve.spend(leads - h)) / (2 * h) == pytest.approx(marginal, rel=1e-6)
        assert c <= curve.average_cost(spend) <= marginal * (1 + 1e-12)
    assert curve.leads(0.0) == 0 and curve.average_cost(0.0) == c
    assert curve.leads(c * m) == pytest.approx(m * (1 - 1 / math.e))
    assert curve.leads(60 * c * m) == pytest.approx(m) and curve.spend(m) == math.inf
    assert curve.marginal_cost(c * m * math.log(2)) == pytest.approx(2 * c)  # half full: twice the first price


def test_curve_is_recovered_from_two_months_or_one_month_and_its_ceiling():
    truth = SpendCurve(40.0, 1500.0)
    months = [(s, truth.leads(s)) for s in (20_000.0, 55_000.0)]
    fitted = SpendCurve.through(*months)
    assert fitted.cost_per_lead == pytest.approx(40.0, rel=1e-9)
    assert fitted.max_leads_per_month == pytest.approx(1500.0, rel=1e-9)
    assert SpendCurve.through(*months[::-1]) == fitted  # order does not matter
    assert SpendCurve.through_point(20_000.0, truth.leads(20_000.0), 1500.0).cost_per_lead == pytest.approx(40.0)
    # Leads that grew as fast as spend show no saturation: no curve through them.
    for bad in [((10_000.0, 100.0), (20_000.0, 200.0)), ((10_000.0, 100.0), (20_000.0, 90.0))]:
        with pytest.raises(ValueError, match="saturating curve"):
            SpendCurve.through(*bad)
    with pytest.raises(ValueError):
        SpendCurve(0.0, 100.0)


# -- the best mix of a budget ------------------------------------------------------------

CURVES = {"search": SpendCurve(25.0, 800.0), "events": SpendCurve(120.0, 120.0), "demos": SpendCurve(150.0, 40.0)}
VALUES = {"search": 100.0, "events": 290.0, "demos": 1700.0}


def _earned(spend: dict[str, float], curves=CURVES, values=VALUES) -> float:
    return sum(values[n] * curves[n].leads(s) for n, s in spend.items())


@pytest.mark.parametrize("budget", [1_000.0, 12_000.0, 30_000.0, 200_000.0])
def test_mix_of_two_channels_beats_every_split_of_a_fine_grid(budget):
    """Two channels: the exact optimum earns at least as much as each of 2,001 splits, and the best split
    of the grid is within one grid step of it (the objective's slope is at most max v/c per unit)."""
    names = ["search", "demos"]
    curves = {n: CURVES[n] for n in names}
    values = {n: VALUES[n] for n in names}
    best = allocate(curves, values, budget)
    assert sum(best.spend.values()) == pytest.approx(budget, rel=1e-12)
    optimum = _earned(best.spend, curves, values)
    grid = np.linspace(0, budget, 2001)
    earned = [_earned({"search": s, "demos": budget - s}, curves, values) for s in grid]
    assert optimum >= max(earned) - 1e-9 * optimum
    step = budget / 2000
    assert optimum - max(earned) <= step * max(values[n] / curves[n].cost_per_lead for n in names)
    assert abs(grid[int(np.argmax(earned))] - best.spend["search"]) <= step


@pytest.mark.parametrize("budget", [5_000.0, 30_000.0, 80_000.0])
def test_mix_of_three_channels_beats_a_grid_and_equalises_the_marginal_value(budget):
    """Three channels on a simplex grid of 1/120 of the budget: no split earns more; at the optimum every
    funded channel's last currency unit earns the shadow price and an unfunded one's first earns no more."""
    best = allocate(CURVES, VALUES, budget)
    optimum = _earned(best.spend)
    n = 120
    for i, j in itertools.product(range(n + 1), repeat=2):
        if i + j <= n:
            split = {"search": budget * i / n, "events": budget * j / n, "demos": budget * (n - i - j) / n}
            assert _earned(split) <= optimum * (1 + 1e-12)
    for name, spend in best.spend.items():
        marginal = VALUES[name] / CURVES[name].marginal_cost(spend)
        if spend > 0:
            assert marginal == pytest.approx(best.shadow_price, rel=1e-9)
        else:
            assert marginal <= best.shadow_price * (1 + 1e-12)


def test_a_channel_not_worth_its_first_lead_gets_nothing():
    values = {**VALUES, "events": 1.0}  # 1 per lead at 120 a lead: never worth it at these budgets
    best = allocate(CURVES, values, 20_000.0)
    assert best.spend["events"] == 0 and best.spend["search"] > 0 and best.spend["demos"] > 0
    assert allocate(CURVES, dict.fromkeys(CURVES, 0.0), 1_000.0).unspent == 1_000.0


def test_more_budget_never_earns_less_and_its_margin_falls():
    budgets = np.linspace(0, 300_000, 61)
    earned = [_earned(allocate(CURVES, VALUES, float(b)).spend) for b in budgets]
    prices = [allocate(CURVES, VALUES, float(b)).shadow_price for b in budgets]
    assert all(b >= a for a, b in itertools.pairwise(earned))
    assert all(b <= a for a, b in itertools.pairwise(prices))
    assert earned[-1] <= sum(VALUES[n] * CURVES[n].max_leads_per_month for n in CURVES)


# -- the scenario keys ----------------------------------------------------------------------


def test_volume_comes_from_the_spend_or_must_agree_with_it(channels):
    src = channels.sources
    assert src["paid_search"].leads_per_month is None and src["paid_search"].volume_key == "spend_per_month"
    assert src["paid_search"].leads_per_day_mean * DAYS_PER_MONTH == pytest.approx(800 * (1 - math.exp(-9 / 20)))
    assert src["events"].average_cost_per_lead == pytest.approx(8000 / SpendCurve(120, 120).leads(8000))
    assert channels.to_dict()["sources"]["events"]["leads_per_month"] is None
    assert src["partner"].curve is None and src["partner"].average_cost_per_lead == 250
    # A source without a curve reads as before: no spend keys in its data (manifests and hashes unchanged).
    assert "spend_per_month" not in load_scenario(BASELINE).to_dict()["sources"]["inbound"]
    more = load_scenario(CHANNELS, ["sources.paid_search.spend_per_month=20000"]).sources["paid_search"]
    assert more.leads_per_day_mean * DAYS_PER_MONTH == pytest.approx(SpendCurve(25, 800).leads(20_000))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["sources.events.leads_per_month=60"], "sources.events: leads_per_month = 60 beside a spend curve: the "
         "volume is what spend_per_month = 8,000 buys, 51.1 a month; leave leads_per_month out (to buy 60.0 a "
         "month, spend 9,981)"),  # -14,400 ln(1/2)
        (["sources.events.leads_per_week=40"], "leads_per_week = 40 beside a spend curve: the volume is what "
         "spend_per_month = 8,000 buys, 51.1 a month; leave leads_per_week out (the curve saturates at "
         "max_leads_per_month = 120)"),
        (["sources.partner.spend_per_month=2000"], "sources.partner: a spend curve needs spend_per_month and "
         "max_leads_per_month; max_leads_per_month is missing"),
        (["sources.events.cost_per_lead=0"], "sources.events: cost_per_lead must be > 0 with a spend curve"),
        (["sources.demo_requests.max_leads_per_month=0"], "sources.demo_requests.max_leads_per_month"),
        (["sources.events.cost_per_lead=1e300", "sources.events.max_leads_per_month=1e300"], "sources.events: "
         "cost_per_lead x max_leads_per_month of a spend curve must be a finite amount"),
    ],
)  # fmt: skip
def test_a_broken_spend_curve_is_refused_naming_the_field(overrides, message):
    with pytest.raises(ScenarioError, match="1 problem"):
        load_scenario(CHANNELS, overrides)
    done = runner.invoke(app, ["validate", str(CHANNELS), *[f"--set={o}" for o in overrides]])
    assert done.exit_code == EXIT_BAD_INPUT and "Traceback" not in done.output
    assert message in " ".join(done.output.split()), done.output


def test_a_run_charges_each_lead_its_average_cost_on_the_curve(channels):
    result = simulate(load_scenario(CHANNELS, ["horizon_days=45", "start='cold'"]), seed=3)
    stats = summarize_run(result)
    created = result.events[result.events["event"] == "created"]["lead"].to_numpy()
    counts = result.attributes["source"].astype(str).iloc[created].value_counts()
    for name, src in channels.sources.items():
        assert stats[f"marketing_cost_{name}"] == pytest.approx(counts.get(name, 0) * src.average_cost_per_lead)


# -- funnelsim mix ----------------------------------------------------------------------------


def test_mix_table_puts_the_optimum_beside_today(channels):
    m = mix(channels, 30_000)
    table = m.table
    assert list(table.columns) == MIX_COLUMNS
    assert set(table["mix"]) == {"today", "today_shares", "optimal"}
    best = table[table["mix"] == "optimal"].set_index("channel")
    budget = best[best["in_budget"]]
    assert budget["spend_per_month"].sum() == pytest.approx(30_000)
    assert set(budget.index) == {"paid_search", "events", "demo_requests"}
    # Equal marginal value on every funded channel: the shadow price.
    assert np.allclose(budget["marginal_value_per_spend"], m.shadow_price, rtol=1e-9)
    # The same budget in today's shares earns less; today's spend (19k on the curves) less still.
    totals = m.totals()
    assert totals.loc["optimal", "revenue_per_month"] > totals.loc["today_shares", "revenue_per_month"]
    assert totals.loc["today_shares", "revenue_per_month"] > totals.loc["today", "revenue_per_month"]
    # The partner's referrals are outside the budget: the same in every mix.
    partner = table[table["channel"] == "partner"]
    assert (partner["spend_per_month"] == 2000).all() and not partner["in_budget"].any()
    # Counts are leads times the analytic yields.
    y = source_yields(channels)["demo_requests"]
    demos = best.loc["demo_requests"]
    assert demos["revenue_per_month"] == pytest.approx(demos["leads_per_month"] * y.revenue_per_lead)
    assert totals.loc["optimal", "revenue_per_month"] == pytest.approx(best.drop("total")["revenue_per_month"].sum())


def test_mix_for_wins_weighs_leads_by_their_wins(channels):
    m = mix(channels, 30_000, "wins")
    y = source_yields(channels)
    names = ["paid_search", "events", "demo_requests"]
    expected = allocate({n: channels.sources[n].curve for n in names}, {n: y[n].wins_per_lead for n in names}, 30_000)
    best = m.table[m.table["mix"] == "optimal"].set_index("channel")
    for name in names:
        assert best.loc[name, "spend_per_month"] == pytest.approx(expected.spend[name])


def test_mix_cli_prints_and_writes_mix_csv(tmp_path):
    out = tmp_path / "mix"
    done = runner.invoke(app, ["mix", str(CHANNELS), "--budget", "30k", "--out", str(out)])
    assert done.exit_code == 0, done.output
    text = " ".join(done.output.split())
    assert "Best split of 30,000 USD a month for the most revenue" in text
    assert "with the best split (+18.3%)" in text
    table = pd.read_csv(out / "mix.csv")
    assert list(table.columns) == MIX_COLUMNS and len(table) == 3 * 5
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["budget"] == 30_000 and manifest["objective"] == "revenue"
    assert sorted(manifest["files"]) == ["manifest.json", "mix.csv", "report.html"]
    doc = json.loads(runner.invoke(app, ["mix", str(CHANNELS), "--budget", "30k", "--json"]).output)
    assert doc["shadow_price"] == pytest.approx(mix(load_scenario(CHANNELS), 30_000).shadow_price)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([str(CHANNELS), "--budget", "0"], "--budget must be a positive amount a month, got 0"),
        ([str(CHANNELS), "--budget", "-5k"], "--budget"),
        ([str(CHANNELS), "--budget", "lots"], "--budget: expected an amount"),
        ([str(CHANNELS), "--budget", "30k", "--objective", "leads"], "--objective must be one of revenue, wins"),
        ([str(BASELINE), "--budget", "30k"], "baseline: no source has a spend curve"),
    ],
)
def test_mix_bad_input_exits_2(args, message):
    done = runner.invoke(app, ["mix", *args])
    assert done.exit_code == EXIT_BAD_INPUT, done.output
    assert message in " ".join(done.output.split()) and "Traceback" not in done.output


def test_mix_library_refuses_what_the_cli_refuses(channels):
    for budget in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(BudgetError):
            mix(channels, budget)


# -- the planner's budget lever -------------------------------------------------------------


def test_budget_lever_splits_k_times_todays_spend_in_its_best_mix(channels):
    values = {n: y.revenue_per_lead for n, y in source_yields(channels).items() if n != "partner"}
    shape = LeadShape(values=values)
    assert planned_changes(channels, 1.0, shape=shape) == {}  # k = 1: today's spend in today's mix
    b0 = budget_of(channels, shape)
    assert b0 == 19_000
    changes = planned_changes(channels, 1.5, shape=shape)
    planned = apply_changes(channels, changes)  # volumes agree with their curves: it validates
    spend = {n: planned.sources[n].spend_per_month for n in spend_channels(channels)}
    assert sum(spend.values()) == pytest.approx(1.5 * b0)
    margins = [values[n] / planned.sources[n].curve.marginal_cost(s) for n, s in spend.items() if s > 0]
    assert np.allclose(margins, margins[0], rtol=1e-9)
    assert planned.sources["partner"].leads_per_month == 8  # no curve: kept
    # Only the channels --lead-sources names take part; the others keep today's spend.
    only = LeadShape(sources={"paid_search": 1, "demo_requests": 1}, values=values)
    kept = apply_changes(channels, planned_changes(channels, 2.0, shape=only))
    assert kept.sources["events"].spend_per_month == 8000
    assert kept.sources["paid_search"].spend_per_month + kept.sources["demo_requests"].spend_per_month == (
        pytest.approx(2 * 11_000)
    )


def test_budget_lever_refuses_months_fractional_weights_and_scenarios_without_curves(channels):
    months = ["2027-01", "2027-02"]
    with pytest.raises(PlanError, match="--lead-months: with spend curves"):
        LeadShape.parse(None, "2027-01:2027-02").check(channels, months)
    with pytest.raises(PlanError, match=r"not events=0\.5"):
        LeadShape.parse("events=0.5", None).check(channels, months)
    with pytest.raises(PlanError, match="none of the sources named has a spend curve"):
        LeadShape.parse("partner", None).check(channels, months)
    with pytest.raises(PlanError, match="--lever budget: no source of this scenario has a spend curve"):
        plan(load_scenario(BASELINE), 1e6, lever="budget")


@pytest.fixture(scope="module")
def budget_plan(channels):
    """200k closed in the first quarter of 2027 at 80%, by the budget alone (3 months' lead-in)."""
    options = {"runs": 40, "seed": 11, "period": QUARTER, "lead_in_months": 3, "verify_runs": 200}
    return plan(channels, 200_000, 0.8, lever="budget", **options)


def test_budget_plan_reaches_its_goal_with_the_verified_confidence(budget_plan):
    """The plan passes verification (the lower end of the 95% Wilson interval of P(goal) on 200 fresh runs is
    at least 80%), and re-simulated on a seed the planner never saw it reaches the goal so often that the
    lower end of that interval over 200 runs is at least 80% - 2 points (as tests/test_planner.py asks)."""
    p, d = budget_plan
    assert p.status == "planned" and p.lever == "budget"
    assert p.p_goal["n"] == 200 and p.p_goal["ci_low"] >= 0.8
    fresh = mc.run(p.scenario, 200, seed=20_270_616)
    observed = probability_at_least(period_revenue(fresh.monthly, p.period), p.goal, 0.95)
    assert observed["ci_low"] >= 0.8 - 0.02, (observed, p.p_goal)
    # Today's spend in today's mix was not enough on the search's runs: the plan spends more, in its best mix.
    today = d.candidates[(d.candidates["lead_multiplier"] == 1.0) & (d.candidates["runs"] == 40)]
    assert (today["p_goal"] < 0.8).all()
    assert p.lead_multiplier > 1


def test_budget_plan_reports_its_spend_per_channel(budget_plan, channels):
    p, _ = budget_plan
    spend = p.spend
    assert spend["today_per_month"] == 19_000
    assert spend["planned_per_month"] == pytest.approx(p.lead_multiplier * 19_000)
    funded = [c for c in spend["channels"].values() if c["planned_per_month"] > 0]
    assert np.allclose([c["marginal_revenue_per_spend"] for c in funded], funded[0]["marginal_revenue_per_spend"])
    for name, c in spend["channels"].items():
        assert p.scenario.sources[name].spend_per_month == pytest.approx(c["planned_per_month"])
        assert c["leads_per_month"] == pytest.approx(p.scenario.sources[name].leads_per_day_mean * DAYS_PER_MONTH)
    # The sheet: marketing's spend per channel and month, each month's leads times their average cost.
    sheet = p.sheet
    rows = sheet[sheet["stage"] == "spend"]
    assert set(rows["source"]) == set(spend["channels"]) and (rows["basis"] == "budget").all()
    leads = sheet[sheet["stage"] == "leads"].set_index(["month", "source"])["target"]
    for row in rows.itertuples():
        average = p.scenario.sources[row.source].average_cost_per_lead
        assert row.target == pytest.approx(leads[(row.month, row.source)] * average)
    assert json.loads(json.dumps(p.to_json()))["spend"]["multiplier"] == p.lead_multiplier


def test_budget_plan_writes_a_planned_toml_that_is_the_planned_scenario(budget_plan, tmp_path):
    """planned.toml keeps the file's layout: each curve channel gets its planned spend, and the volume that
    spend buys is the plan's."""
    from funnelsim.report.scenario_file import planned_toml

    p, _ = budget_plan
    text = planned_toml(p, CHANNELS.read_text(encoding="utf-8"))
    (tmp_path / "planned.toml").write_text(text, encoding="utf-8")
    again = load_scenario(tmp_path / "planned.toml")
    assert again.sources == p.scenario.sources
    paid = text.split("[sources.paid_search]")[1].split("[sources.events]")[0]
    assert "spend_per_month =" in paid and "# planned (was 9000.0)" in paid and "\nleads_per_month" not in paid
