"""Generate ``docs/scenario-reference.md`` from the pydantic models of a scenario.

The reference is never edited by hand: every key, its type, default, allowed range
and description come from :class:`funnelsim.model.scenario.Scenario` (field annotations,
``Field`` constraints and descriptions, class docstrings), the distribution families
from :data:`funnelsim.model.distributions.Dist`. What the models cannot say by themselves
(units of keys whose name carries none, rules that span several keys, one example
per distribution family) is kept in the small tables below, next to the code that
uses them, and checked against the models so it cannot silently go stale.

Usage::

    python docs/gen_reference.py           # rewrite docs/scenario-reference.md
    python docs/gen_reference.py --check   # exit 1 if the file is out of date
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import re
import sys
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import annotated_types as at
from pydantic import AfterValidator, BaseModel, TypeAdapter
from pydantic.fields import FieldInfo

from funnelsim.model import distributions
from funnelsim.model.labels import parameter_unit
from funnelsim.model.loading import parse_scenario
from funnelsim.model.paths import apply_overrides
from funnelsim.model.scenario import Scenario, ScenarioError, segment_sections

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "scenario-reference.md"
BASELINE = ROOT / "scenarios" / "baseline.toml"

# Units of keys whose name does not carry one (the rules in `unit` read the rest).

# Fields that have no ``Field(description=...)`` in scenario.py yet.
FALLBACK_DESCRIPTIONS = {
    ("Hire", "date"): "Day the new reps join (on or after start_date).",
    ("Hire", "count"): "Number of reps joining that day.",
}

# Models that have no docstring in scenario.py yet.
CLASS_FALLBACK_DOCS = {
    "Hire": "A group of reps joining on one date; each starts at the first step of its team's `ramp`.",
}

# Rules that span several keys: the model validators and cross-reference checks of
# scenario.py, in words. Keyed by model class name.
RULES = {
    "Scenario": [
        "`personas` and `sources` each define at least one entry.",
        "Every persona named in `sources.<name>.persona_mix`, `sales.deal_size_by_persona` and "
        "`prospecting.persona` must be defined under `personas` (a typo gets a “did you mean …?” hint).",
    ],
    "Source": [
        "Give exactly one of `leads_per_month`, `leads_per_week`, `leads_per_day` (or none, with a spend curve). "
        "On load, volumes are converted to leads per day: per week ÷ 7, per month × 12 / 365.25.",
        "`persona_mix` names at least one persona and its shares sum to 1 (within 1e-6).",
        "A spend curve needs both `spend_per_month` and `max_leads_per_month`, and `cost_per_lead > 0` (the cost "
        "of the first leads). It sets the volume, so give no `leads_per_*` beside it: "
        "`max_leads_per_month × (1 − exp(−spend_per_month ÷ (cost_per_lead × max_leads_per_month)))` "
        "leads a month. Each lead then costs the average on the curve, spend ÷ leads (docs/model.md, section 24).",
        "`segment_mix` is given for every source when the scenario has `segments` and for none when it has "
        "none; it names only defined segments (“did you mean …?”) and its shares sum to 1 (within 1e-6).",
    ],
    "Segment": [
        "Besides `description`, a segment holds tables named after top-level sections, each merged key by key "
        f"into that section for this segment: {', '.join(f'`{s}`' for s in segment_sections())}. "
        "An unknown section is refused with a “did you mean …?” hint; a value that is not a table is refused.",
        "Each segment's view (the top level with its tables merged in, its sources at volume × share) is "
        "validated as a scenario of its own: a problem in it is reported at its full path, e.g. "
        "`segments.enterprise.sales.win_rate: must be <= 1, got 1.4`; personas and hire dates too.",
        "`--set segments.enterprise.sales.ae.count=6` sets one key of one segment (missing tables are created).",
        "A segmented scenario cannot have an `initial_pipeline` (its deals have no segment).",
    ],
    "Sales": [
        "Give `deal_size` or `products`, not both. With `products`, every name must be in the price list "
        '(`products.<name>`), and the deal size is built from them on load (a `dist = "products"` spec, not '
        "written back to files); `deal_size_by_persona` still overrides it for its personas.",
    ],
    "ScoringRule": ["`fit_weight + engagement_weight` must equal 1 (within 1e-6)."],
    "SpeedToLead": [
        "`knots_hours` must be strictly increasing, and `odds_multiplier` must have the same length.",
        "Between knots the odds multiplier is interpolated log-linearly; before the first knot it equals the "
        "first value, after the last knot the last value (flat).",
    ],
    "Hire": ["`date` must not be before `start_date`."],
    "Prospecting": [
        "`persona` must be a defined persona when it is given, or when prospecting is on "
        '(`opportunities_per_ae_per_month > 0`) and the default `"buyer"` is used.',
    ],
    "InitialPipeline": [
        "Give `file` or `opportunities`, not both. The file is read when the scenario is loaded (a relative path "
        "from the scenario file's folder); the loaded scenario holds its rows, so `--set` and the planner work "
        "on them. Every bad cell is reported with its file, line and column; unknown columns are refused.",
        "Open deals need AEs on day 0: `sales.ae.count >= 1`. No source may be named `pipeline` (the source "
        "name of these deals in results).",
    ],
    "OpenDeal": ['`persona` (default `"buyer"`) must be a defined persona.'],
    "AETeam": [
        "Quotas and compensation (docs/model.md section 20) are off without `quota_per_year`: `quota_ramp` and "
        "`ote_per_year` need it, and `variable_share`, `accelerator` and `attainment_cap` need `ote_per_year`. A "
        "scenario without a quota writes none of these keys in its manifest (its hash is as before they existed).",
    ],
    "Forecast": [
        "`best_case_probability` must not exceed `commit_probability`. `bookings_target_by_month` keys are `YYYY-MM`.",
        "Without the section a scenario has no pipeline views, and its manifest has no `forecast` key.",
    ],
    "Subscription": [
        "`term_months` must be a multiple of the billing period (12 months for `annual`, 3 for `quarterly`, "
        "1 for `monthly`): invoices start each term.",
        "With segments, a segment may override the section (its own renewal probabilities, expansion, ...); "
        "the gross margin of LTV and CAC payback is the top-level one.",
    ],
    "InstalledBase": [
        "Give `file` or `customers`, not both. The file is read when the scenario is loaded (a relative path "
        "from the scenario file's folder), as `initial_pipeline.file` is; every bad cell is reported with its "
        "file, line and column, unknown columns are refused, ids must be unique.",
    ],
    "Customer": [
        "Give `renewal_date` or `start_date` (or both). `renewal_date` must not be before the scenario's "
        "`start_date` (a renewal already past), `start_date` not after it, and `renewal_date` must be after "
        "the customer's `start_date`.",
        "In a scenario with segments, `segment` is required and must be one of them.",
    ],
    "WorkingCalendar": [
        "`time_zone` (and a team's `time_zone`) must be a zone the IANA database knows (Python's `zoneinfo`).",
        "`business_days` lists each day at most once; `working_hours` are `HH:MM-HH:MM` spans within 00:00-24:00, "
        "each ending after it starts (hours across midnight are two spans), not overlapping.",
        'A team\'s `working_hours` or `time_zone` need this section; `handoff.response_clock = "working"` and '
        '`handoff.speed_to_lead_clock = "working"` need `handoff.sdr.working_hours`.',
    ],
}

# One valid example per distribution family, its support in words, and rules across its keys.
DIST_NOTES: dict[str, tuple[str, str, str]] = {
    "fixed": ('{dist = "fixed", value = 3}', "the value", ""),
    "exponential": ('{dist = "exponential", mean = 10}', "[0, ∞)", ""),
    "lognormal": (
        '{dist = "lognormal", mean = 60, sd = 35}',
        "(0, ∞); the value `mean` when `sd = 0`",
        "Parametrised by the mean and sd of the values themselves, not of their logarithm.",
    ),
    "gamma": ('{dist = "gamma", mean = 45, sd = 20}', "[0, ∞)", "Shape `(mean/sd)²`, scale `sd²/mean`."),
    "weibull": ('{dist = "weibull", shape = 1.5, scale = 30}', "[0, ∞)", "Textbook parameters (shape k, scale)."),
    "uniform": ('{dist = "uniform", low = 0, high = 0.3}', "[low, high]", "`high >= low`."),
    "triangular": (
        '{dist = "triangular", low = 20, mode = 45, high = 120}',
        "[low, high]",
        "`low <= mode <= high` and `low < high`.",
    ),
    "beta": ('{dist = "beta", a = 2, b = 3}', "[0, 1]", "Mean `a/(a+b)`; for fits and engagement scores."),
    "empirical": (
        '{dist = "empirical", values = [34, 51, 60, 88, 140]}',
        "the listed values",
        "",
    ),
}

# `--set` examples, each applied to the baseline scenario when the reference is generated.
OVERRIDE_EXAMPLES = [
    ("handoff.follow_up_rate=0.95", "a number"),
    ("sales.queue=score", "text that is not valid TOML is taken as a string"),
    ('sales.queue="score"', "the same, quoted"),
    ("sales.ae.count=12", "an integer"),
    ('sales.cycle_days={dist = "gamma", mean = 45, sd = 20}', "a distribution as an inline table"),
    ("sales.cycle_days=45", "a bare number: always 45 days"),
    ("sources.partner.seasonality=[1, 1, 1.5, 1, 1, 1, 0.8, 0.8, 1, 1.2, 1, 0.7]", "a list"),
    ("sales.ae.hires=[{date = 2027-03-01, count = 3}]", "a list of tables (replaces the whole list)"),
    ("recycling.max_times=2", "a key of a section"),
]
BAD_OVERRIDE_EXAMPLES = ["sales.win_rate=1.4", "sales.win_rat=0.3", "horizon_days.x=1"]


# ---------------------------------------------------------------------------
# Reading annotations


@dataclass
class TypeInfo:
    """What a field accepts, in words."""

    text: str
    allowed: list[str] = field(default_factory=list)
    model: type[BaseModel] | None = None  # a table documented in its own section
    container: str = ""  # "", "map" (table of named entries) or "list"
    share: bool = False  # a float in [0, 1]
    optional: bool = False


_BOUNDS = (
    (at.Ge, "ge"),
    (at.Gt, "gt"),
    (at.Le, "le"),
    (at.Lt, "lt"),
    (at.MinLen, "min_length"),
    (at.MaxLen, "max_length"),
)


def _constraints(meta: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in meta:
        if isinstance(item, FieldInfo):
            out.update(_constraints(list(item.metadata)))
        for kind, name in _BOUNDS:
            if isinstance(item, kind):
                out[name] = getattr(item, name)
        if isinstance(item, AfterValidator):
            out["check"] = item.func.__name__
    return out


def _number(x: float) -> str:
    return f"{x:g}"


def _range(c: dict[str, Any]) -> str:
    lo = ("[", c["ge"]) if "ge" in c else ("(", c["gt"]) if "gt" in c else None
    hi = ("]", c["le"]) if "le" in c else (")", c["lt"]) if "lt" in c else None
    if lo and hi:
        return f"{lo[0]}{_number(lo[1])}, {_number(hi[1])}{hi[0]}"
    if lo:
        return f"{'≥' if lo[0] == '[' else '>'} {_number(lo[1])}"
    if hi:
        return f"{'≤' if hi[0] == ']' else '<'} {_number(hi[1])}"
    return ""


def _members(tp: Any) -> tuple[Any, ...]:
    return typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else ()


def _is_dist(tp: Any) -> bool:
    members = _members(tp)
    return bool(members) and all(
        isinstance(m, type) and issubclass(m, distributions._Spec) for m in members if m is not type(None)
    )


def describe(tp: Any, meta: list[Any]) -> TypeInfo:
    """Type, allowed values and nested model of an annotation with its metadata."""
    while typing.get_origin(tp) is Annotated:
        args = typing.get_args(tp)
        tp, meta = args[0], [*args[1:], *meta]
    c = _constraints(meta)
    members = _members(tp)
    if members and type(None) in members and not _is_dist(tp):
        rest = [m for m in members if m is not type(None)]
        inner = describe(rest[0] if len(rest) == 1 else typing.Union[tuple(rest)], meta)  # noqa: UP007
        inner.optional = True
        return inner
    if len(members) == 2 and not _is_dist(tp):  # an uncertain rate: a number or a distribution
        number, dist = (describe(m, []) for m in members)
        if number.text == "number" and dist.text == "distribution":
            allowed = [*number.allowed, f"or a distribution ({', '.join(dist.allowed)}) drawn once per replication"]
            return TypeInfo("number or distribution", allowed, share=number.share)
    if _is_dist(tp):
        support = {"_check_nonnegative": "values ≥ 0", "check_unit": "values within [0, 1]"}.get(c.get("check"), "")
        return TypeInfo("distribution", [support] if support else [])
    if typing.get_origin(tp) is Literal:
        choices = " or ".join(f'`"{v}"`' for v in typing.get_args(tp))
        return TypeInfo("text", [f"one of {choices}"] if len(typing.get_args(tp)) > 1 else [choices])
    if typing.get_origin(tp) is list:
        item = describe(typing.get_args(tp)[0], [])
        n_min, n_max = c.get("min_length"), c.get("max_length")
        if n_min is not None and n_min == n_max:
            size = f"exactly {n_min} items"
        elif n_min and n_max:
            size = f"{n_min} to {n_max} items"
        elif n_min:
            size = f"at least {n_min} item{'s' if n_min != 1 else ''}"
        else:
            size = ""
        if item.model is not None:
            return TypeInfo("list of tables", [size] if size else [], model=item.model, container="list")
        allowed = [size] if size else []
        allowed += [f"each {a}" for a in item.allowed]
        return TypeInfo(f"list of {item.text}s", allowed, share=item.share)
    if typing.get_origin(tp) is dict:
        value = describe(typing.get_args(tp)[1], [])
        if value.model is not None:
            return TypeInfo("table of named tables", [], model=value.model, container="map")
        return TypeInfo(f"table: name → {value.text}", [f"each {a}" for a in value.allowed], share=value.share)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return TypeInfo("table", [], model=tp)
    if tp is bool:
        return TypeInfo("true/false")
    if tp is int:
        r = _range(c)
        return TypeInfo("integer", [r] if r else [])
    if tp is float:
        r = _range(c)
        share = ("ge" in c or "gt" in c) and ("le" in c or "lt" in c) and c.get("le", c.get("lt")) == 1
        return TypeInfo("number", [r] if r else [], share=bool(share))
    if tp is str:
        return TypeInfo("text")
    if tp is dt.date:
        return TypeInfo("date", ["YYYY-MM-DD"])
    raise TypeError(f"gen_reference: no rule for annotation {tp!r}; teach describe() about it")


def unit(name: str, info: TypeInfo) -> str:
    """Unit of a key, read from its name (see the module docstring of funnelsim.model.scenario), the one rule
    the figures' labels use too (:func:`funnelsim.model.labels.parameter_unit`)."""
    return parameter_unit(name) or ("share 0–1" if info.share else "–")


# ---------------------------------------------------------------------------
# Rendering


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _anchor(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "top-level"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float | int):
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        if len(value) > 3 and all(v == value[0] for v in value):
            return f"[{_toml(value[0])}, …] ({len(value)} × {_toml(value[0])})"
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return str(value)


def default(f: FieldInfo) -> str:
    if f.is_required():
        return "required"
    value = f.default_factory() if f.default_factory is not None else f.default  # type: ignore[call-arg]
    if value is None:
        return "none"
    if isinstance(value, distributions.Fixed):
        return f"`{_toml(value.value)}`"
    if isinstance(value, BaseModel):
        return "all defaults"
    if value == {} or value == []:
        return f"`{_toml(value)}` (none)"
    return f"`{_toml(value)}`"


def _doc(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__ or "")


def _rst_to_md(text: str) -> str:
    """Docstring markup (``x``, `x`) as Markdown code spans."""
    return re.sub(r"``(.+?)``", r"`\1`", text)


@dataclass
class Section:
    paths: list[str]
    model: type[BaseModel]


def sections() -> list[Section]:
    """Every table of a scenario, depth first in field order; repeated classes share a section."""
    out: list[Section] = []

    def walk(model: type[BaseModel], path: str) -> None:
        if out and out[-1].model is model and out[-1].paths[0].rsplit(".", 1)[0] == path.rsplit(".", 1)[0]:
            out[-1].paths.append(path)
        else:
            out.append(Section([path], model))
        for name, f in model.model_fields.items():
            info = describe(f.annotation, list(f.metadata))
            if info.model is None:
                continue
            key = f.alias or name
            child = f"{path}.{key}" if path else key
            if info.container == "map":
                child += ".<name>"
            elif info.container == "list":
                child += "[]"
            walk(info.model, child)

    walk(Scenario, "")
    return out


def _title(sec: Section) -> str:
    return ", ".join(f"`{p}`" for p in sec.paths) if sec.paths[0] else "Top level"


def render_section(sec: Section, anchors: dict[type[BaseModel] | str, str]) -> list[str]:
    model = sec.model
    lines = [f'<a id="{_anchor(sec.paths[0])}"></a>', "", f"## {_title(sec)}", ""]
    doc = _rst_to_md(_doc(model))
    doc = doc or CLASS_FALLBACK_DOCS.get(model.__name__, "")
    if doc:
        lines += [doc, ""]
    if len(sec.paths) > 1:
        lines += [f"The same keys for each of {_title(sec)}.", ""]
    lines += [
        "| key | type | unit | default | allowed | description |",
        "|---|---|---|---|---|---|",
    ]
    for name, f in model.model_fields.items():
        key = f.alias or name
        info = describe(f.annotation, list(f.metadata))
        text = info.text
        if info.model is not None:
            child = f"{sec.paths[0]}.{key}" if sec.paths[0] else key
            child += {"map": ".<name>", "list": "[]"}.get(info.container or "", "")
            text = f"{info.text} → [below](#{anchors.get(child, anchors[info.model])})"
        if info.optional:
            text += " or none"
        description = f.description or FALLBACK_DESCRIPTIONS.get((model.__name__, name))
        if description is None and info.model is not None:
            description = _doc(info.model).split("\n\n")[0].replace("\n", " ")
        if description is None:
            raise ValueError(f"gen_reference: {model.__name__}.{name} has no description")
        row = [
            f"`{key}`",
            text,
            unit(key, info) if info.model is None else "–",
            default(f),
            "; ".join(a for a in info.allowed if a) or ("any" if info.text in ("number", "integer") else "–"),
            _rst_to_md(description),
        ]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    lines.append("")
    rules = RULES.get(model.__name__, [])
    if rules:
        lines += ["Rules across keys:", ""]
        lines += [f"- {r}" for r in rules]
        lines.append("")
    return lines


def _dist_table() -> dict[str, tuple[str, str]]:
    """Keys and (mean, variance) per family, from the table in the distributions docstring.

    The table is reStructuredText: its ``====`` rule lines give the column offsets.
    """
    lines = (distributions.__doc__ or "").splitlines()
    rule = next(line for line in lines if line.startswith("====="))
    starts = [m.start() for m in re.finditer(r"=+", rule)]
    rows: dict[str, tuple[str, str]] = {}
    for line in lines:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        if cells[0] in DIST_NOTES:
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def dist_families() -> list[type[distributions._Spec]]:
    union = typing.get_args(distributions.Dist)[0]
    return list(typing.get_args(union))


def render_distributions() -> list[str]:
    families = dist_families()
    formulas = _dist_table()
    adapter: TypeAdapter[Any] = TypeAdapter(distributions.Dist)
    lines = [
        '<a id="distributions"></a>',
        "",
        "## Distribution specs",
        "",
        "A key of type *distribution* takes a small table whose `dist` key names the family;",
        "the other keys are its parameters, chosen as quantities a planner knows (a mean and a",
        "spread rather than textbook parameters). Each spec knows its analytic mean and",
        'variance. A bare number is shorthand for `{dist = "fixed", value = number}`, so',
        "`max_nurture_days = 180` and `cycle_days = 45` are both valid. Unknown keys are refused.",
        "",
        "Where a key says *values ≥ 0* (durations, amounts) a spec that can produce a negative",
        "value is refused (a negative `fixed` value, `uniform`/`triangular` with `low < 0`, an",
        "`empirical` list with a negative value). Where it says *values within [0, 1]* (fits,",
        "engagement) the spec must stay inside [0, 1]: `fixed`, `uniform`, `triangular` and",
        "`empirical` inside that interval, or `beta`; the unbounded families are refused.",
        "",
        "| `dist` | keys | allowed | support | mean, variance | example |",
        "|---|---|---|---|---|---|",
    ]
    for cls in families:
        tag = cls.model_fields["dist"].default
        if tag not in DIST_NOTES or tag not in formulas:
            raise ValueError(
                f"gen_reference: distribution family {tag!r} needs an entry in DIST_NOTES and in the "
                "table of the funnelsim.model.distributions docstring"
            )
        example, support, note = DIST_NOTES[tag]
        adapter.validate_python(_parse_inline(example))  # the example must stay valid
        keys, allowed = [], []
        for name, f in cls.model_fields.items():
            if name == "dist":
                continue
            key = f.alias or name
            info = describe(f.annotation, list(f.metadata))
            keys.append(f"`{key}`")
            if info.allowed:
                allowed.append(f"`{key}` {'; '.join(info.allowed)}")
        row = [
            f"`{tag}`",
            ", ".join(keys),
            "; ".join(allowed) or "finite",
            support,
            formulas[tag][1],
            f"`{example}`",
        ]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    lines += [
        "",
        "In the formulas `^` is a power and `G` the gamma function; for `triangular`, `m` is the mode.",
        "",
        "Notes per family:",
        "",
    ]
    for cls in families:
        tag = cls.model_fields["dist"].default
        note = " ".join(x for x in (DIST_NOTES[tag][2], _doc(cls) if cls.__doc__ != _SPEC_DOC else "") if x)
        if note:
            lines.append(f"- `{tag}`: {note}")
    lines.append("")
    return lines


_SPEC_DOC = distributions._Spec.__doc__


def _parse_inline(text: str) -> Any:
    return tomllib.loads(f"v = {text}")["v"]


def render_overrides() -> list[str]:
    base = tomllib.loads(BASELINE.read_text(encoding="utf-8"))
    for example, _ in OVERRIDE_EXAMPLES:
        parse_scenario(apply_overrides(base, [example]), "--set example")  # must stay valid
    lines = [
        '<a id="overrides"></a>',
        "",
        "## Overrides: `--set dotted.path=value`",
        "",
        "Every command that reads a scenario (`funnelsim run`, `funnelsim validate`, …) takes",
        "any number of `--set dotted.path=value` options, applied in order to the parsed file",
        'before validation; from Python, `load_scenario(path, ["dotted.path=value", ...])`.',
        "",
        "- The path is the key's place in the file, sections joined by dots: `sales.ae.count`,",
        "  `sources.inbound.leads_per_month`, `handoff.speed_to_lead.knots_hours`.",
        '- The value is parsed as a TOML value (numbers, `true`/`false`, `"text"`, dates,',
        "  `[lists]`, `{inline tables}`); anything that is not valid TOML is taken as text.",
        "- Missing tables on the path are created (`--set sources.webinar.leads_per_month=50` starts",
        "  a new source, which must then be completed with its required keys), but a value is never",
        "  silently replaced by a table.",
        "- A value replaces the old one whole: setting a list or a distribution replaces all of it.",
        "- The result is validated exactly like the file, so every problem is reported with its",
        "  path, and the command exits with code 2.",
        "",
        "Examples (each is checked against `scenarios/baseline.toml` when this page is generated):",
        "",
        "| `--set` | what it shows |",
        "|---|---|",
    ]
    for example, meaning in OVERRIDE_EXAMPLES:
        lines.append(f"| `{_cell(example)}` | {meaning} |")
    lines += ["", "Bad overrides are reported like bad files:", "", "```text"]
    where = str(BASELINE.relative_to(ROOT))  # what load_scenario names in its message
    for example in BAD_OVERRIDE_EXAMPLES:
        try:
            parse_scenario(apply_overrides(base, [example], where), where)
        except ScenarioError as exc:
            lines.append(f"$ funnelsim validate scenarios/baseline.toml --set {example}")
            lines += [f"error: {line}" if i == 0 else line for i, line in enumerate(str(exc).splitlines())]
        else:
            raise ValueError(f"gen_reference: bad override example {example!r} was accepted")
    lines += ["```", ""]
    return lines


def render() -> str:
    secs = sections()
    anchors: dict[type[BaseModel] | str, str] = {s.model: _anchor(s.paths[0]) for s in secs}
    anchors |= {path: _anchor(s.paths[0]) for s in secs for path in s.paths}  # a class used in two places
    lines = [
        "# Scenario reference",
        "",
        "<!-- Generated by docs/gen_reference.py from funnelsim.model.scenario; do not edit by hand.",
        "     Run `python docs/gen_reference.py` after changing a model; tests/test_docs.py checks it. -->",
        "",
        "A scenario is a TOML file describing one organisation's funnel; `load_scenario(path)` (or",
        "any `funnelsim` command) reads it, applies `--set` overrides and validates every key. This",
        "page lists every key, section by section, in the order a lead meets them. The equations",
        "behind them are in [model.md](model.md); a commented example is",
        "[scenarios/baseline.toml](../scenarios/baseline.toml). `funnelsim schema` prints the same",
        "structure as a JSON Schema.",
        "",
        "Conventions:",
        "",
        "- **Units are in the names.** `*_days` are days, `*_hours` hours, `*_per_month` per",
        "  calendar month (converted on load to per day as `x × 12 / 365.25`), `*_per_week` per",
        "  week (`÷ 7`), `cost_*` and deal sizes are amounts in the scenario's `currency`.",
        "  *share 0–1* is a probability or proportion; *score 0–1* a lead's fit, engagement or",
        "  a scoring threshold.",
        "- **allowed**: `[a, b]` includes both ends, `(a, b)` excludes them; every number must be",
        "  finite (no `nan` or `inf`). *distribution* keys take a [distribution spec](#distributions)",
        "  or a bare number.",
        "- **default**: *required* keys must be given; *none* means the key may be left out and the",
        "  mechanism is off (e.g. no patience = waits forever).",
        "- Unknown keys are refused with a “did you mean …?” hint; all problems of a file are",
        "  reported together, each with its dotted path (`sales.win_rate: must be <= 1, got 1.4`),",
        "  and the command exits with code 2.",
        "",
        "Sections:",
        "",
    ]
    for s in secs:
        lines.append(f"- [{_title(s)}](#{_anchor(s.paths[0])})")
    lines += ["- [Distribution specs](#distributions)", "- [Overrides with `--set`](#overrides)", ""]
    for s in secs:
        lines += render_section(s, anchors)
    lines += render_distributions()
    lines += render_overrides()
    while lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the reference is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{_shown(TARGET)} is out of date; run: python docs/gen_reference.py", file=sys.stderr)
            return 1
        print(f"{_shown(TARGET)} is up to date")
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {_shown(TARGET)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
