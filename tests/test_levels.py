"""The four relationship levels between sales and marketing (Kotler, Rackham & Krishnaswamy,
HBR 2006): bundled presets that are one company, differ only through named mechanisms, carry
the bars their rule chose, and earn more revenue at each level up the ladder.

The ladder is ``LEVELS`` of ``experiments/alignment/levels.py`` (undefined = misaligned.toml,
defined.toml, aligned.toml, integrated.toml); its study is ``levels.py --runs 10``, whose
results are committed in ``experiments/alignment/results/levels``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from funnelsim.studies.compare import compare

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "experiments" / "alignment"
sys.path.insert(0, str(STUDY))
import levels as ladder  # noqa: E402

RESULTS = STUDY / "results" / "levels"

# Which mechanism each scenario key stands for (the files' "ALIGNMENT LEVER" lines); a key
# that differs between two levels must be one of these, or the levels are not one company.
MECHANISMS = {
    "sources.inbound.persona_mix": "targeting",
    "qualification": "lead definition",
    "handoff.follow_up_rate": "follow-up",
    "handoff.response_delay_days": "hand-off SLA",
    "recycling": "recycling",
    "sales.win_rate": "messaging",
    "sales.cycle_days": "messaging",
    "sales.queue": "AE queue",
}
LABELS = {"name", "description"}
# What each step up the ladder changes, and nothing else.
STEPS = {
    ("undefined", "defined"): {"lead definition"},
    ("defined", "aligned"): {"lead definition", "targeting", "follow-up", "hand-off SLA", "recycling", "messaging"},
    ("aligned", "integrated"): {"lead definition", "targeting", "hand-off SLA", "recycling", "AE queue"},
}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        flat.update(_flatten(item, f"{prefix}.{key}" if prefix else key))
    return flat


def _mechanism(path: str) -> str:
    for prefix, mechanism in MECHANISMS.items():
        if path == prefix or path.startswith(prefix + "."):
            return mechanism
    return "label" if path in LABELS else f"not a mechanism: {path}"


@pytest.fixture(scope="module")
def levels() -> dict[str, Any]:
    return ladder.load_levels()


def test_the_ladder_is_four_bundled_scenarios_in_order(levels: dict[str, Any]) -> None:
    """Each level is a shipped scenario file that loads and validates, in the article's order;
    the undefined and aligned levels are the existing misaligned/aligned files, not copies."""
    assert list(levels) == ["undefined", "defined", "aligned", "integrated"]
    assert [levels[level].name for level in levels] == ["misaligned", "defined", "aligned", "integrated"]
    shipped = {path.name for path in (ROOT / "scenarios").glob("*.toml")}
    assert set(ladder.LEVELS.values()) <= shipped
    readme = (ROOT / "scenarios" / "README.md").read_text()
    for level, file in ladder.LEVELS.items():
        assert f"| {level} | `{file}` |" in readme, f"scenarios/README.md's ladder lacks {level}"


def test_the_levels_are_one_company_that_differs_only_in_named_mechanisms(levels: dict[str, Any]) -> None:
    """Compared key by key after loading (defaults filled in), consecutive levels differ only
    in the mechanisms that step names: same market, sources, personas, costs and headcount."""
    flat = {level: _flatten(scenario.to_dict()) for level, scenario in levels.items()}
    for (lower, upper), expected in STEPS.items():
        assert flat[lower].keys() == flat[upper].keys()
        differing = {key for key in flat[lower] if flat[lower][key] != flat[upper][key]}
        mechanisms = {_mechanism(key) for key in differing} - {"label"}
        assert mechanisms == expected, f"{lower} -> {upper}: {sorted(differing)}"


def test_only_the_undefined_level_has_two_lead_definitions(levels: dict[str, Any]) -> None:
    """Defined and above: one rule and one bar for MQL and SQL (the shared definition)."""
    for level, scenario in levels.items():
        shared = scenario.qualification.mql == scenario.qualification.sql
        assert shared == (level != "undefined"), level


def test_the_shared_bars_are_the_ones_the_aligned_rule_chose() -> None:
    """No level's bar is hand-picked: each shared-definition level carries the revenue optimum
    of its own shared-bar sweep in the committed study (bars.py's rule, levels.py), and the
    aligned level's sweep is the main study's (same rule, replications and seed)."""
    levels = ladder.load_levels()
    swept = pd.read_csv(RESULTS / "bars.csv")
    for level in ladder.SHARED:
        sweep = swept[swept["level"] == level]
        optimum = float(sweep.loc[sweep["revenue"].idxmax(), "threshold"])
        assert levels[level].qualification.sql.threshold == pytest.approx(optimum), level
    main = pd.read_csv(STUDY / "results" / "bars" / "aligned-sweep.csv")
    mine = swept[swept["level"] == "aligned"].drop(columns="level").reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, main, rtol=1e-9)


def test_the_committed_figure_shows_the_committed_revenue() -> None:
    """levels.figure draws one bar per level at its mean revenue, error bars to its interval."""
    table, steps = pd.read_csv(RESULTS / "levels.csv"), pd.read_csv(RESULTS / "steps.csv")
    fig, ax = ladder.figure(table, steps)
    revenue = table[table["metric"] == "revenue"].set_index("level").loc[list(ladder.LEVELS)]
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == pytest.approx(list(revenue["mean"] / 1e6))
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"{i + 1}. {lv}" for i, lv in enumerate(ladder.LEVELS)]
    step = steps[steps["metric"] == "revenue"]
    assert [t.get_text().split("\n")[0] for t in ax.texts] == [f"{d / 1e6:+.2f}M" for d in step["difference"]]
    import matplotlib.pyplot as plt

    plt.close(fig)


# The ordering check: the bundled presets, at full size, on seeds the study did not use.
# The warm start is fixed at the committed study's burn-in, so no pilot runs are needed.
BURN_IN_DAYS = 270


def _steps(runs: int, seed: int) -> dict[tuple[str, str], np.ndarray]:
    levels = ladder.load_levels([f"burn_in_days={BURN_IN_DAYS}"])
    result = compare(list(levels.values()), runs, seed, labels=list(levels))
    revenue = {level: result.runs[level].table.set_index("replication")["revenue"] for level in levels}
    return {step: (revenue[step[1]] - revenue[step[0]]).to_numpy(float) for step in STEPS}


def _lower_bound(differences: np.ndarray, confidence: float) -> float:
    """One-sided lower confidence bound of the mean paired difference (Student t)."""
    n = len(differences)
    return float(differences.mean() - stats.t.ppf(confidence, n - 1) * differences.std(ddof=1) / math.sqrt(n))


def test_revenue_climbs_the_ladder() -> None:
    """undefined < defined < aligned < integrated in revenue: for every step, the one-sided 95%
    paired-t lower bound of the revenue difference is above zero (20 common replications of
    seed 2006, the full company). The committed study (10 replications of seed 2027) finds
    every step positive at 95%; the smallest, undefined -> defined (+0.28M, sd 0.37M between
    replications), is detected with 20 runs about 95% of the time, the others almost surely."""
    for step, differences in _steps(20, 2006).items():
        assert _lower_bound(differences, 0.95) > 0, f"{step}: {differences.mean():,.0f}"


def test_the_committed_study_is_consistent_with_its_replications() -> None:
    """steps.csv holds the paired mean differences of the replications it was computed from."""
    replications = pd.read_csv(RESULTS / "replications.csv")
    steps = pd.read_csv(RESULTS / "steps.csv").set_index(["metric", "from", "to"])
    by_level = replications.set_index(["scenario", "replication"])["revenue"]
    for lower, upper in STEPS:
        expected = float((by_level[upper] - by_level[lower]).mean())
        assert steps.loc[("revenue", lower, upper), "difference"] == pytest.approx(expected, rel=1e-9)


@pytest.mark.slow
def test_revenue_climbs_the_ladder_at_99_percent() -> None:
    """The same ordering on 40 fresh replications (seed 2019), each step's two-sided 99% paired-t
    interval wholly above zero."""
    for step, differences in _steps(40, 2019).items():
        assert _lower_bound(differences, 0.995) > 0, f"{step}: {differences.mean():,.0f}"
