"""Comparisons on common random numbers: paired differences and what pairing saves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from funnelsim import load_scenario
from funnelsim.cli import EXIT_BAD_INPUT, app
from funnelsim.compare import CompareError, compare, paired_difference
from scaled import TENTH

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
runner = CliRunner()


@pytest.fixture(scope="module")
def pair():
    a = load_scenario(SCENARIOS / "misaligned.toml", TENTH)
    b = load_scenario(SCENARIOS / "aligned.toml", TENTH)
    return compare([a, b, a], 30, seed=5)


def test_identical_scenarios_differ_by_exactly_zero(pair):
    table = pair.table()
    same = table[table["scenario"] == "misaligned#2"]
    assert (same["difference"] == 0).all()
    assert (same["diff_ci_low"] == 0).all() and (same["diff_ci_high"] == 0).all()


def test_paired_interval_is_narrower_than_unpaired_on_the_alignment_pair(pair):
    table = pair.table().set_index(["metric", "scenario"])
    row = table.loc[("revenue", "aligned")]
    assert row["difference"] > 0  # aligned earns more
    assert row["paired_half_width"] < row["unpaired_half_width"]
    assert row["narrower"] > 1.3
    # The difference is the mean of per-replication differences.
    a = pair.runs["misaligned"].table["revenue"].to_numpy()
    b = pair.runs["aligned"].table["revenue"].to_numpy()
    assert row["difference"] == pytest.approx(np.mean(b - a))


def test_paired_difference_by_hand():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = a + np.array([1.0, 1.5, 0.5, 1.0])
    d = paired_difference(a, b)
    assert d["difference"] == pytest.approx(1.0)
    # t(0.975, 3) = 3.182446; sd of (1, 1.5, 0.5, 1) = 0.408248
    assert d["half_width"] == pytest.approx(3.182446 * 0.408248 / 2, rel=1e-5)
    assert d["unpaired_half_width"] > d["half_width"]


def test_compare_refuses_bad_requests():
    sc = load_scenario(SCENARIOS / "baseline.toml", TENTH)
    with pytest.raises(CompareError, match="at least two"):
        compare([sc], 10, 1)
    with pytest.raises(CompareError, match="unique"):
        compare([sc, sc], 10, 1, labels=["x", "x"])


def test_cli_compare_writes_tables_and_json(tmp_path):
    out = tmp_path / "cmp"
    files = [str(SCENARIOS / "misaligned.toml"), str(SCENARIOS / "aligned.toml")]
    result = runner.invoke(app, ["compare", *files, "--runs", "3", "--seed", "2", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["scenarios"] == ["misaligned", "aligned"] and doc["runs"] == 3
    revenue = doc["metrics"]["revenue"]["aligned"]
    assert {"mean", "difference", "diff_ci_low", "diff_ci_high", "narrower"} <= set(revenue)
    assert {p.name for p in out.iterdir()} == {"comparison.csv", "replications.csv", "manifest.json", "figures"}
    assert {p.stem for p in (out / "figures").iterdir()} == {"revenue", "funnel"}


def test_cli_compare_needs_two_scenarios():
    result = runner.invoke(app, ["compare", str(SCENARIOS / "baseline.toml"), "--runs", "3"])
    assert result.exit_code == EXIT_BAD_INPUT
    assert "at least two" in result.stderr
