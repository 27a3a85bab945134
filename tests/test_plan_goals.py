"""Goals on recurring revenue and plans of segmented scenarios (issue 19, item 7).

``plan --goal-arr`` (ARR at the period's end) and ``--goal-net-new-arr`` are chosen and
verified on the simulated measure itself; the analytic model only starts the search, from
the bookings the goal needs (:mod:`funnelsim.studies.planner.recurring`). A segmented
scenario's analytic funnel is its segments' funnels summed.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from funnelsim import load_scenario
from funnelsim.studies import planner
from funnelsim.studies import replications as mc
from funnelsim.studies.planner.recurring import arr_terms, bookings_for

ROOT = Path(__file__).resolve().parents[1]
SUBSCRIPTION = ROOT / "tests" / "scenarios" / "subscription.toml"
SEGMENTED = ROOT / "tests" / "scenarios" / "segmented.toml"


def _period(scenario, goal: str) -> planner.Period:  # type: ignore[no-untyped-def]
    return dataclasses.replace(planner.Period.of(scenario), goal=goal)


def test_each_goal_reads_its_own_measure_of_the_months() -> None:
    """Bookings sum the period's revenue; ending ARR is the last month's ARR; net new ARR sums the
    bridge's flows. Months outside the period are left out (hand-computed on a two-run table)."""
    months = ["2026-12", "2027-01", "2027-02"]
    monthly = pd.DataFrame(
        {
            "replication": [0, 0, 0, 1, 1, 1],
            "month": months * 2,
            "revenue": [9.0, 10.0, 20.0, 9.0, 1.0, 2.0],
            "arr": [100.0, 110.0, 125.0, 100.0, 99.0, 97.0],
            "new_arr": [9.0, 10.0, 20.0, 9.0, 1.0, 2.0],
            "expansion_arr": [0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            "contraction_arr": [0.0, 0.0, 5.0, 0.0, 0.0, 0.0],
            "churned_arr": [0.0, 1.0, 0.0, 0.0, 2.0, 5.0],
        }
    )
    start, end = pd.Timestamp("2027-01-01").date(), pd.Timestamp("2027-02-28").date()
    read = {goal: planner.period_revenue(monthly, planner.Period(start, end, goal)) for goal in planner.GOALS}
    assert read["bookings"].tolist() == [30.0, 3.0]
    assert read["ending_arr"].tolist() == [125.0, 97.0]
    assert read["net_new_arr"].tolist() == [25.0, -3.0]  # 30 + 1 - 5 - 1; 3 + 1 - 0 - 7


@pytest.mark.parametrize("goal", ["ending_arr", "net_new_arr"])
def test_the_bookings_an_arr_goal_needs_match_the_simulated_funnel(goal: str) -> None:
    """The analytic start of an ARR plan, ``measure = base + per_booking x bookings``, holds for the
    simulated funnel: over 60 replications of the test company, the mean measure is within the 99.9%
    t-interval of ``base + per_booking x bookings`` replication by replication (the residuals' mean is 0),
    widened by 1% of the measure for the even-spread approximation of signing dates."""
    sc = load_scenario(SUBSCRIPTION)
    period = _period(sc, goal)
    reps = mc.run(sc, 60, 5)
    measure = planner.period_revenue(reps.monthly, period)
    bookings = planner.period_revenue(reps.monthly, _period(sc, "bookings"))
    base, per_booking = arr_terms(sc, period)
    assert 0.8 < per_booking < 1.3  # a unit of new ARR is worth about one unit at the period's end
    residual = measure - (base + per_booking * bookings)
    half = stats.t.ppf(0.9995, len(residual) - 1) * residual.std(ddof=1) / math.sqrt(len(residual))
    assert abs(residual.mean()) <= half + 0.01 * abs(measure.mean()), (residual.mean(), half)
    # bookings_for inverts the relation
    goal_value = float(measure.mean())
    assert bookings_for(sc, period, goal_value) == pytest.approx((goal_value - base) / per_booking)


def test_an_arr_plan_reaches_its_goal_on_fresh_seeds() -> None:
    """Out of sample: the plan for 10% more ending ARR than the company's mean, chosen and verified by the
    planner, is simulated on 300 replications of a seed neither used; the share reaching the goal is not
    below the asked 80% (one-sided binomial test at 1%: the Clopper-Pearson upper bound of the fresh
    share, at 99%, must reach 0.8)."""
    sc = load_scenario(SUBSCRIPTION)
    today = planner.period_revenue(mc.run(sc, 20, 3).monthly, _period(sc, "ending_arr")).mean()
    goal = 1.1 * float(today)
    result, _ = planner.plan(sc, goal, 0.8, runs=40, seed=11, verify_runs=300, goal_kind="ending_arr")
    assert result.period.goal == "ending_arr"
    assert result.p_goal["ci_low"] >= 0.8 or result.status == "already met"
    fresh = mc.run(result.scenario, 300, 424_242)
    period = dataclasses.replace(result.period, goal="ending_arr")
    hits = int(np.sum(planner.period_revenue(fresh.monthly, period) >= goal))
    upper = stats.beta.ppf(0.99, hits + 1, 300 - hits) if hits < 300 else 1.0
    assert upper >= 0.8, (hits, upper)


def _plan_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "funnelsim", "plan", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([str(ROOT / "scenarios" / "baseline.toml"), "--goal-arr", "18M"], "sells no subscriptions"),
        ([str(SUBSCRIPTION), "--goal", "1M", "--goal-arr", "2M"], "give exactly one goal"),
        ([str(SUBSCRIPTION)], "give exactly one goal"),
        ([str(SUBSCRIPTION), "--goal-arr", "lots"], "--goal-arr"),
        ([str(SEGMENTED), "--goal", "1M", "--lever", "both", "--period", "2027-01-01:2027-05-31"], "per segment"),
    ],
)
def test_a_bad_goal_is_refused_with_exit_2(args: list[str], message: str) -> None:
    done = _plan_cli(*args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_segmented_waterfall_is_its_segments_summed() -> None:
    """Each segment is a funnel of its own: the segmented scenario's analytic months are the sums of its
    segments' (each computed on its own view), its AE ceiling theirs summed, and the segments are kept."""
    period = planner.Period(pd.Timestamp("2027-01-01").date(), pd.Timestamp("2027-05-31").date())
    sc = planner.frame(load_scenario(SEGMENTED), period, 0)
    flow = planner.waterfall(sc, period)
    assert set(flow.segments) == set(sc.segment_names)
    for column in ("leads", "mqls", "sqls", "wins", "revenue", "aes", "sdrs", "cost"):
        own = sum(planner.waterfall(sc.segment_view(name), period).months[column] for name in sc.segment_names)
        assert flow.months[column].to_numpy() == pytest.approx(own.to_numpy(), rel=1e-12), column
    yields = planner.source_yields(sc)
    ceiling = sum(
        planner.ae_revenue_ceiling(sc.segment_view(n), period, planner.source_yields(sc.segment_view(n)))
        for n in sc.segment_names
    )
    assert planner.ae_revenue_ceiling(sc, period, yields) == pytest.approx(ceiling)
