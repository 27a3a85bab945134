r"""The best marketing mix for a monthly budget: how to split spend between channels with diminishing returns.

Each source with a spend curve (:mod:`funnelsim.model.spend`) buys
:math:`L_s(S_s) = M_s (1 - e^{-S_s/(c_s M_s)})` leads a month for ``S_s`` a month, and
one of its leads is worth ``v_s``: its expected revenue (or wins) by the analytic model
with reps never the bottleneck (:func:`funnelsim.studies.planner.waterfall.source_yields`:
the lead -> MQL share and time from the nurture equations, MQL -> won from the closed
forms of :mod:`funnelsim.model.analytic`). The mix of a budget ``B`` maximises

.. math:: \sum_s v_s L_s(S_s) \quad\text{subject to}\quad \sum_s S_s = B,\ S_s \ge 0,

a concave problem solved exactly (:func:`funnelsim.model.spend.allocate`): every funded
channel's last currency unit earns the same, ``lambda``, and an unfunded channel's first
lead earns less. Sources without a curve (leads at a fixed ``cost_per_lead``) keep their
volume and cost and are not part of the budget. Counts are a month at the base volume
(before seasonality), in steady state: a lead's MQLs, SQLs, wins and revenue whenever
they come. :func:`mix` sets the optimal mix beside today's spend and today's shares
scaled to the budget; ``funnelsim plan --lever budget`` adds reps, queues and the
simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from funnelsim.model.scenario import DAYS_PER_MONTH, Scenario
from funnelsim.model.spend import SpendCurve, allocate
from funnelsim.studies.planner.waterfall import SourceYield, source_yields

__all__ = ["MIXES", "MIX_COLUMNS", "OBJECTIVES", "BudgetError", "Mix", "mix"]

Objective = Literal["revenue", "wins"]
OBJECTIVES: tuple[Objective, ...] = ("revenue", "wins")
MIXES = ("today", "today_shares", "optimal")
"""The mixes of ``mix.csv``: today's spend; the budget split in today's shares; the optimal split of the budget."""
MIX_COLUMNS = [
    "mix",
    "channel",
    "in_budget",
    "spend_per_month",
    "leads_per_month",
    "average_cost_per_lead",
    "marginal_cost_per_lead",
    "mqls_per_month",
    "sqls_per_month",
    "wins_per_month",
    "revenue_per_month",
    "marginal_value_per_spend",
]


class BudgetError(ValueError):
    """A budget question that cannot be answered as asked (no spend curves, a budget that is not positive)."""


@dataclass(frozen=True)
class Mix:
    """The optimal mix of a budget beside today's.

    Attributes
    ----------
    table
        One row per mix (:data:`MIXES`) and channel, every source of the scenario, then a
        ``total`` row per mix (:data:`MIX_COLUMNS`, documented in docs/outputs.md).
    shadow_price
        ``lambda``: the objective (revenue or wins) one more currency unit of budget would
        bring a month at the optimum.
    """

    scenario: Scenario
    budget: float
    objective: Objective
    shadow_price: float
    unspent: float
    table: pd.DataFrame

    def totals(self) -> pd.DataFrame:
        """The ``total`` row of each mix, indexed by mix."""
        return self.table[self.table["channel"] == "total"].set_index("mix")


def mix(
    scenario: Scenario,
    budget: float,
    objective: Objective | str = "revenue",
    yields: dict[str, SourceYield] | None = None,
    segment: str = "all",
) -> Mix:
    """The spend per channel on a spend curve that earns the most for ``budget`` a month (module docstring);
    with ``segment``, over that segment's channels (:meth:`~funnelsim.model.scenario.Scenario.view_of`).

    Raises
    ------
    BudgetError
        ``budget`` not a positive amount, an unknown ``objective``, or no source on a spend curve.
    """
    if not (math.isfinite(budget) and budget > 0):
        raise BudgetError(f"--budget must be a positive amount a month, got {budget:g}")
    if objective not in OBJECTIVES:
        raise BudgetError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    scenario = scenario.view_of(segment)
    curves = {name: src.curve for name, src in scenario.sources.items() if src.curve is not None}
    if not curves:
        raise BudgetError(
            f"{scenario.name}: no source has a spend curve, so there is no budget to split; give a source "
            "spend_per_month and max_leads_per_month (docs/model.md, Channel spend)"
        )
    yields = yields or source_yields(scenario)
    worth = {name: _per_lead(yields[name], objective) for name in scenario.sources}
    best = allocate(curves, {name: worth[name] for name in curves}, budget)
    today = {name: float(scenario.sources[name].spend_per_month or 0.0) for name in curves}
    spent = sum(today.values())
    shares = {name: (s / spent if spent > 0 else 1 / len(curves)) * budget for name, s in today.items()}
    rows = []
    for label, spend in (("today", today), ("today_shares", shares), ("optimal", best.spend)):
        channel_rows = [_row(scenario, name, spend, curves, yields, worth) for name in scenario.sources]
        rows += [{"mix": label, **r} for r in channel_rows]
        rows.append({"mix": label, **_total(channel_rows)})
    chosen: Objective = "wins" if objective == "wins" else "revenue"
    return Mix(scenario, budget, chosen, best.shadow_price, best.unspent, pd.DataFrame(rows, columns=MIX_COLUMNS))


def _per_lead(y: SourceYield, objective: str) -> float:
    """What one lead of a source earns: expected revenue or wins."""
    return y.revenue_per_lead if objective == "revenue" else y.wins_per_lead


def _row(
    scenario: Scenario,
    name: str,
    spend: dict[str, float],
    curves: dict[str, SpendCurve],
    yields: dict[str, SourceYield],
    worth: dict[str, float],
) -> dict[str, object]:
    """One channel in one mix: its spend, volume, costs per lead and what its leads become a month."""
    src, y = scenario.sources[name], yields[name]
    curve = curves.get(name)
    if curve is None:  # a fixed cost per lead: not in the budget, the same in every mix
        leads = src.leads_per_day_mean * DAYS_PER_MONTH
        cost = src.cost_per_lead
        money, average, marginal = leads * cost, cost, cost
    else:
        money = spend[name]
        leads, average, marginal = curve.leads(money), curve.average_cost(money), curve.marginal_cost(money)
    return {
        "channel": name,
        "in_budget": curve is not None,
        "spend_per_month": money,
        "leads_per_month": leads,
        "average_cost_per_lead": average,
        "marginal_cost_per_lead": marginal,
        "mqls_per_month": leads * y.mql_rate,
        "sqls_per_month": leads * y.sqls_per_lead,
        "wins_per_month": leads * y.wins_per_lead,
        "revenue_per_month": leads * y.revenue_per_lead,
        "marginal_value_per_spend": worth[name] / marginal if marginal > 0 else math.nan,
    }


def _total(rows: list[dict[str, object]]) -> dict[str, object]:
    """The ``total`` row: sums, and the average cost per lead of them all."""
    summed = {key: math.fsum(float(r[key]) for r in rows) for key in _SUMMED}  # type: ignore[arg-type]
    leads = summed["leads_per_month"]
    return {
        "channel": "total",
        "in_budget": False,
        **summed,
        "average_cost_per_lead": summed["spend_per_month"] / leads if leads > 0 else math.nan,
        "marginal_cost_per_lead": math.nan,
        "marginal_value_per_spend": math.nan,
    }


_SUMMED: tuple[str, ...] = ("spend_per_month", "leads_per_month", "mqls_per_month", "sqls_per_month")
_SUMMED += ("wins_per_month", "revenue_per_month")
