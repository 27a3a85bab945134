"""calibrate reads the history as a demanding user would (issue 16): the as-of day counts whole, stale open deals
are not taken for slow ones, a truncated history is flagged, deal sizes are the observed amounts (not a lognormal
through a price list, nor the base's), and the base's hiring plan is never carried over silently."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from funnelsim import load_scenario, simulate
from funnelsim.calibrate import calibrate, diagnostics, export_opportunities, fitting
from funnelsim.cli import app
from funnelsim.report.calibration import write_calibration

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scenarios" / "baseline.toml"
START = pd.Timestamp("2027-01-01")
# Neither the capacity fit by simulation nor the self-check (tests/test_selfcheck.py tests them): the budget
# leaves capacity sized analytically, which is all these tests need.
FAST = {"check_runs": 0, "budget_seconds": 0.0}


def deals(n: int = 400, days: int = 400, seed: int = 1, price: np.ndarray | None = None) -> pd.DataFrame:
    """``n`` deals created uniformly over ``days`` from 2027-01-01 (a business at full rate from its first day),
    lognormal cycles of mean 60 days, a third won, seen at the end: a generic export's columns."""
    rng = np.random.default_rng(seed)
    created = START + pd.to_timedelta(np.sort(rng.uniform(0, days, n)), unit="D")
    sigma = np.sqrt(np.log(1 + (35 / 60) ** 2))
    closed = created + pd.to_timedelta(rng.lognormal(np.log(60) - sigma**2 / 2, sigma, n), unit="D")
    end = START + pd.Timedelta(days=days)
    done = closed < end
    won = rng.random(n) < 1 / 3
    amount = price if price is not None else np.round(rng.lognormal(np.log(20000), 0.5, n), 2)
    return pd.DataFrame(
        {
            "id": [f"D{i}" for i in range(n)],
            "created": created.strftime("%Y-%m-%d %H:%M"),
            "closed": np.where(done, closed.strftime("%Y-%m-%d %H:%M"), ""),
            "status": np.where(done, np.where(won, "won", "lost"), "open"),
            "amount": amount,
            "owner": [f"rep{i % 6}" for i in range(n)],
            "source": "inbound",
            "segment": "",
        }
    )


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


# --- 6. --as-of is the end of the day ----------------------------------------------------------


def test_as_of_counts_the_whole_day_and_the_scenario_starts_the_day_after(tmp_path: Path) -> None:
    """--as-of 2027-06-30: a deal created that afternoon is in, one closed that afternoon is closed, one closed
    the next morning is open (in the pipeline, aged to 2027-07-01 00:00), one created the next day is set aside;
    the scenario starts on 2027-07-01."""
    frame = deals(300, days=180)
    extra = pd.DataFrame(
        {
            "id": ["TODAY", "CLOSED_TODAY", "CLOSED_TOMORROW", "TOMORROW"],
            "created": ["2027-06-30 15:00", "2027-06-01 00:00", "2027-06-01 00:00", "2027-07-01 09:00"],
            "closed": ["", "2027-06-30 16:00", "2027-07-01 08:00", ""],
            "status": ["open", "won", "won", "open"],
            "amount": [1000.0, 2000.0, 3000.0, 4000.0],
            "owner": "rep1",
            "source": "inbound",
            "segment": "",
        }
    )
    path = _write(pd.concat([frame, extra], ignore_index=True), tmp_path / "opps.csv")
    cal = calibrate(path, as_of="2027-06-30", **FAST)
    assert cal.as_of == dt.date(2027, 6, 30) and cal.start_date == dt.date(2027, 7, 1)
    pipeline = cal.pipeline.set_index("id")
    assert pipeline.loc["TODAY", "age_days"] == pytest.approx(9 / 24, abs=1e-3)  # 15:00 to midnight
    assert pipeline.loc["CLOSED_TOMORROW", "age_days"] == pytest.approx(30.0)
    assert "CLOSED_TODAY" not in pipeline.index and "TOMORROW" not in pipeline.index
    late = cal.messy_rows()
    assert list(late.loc[late["reason"] == "created_after_as_of", "line"]) == [len(frame) + 5]
    june = cal.observed.set_index("month").loc["2027-06"]
    assert june["full"] and june["wins"] >= 1  # the win of 30 June counts in June
    scenario_file, _, folder = write_calibration(cal, tmp_path / "acme.toml")
    assert load_scenario(scenario_file).start_date == dt.date(2027, 7, 1)
    assert "As of the end of **2027-06-30**" in (folder / "report.md").read_text(encoding="utf-8")


def test_export_as_of_a_date_includes_that_whole_day() -> None:
    """export_opportunities(as_of=date) pulls the CRM at the end of that day, as calibrate reads --as-of."""
    scenario = load_scenario(BASELINE, ["horizon_days=60", "start=cold"])
    result = simulate(scenario, seed=2)
    by_date = export_opportunities(result, "generic", dt.date(2027, 1, 31))
    by_days = export_opportunities(result, "generic", 31.0)  # 31 days after 2027-01-01 00:00: 1 Feb, 00:00
    assert by_date.equals(by_days) and len(by_date) > 0


# --- 3. stale open deals -------------------------------------------------------------------------


def _with_zombies(tmp_path: Path, zombies: int = 25) -> Path:
    """A clean history plus ``zombies`` deals opened in its first weeks and never closed (dead, not slow)."""
    frame = deals(500, days=400, seed=3)
    rng = np.random.default_rng(4)
    created = START + pd.to_timedelta(rng.uniform(0, 30, zombies), unit="D")
    dead = pd.DataFrame(
        {
            "id": [f"Z{i}" for i in range(zombies)],
            "created": created.strftime("%Y-%m-%d %H:%M"),
            "closed": "",
            "status": "open",
            "amount": 5000.0,
            "owner": "rep9",
            "source": "inbound",
            "segment": "",
        }
    )
    return _write(pd.concat([frame, dead], ignore_index=True), tmp_path / "opps.csv")


def test_stale_deals_are_the_open_ones_older_than_the_p99_of_closed_cycles(tmp_path: Path) -> None:
    """The threshold is the P99 of the closed deals' cycles; every zombie is stale. close-lost (the default) keeps
    them out of the pipeline and of the cycle fit, whose mean is then that of the same history without them (the
    same deals: equal to 0.1 day), while keeping them open (censored at 370-400 days) takes the mean above that
    fit's 95% interval; in the win rate close-lost counts them as losses, drop leaves them out."""
    clean = calibrate(_write(deals(500, days=400, seed=3), tmp_path / "clean.csv"), **FAST)
    path = _with_zombies(tmp_path)
    default = calibrate(path, **FAST)
    assert default.stale is not None and default.stale.policy == "close-lost"
    rows = default.opportunities.rows
    closed = rows["closed"].notna()
    cycles = ((rows["closed"] - rows["created"]) / pd.Timedelta(days=1))[closed].clip(lower=0.5)
    assert default.stale.threshold_days == pytest.approx(np.quantile(cycles, 0.99))
    stale_ids = set(default.tables["stale_deals.csv"]["id"])
    assert {f"Z{i}" for i in range(25)} <= stale_ids
    assert not stale_ids & set(default.pipeline["id"])
    kept = calibrate(path, stale="keep", **FAST)
    assert stale_ids <= set(kept.pipeline["id"])
    assert default.best.mean == pytest.approx(clean.best.mean, abs=0.1)
    assert kept.best.mean > clean.best.mean_ci[1]
    dropped = calibrate(path, stale="drop", **FAST)
    assert dropped.win["open"] == default.win["open"] == kept.win["open"] - len(stale_ids)
    assert dropped.win["lost"] == default.win["lost"] - len(stale_ids)  # close-lost counts them as losses


def test_stale_policy_is_stated_in_help_report_and_terminal(tmp_path: Path) -> None:
    """--help names the choices and the default; the report and the terminal count the stale deals; a bad
    --stale is bad input (exit 2) naming the flag."""
    runner = CliRunner()
    help_text = runner.invoke(app, ["calibrate", "--help"], env={"COLUMNS": "250"}).output
    assert "Open deals older than the P99 of closed cycles: close-lost" in help_text
    assert "[default: close-lost]" in help_text
    path = _with_zombies(tmp_path)
    run = runner.invoke(
        app, ["calibrate", "--opportunities", str(path), "--out", str(tmp_path / "a.toml"), "--check-runs", "0"]
    )
    assert run.exit_code == 0, run.output
    assert "stale deals:" in run.output and "(--stale close-lost)" in " ".join(run.output.split())
    report = (tmp_path / "a.calibration" / "report.md").read_text(encoding="utf-8")
    assert "## History: stale deals and truncation" in report and "are stale (open longer than" in report
    bad = runner.invoke(
        app, ["calibrate", "--opportunities", str(path), "--out", str(tmp_path / "b.toml"), "--stale", "forget"]
    )
    assert bad.exit_code == 2 and "--stale must be one of close-lost, drop, keep" in bad.output


# --- 5. truncated history ----------------------------------------------------------------------


def test_a_history_starting_mid_stream_is_flagged_and_simulated_with_a_lead_in(tmp_path: Path) -> None:
    """The same simulated company exported whole (it started empty: its opportunities ramp up) and cut to the
    deals created from day 200 on (deals open before are missing): only the cut one is flagged, in the terminal
    too, and its self-check window starts a lead-in before the first month compared."""
    scenario = load_scenario(BASELINE, ["horizon_days=420", "start=cold"])  # a company from its first day
    whole = export_opportunities(simulate(scenario, seed=8), "generic", 420)
    created = pd.to_datetime(whole["created"], format="%m/%d/%Y")
    _write(whole, tmp_path / "whole.csv")
    _write(whole[created >= START + pd.Timedelta(days=200)], tmp_path / "cut.csv")
    full = calibrate(tmp_path / "whole.csv", **FAST)
    assert full.truncation == [] and full.window is not None and full.window.lead_in_days == 0
    cut = calibrate(tmp_path / "cut.csv", **FAST)
    assert [f.kind for f in cut.truncation] == ["flat_start"]
    assert cut.window is not None and cut.window.lead_in_days > 0
    assert (cut.window.measure_from.date() - cut.window.start).days >= cut.window.lead_in_days
    run = CliRunner().invoke(
        app,
        [
            "calibrate",
            "--opportunities",
            str(tmp_path / "cut.csv"),
            "--out",
            str(tmp_path / "c.toml"),
            "--check-runs",
            "0",
        ],
    )
    assert run.exit_code == 0 and "warning: truncated history: the history starts mid-stream" in run.output


def test_truncation_signs_each_named() -> None:
    """A pile of deals on the first day (an import), stage changes before the first deal, and an as-of date a
    month after the latest date are each a finding of their own."""
    frame = deals(300, days=300, seed=5)
    created = pd.to_datetime(frame["created"])
    imported = pd.Series([START] * 40)
    all_created = pd.concat([created, imported], ignore_index=True)
    cut = START + pd.Timedelta(days=331)
    closed = pd.Series(pd.NaT, index=all_created.index, dtype="datetime64[ns]")
    months = diagnostics.observed_months(
        all_created, closed, np.zeros(len(all_created), bool), pd.Series(np.nan, index=all_created.index), cut
    )
    found = diagnostics.truncation(
        all_created, months, cut, latest=START + pd.Timedelta(days=300), history_first=START - pd.Timedelta(days=9)
    )
    kinds = [f.kind for f in found]
    assert {"first_day_spike", "history_before_first_deal", "as_of_after_data"} <= set(kinds)
    spike = next(f for f in found if f.kind == "first_day_spike")
    assert "deals were created on the first day (2027-01-01)" in spike.message


# --- 7. the base's hires ------------------------------------------------------------------------


def test_base_hires_are_dropped_and_listed_unless_shift_hires(tmp_path: Path) -> None:
    """The baseline plans 2 hires in April and 2 in July 2027: by default the calibrated scenario has none and
    the report lists both; --shift-hires keeps them at their offset from the new start date."""
    path = _write(deals(200, days=300), tmp_path / "opps.csv")
    dropped = calibrate(path, **FAST)
    scenario_file, _, folder = write_calibration(dropped, tmp_path / "a.toml")
    assert load_scenario(scenario_file).sales.ae.hires == []
    report = (folder / "report.md").read_text(encoding="utf-8")
    assert "dropped from the base: sales.ae.hires: the base's hires (2 on 2027-04-01, 2 on 2027-07-01)" in report
    params = dropped.tables["parameters.csv"].set_index("path")
    assert params.loc["sales.ae.hires", "status"] == "dropped (from base)"
    shifted = calibrate(path, shift_hires=True, **FAST)
    file2, _, _ = write_calibration(shifted, tmp_path / "b.toml")
    offset = shifted.start_date - dt.date(2027, 1, 1)
    hires = load_scenario(file2).sales.ae.hires
    assert [(h.date, h.count) for h in hires] == [(dt.date(2027, 4, 1) + offset, 2), (dt.date(2027, 7, 1) + offset, 2)]


# --- 4. deal size --------------------------------------------------------------------------------

PRICES = np.array([55.0, 550.0, 1096.0, 3393.0, 4821.0, 5482.0, 26768.0])  # a price list: seven products
SHARES = np.array([0.18, 0.20, 0.17, 0.15, 0.14, 0.10, 0.06])


def _price_list(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.choice(PRICES, n, p=SHARES) * rng.uniform(0.9, 1.1, n)  # list price, +-10% discount


def test_deal_size_is_the_observed_amounts_and_keeps_the_sample_mean(tmp_path: Path) -> None:
    """Won deals priced from a multimodal price list: the scenario's deal size resamples the won amounts, so its
    mean is the sample mean (to the cent) and 100,000 draws of it (the engine's sampler) fall inside the 95%
    percentile-bootstrap interval of the sample mean (2,000 resamples); the lognormal MLE's mean falls outside it
    (the bias found on a real export)."""
    frame = deals(1500, days=400, seed=6, price=_price_list(1500, 7))
    cal = calibrate(_write(frame, tmp_path / "opps.csv"), **FAST)
    scenario_file, _, _ = write_calibration(cal, tmp_path / "acme.toml")
    spec = load_scenario(scenario_file).sales.deal_size
    assert spec.dist == "empirical"
    won = cal.opportunities.rows
    won = won.loc[(won["outcome"] == "won") & (won["closed"] < pd.Timestamp(cal.start_date)), "amount"].to_numpy()
    assert spec.mean == pytest.approx(won.mean(), abs=0.01)
    ci = stats.bootstrap((won,), np.mean, n_resamples=2000, method="percentile", rng=np.random.default_rng(1))
    low, high = ci.confidence_interval
    draws = spec.sample(np.random.default_rng(2), 100_000)
    assert low <= draws.mean() <= high
    lognormal = fitting.fit_lognormal_sizes(won)["mean"]
    assert not low <= lognormal <= high
    row = cal.tables["deal_sizes.csv"].iloc[0]
    assert row["mean_ci_low"] <= won.mean() <= row["mean_ci_high"]


def test_equal_mass_means_keep_the_mean_and_the_shape() -> None:
    """Above 500 amounts the scenario lists the means of 500 equal-probability slices: the mean is kept exactly and
    the distribution closely (Kolmogorov-Smirnov distance of resampled draws under 0.01)."""
    x = np.sort(_price_list(20_000, 3))
    means = fitting.equal_mass_means(x, 500)
    assert len(means) == 500 and means.mean() == pytest.approx(x.mean(), rel=1e-12)
    assert np.all(np.diff(means) >= 0) and means[0] >= x[0] and means[-1] <= x[-1]
    sizes = fitting.empirical_sizes(x)
    assert sizes["support"] == "500 equal-mass means" and np.mean(sizes["values"]) == pytest.approx(x.mean(), abs=0.01)
    draws = np.random.default_rng(4).choice(means, 50_000)
    assert stats.ks_2samp(draws, x).statistic < 0.01


def test_base_persona_deal_sizes_are_replaced_or_dropped_never_kept(tmp_path: Path) -> None:
    """The baseline sizes influencers' deals itself. Segments that are not personas: the calibrated scenario has
    no per-persona deal size and the report says the influencer's was dropped. Segments naming personas: each
    gets the amounts of its own won deals."""
    frame = deals(600, days=400, seed=9)
    frame["segment"] = np.where(np.arange(600) % 2, "SMB", "Enterprise")
    cal = calibrate(_write(frame, tmp_path / "opps.csv"), **FAST)
    scenario_file, _, folder = write_calibration(cal, tmp_path / "a.toml")
    assert load_scenario(scenario_file).sales.deal_size_by_persona == {}
    assert "sales.deal_size_by_persona of influencer" in (folder / "report.md").read_text(encoding="utf-8")
    frame["segment"] = np.where(np.arange(600) % 3, "buyer", "influencer")
    frame["amount"] = np.where(frame["segment"] == "buyer", 30000.0, 9000.0) * np.linspace(0.9, 1.1, 600)
    cal = calibrate(_write(frame, tmp_path / "opps2.csv"), **FAST)
    file2, _, _ = write_calibration(cal, tmp_path / "b.toml")
    sizes = load_scenario(file2).sales.deal_size_by_persona
    assert set(sizes) == {"buyer", "influencer"}
    assert sizes["buyer"].mean == pytest.approx(30000, rel=0.02) and sizes["influencer"].mean == pytest.approx(
        9000, rel=0.02
    )
    assert cal.dropped == [d for d in cal.dropped if "deal_size" not in d]
