"""One-at-a-time sensitivity on common random numbers: every numeric parameter at θ(1 - by) and θ(1 + by).

Everything else stays at its base value, all on the base's replications:

* swing = max(Y(low), Y(base), Y(high)) - min(...): the range the metric spans, which is
  |Y(high) - Y(low)| for a monotone effect and does not vanish at an optimum where
  both sides lose,
* elasticity = [(Y(high) - Y(low)) / Y(base)] / [(θ_high - θ_low) / θ_base], the
  relative change of the metric per relative change of the parameter (at the values
  actually used).

What ±by means for each kind of parameter:

* a number: multiplied by 1 ± by and clipped to its allowed range (shares to [0, 1]);
  a side whose value falls outside an *open* bound (e.g. a contact rate that must stay
  below 1) is not run and reported as such, because no value beside the bound is more
  natural than another;
* a count (SDRs, AEs, slots): rounded, and moved by at least one;
* a distribution: its mean is scaled by 1 ± by with the coefficient of variation kept
  (lognormal and gamma mean and sd both scaled, exponential mean, Weibull
  scale, uniform/triangular/empirical/fixed every value), so the shape stays and
  only the scale moves; a beta on [0, 1] keeps its concentration a + b (its
  "observations") and moves its mean: a' = m' (a + b), b' = (1 - m')(a + b),
  because keeping the CV of a beta can be impossible. Distributions on [0, 1] are
  clipped to [0, 1]; the mean actually used is reported.

Not varied, and listed in :attr:`Sensitivity.skipped` with the reason: the seed, the
horizon and dates, labels and categorical choices, weights and mixes that must sum to 1,
monthly profiles (seasonality, ramp), the speed-to-lead curve's knots, hire schedules,
values that are not set, and values that are zero (±by of 0 is 0).
"""

from __future__ import annotations

import datetime as dt
import difflib
import fnmatch
import math
import types
import typing
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Annotated, Any

import annotated_types
import numpy as np
import pandas as pd
from pydantic import AfterValidator, BaseModel
from pydantic.fields import FieldInfo

from funnelsim.model.distributions import Spec, check_unit
from funnelsim.model.paths import MISSING, get_attribute, get_path
from funnelsim.model.scenario import Scenario
from funnelsim.randomness import resolve_seed
from funnelsim.studies import replications as mc
from funnelsim.studies.stats import describe, json_ready, paired_difference
from funnelsim.studies.sweep import SweepError, check_metrics, with_values

__all__ = ["EXCLUDED", "Perturbation", "Sensitivity", "sensitivity", "sensitivity_parameters"]
from funnelsim.studies.workload import UNLIMITED, Budget, largest, workers_of

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
    ("sources.*.qualified_by", "a choice, not a number"),
    ("qualification.*.fit_weight", "weights that must sum to 1 (fit_weight + engagement_weight)"),
    ("qualification.*.engagement_weight", "weights that must sum to 1 (fit_weight + engagement_weight)"),
    ("handoff.speed_to_lead.knots_hours", _CURVE),
    ("handoff.speed_to_lead.odds_multiplier", _CURVE),
    ("sales.ae.hires", "a hiring schedule (dates and counts); sweep it instead"),
    ("sales.ae.ramp", "a productivity profile per month after joining"),
    ("sales.queue", "a choice, not a number"),
    ("prospecting.persona", "a choice, not a number"),
)


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
        if get_path(raw, path) is MISSING:
            continue  # a key the scenario's data leaves out when unused (a source's spend curve)
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
        sc = with_values(raw, {path: value}, f"sensitivity {path} ({side})")
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
        check_metrics(self.base, [metric])
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


def _chosen(found: list[Perturbation], skipped: pd.DataFrame, params: Sequence[str]) -> list[Perturbation]:
    """The perturbations of ``params`` (``--param``), in their order; an unknown or unvaried path is an error."""
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
    return chosen


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
        found = _chosen(found, skipped, params)
    if not found:
        raise SweepError("the scenario has no numeric parameter to vary")
    seed = resolve_seed(scenario, seed)
    todo = [(p.parameter, side, sc) for p in found for side, sc in (("low", p.low), ("high", p.high)) if sc is not None]
    total = (1 + len(todo)) * runs
    every = [scenario, *(sc for _, _, sc in todo)]
    (budget or Budget()).admit(largest(every, total, workers_of(pool)), "this sensitivity analysis")
    scenario, *changed = mc.same_burn_in(every, seed, [scenario])  # every change on the base's warm start
    todo = [(path, side, sc) for (path, side, _), sc in zip(todo, changed, strict=True)]
    base = mc.run(
        scenario, runs, seed, pool, confidence=confidence, progress=mc.offset(progress, 0, total), budget=UNLIMITED
    )
    if base.stopped == "interrupted":
        raise KeyboardInterrupt
    check_metrics(base, [metric])
    low: dict[str, mc.Replications] = {p.parameter: base for p in found}
    high: dict[str, mc.Replications] = dict(low)
    for k, (path, side, sc) in enumerate(todo, start=1):
        step = mc.offset(progress, k * runs, total)
        reps = mc.run(sc, runs, seed, pool, confidence=confidence, progress=step, budget=UNLIMITED)
        if reps.stopped == "interrupted":
            raise KeyboardInterrupt
        (low if side == "low" else high)[path] = reps
    return Sensitivity(scenario, by, metric, tuple(found), skipped, base, low, high, seed, confidence)
