"""Back-testing a forecast: stand on a cut-off date, forecast the next quarters, score what happened.

A forecast made on a cut-off date is a set of Monte Carlo replications of a scenario calibrated
on the data before that date (:mod:`funnelsim.calibrate.backtest` does the fitting and reads the
actuals). This module turns the replications into per-quarter distributions of **wins** and
**won value** and scores the actual outcome ``y`` of each quarter against the replications'
values ``x_1 … x_n``:

- **P10, P50, P90**: percentiles of the ``x_i`` (numpy's ``"linear"`` method, as every range
  funnelsim prints). ``inside`` is ``P10 <= y <= P90``: a calibrated forecast has the actual
  inside about 80% of the time; exactly, ``band_share`` of the time, how often one more draw of
  the forecast lands inside the band of the others (:func:`band_share`).
- **PIT**, the probability integral transform at the actual, by mid-rank:
  ``(#{x_i < y} + #{x_i = y} / 2) / n``. Uniform on [0, 1] over many back-tests of a calibrated
  forecast; near 0 the forecast was too high, near 1 too low; PITs piled at both ends mean
  ranges too narrow, bunched in the middle too wide.
- **CRPS**, the continuous ranked probability score of the replications' empirical distribution,
  ``E|X - y| - E|X - X'| / 2`` (Gneiting & Raftery 2007), in the metric's unit: the absolute
  error for a point forecast, 0 for a sure and right one; lower is better. Exactly, over the
  sorted ``x_(1) <= … <= x_(n)``: ``mean|x_i - y| - sum_i (2i - n - 1) x_(i) / n**2``.
- **Pinball loss** of each quantile ``q`` at level ``tau`` (0.1, 0.5, 0.9): ``tau (y - q)`` when
  ``y >= q``, else ``(1 - tau)(q - y)``; ``pinball`` is the mean of the three.

**Quarters** are three whole calendar months, the first starting on the first day of a month on
or after the cut-off: a cut-off on the 1st starts it that day; otherwise the days up to the next
1st are simulated (the pipeline moves on) but not scored. Simulated months and the CRM's close
dates then fall into the same windows.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from funnelsim.model.scenario import Scenario
from funnelsim.studies.replications import Replications, run
from funnelsim.studies.stats import json_ready
from funnelsim.studies.workload import Budget

if TYPE_CHECKING:
    from funnelsim.calibrate import Calibration
    from funnelsim.studies.replications import Progress

__all__ = [
    "METRICS",
    "QUANTILES",
    "Backtest",
    "BacktestError",
    "Quarter",
    "band_share",
    "crps_ensemble",
    "forecast",
    "pinball_loss",
    "pit",
    "quarterly",
    "quarters_after",
    "score",
    "score_quarters",
]

METRICS = ("wins", "won_value")
"""What is scored per quarter: won deals, and the revenue they booked (sum of their amounts)."""
QUANTILES = (0.1, 0.5, 0.9)


class BacktestError(ValueError):
    """A back-test that cannot be made as asked (the message names the option)."""


# --- quarters ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quarter:
    """Three whole calendar months: ``start`` (a 1st) up to, not including, ``end``."""

    number: int
    start: dt.date
    end: dt.date

    @property
    def months(self) -> tuple[str, ...]:
        """The quarter's months as ``"YYYY-MM"`` (the labels of the monthly tables)."""
        first = pd.Period(self.start, freq="M")
        return tuple(str(first + k) for k in range(3))

    @property
    def label(self) -> str:
        """``"Q1 2027-01..2027-03"``: the number after the cut-off and its months."""
        return f"Q{self.number} {self.months[0]}..{self.months[-1]}"

    def to_json(self) -> dict[str, Any]:
        return {
            "quarter": self.number,
            "label": self.label,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }


def quarters_after(cutoff: dt.date, count: int) -> list[Quarter]:
    """The ``count`` quarters scored after ``cutoff`` (see the module docstring for where they start)."""
    if count < 1:
        raise BacktestError(f"--quarters must be at least 1, got {count}")
    first = pd.Period(cutoff, freq="M")
    if cutoff.day != 1:
        first += 1
    return [
        Quarter(k + 1, (first + 3 * k).start_time.date(), (first + 3 * k + 3).start_time.date()) for k in range(count)
    ]


# --- scores --------------------------------------------------------------------------------------


def crps_ensemble(samples: Sequence[float] | np.ndarray, actual: float) -> float:
    """CRPS of the empirical distribution of ``samples`` at ``actual``: ``E|X - y| - E|X - X'| / 2``.

    The pairs ``(X, X')`` run over all ``n**2`` ordered pairs (the empirical distribution's own
    CRPS, not the "fair" ``n (n - 1)`` variant), in O(n log n) through the sorted samples.
    """
    x = np.sort(np.asarray(samples, dtype=float))
    n = len(x)
    if n == 0:
        return math.nan
    spread = float(np.sum((2 * np.arange(1, n + 1) - n - 1) * x)) / n**2  # = E|X - X'| / 2
    return float(np.mean(np.abs(x - actual))) - spread


def pit(samples: Sequence[float] | np.ndarray, actual: float) -> float:
    """Mid-rank probability integral transform: ``(#{x < y} + #{x = y} / 2) / n``."""
    x = np.asarray(samples, dtype=float)
    if len(x) == 0:
        return math.nan
    return float((np.sum(x < actual) + 0.5 * np.sum(x == actual)) / len(x))


def band_share(samples: Sequence[float] | np.ndarray, low: float = 0.1, high: float = 0.9) -> float:
    """The chance the band promises: how often one more draw of the forecast itself lands inside the
    ``low``–``high`` percentile band of the others, by leave-one-out over the samples.

    A calibrated forecast's actual is such a draw, so over many back-tests the share of actuals
    inside P10–P90 is the mean of this, not exactly 0.8: a little less for a finite sample of a
    continuous metric (about 0.78 at 100 replications), more for a count whose percentiles tie with
    many replications (wins).
    """
    x = np.sort(np.asarray(samples, dtype=float))
    n = len(x)
    if n < 3:
        return math.nan
    i = np.arange(n)[:, None]  # the sample left out, one row each

    def others(position: float) -> np.ndarray:
        # numpy's "linear" percentile of x without x[i]: element j of that array is x[j + (j >= i)].
        j = np.array([math.floor(position), min(math.floor(position) + 1, n - 2)])[None, :]
        values = x[j + (j >= i)]
        frac = position - math.floor(position)
        return values[:, 0] + frac * (values[:, 1] - values[:, 0])

    lo, hi = others(low * (n - 2)), others(high * (n - 2))
    return float(np.mean((lo <= x) & (x <= hi)))


def pinball_loss(quantile: float, actual: float, tau: float) -> float:
    """Pinball (quantile) loss of ``quantile`` as the level-``tau`` quantile, at ``actual``."""
    return tau * (actual - quantile) if actual >= quantile else (1 - tau) * (quantile - actual)


def score(samples: Sequence[float] | np.ndarray, actual: float) -> dict[str, float]:
    """Every score of one forecast distribution against its actual (keys as in ``backtest.csv``)."""
    x = np.asarray(samples, dtype=float)
    qs = np.percentile(x, [100 * t for t in QUANTILES], method="linear")
    out: dict[str, Any] = {"actual": float(actual), "mean": float(x.mean())}
    out |= {f"p{round(100 * t)}": float(q) for t, q in zip(QUANTILES, qs, strict=True)}
    out["inside"] = bool(qs[0] <= actual <= qs[-1])
    out["band_share"] = band_share(x, QUANTILES[0], QUANTILES[-1])
    out["pit"] = pit(x, actual)
    out["crps"] = crps_ensemble(x, actual)
    losses = {
        f"pinball_p{round(100 * t)}": pinball_loss(float(q), actual, t) for t, q in zip(QUANTILES, qs, strict=True)
    }
    out |= losses
    out["pinball"] = float(np.mean(list(losses.values())))
    return out


# --- forecast ------------------------------------------------------------------------------------


def quarterly(monthly: pd.DataFrame, quarters: Sequence[Quarter]) -> pd.DataFrame:
    """Wins and won value per replication and quarter, from a Monte Carlo ``monthly`` table.

    ``monthly`` has one row per replication and month (``replication, month, wins, revenue``);
    returns ``replication, quarter, wins, won_value``. A quarter month missing from the table is
    an error (the horizon did not reach it), never a silent zero.
    """
    have = set(monthly["month"].astype(str))
    frames = []
    for q in quarters:
        missing = [m for m in q.months if m not in have]
        if missing:
            raise BacktestError(f"the forecast does not reach {', '.join(missing)} ({q.label}); a bug, please report")
        rows = monthly[monthly["month"].astype(str).isin(q.months)]
        sums = rows.groupby("replication")[["wins", "revenue"]].sum()
        frames.append(
            pd.DataFrame(
                {
                    "replication": sums.index.to_numpy(),
                    "quarter": q.number,
                    "wins": sums["wins"].to_numpy(np.int64),
                    "won_value": sums["revenue"].to_numpy(float),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def forecast(
    scenario: Scenario,
    quarters: Sequence[Quarter],
    runs: int,
    seed: int | None = None,
    pool: Executor | None = None,
    *,
    progress: Progress | None = None,
    budget: Budget | None = None,
) -> tuple[Replications, pd.DataFrame]:
    """Run ``scenario`` (from its ``start_date``, the cut-off) to the end of the last quarter, ``runs`` times.

    Returns the replications (horizon extended to the last quarter's end) and :func:`quarterly`'s
    table. A run interrupted before the end raises (a back-test scores complete forecasts only).
    """
    if quarters[0].start < scenario.start_date:
        raise BacktestError(f"the first quarter starts {quarters[0].start}, before the forecast's start")
    horizon = (quarters[-1].end - scenario.start_date).days
    extended = scenario.model_copy(update={"horizon_days": float(horizon)})
    reps = run(extended, runs, seed, pool, progress=progress, budget=budget)
    reps.raise_if_interrupted()
    return reps, quarterly(reps.monthly, quarters)


def score_quarters(table: pd.DataFrame, actuals: pd.DataFrame, quarters: Sequence[Quarter]) -> pd.DataFrame:
    """One row per quarter and metric: the quarter, the actual and :func:`score`'s columns.

    ``table`` is :func:`quarterly`'s; ``actuals`` has one row per quarter (``quarter, wins,
    won_value``).
    """
    actual = actuals.set_index("quarter")
    rows = []
    for q in quarters:
        mine = table[table["quarter"] == q.number]
        for metric in METRICS:
            row: dict[str, Any] = {"quarter": q.number, "label": q.label, "start": q.start, "end": q.end}
            row["metric"] = metric
            row["runs"] = len(mine)
            row |= score(mine[metric].to_numpy(float), float(actual.loc[q.number, metric]))
            rows.append(row)
    return pd.DataFrame(rows)


# --- the result ----------------------------------------------------------------------------------


@dataclass
class Backtest:
    """A back-test: the forecast made on ``as_of`` and the scores of what happened after it.

    ``scores`` has one row per quarter and metric (see :func:`score_quarters`); ``forecast`` one
    row per replication and quarter (:func:`quarterly`); ``actuals`` one row per quarter with the
    won deals counted in the export (``won_without_amount``: those with no amount, counted in
    wins but not in won value). ``reps`` are the forecast's replications (monthly table included);
    ``calibration`` the fit made on the data before the cut-off, when the back-test made one.
    """

    as_of: dt.date
    quarters: list[Quarter]
    reps: Replications
    forecast: pd.DataFrame
    actuals: pd.DataFrame
    scores: pd.DataFrame
    export: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    calibration: Calibration | None = None

    @property
    def scenario(self) -> Scenario:
        """The calibrated scenario, as simulated (horizon to the last quarter's end)."""
        return self.reps.scenario

    def coverage(self) -> dict[str, dict[str, int]]:
        """Per metric: quarters with the actual inside P10-P90, out of how many."""
        out = {}
        for metric in METRICS:
            rows = self.scores[self.scores["metric"] == metric]
            out[metric] = {"inside": int(rows["inside"].sum()), "quarters": len(rows)}
        return out

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document (keys documented in docs/outputs.md)."""
        scores = self.scores.assign(start=self.scores["start"].astype(str), end=self.scores["end"].astype(str))
        doc = {
            "export": self.export,
            "as_of": self.as_of.isoformat(),
            "cutoff": f"{self.as_of.isoformat()}T00:00",
            "currency": self.scenario.currency,
            "seed": self.reps.seed,
            "runs": self.reps.completed,
            "quarters": [q.to_json() for q in self.quarters],
            "scores": scores.to_dict("records"),
            "actuals": self.actuals.to_dict("records"),
            "coverage": self.coverage(),
            "facts": self.facts,
            "notes": list(self.notes),
        }
        ready: dict[str, Any] = json_ready(doc)
        return ready
