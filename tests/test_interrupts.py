"""Stopping a Monte Carlo run from outside keeps what finished and leaves no process behind.

Each test starts ``python -m funnelsim run`` as a real process (signals and process
trees cannot be shown in-process), stops it one way or another, and checks the exit
code, the message, the folder written and that no worker outlives the run. Child
processes are found through /proc (psutil is not a dependency), so these tests run on
Linux only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from funnelsim import load_scenario
from funnelsim.studies import executors
from funnelsim.studies import replications as mc
from funnelsim.studies.workload import UNLIMITED
from scaled import TENTH_VOLUME

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.toml"
# The baseline company at a tenth of its size over four months (~0.05 s a replication),
# so a few seconds finish some of 400 replications, never all. Its burn-in is given, so no
# pilot runs first: on a loaded machine they took longer than a test waits, and its signal
# stopped the pilot instead of the replications.
SMALL = (
    "horizon_days=120",
    *TENTH_VOLUME,
    "handoff.sdr.count=1",
    "sales.ae.count=2",
    "sales.ae.hires=[]",
    "burn_in_days=270",
)
RUNS = 400


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first), or None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (a scan of /proc: /proc/<pid>/task/*/children is not always there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def alive(pid: int) -> bool:
    """Running or sleeping (a zombie has finished; only its exit status is left)."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


class Run:
    """``funnelsim run`` in its own session, its stderr read line by line as it comes."""

    def __init__(self, out: Path, *args: str, runs: int = RUNS, jobs: int = 2) -> None:
        command = [sys.executable, "-m", "funnelsim", "run", str(BASELINE), *(f"--set={o}" for o in SMALL)]
        command += ["--runs", str(runs), "--jobs", str(jobs), "--seed", "3", "--out", str(out), *args]
        self.proc = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None, f"ended early ({self.proc.returncode}): {self.stderr}"
            assert time.monotonic() < deadline, f"no {text!r} on stderr after {timeout} s: {self.stderr}"
            time.sleep(0.05)

    def workers(self, count: int, timeout: float = 30) -> list[int]:
        """Wait until the run has ``count`` worker processes; return their ids."""
        deadline = time.monotonic() + timeout
        while len(found := children(self.proc.pid)) < count:
            assert self.proc.poll() is None, f"ended early ({self.proc.returncode}): {self.stderr}"
            assert time.monotonic() < deadline, f"no {count} workers after {timeout} s"
            time.sleep(0.05)
        return found

    def finish(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout)
        self.reader.join(5)
        return code

    def kill(self) -> None:
        """Kill what is left of the session this run started (workers outlive a dead parent if a test fails)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[type[Run]]:
    """Runs started by a test, killed if the test failed midway; a folder written before them stays untouched."""
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "replications.csv").write_text("replication\n0\n")
    started: list[Run] = []

    class Tracked(Run):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            started.append(self)

    yield Tracked
    for run in started:
        run.kill()
    assert [p.name for p in earlier.iterdir()] == ["replications.csv"]
    assert (earlier / "replications.csv").read_text() == "replication\n0\n"


def _partial_folder(out: Path, code: int, requested: int = RUNS) -> int:
    """The folder of an interrupted run: incomplete, with the finished replications; returns their count."""
    manifest = json.loads((out / "manifest.json").read_text())
    table = pd.read_csv(out / "replications.csv")
    assert manifest["complete"] is False
    assert (manifest["requested"], manifest["stopped"]) == (requested, "interrupted")
    assert manifest["completed"] == len(table)
    assert 1 <= len(table) < requested
    assert table["replication"].is_unique
    assert not list(out.parent.glob(f".{out.name}.partial-*"))
    return len(table)


def _settle(seconds: float = 2.0) -> None:
    """Let some replications finish (a few dozen at ~0.05 s each on two workers)."""
    time.sleep(seconds)


@pytest.mark.parametrize(
    ("signals", "jobs", "code"),
    [
        ((signal.SIGINT, signal.SIGINT), 2, 130),
        ((signal.SIGTERM,), 2, 143),
        ((signal.SIGTERM, signal.SIGINT), 1, 143),
    ],
    ids=["sigint-twice", "sigterm", "sigterm-then-sigint-serial"],
)
def test_a_signal_stops_the_run_keeps_the_finished_replications_and_leaves_no_worker(
    start: type[Run], tmp_path: Path, signals: tuple[signal.Signals, ...], jobs: int, code: int
) -> None:
    """SIGINT (twice, quickly) or SIGTERM: exit 130 or 143, the finished replications written with
    ``complete: false``, "interrupted: K of N replications completed" on stderr, and every worker
    process gone; the in-process ``--jobs 1`` path behaves the same."""
    out = tmp_path / "out"
    run = start(out, jobs=jobs)
    run.wait_for("replications on")
    workers = run.workers(jobs) if jobs > 1 else []
    _settle()
    for sig in signals:
        os.kill(run.proc.pid, sig)
        time.sleep(0.05)
    assert run.finish() == code, run.stderr
    done = _partial_folder(out, code)
    assert f"interrupted: {done} of {RUNS} replications completed" in run.stderr
    assert ("(SIGTERM)" in run.stderr) == (code == 143)
    assert "Traceback" not in run.stderr
    assert not [pid for pid in workers if alive(pid)]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["interruption"]["cause"] == signals[0].name


def test_a_dead_worker_stops_the_run_names_it_and_keeps_what_finished(start: type[Run], tmp_path: Path) -> None:
    """A worker killed with SIGKILL mid-run: exit 1, a line naming the worker and how it died,
    the finished replications written, and the other worker gone too."""
    out = tmp_path / "out"
    run = start(out)
    workers = run.workers(2)
    _settle()
    os.kill(workers[0], signal.SIGKILL)
    assert run.finish() == 1, run.stderr
    done = _partial_folder(out, 1)
    assert f"worker process {workers[0]} died (killed by SIGKILL): {done} of {RUNS} replications completed" in (
        run.stderr
    )
    assert "Traceback" not in run.stderr
    assert not [pid for pid in workers if alive(pid)]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["interruption"]["cause"] == "worker died"


def test_workers_end_when_the_parent_is_killed_outright(start: type[Run], tmp_path: Path) -> None:
    """SIGKILL of the parent gives it no chance to clean up: the workers notice on their own
    (PR_SET_PDEATHSIG, and a watchdog of their parent) and are gone within seconds."""
    run = start(tmp_path / "out", runs=200)
    workers = run.workers(2)
    time.sleep(0.5)
    os.kill(run.proc.pid, signal.SIGKILL)
    run.finish()
    deadline = time.monotonic() + 5
    while [pid for pid in workers if alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if alive(pid)]
    assert not (tmp_path / "out").exists()


def test_replications_are_handed_out_lazily_a_few_per_worker() -> None:
    """A trillion replications cost no list of a trillion tasks: at most three tasks per worker are
    submitted ahead of the results taken, and stopping keeps exactly the finished ones, in order."""
    scenario = load_scenario(BASELINE, SMALL)
    month = pd.DataFrame({"month": ["2027-01"], **{c: [0.0] for c in mc.MONTHLY_COLUMNS}, "cumulative_revenue": [0.0]})

    def quick(scenario: object, seed: int, indices: list[int]) -> list[mc.Replication]:
        time.sleep(0.001)
        return [mc.Replication(i, {"revenue": float(i)}, month, {}) for i in indices]

    class Counting(ThreadPoolExecutor):
        submitted = harvested = most_ahead = 0

        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            Counting.submitted += 1
            Counting.most_ahead = max(Counting.most_ahead, Counting.submitted - Counting.harvested)
            return super().submit(quick, *args, **kwargs)

    def progress(done: int, total: int) -> None:
        Counting.harvested += 1
        if Counting.harvested == 50:
            raise KeyboardInterrupt

    with Counting(max_workers=2) as pool:
        reps = mc.run(scenario, 10**12, seed=1, pool=pool, progress=progress, budget=UNLIMITED)
    assert (reps.requested, reps.stopped, reps.complete) == (10**12, "interrupted", False)
    assert Counting.most_ahead <= executors.IN_FLIGHT_PER_WORKER * 2
    assert Counting.submitted < 50 + executors.IN_FLIGHT_PER_WORKER * 2 + 1
    kept = reps.table["replication"].tolist()
    assert kept == sorted(kept) and len(kept) >= 50 * mc.CHUNK
    assert reps.stop_message() == f"interrupted: {len(kept)} of {10**12} replications completed"


@pytest.mark.parametrize(
    ("given", "address"),
    [("host:8786", "tcp://host:8786"), ("tcp://10.0.0.5:8786", "tcp://10.0.0.5:8786"), ("tls://h:1", "tls://h:1")],
)
def test_scheduler_addresses_in_the_usual_forms_are_accepted(given: str, address: str) -> None:
    assert executors.check_scheduler_address(given) == address


def test_more_tasks_than_the_window_give_the_same_rows_on_two_processes_as_in_process() -> None:
    """With more tasks than are kept in flight (ten tasks, six in flight on two workers), the rows
    are those of the in-process run, bit for bit: replication i is child i of the seed."""
    scenario = load_scenario(BASELINE, ("horizon_days=60", *SMALL[1:]))
    with executors.executor(2) as pool:
        parallel = mc.run(scenario, 10 * mc.CHUNK - 1, seed=11, pool=pool)
    serial = mc.run(scenario, 10 * mc.CHUNK - 1, seed=11)
    pd.testing.assert_frame_equal(parallel.table, serial.table, check_exact=True)
    pd.testing.assert_frame_equal(parallel.monthly, serial.monthly, check_exact=True)
    assert parallel.complete and parallel.interruption is None


def test_an_idle_worker_sent_sigterm_ends_quietly_inside_a_guarded_run(capfd: pytest.CaptureFixture[str]) -> None:
    """A broken pool ends its surviving workers with SIGTERM. A forked worker inherits the
    parent's ``stop_on_signals`` handler; it must not raise ``Interrupted`` (and print a
    traceback into the user's terminal) but end as SIGTERM ends a process."""
    with executors.stop_on_signals():
        pool = executors.LocalPool(1)
        try:
            pid = pool.submit(os.getpid).result()
            process = pool._workers[pid]
            os.kill(pid, signal.SIGTERM)
            process.join(timeout=10)
            assert process.exitcode == -signal.SIGTERM
        finally:
            pool.stop_now()
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    "interruption", [executors.Interruption("SIGTERM"), executors.Interruption("worker died", "w")]
)
def test_an_interrupt_inside_a_simpy_process_reaches_the_caller_as_itself(
    monkeypatch: pytest.MonkeyPatch, interruption: executors.Interruption
) -> None:
    """A signal lands wherever the main thread is, often inside a SimPy process. SimPy re-raises
    a failed process's exception as ``type(exc)(*exc.args)``; that copy must be the same
    interruption (it once became ``AttributeError: 'str' object has no attribute 'cause'``,
    a "run failed" instead of an interrupted run that keeps what finished)."""
    from funnelsim.engine import fast, world

    def interrupted(*args: object, **kwargs: object) -> None:
        raise executors.Interrupted(interruption)

    monkeypatch.setattr(world.World, "new_lead", interrupted)  # called from the prospecting process
    scenario = load_scenario(BASELINE, ("horizon_days=60", *SMALL[1:-1], 'start="cold"'))
    with pytest.raises(executors.Interrupted) as caught:
        fast.simulate(scenario, seed=3)
    assert caught.value.interruption == interruption
    assert executors.interruption_of(caught.value).exit_code == interruption.exit_code


@pytest.mark.parametrize("as_json", [False, True])
def test_a_run_stopped_before_its_first_replication_says_so_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, as_json: bool
) -> None:
    """A signal during the warm start's last moments or the first replication leaves nothing
    finished: the stop line, exit 143, no table or JSON, no folder, no traceback (an empty
    table once raised ``KeyError: 'metric'``)."""
    from typer.testing import CliRunner

    from funnelsim import cli

    class StoppedAtOnce(executors.SerialExecutor):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise executors.Interrupted(executors.Interruption("SIGTERM"))

    @contextlib.contextmanager
    def stopped_pool(*args: object, **kwargs: object) -> Iterator[executors.SerialExecutor]:
        yield StoppedAtOnce()

    monkeypatch.setattr(cli, "executor", stopped_pool)
    out = tmp_path / "out"
    overrides = [f"--set={o}" for o in ("horizon_days=60", *SMALL[1:])]
    args = ["run", str(BASELINE), *overrides, "--runs", "20", "--out", str(out), *(["--json"] if as_json else [])]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 143, (result.exception, result.stderr)
    assert result.stdout == ""
    assert "interrupted: 0 of 20 replications completed (SIGTERM)" in result.stderr
    assert not out.exists()
