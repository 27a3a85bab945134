"""Dotted paths into scenario data: the one reader and writer behind ``--set``, sweeps, levers and calibrate.

A path names a key through nested tables, ``sales.ae.count`` or
``sources.inbound.leads_per_month``; values on the command line are read as TOML
(``0.3``, ``"fifo"``, ``[1, 2]``, ``{dist = "fixed", value = 3}``), else as text.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from typing import Any

from funnelsim.model.scenario import ScenarioError

__all__ = [
    "MISSING",
    "all_paths",
    "apply_overrides",
    "format_value",
    "get_attribute",
    "get_effective",
    "get_path",
    "parse_value",
    "set_paths",
]

MISSING: Any = object()
"""What :func:`get_path` returns for a path that is not there."""


def parse_value(text: str) -> Any:
    """A command-line value as TOML (number, string, array, table), else the text itself."""
    try:
        return tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()


def format_value(value: Any) -> str:
    """``value`` as TOML text, the inverse of :func:`parse_value` (a table inline): what ``--set`` reads."""
    import tomlkit

    if isinstance(value, dict):
        table = tomlkit.inline_table()
        table.update(value)
        return str(table.as_string())
    return str(tomlkit.item(value).as_string())


def get_path(raw: Any, path: str) -> Any:
    """The value at ``path`` in nested dicts, or :data:`MISSING`."""
    node = raw
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def get_effective(raw: Any, path: str) -> Any:
    """The value at ``path`` as the scenario uses it, or :data:`MISSING`.

    As :func:`get_path`, but a key of a segment (``segments.<name>.<section>...``) that the
    segment does not set is the top level's (``<section>...``), which the segment inherits;
    not below a distribution table the segment replaces whole (one with ``dist``).
    """
    found = get_path(raw, path)
    parts = path.split(".")
    if found is not MISSING or len(parts) < 3 or parts[0] != "segments":
        return found
    node = get_path(raw, ".".join(parts[:2]))
    for part in parts[2:]:
        if not isinstance(node, dict) or "dist" in node:
            return MISSING
        if part not in node:
            return get_path(raw, ".".join(parts[2:]))
        node = node[part]
    return node


def get_attribute(model: Any, path: str) -> Any:
    """The value at ``path`` in a validated scenario (pydantic models by field alias, dicts by key)."""
    node = model
    for part in path.split("."):
        if isinstance(node, dict):
            node = node[part]
        else:
            fields = type(node).model_fields
            name = next((n for n, f in fields.items() if (f.alias or n) == part), part)
            node = getattr(node, name)
    return node


def all_paths(node: Any, prefix: str = "") -> list[str]:
    """Every dotted path of nested dicts, tables included."""
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}{key}"
            out.append(path)
            out += all_paths(value, path + ".")
    return out


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
        value = parse_value(value_text)
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
