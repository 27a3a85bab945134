"""Monte Carlo: many replications of one scenario, and what they say with their uncertainty.

Replication ``i`` of seed ``S`` is child ``i`` of ``SeedSequence(S)`` (see
:mod:`funnelsim.randomness`), so a replication's numbers depend only on
``(scenario, S, i)``: not on the executor, the number of workers or the order in
which they finish, and ``run(..., replications=[i])`` reproduces row ``i`` of any
batch. Replications are handed to any :class:`concurrent.futures.Executor`:
in-process (:class:`SerialExecutor`), local processes, or Dask distributed
(:func:`executor`).

Summaries per metric: mean with a Student-t confidence interval, P10/P25/P50/P75/P90,
and for a revenue goal the probability of reaching it with a Wilson score interval.
"""

from __future__ import annotations

import math
import signal
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .engine import simulate
from .metrics import leakage_counts, stages_by_month, summarize_run
from .results import resolve_seed
from .scenario import Scenario
from .workload import Budget, estimate, workers_of

__all__ = [
    "HEADLINE",
    "MonteCarloError",
    "Replications",
    "SerialExecutor",
    "executor",
    "json_ready",
    "offset",
    "replicate",
    "run",
]

# The metrics every summary reports first (issue: revenue, wins, SQLs, MQLs, leads, cycle time).
HEADLINE = ("revenue", "wins", "sqls", "mqls", "leads", "median_cycle_days")
MONTHLY_COLUMNS = ("leads", "mqls", "sqls", "opportunities", "wins", "revenue")
PERCENTILES = (10, 25, 50, 75, 90)
# Replications per task: small, so Ctrl-C waits for little and load stays balanced.
CHUNK = 4
# Upper bound of a --precision run when no --max-runs is given.
MAX_RUNS = 10_000

Progress = Callable[[int, int], None]


def offset(progress: Progress | None, done_before: int, total: int) -> Progress | None:
    """``progress`` for one run among several: its counts shifted by ``done_before``, out of ``total``.

    So a job of several runs (a sweep, a comparison) drives one bar from 0 to ``total``.
    """
    if progress is None:
        return None
    report = progress
    return lambda done, _: report(done_before + done, total)


class MonteCarloError(ValueError):
    """A Monte Carlo request that cannot be carried out as asked (bad option, missing extra)."""


class SerialExecutor(Executor):
    """Runs each task at once, in the calling process: the ``--jobs 1`` backend."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # a KeyboardInterrupt goes straight to the caller
            future.set_exception(exc)
        return future


def _ignore_sigint() -> None:
    # Workers leave Ctrl-C to the parent, which stops handing out work and keeps what finished.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def executor(jobs: int = 1, scheduler: str | None = None) -> Iterator[Executor]:
    """The executor for ``--jobs`` / ``--scheduler``; closed (and any local cluster stopped) on exit.

    ``scheduler`` is a Dask scheduler address (``tcp://host:port``) or ``"local"`` to
    start a :class:`distributed.LocalCluster` of ``jobs`` single-threaded worker
    processes. Dask is an optional extra, imported only here.
    """
    if jobs < 1:
        raise MonteCarloError(f"--jobs must be >= 1, got {jobs}")
    if scheduler is not None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise MonteCarloError(
                "--scheduler needs Dask, which is not installed: pip install 'funnelsim[dask]'"
            ) from None
        if scheduler == "local":
            with (
                LocalCluster(n_workers=jobs, threads_per_worker=1, dashboard_address=None) as cluster,
                Client(cluster) as client,
            ):
                yield client.get_executor()
        else:
            try:
                client = Client(scheduler, timeout=10)
            except OSError as exc:
                raise MonteCarloError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None
            with client:
                yield client.get_executor()
    elif jobs == 1:
        yield SerialExecutor()
    else:
        with ProcessPoolExecutor(max_workers=jobs, initializer=_ignore_sigint) as pool:
            yield pool


@dataclass(frozen=True)
class Replication:
    """What one replication sends back: its summary, its months and any drawn parameters."""

    replication: int
    summary: dict[str, float]
    monthly: pd.DataFrame
    parameters: dict[str, float]


def replicate(scenario: Scenario, seed: int, replication: int) -> Replication:
    """Simulate replication ``replication`` of ``seed`` and reduce it to its tables."""
    result = simulate(scenario, seed=seed, replication=replication)
    monthly = stages_by_month(result.events, scenario.start_date, scenario.horizon_days)
    monthly = monthly[["month", *MONTHLY_COLUMNS]].copy()
    monthly["cumulative_revenue"] = monthly["revenue"].cumsum()
    parameters = dict(result.metadata.get("parameters", {}))
    summary = summarize_run(result) | leakage_counts(result.events)
    return Replication(replication, summary, monthly, parameters)


def _replicate_chunk(scenario: Scenario, seed: int, indices: Sequence[int]) -> list[Replication]:
    return [replicate(scenario, seed, i) for i in indices]


@dataclass
class Replications:
    """The replications of one scenario, as tidy tables, and their summaries.

    ``table`` has one row per replication: ``run_id``, ``replication``, ``seed``, every
    metric of :func:`funnelsim.metrics.summarize_run`, the leads lost per reason
    (``leak_<reason>``, :func:`funnelsim.metrics.leakage_counts`), and ``parameter:<path>`` for
    each parameter drawn per replication. ``monthly`` has one row per replication and
    month. ``requested`` is how many were asked for; ``stopped`` says why the run
    ended: ``"completed"``, ``"precision reached"``, ``"max runs reached"`` or
    ``"interrupted"``.
    """

    scenario: Scenario
    seed: int
    table: pd.DataFrame
    monthly: pd.DataFrame
    requested: int
    stopped: str
    goal: float | None = None
    precision: float | None = None
    confidence: float = 0.95

    @property
    def completed(self) -> int:
        return len(self.table)

    @property
    def metrics(self) -> list[str]:
        skip = {"run_id", "replication", "seed"}
        return [c for c in self.table.columns if c not in skip and not c.startswith("parameter:")]

    def summary(self) -> pd.DataFrame:
        """One row per metric: n, mean, sd, ci_low, ci_high, p10, p25, p50, p75, p90."""
        rows = [{"metric": m, **describe(self.table[m].to_numpy(float), self.confidence)} for m in self.metrics]
        ordered = sorted(rows, key=lambda r: HEADLINE.index(r["metric"]) if r["metric"] in HEADLINE else 99)
        return pd.DataFrame(ordered)

    def p_goal(self) -> dict[str, float] | None:
        """P(revenue >= goal) with its Wilson interval, or None without a goal."""
        if self.goal is None:
            return None
        return probability_at_least(self.table["revenue"].to_numpy(float), self.goal, self.confidence)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document (keys documented in docs/outputs.md)."""
        keys = ("mean", "ci_low", "ci_high", "p10", "p50", "p90", "sd", "n")
        summary = {row["metric"]: {k: row[k] for k in keys} for row in self.summary().to_dict("records")}
        doc: dict[str, Any] = {
            "scenario": self.scenario.name,
            "seed": self.seed,
            "currency": self.scenario.currency,
            "requested": self.requested,
            "completed": self.completed,
            "stopped": self.stopped,
            "confidence": self.confidence,
            "summary": summary,
        }
        if self.precision is not None:
            doc["precision"] = self.precision
            doc["revenue_ci_half_width_relative"] = relative_half_width(self.table["revenue"], self.confidence)
        if self.goal is not None:
            doc["goal"] = self.goal
            doc["p_goal"] = self.p_goal()
        return json_ready(doc)


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
    half = _half_width(sd, n, confidence)
    out |= {"mean": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half}
    out |= {f"p{p}": float(v) for p, v in zip(PERCENTILES, np.percentile(x, PERCENTILES), strict=True)}
    return out


def _half_width(sd: float, n: int, confidence: float) -> float:
    if n < 2:
        return math.nan
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n))


def relative_half_width(revenue: Iterable[float], confidence: float = 0.95) -> float:
    """Half-width of the mean's confidence interval over the mean (inf while undefined)."""
    x = np.asarray(list(revenue), dtype=float)
    if len(x) < 2 or x.mean() == 0:
        return math.inf
    return _half_width(float(x.std(ddof=1)), len(x), confidence) / abs(float(x.mean()))


def probability_at_least(values: np.ndarray, goal: float, confidence: float = 0.95) -> dict[str, float]:
    """Share of replications with ``values >= goal``, with a Wilson score interval."""
    n = len(values)
    k = int(np.sum(values >= goal))
    if n == 0:
        return {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "hits": 0, "n": 0}
    ci = stats.binomtest(k, n).proportion_ci(confidence, method="wilson")
    return {"estimate": k / n, "ci_low": float(ci.low), "ci_high": float(ci.high), "hits": k, "n": n}


def run(
    scenario: Scenario,
    runs: int,
    seed: int | None = None,
    pool: Executor | None = None,
    *,
    replications: Sequence[int] | None = None,
    goal: float | None = None,
    precision: float | None = None,
    max_runs: int | None = None,
    batch: int = 50,
    confidence: float = 0.95,
    progress: Progress | None = None,
    budget: Budget | None = None,
) -> Replications:
    """Run replications of ``scenario`` through ``pool`` (in-process when None).

    Parameters
    ----------
    runs
        Number of replications 0 .. runs-1; with ``precision``, the first batch size.
    replications
        Run exactly these replication indices instead (e.g. ``[7]`` to re-run one).
    goal
        Revenue goal for ``p_goal``.
    precision
        Keep adding batches of ``batch`` replications until the confidence interval
        half-width of mean revenue is at most ``precision`` times the mean, or
        ``max_runs`` replications have run. Batches are fixed index ranges, so the
        stopping point does not depend on the executor.
    progress
        Called with ``(done, total)`` after each finished task.
    budget
        The work allowed (default: refuse above the machine's limits, see
        :mod:`funnelsim.workload`); judged on every replication that may run
        (``max_runs`` with ``precision``) before the first starts.

    Ctrl-C (KeyboardInterrupt) stops handing out work; finished replications are
    kept and ``stopped`` is ``"interrupted"``.
    """
    seed = resolve_seed(scenario, seed)
    if runs < 1 and replications is None:
        raise MonteCarloError(f"--runs must be >= 1, got {runs}")
    if precision is not None and not (0 < precision < 1):
        raise MonteCarloError(f"--precision must be between 0 and 1 (a share of the mean), got {precision}")
    if precision is not None and replications is not None:
        raise MonteCarloError("--precision adds replications in order; it cannot be combined with --replication")
    if max_runs is not None and max_runs < 1:
        raise MonteCarloError(f"--max-runs must be >= 1, got {max_runs}")
    pool = pool or SerialExecutor()
    most = len(replications) if replications is not None else runs if precision is None else max_runs or MAX_RUNS
    (budget or Budget()).admit(estimate(scenario, most, workers_of(pool)), "this Monte Carlo run")
    results: dict[int, Replication] = {}
    stopped = "completed"
    try:
        if precision is None:
            indices = list(range(runs)) if replications is None else list(replications)
            requested = len(indices)
            _collect(pool, scenario, seed, indices, results, progress, requested)
        else:
            requested = max_runs or MAX_RUNS
            todo = list(range(min(runs, requested)))
            while True:
                _collect(pool, scenario, seed, todo, results, progress, requested)
                width = relative_half_width([results[i].summary["revenue"] for i in sorted(results)], confidence)
                if width <= precision:
                    stopped = "precision reached"
                    break
                if len(results) >= requested:
                    stopped = "max runs reached"
                    break
                todo = list(range(len(results), min(len(results) + batch, requested)))
    except KeyboardInterrupt:
        stopped = "interrupted"
    return _assemble(scenario, seed, results, requested, stopped, goal, precision, confidence)


def _collect(
    pool: Executor,
    scenario: Scenario,
    seed: int,
    indices: list[int],
    results: dict[int, Replication],
    progress: Progress | None,
    total: int,
) -> None:
    chunks = [indices[i : i + CHUNK] for i in range(0, len(indices), CHUNK)]
    pending: set[Future[list[Replication]]] = set()
    try:
        for chunk in chunks:
            pending.add(pool.submit(_replicate_chunk, scenario, seed, chunk))
            # The serial executor has already run it; report progress as we go.
            pending = _harvest(pending, results, progress, total, block=False)
        while pending:
            pending = _harvest(pending, results, progress, total, block=True)
    except KeyboardInterrupt:
        for future in pending:
            future.cancel()
        # Keep whatever finished while we were being interrupted.
        _harvest({f for f in pending if f.done() and not f.cancelled()}, results, None, total, block=False)
        raise


def _harvest(
    pending: set[Future[list[Replication]]],
    results: dict[int, Replication],
    progress: Progress | None,
    total: int,
    *,
    block: bool,
) -> set[Future[list[Replication]]]:
    if block:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
    else:
        done = {f for f in pending if f.done()}
        pending = pending - done
    for future in done:
        for rep in future.result():
            results[rep.replication] = rep
        if progress is not None:
            progress(len(results), total)
    return pending


def _assemble(
    scenario: Scenario,
    seed: int,
    results: dict[int, Replication],
    requested: int,
    stopped: str,
    goal: float | None,
    precision: float | None,
    confidence: float,
) -> Replications:
    order = sorted(results)
    rows = []
    for i in order:
        rep = results[i]
        row: dict[str, Any] = {"run_id": f"{scenario.name}-{seed}-{i}", "replication": i, "seed": seed}
        row.update(rep.summary)
        row.update({f"parameter:{k}": v for k, v in rep.parameters.items()})
        rows.append(row)
    table = pd.DataFrame(rows, columns=None if rows else ["run_id", "replication", "seed"])
    frames = [results[i].monthly.assign(replication=i) for i in order]
    if frames:
        monthly = pd.concat(frames, ignore_index=True)
        monthly = monthly[["replication", *[c for c in monthly.columns if c != "replication"]]]
    else:
        monthly = pd.DataFrame(columns=["replication", "month", *MONTHLY_COLUMNS, "cumulative_revenue"])
    return Replications(scenario, seed, table, monthly, requested, stopped, goal, precision, confidence)
