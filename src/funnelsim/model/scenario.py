"""What a scenario is: one organisation's funnel as a validated, frozen pydantic model.

A scenario is a TOML file (read by :mod:`funnelsim.model.loading`, edited by dotted
paths with :mod:`funnelsim.model.paths`); every key is checked here with its unit and
allowed range, unknown keys are refused.

Units are in the names: ``*_days`` are days, ``*_per_month`` counts per calendar
month (converted to per day on load as ``x * 12 / 365.25``), money is in the
scenario's ``currency``. Probabilities are shares in [0, 1].
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
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
    PrivateAttr,
    SerializerFunctionWrapHandler,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from funnelsim.model.distributions import Bundle, DealSize, Fixed, NonNegativeDist, Spec, UnitDist
from funnelsim.model.spend import SpendCurve
from funnelsim.model.subscription import Subscription
from funnelsim.model.workcal import TimeZone, WorkingCalendar, WorkingHours

__all__ = [
    "DAYS_PER_MONTH",
    "NOT_PER_SEGMENT",
    "PIPELINE_SOURCE",
    "QUOTA_KEYS",
    "SPEED_TO_LEAD_PRESETS",
    "UNCERTAIN_PARAMETERS",
    "AETeam",
    "Attach",
    "FieldProblems",
    "Forecast",
    "InitialPipeline",
    "OpenDeal",
    "Product",
    "Scenario",
    "ScenarioError",
    "Segment",
    "draw_parameters",
    "merge_tables",
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

# A key that a scenario file only has when it uses the feature: left out of Scenario.to_dict
# (so manifests, hashes and the keys studies walk) while it holds its default, so a scenario
# written before the feature existed reads, runs and reports exactly as before.
OMIT_DEFAULT: dict[str, Any] = {"omit_default": True}


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


class FieldProblems(ValueError):
    """Problems a validator found at paths below the table it checks, for the loader to report one by one.

    ``problems`` holds ``(path, message)`` pairs, each path relative to that table;
    ``nested`` holds ``(path, error)`` pairs, the validation error of a whole scenario built
    at that path (a segment's view, :meth:`Scenario.segment_view`), whose own paths follow.
    :mod:`funnelsim.model.loading` turns both into lines of one :class:`ScenarioError`.
    """

    def __init__(
        self, problems: list[tuple[str, str]], nested: list[tuple[str, ValidationError]] | None = None
    ) -> None:
        self.problems = problems
        self.nested = nested or []
        lines = [f"{path}: {message}" if path else message for path, message in problems]
        for path, error in self.nested:
            lines += [f"{path}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()]
        super().__init__("; ".join(lines))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _month_keys(months: dict[str, float]) -> dict[str, float]:
    """``months`` if every key is a YYYY-MM month."""
    for key in months:
        try:
            valid = len(key) == 7 and dt.date.fromisoformat(f"{key}-01") is not None
        except ValueError:
            valid = False
        if not valid:
            raise ValueError(f"month keys are YYYY-MM, e.g. 2027-03; got {key!r}")
    return months


class Persona(_Model):
    """Who a contact is. Researchers and job seekers engage but never buy."""

    buying_intent: Probability = Field(description="Share of contacts of this persona with a real buying need.")
    engagement_response: NonNegative = Field(
        1.0, description="Multiplier on the engagement lift of each nurture touch (1 = average)."
    )


VOLUME_KEYS = ("leads_per_month", "leads_per_week", "leads_per_day")
"""A source's volume keys: exactly one is given, or none with a spend curve (the curve gives the volume)."""


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
        json_schema_extra=OMIT_DEFAULT,
        description="Today's marketing spend on the channel a month, in currency; with max_leads_per_month it puts "
        "the channel on a saturation curve, leads = max_leads_per_month * (1 - exp(-spend / (cost_per_lead * "
        "max_leads_per_month))) a month, and that is its volume: give no leads_per_* beside it (docs/model.md, "
        "section 24). None: leads cost cost_per_lead each, whatever the volume.",
    )
    max_leads_per_month: Positive | None = Field(
        None,
        description="Leads a month the channel saturates at, whatever the spend (its audience); needs spend_per_month.",
        json_schema_extra=OMIT_DEFAULT,
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
    segment_mix: dict[str, Probability] = Field(
        default_factory=dict,
        json_schema_extra=OMIT_DEFAULT,
        description="Share of this source's leads in each segment, keyed by segment name; sums to 1. Required when "
        "the scenario has segments, refused when it has none. Each segment gets a Poisson stream of volume x share.",
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
        return _month_keys(months)

    @field_validator("persona_mix")
    @classmethod
    def _sums_to_one(cls, mix: dict[str, float]) -> dict[str, float]:
        if not mix:
            raise ValueError("needs at least one persona")
        if abs(sum(mix.values()) - 1) > 1e-6:
            raise ValueError(f"shares must sum to 1, got {sum(mix.values()):g}")
        return mix

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
    max_nurture_days: Positive = Field(
        title="Longest nurture before a lead goes dormant",
        description="A lead not MQL after this long goes dormant, days.",
    )

    @field_validator("touch_interval_days")
    @classmethod
    def _time_moves(cls, spec: Any) -> Any:
        # Touches that take no time would never bring a lead to dormancy.
        if spec.mean <= 0:
            raise ValueError(f"the mean interval between touches must be > 0, got {spec.mean:g}")
        return spec


class ScoringRule(_Model):
    """score = fit_weight * fit + engagement_weight * engagement; qualified when score >= threshold."""

    fit_weight: NonNegative = Field(description="Weight of the lead's fit in the score.")
    engagement_weight: NonNegative = Field(description="Weight of the lead's engagement in the score.")
    threshold: Probability = Field(
        title="Score a lead needs to qualify", description="A lead qualifies when its score is at least this."
    )

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
    working_hours: WorkingHours | None = Field(
        None,
        description="Local hours the SDRs work, '09:00-17:00' (or spans '08:00-12:00,13:00-17:00'), on the "
        "calendar's business days: they start MQLs only then and their work_days count working time. "
        "Needs a [calendar]; none = around the clock.",
        json_schema_extra=OMIT_DEFAULT,
    )
    time_zone: TimeZone | None = Field(
        None,
        description="IANA time zone of the SDR team if not the calendar's (its working_hours are local there).",
        json_schema_extra=OMIT_DEFAULT,
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
    response_clock: Literal["calendar", "working"] = Field(
        "calendar",
        description="What response_delay_days counts. 'calendar': elapsed time, nights and weekends included (a "
        "delay measured from CRM timestamps). 'working': the SDR team's working time (sdr.working_hours), so a "
        "lead arriving on Friday night with a 5-minute delay is picked up on Monday at opening + 5 minutes.",
        json_schema_extra=OMIT_DEFAULT,
    )
    speed_to_lead_clock: Literal["calendar", "working"] = Field(
        "calendar",
        description="The delay the speed-to-lead curve reads. 'calendar': the buyer's elapsed time since the MQL "
        "(interest fades in real time, and the studies measured elapsed time). 'working': the SDR team's working "
        "time since the MQL (a buyer who wrote at night expects no answer before the morning).",
        json_schema_extra=OMIT_DEFAULT,
    )


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
        None,
        title="Days before a leaving AE is replaced",
        description="A leaver is replaced by a new hire after this many days; none = not replaced.",
    )
    cost_per_year: NonNegative = Field(0.0, description="Fully loaded cost of one AE per year.")
    working_hours: WorkingHours | None = Field(
        None,
        description="Local hours the AEs work, '09:00-17:00', on the calendar's business days: an SQL reaches an "
        "AE (opportunity or disqualification) only then; an SQL handed over after hours waits for the next "
        "opening. Cycles run in calendar time. Needs a [calendar]; none = around the clock.",
        json_schema_extra=OMIT_DEFAULT,
    )
    time_zone: TimeZone | None = Field(
        None,
        description="IANA time zone of the AE team if not the calendar's (its working_hours are local there).",
        json_schema_extra=OMIT_DEFAULT,
    )
    # Quotas and compensation (docs/model.md, "Quotas and compensation"): off unless quota_per_year is given.
    quota_per_year: Positive | None = Field(
        None,
        description="Bookings a fully ramped AE is asked to close per year, in currency; none = no quotas "
        "(no attainment outputs, no commission).",
    )
    quota_ramp: Annotated[list[Probability], Field(min_length=1)] | None = Field(
        None,
        description="Share of quota_per_year asked of a new hire in each month after joining; the last value "
        "holds after. None = the capacity ramp (ramp).",
    )
    ote_per_year: NonNegative | None = Field(
        None,
        description="On-target earnings of one AE per year, in currency: pay at 100% attainment. Its variable "
        "part is paid as commission on top of cost_per_year (which holds the fixed pay); none = no commission.",
    )
    variable_share: Probability = Field(
        0.5, description="Share of ote_per_year paid as commission at 100% attainment (50/50 is common)."
    )
    accelerator: Annotated[float, Field(ge=1, allow_inf_nan=False)] = Field(
        1.0, description="Multiplier on the commission rate for bookings above 100% of quota (1 = no accelerator)."
    )
    attainment_cap: Annotated[float, Field(ge=1, allow_inf_nan=False)] | None = Field(
        None,
        description="Attainment (share of quota, e.g. 2 = 200%) above which no more commission is paid; none = "
        "uncapped.",
    )

    @field_validator("quota_ramp", "ote_per_year")
    @classmethod
    def _needs_a_quota(cls, value: Any, info: ValidationInfo) -> Any:
        # info.data lacks quota_per_year only when it was invalid itself (reported there).
        if value is not None and "quota_per_year" in info.data and info.data["quota_per_year"] is None:
            raise ValueError("needs quota_per_year (the quota of a ramped AE)")
        return value

    @field_validator("variable_share", "accelerator", "attainment_cap")
    @classmethod
    def _needs_ote(cls, value: Any, info: ValidationInfo) -> Any:
        if "ote_per_year" in info.data and info.data["ote_per_year"] is None:
            raise ValueError("shapes commission, which needs ote_per_year (and quota_per_year)")
        return value

    @model_serializer(mode="wrap")
    def _without_quotas_when_off(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A scenario without quotas dumps (and hashes) exactly as before quotas existed.
        # Keys that would do nothing are left out too, so that the dump loads back.
        data: dict[str, Any] = handler(self)
        unused = QUOTA_KEYS if self.quota_per_year is None else QUOTA_KEYS[3:] if self.ote_per_year is None else ()
        for name in unused:
            data.pop(name, None)
        return data

    @property
    def has_quota(self) -> bool:
        """True when AEs carry a quota (``quota_per_year`` is given)."""
        return self.quota_per_year is not None

    @property
    def quota_shares(self) -> list[float]:
        """Share of quota by month of tenure: ``quota_ramp``, or the capacity ``ramp``."""
        return list(self.ramp if self.quota_ramp is None else self.quota_ramp)


QUOTA_KEYS = ("quota_per_year", "quota_ramp", "ote_per_year", "variable_share", "accelerator", "attainment_cap")
"""The keys of :class:`AETeam` for quotas and compensation (left out of its dump when there is no quota; the
last three, which shape commission, when there is no ``ote_per_year``)."""


class Product(_Model):
    """One line of the price list: a product a deal may include, and the price of one unit."""

    price: NonNegative = Field(
        description="Price of one unit, in currency (for a subscription, per year: a deal's ARR)."
    )
    description: str = Field("", description="Free text for readers.")


class Attach(_Model):
    """How often a won deal includes a product of the price list, and how many units of it."""

    attach: Probability = Field(description="Probability that a deal includes this product (its attach rate).")
    quantity: NonNegativeDist = Field(
        default_factory=lambda: Fixed(value=1.0),
        description="Units of the product in a deal that includes it (seats, licences, modules); may be a "
        'distribution, e.g. {dist = "empirical", values = [5, 10, 25]}.',
    )


class Sales(_Model):
    """Account executives turn SQLs into opportunities and opportunities into revenue.

    A deal's value is ``deal_size``, or, with ``products``, built from the price list:
    ``sum over products of Bernoulli(attach) x price x quantity`` (a deal that includes
    nothing is worth 0; give the core product ``attach = 1``).
    """

    opportunity_rate: UncertainProbability = Field(
        description="Share of SQLs an AE accepts as an opportunity." + _UNCERTAIN_NOTE
    )
    win_rate: UncertainProbability = Field(
        description="Win probability of an opportunity with fit 0.5." + _UNCERTAIN_NOTE
    )
    fit_effect: FiniteFloat = Field(0.0, description="Change in log-odds of winning per unit of fit above 0.5.")
    cycle_days: NonNegativeDist = Field(description="Time from opportunity to close, days.")
    deal_size: DealSize = Field(
        description="Revenue of a won deal, in currency. Leave it out when the deal is built from products."
    )
    deal_size_by_persona: dict[str, NonNegativeDist] = Field(
        default_factory=dict,
        title="Revenue of a won deal",
        description="Deal size for named personas, overriding deal_size.",
    )
    queue: Literal["fifo", "score"] = Field("fifo", description="Order in which waiting SQLs get an AE.")
    patience_days: NonNegativeDist | None = Field(
        None, description="How long an SQL waits for a free AE before going cold; none = forever."
    )
    ae: AETeam
    forecast_cycle_days: Positive | None = Field(
        None,
        json_schema_extra=OMIT_DEFAULT,
        description="Days from opening to the close date an AE forecasts for a new opportunity (pipeline views); "
        "none = the median of cycle_days.",
    )
    products: dict[str, Attach] = Field(
        default_factory=dict,
        json_schema_extra=OMIT_DEFAULT,
        description="Products a deal may include, keyed by their name in the price list (products), instead of "
        "deal_size: a won deal is worth the sum of price x quantity of the products it includes.",
    )

    @model_serializer(mode="wrap")
    def _without_built_deal_size(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A deal size built from the products is not written out: validation builds it again.
        data: dict[str, Any] = handler(self)
        if self.products:
            data.pop("deal_size", None)
        return data

    @model_validator(mode="after")
    def _deal_size_or_products(self) -> Sales:
        if self.products and not isinstance(self.deal_size, Bundle):
            raise FieldProblems(
                [("products", "give either deal_size or products (a deal built from the price list), not both")]
            )
        return self


class Forecast(_Model):
    """How sales forecasts: the bookings target, pushed close dates and forecast categories.

    With this section, ``funnelsim run --out`` writes the pipeline views (coverage,
    slippage, forecast categories; docs/model.md, "Pipeline views"). The target of a
    month is ``bookings_target_per_year * days in the month / 365.25`` unless
    ``bookings_target_by_month`` gives it.
    """

    bookings_target_per_year: Positive | None = Field(
        None,
        description="Bookings the company aims to close per year, in currency; none = the command's --goal "
        "(over the horizon), else prior_year_revenue.",
    )
    bookings_target_by_month: dict[str, NonNegative] = Field(
        default_factory=dict,
        description="Bookings target of given months, keyed YYYY-MM, in currency; overrides the yearly target's "
        "share for those months.",
    )
    coverage_period: Literal["month", "quarter", "year"] = Field(
        "quarter",
        description="Period whose remaining target the pipeline covers: at each month end, the target of the "
        "period holding the next day, less what it has booked so far.",
    )
    push_days: Positive = Field(
        DAYS_PER_MONTH,
        description="Days an AE pushes the forecast close date of a deal still open on it (a month).",
    )
    commit_probability: Probability = Field(
        0.6, description="A deal with at least this win probability is forecast as commit."
    )
    best_case_probability: Probability = Field(
        0.3,
        validate_default=True,  # checked against commit_probability also when only that is given
        description="A deal with at least this win probability (below commit) is best case; below: pipeline.",
    )

    @field_validator("bookings_target_by_month")
    @classmethod
    def _months_are_dates(cls, months: dict[str, float]) -> dict[str, float]:
        return _month_keys(months)

    @field_validator("best_case_probability")
    @classmethod
    def _bands_in_order(cls, value: float, info: ValidationInfo) -> float:
        commit = info.data.get("commit_probability")
        if commit is not None and value > commit:
            raise ValueError(f"must not exceed commit_probability ({commit:g}), got {value:g}")
        return value


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


NOT_PER_SEGMENT = ("initial_pipeline",)
"""Sections of a scenario a segment may not override (besides its keys that are not sections)."""


def segment_sections() -> list[str]:
    """The sections a segment may override: every table of a scenario (a pydantic model, or an optional
    one) but those of :data:`NOT_PER_SEGMENT`, read from :class:`Scenario`'s fields, so a section added to
    the scenario can be overridden per segment without a change here."""
    out = []
    for name, field in Scenario.model_fields.items():
        annotation: Any = field.annotation
        members = [m for m in typing.get_args(annotation) if m is not type(None)] or [annotation]
        if name not in NOT_PER_SEGMENT and all(isinstance(m, type) and issubclass(m, BaseModel) for m in members):
            out.append(field.alias or name)
    return out


class Segment(_Model):
    """A kind of customer (SMB, mid-market, enterprise) with a funnel of its own after the sources.

    Each source sends a share of its leads to each segment (``sources.<name>.segment_mix``),
    and from there a segment is a scenario of its own: its own SDRs and AEs (territories:
    a lead is only ever worked by its segment's reps), qualification rules, cycle, win rate
    and deal size. A segment names only what differs from the top level: each of its
    tables (``[segments.<name>.sales]``, ``[segments.<name>.handoff.sdr]``, …) is merged
    key by key into the top-level section of that name; a distribution (a table with
    ``dist``), a list or a number replaces the value whole. Every top-level section may be
    overridden but ``initial_pipeline``; a team size not overridden is the top-level one,
    for each segment.
    """

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    description: str = Field("", description="Free text for readers (e.g. 'more than 1,000 employees').")

    @model_validator(mode="after")
    def _overrides_are_sections(self) -> Segment:
        sections = segment_sections()
        problems = []
        for key, value in self.overrides().items():
            if key not in sections:
                hint = difflib.get_close_matches(key, sections, n=1)
                problems.append(
                    (
                        key,
                        f"unknown key '{key}'"
                        + (f" (did you mean '{hint[0]}'?)" if hint else f"; a segment overrides {', '.join(sections)}"),
                    )
                )
            elif not isinstance(value, dict):
                problems.append((key, f"must be a table of [{key}] keys to override, got {value!r}"))
        if problems:
            raise FieldProblems(problems)
        return self

    def overrides(self) -> dict[str, Any]:
        """The segment's tables by section name, as written (merged into the top level by
        :meth:`Scenario.segment_view`)."""
        return dict(self.model_extra or {})


def merge_tables(base: Any, override: Any) -> Any:
    """``override`` merged into ``base``, key by key through nested tables (a copy).

    A value that is not a table, and a distribution table (one with a ``dist`` key),
    replaces what ``base`` holds whole; so does any value where ``base`` has no table.
    """
    if not isinstance(base, dict) or not isinstance(override, dict) or "dist" in override:
        return copy.deepcopy(override)
    merged = dict(base)
    for key, value in override.items():
        merged[key] = merge_tables(base.get(key), value)
    return merged


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
    segments: dict[str, Segment] = Field(
        default_factory=dict,
        json_schema_extra=OMIT_DEFAULT,
        description="Customer segments (e.g. smb, mid_market, enterprise), each its own funnel after the sources "
        "with its own reps; none = one funnel.",
    )
    nurture: Nurture
    qualification: Qualification
    handoff: Handoff
    recycling: Recycling = Field(default_factory=Recycling)
    products: dict[str, Product] = Field(
        default_factory=dict,
        json_schema_extra=OMIT_DEFAULT,
        description="The price list: products a deal may include (sales.products says how often and how many).",
    )
    sales: Sales
    prospecting: Prospecting = Field(default_factory=Prospecting)
    initial_pipeline: InitialPipeline | None = Field(
        None, description='Opportunities already open on start_date (read with start = "pipeline").'
    )
    forecast: Forecast | None = Field(
        None,
        json_schema_extra=OMIT_DEFAULT,
        description="The bookings target and forecasting rules of the pipeline views (coverage, slippage, forecast "
        "categories); none = no pipeline views.",
    )
    subscription: Subscription | None = Field(
        None,
        description="Won deals are subscriptions: a deal's value is its ARR at signing, then renewal or churn at "
        "each term end, expansion and contraction (docs/model.md, section 22); none = one-off bookings.",
        json_schema_extra=OMIT_DEFAULT,
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
    calendar: WorkingCalendar | None = Field(
        None,
        description="Time zone, business days and holidays: with teams' working_hours, when SDRs and AEs work "
        "(docs/model.md, section 7a); none = every team works around the clock.",
        json_schema_extra=OMIT_DEFAULT,
    )

    @model_validator(mode="before")
    @classmethod
    def _deal_size_from_products(cls, data: Any) -> Any:
        """With ``sales.products``, the deal size is built from the price list (:func:`products_deal_size`)."""
        sales = data.get("sales") if isinstance(data, dict) else None
        if not isinstance(sales, dict):
            return data
        products = sales.get("products")
        if not isinstance(products, dict) or not products:
            return data
        given = sales.get("deal_size")
        if given is not None and not _is_built(given):
            return data  # both: Sales says so
        built = products_deal_size(data.get("products"), products)
        return {**data, "sales": {**sales, "deal_size": built}}

    @model_validator(mode="after")
    def _products_are_priced(self) -> Scenario:
        names = list(self.products)
        problems = []
        for name in self.sales.products:
            if name not in self.products:
                hint = difflib.get_close_matches(name, names, n=1)
                where = f"(did you mean {hint[0]!r}?)" if hint else f"; the price list has {', '.join(names) or 'none'}"
                problems.append((f"sales.products.{name}", f"unknown product {name!r} {where}".replace(" ;", ";")))
        if problems:
            raise FieldProblems(problems)
        return self

    @model_validator(mode="after")
    def _segments_fit(self) -> Scenario:
        problems = _segment_mix_problems(self)
        if not problems and self.segments and self.initial_pipeline is not None:
            problems.append(
                ("initial_pipeline", "an initial pipeline cannot be split into segments: remove one or the other")
            )
        if problems:
            raise FieldProblems(problems)
        nested = []
        for name in self.segments:
            try:
                Scenario.model_validate(self.segment_data(name))
            except ValidationError as exc:
                nested.append((f"segments.{name}", exc))
        if nested:
            raise FieldProblems([], nested)
        return self

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

    @model_validator(mode="after")
    def _hours_need_a_calendar(self) -> Scenario:
        teams = (("handoff.sdr", self.handoff.sdr), ("sales.ae", self.sales.ae))
        for where, team in teams:
            if team.working_hours is None and team.time_zone is not None:
                raise ValueError(f"{where}.time_zone is the zone of {where}.working_hours: give working_hours too")
            if team.working_hours is not None and self.calendar is None:
                raise ValueError(
                    f"{where}.working_hours needs a [calendar] section (at least its time_zone, e.g. "
                    "calendar.time_zone = 'Europe/Berlin')"
                )
        for key in ("response_clock", "speed_to_lead_clock"):
            if getattr(self.handoff, key) == "working" and self.handoff.sdr.working_hours is None:
                raise ValueError(
                    f"handoff.{key} = 'working' counts the SDR team's working time: give handoff.sdr.working_hours "
                    "(and a [calendar])"
                )
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

    _views: dict[str, Scenario] = PrivateAttr(default_factory=dict)

    @property
    def segment_names(self) -> list[str]:
        """The segments' names, in the order written (empty for an unsegmented scenario)."""
        return list(self.segments)

    def view_of(self, segment: str) -> Scenario:
        """The scenario as the leads and reps of ``segment`` see it: its :meth:`segment_view`
        (built once per scenario), or the scenario itself when it has no such segment (an
        unsegmented scenario's one segment, ``"all"``)."""
        if segment not in self.segments:
            return self
        view = self._views.get(segment)
        if view is None:
            view = self._views[segment] = self.segment_view(segment)
        return view

    def segment_view(self, name: str) -> Scenario:
        """Segment ``name`` as a plain scenario of its own (validated, no segments).

        Its sources are the scenario's, each at its volume times its share in this segment
        (``segment_mix``; sources with no share are left out, unless no source feeds the
        segment: then all stay, at volume 0, as a scenario needs one); its sections are the
        top level's with the segment's tables merged in (:func:`merge_tables`).
        """
        if name not in self.segments:
            raise KeyError(f"unknown segment {name!r}; defined: {', '.join(self.segments) or 'none'}")
        return Scenario.model_validate(self.segment_data(name))

    def segment_data(self, name: str) -> dict[str, Any]:
        """The data of :meth:`segment_view`, before validation."""
        data = self.to_dict()
        segment = data.pop("segments")[name]
        description = segment.pop("description", "")
        for section, table in segment.items():
            base = data.get(section)
            if section == "sales" and isinstance(base, dict) and isinstance(table, dict):
                # A deal's value comes from deal_size or products: the one a segment gives replaces the other.
                for given, inherited in (("products", "deal_size"), ("deal_size", "products")):
                    if given in table:
                        base = {key: value for key, value in base.items() if key != inherited}
            data[section] = merge_tables(base, table)
        shares = {source: self.sources[source].segment_mix.get(name, 0.0) for source in self.sources}
        fed = any(share > 0 for share in shares.values())
        sources = {}
        for source, raw in data["sources"].items():
            if shares[source] > 0 or not fed:
                for key in ("leads_per_month", "leads_per_week", "leads_per_day"):
                    if raw.get(key) is not None:
                        raw[key] = raw[key] * shares[source]
                raw.pop("segment_mix", None)
                sources[source] = raw
        data["sources"] = sources
        data["name"] = f"{self.name}.{name}"
        data["description"] = description or self.description
        return data

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved scenario as plain JSON-able data (defaults filled in), but the keys of
        features a scenario does not use, which are left out while at their default (``OMIT_DEFAULT``)."""
        return _without_unused(self, self.model_dump(mode="json", by_alias=True))

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


def _is_built(deal_size: Any) -> bool:
    """Whether a deal size is one built from products (rebuilt, so a changed price list is taken up)."""
    return isinstance(deal_size, Bundle) or (isinstance(deal_size, dict) and deal_size.get("dist") == "products")


def products_deal_size(price_list: Any, products: dict[str, Any]) -> dict[str, Any]:
    """The ``products`` deal size of ``sales.products`` priced by the price list, as data.

    If a product is not priced or an entry is invalid the bundle is left empty: the
    fields' own checks (and :meth:`Scenario._products_are_priced`) report it.
    """
    items = []
    for name, raw in products.items():
        try:
            product = Product.model_validate(price_list[name])
            attach = Attach.model_validate(raw)
        except (ValidationError, KeyError, TypeError):
            return {"dist": "products", "items": []}
        items.append({"product": name, "price": product.price, "attach": attach.attach, "quantity": attach.quantity})
    return {"dist": "products", "items": items}


def _segment_mix_problems(scenario: Scenario) -> list[tuple[str, str]]:
    """Each source's ``segment_mix``: given exactly when there are segments, naming them, summing to 1."""
    names = list(scenario.segments)
    problems = []
    for source_name, source in scenario.sources.items():
        path = f"sources.{source_name}.segment_mix"
        mix = source.segment_mix
        if not names:
            if mix:
                problems.append((path, "the scenario has no segments: define [segments.<name>] or leave this out"))
            continue
        if not mix:
            problems.append((path, f"required when there are segments: the share of this source in {', '.join(names)}"))
            continue
        for segment in mix:
            if segment not in names:
                hint = difflib.get_close_matches(segment, names, n=1)
                problems.append(
                    (
                        f"{path}.{segment}",
                        f"unknown segment {segment!r}"
                        + (f" (did you mean {hint[0]!r}?)" if hint else f"; defined: {', '.join(names)}"),
                    )
                )
        if abs(sum(mix.values()) - 1) > 1e-6:
            problems.append((path, f"shares must sum to 1, got {sum(mix.values()):g}"))
    return problems


def _without_unused(model: BaseModel, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (the dump of ``model``) without the ``OMIT_DEFAULT`` keys that hold their default, at any depth."""
    for name, info in type(model).model_fields.items():
        key = info.alias or name
        value = getattr(model, name)
        extra = info.json_schema_extra
        if (
            isinstance(extra, dict)
            and extra.get("omit_default")
            and value == info.get_default(call_default_factory=True)
        ):
            data.pop(key, None)
        elif isinstance(value, BaseModel) and not isinstance(value, Spec):
            _without_unused(value, data[key])
        elif isinstance(value, dict):
            for k, item in value.items():
                if isinstance(item, BaseModel) and not isinstance(item, Spec):
                    _without_unused(item, data[key][k])
    return data


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
