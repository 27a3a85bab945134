"""Write one run to an output folder: tidy tables, the event log, figures and a manifest.

Think of the folder as a sealed envelope: it appears complete or not at all.
:func:`write_run` fills a hidden temporary folder next to the destination (same
filesystem, so the final move is a rename) and only then moves it into place; a
run that fails midway leaves nothing half-written, and an existing folder is
never touched unless ``force=True``, in which case it is swapped out only once the
new one is complete.

The temporary folder, ``.<name>.partial-XXXXXXXX``, holds a file ``.owner`` naming the
process that writes it (pid, host, start time). A process killed outright (SIGKILL,
power cut) cannot remove its own; the next write beside it removes every leftover
whose owner is gone and leaves the others alone. None is ever taken for a result.

Before any simulation, :func:`check_target` refuses a destination that could not be
written: one that exists (without ``force``), whose parent is not a writable folder
(a probe file is created and removed there), or whose disk has less free space than
:func:`estimate_output_bytes` expects the folder to take.

Files written (times are days since the scenario's ``start_date``, money is in
its ``currency``; every CSV has a header row, no index column, and floats
written to full precision so they read back bit for bit):

``summary.csv``
    One row: ``scenario``, ``seed``, ``replication``, then the headline numbers of
    :func:`funnelsim.run.metrics.summarize_run` (volumes, conversions, revenue, win rate,
    cycle times, costs, CAC, utilisation).
``stages_by_month.csv``
    Per calendar month: leads, MQLs, SQLs, opportunities, wins, revenue and flow
    ratios (:func:`~funnelsim.run.metrics.stages_by_month`).
``time_in_stage.csv``
    Velocity per stage: n, mean, median and P90 days (:func:`~funnelsim.run.metrics.time_in_stage`).
``revenue_by_month.csv``, ``revenue_by_quarter.csv``
    Wins, revenue and average deal size per period, at close date
    (:func:`~funnelsim.run.metrics.revenue_by_period`).
``leakage.csv``
    Where and why leads left the funnel, with share of all leads (:func:`~funnelsim.run.metrics.leakage`).
``capacity_by_month.csv``
    Per month and team (sdr, ae): capacity, busy, time-weighted utilisation, mean and
    max queue, mean wait in days (:func:`~funnelsim.run.metrics.capacity_by_month`).
``pipeline.csv``
    Open opportunities and their value after each change (:func:`~funnelsim.run.metrics.pipeline_over_time`).
``by_source.csv``, ``by_persona.csv``
    Funnel volumes, revenue and lead-to-win rate per source and per persona
    (:func:`~funnelsim.run.metrics.by_segment`).
``leads.csv``
    One row per lead: traits, first time at each milestone, final state, deal
    amount, AE (:attr:`funnelsim.RunResult.leads`).
``levels.csv``
    The level log: ``time, team, queue, busy, capacity`` at each change.
``roster.csv``
    The roster: ``time, team, rep, change, productivity`` at each change.
``events.parquet`` (or ``events.csv.gz`` when pyarrow is not installed)
    The event log ``time, lead, event, rep, value`` (see :mod:`funnelsim.vocabulary`).
``manifest.json``
    What produced the folder: funnelsim version, creation time (UTC), scenario name,
    SHA-256 and the fully resolved scenario, seed, replication, library versions,
    currency and units, start date, horizon, and the list of files.
``figures/funnel.<fmt>``, ``figures/revenue_by_month.<fmt>``, ``figures/capacity.<fmt>``, ``figures/leakage.<fmt>``
    The charts of :mod:`funnelsim.report.plots`, as PNG (default) or SVG.
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

from funnelsim.run import metrics

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from funnelsim.model.scenario import Scenario
    from funnelsim.run.result import RunResult
    from funnelsim.studies.compare import Comparison
    from funnelsim.studies.planner import Plan, PlanDiagnostics
    from funnelsim.studies.replications import Replications
    from funnelsim.studies.sweep import Sensitivity, Sweep

__all__ = [
    "FIGURES",
    "FIGURE_FORMATS",
    "OutputError",
    "OutputExistsError",
    "OutputWriteError",
    "check_target",
    "estimate_output_bytes",
    "planned_toml",
    "save_figures",
    "write_atomically",
    "write_comparison",
    "write_csv",
    "write_plan",
    "write_replications",
    "write_run",
    "write_sensitivity",
    "write_sweep",
]

FIGURE_FORMATS = ("png", "svg")
FIGURES = ("funnel", "revenue_by_month", "capacity", "leakage")
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


def write_run(
    result: RunResult, out_dir: str | os.PathLike[str], *, figure_format: str = "png", force: bool = False
) -> Path:
    """Write the tables, event log, figures and manifest of one run to ``out_dir``.

    Parameters
    ----------
    result
        The run, from :func:`funnelsim.simulate`.
    out_dir
        Folder to create. Its parent is created if missing.
    figure_format
        ``"png"`` or ``"svg"``.
    force
        Replace ``out_dir`` if it exists. The old folder is removed only after the
        new one is complete and in place.

    Returns
    -------
    pathlib.Path
        ``out_dir``.

    Raises
    ------
    OutputExistsError
        ``out_dir`` exists and ``force`` is false (checked before any work), or it
        is not a folder, or it contains the current working directory.
    OutputError
        Unknown ``figure_format``.
    """
    return write_atomically(
        out_dir, force, figure_format, lambda folder: _write_contents(result, folder, figure_format)
    )


def write_replications(
    reps: Replications, out_dir: str | os.PathLike[str], *, figure_format: str = "png", force: bool = False
) -> Path:
    """Write a Monte Carlo run to ``out_dir``, as :func:`write_run` does for one run.

    Files: ``replications.csv`` (one row per replication), ``monthly.csv`` (one row per
    replication and month), ``summary.csv`` (one row per metric), ``manifest.json``, and
    figures ``fan_chart``, ``revenue_distribution`` and ``funnel_range``.
    """
    return write_atomically(
        out_dir, force, figure_format, lambda folder: _write_replication_contents(reps, folder, figure_format)
    )


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
    # ``aside`` lives in the staging folder, which the caller deletes.


def _write_contents(result: RunResult, folder: Path, figure_format: str) -> None:
    tables = _tables(result)
    for name, frame in tables.items():
        write_csv(frame, folder / name)
    events_file = _write_events(result.events, folder)
    _write_figures(result, tables, folder / "figures", figure_format)
    _write_manifest(result, folder, figure_format, events_file)


def _tables(result: RunResult) -> dict[str, pd.DataFrame]:
    """Every CSV table of the folder, by file name."""
    sc = result.scenario
    ev = result.events
    start = sc.start_date
    horizon = float(sc.horizon_days)
    summary = {"scenario": sc.name, "seed": result.seed, "replication": result.replication}
    summary.update(metrics.summarize_run(result))
    return {
        "summary.csv": pd.DataFrame([summary]),
        "stages_by_month.csv": metrics.stages_by_month(ev, start, horizon),
        "time_in_stage.csv": metrics.time_in_stage(ev),
        "revenue_by_month.csv": metrics.revenue_by_period(ev, start, "month", horizon),
        "revenue_by_quarter.csv": metrics.revenue_by_period(ev, start, "quarter", horizon),
        "leakage.csv": metrics.leakage(ev),
        "capacity_by_month.csv": metrics.capacity_by_month(result.levels, ev, start, horizon),
        "pipeline.csv": metrics.pipeline_over_time(ev),
        "by_source.csv": metrics.by_segment(result.leads, by="source"),
        "by_persona.csv": metrics.by_segment(result.leads, by="persona"),
        "leads.csv": result.leads,
        "levels.csv": result.levels,
        "roster.csv": result.roster,
    }


def write_csv(frame: pd.DataFrame, path: Path, **options: Any) -> None:
    """Every CSV funnelsim writes: full-precision floats, no index, spreadsheet formulas neutralised."""
    from funnelsim.report.spreadsheet import neutralise_formulas

    # pandas writes floats as their shortest round-trip repr, so values read back bit for bit.
    neutralise_formulas(frame).to_csv(path, index=False, lineterminator="\n", **options)


def _parquet_available() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def _write_events(events: pd.DataFrame, folder: Path) -> str:
    """The event log as Parquet if pyarrow is installed, else gzipped CSV; returns the file name."""
    if _parquet_available():
        events.to_parquet(folder / "events.parquet", index=False)
        return "events.parquet"
    # mtime 0: the same run gives the same bytes.
    write_csv(events, folder / "events.csv.gz", compression={"method": "gzip", "mtime": 0})
    return "events.csv.gz"


def _write_figures(result: RunResult, tables: dict[str, pd.DataFrame], folder: Path, figure_format: str) -> None:
    from funnelsim.report import plots

    ev = result.events
    sc = result.scenario
    charts: dict[str, Figure] = {
        "funnel": plots.funnel_chart(metrics.stage_volumes(ev), conversions=metrics.conversions(ev))[0],
        "revenue_by_month": plots.revenue_chart(tables["revenue_by_month.csv"], sc.currency)[0],
        "capacity": plots.capacity_chart(tables["capacity_by_month.csv"])[0],
        "leakage": plots.leakage_chart(tables["leakage.csv"])[0],
    }
    save_figures(charts, folder, figure_format, f"{sc.name}, seed {result.seed}")


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


def _write_manifest(result: RunResult, folder: Path, figure_format: str, events_file: str) -> None:
    run = {
        "complete": True,
        "seed": result.seed,
        "replication": result.replication,
        "drawn_parameters": result.metadata.get("parameters", {}),
        "events_file": events_file,
    }
    extra = ("pyarrow",) if events_file.endswith(".parquet") else ()
    _manifest(result.scenario, folder, figure_format, run, extra)


def _manifest(
    sc: Scenario, folder: Path, figure_format: str, run: dict[str, Any], extra_libraries: tuple[str, ...] = ()
) -> None:
    libraries = {"python": platform.python_version()}
    libraries.update({name: _version(name) for name in (*LIBRARIES, *extra_libraries)})
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    manifest = {
        "funnelsim_version": _version("funnelsim"),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "scenario_name": sc.name,
        "scenario_sha256": sc.sha256(),
        **run,
        "start_date": sc.start_date.isoformat(),
        "horizon_days": float(sc.horizon_days),
        "currency": sc.currency,
        "units": {"time": "days since start_date", "money": sc.currency},
        "libraries": libraries,
        "figure_format": figure_format,
        "files": sorted([*files, "manifest.json"]),
        "scenario": sc.to_dict(),
    }
    text = json.dumps(manifest, indent=2, ensure_ascii=False, allow_nan=False)
    (folder / "manifest.json").write_text(text + "\n", encoding="utf-8")


def _write_replication_contents(reps: Replications, folder: Path, figure_format: str) -> None:
    from funnelsim.report import plots

    write_csv(reps.table, folder / "replications.csv")
    write_csv(reps.monthly, folder / "monthly.csv")
    write_csv(reps.summary(), folder / "summary.csv")
    sc = reps.scenario
    p_goal = reps.p_goal()
    charts: dict[str, Figure] = {}
    if reps.completed:
        charts = {
            "fan_chart": plots.fan_chart(reps.monthly, sc.currency, goal=reps.goal)[0],
            "revenue_distribution": plots.revenue_distribution(
                reps.table, sc.currency, goal=reps.goal, p_goal=None if p_goal is None else p_goal["estimate"]
            )[0],
            "funnel_range": plots.funnel_range_chart(reps.table)[0],
        }
    save_figures(charts, folder / "figures", figure_format, f"{sc.name}, seed {reps.seed}, {reps.completed} runs")
    doc = reps.to_json()
    run: dict[str, Any] = {key: doc[key] for key in ("complete", "seed", "requested", "completed", "stopped")}
    run["interruption"] = doc.get("interruption")
    run |= {"goal": reps.goal, "precision": reps.precision, "confidence": reps.confidence}
    _manifest(sc, folder, figure_format, run)


def write_plan(
    plan: Plan,
    diagnostics: PlanDiagnostics,
    out_dir: str | os.PathLike[str],
    *,
    source_text: str | None = None,
    overrides: tuple[str, ...] = (),
    figure_format: str = "png",
    force: bool = False,
) -> Path:
    """Write a plan to ``out_dir`` (atomically, as :func:`write_run`).

    Files: ``plan.json`` (the ``--json`` document), ``targets.csv`` (the joint-target
    sheet), ``headcount.csv``, ``stages.csv`` (period totals, analytic vs. simulated),
    ``candidates.csv`` (every candidate simulated), ``tradeoff.csv`` (lever "both"),
    ``replications.csv`` and ``monthly.csv`` (the plan's replications),
    ``planned.toml``, ``manifest.json`` and figures ``waterfall``, ``quotas``,
    ``fan_chart`` (and ``tradeoff``). See docs/outputs.md.
    """

    def fill(folder: Path) -> None:
        from funnelsim.report import plots

        reps = diagnostics.replications
        stages = diagnostics.stages()
        doc = plan.to_json()
        (folder / "plan.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        tables = {
            "targets.csv": plan.sheet,
            "headcount.csv": plan.headcount,
            "stages.csv": stages,
            "candidates.csv": diagnostics.candidates,
            "replications.csv": reps.table,
            "monthly.csv": reps.monthly,
        }
        if diagnostics.tradeoff is not None:
            tables["tradeoff.csv"] = diagnostics.tradeoff
        for name, frame in tables.items():
            write_csv(frame, folder / name)
        (folder / "planned.toml").write_text(planned_toml(plan, source_text, overrides), encoding="utf-8")
        inside = reps.monthly[reps.monthly["month"].isin(plan.period.months)].copy()
        inside["cumulative_revenue"] = inside.groupby("replication")["revenue"].cumsum()
        cur = plan.scenario.currency
        charts: dict[str, Figure] = {
            "waterfall": plots.plan_waterfall_chart(stages)[0],
            "quotas": plots.quota_chart(plan.sheet)[0],
            "fan_chart": plots.fan_chart(inside, cur, goal=plan.goal)[0],
        }
        if diagnostics.tradeoff is not None:
            charts["tradeoff"] = plots.tradeoff_chart(diagnostics.tradeoff, cur)[0]
        label = f"{plan.scenario.name}, seed {diagnostics.seed}, {diagnostics.runs} runs per candidate"
        save_figures(charts, folder / "figures", figure_format, label)
        run = {"seed": diagnostics.seed, "runs": diagnostics.runs, "goal": plan.goal, "confidence": plan.confidence}
        _manifest(plan.scenario, folder, figure_format, run)

    return write_atomically(out_dir, force, figure_format, fill)


def write_comparison(
    comparison: Comparison, out_dir: str | os.PathLike[str], *, figure_format: str = "png", force: bool = False
) -> Path:
    """Write a comparison to ``out_dir`` (atomically): ``comparison.csv`` (per metric and
    scenario, with the paired difference against the first), ``leakage.csv`` (leads lost
    per reason and scenario), ``replications.csv`` (every scenario's replications,
    stacked), ``manifest.json`` (the first scenario's, with every scenario's name and
    SHA-256) and figures ``revenue``, ``funnel`` and ``leakage``. With an attribution:
    ``attribution.csv`` (one row per lever, then ``total``), ``coalitions.csv`` (every
    combination of levers simulated) and the figure ``levers``."""

    def fill(folder: Path) -> None:
        from funnelsim.report import plots

        table = comparison.table()
        stacked = comparison.replications()
        leakage = comparison.leakage()
        write_csv(table, folder / "comparison.csv")
        write_csv(leakage, folder / "leakage.csv")
        write_csv(stacked, folder / "replications.csv")
        first = comparison.runs[comparison.labels[0]].scenario
        charts: dict[str, Figure] = {
            "revenue": plots.compare_revenue_chart(stacked, first.currency)[0],
            "funnel": plots.compare_funnel_chart(table)[0],
            "leakage": plots.compare_leakage_chart(leakage)[0],
        }
        attribution = comparison.attribution
        if attribution is not None:
            levers = attribution.table()
            write_csv(levers, folder / "attribution.csv")
            write_csv(attribution.coalitions(), folder / "coalitions.csv")
            charts["levers"] = plots.lever_waterfall_chart(levers, attribution.start(), attribution.labels)[0]
        label = f"{' vs '.join(comparison.labels)}, seed {comparison.seed}"
        save_figures(charts, folder / "figures", figure_format, label)
        run = {
            "seed": comparison.seed,
            "runs": comparison.runs[comparison.labels[0]].completed,
            "scenarios": {k: reps.scenario.sha256() for k, reps in comparison.runs.items()},
        }
        _manifest(first, folder, figure_format, run)

    return write_atomically(out_dir, force, figure_format, fill)


def write_sweep(
    sweep: Sweep,
    out_dir: str | os.PathLike[str],
    *,
    metric: str = "revenue",
    figure_format: str = "png",
    force: bool = False,
) -> Path:
    """Write a sweep to ``out_dir`` (atomically): ``sweep.csv`` (one row per grid point),
    ``differences.csv`` (every point against the optimum of ``metric``, paired),
    ``replications.csv`` (every point's replications, stacked), ``manifest.json`` (the base
    scenario, the grid and the optimum) and the figure ``sweep`` (one parameter) or
    ``heatmap`` (two)."""
    from funnelsim.studies.sweep import SWEEP_METRICS

    def fill(folder: Path) -> None:
        from funnelsim.report import plots

        metrics = list(dict.fromkeys([*SWEEP_METRICS, metric]))
        table = sweep.table(metrics)
        best = sweep.optimum(metric)
        write_csv(table, folder / "sweep.csv")
        write_csv(sweep.differences(metric, against=best.point), folder / "differences.csv")
        write_csv(sweep.replications(), folder / "replications.csv")
        sc = sweep.scenario
        unit = sc.currency if metric in ("revenue", "cac") or "cost" in metric else ""
        if len(sweep.parameters) == 1:
            path = sweep.parameters[0]
            chart = plots.sweep_chart(table, path, metric, unit, best=best.values[path])[0]
            charts: dict[str, Figure] = {"sweep": chart}
        else:
            charts = {"heatmap": plots.sweep_heatmap(table, sweep.parameters, metric, unit)[0]}
        save_figures(charts, folder / "figures", figure_format, f"{sc.name}, seed {sweep.seed}, {sweep.n_runs} runs")
        run = {
            "seed": sweep.seed,
            "runs": sweep.n_runs,
            "parameters": sweep.axes,
            "metric": metric,
            "optimum": best.to_json(),
        }
        _manifest(sc, folder, figure_format, run)

    return write_atomically(out_dir, force, figure_format, fill)


def write_sensitivity(
    sensitivity: Sensitivity, out_dir: str | os.PathLike[str], *, figure_format: str = "png", force: bool = False
) -> Path:
    """Write a sensitivity analysis to ``out_dir`` (atomically): ``sensitivity.csv`` (one row
    per parameter, by swing), ``skipped.csv`` (what was not varied and why),
    ``replications.csv`` (base, low and high runs, stacked), ``manifest.json`` and the
    figure ``tornado``."""

    def fill(folder: Path) -> None:
        from funnelsim.report import plots

        table = sensitivity.table()
        write_csv(table, folder / "sensitivity.csv")
        write_csv(sensitivity.skipped, folder / "skipped.csv")
        write_csv(sensitivity.replications(), folder / "replications.csv")
        sc = sensitivity.scenario
        metric = sensitivity.metric
        unit = sc.currency if metric in ("revenue", "cac") or "cost" in metric else ""
        charts: dict[str, Figure] = {"tornado": plots.tornado_chart(table, unit)[0]}
        label = f"{sc.name}, seed {sensitivity.seed}, {sensitivity.base.completed} runs, ±{sensitivity.by:.0%}"
        save_figures(charts, folder / "figures", figure_format, label)
        run = {"seed": sensitivity.seed, "runs": sensitivity.base.completed, "by": sensitivity.by, "metric": metric}
        _manifest(sc, folder, figure_format, run)

    return write_atomically(out_dir, force, figure_format, fill)


def planned_toml(plan: Plan, source_text: str | None = None, overrides: tuple[str, ...] = ()) -> str:
    """The planned scenario as a commented TOML file that ``funnelsim run`` accepts.

    With the original file's text, its comments and layout are kept: the ``--set``
    overrides and the plan's changes are applied to it and each changed key says what
    it was. Without it, the resolved scenario is written out in full.
    """
    import tomlkit

    from funnelsim.model.scenario import apply_overrides

    header = [
        f"Planned by funnelsim plan: {plan.goal:,.0f} {plan.scenario.currency} closed in {plan.period}",
        f"with {plan.confidence:.0%} confidence (simulated: {plan.p_goal['estimate']:.0%} of "
        f"{plan.p_goal['n']} runs, 95% CI {plan.p_goal['ci_low']:.0%}-{plan.p_goal['ci_high']:.0%}).",
        f"The first {plan.lead_in_months} months build the pipeline (lead-in); revenue in the period is",
        f"what closes from {plan.period.start} on: sum monthly.csv of `funnelsim run --runs N` over those months.",
        "Keys changed by the plan say what they were.",
    ]
    if source_text is None:
        data = _drop_none(plan.scenario.to_dict())
        fresh = tomlkit.document()
        for line in header:
            fresh.add(tomlkit.comment(line))
        for key, value in data.items():
            fresh[key] = value
        return tomlkit.dumps(fresh)
    doc = apply_overrides(tomlkit.parse(source_text), list(overrides))
    _inline_pipeline(doc, plan.scenario)
    before = tomlkit.parse(tomlkit.dumps(doc)).unwrap()
    for path, value in plan.changes.items():
        *parents, key = path.split(".")
        node: Any = doc
        old: Any = before
        for part in parents:
            node = node.setdefault(part, tomlkit.table())
            old = old.get(part, {}) if isinstance(old, dict) else {}
        was = old.get(key) if isinstance(old, dict) else None
        if path == "start_date":
            value = dt.date.fromisoformat(value)
        elif path == "sales.ae.hires":
            value = _inline_array([{**h, "date": dt.date.fromisoformat(h["date"])} for h in value])
        node[key] = value
        if was is not None and not isinstance(node[key], tomlkit.items.Array):
            node[key].comment(f"planned (was {was})")
    top = tomlkit.document()
    for line in header:
        top.add(tomlkit.comment(line))
    top.add(tomlkit.nl())
    return tomlkit.dumps(top) + tomlkit.dumps(doc)


def _inline_pipeline(doc: Any, scenario: Scenario) -> None:
    """Write the initial pipeline's rows in place of its ``file``.

    The file's path is relative to the original scenario, not to ``planned.toml``, which
    lives elsewhere; the rows make the planned scenario stand on its own.
    """
    section = doc.get("initial_pipeline")
    if section is None or "file" not in section:
        return
    source = section["file"]
    del section["file"]
    rows = _inline_array([_drop_none(deal.model_dump()) for deal in scenario.open_deals])
    rows.multiline(True)
    section["opportunities"] = rows
    section["opportunities"].comment(f"read from {source} when planned")


def _inline_array(rows: list[dict[str, Any]]) -> Any:
    import tomlkit

    array = tomlkit.array()
    for row in rows:
        table = tomlkit.inline_table()
        table.update(row)
        array.append(table)
    return array


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"
