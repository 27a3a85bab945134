"""What-if grids and one-at-a-time sensitivity, on common random numbers.

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

**Sensitivity** moves each numeric parameter ``θ_j`` one at a time to ``θ_j (1 - by)``
and ``θ_j (1 + by)``, everything else at its base value, all on the base's replications:

* swing ``= max(Y(low), Y(base), Y(high)) - min(...)``: the range the metric spans, which is
  ``|Y(high) - Y(low)|`` for a monotone effect and does not vanish at an optimum where
  both sides lose,
* elasticity ``= [(Y(high) - Y(low)) / Y(base)] / [(θ_high - θ_low) / θ_base]``, the
  relative change of the metric per relative change of the parameter (at the values
  actually used).

What ``±by`` means for each kind of parameter:

* a number: multiplied by ``1 ± by`` and clipped to its allowed range (shares to [0, 1]);
  a side whose value falls outside an *open* bound (e.g. a contact rate that must stay
  below 1) is not run and reported as such, because no value beside the bound is more
  natural than another;
* a count (SDRs, AEs, slots): rounded, and moved by at least one;
* a distribution: its mean is scaled by ``1 ± by`` with the coefficient of variation kept
  (lognormal and gamma ``mean`` and ``sd`` both scaled, exponential ``mean``, Weibull
  ``scale``, uniform/triangular/empirical/fixed every value), so the shape stays and
  only the scale moves; a beta on [0, 1] keeps its concentration ``a + b`` (its
  "observations") and moves its mean: ``a' = m' (a + b)``, ``b' = (1 - m')(a + b)``,
  because keeping the CV of a beta can be impossible. Distributions on [0, 1] are
  clipped to [0, 1]; the mean actually used is reported.

Not varied, and listed in :attr:`Sensitivity.skipped` with the reason: the seed, the
horizon and dates, labels and categorical choices, weights and mixes that must sum to 1,
monthly profiles (seasonality, ramp), the speed-to-lead curve's knots, hire schedules,
values that are not set, and values that are zero (``±by`` of 0 is 0).
"""

from __future__ import annotations

import datetime as dt
import difflib
import fnmatch
import itertools
import math
import types
import typing
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Annotated, Any

import annotated_types
import numpy as np
import pandas as pd
from pydantic import AfterValidator, BaseModel
from pydantic.fields import FieldInfo

from funnelsim.model.distributions import Spec, check_unit
from funnelsim.model.loading import parse_scenario
from funnelsim.model.paths import all_paths, get_attribute, parse_value, set_paths
from funnelsim.model.scenario import Scenario
from funnelsim.run.result import resolve_seed
from funnelsim.studies import replications as mc
from funnelsim.studies.stats import describe, json_ready, paired_difference
from funnelsim.studies.workload import UNLIMITED, Budget, largest, workers_of

__all__ = [
    "LOWER_IS_BETTER",
    "SWEEP_METRICS",
    "Optimum",
    "Perturbation",
    "Sensitivity",
    "Sweep",
    "SweepError",
    "parse_param",
    "sensitivity",
    "sensitivity_parameters",
    "sweep",
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

_CURVE = "the speed-to-lead curve's knots (its shape, fitted to published ratios)"
# Parameters sensitivity never varies, by glob over the dotted path, with the reason.
EXCLUDED: tuple[tuple[str, str], ...] = (
    ("seed", "the random seed, not a model parameter (choose it with --seed)"),
    ("horizon_days", "the length of the simulated period: changes what is counted, not how the funnel works"),
    ("start_date", "a date"),
    ("prior_year_*", "a reference figure for reports, not a model parameter"),
    ("name", "a label"),
    ("description", "a label"),
    ("currency", "a label"),
    ("sources.*.persona_mix", "a mix: shares that must sum to 1"),
    ("sources.*.seasonality", "a monthly profile (12 multipliers); the source's volume is varied instead"),
    ("sources.*.entry_stage", "a choice, not a number"),
    ("qualification.*.fit_weight", "weights that must sum to 1 (fit_weight + engagement_weight)"),
    ("qualification.*.engagement_weight", "weights that must sum to 1 (fit_weight + engagement_weight)"),
    ("handoff.speed_to_lead.knots_hours", _CURVE),
    ("handoff.speed_to_lead.odds_multiplier", _CURVE),
    ("sales.ae.hires", "a hiring schedule (dates and counts); sweep it instead"),
    ("sales.ae.ramp", "a productivity profile per month after joining"),
    ("sales.queue", "a choice, not a number"),
    ("prospecting.persona", "a choice, not a number"),
)


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
    node: Any = raw
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            known = all_paths(raw)
            hint = difflib.get_close_matches(path, known, n=1, cutoff=0.6)
            raise SweepError(
                f"{option} {path}: no such parameter in the scenario"
                + (f" (did you mean {hint[0]!r}?)" if hint else "; paths are as for --set, e.g. sales.win_rate")
            )
        node = node[part]


def _with_values(raw: dict[str, Any], values: Mapping[str, Any], source: str) -> Scenario:
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
        self._check_metrics(metrics)
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
        self._check_metrics([metric])
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
        self._check_metrics([metric])
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

    def _check_metrics(self, metrics: Sequence[str]) -> None:
        _check_metrics(self.runs[0], metrics)


def _check_metrics(reps: mc.Replications, metrics: Sequence[str]) -> None:
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
    if not items:
        raise SweepError("--param: give one or two parameters to sweep")
    if len(items) > MAX_PARAMETERS:
        raise SweepError(f"--param: a sweep varies one or two parameters, got {len(items)}: {[p for p, _ in items]}")
    paths = [p for p, _ in items]
    if len(set(paths)) != len(paths):
        raise SweepError(f"--param: the same parameter twice: {paths}")
    if runs < 2:
        raise SweepError(f"--runs must be >= 2 to pair grid points, got {runs}")
    raw = scenario.to_dict()
    for path, values in items:
        if path == "seed":
            raise SweepError("--param seed: the seed is not a model parameter; choose it with --seed")
        _check_path(raw, path)
        if len(values) < 2:
            raise SweepError(f"--param {path}: give at least two values, got {list(values)}")
        if len({repr(v) for v in values}) != len(values):
            raise SweepError(f"--param {path}: the values must differ, got {list(values)}")
    axes = {path: list(values) for path, values in items}
    _check_grid_size(math.prod(len(v) for v in axes.values()))
    combos = list(itertools.product(*axes.values()))
    # Validate every point first: a bad value fails at once, not after an hour of simulation.
    scenarios = [
        _with_values(
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
    results = []
    for k, sc in enumerate(scenarios):
        step = mc.offset(progress, k * runs, total)
        reps = mc.run(sc, runs, seed, pool, confidence=confidence, progress=step, budget=UNLIMITED)
        if reps.stopped == "interrupted":
            raise KeyboardInterrupt
        if k == 0:
            _check_metrics(reps, [metric])
        results.append(reps)
    return Sweep(scenario, axes, grid, tuple(results), seed, confidence)


# ---------------------------------------------------------------------------
# Sensitivity


@dataclass(frozen=True)
class Perturbation:
    """One parameter moved to its low and high value (``None``: that side equals the base).

    ``base_value``, ``low_value`` and ``high_value`` are the numbers actually used (for a
    distribution, its mean); ``kind`` is ``number``, ``count`` or ``distribution``;
    ``note`` says what was clipped, rounded or not run.
    """

    parameter: str
    kind: str
    base_value: float
    low_value: float
    high_value: float
    low: Scenario | None = field(repr=False)
    high: Scenario | None = field(repr=False)
    note: str = ""


def _excluded(path: str) -> str | None:
    for pattern, reason in EXCLUDED:
        if fnmatch.fnmatchcase(path, pattern):
            return reason
    return None


def _metadata(node: Any) -> list[Any]:
    """Every constraint object inside an annotation (through Annotated, unions, FieldInfo)."""
    found: list[Any] = []
    if typing.get_origin(node) is Annotated:
        base, *meta = typing.get_args(node)
        for m in meta:
            found += m.metadata if isinstance(m, FieldInfo) else [m]
        found += _metadata(base)
    elif typing.get_origin(node) in (typing.Union, types.UnionType):
        for member in typing.get_args(node):
            found += _metadata(member)
    return found


@dataclass(frozen=True)
class _Bounds:
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    unit: bool = False  # a distribution that must stay on [0, 1]

    @classmethod
    def of(cls, annotation: Any, metadata: Sequence[Any]) -> _Bounds:
        low, high, low_open, high_open, unit = -math.inf, math.inf, False, False, False
        for m in [*metadata, *_metadata(annotation)]:
            if isinstance(m, annotated_types.Ge):
                low, low_open = float(m.ge), False  # type: ignore[arg-type]
            elif isinstance(m, annotated_types.Gt):
                low, low_open = float(m.gt), True  # type: ignore[arg-type]
            elif isinstance(m, annotated_types.Le):
                high, high_open = float(m.le), False  # type: ignore[arg-type]
            elif isinstance(m, annotated_types.Lt):
                high, high_open = float(m.lt), True  # type: ignore[arg-type]
            elif isinstance(m, AfterValidator) and m.func is check_unit:
                unit = True
        return cls(low, high, low_open, high_open, unit)

    def clip(self, value: float) -> tuple[float | None, str]:
        """The value, clipped to a closed bound; None when it is beyond an open one."""
        for bound, is_open, below in ((self.low, self.low_open, True), (self.high, self.high_open, False)):
            outside = value < bound if below else value > bound
            if outside or (is_open and value == bound):
                if is_open:
                    side = "above" if below else "below"
                    return None, f"{value:g} is not allowed (must stay {side} {bound:g})"
                return bound, f"clipped to {bound:g}"
        return value, ""


def sensitivity_parameters(scenario: Scenario, by: float = 0.2) -> tuple[list[Perturbation], pd.DataFrame]:
    """The parameters one-at-a-time sensitivity varies, and those it does not.

    Walks the resolved scenario: every numeric value and distribution becomes a
    :class:`Perturbation` (see the module docstring for what ``±by`` means for each
    kind); everything else is a row of the second table (``parameter``, ``reason``).
    Each perturbed scenario is validated here.
    """
    _check_by(by)
    raw = scenario.to_dict()
    found: list[Perturbation] = []
    skipped: list[tuple[str, str]] = []
    _walk(scenario, "", raw, by, found, skipped)
    return found, pd.DataFrame(skipped, columns=["parameter", "reason"])


def _check_by(by: float) -> None:
    if not (isinstance(by, int | float) and 0 < by < 1):
        raise SweepError(f"--by must be between 0 and 100% (exclusive), got {by!r}")


def _walk(
    model: BaseModel,
    prefix: str,
    raw: dict[str, Any],
    by: float,
    found: list[Perturbation],
    skipped: list[tuple[str, str]],
) -> None:
    for name, info in type(model).model_fields.items():
        path = f"{prefix}{info.alias or name}"
        value = getattr(model, name)
        if isinstance(value, dict) and not _excluded(path):
            inner = typing.get_args(info.annotation)
            annotation = inner[1] if len(inner) == 2 else Any
            for key, item in value.items():
                _leaf(f"{path}.{key}", item, annotation, [], raw, by, found, skipped)
        else:
            _leaf(path, value, info.annotation, info.metadata, raw, by, found, skipped)


def _leaf(
    path: str,
    value: Any,
    annotation: Any,
    metadata: Sequence[Any],
    raw: dict[str, Any],
    by: float,
    found: list[Perturbation],
    skipped: list[tuple[str, str]],
) -> None:
    reason = _excluded(path)
    if reason is None:
        if value is None:
            reason = "not set in the scenario"
        elif isinstance(value, Spec):
            reason = _spec(path, value, _Bounds.of(annotation, metadata), raw, by, found)
        elif isinstance(value, BaseModel):
            _walk(value, path + ".", raw, by, found, skipped)
            return
        elif isinstance(value, bool):
            reason = "a switch, not a number"
        elif isinstance(value, int | float):
            reason = _number(path, value, _Bounds.of(annotation, metadata), raw, by, found)
        elif isinstance(value, list):
            reason = "a list (a profile or a schedule)"
        elif isinstance(value, dt.date):
            reason = "a date"
        else:
            reason = "text or a choice, not a number"
    if reason:
        skipped.append((path, reason))


def _number(
    path: str, value: float, bounds: _Bounds, raw: dict[str, Any], by: float, found: list[Perturbation]
) -> str | None:
    if value == 0:
        return f"zero: ±{by:.0%} of 0 is 0 (sweep it instead)"
    count = isinstance(value, int)
    sides: list[tuple[float | None, str]] = []
    for sign in (-1, 1):
        # 12 significant digits: 0.6 * 0.8 is 0.48 in the tables, not 0.48000000000000004.
        target: float = float(f"{value * (1 + sign * by):.12g}")
        if count:
            # At least one whole step: ±20% of 3 SDRs is still a change of one SDR.
            target = min(round(target), value - 1) if sign < 0 else max(round(target), value + 1)
        used, why = bounds.clip(target)
        if used is not None and count:
            used = int(used)
        sides.append((used, why))
    return _add(path, "count" if count else "number", value, sides, raw, found, lambda v: v, "")


def _spec(
    path: str, spec: Spec, bounds: _Bounds, raw: dict[str, Any], by: float, found: list[Perturbation]
) -> str | None:
    data = spec.model_dump(by_alias=True)
    if spec.mean == 0:
        return f"zero: a distribution with mean 0 (±{by:.0%} of 0 is 0)"
    sides: list[tuple[dict[str, Any] | None, str]] = []
    for sign in (-1, 1):
        f = 1 + sign * by
        new, why = dict(data), ""
        if spec.dist == "beta":
            # Keep the concentration a + b (the "observations" behind a beta) and move the mean.
            s = data["a"] + data["b"]
            m = spec.mean * f
            if not 0 < m < 1:
                sides.append((None, f"mean {m:g} is not allowed (a beta's mean lies strictly between 0 and 1)"))
                continue
            new["a"], new["b"] = m * s, (1 - m) * s
        else:
            keys = _SCALE_KEYS.get(spec.dist, ())
            if not keys:
                return f"a {spec.dist} distribution: no rule to scale its mean"
            for key in keys:
                if key == "values":
                    new[key] = [float(f"{v * f:.12g}") for v in data[key]]
                else:
                    new[key] = float(f"{data[key] * f:.12g}")
            if bounds.unit:
                clipped = _clip_unit(new, keys)
                if clipped:
                    why = "clipped to [0, 1]"
        sides.append((new, why))
    kept = "concentration a + b kept" if spec.dist == "beta" else "CV kept"
    return _add(path, "distribution", spec.mean, sides, raw, found, lambda s: s.mean, f"mean scaled, {kept}")


# The keys multiplied by 1 ± by: each scales the mean and the sd alike, so the CV stays.
_SCALE_KEYS: dict[str, tuple[str, ...]] = {
    "fixed": ("value",),
    "exponential": ("mean",),
    "lognormal": ("mean", "sd"),
    "gamma": ("mean", "sd"),
    "weibull": ("scale",),
    "uniform": ("low", "high"),
    "triangular": ("low", "mode", "high"),
    "empirical": ("values",),
}


def _clip_unit(spec: dict[str, Any], keys: Sequence[str]) -> bool:
    clipped = False
    for key in keys:
        values = spec[key] if key == "values" else [spec[key]]
        fixed = [min(max(v, 0.0), 1.0) for v in values]
        clipped |= fixed != values
        spec[key] = fixed if key == "values" else fixed[0]
    return clipped


def _add(
    path: str,
    kind: str,
    base: float,
    sides: Sequence[tuple[Any, str]],
    raw: dict[str, Any],
    found: list[Perturbation],
    mean_of: typing.Callable[[Any], float],
    how: str,
) -> str | None:
    built: list[Scenario | None] = []
    used: list[float] = []
    notes = []
    for (value, why), side in zip(sides, ("low", "high"), strict=True):
        if value is None or value == base:
            built.append(None)
            used.append(float(base))
            notes.append(f"{side}: {why or 'at its bound'}; not run (equals the base)")
            continue
        sc = _with_values(raw, {path: value}, f"sensitivity {path} ({side})")
        built.append(sc)
        used.append(float(mean_of(get_attribute(sc, path))))
        if why:
            notes.append(f"{side}: {why}")
    if built[0] is None and built[1] is None:
        return "no change possible: " + "; ".join(notes)
    if how:
        notes.insert(0, how)
    found.append(Perturbation(path, kind, float(base), used[0], used[1], built[0], built[1], "; ".join(notes)))
    return None


@dataclass(frozen=True)
class Sensitivity:
    """One-at-a-time sensitivity: the base and each parameter's low and high runs, same seeds.

    ``low`` and ``high`` map a parameter's path to its replications (a side that could
    not move is the base's replications, so its effect is exactly 0); ``skipped`` lists
    what was not varied and why (``parameter``, ``reason``).
    """

    scenario: Scenario
    by: float
    metric: str
    perturbations: tuple[Perturbation, ...]
    skipped: pd.DataFrame
    base: mc.Replications
    low: dict[str, mc.Replications]
    high: dict[str, mc.Replications]
    seed: int
    confidence: float = 0.95

    def table(self, metric: str | None = None) -> pd.DataFrame:
        """One row per parameter, sorted by swing (largest first).

        Columns: ``parameter``, ``kind``, ``base_value``, ``low_value``, ``high_value``
        (the values used; a distribution's mean), ``note``, ``metric``, ``low_mean``,
        ``base_mean``, ``high_mean``, paired differences against the base ``low_diff``,
        ``low_diff_ci_low``, ``low_diff_ci_high``, ``high_diff``, ``high_diff_ci_low``,
        ``high_diff_ci_high``, ``swing`` (the range of low, base and high means: ``|high_mean -
        low_mean|`` when the effect is monotone) and ``elasticity`` (relative change of the
        metric over relative change of the parameter, from low to high).
        """
        metric = metric or self.metric
        _check_metrics(self.base, [metric])
        base = self._values(self.base, metric)
        base_mean = float(np.nanmean(base)) if np.isfinite(base).any() else math.nan
        rows = []
        for p in self.perturbations:
            row: dict[str, Any] = {
                "parameter": p.parameter,
                "kind": p.kind,
                "base_value": p.base_value,
                "low_value": p.low_value,
                "high_value": p.high_value,
                "note": p.note,
                "metric": metric,
            }
            means = {}
            for side, runs in (("low", self.low), ("high", self.high)):
                values = self._values(runs[p.parameter], metric)
                pair = paired_difference(base, values, self.confidence)
                means[side] = base_mean + pair["difference"]
                row |= {
                    f"{side}_diff": pair["difference"],
                    f"{side}_diff_ci_low": pair["ci_low"],
                    f"{side}_diff_ci_high": pair["ci_high"],
                }
            row |= {"low_mean": means["low"], "base_mean": base_mean, "high_mean": means["high"]}
            trio = [means["low"], base_mean, means["high"]]
            row["swing"] = max(trio) - min(trio)
            relative_x = (p.high_value - p.low_value) / p.base_value
            row["elasticity"] = (
                (means["high"] - means["low"]) / base_mean / relative_x if relative_x and base_mean else math.nan
            )
            rows.append(row)
        columns = [
            "parameter", "kind", "base_value", "low_value", "high_value", "note", "metric",
            "low_mean", "base_mean", "high_mean",
            "low_diff", "low_diff_ci_low", "low_diff_ci_high", "high_diff", "high_diff_ci_low", "high_diff_ci_high",
            "swing", "elasticity",
        ]  # fmt: skip
        table = pd.DataFrame(rows, columns=columns)
        return table.sort_values("swing", ascending=False, kind="stable", na_position="last").reset_index(drop=True)

    def replications(self) -> pd.DataFrame:
        """Every run's replication table, stacked: ``parameter`` (empty for the base), ``side``
        (``base``, ``low``, ``high``) and ``value`` (the parameter's value, or mean) first.
        Sides that equal the base are not repeated."""
        frames = [self._front(self.base, "", "base", math.nan)]
        for p in self.perturbations:
            if p.low is not None:
                frames.append(self._front(self.low[p.parameter], p.parameter, "low", p.low_value))
            if p.high is not None:
                frames.append(self._front(self.high[p.parameter], p.parameter, "high", p.high_value))
        return pd.concat(frames, ignore_index=True)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document (keys in docs/outputs.md)."""
        base = describe(self._values(self.base, self.metric), self.confidence)
        return json_ready(
            {
                "scenario": self.scenario.name,
                "seed": self.seed,
                "runs": self.base.completed,
                "by": self.by,
                "confidence": self.confidence,
                "currency": self.scenario.currency,
                "metric": self.metric,
                "base": {k: base[k] for k in ("mean", "ci_low", "ci_high")},
                "parameters": self.table().to_dict("records"),
                "skipped": self.skipped.to_dict("records"),
            }
        )

    @staticmethod
    def _values(reps: mc.Replications, metric: str) -> np.ndarray:
        return reps.table.sort_values("replication")[metric].to_numpy(float)

    @staticmethod
    def _front(reps: mc.Replications, parameter: str, side: str, value: float) -> pd.DataFrame:
        front = pd.DataFrame({"parameter": [parameter] * reps.completed, "side": side, "value": value})
        return pd.concat([front, reps.table.reset_index(drop=True)], axis=1)


def sensitivity(
    scenario: Scenario,
    by: float = 0.2,
    runs: int = 100,
    seed: int | None = None,
    pool: Executor | None = None,
    *,
    params: Sequence[str] | None = None,
    metric: str = "revenue",
    progress: mc.Progress | None = None,
    budget: Budget | None = None,
    confidence: float = 0.95,
) -> Sensitivity:
    """One-at-a-time sensitivity of ``metric`` to each numeric parameter, ``±by``, on common seeds.

    Parameters
    ----------
    by
        Relative change, strictly between 0 and 1 (0.2 for ±20%).
    runs
        Replications of the base and of every perturbed scenario (>= 2).
    seed
        Root seed (None: the scenario's); replication ``i`` is the same for all runs.
    params
        Restrict to these dotted paths (as listed by :func:`sensitivity_parameters`).
    progress
        Called with ``(done, total)`` replications over all runs.
    budget
        The work allowed (:class:`funnelsim.studies.workload.Budget`), judged on every run first.

    Raises
    ------
    SweepError
        ``by`` out of range, fewer than two runs, an unknown path or one that is not
        varied (with the reason), an unknown metric.
    KeyboardInterrupt
        If a run is interrupted.
    """
    _check_by(by)
    if runs < 2:
        raise SweepError(f"--runs must be >= 2 to pair with the base, got {runs}")
    found, skipped = sensitivity_parameters(scenario, by)
    if params is not None:
        by_path = {p.parameter: p for p in found}
        reasons = dict(zip(skipped["parameter"], skipped["reason"], strict=True))
        chosen = []
        for path in dict.fromkeys(params):
            if path in by_path:
                chosen.append(by_path[path])
            elif path in reasons:
                raise SweepError(f"--param {path}: not varied by sensitivity: {reasons[path]}")
            else:
                hint = difflib.get_close_matches(path, list(by_path), n=1, cutoff=0.6)
                raise SweepError(
                    f"--param {path}: no such numeric parameter in the scenario"
                    + (f" (did you mean {hint[0]!r}?)" if hint else "")
                )
        found = chosen
    if not found:
        raise SweepError("the scenario has no numeric parameter to vary")
    seed = resolve_seed(scenario, seed)
    todo = [(p.parameter, side, sc) for p in found for side, sc in (("low", p.low), ("high", p.high)) if sc is not None]
    total = (1 + len(todo)) * runs
    every = [scenario, *(sc for _, _, sc in todo)]
    (budget or Budget()).admit(largest(every, total, workers_of(pool)), "this sensitivity analysis")
    base = mc.run(
        scenario, runs, seed, pool, confidence=confidence, progress=mc.offset(progress, 0, total), budget=UNLIMITED
    )
    if base.stopped == "interrupted":
        raise KeyboardInterrupt
    _check_metrics(base, [metric])
    low: dict[str, mc.Replications] = {p.parameter: base for p in found}
    high: dict[str, mc.Replications] = dict(low)
    for k, (path, side, sc) in enumerate(todo, start=1):
        step = mc.offset(progress, k * runs, total)
        reps = mc.run(sc, runs, seed, pool, confidence=confidence, progress=step, budget=UNLIMITED)
        if reps.stopped == "interrupted":
            raise KeyboardInterrupt
        (low if side == "low" else high)[path] = reps
    return Sensitivity(scenario, by, metric, tuple(found), skipped, base, low, high, seed, confidence)
