"""What-if grids of one or two parameters, on common random numbers.

A **sweep** varies one or two scenario parameters over a grid ``x_1 .. x_K`` (two
parameters: their product, ``K = K_1 K_2``). Every grid point runs replications
``0 .. N-1`` of the same seed, so replication ``i`` of two points sees the same leads with
the same traits and draws (docs/model.md section 14) and the per-replication difference
``Y_i(x_k) - Y_i(x_j)`` isolates the effect of the parameter with little of the
year-to-year noise. Per point the metric's mean has a Student-t interval and
P10/P50/P90 across replications; between points, the paired interval of
:func:`funnelsim.studies.stats.paired_difference`.

The best point ``k* = argmax_k mean_k`` (argmin for costs and times) is *interior* when it
is not on the edge of the range of any parameter; an interior optimum whose neighbours
are significantly worse (their paired interval against ``k*`` excludes 0) is a real
optimum, not noise. Picking the best of K noisy means favours a point that was lucky,
so its neighbours' differences are slightly optimistic for ``k*``; the paired intervals
keep that selection effect small when the differences are large against their widths.

One-at-a-time sensitivity is :mod:`funnelsim.studies.sensitivity`.
"""

from __future__ import annotations

import difflib
import itertools
import math
import typing
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from funnelsim.model.loading import parse_scenario
from funnelsim.model.paths import MISSING, all_paths, get_effective, parse_value, set_paths
from funnelsim.model.scenario import Scenario
from funnelsim.randomness import resolve_seed
from funnelsim.studies import replications as mc
from funnelsim.studies.stats import describe, json_ready, paired_difference
from funnelsim.studies.workload import UNLIMITED, Budget, largest, workers_of

__all__ = [
    "LOWER_IS_BETTER",
    "SWEEP_METRICS",
    "Optimum",
    "Sweep",
    "SweepError",
    "check_metrics",
    "parse_param",
    "sweep",
    "with_values",
]

# Columns of Sweep.table by default: the headline metrics and what explains them.
SWEEP_METRICS = (
    *mc.HEADLINE,
    "opportunities",
    "mql_to_sql",
    "win_rate",
    "cac",
    "total_cost",
    "sdr_utilisation",
    "ae_utilisation",
)
# Metrics whose best value is the smallest (the optimum of a sweep is their minimum).
LOWER_IS_BETTER = frozenset(
    {
        "cac",
        "cost_per_mql",
        "cost_per_sql",
        "cost_per_win",
        "total_cost",
        "marketing_cost",
        "sales_cost",
        "sdr_cost",
        "ae_cost",
        "median_cycle_days",
        "median_lead_to_win_days",
    }
)
STATISTICS = ("mean", "ci_low", "ci_high", "p10", "p50", "p90")
MAX_PARAMETERS = 2


class SweepError(ValueError):
    """A sweep or sensitivity request that cannot be carried out as asked."""


# ---------------------------------------------------------------------------
# Grid specifications and overrides on the resolved scenario


def parse_param(spec: str) -> tuple[str, list[Any]]:
    """A ``--param`` specification as ``(path, values)``.

    ``path=lo:hi:n`` gives ``n >= 2`` evenly spaced values from ``lo`` to ``hi``
    (whole numbers when ``lo`` and ``hi`` are and the step is whole);
    ``path=v1,v2,...`` gives the listed values, each read as a TOML value (a number,
    a quoted string, ``true``), or as text.

    Raises
    ------
    SweepError
        No ``=``, an empty path, a range that is not ``lo:hi:n`` with numbers and an
        integer ``n >= 2``, or fewer than two values.
    """
    path, sep, text = spec.partition("=")
    path, text = path.strip(), text.strip()
    if not sep or not path or not all(part.strip() for part in path.split(".")):
        raise SweepError(f"--param: expected dotted.path=lo:hi:n or dotted.path=v1,v2,..., got {spec!r}")
    if ":" in text and "{" not in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise SweepError(f"--param {path}: a range is lo:hi:n, got {text!r}")
        lo, hi, n = (parse_value(p) for p in parts)
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in (lo, hi)):
            raise SweepError(f"--param {path}: lo and hi of lo:hi:n must be numbers, got {text!r}")
        if not isinstance(n, int) or isinstance(n, bool) or n < 2:
            raise SweepError(f"--param {path}: n of lo:hi:n must be a whole number >= 2, got {parts[2].strip()!r}")
        _check_grid_size(n, f"--param {path}: ")
        if isinstance(lo, int) and isinstance(hi, int) and (hi - lo) % (n - 1) == 0:
            return path, [lo + k * ((hi - lo) // (n - 1)) for k in range(n)]
        # Rounded to 12 digits so that 0.3 + 3 * 0.05 reads 0.45 in tables and file names.
        return path, [round(float(x), 12) for x in np.linspace(float(lo), float(hi), n)]
    values = [parse_value(v) for v in text.split(",")] if text else []
    if len(values) < 2:
        raise SweepError(f"--param {path}: give at least two values (v1,v2,...) or a range lo:hi:n, got {text!r}")
    return path, values


# A grid is a list of scenarios validated up front: past this many points the list alone
# would take gigabytes, and the simulations days. Refused at parse time, before any allocation.
MAX_GRID_POINTS = 10_000


def _check_grid_size(points: int, where: str = "--param: ") -> None:
    if points > MAX_GRID_POINTS:
        raise SweepError(
            f"{where}a grid of {points:,} points is above the {MAX_GRID_POINTS:,} a sweep can hold; "
            "use fewer points (lo:hi:n with a smaller n) or sweep in stages"
        )


def _check_path(raw: dict[str, Any], path: str, option: str = "--param") -> None:
    # A segment's key it inherits from the top level is a parameter too (segments.<name>.sales.ae.count).
    if get_effective(raw, path) is MISSING:
        known = all_paths(raw)
        hint = difflib.get_close_matches(path, known, n=1, cutoff=0.6)
        raise SweepError(
            f"{option} {path}: no such parameter in the scenario"
            + (f" (did you mean {hint[0]!r}?)" if hint else "; paths are as for --set, e.g. sales.win_rate")
        )


def with_values(raw: dict[str, Any], values: Mapping[str, Any], source: str) -> Scenario:
    """The resolved scenario ``raw`` with each dotted path set to its value, re-validated."""
    return parse_scenario(set_paths(raw, values), source)


def _label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------
# Sweeps


@dataclass(frozen=True)
class Optimum:
    """The best grid point of one metric and how sure we are of it.

    ``interior`` is true when the point is on the edge of no parameter's range;
    ``neighbours`` has one row per adjacent grid point (one step along one parameter)
    with its mean and the paired ``difference`` (neighbour minus optimum) with
    ``diff_ci_low``/``diff_ci_high`` and ``significant`` (the interval excludes 0).
    """

    metric: str
    maximize: bool
    point: int
    values: dict[str, Any]
    mean: float
    ci_low: float
    ci_high: float
    interior: bool
    neighbours: pd.DataFrame

    @property
    def distinguishable(self) -> bool:
        """Every neighbour is significantly different from the optimum (paired interval)."""
        return bool(len(self.neighbours)) and bool(self.neighbours["significant"].all())

    def to_json(self) -> dict[str, Any]:
        return json_ready(
            {
                "metric": self.metric,
                "maximize": self.maximize,
                "point": self.point,
                "values": self.values,
                "mean": self.mean,
                "ci_low": self.ci_low,
                "ci_high": self.ci_high,
                "interior": self.interior,
                "distinguishable": self.distinguishable,
                "neighbours": self.neighbours.to_dict("records"),
            }
        )


@dataclass(frozen=True)
class Sweep:
    """A grid of one or two parameters, each point run on the same replications.

    ``axes`` maps each parameter's dotted path to its values, in grid order (the first
    parameter varies slowest); ``grid`` has one row per point (``point`` and one column
    per parameter); ``runs`` holds each point's
    :class:`~funnelsim.studies.replications.Replications`.
    """

    scenario: Scenario
    axes: dict[str, list[Any]]
    grid: pd.DataFrame
    runs: tuple[mc.Replications, ...]
    seed: int
    confidence: float = 0.95

    @property
    def parameters(self) -> list[str]:
        return list(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.axes.values())

    @property
    def n_runs(self) -> int:
        return self.runs[0].completed

    def table(self, metrics: str | Sequence[str] = SWEEP_METRICS) -> pd.DataFrame:
        """One row per grid point: ``point``, the parameter values, ``runs``, and for each
        metric ``<metric>_mean``, ``_ci_low``, ``_ci_high`` (Student-t interval of the mean),
        ``_p10``, ``_p50``, ``_p90`` (across replications)."""
        metrics = [metrics] if isinstance(metrics, str) else list(metrics)
        self.check_metrics(metrics)
        rows = []
        for point, reps in zip(self._points(), self.runs, strict=True):
            row: dict[str, Any] = point | {"runs": reps.completed}
            for metric in metrics:
                described = describe(reps.table[metric].to_numpy(float), self.confidence)
                row |= {f"{metric}_{stat}": described[stat] for stat in STATISTICS}
            rows.append(row)
        return pd.DataFrame(rows)

    def replications(self) -> pd.DataFrame:
        """Every point's replication table, stacked, with ``point`` and the parameter values first."""
        frames = []
        for point, reps in zip(self._points(), self.runs, strict=True):
            front = pd.DataFrame({k: [v] * reps.completed for k, v in point.items()})
            frames.append(pd.concat([front, reps.table.reset_index(drop=True)], axis=1))
        return pd.concat(frames, ignore_index=True)

    def differences(self, metric: str = "revenue", against: int | None = None) -> pd.DataFrame:
        """Every point against one (default: the optimum of ``metric``), on paired replications.

        Columns: ``point``, the parameter values, ``mean``, ``difference`` (point minus
        reference), ``diff_ci_low``, ``diff_ci_high``, ``paired_half_width``,
        ``unpaired_half_width`` and ``significant`` (the paired interval excludes 0).
        """
        self.check_metrics([metric])
        ref = self.optimum(metric).point if against is None else against
        if not 0 <= ref < len(self.runs):
            raise SweepError(f"no grid point {ref}; points are 0 .. {len(self.runs) - 1}")
        base = self._values(ref, metric)
        rows = []
        for point in self._points():
            values = self._values(point["point"], metric)
            pair = paired_difference(base, values, self.confidence)
            rows.append(
                point
                | {
                    "mean": float(np.nanmean(values)) if np.isfinite(values).any() else math.nan,
                    "difference": pair["difference"],
                    "diff_ci_low": pair["ci_low"],
                    "diff_ci_high": pair["ci_high"],
                    "paired_half_width": pair["half_width"],
                    "unpaired_half_width": pair["unpaired_half_width"],
                    "significant": bool(pair["ci_low"] > 0 or pair["ci_high"] < 0),
                }
            )
        return pd.DataFrame(rows)

    def optimum(self, metric: str = "revenue", maximize: bool | None = None) -> Optimum:
        """The grid point with the best mean ``metric`` (largest, or smallest for the
        metrics in :data:`LOWER_IS_BETTER` unless ``maximize`` says otherwise)."""
        self.check_metrics([metric])
        maximize = metric not in LOWER_IS_BETTER if maximize is None else maximize
        means = np.array([describe(self._values(k, metric))["mean"] for k in range(len(self.runs))])
        if np.isnan(means).all():
            raise SweepError(f"{metric} is undefined at every grid point; no optimum")
        best = int(np.nanargmax(means) if maximize else np.nanargmin(means))
        index = np.unravel_index(best, self.shape)
        interior = all(0 < i < n - 1 for i, n in zip(index, self.shape, strict=True))
        neighbours = []
        for axis, n in enumerate(self.shape):
            for step in (-1, 1):
                j = list(index)
                j[axis] += step
                if 0 <= j[axis] < n:
                    neighbours.append(int(np.ravel_multi_index(tuple(j), self.shape)))
        diffs = self.differences(metric, against=best)
        described = describe(self._values(best, metric), self.confidence)
        return Optimum(
            metric=metric,
            maximize=maximize,
            point=best,
            values={p: self.axes[p][i] for p, i in zip(self.parameters, index, strict=True)},
            mean=described["mean"],
            ci_low=described["ci_low"],
            ci_high=described["ci_high"],
            interior=interior,
            neighbours=diffs[diffs["point"].isin(neighbours)].reset_index(drop=True),
        )

    def to_json(self, metric: str = "revenue") -> dict[str, Any]:
        """The ``--json`` document (keys in docs/outputs.md)."""
        return json_ready(
            {
                "scenario": self.scenario.name,
                "seed": self.seed,
                "runs": self.n_runs,
                "confidence": self.confidence,
                "currency": self.scenario.currency,
                "parameters": {k: list(v) for k, v in self.axes.items()},
                "metric": metric,
                "points": self.table().to_dict("records"),
                "optimum": self.optimum(metric).to_json(),
            }
        )

    def _points(self) -> list[dict[str, Any]]:
        # Records keep each column's type (an SDR count stays an int), unlike iterrows.
        return typing.cast(list[dict[str, Any]], self.grid.to_dict("records"))

    def _values(self, point: int, metric: str) -> np.ndarray:
        return self.runs[point].table.sort_values("replication")[metric].to_numpy(float)

    def check_metrics(self, metrics: Sequence[str]) -> None:
        check_metrics(self.runs[0], metrics)


def check_metrics(reps: mc.Replications, metrics: Sequence[str]) -> None:
    known = reps.metrics
    for metric in metrics:
        if metric not in known:
            hint = difflib.get_close_matches(metric, known, n=1)
            raise SweepError(
                f"--metric: unknown metric {metric!r}"
                + (f" (did you mean {hint[0]!r}?)" if hint else f"; one of {', '.join(known)}")
            )


def sweep(
    scenario: Scenario,
    params: Mapping[str, Sequence[Any]] | Sequence[tuple[str, Sequence[Any]]],
    runs: int,
    seed: int | None,
    pool: Executor | None = None,
    *,
    metric: str = "revenue",
    progress: mc.Progress | None = None,
    budget: Budget | None = None,
    confidence: float = 0.95,
) -> Sweep:
    """Run replications ``0 .. runs-1`` of ``seed`` at every point of a one- or two-parameter grid.

    Parameters
    ----------
    scenario
        The base; each point is this scenario with the parameters set.
    params
        ``{dotted.path: [values]}`` (or ``(path, values)`` pairs), one or two
        parameters, paths as for ``--set`` (e.g. ``qualification.mql.threshold``,
        ``sales.cycle_days.mean``). The first varies slowest.
    runs
        Replications per point (>= 2, to pair them).
    seed
        Root seed (None: the scenario's).
    metric
        Checked against the metrics a run reports, after the first point (the tables
        hold every metric whatever this is).
    progress
        Called with ``(done, total)`` replications over the whole grid.
    budget
        The work allowed (:class:`funnelsim.studies.workload.Budget`), judged on the whole grid first.

    Raises
    ------
    SweepError
        No or more than two parameters, a repeated or unknown path, ``seed`` as a
        parameter, fewer than two values, fewer than two runs, an unknown metric.
    ScenarioError
        A value the scenario does not accept (naming the path and the value); every
        point is checked before anything runs.
    KeyboardInterrupt
        If a run is interrupted (nothing is reported on a partial grid).
    """
    items = list(params.items()) if isinstance(params, Mapping) else [(p, list(v)) for p, v in params]
    raw = scenario.to_dict()
    # Paths are checked against every key, also those to_dict leaves out at their default (a
    # feature the scenario does not use yet, e.g. handoff.response_clock).
    axes = _checked_axes(scenario.model_dump(mode="json", by_alias=True), items, runs)
    paths = list(axes)
    _check_grid_size(math.prod(len(v) for v in axes.values()))
    combos = list(itertools.product(*axes.values()))
    # Validate every point first: a bad value fails at once, not after an hour of simulation.
    scenarios = [
        with_values(
            raw,
            dict(zip(paths, combo, strict=True)),
            "--param " + ", ".join(f"{p}={_label(v)}" for p, v in zip(paths, combo, strict=True)),
        )
        for combo in combos
    ]
    grid = pd.DataFrame([{"point": k, **dict(zip(paths, c, strict=True))} for k, c in enumerate(combos)])
    seed = resolve_seed(scenario, seed)
    total = len(scenarios) * runs
    (budget or Budget()).admit(largest(scenarios, total, workers_of(pool)), "this sweep")
    scenarios = mc.same_burn_in(scenarios, seed, [scenario])  # every point on the base's warm start
    results = []
    for k, sc in enumerate(scenarios):
        step = mc.offset(progress, k * runs, total)
        reps = mc.run(sc, runs, seed, pool, confidence=confidence, progress=step, budget=UNLIMITED)
        if reps.stopped == "interrupted":
            raise KeyboardInterrupt
        if k == 0:
            check_metrics(reps, [metric])
        results.append(reps)
    return Sweep(scenario, axes, grid, tuple(results), seed, confidence)


def _checked_axes(raw: dict[str, Any], items: list[tuple[str, Any]], runs: int) -> dict[str, list[Any]]:
    """The grid's axes ``{path: values}``, after refusing what cannot be swept (each message names ``--param``)."""
    if not items:
        raise SweepError("--param: give one or two parameters to sweep")
    if len(items) > MAX_PARAMETERS:
        raise SweepError(f"--param: a sweep varies one or two parameters, got {len(items)}: {[p for p, _ in items]}")
    paths = [p for p, _ in items]
    if len(set(paths)) != len(paths):
        raise SweepError(f"--param: the same parameter twice: {paths}")
    if runs < 2:
        raise SweepError(f"--runs must be >= 2 to pair grid points, got {runs}")
    for path, values in items:
        if path == "seed":
            raise SweepError("--param seed: the seed is not a model parameter; choose it with --seed")
        _check_path(raw, path)
        if len(values) < 2:
            raise SweepError(f"--param {path}: give at least two values, got {list(values)}")
        if len({repr(v) for v in values}) != len(values):
            raise SweepError(f"--param {path}: the values must differ, got {list(values)}")
    return {path: list(values) for path, values in items}


# ---------------------------------------------------------------------------
# Sensitivity
