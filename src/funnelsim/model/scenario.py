"""Scenario files: one organisation's funnel, validated and frozen.

A scenario is a TOML file. ``load_scenario(path)`` parses it, applies dotted
overrides (``--set sales.win_rate=0.3``), validates every key with pydantic and
returns a frozen :class:`Scenario`. Anything wrong is reported in ONE
:class:`ScenarioError` that lists every problem with its dotted path, e.g.::

    sales.win_rate: must be <= 1, got 1.4
    sources.inbound.persona_mix.buyr: unknown persona 'buyr' (did you mean 'buyer'?)

Units are in the names: ``*_days`` are days, ``*_per_month`` counts per calendar
month (converted to per day on load as ``x * 12 / 365.25``), money is in the
scenario's ``currency``. Probabilities are shares in [0, 1].
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import difflib
import hashlib
import io
import itertools
import json
import math
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from funnelsim.files import MB, UnreadableFile, read_text
from funnelsim.model.distributions import Fixed, NonNegativeDist, Spec, UnitDist

__all__ = [
    "DAYS_PER_MONTH",
    "PIPELINE_COLUMNS",
    "PIPELINE_SOURCE",
    "UNCERTAIN_PARAMETERS",
    "InitialPipeline",
    "OpenDeal",
    "Scenario",
    "ScenarioError",
    "apply_overrides",
    "draw_parameters",
    "load_scenario",
    "parse_scenario",
    "rate",
    "read_pipeline_csv",
    "set_paths",
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
_RATE_TAGS = ("number", "distribution")
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


class Source(_Model):
    """A channel that brings leads: inbound, outbound, partner, events..."""

    leads_per_month: NonNegative | None = Field(None, description="Mean leads per month (give exactly one volume).")
    leads_per_week: NonNegative | None = Field(None, description="Mean leads per week.")
    leads_per_day: NonNegative | None = Field(None, description="Mean leads per day.")
    seasonality: Annotated[list[NonNegative], Field(min_length=12, max_length=12)] = Field(
        default_factory=lambda: [1.0] * 12,
        description="Multiplier on volume for each calendar month, January first.",
    )
    cost_per_lead: NonNegative = Field(0.0, description="Marketing cost of one lead, in currency.")
    persona_mix: dict[str, Probability] = Field(description="Share of leads per persona; sums to 1.")
    fit: UnitDist = Field(description="Lead fit with the ideal customer profile, in [0, 1].")
    initial_engagement: UnitDist = Field(
        default_factory=lambda: Fixed(value=0.0), description="Engagement when the lead arrives, in [0, 1]."
    )
    entry_stage: Literal["lead", "mql"] = Field(
        "lead", description="'lead' enters nurture; 'mql' goes straight to sales (demo requests, referrals)."
    )

    @model_validator(mode="after")
    def _one_volume(self) -> Source:
        names = ("leads_per_month", "leads_per_week", "leads_per_day")
        given = [name for name in names if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(names)}; got {' and '.join(given) or 'none'}")
        return self

    @field_validator("persona_mix")
    @classmethod
    def _sums_to_one(cls, mix: dict[str, float]) -> dict[str, float]:
        if not mix:
            raise ValueError("needs at least one persona")
        if abs(sum(mix.values()) - 1) > 1e-6:
            raise ValueError(f"shares must sum to 1, got {sum(mix.values()):g}")
        return mix

    @property
    def leads_per_day_mean(self) -> float:
        """Volume before seasonality, converted to leads per day."""
        if self.leads_per_day is not None:
            return self.leads_per_day
        if self.leads_per_week is not None:
            return self.leads_per_week / 7
        assert self.leads_per_month is not None
        return self.leads_per_month / DAYS_PER_MONTH


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


class SDRTeam(_Model):
    """Sales development reps: a resource with `count` servers, one lead at a time each."""

    count: Annotated[int, Field(ge=1)] = Field(description="Number of SDRs.")
    work_days: NonNegativeDist = Field(description="SDR effort to work one MQL (calls, emails), days.")
    patience_days: NonNegativeDist | None = Field(
        None, description="How long an MQL waits in the SDR queue before going cold; none = forever."
    )
    cost_per_year: NonNegative = Field(0.0, description="Fully loaded cost of one SDR per year.")


class Handoff(_Model):
    """From marketing to sales: follow-up, response delay, SDR qualification."""

    follow_up_rate: UncertainProbability = Field(description="Share of MQLs sales works at all." + _UNCERTAIN_NOTE)
    response_delay_days: NonNegativeDist = Field(description="Time before an SDR picks up a new MQL, days.")
    speed_to_lead: SpeedToLead
    sdr: SDRTeam


class Recycling(_Model):
    """Leads sales rejects or never reaches go back to nurture, or are dropped."""

    probability: UncertainProbability = Field(
        0.0, description="Chance a rejected lead is recycled to nurture." + _UNCERTAIN_NOTE
    )
    max_times: Count = Field(0, description="A lead is recycled at most this many times.")
    engagement_kept: Probability = Field(0.5, description="Share of engagement a recycled lead keeps.")


class Hire(_Model):
    date: dt.date
    count: Annotated[int, Field(ge=1)]


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
        None, description="Opportunities already open on start_date; none = the run starts with an empty pipeline."
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


# ---------------------------------------------------------------------------
# Loading, overrides and error messages


def load_scenario(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Scenario:
    """Read, override and validate a scenario file.

    Parameters
    ----------
    path
        A TOML scenario file.
    overrides
        ``"dotted.path=value"`` strings; values are parsed as TOML (``0.3``,
        ``"fifo"``, ``[1, 2]``, ``{dist = "fixed", value = 3}``), else taken as text.

    Raises
    ------
    ScenarioError
        Listing every problem (TOML syntax with line and column, unknown keys with
        a "did you mean" hint, out-of-range values, undefined references).
    """
    path = Path(path)
    try:
        text = read_text(path, field="scenario file", max_bytes=MAX_SCENARIO_BYTES)
    except UnreadableFile as exc:
        raise ScenarioError([("", str(exc))], str(path)) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError([("", f"TOML syntax error: {exc}")], str(path)) from None
    except RecursionError:
        raise ScenarioError([("", "TOML nested too deeply (tables or arrays inside each other)")], str(path)) from None
    return parse_scenario(apply_overrides(raw, overrides, str(path)), str(path), base_dir=path.parent)


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...], source: str = "--set") -> dict:
    """Return a copy of ``raw`` with each ``dotted.path=value`` applied.

    A path may create tables that are missing (``--set sources.web.leads_per_day=5``)
    but never silently replaces a value by a table: ``--set horizon_days.x=1`` is an error.
    """
    raw = copy.deepcopy(raw)
    problems = []
    for item in overrides:
        key, sep, value_text = item.partition("=")
        parts = [part.strip() for part in key.strip().split(".")]
        if not sep or not all(parts):
            problems.append(("--set", f"expected dotted.path=value, got {item!r}"))
            continue
        try:
            value = tomllib.loads(f"v = {value_text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = value_text.strip()
        node = raw
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                problems.append(
                    (key.strip(), f"cannot set a key inside {where}, which is a value ({child!r}), not a table")
                )
                break
            node = child
        else:
            node[parts[-1]] = value
    if problems:
        raise ScenarioError(problems, source)
    return raw


def set_paths(raw: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of scenario data with each ``dotted.path`` set to its (already parsed) value.

    Missing tables on the way are created; ``None`` removes the key (TOML has no null,
    so no value a file could hold means "absent"). Validate the result with
    :func:`parse_scenario`.
    """
    data = copy.deepcopy(raw)
    for path, value in changes.items():
        *parents, key = path.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(key, None)
        else:
            node[key] = copy.deepcopy(value)
    return data


def parse_scenario(raw: dict[str, Any], source: str = "scenario", base_dir: str | Path | None = None) -> Scenario:
    """Validate already-parsed scenario data; see :func:`load_scenario`.

    ``base_dir`` is where a relative ``initial_pipeline.file`` is looked for (the
    scenario file's folder for :func:`load_scenario`; the current folder if None).
    The file is read here: the scenario returned holds its rows, not the path.
    """
    depth = _depth(raw)
    if depth > MAX_NESTING:
        raise ScenarioError([("", f"nested {depth} levels deep; a scenario needs at most {MAX_NESTING}")], source)
    raw, problems = _read_pipeline_file(raw, Path.cwd() if base_dir is None else Path(base_dir))
    scenario = None
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        problems += [_describe(err) for err in exc.errors()]
    problems += _reference_problems(raw)
    if problems:
        raise ScenarioError(_dedupe(problems), source)
    assert scenario is not None
    return scenario


# The deepest real scenario is ~6 levels (sales.deal_size_by_persona.NAME.dist); anything far
# deeper is a mistake or an attack, refused before pydantic and our messages recurse into it.
MAX_NESTING = 32
MAX_SCENARIO_BYTES = 10 * MB
MAX_PIPELINE_BYTES = 200 * MB


def _depth(value: Any, limit: int = MAX_NESTING + 1) -> int:
    """Nesting depth of tables and arrays, counted no further than ``limit``."""
    depth, level = 0, [value]
    while level and depth < limit:
        children: list[Any] = []
        for node in level:
            if isinstance(node, dict):
                children.extend(node.values())
            elif isinstance(node, list):
                children.extend(node)
        level = children
        depth += bool(level)
    return depth


# ---------------------------------------------------------------------------
# The initial pipeline's CSV file

PIPELINE_COLUMNS = ("id", "age_days", "deal_size", "fit", "persona", "owner")
"""Columns a pipeline CSV may have; ``age_days`` is required, the others may be left out or empty."""
MAX_ROW_PROBLEMS = 20  # a broken export gets a readable error, not one line per row


def read_pipeline_csv(path: str | Path, personas: list[str] | None = None) -> list[dict[str, Any]]:
    """The open deals of a pipeline CSV file, as :class:`OpenDeal` fields (empty cells left out).

    Parameters
    ----------
    path
        A UTF-8 CSV file (a byte-order mark is allowed) with a header row; columns in
        :data:`PIPELINE_COLUMNS`, ``age_days`` required.
    personas
        The scenario's persona names; if given, ``persona`` (default ``"buyer"``) must be one.

    Raises
    ------
    ScenarioError
        Naming the file, line and column of every bad cell (first 20), unknown or
        missing columns, and duplicate ids.
    """
    rows, problems = _parse_pipeline_csv(Path(path), personas)
    if problems:
        raise ScenarioError(problems, str(path))
    return rows


def _read_pipeline_file(raw: Any, base_dir: Path) -> tuple[Any, list[tuple[str, str]]]:
    """``raw`` with ``initial_pipeline.file`` replaced by the rows read from it, and the problems found.

    Only valid rows are kept, so a problem is reported once, by line and column.
    """
    pipeline = raw.get("initial_pipeline") if isinstance(raw, dict) else None
    if not isinstance(pipeline, dict) or not isinstance(pipeline.get("file"), str) or pipeline.get("opportunities"):
        return raw, []  # nothing to read, or a mistake the model reports (both forms, not a string)
    path = Path(pipeline["file"])
    if not path.is_absolute():
        path = base_dir / path
    personas = raw.get("personas")
    rows, problems = _parse_pipeline_csv(path, list(personas) if isinstance(personas, dict) else None)
    resolved = {key: value for key, value in pipeline.items() if key != "file"}
    resolved["opportunities"] = rows
    return {**raw, "initial_pipeline": resolved}, problems


def _parse_pipeline_csv(path: Path, personas: list[str] | None) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    where = str(path)
    try:
        text = read_text(path, field="initial_pipeline.file", max_bytes=MAX_PIPELINE_BYTES, encoding="utf-8-sig")
    except UnreadableFile as exc:
        return [], [("", str(exc))]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        return [], [(where, "empty file; expected a header row naming at least the column age_days")]
    except csv.Error as exc:
        return [], [(f"{where} line 1", f"not valid CSV: {exc}")]
    problems: list[tuple[str, str]] = []
    near = [n for n in header if len(n) <= 40 and difflib.get_close_matches(n, PIPELINE_COLUMNS, n=1)]
    if not set(header) & set(PIPELINE_COLUMNS) and not near:
        # Not a pipeline export at all: say so without quoting the file (it may be anything readable).
        return [], [(f"{where} line 1", f"not a header of pipeline columns ({', '.join(PIPELINE_COLUMNS)})")]
    for name in header:
        if name not in PIPELINE_COLUMNS:
            hint = difflib.get_close_matches(name, PIPELINE_COLUMNS, n=1)
            problems.append(
                (
                    f"{where} line 1, column {name!r}",
                    "unknown column"
                    + (f" (did you mean {hint[0]!r}?)" if hint else f"; allowed: {', '.join(PIPELINE_COLUMNS)}"),
                )
            )
    for name in dict.fromkeys(n for n in header if header.count(n) > 1):
        problems.append((f"{where} line 1, column {name!r}", "appears more than once"))
    if "age_days" not in header:
        problems.append((f"{where} line 1", "missing the required column 'age_days'"))
    if problems:
        return [], problems

    rows: list[dict[str, Any]] = []
    seen_ids: dict[str, int] = {}
    row_problems: list[tuple[str, str]] = []
    try:
        for fields in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in fields):
                continue  # a blank line
            if len(fields) != len(header):
                row_problems.append((f"{where} line {line}", f"expected {len(header)} fields, got {len(fields)}"))
                continue
            row, bad = _pipeline_row(dict(zip(header, (c.strip() for c in fields), strict=True)), personas)
            row_problems += [(f"{where} line {line}, column {column}", message) for column, message in bad]
            deal_id = row.get("id")
            if deal_id is not None:
                if deal_id in seen_ids:
                    row_problems.append(
                        (
                            f"{where} line {line}, column id",
                            f"duplicate id {deal_id!r} (first on line {seen_ids[deal_id]})",
                        )
                    )
                    continue
                seen_ids[deal_id] = line
            if not bad:
                rows.append(row)
    except csv.Error as exc:
        row_problems.append((f"{where} line {reader.line_num}", f"not valid CSV: {exc}"))
    if len(row_problems) > MAX_ROW_PROBLEMS:
        more = len(row_problems) - MAX_ROW_PROBLEMS
        row_problems = [*row_problems[:MAX_ROW_PROBLEMS], (where, f"... and {more} more problem{'s' * (more > 1)}")]
    return rows, row_problems


def _pipeline_row(cells: dict[str, str], personas: list[str] | None) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """One CSV row as OpenDeal fields, and ``(column, message)`` for each bad cell."""
    row: dict[str, Any] = {}
    bad: list[tuple[str, str]] = []
    for column, text in cells.items():
        if text == "":
            if column == "age_days":
                bad.append((column, "required, but empty"))
            continue
        if column in ("id", "owner", "persona"):
            row[column] = text
            continue
        try:
            value = float(text)
        except ValueError:
            bad.append((column, f"expected a number, got {text!r}"))
            continue
        if not math.isfinite(value):
            bad.append((column, f"must be a finite number, got {text!r}"))
        elif column == "fit" and not 0 <= value <= 1:
            bad.append((column, f"must be between 0 and 1, got {text}"))
        elif value < 0:
            bad.append((column, f"must be >= 0, got {text}"))
        else:
            row[column] = value
    persona = row.get("persona", "buyer")
    if personas is not None and persona not in personas:
        hint = difflib.get_close_matches(persona, personas, n=1)
        default = "" if "persona" in row else " (the default when the column is empty or missing)"
        bad.append(
            (
                "persona",
                f"unknown persona {persona!r}{default}"
                + (f" (did you mean {hint[0]!r}?)" if hint else f"; defined: {', '.join(personas)}"),
            )
        )
    return row, bad


def _dedupe(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(items))


_DIST_EXAMPLE = '{dist = "lognormal", mean = 20, sd = 8}'


def _describe(err: Any) -> tuple[str, str]:
    loc = tuple(err["loc"])
    kind, ctx, value = err["type"], err.get("ctx", {}), err.get("input")
    path, node = _walk(loc)
    if kind == "extra_forbidden":
        allowed = _field_names(_walk(loc[:-1])[1])
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        message = f"unknown key '{loc[-1]}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
        if allowed and not hint:
            message += f"; allowed: {', '.join(sorted(allowed))}"
        return path, message
    if kind == "missing":
        return path, "required, but missing"
    bounds = {
        "less_than_equal": ("<=", "le"),
        "less_than": ("<", "lt"),
        "greater_than_equal": (">=", "ge"),
        "greater_than": (">", "gt"),
    }
    if kind in bounds:
        op, key = bounds[kind]
        bound = ctx[key]
        return path, f"must be {op} {bound:g}, got {value!r}" if isinstance(bound, int | float) else err["msg"]
    if kind == "finite_number":
        return path, f"must be a finite number, got {value!r}"
    if kind == "union_tag_invalid":
        return path, f"unknown dist {ctx.get('tag')!r}; choose one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        return path, f"a distribution needs a 'dist' key, e.g. {_DIST_EXAMPLE}"
    if _is_dist_union(node) and kind in ("model_attributes_type", "model_type", "dict_type"):
        return path, f"expected a number or a distribution table such as {_DIST_EXAMPLE}, got {value!r}"
    if kind == "value_error":
        return path, str(ctx.get("error", err["msg"]))
    if kind == "int_from_float":
        return path, f"must be a whole number, got {value!r}"
    if kind in ("too_short", "too_long") and "actual_length" in ctx:
        side, limit = ("least", ctx["min_length"]) if kind == "too_short" else ("most", ctx["max_length"])
        return path, f"needs at {side} {limit} item{'s' if limit != 1 else ''}, got {ctx['actual_length']}"
    message = err["msg"][0].lower() + err["msg"][1:]
    if isinstance(value, dict) or "got" in message.split():
        return path, message
    return path, f"{message}, got {value!r}"


def _walk(loc: tuple[Any, ...]) -> tuple[str, Any]:
    """Follow a pydantic error location through the Scenario model.

    Returns the dotted path a user wrote (without the internal tag pydantic adds
    for the chosen distribution family, so ``sales.cycle_days.sd`` rather than
    ``sales.cycle_days.lognormal.sd``) and the annotation found there (``None``
    once the location leaves the model).
    """
    node: Any = Scenario
    shown: list[str] = []
    for part in loc:
        node = _unwrap(node)
        if node is None:
            shown.append(str(part))
        elif isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(str(part)) or next(
                (f for f in node.model_fields.values() if f.alias == part), None
            )
            node = field.annotation if field is not None else None
            shown.append(str(part))
        elif typing.get_origin(node) is dict:
            node = typing.get_args(node)[1]
            shown.append(str(part))
        elif typing.get_origin(node) is list:
            node = typing.get_args(node)[0]
            shown.append(str(part))
        elif part in _RATE_TAGS and len(_union_members(node)) == 2:
            node = _union_members(node)[_RATE_TAGS.index(part)]  # the tag of an uncertain rate
        elif _is_dist_union(node):
            members = {m.model_fields["dist"].default: m for m in _union_members(node)}
            node = members.get(part)
            if node is None:
                shown.append(str(part))
            # else: the family tag pydantic inserts; the user never wrote it
        else:
            node = None
            shown.append(str(part))
    return ".".join(shown), _unwrap(node)


def _field_names(node: Any) -> list[str]:
    """Keys a table at this place may hold (for "did you mean" hints)."""
    if isinstance(node, type) and issubclass(node, BaseModel):
        return [f.alias or name for name, f in node.model_fields.items()]
    return []


def _is_dist_union(node: Any) -> bool:
    members = _union_members(node)
    return bool(members) and all(
        isinstance(m, type) and issubclass(m, BaseModel) and "dist" in m.model_fields for m in members
    )


def _unwrap(node: Any) -> Any:
    while typing.get_origin(node) is Annotated:
        node = typing.get_args(node)[0]
    members = [m for m in _union_members(node) if m is not type(None)]
    if len(members) == 1:
        return _unwrap(members[0])
    return node


def _union_members(node: Any) -> tuple[Any, ...]:
    if typing.get_origin(node) in (typing.Union, types.UnionType):
        return tuple(_unwrap(m) if m is not type(None) else m for m in typing.get_args(node))
    return ()


def _as_date(value: Any) -> dt.date | None:
    """A TOML date, datetime or ISO string as a date; None if it is none of these."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _reference_problems(raw: Any) -> list[tuple[str, str]]:
    """Cross-references pydantic cannot check field by field: undefined personas, dates."""
    if not isinstance(raw, dict):
        return [("", "a scenario must be a table of keys")]
    problems: list[tuple[str, str]] = []
    personas = raw.get("personas")
    names = list(personas) if isinstance(personas, dict) else []

    def check(path: str, name: Any) -> None:
        if names and name not in names:
            hint = difflib.get_close_matches(str(name), names, n=1)
            problems.append(
                (
                    path,
                    f"unknown persona {name!r}"
                    + (f" (did you mean {hint[0]!r}?)" if hint else f"; defined: {', '.join(names)}"),
                )
            )

    sources = raw.get("sources")
    if isinstance(sources, dict):
        if not sources:
            problems.append(("sources", "define at least one source"))
        for sname, source in sources.items():
            mix = source.get("persona_mix") if isinstance(source, dict) else None
            if isinstance(mix, dict):
                for pname in mix:
                    check(f"sources.{sname}.persona_mix.{pname}", pname)
    sales = raw.get("sales")
    if isinstance(sales, dict) and isinstance(sales.get("deal_size_by_persona"), dict):
        for pname in sales["deal_size_by_persona"]:
            check(f"sales.deal_size_by_persona.{pname}", pname)
    prospecting = raw.get("prospecting")
    if isinstance(prospecting, dict) and "persona" in prospecting:
        check("prospecting.persona", prospecting["persona"])
    elif names and isinstance(prospecting, dict) and prospecting.get("opportunities_per_ae_per_month"):
        check("prospecting.persona", "buyer")
    pipeline = raw.get("initial_pipeline")
    if isinstance(pipeline, dict):
        deals = pipeline.get("opportunities")
        if isinstance(deals, list):
            for i, deal in enumerate(deals):
                if isinstance(deal, dict):
                    check(f"initial_pipeline.opportunities.{i}.persona", deal.get("persona", "buyer"))
        ae_count = (
            sales.get("ae", {}).get("count") if isinstance(sales, dict) and isinstance(sales.get("ae"), dict) else None
        )
        if deals and ae_count == 0:
            problems.append(
                ("sales.ae.count", "the open deals of initial_pipeline need AEs on day 0 to hold them; got 0")
            )
        if isinstance(sources, dict) and PIPELINE_SOURCE in sources:
            problems.append(
                (
                    f"sources.{PIPELINE_SOURCE}",
                    f"the name {PIPELINE_SOURCE!r} is kept for the deals of initial_pipeline",
                )
            )
    if isinstance(personas, dict) and not personas:
        problems.append(("personas", "define at least one persona"))
    start = _as_date(raw.get("start_date"))
    ae = sales.get("ae") if isinstance(sales, dict) else None
    hires = ae.get("hires") if isinstance(ae, dict) else None
    if start is not None and isinstance(hires, list):
        for i, hire in enumerate(hires):
            when = _as_date(hire.get("date")) if isinstance(hire, dict) else None
            if when is not None and when < start:
                problems.append((f"sales.ae.hires.{i}.date", f"{when} is before start_date {start}"))
    return problems
