"""Subscriptions: a won deal as a customer paying annual recurring revenue (ARR) until it churns.

A scenario with a ``subscription`` section sells subscriptions: a won deal's ``value``
is the customer's **ARR at signing** (``sales.deal_size`` is then the ARR of a new
customer). After the funnel run each customer lives on, month by month from its
signing (:mod:`funnelsim.engine.customers`):

* at each **term end** (every ``term_months``) it renews with probability
  ``renewal_probability[k]``, ``k`` the renewals it has made so far (the last value
  repeats), else it churns and its ARR goes to 0;
* on renewal, it may **expand** (ARR × (1 + f), probability ``probability_at_renewal``)
  and **contract** (ARR × (1 − f));
* every month of its life (term ends included), it may expand and contract again, with
  ``probability_per_month`` each, by a fraction ``f`` of its ARR drawn from
  ``size_fraction``.

A month is ``365.25 / 12`` days. ``billing`` says how often a customer is invoiced
(``annual``, ``quarterly``, ``monthly``: ARR × period / 12 at the start of each billing
period); it moves cash, never ARR. ``installed_base`` lists the customers already paying
on ``start_date`` (inline, or a CSV ``file`` read like ``initial_pipeline.file``).

Settings per segment: :func:`subscription_of`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from funnelsim.model.distributions import NonNegativeDist, UnitDist

if TYPE_CHECKING:
    from funnelsim.model.scenario import Scenario

__all__ = [
    "BILLING_MONTHS",
    "CUSTOMER_COLUMNS",
    "Contraction",
    "Customer",
    "Expansion",
    "InstalledBase",
    "Subscription",
    "subscription_of",
]

Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]

BILLING_MONTHS = {"annual": 12, "quarterly": 3, "monthly": 1}
"""Months between two invoices, by ``billing``."""

CUSTOMER_COLUMNS = ("id", "arr", "renewal_date", "start_date", "segment", "renewals")
"""Columns an installed-base CSV may have; ``arr`` and one of the two dates are required."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Expansion(_Model):
    """Customers buying more: ARR ← ARR × (1 + f), ``f`` a fraction of the ARR they pay."""

    probability_per_month: Probability = Field(
        0.0, description="Chance a customer expands in a given month of its life (term ends included)."
    )
    size_fraction: NonNegativeDist = Field(
        description="ARR added by one expansion, as a fraction of the customer's ARR (0.2 = +20%)."
    )
    probability_at_renewal: Probability = Field(0.0, description="Chance a customer expands when it renews.")
    size_fraction_at_renewal: NonNegativeDist | None = Field(
        None, description="ARR added by an expansion at renewal, as a fraction of ARR; none = size_fraction."
    )


class Contraction(_Model):
    """Customers cutting seats or tiers: ARR ← ARR × (1 − f), ``f`` in [0, 1]."""

    probability_per_month: Probability = Field(
        0.0, description="Chance a customer contracts in a given month of its life (term ends included)."
    )
    size_fraction: UnitDist = Field(
        description="ARR removed by one contraction, as a fraction of the customer's ARR, in [0, 1]."
    )
    probability_at_renewal: Probability = Field(0.0, description="Chance a customer contracts when it renews.")
    size_fraction_at_renewal: UnitDist | None = Field(
        None, description="ARR removed by a contraction at renewal, as a fraction of ARR; none = size_fraction."
    )


class Customer(_Model):
    """A customer paying on ``start_date``: one row of the installed base.

    Its schedule: its current term ends on ``renewal_date`` (then every ``term_months``),
    or, without one, at the first end of a term (every ``term_months`` from its
    ``start_date``) on or after the scenario's ``start_date``. Its tenure: ``renewals``,
    or, without it, the terms completed since its ``start_date`` (0 when only a renewal
    date is given). A scenario without segments ignores ``segment``.
    """

    id: str | None = Field(None, description="The customer's id in the CRM or billing system (for reference only).")
    arr: NonNegative = Field(description="Annual recurring revenue the customer pays on start_date, in currency.")
    renewal_date: dt.date | None = Field(
        None, description="End of its current term (on or after the scenario's start_date)."
    )
    start_date: dt.date | None = Field(
        None, description="Day its first contract started (on or before the scenario's start_date)."
    )
    segment: str | None = Field(None, description="Its segment (a key of segments), when the scenario has segments.")
    renewals: Annotated[int, Field(ge=0)] | None = Field(
        None, description="Renewals made so far (the tenure that picks its renewal_probability); none = inferred."
    )

    @model_validator(mode="after")
    def _has_a_date(self) -> Customer:
        if self.renewal_date is None and self.start_date is None:
            raise ValueError("give renewal_date or start_date (or both)")
        return self


class InstalledBase(_Model):
    """Customers already paying on ``start_date``, so ARR starts from today's book, not from 0.

    Give them in a CSV ``file`` (columns ``arr`` and ``renewal_date`` or ``start_date``;
    optionally ``id``, ``segment``, ``renewals``; one row per customer) or inline as
    ``customers``, not both.
    """

    file: str | None = Field(
        None,
        description=(
            "CSV of customers (columns arr and renewal_date or start_date, optionally id, segment, renewals), "
            "relative to the scenario file; read when the scenario is loaded."
        ),
    )
    customers: list[Customer] = Field(
        default_factory=list, description="The customers inline (once loaded, also the rows read from file)."
    )

    @model_validator(mode="after")
    def _one_form(self) -> InstalledBase:
        if self.file is not None and self.customers:
            raise ValueError("give either file or customers, not both")
        return self


class Subscription(_Model):
    """A won deal is a subscription: ARR at signing, then renewal or churn at each term end,
    expansion and contraction (docs/model.md, section 22)."""

    term_months: Annotated[int, Field(ge=1, le=120)] = Field(
        12, description="Length of a contract term, months; a customer renews or churns at the end of each."
    )
    billing: Literal["annual", "quarterly", "monthly"] = Field(
        "annual", description="How often customers are invoiced (cash and billings; ARR does not depend on it)."
    )
    renewal_probability: Annotated[list[Probability], Field(min_length=1)] = Field(
        description="Chance a customer renews at its 1st, 2nd, ... term end; the last value holds after."
    )
    expansion: Expansion | None = Field(None, description="Customers buying more; none = never.")
    contraction: Contraction | None = Field(None, description="Customers cutting back; none = never.")
    gross_margin: Probability = Field(
        1.0, description="Gross margin on subscription revenue, for LTV and CAC payback (1 = on revenue)."
    )
    installed_base: InstalledBase | None = Field(
        None, description="Customers already paying on start_date; none = ARR starts at 0."
    )

    @model_validator(mode="after")
    def _billing_fits_the_term(self) -> Subscription:
        period = BILLING_MONTHS[self.billing]
        if self.term_months % period:
            raise ValueError(
                f"billing = {self.billing!r} invoices every {period} months: term_months must be a multiple "
                f"of {period}, got {self.term_months}"
            )
        return self

    @property
    def customers(self) -> list[Customer]:
        """The installed base (empty without one)."""
        return [] if self.installed_base is None else self.installed_base.customers

    def renewal_at(self, renewals: int) -> float:
        """Chance of renewing for a customer that has renewed ``renewals`` times so far."""
        return self.renewal_probability[min(renewals, len(self.renewal_probability) - 1)]


def subscription_of(scenario: Scenario, segment: str) -> Subscription | None:
    """The subscription settings of ``segment``: its own when the scenario has segments and the
    segment overrides them (``scenario.segment_view(segment)``), else the scenario's."""
    return scenario.view_of(segment).subscription
