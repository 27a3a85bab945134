"""Scenarios side by side on common random numbers, and what each differs from the first.

Every scenario runs replications ``0 .. N-1`` of the same seed. Replication ``i`` of
two scenarios then sees the same leads with the same traits and draws (see docs/model.md
section 14), so the per-replication difference ``B_i - A_i`` carries the effect of what
differs between them with little of the year-to-year noise. The paired difference's
confidence interval is the Student-t interval of those differences; beside it the
unpaired (Welch) interval of the two means shows what pairing saves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from . import montecarlo as mc
from .scenario import Scenario

__all__ = ["CompareError", "Comparison", "compare", "paired_difference"]


class CompareError(ValueError):
    """A comparison that cannot be carried out as asked."""


def paired_difference(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> dict[str, float]:
    """Mean of ``b - a`` over paired replications, its Student-t interval, and the unpaired one.

    Returns ``difference``, ``ci_low``, ``ci_high``, ``half_width`` (paired) and
    ``unpaired_half_width`` (Welch interval of ``mean(b) - mean(a)``, as if the runs
    were independent); NaN where fewer than two pairs are defined.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    n = len(a)
    d = b - a
    mean = float(d.mean()) if n else math.nan
    if n < 2:
        return {"difference": mean, "ci_low": math.nan, "ci_high": math.nan, "half_width": math.nan,
                "unpaired_half_width": math.nan}  # fmt: skip
    q = 0.5 + confidence / 2
    half = float(stats.t.ppf(q, n - 1) * d.std(ddof=1) / math.sqrt(n))
    va, vb = a.var(ddof=1) / n, b.var(ddof=1) / n
    se = math.sqrt(va + vb)
    # Welch-Satterthwaite degrees of freedom (n - 1 when both variances vanish).
    dof = (va + vb) ** 2 / (va**2 / (n - 1) + vb**2 / (n - 1)) if va + vb > 0 else n - 1
    unpaired = float(stats.t.ppf(q, dof) * se)
    return {"difference": mean, "ci_low": mean - half, "ci_high": mean + half, "half_width": half,
            "unpaired_half_width": unpaired}  # fmt: skip


@dataclass(frozen=True)
class Comparison:
    """The replications of each scenario (same seeds) and their paired differences.

    ``labels`` name the scenarios in order (the first is the reference); ``runs``
    holds each one's :class:`~funnelsim.montecarlo.Replications`.
    """

    labels: list[str]
    runs: dict[str, mc.Replications]
    seed: int
    confidence: float = 0.95

    def table(self, metrics: Sequence[str] = (*mc.HEADLINE, "cac", "win_rate")) -> pd.DataFrame:
        """One row per metric and scenario: the scenario's mean with its interval and
        percentiles, and against the first scenario the paired ``difference`` with
        ``diff_ci_low``/``diff_ci_high``, the ``unpaired_half_width`` and
        ``narrower`` (unpaired half-width over paired: how many times narrower pairing is).
        """
        first = self.runs[self.labels[0]].table.set_index("replication")
        rows = []
        for metric in metrics:
            for label in self.labels:
                table = self.runs[label].table.set_index("replication")
                described = mc.describe(table[metric].to_numpy(float), self.confidence)
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
                row["scenario"]: mc.json_ready({k: v for k, v in row.items() if k not in ("metric", "scenario")})
                for row in group.to_dict("records")
            }
            for metric, group in table.groupby("metric", sort=False)
        }
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
) -> Comparison:
    """Run each scenario's replications ``0 .. runs-1`` of ``seed`` and pair them.

    Raises
    ------
    CompareError
        Fewer than two scenarios, fewer than two runs, labels that are not unique.
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
    results = {}
    for label, sc in zip(names, scenarios, strict=True):
        reps = mc.run(sc, runs, seed, pool, confidence=confidence, progress=progress)
        if reps.stopped == "interrupted":
            raise KeyboardInterrupt
        results[label] = reps
    return Comparison(names, results, seed, confidence)


def _labels(names: list[str]) -> list[str]:
    """Scenario names, made unique with ``#2``, ``#3`` where they repeat."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out
