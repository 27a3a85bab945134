"""What a plan may change: the levers, their limits, and the edits that apply them to a scenario.

A candidate plan is the scenario with every source's volume times ``k`` (seasonality
and mix kept), ``a`` extra AEs hired at the start and ``n`` SDRs; ``0 <= k <=``
:data:`MAX_LEAD_MULTIPLIER` and ``0 <= a <=`` :data:`MAX_EXTRA_AES`. Edits are dotted
paths, so a plan is written back as a scenario file that validates again.
"""

from __future__ import annotations

from typing import Any, Literal

from funnelsim.model.loading import parse_scenario
from funnelsim.model.paths import set_paths
from funnelsim.model.scenario import Scenario

__all__ = ["LEVERS", "MAX_EXTRA_AES", "MAX_LEAD_MULTIPLIER", "Lever", "apply_changes", "planned_changes"]

Lever = Literal["leads", "reps", "both"]
LEVERS: tuple[Lever, ...] = ("leads", "reps", "both")
MAX_LEAD_MULTIPLIER = 50.0
"""The largest lead volume a plan may ask for, in multiples of the scenario's."""
MAX_EXTRA_AES = 200
"""The most AEs a plan may hire on top of the scenario's."""


def apply_changes(scenario: Scenario, changes: dict[str, Any]) -> Scenario:
    """``scenario`` with dotted-path values replaced (see :func:`planned_changes`), validated again."""
    return parse_scenario(set_paths(scenario.to_dict(), changes), f"{scenario.name} (planned)")


def planned_changes(
    scenario: Scenario, lead_multiplier: float = 1.0, extra_aes: int = 0, sdrs: int | None = None
) -> dict[str, Any]:
    """The dotted-path edits that turn a framed scenario into a candidate plan.

    Every source's volume is multiplied by ``lead_multiplier`` (seasonality and mix
    kept); ``extra_aes`` join as one hire at the scenario's start and ramp; ``sdrs``
    sets the SDR team size.
    """
    changes: dict[str, Any] = {}
    if lead_multiplier != 1.0:
        for name, source in scenario.sources.items():
            for key in ("leads_per_month", "leads_per_week", "leads_per_day"):
                value = getattr(source, key)
                if value is not None:
                    changes[f"sources.{name}.{key}"] = value * lead_multiplier
    if extra_aes:
        hires = [{"date": h.date.isoformat(), "count": h.count} for h in scenario.sales.ae.hires]
        changes["sales.ae.hires"] = [{"date": scenario.start_date.isoformat(), "count": extra_aes}, *hires]
    if sdrs is not None and sdrs != scenario.handoff.sdr.count:
        changes["handoff.sdr.count"] = sdrs
    return changes
