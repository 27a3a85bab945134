"""What a scenario is: one organisation's funnel as a validated, frozen pydantic model.

A scenario is a TOML file (read by :mod:`funnelsim.model.loading`, edited by dotted
paths with :mod:`funnelsim.model.paths`); every key is checked here with its unit and
allowed range, unknown keys are refused.

Units are in the names: ``*_days`` are days, ``*_per_month`` counts per calendar
month (converted to per day on load as ``x * 12 / 365.25``), money is in the
scenario's ``currency``. Probabilities are shares in [0, 1].
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import typing
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    Tag,
    field_validator,
    model_serializer,
    model_validator,
)

from funnelsim.model.distributions import Fixed, NonNegativeDist, Spec, UnitDist
from funnelsim.model.spend import SpendCurve

__all__ = [
    "DAYS_PER_MONTH",
    "PIPELINE_SOURCE",
    "SPEED_TO_LEAD_PRESETS",
    "UNCERTAIN_PARAMETERS",
    "InitialPipeline",
    "OpenDeal",
    "Scenario",
    "ScenarioError",
    "draw_parameters",
    "rate",
]

DAYS_PER_MONTH = 365.25 / 12
PIPELINE_SOURCE = "pipeline"
"""The source name of the deals of ``initial_pipeline`` in results (not a lead source)."""

Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


def _rate_kind(value: Any) -> str:
    return "distribution" if isinstance(value, dict | Spec) else "number"


# A rate known exactly (a number) or uncertain: a distribution on [0, 1] drawn once per
# replication, e.g. {dist = "beta", a = wins + 1, b = losses + 1} from observed counts.
RATE_TAGS = ("number", "distribution")
UncertainProbability = Annotated[
    Annotated[Probability, Tag("number")] | Annotated[UnitDist, Tag("distribution")],
    Discriminator(_rate_kind),
]
_UNCERTAIN_NOTE = " A number, or a distribution on [0, 1] drawn once per replication (parameter uncertainty)."


class ScenarioError(ValueError):
    """A scenario that cannot be used; ``problems`` holds ``(path, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]], source: str = "scenario") -> None:
        self.problems = problems
        self.source = source
        lines = [f"{_clip(source)}: {len(problems)} problem{'s' if len(problems) != 1 else ''}"]
        lines += [f"  {_clip(path)}: {_clip(msg)}" if path else f"  {_clip(msg)}" for path, msg in problems]
        super().__init__("\n".join(lines))


# A key or value of a megabyte must not make a megabyte of error message (or a slow one).
MAX_MESSAGE_CHARS = 200


def _clip(text: str) -> str:
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return f"{text[: MAX_MESSAGE_CHARS - 40]}... ({len(text):,} characters in all)"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Persona(_Model):
    """Who a contact is. Researchers and job seekers engage but never buy."""

    buying_intent: Probability = Field(description="Share of contacts of this persona with a real buying need.")
    engagement_response: NonNegative = Field(
        1.0, description="Multiplier on the engagement lift of each nurture touch (1 = average)."
    )


VOLUME_KEYS = ("leads_per_month", "leads_per_week", "leads_per_day")
"""A source's volume keys: exactly one is given, or none with a spend curve (the curve gives the volume)."""
SPEND_KEYS = ("spend_per_month", "max_leads_per_month")
"""A source's spend-curve keys besides cost_per_lead; left out of its data when not given."""


def _beside_the_curve(key: str, given: float, bought: float, spend: float, curve: SpendCurve) -> str:
    """Why a volume is refused beside a spend curve, and the spend that would buy it (under 200 characters)."""
    unit = {"leads_per_month": 1.0, "leads_per_week": 7 / DAYS_PER_MONTH, "leads_per_day": 1 / DAYS_PER_MONTH}[key]
    if given < curve.max_leads_per_month:
        aim = f"to buy {given:,.1f} a month, spend {curve.spend(given):,.0f}"
    else:
        aim = f"the curve saturates at max_leads_per_month = {curve.max_leads_per_month:,.6g}"
    return (
        f"{key} = {given * unit:,.6g} beside a spend curve: the volume is what spend_per_month = {spend:,.6g} "
        f"buys, {bought:,.1f} a month; leave {key} out ({aim})"
    )


class Source(_Model):
    """A channel that brings leads: inbound, outbound, partner, events..."""

    leads_per_month: NonNegative | None = Field(
        None, description="Mean leads per month (give exactly one volume, or none with a spend curve)."
    )
    leads_per_week: NonNegative | None = Field(None, description="Mean leads per week.")
    leads_per_day: NonNegative | None = Field(None, description="Mean leads per day.")
    seasonality: Annotated[list[NonNegative], Field(min_length=12, max_length=12)] = Field(
        default_factory=lambda: [1.0] * 12,
        description="Multiplier on volume for each calendar month, January first.",
    )
    cost_per_lead: NonNegative = Field(
        0.0,
        description="Marketing cost of one lead, in currency. With a spend curve (spend_per_month and "
        "max_leads_per_month): the cost of the first leads, the curve's slope at zero spend (> 0).",
    )
    spend_per_month: NonNegative | None = Field(
        None,
        description="Today's marketing spend on the channel a month, in currency; with max_leads_per_month it puts "
        "the channel on a saturation curve, leads = max_leads_per_month * (1 - exp(-spend / (cost_per_lead * "
        "max_leads_per_month))) a month, and that is its volume: give no leads_per_* beside it (docs/model.md, "
        "section 20). None: leads cost cost_per_lead each, whatever the volume.",
    )
    max_leads_per_month: Positive | None = Field(
        None,
        description="Leads a month the channel saturates at, whatever the spend (its audience); needs spend_per_month.",
    )
    persona_mix: dict[str, Probability] = Field(description="Share of leads per persona; sums to 1.")
    fit: UnitDist = Field(description="Lead fit with the ideal customer profile, in [0, 1].")
    initial_engagement: UnitDist = Field(
        default_factory=lambda: Fixed(value=0.0), description="Engagement when the lead arrives, in [0, 1]."
    )
    entry_stage: Literal["lead", "mql"] = Field(
        "lead", description="'lead' enters nurture; 'mql' goes straight to sales (demo requests, referrals)."
    )
    qualified_by: Literal["score", "source"] = Field(
        "score",
        description="How sales qualifies a lead of this source it has reached. 'score': sales' SQL rule "
        "(qualification.sql) and a buying need. 'source': sales accepts a reached lead from this source that "
        "has a buying need, whatever its scores — partner referrals and demo requests, as CRMs qualify them by "
        "lead source. It still has to be followed up and reached, and with entry_stage = 'lead' marketing's "
        "MQL bar still decides when it is handed over.",
    )
    month_multipliers: dict[str, NonNegative] = Field(
        default_factory=dict,
        description="Multiplier on volume for given months, keyed YYYY-MM (e.g. 2027-03 = 1.5), on top of "
        "seasonality; a month not listed is 1. A campaign burst, or a plan's lead quota month by month.",
    )

    @model_validator(mode="after")
    def _one_volume(self) -> Source:
        given = [name for name in VOLUME_KEYS if getattr(self, name) is not None]
        if len(given) != 1:
            if not given and self.spend_per_month is not None:
                return self  # the spend curve gives the volume (_spend_curve checks the curve)
            raise ValueError(f"give exactly one of {', '.join(VOLUME_KEYS)}; got {' and '.join(given) or 'none'}")
        return self

    @model_validator(mode="after")
    def _spend_curve(self) -> Source:
        """A spend curve needs its three numbers, and no volume beside it: the spend sets the volume."""
        if self.spend_per_month is None and self.max_leads_per_month is None:
            return self
        if self.spend_per_month is None or self.max_leads_per_month is None:
            missing = "spend_per_month" if self.spend_per_month is None else "max_leads_per_month"
            raise ValueError(f"a spend curve needs spend_per_month and max_leads_per_month; {missing} is missing")
        if self.cost_per_lead <= 0:
            raise ValueError("cost_per_lead must be > 0 with a spend curve: it is the cost of the first leads")
        curve = SpendCurve(self.cost_per_lead, self.max_leads_per_month)  # refuses a curve out of float range
        key = self.volume_key
        if key != "spend_per_month":  # one number sets the volume, so that editing the spend moves it
            given = self.leads_per_day_mean * DAYS_PER_MONTH
            raise ValueError(
                _beside_the_curve(key, given, curve.leads(self.spend_per_month), self.spend_per_month, curve)
            )
        return self

    @field_validator("month_multipliers")
    @classmethod
    def _months_are_dates(cls, months: dict[str, float]) -> dict[str, float]:
        for key in months:
            try:
                valid = len(key) == 7 and dt.date.fromisoformat(f"{key}-01") is not None
            except ValueError:
                valid = False
            if not valid:
                raise ValueError(f"month keys are YYYY-MM, e.g. 2027-03; got {key!r}")
        return months

    @field_validator("persona_mix")
    @classmethod
    def _sums_to_one(cls, mix: dict[str, float]) -> dict[str, float]:
        if not mix:
            raise ValueError("needs at least one persona")
        if abs(sum(mix.values()) - 1) > 1e-6:
            raise ValueError(f"shares must sum to 1, got {sum(mix.values()):g}")
        return mix

    @model_serializer(mode="wrap")
    def _without_absent_curve(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The source as data; a source without a spend curve leaves its keys out, so that its resolved
        scenario (manifests, hashes) reads as it did before spend curves existed."""
        data: dict[str, Any] = handler(self)
        for key in SPEND_KEYS:
            if data.get(key) is None:
                data.pop(key, None)
        return data

    @property
    def curve(self) -> SpendCurve | None:
        """The channel's spend curve, or ``None`` for a source whose leads cost ``cost_per_lead`` each."""
        if self.spend_per_month is None or self.max_leads_per_month is None:
            return None
        return SpendCurve(self.cost_per_lead, self.max_leads_per_month)

    @property
    def average_cost_per_lead(self) -> float:
        """What one lead costs on average: ``cost_per_lead``, or ``spend / leads`` on the spend curve."""
        curve = self.curve
        if curve is None or self.spend_per_month is None:
            return self.cost_per_lead
        return curve.average_cost(self.spend_per_month)

    @property
    def volume_key(self) -> str:
        """The key that sets the volume: the volume key given, or ``spend_per_month`` when the curve gives it."""
        return next((name for name in VOLUME_KEYS if getattr(self, name) is not None), "spend_per_month")

    @property
    def leads_per_day_mean(self) -> float:
        """Volume before seasonality, converted to leads per day (with a spend curve and no volume given,
        what ``spend_per_month`` buys on the curve)."""
        if self.leads_per_day is not None:
            return self.leads_per_day
        if self.leads_per_week is not None:
            return self.leads_per_week / 7
        if self.leads_per_month is not None:
            return self.leads_per_month / DAYS_PER_MONTH
        curve = self.curve
        assert curve is not None and self.spend_per_month is not None  # _one_volume and _spend_curve
        return curve.leads(self.spend_per_month) / DAYS_PER_MONTH

    def volume_factor(self, year: int, month: int) -> float:
        """Multiplier on volume in calendar month ``month`` (1-12) of ``year``: seasonality x month multiplier."""
        return self.seasonality[month - 1] * self.month_multipliers.get(f"{year:04d}-{month:02d}", 1.0)


class Nurture(_Model):
    """Marketing touches a lead over time; engagement rises with touches and decays between them.

    After a touch: ``e <- e + touch_lift * response * (1 - e)``; between touches
    ``e`` decays with half-life ``engagement_half_life_days``.
    """

    touch_interval_days: NonNegativeDist = Field(description="Time between two nurture touches, days.")
    touch_lift: Probability = Field(description="Share of the gap to full engagement closed by one touch.")
    engagement_half_life_days: Positive = Field(description="Half-life of engagement without touches, days.")
    max_nurture_days: Positive = Field(description="A lead not MQL after this long goes dormant, days.")

    @field_validator("touch_interval_days")
    @classmethod
    def _time_moves(cls, spec: Any) -> Any:
        # Touches that take no time would never bring a lead to dormancy.
        if spec.mean <= 0:
            raise ValueError(f"the mean interval between touches must be > 0, got {spec.mean:g}")
        return spec


class ScoringRule(_Model):
    """score = fit_weight * fit + engagement_weight * engagement; qualified when score >= threshold."""

    fit_weight: NonNegative
    engagement_weight: NonNegative
    threshold: Probability

    @model_validator(mode="after")
    def _weights(self) -> ScoringRule:
        if abs(self.fit_weight + self.engagement_weight - 1) > 1e-6:
            raise ValueError(
                f"fit_weight + engagement_weight must be 1, got {self.fit_weight + self.engagement_weight:g}"
            )
        return self


class Qualification(_Model):
    """Marketing's MQL bar and sales' SQL bar; one shared rule is what alignment looks like."""

    mql: ScoringRule
    sql: ScoringRule


class SpeedToLead(_Model):
    """The odds of reaching and qualifying a lead fall with response delay.

    ``P(contact | d) = o(d) / (1 + o(d))`` with ``o(d) = o0 * m(d)``, ``o0`` the odds
    for an immediate response and ``m`` interpolated log-linearly between knots.
    A scenario gives this table, or a preset's name instead: `speed_to_lead = "published"`
    (or "conservative", "none"; docs/model.md section 7).
    """

    contact_rate_immediate: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)] = Field(
        description="Chance to reach and qualify a lead answered at once (strictly between 0 and 1)."
    )
    knots_hours: Annotated[list[NonNegative], Field(min_length=1)] = Field(
        description="Response delays (hours, increasing) where the odds multiplier is given."
    )
    odds_multiplier: Annotated[list[Positive], Field(min_length=1)] = Field(
        description="Odds relative to an immediate answer at each knot; flat after the last knot."
    )

    @field_validator("knots_hours")
    @classmethod
    def _increasing(cls, knots: list[float]) -> list[float]:
        if any(b <= a for a, b in itertools.pairwise(knots)):
            raise ValueError(f"must be strictly increasing, got {[float(k) for k in knots]}")
        return knots

    @model_validator(mode="after")
    def _same_length(self) -> SpeedToLead:
        if len(self.knots_hours) != len(self.odds_multiplier):
            raise ValueError(
                "knots_hours and odds_multiplier must have the same length, "
                f"got {len(self.knots_hours)} and {len(self.odds_multiplier)}"
            )
        return self


_HOUR = 1 / 60
_PRESET_KNOTS = [0.0, 5 * _HOUR, 15 * _HOUR, 0.5, 1.0, 2.0, 24.0]
SPEED_TO_LEAD_PRESETS: dict[str, dict[str, Any]] = {
    # Measured from simulated outcomes on the baseline's mix (experiments/speed_to_lead,
    # tests/validation/test_speed_to_lead.py): 5 vs 30 minutes, odds of qualifying 21x
    # (Oldroyd, MIT/InsideSales 2007); first vs second hour 7x as likely, first hour vs
    # 24 h+ 60x (Oldroyd, McElheran & Elkington, HBR 2011).
    "published": {
        "contact_rate_immediate": 0.97,
        "knots_hours": _PRESET_KNOTS,
        "odds_multiplier": [1.0, 1.0, 0.008, 0.0015, 0.00122, 0.001, 0.000125],
    },
    # Half the published effect on the log scale (each ratio its square root: 4.6x, 2.6x,
    # 7.7x), for planners who read the studies' firm-level correlations as partly
    # selection: the firms that answer fast are also better at selling.
    "conservative": {
        "contact_rate_immediate": 0.97,
        "knots_hours": _PRESET_KNOTS,
        "odds_multiplier": [1.0, 1.0, 0.063, 0.008, 0.0066, 0.0054, 0.0018],
    },
    # No effect: the delay changes nothing (to see what speed to lead is worth).
    "none": {"contact_rate_immediate": 0.97, "knots_hours": [0.0], "odds_multiplier": [1.0]},
}
"""Named speed-to-lead curves: ``speed_to_lead = "published"`` in a scenario's ``[handoff]``."""


def _speed_preset(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if value not in SPEED_TO_LEAD_PRESETS:
        raise ValueError(
            f"unknown preset {value!r}; choose one of {', '.join(SPEED_TO_LEAD_PRESETS)} or give the curve"
        )
    return dict(SPEED_TO_LEAD_PRESETS[value])


class Hire(_Model):
    date: dt.date
    count: Annotated[int, Field(ge=1)]


class SDRTeam(_Model):
    """Sales development reps: a resource with `count` servers, one lead at a time each."""

    count: Annotated[int, Field(ge=1)] = Field(description="Number of SDRs at the start (fully ramped).")
    work_days: NonNegativeDist = Field(description="SDR effort to work one MQL (calls, emails), days.")
    patience_days: NonNegativeDist | None = Field(
        None, description="How long an MQL waits in the SDR queue before going cold; none = forever."
    )
    cost_per_year: NonNegative = Field(0.0, description="Fully loaded cost of one SDR per year.")
    hires: list[Hire] = Field(default_factory=list, description="New SDRs joining on given dates.")
    ramp: Annotated[list[Probability], Field(min_length=1)] = Field(
        default_factory=lambda: [1.0],
        description="Productivity of a new SDR in each month after joining; the last value holds after. "
        "An SDR works one lead at a time: from 0.5 on, it takes leads.",
    )
    attrition_per_year: NonNegative = Field(0.0, description="Share of SDRs leaving per year (exponential tenure).")
    backfill_days: NonNegative | None = Field(
        None, description="A leaver is replaced by a new SDR after this many days; none = not replaced."
    )


class Handoff(_Model):
    """From marketing to sales: follow-up, response delay, SDR qualification."""

    follow_up_rate: UncertainProbability = Field(description="Share of MQLs sales works at all." + _UNCERTAIN_NOTE)
    response_delay_days: NonNegativeDist = Field(description="Time before an SDR picks up a new MQL, days.")
    speed_to_lead: Annotated[SpeedToLead, BeforeValidator(_speed_preset)] = Field(
        description="The contact curve, or a preset's name: 'published' (21x, 7x, 60x from the studies), "
        "'conservative' (half the effect on the log scale) or 'none'."
    )
    sdr: SDRTeam


class Recycling(_Model):
    """Leads sales rejects or never reaches go back to nurture, or are dropped."""

    probability: UncertainProbability = Field(
        0.0, description="Chance a rejected lead is recycled to nurture." + _UNCERTAIN_NOTE
    )
    max_times: Count = Field(0, description="A lead is recycled at most this many times.")
    engagement_kept: Probability = Field(0.5, description="Share of engagement a recycled lead keeps.")


class AETeam(_Model):
    """Account executives: each holds at most `max_open_opportunities` deals at once."""

    count: Count = Field(description="AEs on staff at the start (fully ramped).")
    max_open_opportunities: Annotated[int, Field(ge=1)] = Field(description="Open deals one ramped AE can work.")
    hires: list[Hire] = Field(default_factory=list, description="New AEs joining on given dates.")
    ramp: Annotated[list[Probability], Field(min_length=1)] = Field(
        default_factory=lambda: [1.0],
        description="Productivity of a new hire in each month after joining; the last value holds after.",
    )
    attrition_per_year: NonNegative = Field(0.0, description="Share of AEs leaving per year (exponential tenure).")
    backfill_days: NonNegative | None = Field(
        None, description="A leaver is replaced by a new hire after this many days; none = not replaced."
    )
    cost_per_year: NonNegative = Field(0.0, description="Fully loaded cost of one AE per year.")


class Sales(_Model):
    """Account executives turn SQLs into opportunities and opportunities into revenue."""

    opportunity_rate: UncertainProbability = Field(
        description="Share of SQLs an AE accepts as an opportunity." + _UNCERTAIN_NOTE
    )
    win_rate: UncertainProbability = Field(
        description="Win probability of an opportunity with fit 0.5." + _UNCERTAIN_NOTE
    )
    fit_effect: FiniteFloat = Field(0.0, description="Change in log-odds of winning per unit of fit above 0.5.")
    cycle_days: NonNegativeDist = Field(description="Time from opportunity to close, days.")
    deal_size: NonNegativeDist = Field(description="Revenue of a won deal, in currency.")
    deal_size_by_persona: dict[str, NonNegativeDist] = Field(
        default_factory=dict, description="Deal size for named personas, overriding deal_size."
    )
    queue: Literal["fifo", "score"] = Field("fifo", description="Order in which waiting SQLs get an AE.")
    patience_days: NonNegativeDist | None = Field(
        None, description="How long an SQL waits for a free AE before going cold; none = forever."
    )
    ae: AETeam


class Prospecting(_Model):
    """AEs with free capacity source their own opportunities (outbound).

    Rate per AE = ``opportunities_per_ae_per_month * productivity * free_share``:
    a rep whose slots are full stops prospecting.
    """

    opportunities_per_ae_per_month: NonNegative = Field(0.0, description="Self-sourced opportunities of an idle AE.")
    fit: UnitDist = Field(
        default_factory=lambda: Fixed(value=0.5), description="Fit of prospected accounts, in [0, 1]."
    )
    persona: str = Field("buyer", description="Persona of prospected contacts (for deal size).")


class OpenDeal(_Model):
    """An opportunity already open on ``start_date``: one row of the initial pipeline."""

    id: str | None = Field(None, description="The deal's id in the CRM (for reference only).")
    age_days: NonNegative = Field(description="Days the opportunity has been open on start_date.")
    deal_size: NonNegative | None = Field(
        None, description="Amount of the deal; none = drawn from sales.deal_size (or deal_size_by_persona)."
    )
    fit: Probability | None = Field(None, description="Fit of the account; none = drawn from prospecting.fit.")
    persona: str = Field("buyer", description="Persona of the buyer (a key of personas).")
    owner: str | None = Field(None, description="The CRM rep who owns it: deals of one owner are held by one AE.")


class InitialPipeline(_Model):
    """Opportunities already open on ``start_date``, so a run starts from today's pipeline.

    Each one holds a slot of a starting AE from day 0 and closes after the time still
    to go of a cycle that has lasted ``age_days`` already (``cycle_days`` given
    ``> age_days``); it is won with the usual win probability of its fit. Give the
    deals in a CSV ``file`` or inline as ``opportunities``, not both.
    """

    file: str | None = Field(
        None,
        description=(
            "CSV of open deals (columns age_days, and optionally id, deal_size, fit, persona, owner), "
            "relative to the scenario file; read when the scenario is loaded."
        ),
    )
    opportunities: list[OpenDeal] = Field(
        default_factory=list, description="The open deals inline (once loaded, also the rows read from file)."
    )

    @model_validator(mode="after")
    def _one_form(self) -> InitialPipeline:
        if self.file is not None and self.opportunities:
            raise ValueError("give either file or opportunities, not both")
        return self


class Scenario(_Model):
    """One organisation's funnel: what comes in, how it is nurtured, qualified and sold."""

    name: str = Field("scenario", description="Label used in outputs.")
    description: str = Field("", description="Free text for readers.")
    start_date: dt.date = Field(description="Day 0 of the simulation.")
    horizon_days: Positive = Field(description="Length of the simulated period, days.")
    currency: str = Field("USD", description="Currency of all amounts.")
    seed: Count | None = Field(None, description="Default random seed.")
    prior_year_revenue: Positive | None = Field(
        None,
        description="Revenue won in the year before start_date; with it, results report year-over-year growth.",
    )
    personas: dict[str, Persona] = Field(description="Contact types; referenced by sources and sales.")
    sources: dict[str, Source] = Field(description="Lead channels.")
    nurture: Nurture
    qualification: Qualification
    handoff: Handoff
    recycling: Recycling = Field(default_factory=Recycling)
    sales: Sales
    prospecting: Prospecting = Field(default_factory=Prospecting)
    initial_pipeline: InitialPipeline | None = Field(
        None, description='Opportunities already open on start_date (read with start = "pipeline").'
    )
    start: Literal["warm", "cold", "pipeline"] | None = Field(
        None,
        description=(
            "How the funnel looks on start_date. warm: as it would after running at this scenario's own rates "
            "long enough to be steady (a burn-in before start_date that is simulated, not reported); cold: empty "
            "(no leads in nurture, no open deals, idle reps); pipeline: the open deals of initial_pipeline, and "
            "marketing and the SDRs warm as in a warm start (a burn-in whose hand-offs to sales are the CRM's "
            "history, not simulated deals; burn_in_days = 0: marketing starts empty too). "
            "Default: pipeline when there is an initial_pipeline, else warm."
        ),
    )
    burn_in_days: NonNegative | None = Field(
        None,
        description=(
            "Days simulated before start_date for a warm or pipeline start; none = chosen per scenario by the "
            "MSER-5 test on a pilot run (see docs/model.md, Warm start)."
        ),
    )

    @model_validator(mode="after")
    def _ends_in_the_calendar(self) -> Scenario:
        # Python dates end in 9999: a horizon past that is a typo, caught here and not as an OverflowError later.
        last = (dt.date.max - self.start_date).days
        if self.horizon_days > last:
            raise ValueError(
                f"horizon_days = {self.horizon_days:g} runs past the year 9999 from start_date {self.start_date}; "
                f"at most {last:,} days"
            )
        return self

    @model_validator(mode="after")
    def _start_matches_pipeline(self) -> Scenario:
        if self.start == "pipeline" and self.initial_pipeline is None:
            raise ValueError("start = 'pipeline' needs an initial_pipeline (the deals open on start_date)")
        if self.start in ("warm", "cold") and self.initial_pipeline is not None:
            raise ValueError(
                f"start = {self.start!r} does not read initial_pipeline: use start = 'pipeline' or remove the pipeline"
            )
        if self.burn_in_days is not None and not self.burns_in:
            raise ValueError(f"burn_in_days is for a warm or pipeline start; this scenario starts {self.start_mode}")
        return self

    @property
    def start_mode(self) -> Literal["warm", "cold", "pipeline"]:
        """``start``, or its default: ``"pipeline"`` with an initial pipeline, else ``"warm"``."""
        if self.start is not None:
            return self.start
        return "pipeline" if self.initial_pipeline is not None else "warm"

    @property
    def burns_in(self) -> bool:
        """True if the run starts after a burn-in: a warm start, or a pipeline start (warm marketing)."""
        return self.start_mode in ("warm", "pipeline")

    @property
    def open_deals(self) -> list[OpenDeal]:
        """The deals of the initial pipeline (empty without one)."""
        return [] if self.initial_pipeline is None else self.initial_pipeline.opportunities

    @property
    def end_date(self) -> dt.date:
        return self.start_date + dt.timedelta(days=self.horizon_days)

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved scenario as plain JSON-able data (defaults filled in)."""
        return self.model_dump(mode="json", by_alias=True)

    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def uncertain_parameters(self) -> dict[str, Spec]:
        """The rates given as distributions, by dotted path (drawn once per replication)."""
        found = {}
        for path in UNCERTAIN_PARAMETERS:
            section, key = path.split(".")
            value = getattr(getattr(self, section), key)
            if isinstance(value, Spec):
                found[path] = value
        return found

    def with_parameters(self, values: dict[str, float]) -> Scenario:
        """A copy with the given dotted paths set to fixed numbers."""
        updates: dict[str, dict[str, float]] = {}
        for path, value in values.items():
            section, key = path.split(".")
            updates.setdefault(section, {})[key] = value
        return self.model_copy(
            update={section: getattr(self, section).model_copy(update=keys) for section, keys in updates.items()}
        )


# Rates that may be given as a distribution (see UncertainProbability).
UNCERTAIN_PARAMETERS = ("handoff.follow_up_rate", "recycling.probability", "sales.opportunity_rate", "sales.win_rate")


def rate(value: float | Spec) -> float:
    """A rate's value: the number itself, or its distribution's mean."""
    return value.mean if isinstance(value, Spec) else float(value)


def draw_parameters(
    scenario: Scenario, rng_for: typing.Callable[[str], np.random.Generator]
) -> tuple[Scenario, dict[str, float]]:
    """Draw every uncertain rate once (one stream per path); return the fixed scenario and the draws."""
    drawn = {path: float(spec.sample(rng_for(path), 1)[0]) for path, spec in scenario.uncertain_parameters().items()}
    return (scenario.with_parameters(drawn) if drawn else scenario), drawn
