"""The output folder as a sealed envelope: it appears complete or not at all.

This module owns the mechanics every command's folder shares (what goes *into* each
folder is :mod:`funnelsim.report.tables`): refusing a bad destination, staging and
renaming into place, clearing leftovers, the manifest, CSV writing and figure saving.

:func:`write_atomically` has a ``fill`` function write into a hidden temporary folder next
to the destination (same filesystem, so the final move is a rename) and only then moves it
into place; a run that fails midway leaves nothing half-written, and an existing folder
is never touched unless ``force=True``, in which case it is swapped out only once the new
one is complete.

The temporary folder, ``.<name>.partial-XXXXXXXX``, holds a file ``.owner`` naming the
process that writes it (pid, host, start time). A process killed outright (SIGKILL,
power cut) cannot remove its own; the next write beside it removes every leftover
whose owner is gone and leaves the others alone. None is ever taken for a result.

Before any simulation, :func:`check_target` refuses a destination that could not be
written: one that exists (without ``force``), whose parent is not a writable folder
(a probe file is created and removed there), or whose disk has less free space than
:func:`estimate_output_bytes` expects the folder to take.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import socket
import tempfile
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from funnelsim.model.scenario import Scenario


__all__ = [
    "FIGURE_FORMATS",
    "OutputError",
    "OutputExistsError",
    "OutputWriteError",
    "check_target",
    "estimate_output_bytes",
    "manifest_document",
    "remove_leftovers",
    "save_figures",
    "write_atomically",
    "write_csv",
    "write_manifest",
    "write_report_and_manifest",
]

FIGURE_FORMATS = ("png", "svg")
LIBRARIES = ("numpy", "pandas", "scipy", "simpy", "pydantic", "matplotlib")


class OutputError(Exception):
    """funnelsim could not write an output folder for a reason the user can fix."""


class OutputWriteError(OutputError, OSError):
    """Writing the folder failed after the work was done (disk full, I/O error); nothing was left behind."""


class OutputExistsError(OutputError, FileExistsError):
    """The output folder already exists and ``force`` was not given."""

    def __init__(self, path: Path, reason: str = "already exists") -> None:
        self.path = path
        super().__init__(f"output folder {str(path)!r} {reason}; choose another --out or pass --force to replace it")


def write_atomically(
    out_dir: str | os.PathLike[str], force: bool, figure_format: str, fill: Callable[[Path], None]
) -> Path:
    """Have ``fill`` write into a staging folder beside ``out_dir``, then rename it into place (see the module)."""
    out_dir = Path(out_dir)
    target = check_target(out_dir, force, figure_format)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(target)
        # Staging folder beside the target: same filesystem, so moving into place is an atomic rename.
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=STAGING_PREFIX.format(name=target.name)))
    except OSError as exc:
        raise OutputWriteError(f"cannot write {str(target)!r}: {_reason(exc)}") from None
    try:
        (staging / OWNER_FILE).write_text(_owner_stamp(), encoding="utf-8")
        # mkdtemp makes a private (0700) folder; a plain mkdir inside it gets the user's usual permissions.
        new = staging / target.name
        new.mkdir()
        fill(new)
        _move_into_place(new, target, staging / "previous", force)
    except OutputError:
        raise
    except OSError as exc:  # disk full, quota, I/O error: one line, and the staging folder goes
        raise OutputWriteError(f"could not write {str(target)!r}: {_reason(exc)}; nothing was written") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


# The staging folder's name (mkdtemp appends 8 random characters) and its owner stamp.
STAGING_PREFIX = ".{name}.partial-"


OWNER_FILE = ".owner"


# Free space asked for even when the caller gives no estimate: figures and small tables.
MIN_FREE_BYTES = 4 << 20


# Output size per simulated lead of one run (measured: about 130 bytes with the event log
# as Parquet, mostly leads.csv; gzipped CSV events take more) and per replication of a
# Monte Carlo run (measured: a row of replications.csv, 520 bytes, and one of monthly.csv
# per month, 60 bytes; the margin leaves room for more columns and longer numbers).
BYTES_PER_LEAD = 300


BYTES_PER_REPLICATION = 2_000


BYTES_PER_REPLICATION_MONTH = 150


def estimate_output_bytes(scenario: Scenario, runs: int = 1) -> int:
    """A generous estimate of the size of the folder :func:`write_run` (``runs=1``) or
    :func:`write_replications` writes, for the free-space check.

    One run: :data:`BYTES_PER_LEAD` per expected lead (``analytic.expected_leads``) plus
    :data:`MIN_FREE_BYTES` for figures and the small tables. ``runs`` replications:
    :data:`BYTES_PER_REPLICATION` each plus :data:`BYTES_PER_REPLICATION_MONTH` per
    month of the horizon, plus :data:`MIN_FREE_BYTES`. The constants are two to four times
    what the baseline scenario writes (measured: 130 bytes per lead, 520 per row of
    replications.csv, 60 per row of monthly.csv), so the check errs on the side of refusing.
    """
    from funnelsim.model.analytic import expected_leads

    if runs <= 1:
        return MIN_FREE_BYTES + int(BYTES_PER_LEAD * expected_leads(scenario))
    months = int(scenario.horizon_days // 28) + 2
    return MIN_FREE_BYTES + runs * (BYTES_PER_REPLICATION + BYTES_PER_REPLICATION_MONTH * months)


def _process_start(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, Linux), to tell it from a later one with its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22, counted after the command name


def _owner_stamp() -> str:
    pid = os.getpid()
    return json.dumps({"pid": pid, "host": socket.gethostname(), "started": _process_start(pid)}) + "\n"


def _owner_gone(staging: Path) -> bool:
    """Whether the process that made ``staging`` has ended (False when unsure: another host, no stamp)."""
    try:
        owner = json.loads((staging / OWNER_FILE).read_text(encoding="utf-8"))
        pid, host, started = int(owner["pid"]), str(owner["host"]), str(owner["started"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process holds the pid: leave it be
        return False
    # The pid is taken: by the owner, unless the process holding it started at another time.
    return bool(started) and _process_start(pid) not in ("", started)


def remove_leftovers(target: str | os.PathLike[str]) -> list[Path]:
    """Remove the staging folders beside ``target`` whose writer has died; return them.

    A writer killed outright leaves its ``.<name>.partial-*`` folder behind. One whose
    owner is alive, on another host, or unknown is left alone (and is never a result).
    """
    target = Path(target)
    removed: list[Path] = []
    try:
        candidates = list(target.parent.glob(f"{STAGING_PREFIX.format(name=target.name)}*"))
    except OSError:
        return removed
    for staging in candidates:
        if staging.is_dir() and not staging.is_symlink() and _owner_gone(staging):
            shutil.rmtree(staging, ignore_errors=True)
            removed.append(staging)
    return removed


def check_target(
    out_dir: str | os.PathLike[str], force: bool, figure_format: str = "png", *, expected_bytes: int | None = None
) -> Path:
    """Refuse, before any work, an output folder :func:`write_run` would not write; return its absolute path.

    Raises :class:`OutputExistsError` if ``out_dir`` exists (and ``force`` is false, or
    it is not a folder, or it holds the current directory) and :class:`OutputError` if
    its parent (or the nearest existing ancestor) is not a folder this process can write
    in (checked with a probe file, created and removed), or if its disk has less free
    space than ``expected_bytes`` (at least :data:`MIN_FREE_BYTES`; see
    :func:`estimate_output_bytes`).
    """
    if figure_format not in FIGURE_FORMATS:
        raise OutputError(f"figure format must be one of {', '.join(FIGURE_FORMATS)}, got {figure_format!r}")
    target = Path(os.path.abspath(out_dir))
    if target.exists() or target.is_symlink():
        if not target.is_dir():
            raise OutputExistsError(target, "exists and is not a folder")
        if not force:
            raise OutputExistsError(target)
        cwd = Path.cwd().resolve()
        resolved = target.resolve()
        if cwd == resolved or resolved in cwd.parents:
            raise OutputExistsError(target, "contains the current directory; refusing to replace it even with --force")
    _check_writable(target, max(expected_bytes or 0, MIN_FREE_BYTES))
    return target


def _check_writable(target: Path, needed: int) -> None:
    """Refuse unless the folder to hold ``target`` (parent or nearest existing ancestor) takes files and has room."""
    where = target.parent
    while not (where.exists() or where.is_symlink()) and where != where.parent:
        where = where.parent
    if not where.is_dir():
        raise OutputError(f"cannot write {str(target)!r}: {str(where)!r} is not a folder")
    try:
        handle, probe = tempfile.mkstemp(dir=where, prefix=".funnelsim-probe-")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"cannot write {str(target)!r}: {str(where)!r} is not writable ({_reason(exc)})") from None
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        return  # a filesystem that does not say: the write itself will tell
    if free < needed:
        raise OutputError(
            f"not enough free space for {str(target)!r}: {_size(free)} free on its disk, "
            f"about {_size(needed)} needed; free some space or choose another --out"
        )


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _move_into_place(new: Path, target: Path, aside: Path, force: bool) -> None:
    if not (target.exists() or target.is_symlink()):
        os.rename(new, target)
        return
    if not force:  # appeared while we were writing
        raise OutputExistsError(target)
    os.rename(target, aside)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(aside, target)
        raise


def write_csv(frame: pd.DataFrame, path: Path, **options: Any) -> None:
    """Every CSV funnelsim writes: full-precision floats, no index, spreadsheet formulas neutralised."""
    from funnelsim.report.spreadsheet import neutralise_formulas

    # pandas writes floats as their shortest round-trip repr, so values read back bit for bit.
    neutralise_formulas(frame).to_csv(path, index=False, lineterminator="\n", **options)


def save_figures(charts: dict[str, Figure], folder: Path, figure_format: str, label: str) -> None:
    """Save ``charts`` by name into ``folder`` (created), each labelled; SVG output is byte-reproducible."""
    import matplotlib

    folder.mkdir()
    # SVG embeds the date and random element ids by default; leave out the one and salt the
    # other with a constant, so the same run draws a byte-identical file.
    metadata = {"Date": None} if figure_format == "svg" else None
    with matplotlib.rc_context({"svg.hashsalt": "funnelsim"}):
        for name, fig in charts.items():
            fig.suptitle(label, x=0.99, ha="right", fontsize="small", color="0.4")
            fig.savefig(folder / f"{name}.{figure_format}", format=figure_format, dpi=150, metadata=metadata)


def write_manifest(
    sc: Scenario, folder: Path, figure_format: str, run: dict[str, Any], extra_libraries: tuple[str, ...] = ()
) -> None:
    """Write ``manifest.json`` into ``folder``: what produced it, the scenario and ``run`` (see docs/outputs.md).

    Call it last: it lists every file already in the folder.
    """
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    manifest = manifest_document(sc, figure_format, run, extra_libraries)
    manifest["files"] = sorted([*files, "manifest.json"])
    manifest["scenario"] = sc.to_dict()  # last, as it always was: the long part at the end of the file
    text = json.dumps(manifest, indent=2, ensure_ascii=False, allow_nan=False)
    (folder / "manifest.json").write_text(text + "\n", encoding="utf-8")


def write_report_and_manifest(
    sc: Scenario,
    folder: Path,
    figure_format: str,
    run: dict[str, Any],
    kind: str,
    page: Callable[[dict[str, Any]], dict[str, Any]],
    extra_libraries: tuple[str, ...] = (),
) -> None:
    """The folder's last two files: ``report.html`` (``page`` turns the manifest document into the page's
    context, :func:`funnelsim.report.html.write_report`), then ``manifest.json``, which lists it."""
    from funnelsim.report.html import write_report

    write_report(folder, kind, page(manifest_document(sc, figure_format, run, extra_libraries)))
    write_manifest(sc, folder, figure_format, run, extra_libraries)


def manifest_document(
    sc: Scenario, figure_format: str, run: dict[str, Any], extra_libraries: tuple[str, ...] = ()
) -> dict[str, Any]:
    """What ``manifest.json`` says about the folder before its list of files and the scenario: the version,
    creation time, scenario name and SHA-256, ``run``, the start, dates, units and libraries (report.html shows
    it, written before the manifest so that the manifest lists it)."""
    from funnelsim.engine.warmup import start_of

    libraries = {"python": platform.python_version()}
    libraries.update({name: _version(name) for name in (*LIBRARIES, *extra_libraries)})
    return {
        "funnelsim_version": _version("funnelsim"),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "scenario_name": sc.name,
        "scenario_sha256": sc.sha256(),
        **run,
        "start": start_of(sc),
        "start_date": sc.start_date.isoformat(),
        "horizon_days": float(sc.horizon_days),
        "currency": sc.currency,
        "units": {"time": "days since start_date", "money": sc.currency},
        "libraries": libraries,
        "figure_format": figure_format,
    }


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"
