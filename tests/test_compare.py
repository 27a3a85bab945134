"""Comparisons on common random numbers: paired differences and what pairing saves."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomlkit
from typer.testing import CliRunner

from funnelsim import load_scenario
from funnelsim.cli import EXIT_BAD_INPUT, app
from funnelsim.model.paths import apply_overrides
from funnelsim.studies import replications as mc
from funnelsim.studies.compare import (
    Attribution,
    CompareError,
    Lever,
    attribute,
    coalition_scenario,
    compare,
    find_levers,
)
from funnelsim.studies.stats import paired_difference
from funnelsim.vocabulary import LEAKAGE_REASONS
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
    assert {p.name for p in out.iterdir()} == {
        "comparison.csv",
        "leakage.csv",
        "replications.csv",
        "manifest.json",
        "report.html",
        "figures",
    }
    assert {p.stem for p in (out / "figures").iterdir()} == {"revenue", "funnel", "leakage"}


def test_cli_compare_needs_two_scenarios():
    result = runner.invoke(app, ["compare", str(SCENARIOS / "baseline.toml"), "--runs", "3"])
    assert result.exit_code == EXIT_BAD_INPUT
    assert "at least two" in result.stderr


# ---------------------------------------------------------------------------
# Lever attribution


@pytest.fixture(scope="module")
def attribution():
    """The tenth-size alignment pair, with a lever that differs only in cost and one that does not differ."""
    a = load_scenario(SCENARIOS / "misaligned.toml", [*TENTH, "sales.ae.cost_per_year=150000"])
    b = load_scenario(SCENARIOS / "aligned.toml", TENTH)
    levers = {
        "definition": ["qualification"],
        "speed": ["handoff"],
        "rest": ["sources", "recycling", "sales"],
        "ae cost": ["sales.ae.cost_per_year"],
        "same": ["prospecting"],
    }
    return attribute(a, b, 6, seed=3, levers=levers)


def test_shapley_contributions_add_up_to_the_gap_in_every_replication(attribution):
    phi = attribution.contributions("revenue")
    full = (1 << len(attribution.levers)) - 1
    gap = attribution.values[full]["revenue"].to_numpy() - attribution.values[0]["revenue"].to_numpy()
    assert phi.shape == (5, 6)
    np.testing.assert_allclose(phi.sum(axis=0), gap, rtol=0, atol=1e-6 * np.abs(gap).max())
    table = attribution.table().set_index("lever")
    assert table.loc["total", "contribution"] == pytest.approx(gap.mean())
    assert table.drop("total")["contribution"].sum() == pytest.approx(gap.mean())


def test_a_lever_that_changes_nothing_gets_exactly_zero(attribution):
    table = attribution.table().set_index("lever")
    # "same" names parameters equal in both scenarios; "ae cost" differs but cannot change revenue.
    for lever in ("same", "ae cost"):
        assert (table.loc[lever, ["contribution", "ci_low", "ci_high", "alone", "last"]] == 0).all()
    assert attribution.levers[4].paths == ()
    # ... while on cost the AE salary is the whole gap.
    cost = attribution.table("sales_cost").set_index("lever")
    assert cost.loc["ae cost", "share_of_gap"] == pytest.approx(1.0)
    assert (cost.drop(["ae cost", "total"])["contribution"] == 0).all()


def test_each_distinct_scenario_is_simulated_once_and_the_progress_bar_counts_them_all(monkeypatch):
    """3 real levers and a no-op one: 2**3 distinct scenarios, of which compare already ran the two ends.

    The progress reports drive one bar over the whole job: the same total throughout,
    never going back, and ending full.
    """
    a = load_scenario(SCENARIOS / "misaligned.toml", TENTH)
    b = load_scenario(SCENARIOS / "aligned.toml", TENTH)
    simulated = []
    real_run = mc.run
    monkeypatch.setattr(mc, "run", lambda sc, *args, **kw: simulated.append(sc) or real_run(sc, *args, **kw))
    levers = {"x": ["qualification"], "y": ["handoff"], "z": ["sources", "recycling", "sales"], "none": ["nurture"]}
    reports: list[tuple[int, int]] = []
    result = compare([a, b], 2, seed=1, levers=levers, progress=lambda done, total: reports.append((done, total)))
    assert result.attribution is not None
    assert [lv.name for lv in result.attribution.levers] == ["x", "y", "z", "none"]
    assert len(simulated) == 2 + 6
    assert len(result.attribution.values) == 16
    done = [d for d, _ in reports]
    assert {t for _, t in reports} == {2 * 8}
    assert done == sorted(done) and done[-1] == 2 * 8


def test_shapley_values_of_a_game_worked_by_hand():
    """Two levers, v(none)=0, v(1)=1, v(2)=2, v(both)=5: phi_1 = (1 + 3)/2 = 2, phi_2 = (2 + 4)/2 = 3."""
    values = {mask: pd.DataFrame({"replication": [0, 1], "revenue": [v, 2 * v]})
              for mask, v in {0: 0.0, 1: 1.0, 2: 2.0, 3: 5.0}.items()}  # fmt: skip
    levers = [Lever("one", ("x",), {}, {}), Lever("two", ("y",), {}, {})]
    result = Attribution(("a", "b"), levers, values, seed=0)
    np.testing.assert_allclose(result.contributions(), [[2.0, 4.0], [3.0, 6.0]])
    table = result.table().set_index("lever")
    assert table.loc["one", "alone"] == pytest.approx(1.5) and table.loc["one", "last"] == pytest.approx(4.5)
    assert table.loc["total", "contribution"] == pytest.approx(7.5)


def test_levers_are_grouped_by_section_unless_named():
    a = load_scenario(SCENARIOS / "misaligned.toml")
    b = load_scenario(SCENARIOS / "aligned.toml")
    default = {lv.name: lv.paths for lv in find_levers(a, b)}
    assert list(default) == [
        "sources.inbound",
        "qualification.mql",
        "qualification.sql",
        "handoff",
        "recycling",
        "sales",
    ]
    assert default["handoff"] == ("handoff.follow_up_rate", "handoff.response_delay_days")
    named = {
        lv.name: lv.paths
        for lv in find_levers(a, b, {"sla": ["handoff.response_delay_days"], "rules": ["qualification"]})
    }
    assert named["sla"] == ("handoff.response_delay_days",)
    assert named["handoff"] == ("handoff.follow_up_rate",)  # what the named lever leaves of its section
    assert len(named["rules"]) == 6 and "qualification.mql" not in named


def test_bad_levers_are_refused_before_simulating():
    a = load_scenario(SCENARIOS / "misaligned.toml", TENTH)
    b = load_scenario(SCENARIOS / "aligned.toml", TENTH)
    with pytest.raises(CompareError, match="no parameter or section 'handof'"):
        find_levers(a, b, {"x": ["handof"]})
    with pytest.raises(CompareError, match="two levers"):
        find_levers(a, b, {"x": ["handoff"], "y": ["handoff"]})
    more = ["nurture.touch_lift=0.2", "personas.buyer.buying_intent=0.7", "sources.events.cost_per_lead=1",
            "handoff.sdr.count=2"]  # fmt: skip
    many = load_scenario(SCENARIOS / "misaligned.toml", [*TENTH, *more])
    with pytest.raises(CompareError, match=r"10 levers differ.*limited to 8"):
        find_levers(many, b)
    half = Lever("mql weight", ("qualification.mql.fit_weight",), {}, {"qualification.mql.fit_weight": 0.6})
    with pytest.raises(CompareError, match=r"invalid scenario.*qualification\.mql: fit_weight"):
        coalition_scenario(a, b, [half])
    with pytest.raises(CompareError, match="exactly two"):
        compare([a, b, a], 3, 1, attribute_levers=True)


def _tenth_file(name: str, folder: Path, extra: tuple[str, ...] = ()) -> Path:
    raw = apply_overrides(tomllib.loads((SCENARIOS / name).read_text()), [*TENTH, *extra])
    path = folder / name
    path.write_text(tomlkit.dumps(raw))
    return path


def test_cli_attribution_writes_the_lever_table_waterfall_and_json(tmp_path):
    a = _tenth_file("misaligned.toml", tmp_path, ("prior_year_revenue=300000",))
    b = _tenth_file("aligned.toml", tmp_path, ("prior_year_revenue=300000",))
    out = tmp_path / "cmp"
    args = ["compare", str(a), str(b), "--runs", "3", "--seed", "4", "--out", str(out), "--json",
            "--lever", "rules=qualification", "--lever", "rest=sources,handoff,recycling,sales"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    levers = doc["attribution"]["levers"]
    assert list(levers) == ["rules", "rest", "total"]
    assert levers["rules"]["contribution"] + levers["rest"]["contribution"] == pytest.approx(
        levers["total"]["contribution"]
    )
    assert levers["rules"]["parameters"][0] == "qualification.mql.fit_weight"
    assert {"attribution.csv", "coalitions.csv", "leakage.csv"} <= {p.name for p in out.iterdir()}
    assert (out / "figures" / "levers.png").exists()
    assert len(pd.read_csv(out / "coalitions.csv")) == 4
    # Growth framing: both files give last year's revenue.
    growth = doc["metrics"]["yoy_growth"]
    revenue = doc["metrics"]["revenue"]
    for label in ("misaligned", "aligned"):
        assert growth[label]["mean"] == pytest.approx(revenue[label]["mean"] / 300000 - 1)


def test_cli_bad_lever_option_exits_2(tmp_path):
    files = [str(SCENARIOS / "misaligned.toml"), str(SCENARIOS / "aligned.toml")]
    for spec, message in (("rules", "NAME=PATH"), ("x=qualificaton", "no parameter or section")):
        result = runner.invoke(app, ["compare", *files, "--runs", "2", "--lever", spec])
        assert result.exit_code == EXIT_BAD_INPUT
        assert message in result.stderr


def test_leakage_side_by_side(pair):
    leakage = pair.leakage()
    assert len(leakage) == len(LEAKAGE_REASONS) * 3
    rows = leakage.set_index(["reason", "scenario"])
    # The misaligned company works fewer of its MQLs; recycling is off there, so more rejected leads are dropped.
    assert rows.loc[("not_followed_up", "aligned"), "difference"] < 0
    assert rows.loc[("rejected_by_sales", "misaligned#2"), "difference"] == 0
