"""The shipped scenarios: golden outputs, and the aligned/misaligned pair's promises.

Golden files pin the whole ``funnelsim run --json`` summary of every shipped scenario
at its default seed, so any change to the engine, the metrics or a scenario that moves
a number shows up in review. After an intended change, regenerate them with
``python tests/test_scenarios.py`` and commit the diff with the change that caused it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from funnelsim import load_scenario, simulate
from funnelsim.run.metrics import summarize_run

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.toml"))
GOLDEN = Path(__file__).parent / "golden"

# What may differ between aligned.toml and misaligned.toml: the alignment levers only.
LEVERS = {
    "name",
    "description",
    "sources.inbound.persona_mix",  # targeting
    "qualification.mql",  # lead definition
    "qualification.sql",
    "handoff.follow_up_rate",  # follow-up
    "handoff.response_delay_days",  # hand-off SLA
    "recycling",  # recycling with feedback vs dropping
    "sales.win_rate",  # message consistency
    "sales.cycle_days",
}


def _cli_json(path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "funnelsim", "run", str(path), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # --json: the document and nothing else
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def test_every_shipped_scenario_has_a_golden_file() -> None:
    assert SCENARIOS, "no scenarios shipped"
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == sorted(p.stem for p in SCENARIOS)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_cli_summary_matches_golden_output(path: Path) -> None:
    expected = json.loads((GOLDEN / f"{path.stem}.json").read_text())
    actual = _cli_json(path)
    assert {k: v for k, v in actual.items() if k != "summary"} == {k: v for k, v in expected.items() if k != "summary"}
    assert actual["summary"].keys() == expected["summary"].keys()
    for key, value in expected["summary"].items():
        if value is None:  # NaN in JSON, e.g. a cost per win with no wins
            assert actual["summary"][key] is None, key
        else:  # bit-for-bit on one platform; the tolerance only absorbs summation order
            assert actual["summary"][key] == pytest.approx(value, rel=1e-9), key


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and "dist" not in value and path not in LEVERS:
            flat.update(_flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def test_aligned_and_misaligned_are_the_same_company() -> None:
    files = {name: ROOT / "scenarios" / f"{name}.toml" for name in ("aligned", "misaligned")}
    flat = {name: _flatten(tomllib.loads(path.read_text())) for name, path in files.items()}
    assert flat["aligned"].keys() == flat["misaligned"].keys()
    differing = {key for key in flat["aligned"] if flat["aligned"][key] != flat["misaligned"][key]}
    assert differing <= LEVERS, f"non-alignment differences: {sorted(differing - LEVERS)}"
    # One shared definition on the aligned side, two on the other.
    assert flat["aligned"]["qualification.mql"] == flat["aligned"]["qualification.sql"]
    assert flat["misaligned"]["qualification.mql"] != flat["misaligned"]["qualification.sql"]


def _revenue_ratio(seeds: range) -> float:
    aligned, misaligned = (load_scenario(ROOT / "scenarios" / f"{name}.toml") for name in ("aligned", "misaligned"))
    revenue = {
        name: np.mean([summarize_run(simulate(sc, seed=s))["revenue"] for s in seeds])
        for name, sc in (("aligned", aligned), ("misaligned", misaligned))
    }
    return float(revenue["aligned"] / revenue["misaligned"])


# Since partner referrals are qualified by source (sources.partner.qualified_by), the aligned
# company no longer turns every referral down, and the pair earns about 1.55x (1.54x over 30
# common replications of seed 2027), above the published 1.25-1.42: the levers were tuned to
# 1.36x with that artefact in. They are recalibrated with the speed-to-lead curve (issue 17,
# part 1), which moves the ratio again; strict, so the mark must go once the ratio is back.
RECALIBRATION_PENDING = pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="aligned/misaligned ratio about 1.55 since referrals are qualified by source (issue 17)",
)


@RECALIBRATION_PENDING
def test_aligned_earns_about_a_third_more_than_misaligned() -> None:
    # Published range: Aberdeen 1.20/0.96 = 1.25 to 1.32/0.93 = 1.42. Four seeds:
    # single runs range 1.2-1.55, so the fast check is wider than the slow one.
    assert 1.2 < _revenue_ratio(range(2027, 2031)) < 1.5


@pytest.mark.slow
@RECALIBRATION_PENDING
def test_aligned_revenue_gap_matches_published_range() -> None:
    assert 1.25 < _revenue_ratio(range(100, 124)) < 1.45


def _regenerate() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for path in SCENARIOS:
        (GOLDEN / f"{path.stem}.json").write_text(json.dumps(_cli_json(path), indent=2) + "\n")
        print(f"wrote {GOLDEN / path.stem}.json")


if __name__ == "__main__":
    _regenerate()
