"""What-if: the main levers of a scenario, the ``--set`` overrides that move them, and what the
replications say about the result (``funnelsim serve``'s page).

A lever is one number a planner moves on a slider, named by an ``id`` that errors quote:

- ``leads``: a multiplier on the volume of every source bought per lead (seasonality and mix
  kept); ``source.<name>``: one more multiplier on that source alone (the two multiply);
- ``budget``: the monthly spend on the channels with a spend curve, split in today's mix
  (each channel's ``spend_per_month`` times ``budget / today's budget``); the curve turns it
  into leads (:mod:`funnelsim.model.spend`);
- ``mql_threshold``, ``sql_threshold``: the two teams' qualification bars (the scenario's own;
  a segment that sets its own keeps it);
- ``sdrs``, ``aes``: the SDRs and AEs at the start (hires keep their dates); in a segmented
  scenario one lever per segment (``sdrs.<segment>``, ``aes.<segment>``), since each segment
  has its own desk and team;
- ``response_hours``: the mean time before an SDR picks an MQL up, in hours; the response-delay
  distribution is scaled (every parameter in time units times the same factor, so its shape and
  coefficient of variation stay).

A lever setting is turned into ``dotted.path=value`` overrides (:func:`overrides_for`), and
the scenario is loaded with them as ``funnelsim run --set`` would: same overrides and seed,
same numbers. Only the levers moved from the scenario's value become overrides.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from funnelsim.model.paths import format_value, get_effective
from funnelsim.model.scenario import Scenario
from funnelsim.studies.replications import Replications
from funnelsim.studies.replications import run as mc_run
from funnelsim.studies.stats import json_ready, probability_at_least
from funnelsim.studies.workload import Budget

__all__ = [
    "FUNNEL",
    "Change",
    "Lever",
    "Superseded",
    "WhatIfError",
    "changes_for",
    "evaluate",
    "first",
    "levers_of",
    "overrides_for",
    "replicate",
]

FUNNEL = ("leads", "mqls", "sqls", "opportunities", "wins")
"""The stage volumes the page draws, top to bottom (columns of the replications' table)."""
MAX_MULTIPLIER = 5.0
# Keys of a distribution table measured in the variable's unit (time here): scaled with the mean.
SCALE_KEYS = ("value", "mean", "sd", "scale", "low", "mode", "high", "values")
HOURS_PER_DAY = 24.0


class WhatIfError(ValueError):
    """A lever value or request that cannot be used; ``field`` names it (the page shows it beside the field)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class Lever:
    """One slider: its ``id``, what it says, its unit, range, step and the scenario's value."""

    id: str
    label: str
    unit: str
    minimum: float
    maximum: float
    step: float
    value: float
    group: str
    integer: bool = False
    scale: str = "linear"

    def check(self, value: Any) -> float:
        """``value`` as a number in range, or :class:`WhatIfError` naming this lever."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise WhatIfError(self.id, f"must be a number, got {value!r}")
        if not math.isfinite(value):
            raise WhatIfError(self.id, f"must be a finite number, got {value!r}")
        if self.integer and value != int(value):
            raise WhatIfError(self.id, f"must be a whole number, got {value!r}")
        if not self.minimum <= value <= self.maximum:
            raise WhatIfError(self.id, f"must be between {self.minimum:g} and {self.maximum:g}, got {value:g}")
        return float(value)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def levers_of(scenario: Scenario) -> list[Lever]:
    """The levers of ``scenario`` with its values: those its features have (no budget without spend curves)."""
    levers: list[Lever] = []
    per_lead = [name for name, source in scenario.sources.items() if source.curve is None]
    if per_lead:
        levers.append(Lever("leads", "Leads a month, all sources", "×", 0.0, MAX_MULTIPLIER, 0.05, 1.0, "marketing"))
        for name in per_lead:
            levers.append(Lever(f"source.{name}", name, "×", 0.0, MAX_MULTIPLIER, 0.05, 1.0, "sources"))
    budget = _budget(scenario)
    if budget is not None:
        top = max(4 * budget, 10_000.0)
        step = 10 ** max(0, math.floor(math.log10(top)) - 2)
        label = "Marketing budget a month"
        levers.append(Lever("budget", label, scenario.currency, 0.0, top, step, budget, "marketing"))
    for team in ("mql", "sql"):
        value = getattr(scenario.qualification, team).threshold
        levers.append(Lever(f"{team}_threshold", f"{team.upper()} threshold", "score", 0.0, 1.0, 0.01, value, "teams"))
    levers += _count_levers(scenario, "sdrs", "SDRs", "handoff.sdr.count", 1)
    levers += _count_levers(scenario, "aes", "AEs at the start", "sales.ae.count", 0)
    days = _response_days(scenario)
    if days is not None:
        label = "Response time to an MQL (mean)"
        hours = days * HOURS_PER_DAY
        levers.append(Lever("response_hours", label, "hours", 1 / 60, 168.0, 0.0, hours, "teams", scale="log"))
    return levers


def _budget(scenario: Scenario) -> float | None:
    """Today's monthly spend on the channels with a spend curve; None without one."""
    curves = [source for source in scenario.sources.values() if source.curve is not None]
    return float(sum(source.spend_per_month or 0.0 for source in curves)) if curves else None


def _count_levers(scenario: Scenario, lever: str, label: str, path: str, least: int) -> list[Lever]:
    """A headcount lever, or one per segment (each has its own desk and team)."""
    raw = scenario.to_dict()
    places = [(lever, label, path)]
    if scenario.segments:
        places = [(f"{lever}.{name}", f"{label}, {name}", f"segments.{name}.{path}") for name in scenario.segments]
    out = []
    for lever_id, text, where in places:
        value = int(get_effective(raw, where))
        out.append(Lever(lever_id, text, "people", least, max(20, 3 * value), 1, value, "teams", integer=True))
    return out


def _response_days(scenario: Scenario) -> float | None:
    """Mean response delay in days, when its distribution can be scaled in time (not a beta)."""
    spec = scenario.handoff.response_delay_days
    if not set(spec.model_dump(by_alias=True)) - {"dist"} <= set(SCALE_KEYS):
        return None
    mean = float(spec.mean)
    return mean if mean > 0 else None


class Change(NamedTuple):
    """One override a lever makes: the lever's id and ``dotted.path=value``."""

    lever: str
    override: str


def overrides_for(scenario: Scenario, values: Mapping[str, Any]) -> list[str]:
    """The ``dotted.path=value`` overrides that set ``values`` (lever id → number) on ``scenario``.

    Levers left out, or at the scenario's value, change nothing. An unknown id or a value out
    of range raises :class:`WhatIfError` naming the lever.
    """
    return [change.override for change in changes_for(scenario, values)]


def changes_for(scenario: Scenario, values: Mapping[str, Any]) -> list[Change]:
    """:func:`overrides_for`, each override with the lever that makes it."""
    levers = {lever.id: lever for lever in levers_of(scenario)}
    checked = {}
    for key, value in values.items():
        if key not in levers:
            raise WhatIfError(str(key), f"no such lever here; the levers are {', '.join(levers)}")
        checked[key] = levers[key].check(value)
    moved = {key: value for key, value in checked.items() if value != levers[key].value}
    out = _source_changes(scenario, moved)
    for key, value in moved.items():
        if key.endswith("_threshold"):
            out.append(Change(key, f"qualification.{key.removesuffix('_threshold')}.threshold={value!r}"))
        elif key.split(".")[0] in ("sdrs", "aes"):
            head, _, segment = key.partition(".")
            path = "handoff.sdr.count" if head == "sdrs" else "sales.ae.count"
            out.append(Change(key, f"{f'segments.{segment}.' if segment else ''}{path}={int(value)}"))
        elif key == "response_hours":
            scaled = _scaled_response(scenario, value / HOURS_PER_DAY)
            out.append(Change(key, f"handoff.response_delay_days={scaled}"))
    return out


def _source_changes(scenario: Scenario, moved: Mapping[str, float]) -> list[Change]:
    """The volume of each source bought per lead times its multipliers; the curve channels' spend for ``budget``."""
    out = []
    for name, source in scenario.sources.items():
        if source.curve is None:
            factor = moved.get("leads", 1.0) * moved.get(f"source.{name}", 1.0)
            if factor != 1.0:
                key = source.volume_key
                lever = f"source.{name}" if f"source.{name}" in moved else "leads"
                out.append(Change(lever, f"sources.{name}.{key}={_number(getattr(source, key) * factor)}"))
    if "budget" in moved:
        curves = {name: s for name, s in scenario.sources.items() if s.curve is not None}
        today = sum(s.spend_per_month or 0.0 for s in curves.values())
        for name, source in curves.items():
            share = (source.spend_per_month or 0.0) / today if today > 0 else 1 / len(curves)
            out.append(Change("budget", f"sources.{name}.spend_per_month={_number(moved['budget'] * share)}"))
    return out


def _scaled_response(scenario: Scenario, mean_days: float) -> str:
    """The response-delay distribution with mean ``mean_days``, as an inline TOML table."""
    spec = scenario.handoff.response_delay_days.model_dump(by_alias=True)
    factor = mean_days / float(scenario.handoff.response_delay_days.mean)
    scaled = {
        key: ([_number(v * factor) for v in value] if isinstance(value, list) else _number(value * factor))
        if key in SCALE_KEYS
        else value
        for key, value in spec.items()
    }
    return format_value(scaled)


def _number(value: float) -> float:
    """A value to write in a scenario: 10 significant digits (no 2750.0000000000005 from 2500 × 1.1)."""
    return float(f"{value:.10g}")


def replicate(
    scenario: Scenario,
    runs: int,
    seed: int,
    pool: Executor | None = None,
    stop: Callable[[], bool] | None = None,
    done: Replications | None = None,
) -> Replications:
    """Replications 0 .. runs-1 of ``scenario`` on ``seed``, as ``funnelsim run --runs`` makes them.

    ``done`` holds replications 0 .. k-1 of the same scenario and seed already made (a few while
    a slider moved): only k .. runs-1 are simulated, since a replication depends only on the
    scenario, the seed and its index. ``stop`` is asked after each finished task (a few
    replications); when it says yes the run ends by raising :class:`Superseded`, so that a newer
    request does not wait for an older one.
    """

    def progress(finished: int, total: int) -> None:
        if stop is not None and stop():
            raise Superseded

    have = 0 if done is None else done.completed
    if done is not None and have >= runs:
        return first(done, runs)
    new = mc_run(scenario, runs - have, seed, pool, replications=range(have, runs), progress=progress, budget=Budget())
    new.raise_if_interrupted()
    if done is None:
        return new
    table = pd.concat([done.table, new.table], ignore_index=True)
    monthly = pd.concat([done.monthly, new.monthly], ignore_index=True)
    return Replications(scenario, seed, table, monthly, runs, "completed")


def first(reps: Replications, runs: int) -> Replications:
    """Replications 0 .. runs-1 of ``reps``."""
    table = reps.table[reps.table["replication"] < runs].reset_index(drop=True)
    monthly = reps.monthly[reps.monthly["replication"] < runs].reset_index(drop=True)
    return Replications(reps.scenario, reps.seed, table, monthly, runs, "completed")


def evaluate(reps: Replications, goal: float | None = None) -> dict[str, Any]:
    """The replications reduced for the page.

    Returns ``runs``, ``seed``, ``currency``, ``summary`` (mean, P10/P50/P90 and the mean's
    interval of revenue and of each :data:`FUNNEL` stage, as ``funnelsim run --json`` gives them),
    ``fan`` (cumulative revenue by month: P10/P50/P90), ``goal`` and ``p_goal`` (with its Wilson
    interval; None without a goal).
    """
    keys = ("mean", "p10", "p50", "p90", "ci_low", "ci_high", "n")
    rows = {row["metric"]: row for row in reps.summary().to_dict("records")}
    summary = {metric: {k: rows[metric][k] for k in keys} for metric in ("revenue", *FUNNEL)}
    by_month = reps.monthly.groupby("month", sort=True)["cumulative_revenue"]
    months = [str(month) for month in by_month.groups]
    fan = {
        "months": months,
        **{f"p{p}": [float(np.percentile(values, p)) for _, values in by_month] for p in (10, 50, 90)},
    }
    doc = {"runs": reps.completed, "seed": reps.seed, "currency": reps.scenario.currency, "summary": summary}
    doc |= {"fan": fan, "goal": goal}
    doc["p_goal"] = None if goal is None else probability_at_least(reps.table["revenue"].to_numpy(float), goal)
    return json_ready(doc)


class Superseded(Exception):
    """A what-if run given up for a newer request (raised from the progress callback)."""
