"""Warm start: a run begins from the steady state of its own rates, not from an empty company.

What a planner depends on: a year that books steadily from its first month, a team on day 0
that is the scenario's, results that hold only the reported window, the burn-in chosen by a
stated rule (MSER-5 on pilot runs no replication sees) and written into the manifest.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from funnelsim import load_scenario
from funnelsim.cli import app
from funnelsim.engine import simulate, warm_start
from funnelsim.engine.warmup import pilot_scenario
from funnelsim.run.metrics import pipeline_over_time, stages_by_month, summarize_run
from funnelsim.run.result import window
from funnelsim.run.steady import daily_levels, mser
from funnelsim.studies import replications

sys.path.insert(0, str(Path(__file__).parent))
from scaled import TENTH_VOLUME

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.toml"
# Flat: no seasonality and no dated hires (the baseline's hires add capacity in the year, a real rise).
FLAT = [f"sources.{s}.seasonality=[1,1,1,1,1,1,1,1,1,1,1,1]" for s in ("inbound", "events", "partner")]
FLAT.append("sales.ae.hires=[]")
runner = CliRunner()


def _quarters(monthly) -> tuple[float, float]:
    """Mean revenue per replication of the first and of the last quarter of a 12-month run."""
    per_month = monthly.pivot_table(index="replication", columns="month", values="revenue", aggfunc="sum")
    months = sorted(per_month.columns)
    return float(per_month[months[:3]].sum(axis=1).mean()), float(per_month[months[-3:]].sum(axis=1).mean())


def test_a_warm_flat_year_books_as_much_in_its_first_quarter_as_in_its_last() -> None:
    """The issue's check: on a flat scenario, first-quarter revenue within 10% of the last quarter's.

    40 replications: the quarterly mean's standard error is about 2.5% of it here, so the
    10% band is about 3 standard errors of the difference. The cold start of the same
    scenario fails the same check by far (its first quarter books under half), so the
    test can tell the two apart.
    """
    scenario = load_scenario(BASELINE, FLAT)
    warm = replications.run(scenario, 40, seed=3)
    first, last = _quarters(warm.monthly)
    assert abs(first / last - 1) < 0.10, (first, last)
    cold = replications.run(load_scenario(BASELINE, [*FLAT, "start=cold"]), 40, seed=3)
    first_cold, last_cold = _quarters(cold.monthly)
    assert first_cold < 0.5 * last_cold


def test_the_team_on_day_0_is_the_scenarios_and_only_the_window_is_reported() -> None:
    """Attrition starts on start_date: the AEs on staff on day 0 are sales.ae.count, all ramped;
    every event is inside [0, horizon); leads are renumbered 0..n-1; the pipeline starts from
    what was open on day 0."""
    scenario = load_scenario(BASELINE, ["sales.ae.attrition_per_year=0.5", "sales.ae.backfill_days=60"])
    result = simulate(scenario, seed=4)
    assert result.scenario.burn_in_days and result.metadata["burn_in_days"] == result.scenario.burn_in_days
    times = result.events["time"].to_numpy()
    assert times.min() >= 0 and times.max() < scenario.horizon_days
    assert sorted(result.events["lead"].unique()) == list(range(len(result.attributes)))
    day0 = result.roster[(result.roster["time"] == 0) & (result.roster["team"] == "ae")]
    assert len(day0) == scenario.sales.ae.count and (day0["productivity"] == 1.0).all()
    opening = result.metadata["open_at_start"]
    assert opening["opportunities"] > 0 and opening["leads"] > 1000
    pipeline = pipeline_over_time(result.events, (opening["opportunities"], opening["value"]))
    assert pipeline["open_opportunities"].min() >= 0
    at_0 = result.events[result.events["time"] == 0.0]["event"].astype(str)
    net_0 = int((at_0 == "opportunity").sum() - at_0.isin(["won", "lost"]).sum())
    assert pipeline["time"].iloc[0] == 0.0
    assert pipeline["open_opportunities"].iloc[0] == opening["opportunities"] + net_0
    # Leads carried over from the burn-in are in the log without a `created`; only the year's are costed.
    summary = summarize_run(result)
    created = int((result.events["event"] == "created").sum())
    assert summary["leads"] == created < len(result.attributes)
    assert summary["marketing_cost"] == pytest.approx(_marketing_cost(result, scenario))


def _marketing_cost(result, scenario) -> float:
    created = result.events.loc[result.events["event"] == "created", "lead"].to_numpy()
    sources = result.attributes["source"].astype(str).to_numpy()[created]
    return float(sum(scenario.sources[s].cost_per_lead for s in sources if s in scenario.sources))


def test_same_seed_same_warm_run_and_burn_in() -> None:
    scenario = load_scenario(BASELINE, list(TENTH_VOLUME))
    a, b = simulate(scenario, seed=9, replication=2), simulate(scenario, seed=9, replication=2)
    assert a.events.equals(b.events) and a.roster.equals(b.roster)
    resolved, burn_in = warm_start(scenario, 9)
    assert burn_in is not None and resolved.burn_in_days == burn_in.days == a.metadata["burn_in_days"]
    assert burn_in.days % 30 == 0 and burn_in.settled


def test_a_given_burn_in_is_used_as_it_is() -> None:
    scenario = load_scenario(BASELINE, [*TENTH_VOLUME, "burn_in_days=60"])
    result = simulate(scenario, seed=1)
    assert result.metadata["burn_in_days"] == 60
    assert warm_start(scenario, 1)[1].chosen_by == "burn_in_days in the scenario"


# MSER-5 on the pilots' open deals misses their ~10% overshoot in the first pilot year (days
# 150-360: the all-ramped starting team gives way to ramping backfills); the burn-in used to
# cover it only because the open-leads series set it (315 days on 1,095-day pilots). Since
# partner referrals are qualified by source, that series does not settle in 1,095 days, the
# 2,190-day pilots cut it at 185, and the burn-in of 210 days leaves open deals 9% above their
# later level. A weakness of the burn-in rule this test found, not of the referrals: strict,
# so the mark goes when the rule is fixed.
def test_the_burn_in_covers_the_pilots_transient() -> None:
    """The chosen burn-in is where the pilots' mean open pipeline has reached its later level:
    the mean after it is within 5% of the mean of the pilot's second half, and the mean of the
    first month is far below (the transient exists and the burn-in is not cut inside it)."""
    scenario = load_scenario(BASELINE, list(TENTH_VOLUME))
    _, burn_in = warm_start(scenario, 2)
    pilot = pilot_scenario(scenario, 1095)
    levels = sum(daily_levels(simulate(pilot, seed=77, replication=i).events, 1095) for i in range(8)) / 8
    opps = levels["open_opportunities"].to_numpy()
    settled = opps[547:].mean()
    assert opps[:30].mean() < 0.5 * settled
    assert abs(opps[int(burn_in.days) : int(burn_in.days) + 90].mean() / settled - 1) < 0.05


def test_mser_finds_the_end_of_a_transient_and_flags_a_trend() -> None:
    rng = np.random.default_rng(0)
    days = np.arange(1000)
    transient = 100 * (1 - np.exp(-days / 40)) + rng.normal(0, 3, 1000)
    cut, settled = mser(transient)
    assert settled and 80 <= cut <= 250  # 2-6 time constants
    cut, settled = mser(rng.normal(0, 1, 1000))
    assert settled and cut < 100
    assert not mser(days + rng.normal(0, 3, 1000))[1]  # a queue that only grows
    assert mser(np.ones(20)) == (0, False)  # too short to judge


def test_the_manifest_states_the_start_and_how_the_burn_in_was_chosen(tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = runner.invoke(
        app, ["run", str(BASELINE), *(f"--set={o}" for o in TENTH_VOLUME), "--seed", "3", "--out", str(out), "-q"]
    )
    assert res.exit_code == 0, res.output
    start = json.loads((out / "manifest.json").read_text())["start"]
    assert start["mode"] == "warm" and start["burn_in_days"] > 0
    assert start["chosen_by"].startswith("MSER-5") and set(start["truncation_days"]) == {
        "open_leads",
        "open_opportunities",
        "won_value",
    }


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("start=pipeline", "start = 'pipeline' needs an initial_pipeline"),
        ("start=lukewarm", "start"),
        ("burn_in_days=-5", "burn_in_days"),
    ],
)
def test_a_bad_start_is_refused_naming_the_field(override: str, says: str) -> None:
    res = runner.invoke(app, ["run", str(BASELINE), f"--set={override}"])
    assert res.exit_code == 2 and says in res.output and "Traceback" not in res.output


def test_cold_and_pipeline_starts_without_burn_in_are_unchanged() -> None:
    """Cold runs, and pipeline runs with burn_in_days = 0, simulate no burn-in: their logs start at
    day 0 with no carry-over."""
    cold = simulate(load_scenario(BASELINE, [*TENTH_VOLUME, "start=cold", "horizon_days=90"]), seed=2)
    assert "burn_in_days" not in cold.metadata and cold.metadata["start"] == "cold"
    assert (cold.events.groupby("lead")["event"].first() == "created").all()
    piped = load_scenario(ROOT / "scenarios" / "baseline-with-pipeline.toml", ["horizon_days=90", "burn_in_days=0"])
    piped = simulate(piped, seed=2)
    assert piped.metadata["start"] == "pipeline" and "burn_in_days" not in piped.metadata
    monthly = stages_by_month(piped.events, piped.scenario.start_date, 90)
    assert monthly["revenue"].iloc[0] > 0


def test_warm_runs_on_a_common_burn_in_see_the_same_leads_arrive() -> None:
    """Common random numbers survive the warm start: two sales teams on the burn-in a study gives
    them both (replications.same_burn_in) see the same leads created in the year, at the same
    times, with the same traits; only what sales does with them differs."""
    base = load_scenario(BASELINE, list(TENTH_VOLUME))
    bigger = load_scenario(BASELINE, [*TENTH_VOLUME, "sales.ae.count=12", "sales.ae.hires=[]"])
    base, bigger = replications.same_burn_in([base, bigger], 6, [base, bigger])
    assert base.burn_in_days == bigger.burn_in_days
    a, b = simulate(base, seed=6), simulate(bigger, seed=6)
    keep = ["source", "persona", "fit", "has_need", "created"]
    arrived = [r.leads[r.leads["created"].notna() & (r.leads["source"] != "prospecting")] for r in (a, b)]
    arrived = [leads[keep].reset_index(drop=True) for leads in arrived]
    pd.testing.assert_frame_equal(*arrived, check_exact=True)
    assert summarize_run(a)["opportunities"] != summarize_run(b)["opportunities"]


@pytest.mark.parametrize("burn_in", [30, 200])
def test_a_warm_run_is_the_window_of_the_same_run_started_earlier(burn_in: int) -> None:
    """The warm run with burn-in B is exactly the cold run started B days earlier, cut at B and
    re-timed: the same events from B on (leads renumbered in order), the levels and roster
    from their state at B. (No attrition: a warm start's starting team has none in the burn-in.)"""
    overrides = [*TENTH_VOLUME, "sales.ae.attrition_per_year=0", "horizon_days=120"]
    warm = load_scenario(BASELINE, [*overrides, f"burn_in_days={burn_in}"])
    start = warm.start_date - dt.timedelta(days=burn_in)
    cold = load_scenario(BASELINE, [*overrides, "start=cold", f"start_date={start}", f"horizon_days={120 + burn_in}"])
    w, c = simulate(warm, seed=8), simulate(cold, seed=8)
    events, levels, roster, attributes, opening = window(c.events, c.levels, c.roster, c.attributes, burn_in)
    pd.testing.assert_frame_equal(w.events, events, check_exact=True)
    pd.testing.assert_frame_equal(w.levels, levels, check_exact=True)
    pd.testing.assert_frame_equal(w.roster, roster, check_exact=True)
    pd.testing.assert_frame_equal(w.attributes, attributes, check_exact=True)
    assert w.metadata["open_at_start"] == opening
    # And the cut is the right one: the window's revenue is the cold run's from day B on.
    won = c.events[(c.events["event"] == "won") & (c.events["time"] >= burn_in)]
    assert summarize_run(w)["revenue"] == pytest.approx(won["value"].sum(), rel=1e-12)
