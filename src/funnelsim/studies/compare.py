"""Scenarios side by side on common random numbers, and what each differs from the first.

Every scenario runs replications ``0 .. N-1`` of the same seed. Replication ``i`` of
two scenarios then sees the same leads with the same traits and draws (see docs/model.md
section 14), so the per-replication difference ``B_i - A_i`` carries the effect of what
differs between them with little of the year-to-year noise. The paired difference's
confidence interval is the Student-t interval of those differences; beside it the
unpaired (Welch) interval of the two means shows what pairing saves.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from funnelsim.model.distributions import Spec
from funnelsim.model.loading import parse_scenario
from funnelsim.model.paths import MISSING, get_path, set_paths
from funnelsim.model.scenario import Scenario, ScenarioError
from funnelsim.studies import replications as mc
from funnelsim.studies.stats import describe, json_ready, paired_difference
from funnelsim.studies.workload import UNLIMITED, Budget, largest, workers_of
from funnelsim.vocabulary import LEAKAGE_REASONS

__all__ = [
    "Attribution",
    "CompareError",
    "Comparison",
    "Lever",
    "attribute",
    "coalition_scenario",
    "compare",
    "differences",
    "find_levers",
]


class CompareError(ValueError):
    """A comparison that cannot be carried out as asked."""


@dataclass(frozen=True)
class Comparison:
    """The replications of each scenario (same seeds) and their paired differences.

    ``labels`` name the scenarios in order (the first is the reference); ``runs``
    holds each one's :class:`~funnelsim.studies.replications.Replications`.
    """

    labels: list[str]
    runs: dict[str, mc.Replications]
    seed: int
    confidence: float = 0.95
    attribution: Attribution | None = None

    def table(self, metrics: Sequence[str] | None = None) -> pd.DataFrame:
        """One row per metric and scenario: the scenario's mean with its interval and
        percentiles, and against the first scenario the paired ``difference`` with
        ``diff_ci_low``/``diff_ci_high``, the ``unpaired_half_width`` and
        ``narrower`` (unpaired half-width over paired: how many times narrower pairing is).

        By default the headline metrics, ``cac`` and ``win_rate``, and ``yoy_growth``
        when a scenario gives its ``prior_year_revenue`` (NaN for those that do not).
        """
        if metrics is None:
            growth = any("yoy_growth" in reps.table for reps in self.runs.values())
            metrics = (*mc.HEADLINE, "cac", "win_rate", *(["yoy_growth"] if growth else []))
        first = self._table(self.labels[0])
        rows = []
        for metric in metrics:
            for label in self.labels:
                table = self._table(label)
                described = describe(table[metric].to_numpy(float), self.confidence)
                row: dict[str, Any] = {"metric": metric, "scenario": label}
                row |= {k: described[k] for k in ("mean", "ci_low", "ci_high", "p10", "p50", "p90")}
                pair = paired_difference(
                    first[metric].to_numpy(float), table.loc[first.index, metric].to_numpy(float), self.confidence
                )
                row |= {
                    "difference": pair["difference"],
                    "diff_ci_low": pair["ci_low"],
                    "diff_ci_high": pair["ci_high"],
                    "paired_half_width": pair["half_width"],
                    "unpaired_half_width": pair["unpaired_half_width"],
                    "narrower": pair["unpaired_half_width"] / pair["half_width"]
                    if pair["half_width"] > 0
                    else math.nan,
                }
                rows.append(row)
        return pd.DataFrame(rows)

    def _table(self, label: str) -> pd.DataFrame:
        table = self.runs[label].table.set_index("replication")
        return table if "yoy_growth" in table else table.assign(yoy_growth=math.nan)

    def leakage(self) -> pd.DataFrame:
        """Where leads left the funnel, per scenario: one row per reason and scenario with
        the mean ``leads`` per replication, their ``share_of_leads`` and the paired
        ``difference`` in leads against the first scenario (see :data:`funnelsim.vocabulary.LEAKAGE_REASONS`)."""
        first = self._table(self.labels[0])
        rows = []
        for reason, _, stage in LEAKAGE_REASONS:
            column = f"leak_{reason}"
            for label in self.labels:
                table = self._table(label)
                leads = table[column].to_numpy(float)
                pair = paired_difference(first[column].to_numpy(float), table.loc[first.index, column].to_numpy(float))
                rows.append({
                    "reason": reason, "stage": stage, "scenario": label, "leads": float(leads.mean()),
                    "share_of_leads": float(leads.sum() / table["leads"].sum()),
                    "difference": pair["difference"], "diff_ci_low": pair["ci_low"], "diff_ci_high": pair["ci_high"],
                })  # fmt: skip
        return pd.DataFrame(rows)

    def replications(self) -> pd.DataFrame:
        """Every scenario's replication table, stacked, with a ``scenario`` column first."""
        frames = [self.runs[label].table.assign(scenario=label) for label in self.labels]
        out = pd.concat(frames, ignore_index=True)
        return out[["scenario", *[c for c in out.columns if c != "scenario"]]]

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document (keys in docs/outputs.md)."""
        table = self.table()
        doc: dict[str, Any] = {"seed": self.seed, "runs": self.runs[self.labels[0]].completed, "scenarios": self.labels}
        doc["metrics"] = {
            metric: {
                row["scenario"]: json_ready({k: v for k, v in row.items() if k not in ("metric", "scenario")})
                for row in group.to_dict("records")
            }
            for metric, group in table.groupby("metric", sort=False)
        }
        if self.attribution is not None:
            doc["attribution"] = self.attribution.to_json()
        return doc


def compare(
    scenarios: Sequence[Scenario],
    runs: int,
    seed: int,
    pool: Executor | None = None,
    *,
    labels: Sequence[str] | None = None,
    confidence: float = 0.95,
    progress: mc.Progress | None = None,
    attribute_levers: bool = False,
    levers: Mapping[str, Sequence[str]] | None = None,
    budget: Budget | None = None,
) -> Comparison:
    """Run each scenario's replications ``0 .. runs-1`` of ``seed`` and pair them.

    With ``attribute_levers`` (exactly two scenarios), also attribute the difference
    to the levers that differ (:func:`attribute`; ``levers`` names groups of parameters).

    Raises
    ------
    CompareError
        Fewer than two scenarios, fewer than two runs, labels that are not unique,
        attribution asked for more than two scenarios, bad levers.
    KeyboardInterrupt
        If a run is interrupted (nothing is compared on partial runs).
    """
    if len(scenarios) < 2:
        raise CompareError("compare needs at least two scenarios")
    if runs < 2:
        raise CompareError(f"--runs must be >= 2 to pair replications, got {runs}")
    names = list(labels) if labels is not None else _labels([sc.name for sc in scenarios])
    if len(set(names)) != len(names):
        raise CompareError(f"scenario labels must be unique, got {names}")
    if (attribute_levers or levers) and len(scenarios) != 2:
        raise CompareError(f"lever attribution compares exactly two scenarios, got {len(scenarios)}")
    plan = None
    extra = 0  # the lever combinations still to simulate after the scenarios themselves
    if attribute_levers or levers:
        plan = _combinations(scenarios[0], scenarios[1], levers)  # bad levers fail before any simulation
        extra = len(plan.distinct.keys() - {_simulation_key(sc) for sc in scenarios})
    total = runs * (len(scenarios) + extra)
    every = [*scenarios, *(plan.distinct.values() if plan is not None else ())]
    (budget or Budget()).admit(largest(every, total, workers_of(pool)), "this comparison")
    scenarios = mc.same_burn_in(scenarios, seed, scenarios)  # all on the same warm start
    if plan is not None:
        plan = _combinations(scenarios[0], scenarios[1], levers)
    results = {}
    for k, (label, sc) in enumerate(zip(names, scenarios, strict=True)):
        step = mc.offset(progress, k * runs, total)
        reps = mc.run(sc, runs, seed, pool, confidence=confidence, progress=step, budget=UNLIMITED)
        if reps.stopped == "interrupted":
            raise KeyboardInterrupt
        results[label] = reps
    attribution = None
    if plan is not None:
        step = mc.offset(progress, len(scenarios) * runs, total)
        attribution = _attribute(plan, runs, seed, pool, (names[0], names[1]), list(results.values()), confidence, step)
    return Comparison(names, results, seed, confidence, attribution)


def _labels(names: list[str]) -> list[str]:
    """Scenario names, made unique with ``#2``, ``#3`` where they repeat."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


# ---------------------------------------------------------------------------
# Lever attribution: Shapley values over the groups of parameters that differ

MAX_LEVERS = 8
"""Exact Shapley values need every one of the 2**K combinations of K levers simulated."""

NOT_LEVERS = ("name", "description", "seed", "prior_year_revenue")
"""Top-level keys that label a scenario or frame its results without changing the simulation."""


@dataclass(frozen=True)
class Lever:
    """A group of parameters switched together from the first scenario's values to the second's.

    ``paths`` are the dotted paths of the parameters that differ (empty for a named
    lever whose parameters are the same in both scenarios: it changes nothing);
    ``before`` and ``after`` their values in the two scenarios (``None``: absent).
    """

    name: str
    paths: tuple[str, ...]
    before: dict[str, Any]
    after: dict[str, Any]


def differences(a: Scenario, b: Scenario) -> dict[str, tuple[Any, Any]]:
    """The parameters that differ between two resolved scenarios, by dotted path.

    Sections and named entries (``sources.inbound``, ``personas.buyer``) are walked
    down to single parameters; a distribution, a mix, a list or an entry present in
    only one scenario is one parameter. Labels (:data:`NOT_LEVERS`) are left out.
    """
    found: dict[str, tuple[Any, Any]] = {}
    _walk_differences(a, b, "", found)
    return found


def _walk_differences(a: Any, b: Any, path: str, found: dict[str, tuple[Any, Any]]) -> None:
    if _is_section(a) and _is_section(b):
        for key in type(a).model_fields:
            if path or key not in NOT_LEVERS:
                _walk_differences(getattr(a, key), getattr(b, key), f"{path}.{key}" if path else key, found)
        return
    if _is_named_entries(a) and _is_named_entries(b):
        for key in dict.fromkeys([*a, *b]):
            _walk_differences(a.get(key), b.get(key), f"{path}.{key}", found)
        return
    plain_a, plain_b = _plain(a), _plain(b)
    if plain_a != plain_b:
        found[path] = (plain_a, plain_b)


def _is_section(value: Any) -> bool:
    return isinstance(value, BaseModel) and not isinstance(value, Spec)


def _is_named_entries(value: Any) -> bool:
    """A table of named sections, such as ``sources`` or ``personas``."""
    return isinstance(value, dict) and bool(value) and all(_is_section(v) for v in value.values())


def _plain(value: Any) -> Any:
    """A parameter as plain data (what ``Scenario.to_dict`` holds for it)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def find_levers(a: Scenario, b: Scenario, named: Mapping[str, Sequence[str]] | None = None) -> list[Lever]:
    """Group what differs between ``a`` and ``b`` into levers.

    Parameters
    ----------
    a, b
        The two resolved scenarios.
    named
        ``{lever name: [dotted path or section, ...]}``: every differing parameter at
        or under one of these paths belongs to that lever (to the most specific path
        when several hold it). The remaining differences
        are grouped by the scenario section (TOML table) they sit in:
        ``handoff.follow_up_rate`` and ``handoff.response_delay_days`` are the lever
        ``handoff``, ``qualification.mql.threshold`` is ``qualification.mql``.

    Raises
    ------
    CompareError
        A named path that exists in neither scenario, a path named by two levers,
        or more than :data:`MAX_LEVERS` levers.
    """
    diff = differences(a, b)
    named = dict(named or {})
    raw_a, raw_b = a.to_dict(), b.to_dict()
    claimed: dict[str, str] = {}
    for lever, prefixes in named.items():
        if not prefixes:
            raise CompareError(f"lever {lever!r} names no parameters")
        for prefix in prefixes:
            if get_path(raw_a, prefix) is MISSING and get_path(raw_b, prefix) is MISSING:
                raise CompareError(f"lever {lever!r}: no parameter or section {prefix!r} in either scenario")
            if claimed.setdefault(prefix, lever) != lever:
                raise CompareError(f"{prefix} is in two levers: {claimed[prefix]!r} and {lever!r}")
    owner: dict[str, str] = {}
    for path in diff:
        # The most specific named path wins: --lever cost=sales.ae.cost_per_year --lever sales=sales.
        matches = [p for p in claimed if path == p or path.startswith(p + ".")]
        if matches:
            owner[path] = claimed[max(matches, key=len)]
    groups: dict[str, list[str]] = {name: [] for name in named}
    for path in diff:
        name = owner.get(path) or _section_of(path, raw_a, raw_b)
        groups.setdefault(name, []).append(path)
    if len(groups) > MAX_LEVERS:
        listed = ", ".join(groups)
        raise CompareError(
            f"{len(groups)} levers differ ({listed}); exact Shapley attribution is limited to {MAX_LEVERS} "
            "(2**K scenarios): group parameters into fewer levers with --lever NAME=PATH[,PATH...]"
        )
    return [
        Lever(name, tuple(paths), {p: diff[p][0] for p in paths}, {p: diff[p][1] for p in paths})
        for name, paths in groups.items()
    ]


def _section_of(path: str, raw_a: dict[str, Any], raw_b: dict[str, Any]) -> str:
    """The scenario table a parameter sits in; an entry added or removed as a whole is its own lever."""
    parent, _, _ = path.rpartition(".")
    if not parent:
        return "scenario"
    if get_path(raw_a, path) is MISSING or get_path(raw_b, path) is MISSING:
        return path
    return parent


def coalition_scenario(a: Scenario, b: Scenario, levers: Sequence[Lever], label: str = "") -> Scenario:
    """``a`` with every parameter of ``levers`` set to its value in ``b``, validated again.

    Raises
    ------
    CompareError
        The mix is not a valid scenario (e.g. one scoring weight from each): the
        message names the levers and suggests grouping them.
    """
    raw = set_paths(a.to_dict(), {path: lever.after[path] for lever in levers for path in lever.paths})
    try:
        return parse_scenario(raw, label or f"{a.name} with {', '.join(lv.name for lv in levers) or 'no levers'}")
    except ScenarioError as exc:
        names = ", ".join(lv.name for lv in levers)
        problems = "; ".join(line.strip() for line in str(exc).splitlines())
        raise CompareError(
            f"switching only {names} gives an invalid scenario ({problems}); "
            "group the parameters that must change together into one lever with --lever NAME=PATH,PATH"
        ) from None


def _simulation_key(scenario: Scenario) -> str:
    """What decides a scenario's replications: everything but its labels."""
    data = {k: v for k, v in scenario.to_dict().items() if k not in NOT_LEVERS}
    return json.dumps(data, sort_keys=True)


@dataclass(frozen=True)
class Attribution:
    """The Shapley decomposition of ``metric(b) - metric(a)`` over the levers, per replication.

    ``values[mask]`` is the replication table of ``a`` with the levers in bit ``mask``
    switched to ``b`` (``0`` is ``a``, ``2**K - 1`` is ``b``), all on the same seeds.
    """

    labels: tuple[str, str]
    levers: list[Lever]
    values: dict[int, pd.DataFrame]
    seed: int
    confidence: float = 0.95

    def _metric(self, mask: int, metric: str) -> np.ndarray:
        return self.values[mask].sort_values("replication")[metric].to_numpy(float)

    def contributions(self, metric: str = "revenue") -> np.ndarray:
        """Shapley value of each lever in each replication, shape ``(levers, replications)``.

        phi_i = sum over coalitions S without i of |S|! (K-|S|-1)! / K! * (v(S+i) - v(S)),
        with v(S) the metric of replication r of ``a`` with the levers in S switched.
        Per replication the phi_i add up to ``v(all) - v(none)``, i.e. ``b - a``.
        """
        k = len(self.levers)
        weight = [math.factorial(s) * math.factorial(k - s - 1) / math.factorial(k) for s in range(k)]
        v = {mask: self._metric(mask, metric) for mask in range(1 << k)}
        out = np.zeros((k, len(v[0])))
        for i in range(k):
            bit = 1 << i
            for mask in range(1 << k):
                if not mask & bit:
                    out[i] += weight[mask.bit_count()] * (v[mask | bit] - v[mask])
        return out

    def table(self, metric: str = "revenue") -> pd.DataFrame:
        """One row per lever, then ``total``: ``contribution`` (mean Shapley value) with its
        Student-t interval over replications, ``share_of_gap``, ``alone`` (the gain of
        switching only this lever in ``a``) and ``last`` (the loss of switching only it
        back in ``b``), and the parameters it covers."""
        phi = self.contributions(metric)
        full = (1 << len(self.levers)) - 1
        gap = self._metric(full, metric) - self._metric(0, metric)
        zeros = np.zeros_like(gap)
        rows = []
        for i, lever in enumerate(self.levers):
            bit = 1 << i
            interval = paired_difference(zeros, phi[i], self.confidence)
            rows.append({
                "lever": lever.name,
                "contribution": interval["difference"],
                "ci_low": interval["ci_low"],
                "ci_high": interval["ci_high"],
                "share_of_gap": interval["difference"] / gap.mean() if gap.mean() else math.nan,
                "alone": float(np.mean(self._metric(bit, metric) - self._metric(0, metric))),
                "last": float(np.mean(self._metric(full, metric) - self._metric(full & ~bit, metric))),
                "parameters": " ".join(lever.paths),
            })  # fmt: skip
        total = paired_difference(zeros, gap, self.confidence)
        rows.append({
            "lever": "total", "contribution": total["difference"], "ci_low": total["ci_low"],
            "ci_high": total["ci_high"], "share_of_gap": 1.0 if gap.mean() else math.nan,
            "alone": math.nan, "last": math.nan, "parameters": "",
        })  # fmt: skip
        return pd.DataFrame(rows)

    def start(self, metric: str = "revenue") -> float:
        """Mean of ``metric`` in the first scenario (where the waterfall starts)."""
        return float(self._metric(0, metric).mean())

    def to_json(self, metric: str = "revenue") -> dict[str, Any]:
        """``metric``, ``start`` (the first scenario's mean) and ``levers``: per lever its
        ``contribution``, interval, ``share_of_gap``, ``alone``, ``last`` and ``parameters``
        (a list), with ``total`` last."""
        rows = self.table(metric).to_dict("records")
        for row in rows:
            row["parameters"] = row["parameters"].split()
        levers = {row.pop("lever"): row for row in rows}
        return json_ready({"metric": metric, "start": self.start(metric), "levers": levers})

    def coalitions(self, metric: str = "revenue") -> pd.DataFrame:
        """Every simulated combination: ``mask``, the ``levers`` switched, and the metric's mean."""
        return pd.DataFrame(
            [
                {
                    "mask": mask,
                    "levers": " + ".join(lv.name for i, lv in enumerate(self.levers) if mask >> i & 1) or "(none)",
                    metric: float(self._metric(mask, metric).mean()),
                }
                for mask in sorted(self.values)
            ]
        )


def attribute(
    a: Scenario,
    b: Scenario,
    runs: int,
    seed: int,
    pool: Executor | None = None,
    *,
    levers: Mapping[str, Sequence[str]] | None = None,
    labels: tuple[str, str] | None = None,
    known: Sequence[mc.Replications] = (),
    confidence: float = 0.95,
    progress: mc.Progress | None = None,
) -> Attribution:
    """Shapley attribution of the difference between ``b`` and ``a`` to the levers that differ.

    Every combination of levers is simulated on replications ``0 .. runs-1`` of
    ``seed`` (common random numbers); combinations that give the same scenario are
    simulated once, so a lever that changes nothing gets exactly zero. ``known``
    replications (same seed and runs, e.g. from :func:`compare`) are reused.

    Raises
    ------
    CompareError
        See :func:`find_levers` and :func:`coalition_scenario`; or fewer than two runs.
    KeyboardInterrupt
        If a run is interrupted.
    """
    if runs < 2:
        raise CompareError(f"--runs must be >= 2 to attribute, got {runs}")
    labels = labels or (a.name, b.name)
    return _attribute(_combinations(a, b, levers), runs, seed, pool, labels, known, confidence, progress)


@dataclass(frozen=True)
class _Combinations:
    """The levers between two scenarios, each combination's scenario key, and the distinct scenarios."""

    levers: list[Lever]
    key: dict[int, str]  # by mask: bit i set = lever i switched to the second scenario's values
    distinct: dict[str, Scenario]


def _combinations(a: Scenario, b: Scenario, levers: Mapping[str, Sequence[str]] | None) -> _Combinations:
    found = find_levers(a, b, levers)
    keys: dict[int, str] = {}
    distinct: dict[str, Scenario] = {}
    for mask in range(1 << len(found)):
        sc = coalition_scenario(a, b, [lv for i, lv in enumerate(found) if mask >> i & 1])
        keys[mask] = _simulation_key(sc)
        distinct.setdefault(keys[mask], sc)
    if keys[(1 << len(found)) - 1] != _simulation_key(b):
        raise AssertionError("switching every lever did not reproduce the second scenario")  # a bug, not bad input
    return _Combinations(found, keys, distinct)


def _attribute(
    plan: _Combinations,
    runs: int,
    seed: int,
    pool: Executor | None,
    labels: tuple[str, str],
    known: Sequence[mc.Replications],
    confidence: float,
    progress: mc.Progress | None,
) -> Attribution:
    cache = {_simulation_key(r.scenario): r.table for r in known if r.seed == seed and r.completed == runs}
    todo = [key for key in plan.distinct if key not in cache]
    for k, key in enumerate(todo):
        step = mc.offset(progress, k * runs, len(todo) * runs)
        reps = mc.run(plan.distinct[key], runs, seed, pool, confidence=confidence, progress=step, budget=UNLIMITED)
        if reps.stopped == "interrupted":
            raise KeyboardInterrupt
        cache[key] = reps.table
    values = {mask: cache[key] for mask, key in plan.key.items()}
    return Attribution(labels, plan.levers, values, seed, confidence)
