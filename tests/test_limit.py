"""The least-work model of ``benchmarks/limit.py`` answers as the engine does.

``benchmarks/engine.py`` measures the engine against it (engine time ÷ limit time), so
the ratio only means something if the limit computes the same outputs: here, over 120
replications of each, the mean of every headline output (leads, MQLs, SQLs,
opportunities, wins, revenue) agrees between the two models within a Welch z interval
at 99.9% per output (six outputs and three scenarios: a false alarm in about 2% of
runs of this file). The scenarios queue (one SDR, one AE), recycle, prospect, ramp
hires and open an initial pipeline, so every mechanism the limit implements is used.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from funnelsim import load_scenario, simulate, summary
from scaled import TENTH, TENTH_VOLUME

ROOT = Path(__file__).resolve().parents[1]
RUNS = 120
Z = stats.norm.ppf(1 - 0.001 / 2)


def _limit_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("limit", ROOT / "benchmarks" / "limit.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["limit"] = module
    spec.loader.exec_module(module)
    return module


limit = _limit_module()


@pytest.mark.parametrize(
    ("scenario", "overrides"),
    [
        ("baseline", ('start="cold"', *TENTH)),
        ("aligned", ('start="cold"', *TENTH_VOLUME, "handoff.sdr.count=1", "sales.ae.count=3", 'sales.queue="score"')),
        ("baseline-with-pipeline", ("burn_in_days=0", *TENTH_VOLUME, "horizon_days=180")),
    ],
    ids=["congested", "aligned-score-queue", "pipeline"],
)
def test_the_limit_model_gives_the_engines_headline_outputs(scenario: str, overrides: tuple[str, ...]) -> None:
    sc = load_scenario(ROOT / "scenarios" / f"{scenario}.toml", overrides)
    fast = [limit.simulate_limit(sc, 11, i) for i in range(RUNS)]
    engine = [summary(simulate(sc, 11, i).events) for i in range(RUNS)]
    for name in limit.OUTPUTS:
        a = np.array([row[name] for row in fast], dtype=float)
        b = np.array([row[name] for row in engine], dtype=float)
        half = Z * math.hypot(a.std(ddof=1), b.std(ddof=1)) / math.sqrt(RUNS)
        assert abs(a.mean() - b.mean()) <= half, (name, a.mean(), b.mean(), half)
    # The congested company queues and abandons; the limit's lazy abandonment must serve as few.
    assert np.mean([row["sqls"] for row in fast]) > 0


def test_the_limit_model_refuses_what_it_does_not_model() -> None:
    warm = load_scenario(ROOT / "scenarios" / "baseline.toml", ("burn_in_days=90",))
    with pytest.raises(NotImplementedError, match="warm start"):
        limit.simulate_limit(warm, 1)
    staffed = load_scenario(
        ROOT / "scenarios" / "baseline.toml", ('start="cold"', "handoff.sdr.attrition_per_year=0.3")
    )
    with pytest.raises(NotImplementedError, match="SDR team"):
        limit.simulate_limit(staffed, 1)
