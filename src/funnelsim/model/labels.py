"""Scenario parameters in words: the label a figure or table shows for a dotted path.

A chart that ranks ``sales.ae.count`` against ``handoff.sdr.work_days`` speaks the file's
language, not the planner's. :func:`parameter_label` reads the words from the scenario schema
itself (:mod:`funnelsim.model.scenario`): the field's ``title`` when it has one, else the first
clause of its ``description``, with the named entry a path goes through (the ``buyer`` persona,
the ``inbound`` source) and the unit, read from the field's name and type as
``docs/scenario-reference.md`` does. So a new parameter gets a label the day it gets a description.

>>> parameter_label("sales.ae.count")
'AEs on staff at the start (people)'
>>> parameter_label("sources.inbound.cost_per_lead", currency="USD")
'Inbound source: marketing cost of one lead (USD per lead)'
"""

from __future__ import annotations

import re
import types
import typing
from typing import Annotated, Any

from pydantic import BaseModel

from funnelsim.model import distributions
from funnelsim.model.scenario import Scenario

__all__ = ["parameter_label", "parameter_unit"]

UNIT_BY_NAME = {
    "accelerator": "multiplier",
    "attainment_cap": "share of quota",
    "arr": "currency per year",
    "attrition_per_year": "share per year",
    "bookings_target_by_month": "currency",
    "bookings_target_per_year": "currency per year",
    "count": "people",
    "deal_size": "currency",
    "deal_size_by_persona": "currency",
    "engagement_response": "multiplier",
    "engagement_weight": "weight 0–1",
    "fit": "score 0–1",
    "fit_effect": "log-odds per unit of fit",
    "fit_weight": "weight 0–1",
    "initial_engagement": "score 0–1",
    "max_open_opportunities": "deals per AE",
    "max_leads_per_month": "leads per month",
    "max_times": "times",
    "odds_multiplier": "odds ratio",
    "ote_per_year": "currency per year",
    "quota_per_year": "currency per year",
    "quota_ramp": "share of quota",
    "price": "currency per unit",
    "quantity": "units",
    "probability_per_month": "share per month",
    "renewals": "renewals",
    "size_fraction": "fraction of ARR",
    "size_fraction_at_renewal": "fraction of ARR",
    "term_months": "months",
    "seasonality": "multiplier",
    "spend_per_month": "currency per month",
    "threshold": "score 0–1",
    "working_hours": "local time",
    "business_days": "day names",
    "time_zone": "IANA name",
}
"""Units of keys whose name does not carry one (as in docs/gen_reference.py)."""

ENTRY_NAMES = {
    "personas": "persona",
    "sources": "source",
    "segments": "segment",
    "products": "product",
    "deal_size_by_persona": "persona",
}
"""What the entries of a keyed table are: ``personas.buyer`` is the buyer persona."""

SECTION_NAMES = {"mql": "MQL rule", "sql": "SQL rule", "sdr": "SDRs", "ae": "AEs"}
"""Nested tables whose fields read the same in two places (the MQL and SQL scoring rules)."""

_DROPPED = re.compile(r",\s*(in currency|in \[0, 1\]|days|hours)$|\s*\([^)]*\)$")


def parameter_label(path: str, *, currency: str | None = None) -> str:
    """A scenario parameter in words with its unit, e.g. ``"AEs on staff at the start (people)"``.

    Parameters
    ----------
    path
        A dotted path into a scenario (``sales.ae.count``, ``personas.buyer.buying_intent``,
        ``segments.smb.sales.win_rate``), as ``--set``, sweeps and sensitivity name them.
    currency
        Written for the unit "currency" (``"USD per lead"``); the word "currency" when omitted.

    Returns
    -------
    str
        The words of the schema; a path the schema does not know comes back as it is, so a
        caller can always show something.
    """
    found = _walk(path)
    if found is None:
        return path
    name, info, annotation, context = found
    text = _words(info)
    if not text:
        return path
    if _is_distribution(annotation):
        text = f"{text}, mean"
    if context:
        for entry in ("persona", "source", "segment"):
            text = text.replace(f" of this {entry}", "")
        lead = text if text[:2].isupper() else text[0].lower() + text[1:]
        text = f"{', '.join(context)}: {lead}"
    text = text[0].upper() + text[1:]
    unit = parameter_unit(name, annotation, info)
    if not unit and re.match(r"(Share|Chance|Probability|Win probability)\b", _words(info)):
        unit = "share 0–1"
    if currency:
        unit = unit.replace("currency", currency)
    # "Mean leads per month (leads per month)" says its unit once.
    return f"{text} ({unit})" if unit and unit.lower() not in text.lower() else text


def parameter_unit(name: str, annotation: Any = None, info: Any = None) -> str:
    """The unit of a scenario key, read from its name (``_days``, ``_per_month``, ``cost_``) and type
    (a probability is a share 0–1); empty when it has none (a plain multiplier without a name)."""
    if name in UNIT_BY_NAME:
        return UNIT_BY_NAME[name]
    if name.endswith("_days"):
        return "days"
    if name.endswith("_hours"):
        return "hours"
    if name.startswith("cost_per_"):
        return "currency per " + name.removeprefix("cost_per_").replace("_", " ")
    if name.startswith("cost_") or (name.endswith("_per_year") and "cost" in name):
        return "currency per year" if name.endswith("_per_year") else "currency"
    if name.endswith("_per_year") and "attrition" in name:
        return "share per year"
    if "_per_" in name:
        return name.replace("_per_", " per ").replace("_", " ").replace(" ae ", " AE ")
    if _is_share(annotation, info):
        return "share 0–1"
    return ""


def _walk(path: str) -> tuple[str, Any, Any, list[str]] | None:
    """The field a path ends on: its name, ``FieldInfo``, annotation and the entries it went through."""
    model: type[BaseModel] = Scenario
    context: list[str] = []
    parts = path.split(".")
    i = 0
    while i < len(parts):
        part = parts[i]
        if part == "segments" and i + 1 < len(parts) and i + 2 < len(parts):
            context.append(f"{parts[i + 1].replace('_', ' ')} segment")
            i += 2  # a segment's tables mirror the top level's sections
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = _unwrap(field.annotation)
        if i == len(parts) - 1:
            return part, field, annotation, context
        keyed = _dict_value(annotation)
        if keyed is not None:
            entry = parts[i + 1]
            context.append(f"{entry.replace('_', ' ')} {ENTRY_NAMES.get(part, part)}")
            if i + 1 == len(parts) - 1:
                return part, field, keyed, context
            annotation = _unwrap(keyed)
            i += 1
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return part, field, annotation, context  # below a distribution or a list: the field's words
        if part in SECTION_NAMES and part in ("mql", "sql"):
            context.append(SECTION_NAMES[part])
        model = annotation
        i += 1
    return None


def _words(info: Any) -> str:
    """The field's title, else the first clause of its description, without a trailing unit."""
    title = getattr(info, "title", None)
    if title:
        return str(title)
    description = str(getattr(info, "description", None) or "")
    first = re.split(r"(?<=[a-z0-9)\]])\.\s|;\s|\.$", description.strip(), maxsplit=1)[0].strip()
    previous = None
    while previous != first:
        previous, first = first, _DROPPED.sub("", first).strip()
    return first.rstrip(".")


def _unwrap(annotation: Any) -> Any:
    """``X`` of ``Annotated[X, ...]`` and of ``X | None``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _dict_value(annotation: Any) -> Any:
    if typing.get_origin(annotation) is dict:
        return typing.get_args(annotation)[1]
    return None


def _is_distribution(annotation: Any) -> bool:
    """A distribution spec (a union of the families, perhaps constrained to a support)."""
    # A rate that is a number or a distribution (UncertainProbability) is not one: it is a number
    # in every bundled scenario. A deal size is, whichever family or price list it is built from.
    return _unwrap(annotation) in (_unwrap(distributions.Dist), _unwrap(distributions.DealSize))


def _is_share(annotation: Any, info: Any) -> bool:
    """A probability: a float constrained to [0, 1]."""
    constraints = [*getattr(info, "metadata", [])]
    if typing.get_origin(annotation) is Annotated:
        for extra in typing.get_args(annotation)[1:]:
            constraints += [*getattr(extra, "metadata", [extra])]
    bounds = {type(c).__name__: getattr(c, type(c).__name__.lower(), None) for c in constraints}
    return bounds.get("Ge") == 0 and bounds.get("Le") == 1
