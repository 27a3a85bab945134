"""AE quotas and compensation: ramped quota, attainment, commission and their place in the cost model.

Hand computations on constructed rosters and event logs (``funnelsim.run.quotas``), the default
quota ramp against the capacity ramp the engine applied, the cost total with and without a comp
plan, the files, the figure and the ``run`` line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from funnelsim import load_scenario, simulate
from funnelsim.cli import app
from funnelsim.model.scenario import DAYS_PER_MONTH, AETeam
from funnelsim.report import tables
from funnelsim.report.figures import attainment_chart
from funnelsim.run import metrics
from funnelsim.run.quotas import commission, quota_report, quota_report_of, ramped_quota, staff_of
from funnelsim.studies.planner import Period, waterfall

sys.path.insert(0, str(Path(__file__).parent))
from scaled import TENTH, TENTH_VOLUME

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.toml"
SMALL = ["horizon_days=120", *TENTH, "burn_in_days=120"]  # a fixed burn-in: no pilot runs
PER_DAY = 1000.0  # quota_per_year = 365,250: a quota of 1,000 a day
QUOTA = [f"sales.ae.quota_per_year={PER_DAY * 365.25}", "sales.ae.quota_ramp=[0, 0.5, 1]"]
COMP = ["sales.ae.ote_per_year=200000", "sales.ae.accelerator=2", "sales.ae.attainment_cap=1.5"]


def _roster(rows: list[tuple[float, int, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(t, "ae", rep, change, share) for t, rep, change, share in rows],
        columns=["time", "team", "rep", "change", "productivity"],
    )


# Rep 0 starts ramped and stays; rep 1 is hired on day 100 (ramp rows follow); rep 2 starts
# ramped and leaves on day 200; rep 3 is hired on day 0 at productivity 0 (not ramped).
ROSTER = _roster(
    [
        (0.0, 0, "joined", 1.0),
        (0.0, 2, "joined", 1.0),
        (0.0, 3, "joined", 0.0),
        (100.0, 1, "joined", 0.0),
        (100.0 + DAYS_PER_MONTH, 1, "ramp", 0.5),
        (200.0, 2, "left", 0.0),
    ]
)
MONTH = DAYS_PER_MONTH


def test_ramped_quota_of_a_constructed_roster_equals_a_hand_computation() -> None:
    """Starting AEs carry the full quota from day 0, a hire month by month of its quota ramp, a leaver until it left."""
    ae = load_scenario(BASELINE, QUOTA).sales.ae
    staff = staff_of(ROSTER)
    assert staff["rep"].tolist() == [0, 2, 3, 1]
    assert staff["ramped_at_start"].tolist() == [True, True, False, False]
    quota = ramped_quota(staff, ae, np.array([0.0, 90.0, 181.0, 365.0])).round(6)
    by_hand = {
        0: [90 * PER_DAY, 91 * PER_DAY, 184 * PER_DAY],
        2: [90 * PER_DAY, 91 * PER_DAY, 19 * PER_DAY],  # left on day 200
        # Hired on day 0: month 0 at 0, month 1 at half, then full.
        3: [0.5 * MONTH * PER_DAY + (90 - 2 * MONTH) * PER_DAY, 91 * PER_DAY, 184 * PER_DAY],
        # Hired on day 100: [100, 100 + M) at 0, [100 + M, 100 + 2M) at half, then full.
        1: [0.0, (0.5 * MONTH + (181 - 100 - 2 * MONTH)) * PER_DAY, 184 * PER_DAY],
    }
    for row, rep in enumerate(staff["rep"]):
        assert quota[row] == pytest.approx(by_hand[rep], rel=1e-12), rep


def test_the_default_quota_ramp_is_the_capacity_ramp_the_engine_applied() -> None:
    """Without quota_ramp each AE's quota follows its productivity in the roster: quota = rate × ∫ productivity dt."""
    overrides = [*TENTH_VOLUME, "horizon_days=365", "burn_in_days=180", "sales.ae.quota_per_year=500000"]
    scenario = load_scenario(BASELINE, overrides)  # the baseline's team: hires, ramp, leavers, backfills
    result = simulate(scenario, seed=4)
    report = quota_report(result)
    roster = result.roster[result.roster["team"] == "ae"]
    for rep, rows in roster.groupby("rep"):
        times = np.append(rows["time"].to_numpy(float), 365.0)
        integral = float(np.sum(np.diff(times) * rows["productivity"].to_numpy(float)))
        quota = report.aes.set_index("rep").loc[rep, "ramped_quota"]
        assert quota == pytest.approx(integral * 500000 / 365.25, rel=1e-9, abs=1e-6), rep
    assert report.aes["ramped_at_start"].sum() == scenario.sales.ae.count


def _won(rows: list[tuple[float, int, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time": [r[0] for r in rows],
            "lead": np.arange(len(rows)),
            "event": [r[2] for r in rows],
            "rep": [r[1] for r in rows],
            "value": [r[3] for r in rows],
        }
    )


def test_attainment_is_bookings_over_ramped_quota_on_a_constructed_log() -> None:
    """Won deals count for the AE in their rep column while it is on staff; lost deals and deals closed after
    their AE left count for nobody; the distribution is over AEs with a quota."""
    scenario = load_scenario(BASELINE, [*QUOTA, "horizon_days=365"])
    events = _won(
        [
            (50.0, 0, "won", 200_000.0),
            (300.0, 0, "won", 200_000.0),
            (60.0, 2, "won", 150_000.0),
            (250.0, 2, "won", 99_000.0),  # after rep 2 left on day 200: uncredited
            (120.0, 3, "lost", 500_000.0),
            (320.0, 1, "won", 250_000.0),
        ]
    )
    report = quota_report_of(events, ROSTER, scenario, 365.0)
    aes = report.aes.set_index("rep")
    quota = {0: 365 * PER_DAY, 2: 200 * PER_DAY, 3: (365 - 1.5 * MONTH) * PER_DAY, 1: (265 - 1.5 * MONTH) * PER_DAY}
    booked = {0: 400_000.0, 2: 150_000.0, 3: 0.0, 1: 250_000.0}
    for rep in quota:
        assert aes.loc[rep, "ramped_quota"] == pytest.approx(quota[rep], rel=1e-12)
        assert aes.loc[rep, "bookings"] == booked[rep]
        assert aes.loc[rep, "attainment"] == pytest.approx(booked[rep] / quota[rep], rel=1e-12)
    s = report.summary
    assert s["uncredited_bookings"] == 99_000.0
    assert s["credited_bookings"] == 800_000.0
    assert s["quota_capacity"] == pytest.approx(sum(quota.values()), rel=1e-12)
    # Attainment: rep 0 1.096, rep 2 0.75, rep 3 0, rep 1 1.12.
    assert (s["aes_with_quota"], s["aes_at_quota"], s["aes_at_70pct"]) == (4, 2, 3)
    assert s["share_aes_at_quota"] == 0.5
    assert s["attainment_median"] == pytest.approx(np.median([booked[r] / quota[r] for r in quota]), rel=1e-12)
    assert "commission_cost" not in s  # no ote_per_year: no commission
    quarters = report.quarters[report.quarters["rep"] == 0]
    assert quarters["quarter"].tolist() == ["2027Q1", "2027Q2", "2027Q3", "2027Q4"]
    assert quarters["bookings"].tolist() == [200_000.0, 0.0, 0.0, 200_000.0]
    assert quarters["ramped_quota"].sum() == pytest.approx(quota[0], rel=1e-12)


@pytest.mark.parametrize(
    ("bookings", "quota", "expected"),
    [
        (600_000.0, 1_000_000.0, 60_000.0),  # under quota: the base rate 0.1
        (1_000_000.0, 1_000_000.0, 100_000.0),  # at quota: the target incentive
        (1_300_000.0, 1_000_000.0, 100_000.0 + 2 * 30_000.0),  # above: twice the rate
        (2_000_000.0, 1_000_000.0, 100_000.0 + 2 * 50_000.0),  # capped at 150%
        (600_000.0, 500_000.0, 50_000.0 + 2 * 10_000.0),  # a ramped quota of half
        (50_000.0, 0.0, 5_000.0),  # no quota (ramping at 0): the base rate
    ],
)
def test_commission_with_accelerator_and_cap_by_hand(bookings: float, quota: float, expected: float) -> None:
    """Rate = variable_share × OTE / quota_per_year = 0.5 × 200k / 1M = 0.1; ×2 above quota, nothing above 150%."""
    ae = AETeam(
        count=1,
        max_open_opportunities=10,
        quota_per_year=1_000_000.0,
        ote_per_year=200_000.0,
        variable_share=0.5,
        accelerator=2.0,
        attainment_cap=1.5,
    )
    assert commission(np.array([bookings]), np.array([quota]), ae)[0] == pytest.approx(expected, rel=1e-12)


@pytest.fixture(scope="module")
def three_runs() -> dict[str, dict[str, float]]:
    """The same small run (same seed) without quotas, with quotas only, and with a comp plan."""
    out = {}
    for name, extra in (("none", []), ("quota", QUOTA), ("comp", [*QUOTA, *COMP])):
        result = simulate(load_scenario(BASELINE, [*SMALL, *extra]), seed=9)
        out[name] = metrics.summarize_run(result)
    return out


def test_commission_is_in_the_cost_total_only_when_configured(three_runs: dict[str, dict[str, float]]) -> None:
    """No quota: no quota keys; a quota without OTE: attainment keys, costs unchanged; with OTE: commission_cost,
    added to sales_cost, total_cost and CAC (the simulation itself is the same)."""
    none, quota, comp = three_runs["none"], three_runs["quota"], three_runs["comp"]
    assert not {"commission_cost", "quota_capacity", "aes_with_quota"} & set(none)
    assert "commission_cost" not in quota and "quota_capacity" in quota
    assert {k: quota[k] for k in none} == pytest.approx(none, nan_ok=True)
    assert comp["commission_cost"] > 0
    for key in ("sales_cost", "total_cost"):
        assert comp[key] == pytest.approx(none[key] + comp["commission_cost"], rel=1e-12)
    assert comp["cac"] == pytest.approx(comp["total_cost"] / comp["wins"], rel=1e-12)
    unchanged = set(none) - {"sales_cost", "total_cost", "cac", "cost_per_win"}
    assert {k: comp[k] for k in unchanged} == pytest.approx({k: none[k] for k in unchanged}, nan_ok=True)


def test_the_costs_function_counts_commission_too() -> None:
    """metrics.costs (the cost table of a run) adds the same commission as the summary."""
    result = simulate(load_scenario(BASELINE, [*SMALL, *QUOTA, *COMP]), seed=9)
    money = metrics.costs(result.attributes, result.roster, result.scenario, result.events)
    assert money["commission_cost"] == pytest.approx(float(quota_report(result).aes["commission"].sum()), rel=1e-12)
    assert money["total_cost"] == pytest.approx(metrics.summarize_run(result)["total_cost"], rel=1e-12)


def test_the_attainment_figure_draws_every_ae_with_a_quota_and_the_100_percent_line() -> None:
    """One histogram bar count per bin of 10 points, summing to the AEs with an attainment; a line at 100%."""
    table = pd.DataFrame({"attainment": [0.05, 0.72, 0.95, 1.0, 1.04, 1.31, np.nan]})
    fig, ax = attainment_chart(table)
    heights = [patch.get_height() for patch in ax.patches]
    assert sum(heights) == 6
    lefts = [round(patch.get_x(), 9) for patch in ax.patches]
    assert heights[lefts.index(1.0)] == 2  # 1.00 and 1.04 in [100%, 110%)
    assert heights[lefts.index(0.9)] == 1
    assert [line.get_xdata()[0] for line in ax.get_lines()] == [1.0]
    assert ax.get_xscale() == "linear"
    assert fig is ax.figure


def test_run_writes_the_attainment_files_and_prints_the_attainment_line(tmp_path: Path) -> None:
    """With a quota, `run --out` adds attainment.csv, attainment_by_quarter.csv and figures/attainment; every column is
    documented; the terminal says how many AEs made quota. Without one, none of it appears."""
    args = ["run", str(BASELINE), *[f"--set={o}" for o in [*SMALL, *QUOTA, *COMP]], "--seed", "3"]
    done = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "q"), "--goal", "400k"])
    assert done.exit_code == 0, done.output
    assert "AEs at ≥100% of ramped quota;" in done.output
    assert "the plan of 400,000" in done.output
    folder = tmp_path / "q"
    for name in ("attainment.csv", "attainment_by_quarter.csv", "figures/attainment.png"):
        assert (folder / name).exists(), name
    aes = pd.read_csv(folder / "attainment.csv")
    summary = pd.read_csv(folder / "summary.csv").iloc[0]
    assert summary["quota_plan"] == 400_000
    assert summary["commission_cost"] == pytest.approx(aes["commission"].sum(), rel=1e-9)
    outputs = (ROOT / "docs" / "outputs.md").read_text(encoding="utf-8")
    result = simulate(load_scenario(BASELINE, [*SMALL, *QUOTA, *COMP]), seed=3)
    written = tables._tables(result)
    missing = [f"{n}:{c}" for n in ("attainment.csv", "attainment_by_quarter.csv") for c in written[n].columns]
    missing += [k for k in metrics.summarize_run(result) if f"`{k}`" not in outputs and "marketing_cost_" not in k]
    assert not [m for m in missing if ":" not in m or f"`{m.split(':')[1]}`" not in outputs]
    assert "`attainment.csv`" in outputs and "`attainment.png`" in outputs
    plain = CliRunner().invoke(app, ["run", str(BASELINE), *[f"--set={o}" for o in SMALL], "--seed", "3"])
    assert "attainment" not in plain.output


def test_a_team_without_aes_has_empty_attainment_tables() -> None:
    """No AE on the roster: no rows, a quota capacity of 0 and an undefined distribution (not an error)."""
    scenario = load_scenario(BASELINE, QUOTA)
    report = quota_report_of(_won([]), ROSTER.iloc[:0], scenario, 365.0)
    assert report.aes.empty and report.quarters.empty
    assert report.summary["quota_capacity"] == 0.0 and report.summary["aes_with_quota"] == 0
    assert np.isnan(report.summary["share_aes_at_quota"])


def test_the_planner_counts_commission_at_the_base_rate_on_expected_bookings() -> None:
    """The waterfall's cost gains variable_share × OTE / quota × expected revenue with an OTE, nothing without one."""
    quarter = Period.parse("2027-01-01:2027-03-31")
    plain = waterfall(load_scenario(BASELINE, ["horizon_days=90"]), quarter).months
    quota = waterfall(load_scenario(BASELINE, ["horizon_days=90", "sales.ae.quota_per_year=500000"]), quarter).months
    paid = ["horizon_days=90", "sales.ae.quota_per_year=500000", "sales.ae.ote_per_year=200000"]
    comp = waterfall(load_scenario(BASELINE, paid), quarter).months
    assert quota["cost"].tolist() == plain["cost"].tolist()
    rate = 0.5 * 200_000 / 500_000
    assert (comp["cost"] - plain["cost"]).to_numpy() == pytest.approx(rate * plain["revenue"].to_numpy(), rel=1e-9)
