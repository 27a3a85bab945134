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

import ctypes
import itertools
import os
import signal
import socket
import struct
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from funnelsim.engine import simulate
from funnelsim.model.scenario import Scenario
from funnelsim.run.metrics import leakage_counts, stages_by_month, summarize_run
from funnelsim.run.result import resolve_seed
from funnelsim.studies.stats import describe, json_ready, probability_at_least, relative_half_width
from funnelsim.studies.workload import Budget, estimate, workers_of

__all__ = [
    "HEADLINE",
    "Interrupted",
    "Interruption",
    "MonteCarloError",
    "Replications",
    "SerialExecutor",
    "available_cpus",
    "executor",
    "offset",
    "replicate",
    "run",
    "stop_on_signals",
]

# The metrics every summary reports first (issue: revenue, wins, SQLs, MQLs, leads, cycle time).
HEADLINE = ("revenue", "wins", "sqls", "mqls", "leads", "median_cycle_days")
MONTHLY_COLUMNS = ("leads", "mqls", "sqls", "opportunities", "wins", "revenue")
# Replications per task: small, so an interrupted run loses little and load stays balanced.
CHUNK = 4
# Tasks submitted per worker at any time: enough that no worker idles between two
# harvests, few enough that a run of 10^9 replications holds a handful of futures.
IN_FLIGHT_PER_WORKER = 3
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


# ---------------------------------------------------------------------------
# Stopping a run from outside: signals and dead workers


@dataclass(frozen=True)
class Interruption:
    """Why a run stopped before it was done: ``cause`` is ``"SIGINT"``, ``"SIGTERM"`` or ``"worker died"``.

    ``detail`` names the dead worker (``"worker process 4711 died (killed by SIGKILL)"``).
    """

    cause: str
    detail: str = ""

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal's number (130, 143); 1 for a dead worker."""
        return {"SIGINT": 128 + signal.SIGINT, "SIGTERM": 128 + signal.SIGTERM}.get(self.cause, 1)

    def describe(self, completed: int, requested: int) -> str:
        """One line for the terminal: what stopped the run and how much of it is kept."""
        done = f"{completed} of {requested} replications completed"
        if self.cause == "SIGINT":
            return f"interrupted: {done}"
        if self.cause == "SIGTERM":
            return f"interrupted: {done} (SIGTERM)"
        return f"{self.detail or 'a worker process died'}: {done}"


class Interrupted(KeyboardInterrupt):
    """A run stopped by SIGINT, SIGTERM or a dead worker.

    A :class:`KeyboardInterrupt`, so every caller that keeps what finished on Ctrl-C does
    the same for the other two; ``interruption`` says which it was.
    """

    def __init__(self, interruption: Interruption) -> None:
        super().__init__(interruption.cause)
        self.interruption = interruption


def interruption_of(exc: BaseException) -> Interruption:
    """The :class:`Interruption` behind ``exc``.

    Its own if it is an :class:`Interrupted`; for a plain :class:`KeyboardInterrupt` (which
    callers such as a sweep raise when one of their runs was interrupted), what stopped
    the last interrupted run, else the first signal received, else Ctrl-C.
    """
    if isinstance(exc, Interrupted):
        return exc.interruption
    return _signals.last or Interruption(_signals.first or "SIGINT")


class _SignalState:
    installed = False
    first: str | None = None  # the signal that stopped the run
    count = 0
    last: Interruption | None = None  # what stopped the last interrupted run


_signals = _SignalState()
QUIT_MESSAGE = b"stopping: ending the workers and keeping what finished (signal again to quit at once)\n"


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """While open, SIGTERM stops a run as Ctrl-C does, and later signals do not disturb the stop.

    The first SIGINT or SIGTERM raises :class:`Interrupted` in the main thread: a Monte
    Carlo run stops handing out work, ends its workers and keeps the finished
    replications. A second one is noted and otherwise ignored, so that ending the workers
    and writing what finished are not themselves cut short (a second Ctrl-C used to
    interrupt the pool's shutdown, hang, and leave its workers running). A third gives up:
    the workers are killed and the process exits at once with the first signal's code,
    keeping nothing.

    Signal handlers belong to the main thread: elsewhere, or inside another
    ``stop_on_signals``, this does nothing.
    """
    if _signals.installed or threading.current_thread() is not threading.main_thread():
        yield
        return
    names = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.getsignal(s) for s in names}
    _signals.installed, _signals.first, _signals.count, _signals.last = True, None, 0, None
    try:
        for s in names:
            signal.signal(s, _on_signal)
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        _signals.installed = False


def _on_signal(signum: int, frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    _signals.count += 1
    if _signals.first is None:
        _signals.first = name
        raise Interrupted(Interruption(name))
    if _signals.count == 2:
        os.write(2, QUIT_MESSAGE)  # not print: a signal handler may run in the middle of a print
        return
    for pool in list(_LIVE_POOLS):
        pool.kill_workers()
    os._exit(Interruption(_signals.first).exit_code)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's count)."""
    counter = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if counter is not None:
        count = counter()
    elif hasattr(os, "sched_getaffinity"):
        count = len(os.sched_getaffinity(0))
    else:
        count = os.cpu_count()
    return max(1, count or 1)


# Pools alive in this process, so the last-resort exit can kill their workers.
_LIVE_POOLS: weakref.WeakSet[_LocalPool] = weakref.WeakSet()
# How often a worker checks that its parent is still there (seconds).
PARENT_POLL = 0.5


class _LocalPool(ProcessPoolExecutor):
    """Worker processes on this machine that can be ended at once and die with the parent.

    :class:`~concurrent.futures.ProcessPoolExecutor` has no public way to stop tasks that
    already run: ``shutdown(cancel_futures=True)`` drops the queued ones only, then waits
    for the running ones (or, with ``wait=False``, leaves them running). Its processes
    are in the private mapping ``_processes`` (pid → :class:`multiprocessing.Process`,
    CPython 3.8 to 3.14); this class is the one place that reads it, and copies it as
    workers start, because ``shutdown`` drops it.
    """

    def __init__(self, jobs: int) -> None:
        super().__init__(max_workers=jobs, initializer=_worker_start, initargs=(os.getpid(),))
        self.jobs = jobs
        self._workers: dict[int, Any] = {}
        _LIVE_POOLS.add(self)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        self._note_workers()
        return future

    def _note_workers(self) -> None:
        self._workers.update(getattr(self, "_processes", None) or {})

    def worker_pids(self) -> list[int]:
        """Process ids of every worker started so far."""
        self._note_workers()
        return list(self._workers)

    def kill_workers(self) -> None:
        """SIGKILL every worker still running (what they were computing is lost)."""
        for process in list(self._workers.values()):
            try:
                if process.exitcode is None:
                    process.kill()
            except (OSError, ValueError):  # already reaped, or closed
                pass

    def stop_now(self) -> None:
        """Drop the queued tasks, end the workers and wait (a few seconds at most) until they are gone."""
        self._note_workers()
        manager = getattr(self, "_executor_manager_thread", None)
        self.shutdown(wait=False, cancel_futures=True)
        self.kill_workers()
        for process in self._workers.values():
            process.join(timeout=5)
        # The manager thread notices the dead workers and winds down; wait for it here so
        # that the interpreter, which joins it at exit, does not wait instead.
        if manager is not None:
            manager.join(timeout=5)
        _LIVE_POOLS.discard(self)

    def dead_worker(self) -> str:
        """Which worker died, for the message (the first whose end the pool did not cause)."""
        self._note_workers()
        # The pool learns of a death when the worker's pipe closes, a moment before the
        # kernel reports its exit status; and it ends the others. Let them all finish.
        deadline = time.monotonic() + 2
        for process in self._workers.values():
            process.join(max(0.0, deadline - time.monotonic()))
        ended = [(pid, p.exitcode) for pid, p in self._workers.items() if p.exitcode is not None]
        # terminate_broken ends the survivors with SIGTERM; the culprit usually died otherwise.
        culprits = [e for e in ended if e[1] != -signal.SIGTERM] or ended
        if not culprits:
            return "a worker process died"
        pid, code = culprits[0]
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        return f"worker process {pid} died ({how})"


def _worker_start(parent_pid: int) -> None:
    # Ctrl-C in a terminal reaches the whole process group; the parent alone decides what to keep.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent_pid)


def _die_with_parent(parent_pid: int) -> None:
    """End this worker when its parent goes, even by SIGKILL, which leaves the parent no clean-up.

    On Linux the kernel does it (``prctl(PR_SET_PDEATHSIG, SIGKILL)``); everywhere, a
    daemon thread checks every :data:`PARENT_POLL` seconds that the worker has not been
    handed to another parent (init or a subreaper), which is what happens when its own exits.
    """
    if sys.platform.startswith("linux"):
        try:
            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no libc to call: the watchdog still runs
            pass
    watched = os.getppid()  # the parent, or a fork server between the parent and us

    def orphaned() -> bool:
        return os.getppid() != watched or (watched != parent_pid and not _alive(parent_pid))

    if orphaned():  # the parent died before we could ask to die with it
        os._exit(1)

    def watch() -> None:
        while not orphaned():
            time.sleep(PARENT_POLL)
        os._exit(1)

    threading.Thread(target=watch, name="funnelsim-parent-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------------
# Executors


# Dask address schemes (and inproc://, for a scheduler in this very process, from Python).
SCHEDULER_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
# Seconds a Dask scheduler has to greet us, and the most its greeting may weigh (bytes).
SCHEDULER_TIMEOUT = 3.0
MAX_GREETING = 1 << 20


def check_scheduler_address(address: str) -> str:
    """``address`` as ``scheme://host:port`` (``tcp://`` when it has no scheme), or a :class:`MonteCarloError`."""
    text = address.strip()
    if text.startswith("inproc://"):
        return text
    if "://" not in text:
        text = f"tcp://{text}"
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme not in SCHEDULER_SCHEMES
        or not parts.hostname
        or port is None
        or not 0 < port < 65536
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise MonteCarloError(
            f"--scheduler expects a Dask scheduler address scheme://host:port (scheme one of "
            f"{', '.join(SCHEDULER_SCHEMES)}; port 1-65535) or 'local', got {address!r}"
        )
    return text


def probe_scheduler(address: str, timeout: float = SCHEDULER_TIMEOUT) -> None:
    """Fail fast unless the server at ``address`` (``tcp://host:port``) greets us as Dask does.

    A Dask server speaks first: on accepting a connection it sends its handshake, framed
    as an 8-byte length (unsigned, native byte order) and that many bytes of msgpack
    (``distributed.comm.tcp``). distributed's client waits for the greeting without a
    deadline and trusts the length: a server that waits for a request (HTTP) hangs it,
    and one that sends text makes it allocate ``b"HTTP/1.1"`` read as a length, about
    3.5 exabytes. Reading the greeting here, with a deadline and a bound on its size,
    turns both into a clear error. Other schemes (TLS, websockets) are not probed.
    """
    parts = urlsplit(address)
    if parts.scheme != "tcp":
        return
    host, port = parts.hostname or "", parts.port or 0
    where = f"--scheduler {address}"
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            (length,) = struct.unpack("Q", _receive(sock, 8, deadline))
            if not 0 < length <= MAX_GREETING:
                raise MonteCarloError(f"{where} does not speak Dask's protocol (is it a Dask scheduler's port?)")
            _receive(sock, length, deadline)
    except TimeoutError:
        raise MonteCarloError(
            f"{where} did not answer as a Dask scheduler within {timeout:g} s (is it a Dask scheduler's port?)"
        ) from None
    except EOFError:
        raise MonteCarloError(
            f"{where} closed the connection without a Dask greeting (not a Dask scheduler?)"
        ) from None
    except OSError as exc:
        raise MonteCarloError(f"{where}: cannot connect ({exc})") from None


def _receive(sock: socket.socket, size: int, deadline: float) -> bytes:
    data = bytearray()
    while len(data) < size:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        chunk = sock.recv(min(size - len(data), 1 << 16))
        if not chunk:
            raise EOFError
        data += chunk
    return bytes(data)


def _connect(address: str, timeout: float = SCHEDULER_TIMEOUT) -> Any:
    """A :class:`distributed.Client` of ``address``, or a :class:`MonteCarloError` after a deadline.

    The client is made in a daemon thread we can walk away from: if the handshake after
    the probe still hangs, the process is not held up by it.
    """
    from distributed import Client

    box: dict[str, Any] = {}

    def connect() -> None:
        try:
            box["client"] = Client(address, timeout=timeout)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=connect, name="funnelsim-dask-connect", daemon=True)
    thread.start()
    thread.join(3 * timeout)
    if thread.is_alive():
        raise MonteCarloError(f"--scheduler {address}: no Dask handshake within {3 * timeout:g} s")
    if "error" in box:
        raise MonteCarloError(f"--scheduler {address}: cannot connect to a Dask scheduler ({box['error']})")
    return box["client"]


def _warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=4)


@contextmanager
def executor(
    jobs: int = 1, scheduler: str | None = None, *, warn: Callable[[str], None] | None = None
) -> Iterator[Executor]:
    """The executor for ``--jobs`` / ``--scheduler``; closed (and any local cluster stopped) on exit.

    ``scheduler`` is a Dask scheduler address (``tcp://host:port``) or ``"local"`` to
    start a :class:`distributed.LocalCluster` of ``jobs`` single-threaded worker
    processes. Dask is an optional extra, imported only here. An address is checked
    (:func:`check_scheduler_address`) and probed (:func:`probe_scheduler`) before
    connecting, so a wrong one fails in seconds.

    Local processes (``jobs`` with no scheduler, or ``"local"``) are capped at the CPUs
    this process may use (:func:`available_cpus`); ``warn`` (default
    :func:`warnings.warn`) is told when that happens. They ignore Ctrl-C (the parent
    decides what to keep) and exit when the parent dies, even by SIGKILL; if the block
    ends with an exception (an interrupt) they are killed rather than waited for.
    """
    if jobs < 1:
        raise MonteCarloError(f"--jobs must be >= 1, got {jobs}")
    if scheduler is None or scheduler == "local":
        cpus = available_cpus()
        if jobs > cpus:
            (warn or _warn)(f"--jobs {jobs} is more than the {cpus} CPUs available here; using --jobs {cpus}")
            jobs = cpus
    if scheduler is not None:
        address = None if scheduler == "local" else check_scheduler_address(scheduler)
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise MonteCarloError(
                "--scheduler needs Dask, which is not installed: pip install 'funnelsim[dask]'"
            ) from None
        if address is None:
            with (
                LocalCluster(n_workers=jobs, threads_per_worker=1, dashboard_address=None) as cluster,
                Client(cluster) as client,
            ):
                yield client.get_executor()
        else:
            probe_scheduler(address)
            with _connect(address) as client:
                yield client.get_executor()
    elif jobs == 1:
        yield SerialExecutor()
    else:
        pool = _LocalPool(jobs)
        try:
            yield pool
            pool.shutdown(wait=True)
        except BaseException:
            pool.stop_now()
            raise
        finally:
            _LIVE_POOLS.discard(pool)


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
    interruption: Interruption | None = None
    requested = (max_runs or MAX_RUNS) if precision is not None else runs
    try:
        if precision is None:
            # A range is lazy: --runs 1e9 costs no list of a billion indices.
            indices: Sequence[int] = range(runs) if replications is None else replications
            requested = len(indices)
            _collect(pool, scenario, seed, indices, results, progress, requested)
        else:
            todo = range(min(runs, requested))
            while True:
                _collect(pool, scenario, seed, todo, results, progress, requested)
                width = relative_half_width([results[i].summary["revenue"] for i in sorted(results)], confidence)
                if width <= precision:
                    stopped = "precision reached"
                    break
                if len(results) >= requested:
                    stopped = "max runs reached"
                    break
                todo = range(len(results), min(len(results) + batch, requested))
    except KeyboardInterrupt as exc:
        stopped, interruption = "interrupted", interruption_of(exc)
        _stop(pool)
    except BrokenExecutor:
        # A signal that came with the death (a kill of the whole group) is the better explanation.
        stopped = "interrupted"
        if _signals.first is not None:
            interruption = Interruption(_signals.first)
        else:
            detail = pool.dead_worker() if isinstance(pool, _LocalPool) else "a worker process died"
            interruption = Interruption("worker died", detail)
        _stop(pool)
    reps = _assemble(scenario, seed, results, requested, stopped, goal, precision, confidence)
    reps.interruption = interruption
    if interruption is not None:
        _signals.last = interruption
    return reps


def _stop(pool: Executor) -> None:
    """End the workers of a pool we made: what they are computing is lost, and nothing keeps running."""
    if isinstance(pool, _LocalPool):
        pool.stop_now()


def _tasks(indices: Iterable[int]) -> Iterator[list[int]]:
    """``indices`` in lists of :data:`CHUNK`, drawn lazily."""
    it = iter(indices)
    while chunk := list(itertools.islice(it, CHUNK)):
        yield chunk


def _in_flight(pool: Executor) -> int:
    """How many tasks to keep submitted: a few per worker, so none idles between harvests."""
    if isinstance(pool, SerialExecutor):
        return 1
    workers = getattr(pool, "_max_workers", None)  # ProcessPoolExecutor's size
    if not isinstance(workers, int):
        client = getattr(pool, "_client", None)  # a Dask ClientExecutor
        try:
            workers = sum(client.nthreads().values()) if client is not None else 8
        except Exception:  # a scheduler that cannot say: assume a mid-sized cluster
            workers = 8
    return IN_FLIGHT_PER_WORKER * max(1, workers)


def _collect(
    pool: Executor,
    scenario: Scenario,
    seed: int,
    indices: Iterable[int],
    results: dict[int, Replication],
    progress: Progress | None,
    total: int,
) -> None:
    window = _in_flight(pool)
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
