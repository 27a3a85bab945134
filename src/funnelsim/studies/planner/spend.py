r"""What a plan spends on each marketing channel with a spend curve, and what its last currency unit earns.

On a scenario with spend curves (:mod:`funnelsim.model.spend`) the lead lever is the
budget (:mod:`.levers`): the plan's multiplier ``k`` buys ``k B_0`` a month, ``B_0``
today's spend on the channels it may use, split in the mix that earns the most when each
lead of channel ``s`` is worth its expected revenue ``v_s`` (:func:`channel_values`:
the analytic model's yield, reps never the bottleneck). At that mix every funded
channel's last currency unit earns the same, the shadow price ``lambda``:

.. math:: \frac{v_s}{\text{marginal cost per lead}_s} = \frac{v_s}{c_s\, e^{S_s/(c_s M_s)}} = \lambda,

which :func:`spend_summary` reports per channel (``marginal_revenue_per_spend``) beside
its spend and volume today and in the plan.
"""

from __future__ import annotations

from typing import Any

from funnelsim.model.scenario import DAYS_PER_MONTH, Scenario
from funnelsim.studies.planner.levers import LeadShape, spend_channels
from funnelsim.studies.planner.waterfall import SourceYield

__all__ = ["channel_values", "spend_summary"]


def channel_values(scenario: Scenario, yields: dict[str, SourceYield]) -> dict[str, float]:
    """Expected revenue of one lead of each source on a spend curve (:attr:`.SourceYield.revenue_per_lead`)."""
    return {name: yields[name].revenue_per_lead for name in spend_channels(scenario)}


def spend_summary(
    today: Scenario, planned: Scenario, k: float, shape: LeadShape, yields: dict[str, SourceYield]
) -> dict[str, Any]:
    """The plan's spend per channel on a spend curve, against today's (empty without spend curves).

    Keys: ``multiplier`` (``k``), ``today_per_month`` and ``planned_per_month`` (the spend a
    month on every channel with a curve), and ``channels``: per channel ``in_budget`` (the
    lever may move its spend), ``today_per_month``, ``planned_per_month``,
    ``leads_per_month_today``, ``leads_per_month``, ``average_cost_per_lead`` and
    ``marginal_cost_per_lead`` at the planned spend, ``revenue_per_lead`` and
    ``marginal_revenue_per_spend`` (revenue per lead / marginal cost per lead).
    """
    names = spend_channels(today)
    if not names:
        return {}
    budget = set(spend_channels(today, shape))
    channels = {}
    for name in names:
        before, after = today.sources[name], planned.sources[name]
        curve, spend = after.curve, float(after.spend_per_month or 0.0)
        assert curve is not None
        value = yields[name].revenue_per_lead
        marginal = curve.marginal_cost(spend)
        channels[name] = {
            "in_budget": name in budget,
            "today_per_month": float(before.spend_per_month or 0.0),
            "planned_per_month": spend,
            "leads_per_month_today": float(before.leads_per_day_mean * DAYS_PER_MONTH),
            "leads_per_month": curve.leads(spend),
            "average_cost_per_lead": curve.average_cost(spend),
            "marginal_cost_per_lead": marginal,
            "revenue_per_lead": value,
            "marginal_revenue_per_spend": value / marginal,
        }
    return {
        "multiplier": k,
        "today_per_month": sum(c["today_per_month"] for c in channels.values()),
        "planned_per_month": sum(c["planned_per_month"] for c in channels.values()),
        "channels": channels,
    }
