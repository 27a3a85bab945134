"""Monte Carlo: many replications of one scenario, and what they say with their uncertainty.

Replication ``i`` of seed ``S`` is child ``i`` of ``SeedSequence(S)`` (see
:mod:`funnelsim.randomness`), so a replication's numbers depend only on
``(scenario, S, i)``: not on the executor, the number of workers or the order in
which they finish, and ``run(..., replications=[i])`` reproduces row ``i`` of any
batch. Replications are handed to any :class:`concurrent.futures.Executor`
(:mod:`funnelsim.studies.executors`: in-process, local processes, or Dask
distributed), a bounded window at a time.

Summaries per metric: mean with a Student-t confidence interval, P10/P25/P50/P75/P90,
and for a revenue goal the probability of reaching it with a Wilson score interval.
"""

from __future__ import annotations

import itertools
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, Future, wait
from dataclasses import dataclass
from typing import Any

import pandas as pd

from funnelsim.engine import simulate, warm_start
from funnelsim.engine.warmup import start_of, with_burn_in
from funnelsim.model.scenario import Scenario
from funnelsim.randomness import resolve_seed
from funnelsim.run.metrics import leakage_counts, segments_by_month, stages_by_month, summarize_run
from funnelsim.run.recurring import arr_bridge
from funnelsim.run.result import RunResult
from funnelsim.studies.executors import (
    Interrupted,
    Interruption,
    LocalPool,
    MonteCarloError,
    SerialExecutor,
    first_signal,
    interruption_of,
    record_interruption,
    stop_pool,
    tasks_in_flight,
)
from funnelsim.studies.stats import describe, json_ready, probability_at_least, relative_half_width
from funnelsim.studies.workload import Budget, estimate, workers_of

__all__ = [
    "HEADLINE",
    "Replications",
    "offset",
    "replicate_one",
    "run",
]

# The metrics every summary reports first (issue: revenue, wins, SQLs, MQLs, leads, cycle time).
HEADLINE = ("revenue", "wins", "sqls", "mqls", "leads", "median_cycle_days")
MONTHLY_COLUMNS = ("leads", "mqls", "sqls", "opportunities", "wins", "revenue")
# Added to the monthly table of a subscription scenario: the ARR bridge's columns of arr_bridge.
MONTHLY_ARR_COLUMNS = {
    "closing_arr": "arr",
    "new_arr": "new_arr",
    "expansion_arr": "expansion_arr",
    "contraction_arr": "contraction_arr",
    "churned_arr": "churned_arr",
    "closing_customers": "customers",
}
SEGMENT_MONTHLY = ("revenue", *MONTHLY_ARR_COLUMNS.values())
"""A segmented scenario's monthly table also has these per segment, as ``<column>@<segment>`` (what a
plan's goal of one segment reads, :attr:`funnelsim.studies.planner.Period.segment`)."""
# Replications per task: small, so an interrupted run loses little and load stays balanced.
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


# ---------------------------------------------------------------------------
# Stopping a run from outside: signals and dead workers


# ---------------------------------------------------------------------------
# Executors


@dataclass(frozen=True)
class Replication:
    """What one replication sends back: its summary, its months and any drawn parameters."""

    replication: int
    summary: dict[str, float]
    monthly: pd.DataFrame
    parameters: dict[str, float]


def replicate_one(scenario: Scenario, seed: int, replication: int) -> Replication:
    """Simulate replication ``replication`` of ``seed`` and reduce it to its tables."""
    result = simulate(scenario, seed=seed, replication=replication)
    monthly = stages_by_month(result.events, scenario.start_date, scenario.horizon_days)
    monthly = monthly[["month", *MONTHLY_COLUMNS]].copy()
    monthly["cumulative_revenue"] = monthly["revenue"].cumsum()
    if result.arr_ledger is not None:
        bridge = arr_bridge(result.arr_ledger, scenario.start_date, scenario.horizon_days)
        for column, name in MONTHLY_ARR_COLUMNS.items():
            monthly[name] = bridge[column].to_numpy()
    if scenario.segments:
        monthly = pd.concat([monthly, _segment_months(result)], axis=1)
    parameters = dict(result.metadata.get("parameters", {}))
    summary = summarize_run(result) | leakage_counts(result.events)
    return Replication(replication, summary, monthly, parameters)


def _segment_months(result: RunResult) -> pd.DataFrame:
    """The :data:`SEGMENT_MONTHLY` columns of each segment of a segmented run, month by month."""
    sc = result.scenario
    by_month = segments_by_month(result)
    out = {}
    for name in sc.segment_names:
        out[f"revenue@{name}"] = by_month.loc[by_month["segment"] == name, "revenue"].to_numpy()
        if result.arr_ledger is not None:
            ledger = result.arr_ledger[result.arr_ledger["segment"] == name]
            bridge = arr_bridge(ledger, sc.start_date, sc.horizon_days)
            for column, column_name in MONTHLY_ARR_COLUMNS.items():
                out[f"{column_name}@{name}"] = bridge[column].to_numpy()
    return pd.DataFrame(out)


def _replicate_chunk(scenario: Scenario, seed: int, indices: Sequence[int]) -> list[Replication]:
    return [replicate_one(scenario, seed, i) for i in indices]


@dataclass
class Replications:
    """The replications of one scenario, as tidy tables, and their summaries.

    ``table`` has one row per replication: ``run_id``, ``replication``, ``seed``, every
    metric of :func:`funnelsim.run.metrics.summarize_run`, the leads lost per reason
    (``leak_<reason>``, :func:`funnelsim.run.metrics.leakage_counts`), and ``parameter:<path>`` for
    each parameter drawn per replication. ``monthly`` has one row per replication and
    month. ``requested`` is how many were asked for; ``stopped`` says why the run
    ended: ``"completed"``, ``"precision reached"``, ``"max runs reached"`` or
    ``"interrupted"``, and then ``interruption`` says by what (Ctrl-C, SIGTERM, a dead
    worker). ``complete`` is false only for an interrupted run.
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
    interruption: Interruption | None = None

    @property
    def completed(self) -> int:
        return len(self.table)

    @property
    def complete(self) -> bool:
        """Whether the run went as far as it was asked (it was not interrupted)."""
        return self.stopped != "interrupted"

    def stop_message(self) -> str | None:
        """``"interrupted: K of N replications completed"`` (or the dead worker's line); None when complete."""
        if self.complete:
            return None
        return (self.interruption or Interruption("SIGINT")).describe(self.completed, self.requested)

    def raise_if_interrupted(self) -> None:
        """Raise :class:`Interrupted` if the run was interrupted (for callers that report nothing partial)."""
        if not self.complete:
            raise Interrupted(self.interruption or Interruption("SIGINT"))

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
            "complete": self.complete,
            "stopped": self.stopped,
            "start": start_of(self.scenario),
            "confidence": self.confidence,
            "summary": summary,
        }
        if self.interruption is not None:
            doc["interruption"] = {"cause": self.interruption.cause, "detail": self.stop_message()}
        if self.precision is not None:
            doc["precision"] = self.precision
            doc["revenue_ci_half_width_relative"] = relative_half_width(self.table["revenue"], self.confidence)
        if self.goal is not None:
            doc["goal"] = self.goal
            doc["p_goal"] = self.p_goal()
        return json_ready(doc)


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
        :mod:`funnelsim.studies.workload`); judged on every replication that may run
        (``max_runs`` with ``precision``) before the first starts.

    Ctrl-C (KeyboardInterrupt), SIGTERM inside :func:`stop_on_signals` and the death
    of a worker process (:class:`~concurrent.futures.BrokenExecutor`) stop the run:
    no more work is handed out, the workers of a pool made by :func:`executor` are
    ended, the finished replications are kept, ``stopped`` is ``"interrupted"`` and
    ``interruption`` says why.

    Replications are handed out lazily, a few tasks per worker at a time, so ``runs``
    may be far larger than what fits in memory as a list of tasks.
    """
    seed = resolve_seed(scenario, seed)
    _check_options(runs, replications, precision, max_runs)
    pool = pool or SerialExecutor()
    most = len(replications) if replications is not None else runs if precision is None else max_runs or MAX_RUNS
    (budget or Budget()).admit(estimate(scenario, most, workers_of(pool)), "this Monte Carlo run")
    scenario, _ = warm_start(scenario, seed)  # once, here: the workers run no pilot
    results: dict[int, Replication] = {}
    stopped, interruption = "completed", typing.cast(Interruption | None, None)
    requested = (max_runs or MAX_RUNS) if precision is not None else runs
    try:
        if precision is None:
            # A range is lazy: --runs 1e9 costs no list of a billion indices.
            indices: Sequence[int] = range(runs) if replications is None else replications
            requested = len(indices)
            _collect(pool, scenario, seed, indices, results, progress, requested)
        else:
            stopped = _until_precise(
                pool, scenario, seed, runs, results, progress, requested, precision, batch, confidence
            )
    except (KeyboardInterrupt, BrokenExecutor) as exc:
        stopped, interruption = "interrupted", _why_stopped(exc, pool)
        stop_pool(pool)
    reps = _assemble(scenario, seed, results, requested, stopped, goal, precision, confidence)
    reps.interruption = interruption
    if interruption is not None:
        record_interruption(interruption)
    return reps


def same_burn_in(scenarios: Sequence[Scenario], seed: int, chosen_from: Sequence[Scenario]) -> list[Scenario]:
    """The ``scenarios`` of one study on the same warm start.

    Each warm scenario without a ``burn_in_days`` of its own gets the longest burn-in
    chosen for the scenarios ``chosen_from`` (a pilot each, :func:`warm_start`), so the
    study compares them over the same window from the same kind of start, on the same
    random streams.
    """
    chosen = [burn_in for sc in chosen_from if (burn_in := warm_start(sc, seed)[1]) is not None]
    if not chosen:
        return list(scenarios)
    longest = max(chosen, key=lambda b: b.days)
    return [with_burn_in(sc, longest) if sc.burns_in and sc.burn_in_days is None else sc for sc in scenarios]


def _check_options(
    runs: int, replications: Sequence[int] | None, precision: float | None, max_runs: int | None
) -> None:
    """Refuse options that do not make a run (each message names its flag)."""
    if runs < 1 and replications is None:
        raise MonteCarloError(f"--runs must be >= 1, got {runs}")
    if precision is not None and not (0 < precision < 1):
        raise MonteCarloError(f"--precision must be between 0 and 1 (a share of the mean), got {precision}")
    if precision is not None and replications is not None:
        raise MonteCarloError("--precision adds replications in order; it cannot be combined with --replication")
    if max_runs is not None and max_runs < 1:
        raise MonteCarloError(f"--max-runs must be >= 1, got {max_runs}")


def _until_precise(
    pool: Executor,
    scenario: Scenario,
    seed: int,
    runs: int,
    results: dict[int, Replication],
    progress: Progress | None,
    requested: int,
    precision: float,
    batch: int,
    confidence: float,
) -> str:
    """Add batches (fixed index ranges, so the stop does not depend on the executor) until precise; say why it ended."""
    todo = range(min(runs, requested))
    while True:
        _collect(pool, scenario, seed, todo, results, progress, requested)
        width = relative_half_width([results[i].summary["revenue"] for i in sorted(results)], confidence)
        if width <= precision:
            return "precision reached"
        if len(results) >= requested:
            return "max runs reached"
        todo = range(len(results), min(len(results) + batch, requested))


def _why_stopped(exc: BaseException, pool: Executor) -> Interruption:
    """What stopped a run: the signal, or the worker that died (a signal that came with a death explains it better)."""
    if isinstance(exc, KeyboardInterrupt):
        return interruption_of(exc)
    if first_signal() is not None:
        return Interruption(first_signal() or "SIGINT")
    detail = pool.dead_worker() if isinstance(pool, LocalPool) else "a worker process died"
    return Interruption("worker died", detail)


def _tasks(indices: Iterable[int]) -> Iterator[list[int]]:
    """``indices`` in lists of :data:`CHUNK`, drawn lazily."""
    it = iter(indices)
    while chunk := list(itertools.islice(it, CHUNK)):
        yield chunk


def _collect(
    pool: Executor,
    scenario: Scenario,
    seed: int,
    indices: Iterable[int],
    results: dict[int, Replication],
    progress: Progress | None,
    total: int,
) -> None:
    window = tasks_in_flight(pool)
    # A future leaves ``pending`` only once its replications are in ``results``, so an
    # interrupt landing anywhere loses no finished work.
    pending: set[Future[list[Replication]]] = set()
    try:
        for chunk in _tasks(indices):
            while len(pending) >= window:
                _harvest(pending, results, progress, total, block=True)
            pending.add(pool.submit(_replicate_chunk, scenario, seed, chunk))
            # The serial executor has already run it; report progress as we go.
            _harvest(pending, results, progress, total, block=False)
        while pending:
            _harvest(pending, results, progress, total, block=True)
    except BaseException:
        for future in pending:
            future.cancel()
        # Keep whatever finished while we were being stopped.
        _harvest({f for f in pending if f.done() and not f.cancelled() and f.exception() is None}, results)
        raise


def _harvest(
    pending: set[Future[list[Replication]]],
    results: dict[int, Replication],
    progress: Progress | None = None,
    total: int = 0,
    *,
    block: bool = False,
) -> None:
    """Move the finished futures of ``pending`` into ``results``, then report progress once per task.

    Every success is kept before the first failure is raised or ``progress`` is called
    (it may raise to stop the run).
    """
    if block:
        wait(pending, return_when=FIRST_COMPLETED)
    counts = []
    failure: BaseException | None = None
    for future in [f for f in pending if f.done()]:
        if not future.cancelled():
            error = future.exception()
            if error is None:
                for rep in future.result():
                    results[rep.replication] = rep
                counts.append(len(results))
            else:
                failure = failure or error
        pending.discard(future)
    if failure is not None:
        raise failure
    if progress is not None:
        for done in counts:
            progress(done, total)


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
