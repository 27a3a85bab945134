"""Statistics of replications: Student-t means, percentiles, P(goal) with Wilson intervals, paired differences.

Every interval funnelsim reports comes from here, so its method is stated once:
the mean's interval is Student-t over independent replications; a probability's is
Wilson's score interval for a binomial proportion; a difference between two scenarios
run on common random numbers is the mean of per-replication differences with its
Student-t interval (pairing removes the variance the scenarios share).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["PERCENTILES", "describe", "json_ready", "paired_difference", "probability_at_least", "relative_half_width"]

PERCENTILES = (10, 25, 50, 75, 90)


def json_ready(value: Any) -> Any:
    """``value`` with numpy scalars made plain and NaN/inf made ``None``, through dicts and lists."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_ready(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def describe(values: np.ndarray, confidence: float = 0.95) -> dict[str, float]:
    """Mean with a Student-t interval and percentiles of one metric over replications (NaNs dropped)."""
    x = values[~np.isnan(values)]
    n = len(x)
    out: dict[str, float] = {"n": n}
    if n == 0:
        return out | dict.fromkeys(["mean", "sd", "ci_low", "ci_high", *(f"p{p}" for p in PERCENTILES)], math.nan)
    mean = float(x.mean())
    sd = float(x.std(ddof=1)) if n > 1 else math.nan
    half = t_half_width(sd, n, confidence)
    out |= {"mean": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half}
    out |= {f"p{p}": float(v) for p, v in zip(PERCENTILES, np.percentile(x, PERCENTILES), strict=True)}
    return out


def t_half_width(sd: float, n: int, confidence: float) -> float:
    if n < 2:
        return math.nan
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n))


def relative_half_width(revenue: Iterable[float], confidence: float = 0.95) -> float:
    """Half-width of the mean's confidence interval over the mean (inf while undefined)."""
    x = np.asarray(list(revenue), dtype=float)
    if len(x) < 2 or x.mean() == 0:
        return math.inf
    return t_half_width(float(x.std(ddof=1)), len(x), confidence) / abs(float(x.mean()))


def probability_at_least(values: np.ndarray, goal: float, confidence: float = 0.95) -> dict[str, float]:
    """Share of replications with ``values >= goal``, with a Wilson score interval."""
    n = len(values)
    k = int(np.sum(values >= goal))
    if n == 0:
        return {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "hits": 0, "n": 0}
    ci = stats.binomtest(k, n).proportion_ci(confidence, method="wilson")
    return {"estimate": k / n, "ci_low": float(ci.low), "ci_high": float(ci.high), "hits": k, "n": n}


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
