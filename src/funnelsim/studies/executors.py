"""Where replications run, and how a run is stopped: in-process, local worker processes or Dask, and signals.

A local worker is a process with no say over Ctrl-C (the parent decides), that dies with
its parent; SIGINT and SIGTERM stop a run as one interruption (finished replications are
kept); a Dask scheduler address is checked and its greeting probed before any work is sent.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import struct
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any
from urllib.parse import urlsplit


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

    def __init__(self, interruption: Interruption | str, detail: str = "") -> None:
        # Copies are made as ``type(exc)(*exc.args)`` (SimPy does so when a process fails),
        # so the arguments rebuild the same interruption.
        if isinstance(interruption, str):
            interruption = Interruption(interruption, detail)
        args = (interruption.cause, interruption.detail) if interruption.detail else (interruption.cause,)
        super().__init__(*args)
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


# How often a worker checks that its parent is still there (seconds).
PARENT_POLL = 0.5


class LocalPool(ProcessPoolExecutor):
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
    # A forked worker inherits the parent's stop_on_signals handler; the SIGTERM a broken pool
    # sends its survivors must end them quietly, not raise Interrupted (and print a traceback).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
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
        pool = LocalPool(jobs)
        try:
            yield pool
            pool.shutdown(wait=True)
        except BaseException:
            pool.stop_now()
            raise
        finally:
            _LIVE_POOLS.discard(pool)


# Pools alive in this process, so the last-resort exit can kill their workers.
_LIVE_POOLS: weakref.WeakSet[LocalPool] = weakref.WeakSet()


def stop_pool(pool: Executor) -> None:
    """End the workers of a pool we made: what they are computing is lost, and nothing keeps running."""
    if isinstance(pool, LocalPool):
        pool.stop_now()


def tasks_in_flight(pool: Executor) -> int:
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


def first_signal() -> str | None:
    """The signal (``"SIGINT"`` or ``"SIGTERM"``) that stopped the current run, if any."""
    return _signals.first


def record_interruption(interruption: Interruption) -> None:
    """Remember what stopped the last interrupted run, for :func:`interruption_of`."""
    _signals.last = interruption


# Tasks submitted per worker at any time: enough that no worker idles between two
# harvests, few enough that a run of 10^9 replications holds a handful of futures.
IN_FLIGHT_PER_WORKER = 3
