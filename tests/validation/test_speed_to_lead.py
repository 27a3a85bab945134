"""Speed to lead measured from simulated outcomes reproduces the published ratios.

The published figures are about *qualifying* a lead, each in its own ratio type: the odds of
qualifying at 5 vs 30 minutes are 21x (Oldroyd, MIT / InsideSales 2007); the first hour is 7x
as likely as the second and 60x as likely as 24 hours or more (HBR 2011). The measurement
(``experiments/speed_to_lead/measure.py``) runs the baseline's company once per delay band,
with every MQL answered after a delay uniform in the band and SDRs that never queue, and counts
the worked MQLs that become SQLs. It does not read the curve's parameters.

Each ratio must be within 10% of its target, and the target inside the measured ratio's 95%
interval (log-ratio normal interval from the binomial counts: ``measure._ratio``). One fixed
seed: the counts are the same on every run on one machine; the tolerance, not bit-equality,
carries the check across machines.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments" / "speed_to_lead"))
import measure  # noqa: E402

BASELINE = ROOT / "scenarios" / "baseline.toml"


@pytest.mark.parametrize("preset", ["published", "conservative"])
def test_the_preset_reproduces_its_ratios_measured_from_qualified_leads(preset: str) -> None:
    """published: 21x, 7x, 60x; conservative: their square roots (4.6x, 2.6x, 7.7x)."""
    counts = measure.qualified(BASELINE, leads=100_000, seed=17, preset=preset)
    measured = measure.ratios(counts)
    for name, target in measure.TARGETS[preset].items():
        value, low, high = measured[name]
        assert value == pytest.approx(target, rel=0.10), f"{name}: {value:.2f} vs {target:.2f}"
        assert low <= target <= high, f"{name}: {target:.2f} outside the 95% interval {low:.2f}-{high:.2f}"


def test_the_bundled_scenarios_use_the_published_curve() -> None:
    """What the test above validates is what the bundled company runs with."""
    from funnelsim import load_scenario
    from funnelsim.model.scenario import SPEED_TO_LEAD_PRESETS, SpeedToLead

    published = SpeedToLead(**SPEED_TO_LEAD_PRESETS["published"])
    for path in sorted((ROOT / "scenarios").glob("*.toml")):
        assert load_scenario(path).handoff.speed_to_lead == published, path.name
