r"""Channel spend: what a marketing budget buys on each channel, and how to split a budget between channels.

A channel is a bucket that fills ever more slowly: the first dollars buy leads at
``cost_per_lead`` each, later dollars fewer and fewer, and no spend buys more than the
channel's audience, ``max_leads_per_month``.

The saturation curve
    With monthly spend ``S``, initial cost per lead ``c`` and saturation volume ``M``
    (leads a month),

    .. math:: L(S) = M\,\bigl(1 - e^{-S/(cM)}\bigr).

    It is concave, ``L(0) = 0``, ``L'(0) = 1/c`` and ``L -> M`` as ``S`` grows; at
    ``S = cM`` it has reached 63% of ``M``. Its inverse, the spend that buys ``L`` leads
    a month (``L < M``), and the cost of the *last* lead bought (the marginal cost per
    lead) are

    .. math:: S(L) = -cM \ln(1 - L/M), \qquad
              \frac{dS}{dL} = c\, e^{S/(cM)} = \frac{c}{1 - L/M},

    so the marginal cost doubles when the channel is half full and is ten times ``c`` at
    90%. The average cost per lead ``S / L(S)`` lies between ``c`` and the marginal cost.
    Typical values: ``c`` the cost per lead a channel quotes at low volume (20-300 in
    B2B), ``M`` two to five times today's volume for a channel with room to grow, near
    today's for one that is tapped out.

Estimating ``c`` and ``M`` from two months of history
    Two past months with spend and leads ``(S_1, L_1)``, ``(S_2, L_2)``, ``S_1 < S_2``,
    fix the curve when returns diminish between them, ``1 < L_2/L_1 < S_2/S_1``. With
    ``x = S_1/(cM)`` and ``r = S_2/S_1``, the ratio

    .. math:: \frac{L_2}{L_1} = \frac{1 - e^{-r x}}{1 - e^{-x}}

    falls from ``r`` (as ``x -> 0``) to 1 (as ``x`` grows), so it has one root ``x``
    (:meth:`SpendCurve.through`, bisection on ``log x``); then ``M = L_1/(1 - e^{-x})``
    and ``c = S_1/(x M)``. With one month ``(S_0, L_0)`` and a judgement of the ceiling
    ``M``, ``c = S_0 / (-M \ln(1 - L_0/M))`` (:meth:`SpendCurve.through_point`).

The best split of a budget (:func:`allocate`)
    Channel ``s`` earns ``v_s`` per lead (expected revenue, or wins). Spending ``B`` a
    month to earn the most, :math:`\max \sum_s v_s L_s(S_s)` subject to
    :math:`\sum_s S_s = B`, :math:`S_s \ge 0`, is a concave problem; its optimum (KKT)
    spends on a channel until its marginal value per currency unit falls to a common
    level ``lambda`` (the shadow price of the budget), and nothing on a channel whose
    first lead is worth less:

    .. math:: \frac{v_s}{c_s} e^{-S_s/(c_s M_s)} = \lambda \text{ if } S_s > 0, \qquad
              \frac{v_s}{c_s} \le \lambda \text{ if } S_s = 0.

    So :math:`S_s(\lambda) = c_s M_s \ln^+\!\bigl(v_s/(c_s\lambda)\bigr)` and, on the
    channels funded, :math:`\ln\lambda = (\sum w_s \ln(v_s/c_s) - B) / \sum w_s`,
    :math:`w_s = c_s M_s`: channels are added in order of ``v_s/c_s`` until the next
    one's first lead is worth less than ``lambda`` (water filling, exact, no iteration).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Allocation", "SpendCurve", "allocate"]


@dataclass(frozen=True)
class SpendCurve:
    """``L(S) = M (1 - exp(-S / (c M)))``: leads a month bought by spending ``S`` a month (module docstring).

    Attributes
    ----------
    cost_per_lead
        ``c``: the cost of the first leads (the curve's slope at zero spend is ``1/c``), currency.
    max_leads_per_month
        ``M``: the volume the channel saturates at, leads a month.
    """

    cost_per_lead: float
    max_leads_per_month: float

    def __post_init__(self) -> None:
        for name in ("cost_per_lead", "max_leads_per_month"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} of a spend curve must be a positive number, got {value!r}")
        if not math.isfinite(self.scale):
            raise ValueError("cost_per_lead x max_leads_per_month of a spend curve must be a finite amount")

    @property
    def scale(self) -> float:
        """``c M``: the spend that fills the channel to ``1 - 1/e`` (63%) of its ceiling."""
        return self.cost_per_lead * self.max_leads_per_month

    def leads(self, spend: float) -> float:
        """``L(S)``, leads a month bought by ``spend`` a month (``spend >= 0``)."""
        _check_spend(spend)
        return -self.max_leads_per_month * math.expm1(-spend / self.scale)

    def spend(self, leads: float) -> float:
        """``S(L) = -c M ln(1 - L/M)``, the spend a month that buys ``leads`` a month; ``inf`` at or past ``M``."""
        if not (math.isfinite(leads) and leads >= 0):
            raise ValueError(f"leads must be a number >= 0, got {leads!r}")
        if leads >= self.max_leads_per_month:
            return math.inf
        return -self.scale * math.log1p(-leads / self.max_leads_per_month)

    def marginal_cost(self, spend: float) -> float:
        """``dS/dL = c exp(S / (c M))``: the cost of the last lead bought at ``spend`` a month."""
        _check_spend(spend)
        return self.cost_per_lead * math.exp(min(spend / self.scale, 700.0))

    def average_cost(self, spend: float) -> float:
        """``S / L(S)``, the cost of the average lead at ``spend`` a month (``c`` at zero spend, its limit)."""
        leads = self.leads(spend)
        return spend / leads if leads > 0 else self.cost_per_lead

    @classmethod
    def through_point(cls, spend: float, leads: float, max_leads_per_month: float) -> SpendCurve:
        """The curve of ceiling ``max_leads_per_month`` through one month's ``(spend, leads)``:
        ``c = S / (-M ln(1 - L/M))``."""
        if not (0 < leads < max_leads_per_month and math.isfinite(max_leads_per_month)):
            raise ValueError(f"need 0 < leads < max_leads_per_month, got {leads!r} and {max_leads_per_month!r}")
        if not (math.isfinite(spend) and spend > 0):
            raise ValueError(f"need a spend > 0, got {spend!r}")
        return cls(spend / (-max_leads_per_month * math.log1p(-leads / max_leads_per_month)), max_leads_per_month)

    @classmethod
    def through(cls, first: tuple[float, float], second: tuple[float, float]) -> SpendCurve:
        """The one curve through two months' ``(spend, leads)``; they must show diminishing returns,
        ``1 < L2/L1 < S2/S1`` (order does not matter)."""
        (s1, l1), (s2, l2) = sorted([first, second])
        if not all(math.isfinite(v) and v > 0 for v in (s1, l1, s2, l2)) or s1 == s2:
            raise ValueError("need two months with different spends > 0 and leads > 0")
        r, ratio = s2 / s1, l2 / l1
        if not 1 < ratio < r:
            raise ValueError(
                f"leads rose {ratio:.4g}x for {r:.4g}x the spend: a saturating curve needs "
                "1 < leads ratio < spend ratio"
            )
        low, high = math.log(1e-12), math.log(200.0)  # x = S1 / (c M); g(x) falls from r to 1

        def g(log_x: float) -> float:
            x = math.exp(log_x)
            return math.expm1(-r * x) / math.expm1(-x)

        if not g(high) < ratio < g(low):
            raise ValueError(f"leads ratio {ratio:.6g} is too close to 1 or to the spend ratio {r:.6g} to fit a curve")
        for _ in range(200):
            mid = (low + high) / 2
            low, high = (mid, high) if g(mid) > ratio else (low, mid)
        x = math.exp((low + high) / 2)
        m = -l1 / math.expm1(-x)
        return cls(s1 / (x * m), m)


def _check_spend(spend: float) -> None:
    if not (math.isfinite(spend) and spend >= 0):
        raise ValueError(f"spend must be a number >= 0, got {spend!r}")


@dataclass(frozen=True)
class Allocation:
    """The best split of a budget (:func:`allocate`).

    Attributes
    ----------
    spend
        Spend a month per channel (0 for a channel not worth its first lead).
    shadow_price
        ``lambda``: what one more currency unit of budget would earn, the marginal value per
        currency unit every funded channel has at the optimum.
    unspent
        Budget no channel is worth spending (all of it when no channel earns anything).
    """

    spend: dict[str, float]
    shadow_price: float
    unspent: float


def allocate(curves: Mapping[str, SpendCurve], values: Mapping[str, float], budget: float) -> Allocation:
    """The spend per channel that maximises :math:`\\sum_s v_s L_s(S_s)` with :math:`\\sum_s S_s = B` (module
    docstring): exact water filling on the shadow price.

    Parameters
    ----------
    curves
        The channels' spend curves, by name.
    values
        ``v_s``: what one lead of each channel earns (revenue, or wins), by the same names.
    budget
        ``B``, the spend a month to split, ``>= 0``.
    """
    if not (math.isfinite(budget) and budget >= 0):
        raise ValueError(f"budget must be a number >= 0, got {budget!r}")
    if set(curves) != set(values):
        raise ValueError(f"values must name the channels of the curves: {sorted(curves)} vs {sorted(values)}")
    spend = dict.fromkeys(curves, 0.0)
    worth = {name: values[name] / curves[name].cost_per_lead for name in curves}  # v/c: the first lead's value per unit
    ranked = sorted((name for name in curves if worth[name] > 0), key=lambda name: (-worth[name], name))
    if not ranked:
        return Allocation(spend, 0.0, budget)
    if budget == 0:
        return Allocation(spend, worth[ranked[0]], 0.0)
    weight, weighted_log = 0.0, 0.0
    for n, name in enumerate(ranked):
        weight += curves[name].scale
        weighted_log += curves[name].scale * math.log(worth[name])
        log_price = (weighted_log - budget) / weight
        if n + 1 == len(ranked) or log_price >= math.log(worth[ranked[n + 1]]):
            break
    funded = ranked[: n + 1]
    for name in funded:
        spend[name] = curves[name].scale * max(0.0, math.log(worth[name]) - log_price)
    return Allocation(spend, math.exp(log_price), 0.0)
