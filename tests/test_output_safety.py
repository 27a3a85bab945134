"""``--out`` and ``--scheduler`` are checked before any work, and a failed write leaves nothing behind.

Each test states the exit code, the one-line message, and that output written before
(another folder, or the existing ``--out``) is unchanged.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from funnelsim import cli, engine, load_scenario
from funnelsim.report import folder as output_module
from funnelsim.report import tables as tables_module
from funnelsim.studies import executors
from funnelsim.studies import replications as mc
from scaled import TENTH_VOLUME

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.toml"
# A tenth of the baseline over two months: a run takes a fraction of a second.
TINY = ("horizon_days=60", *TENTH_VOLUME, "handoff.sdr.count=1", "sales.ae.count=2", "sales.ae.hires=[]")


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.app, ["run", str(BASELINE), *(f"--set={o}" for o in TINY), "-q", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stderr


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def earlier(tmp_path: Path) -> Iterator[Path]:
    """A results folder written before the test, which must come out of it unchanged."""
    folder = tmp_path / "earlier"
    folder.mkdir()
    (folder / "summary.csv").write_text("scenario,revenue\nbaseline,1\n")
    before = _snapshot(folder)
    yield folder
    assert _snapshot(folder) == before


@pytest.fixture
def no_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything is simulated: the checks must come first."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("simulated before checking --out")

    monkeypatch.setattr(engine, "simulate", refuse)  # the CLI imports it from there when it runs
    monkeypatch.setattr(mc, "replicate_one", refuse)


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_an_existing_out_is_refused_before_simulating(earlier: Path, no_simulation: None) -> None:
    """No clobbering: an existing --out without --force is bad input (exit 2) and stays as it was."""
    code, stderr = _cli("--out", str(earlier))
    assert code == 2
    assert "already exists" in _one_line(stderr) and "--force" in stderr


@pytest.mark.parametrize(
    ("out", "reason"),
    [("/dev/full/x", "'/dev/full' is not a folder"), ("/proc/funnelsim-test/x", "'/proc' is not writable")],
    ids=["dev-full", "proc"],
)
def test_an_out_that_cannot_be_written_is_refused_before_simulating(
    earlier: Path, no_simulation: None, out: str, reason: str
) -> None:
    """A parent that is no folder (/dev/full) or takes no files (/proc, even for root; found with a
    probe file) is bad input: exit 2, one line, nothing simulated or written."""
    code, stderr = _cli("--out", out)
    assert code == 2
    assert reason in _one_line(stderr)
    assert not Path(out).exists()


def test_an_out_on_a_disk_without_room_is_refused_before_simulating(
    tmp_path: Path, earlier: Path, no_simulation: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The free space is held against an estimate of the output (a billion replications need
    terabytes): exit 2 at once, without building a billion tasks (--allow-large lets the run
    past the work estimate, which would refuse it first)."""
    real = shutil.disk_usage
    monkeypatch.setattr(
        output_module.shutil, "disk_usage", lambda path: real(path)._replace(free=100 * 10**9)
    )  # 100 GB free
    started = time.monotonic()
    code, stderr = _cli("--runs", "1000000000", "--jobs", "2", "--allow-large", "--out", str(tmp_path / "out"))
    assert code == 2
    line = _one_line(stderr)
    assert "not enough free space" in line and "100.0 GB free" in line and "TB needed" in line
    assert time.monotonic() - started < 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier"]


def test_a_disk_that_fills_up_while_writing_is_one_line_and_leaves_nothing(
    tmp_path: Path, earlier: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC during the write (after the checks passed): the run failed (exit 1, since the input was
    fine), one line, no traceback, no output folder and no staging folder left behind."""

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tables_module, "write_report_and_manifest", full)  # the last files written
    out = tmp_path / "out"
    code, stderr = _cli("--runs", "3", "--out", str(out))
    assert code == 1
    assert f"could not write '{out}': No space left on device; nothing was written" in _one_line(stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier"]


def _stamp(staging: Path, pid: int) -> None:
    started = output_module._process_start(pid)
    owner = {"pid": pid, "host": socket.gethostname(), "started": started}
    (staging / output_module.OWNER_FILE).write_text(json.dumps(owner))


def test_leftover_staging_folders_of_dead_writers_are_removed_and_never_taken_for_results(
    tmp_path: Path, earlier: Path
) -> None:
    """A run killed while writing leaves ``.out.partial-*`` behind. The next write into the same --out
    removes those whose owner process is gone, leaves those of a live (or unknown) owner alone,
    and writes its own result from scratch."""
    out = tmp_path / "out"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = tmp_path / ".out.partial-deadbeef"
    live = tmp_path / ".out.partial-stillrun"
    unknown = tmp_path / ".out.partial-nostamp"
    for staging in (dead, live, unknown):
        (staging / "out").mkdir(parents=True)
        (staging / "out" / "replications.csv").write_text("replication\n999\n")
    _stamp(dead, gone.pid)
    _stamp(live, os.getpid())
    code, stderr = _cli("--runs", "3", "--out", str(out))
    assert code == 0, stderr
    assert not dead.exists()
    assert (live / "out" / "replications.csv").exists() and (unknown / "out" / "replications.csv").exists()
    written = (out / "replications.csv").read_text().splitlines()
    assert [line.split(",")[1] for line in written[1:]] == ["0", "1", "2"], written[:1]  # not the stale 999
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["complete"], manifest["completed"], manifest["requested"]) == (True, 3, 3)
    assert manifest["interruption"] is None
    assert ".owner" not in manifest["files"]


def test_a_single_run_folder_says_it_is_complete(tmp_path: Path) -> None:
    code, stderr = _cli("--out", str(tmp_path / "one"))
    assert code == 0, stderr
    assert json.loads((tmp_path / "one" / "manifest.json").read_text())["complete"] is True


@pytest.mark.parametrize("address", ["foo", "tcp://", "tcp://host:99999", "http://host:8786", "tcp://host:8786/x"])
def test_a_malformed_scheduler_address_is_bad_input(address: str, no_simulation: None) -> None:
    code, stderr = _cli("--runs", "3", "--scheduler", address)
    assert code == 2
    line = _one_line(stderr)
    assert "--scheduler" in line and repr(address) in line


class _Greeting(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        reply = self.server.reply  # type: ignore[attr-defined]
        if reply is None:  # a server that waits for the client to speak first
            time.sleep(executors.SCHEDULER_TIMEOUT + 2)
        else:
            self.request.sendall(reply)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "does not speak Dask's protocol"),
        (b"", "closed the connection"),
        (None, f"did not answer as a Dask scheduler within {executors.SCHEDULER_TIMEOUT:g} s"),
    ],
    ids=["http", "closes", "silent"],
)
def test_a_scheduler_address_that_does_not_speak_dask_fails_in_seconds(
    reply: bytes | None, expected: str, no_simulation: None
) -> None:
    """A TCP service that is not Dask (answers HTTP, hangs up, or waits for us to speak) is bad
    input within seconds, instead of a hang or an attempt to allocate exabytes."""
    pytest.importorskip("distributed")
    socketserver.ThreadingTCPServer.daemon_threads = True
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Greeting) as server:
        server.reply = reply  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        address = f"tcp://127.0.0.1:{server.server_address[1]}"
        started = time.monotonic()
        code, stderr = _cli("--runs", "3", "--scheduler", address)
        server.shutdown()
    assert code == 2
    line = _one_line(stderr)
    assert "--scheduler" in line and expected in line
    assert time.monotonic() - started < executors.SCHEDULER_TIMEOUT + 3


def test_jobs_beyond_the_cpus_are_capped_with_a_warning() -> None:
    """--jobs 1000 runs on as many processes as there are CPUs, and says so in one line naming --jobs."""
    cpus = executors.available_cpus()
    code, stderr = _cli("--runs", "4", "--jobs", "1000", "--json")
    assert code == 0
    assert f"warning: --jobs 1000 is more than the {cpus} CPUs available here; using --jobs {cpus}" in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_a_real_dask_scheduler_passes_the_probe_and_gives_the_same_numbers() -> None:
    """The probe reads a real scheduler's greeting and lets it through; replications are the same as in-process."""
    distributed = pytest.importorskip("distributed")
    scenario = load_scenario(BASELINE, TINY)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, protocol="tcp://", dashboard_address=None
    ) as cluster:
        executors.probe_scheduler(cluster.scheduler_address)
        with executors.executor(1, cluster.scheduler_address) as pool:
            on_dask = mc.run(scenario, 6, seed=2, pool=pool)
    pd.testing.assert_frame_equal(on_dask.table, mc.run(scenario, 6, seed=2).table, check_exact=True)
