"""Scenario files written back: the planned scenario (``planned.toml`` of ``funnelsim plan --out``)
and the what-if scenario (the save button of ``funnelsim serve``); commented TOML files that
``funnelsim run`` accepts, keeping the original file's comments and layout and saying, on each
key that was changed, what it was."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from funnelsim.model.scenario import Scenario
    from funnelsim.studies.planner import Plan

__all__ = [
    "planned_toml",
    "whatif_toml",
]


def planned_toml(plan: Plan, source_text: str | None = None, overrides: tuple[str, ...] = ()) -> str:
    """The planned scenario as a commented TOML file that ``funnelsim run`` accepts.

    With the original file's text, its comments and layout are kept: the ``--set``
    overrides and the plan's changes are applied to it and each changed key says what
    it was. Without it, the resolved scenario is written out in full.
    """
    import tomlkit

    from funnelsim.model.paths import apply_overrides

    pg = plan.p_goal
    header = [
        f"Planned by funnelsim plan: {plan.goal:,.0f} {plan.scenario.currency} closed in {plan.period}",
        f"with {plan.confidence:.0%} confidence; verified on {pg['n']} fresh runs (replications from "
        f"{pg['first_replication']} of seed {pg['seed']}, which the search never ran):",
        f"goal reached in {pg['estimate']:.1%} (95% Wilson CI {pg['ci_low']:.1%}-{pg['ci_high']:.1%}).",
        *(
            ["Already met: the scenario as it was reaches the goal; the plan changes no lever."]
            if plan.status == "already met"
            else []
        ),
        f"The first {plan.lead_in_months} months build the pipeline (lead-in); revenue in the period is",
        f"what closes from {plan.period.start} on: sum monthly.csv of `funnelsim run --runs N` over those months.",
        "Keys changed by the plan say what they were.",
    ]
    if source_text is None:
        data = _drop_none(plan.scenario.to_dict())
        fresh = tomlkit.document()
        for line in header:
            fresh.add(tomlkit.comment(line))
        for key, value in data.items():
            fresh[key] = value
        return tomlkit.dumps(fresh)
    doc = apply_overrides(tomlkit.parse(source_text), list(overrides))
    _inline_pipeline(doc, plan.scenario)
    _inline_installed_base(doc, plan.scenario)
    before = tomlkit.parse(tomlkit.dumps(doc)).unwrap()
    for path, value in plan.changes.items():
        *parents, key = path.split(".")
        node: Any = doc
        old: Any = before
        for part in parents:
            node = node.setdefault(part, tomlkit.table())
            old = old.get(part, {}) if isinstance(old, dict) else {}
        was = old.get(key) if isinstance(old, dict) else None
        if path == "start_date":
            value = dt.date.fromisoformat(value)
        elif path.endswith(("sales.ae.hires", "handoff.sdr.hires")):  # a segment's team's too
            value = _inline_array([{**h, "date": dt.date.fromisoformat(h["date"])} for h in value])
        elif path.endswith(".month_multipliers"):
            value = _inline_table(value)
        node[key] = value
        if was is not None and not isinstance(node[key], tomlkit.items.Array):
            node[key].comment(f"planned (was {was})")
    top = tomlkit.document()
    for line in header:
        top.add(tomlkit.comment(line))
    top.add(tomlkit.nl())
    return tomlkit.dumps(top) + tomlkit.dumps(doc)


def whatif_toml(
    scenario: Scenario, source_text: str, overrides: tuple[str, ...], changes: tuple[str, ...], header: list[str]
) -> str:
    """The scenario file ``source_text`` with ``overrides`` then the what-if ``changes`` applied (both
    ``dotted.path=value``), as TOML that ``funnelsim run`` accepts with no ``--set``.

    Comments and layout are kept; each key a change set says what it was; ``header`` opens the file
    as comments; files the scenario reads (initial pipeline, installed base) are written inline from
    ``scenario`` (their paths were relative to the original file).
    """
    import tomlkit

    from funnelsim.model.paths import MISSING, apply_overrides, format_value, get_effective, parse_value

    doc = apply_overrides(tomlkit.parse(source_text), list(overrides))
    _inline_pipeline(doc, scenario)
    _inline_installed_base(doc, scenario)
    before = tomlkit.parse(tomlkit.dumps(doc)).unwrap()
    for change in changes:
        path, _, text = change.partition("=")
        *parents, key = path.split(".")
        node: Any = doc
        for part in parents:
            node = node.setdefault(part, tomlkit.table())
        was = get_effective(before, path)  # a segment's key it did not set: the value it inherited
        value = parse_value(text)
        node[key] = _inline_table(value) if isinstance(value, dict) else value
        node[key].comment(f"what-if (was {format_value(was)})" if was is not MISSING else "what-if")
    top = tomlkit.document()
    for line in header:
        top.add(tomlkit.comment(line))
    top.add(tomlkit.nl())
    return tomlkit.dumps(top) + tomlkit.dumps(doc)


def _inline_pipeline(doc: Any, scenario: Scenario) -> None:
    """Write the initial pipeline's rows in place of its ``file``.

    The file's path is relative to the original scenario, not to ``planned.toml``, which
    lives elsewhere; the rows make the planned scenario stand on its own.
    """
    section = doc.get("initial_pipeline")
    if section is None or "file" not in section:
        return
    source = section["file"]
    del section["file"]
    rows = _inline_array([_drop_none(deal.model_dump()) for deal in scenario.open_deals])
    rows.multiline(True)
    section["opportunities"] = rows
    section["opportunities"].comment(f"read from {source} when planned")


def _inline_installed_base(doc: Any, scenario: Scenario) -> None:
    """Write the installed base's customers in place of its ``file``, as :func:`_inline_pipeline` does."""
    section = doc.get("subscription", {}).get("installed_base")
    if section is None or "file" not in section or scenario.subscription is None:
        return
    source = section["file"]
    del section["file"]
    rows = _inline_array([_drop_none(customer.model_dump()) for customer in scenario.subscription.customers])
    rows.multiline(True)
    section["customers"] = rows
    section["customers"].comment(f"read from {source} when planned")


def _inline_array(rows: list[dict[str, Any]]) -> Any:
    import tomlkit

    array = tomlkit.array()
    for row in rows:
        table = tomlkit.inline_table()
        table.update(row)
        array.append(table)
    return array


def _inline_table(values: dict[str, Any]) -> Any:
    import tomlkit

    table = tomlkit.inline_table()
    table.update(values)
    return table


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value
