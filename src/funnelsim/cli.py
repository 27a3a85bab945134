"""Command line: argument parsing, one call into the library per command, and exit codes; what it
prints is :mod:`funnelsim.report.terminal`, what it writes :mod:`funnelsim.report.tables`.

Exit codes: 0 ok, 1 the run failed, 2 bad input (scenario, override or option),
3 no plan reaches the goal (``plan``; the binding constraint is named),
130 interrupted by Ctrl-C (SIGINT), 143 by SIGTERM.

A Monte Carlo run stopped by a signal or by the death of a worker process (exit 1)
still writes its finished replications to ``--out``, with ``"complete": false`` in
manifest.json, and says how many of the requested completed. A second signal does not
cut that short; a third quits at once, keeping nothing.

``--out`` is checked before anything is simulated: a folder that exists (without
``--force``), a parent that is not a writable folder, or a disk without room for the
estimated output is bad input (exit 2), since another ``--out`` fixes it. A write that
fails afterwards (the disk filled up meanwhile, an I/O error) is a failed run (exit 1):
the work was done and the same command may succeed later. Either way the message is
one line and no partial folder is left behind.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import BrokenExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

# Start-up stays cheap (``funnelsim --help`` in a blink): at the top only typer and what every
# command needs before it starts (signals, units); each command imports the library it calls,
# and numpy, pandas, scipy and rich come with it.
from funnelsim.studies.executors import MonteCarloError, interruption_of, stop_on_signals
from funnelsim.studies.executors import executor as mc_executor
from funnelsim.units import parse_amount, parse_share

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from rich.console import Console

    from funnelsim.model.scenario import Scenario
    from funnelsim.report.terminal import Tracker
    from funnelsim.studies.compare import Comparison
    from funnelsim.studies.planner import Plan, PlanDiagnostics
    from funnelsim.studies.replications import Replications
    from funnelsim.studies.sensitivity import Sensitivity
    from funnelsim.studies.sweep import Sweep
    from funnelsim.studies.workload import Budget, Workload

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Simulate the sales and marketing funnel to plan one shared revenue target.",
)
EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_INFEASIBLE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 3, 130, 143

T = TypeVar("T")

ScenarioArg = Annotated[Path, typer.Argument(help="Scenario file (TOML).", show_default=False)]
JobsOpt = Annotated[int, typer.Option(help="Worker processes for the replications.", min=1)]
SchedulerOpt = Annotated[
    str | None, typer.Option(help="Dask scheduler address (tcp://host:port), or 'local' for a local cluster.")
]
SeedOpt = Annotated[int | None, typer.Option(help="Random seed (default: the scenario's).", min=0)]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace what exists at the output path (--out, init's file).")]
# The flags every command spells and means alike (docs/cli.md): --format says what is printed, --figures
# what --out's figures are, --crm how an export is read. Old spellings (--format png|svg, --format
# salesforce|hubspot|generic, calibrate --out NAME.toml) still work this release, with a deprecation note.
OUTPUT_FORMATS = ("table", "tsv", "json")
FIGURE_FORMATS = ("png", "svg")
CRM_FORMATS = ("salesforce", "hubspot", "generic")
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="What to print on stdout: table (default, for people), tsv (tab-separated, full precision) or json.",
        show_default=False,
    ),
]
FiguresOpt = Annotated[
    str | None,
    typer.Option("--figures", help="Format of the figures written to --out: png or svg.", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document: the same as --format json.")]
QuietOpt = Annotated[
    bool, typer.Option("-q", "--quiet", help="No narration, estimate or progress on stderr (warnings and errors stay).")
]
AllowLargeOpt = Annotated[
    bool,
    typer.Option(
        "--allow-large", help="Run even when the work is estimated above the limits (half the memory, one hour)."
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a value: dotted.path=value (repeatable).", show_default=False),
]


# The errors that are bad input (exit 2), by the module that defines each: see _raised.
BAD_INPUT = (
    ("funnelsim.model.scenario", "ScenarioError"),
    ("funnelsim.report.folder", "OutputError"),
    ("funnelsim.studies.executors", "MonteCarloError"),
    ("funnelsim.studies.planner.errors", "PlanError"),
    ("funnelsim.studies.budget", "BudgetError"),
    ("funnelsim.studies.compare", "CompareError"),
    ("funnelsim.calibrate.readers", "CalibrationError"),
    ("funnelsim.studies.backtest", "BacktestError"),
    ("funnelsim.studies.sweep", "SweepError"),
    ("funnelsim.units", "UnitError"),
    ("funnelsim.studies.workload", "WorkloadTooLarge"),
    ("funnelsim.studies.whatif", "WhatIfError"),
)


def _raised(*errors: tuple[str, str]) -> tuple[type[BaseException], ...]:
    """The exception classes ``(module, name)`` that can have been raised: those of the modules imported
    so far (a module that never ran raised nothing), so that handling an error imports nothing."""
    return tuple(getattr(sys.modules[module], name) for module, name in errors if module in sys.modules)


def _guard(action: Callable[[], T]) -> T:
    """Run ``action``; turn bad input and failures into messages and exit codes."""
    try:
        return action()
    except _raised(("funnelsim.studies.planner.errors", "PlanInfeasible")) as exc:
        _err().print(f"[bold red]infeasible:[/] {_escape(str(exc))}")
        raise typer.Exit(EXIT_INFEASIBLE) from None
    except _raised(("funnelsim.report.folder", "OutputWriteError")) as exc:  # after the work: not the input
        _err().print(f"[bold red]run failed:[/] {_escape(str(exc))}")
        raise typer.Exit(EXIT_FAILURE) from None
    except _raised(*BAD_INPUT) as exc:
        _err().print(f"[bold red]error:[/] {_escape(str(exc))}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or a dead worker (montecarlo.interruption_of)
        stop = interruption_of(exc)
        if stop.cause == "worker died":
            _err().print(f"[bold red]run failed:[/] {_escape(stop.detail)}")
        else:
            _err().print("interrupted" if stop.cause == "SIGINT" else f"interrupted ({stop.cause})")
        raise typer.Exit(stop.exit_code) from None
    except BrokenExecutor as exc:
        _err().print(f"[bold red]run failed:[/] a worker process died ({_escape(str(exc))})")
        raise typer.Exit(EXIT_FAILURE) from None
    except Exception as exc:  # a bug or an environment problem: say it, no traceback
        _err().print(f"[bold red]run failed:[/] {type(exc).__name__}: {_escape(str(exc))}")
        raise typer.Exit(EXIT_FAILURE) from None


def _err() -> Console:
    """The console of narration and errors (stderr); rich is imported on first use."""
    from funnelsim.report.terminal import err

    return err


def _out() -> Console:
    """The console of results (stdout)."""
    from funnelsim.report.terminal import out

    return out


def _escape(text: str) -> str:
    """``text`` as literal rich markup."""
    from rich.markup import escape

    return escape(text)


@contextmanager
def executor(jobs: int = 1, scheduler: str | None = None) -> Iterator[Executor]:
    """:func:`funnelsim.studies.replications.executor`, with a one-line warning on stderr when --jobs is capped."""

    def warn(message: str) -> None:
        _err().print(f"[yellow]warning:[/] {_escape(message)}")

    with mc_executor(jobs, scheduler, warn=warn) as pool:
        yield pool


def _load(path: Path, overrides: list[str] | None) -> Scenario:
    from funnelsim.model.loading import load_scenario

    return _guard(lambda: load_scenario(path, overrides or ()))


# Work estimated to take longer than this is announced before it starts.
ANNOUNCE_SECONDS = 5.0


def _budget(allow_large: bool, narrate: bool) -> Budget:
    """The work allowed to a command: refused above the limits unless --allow-large; long work announced."""
    from funnelsim.studies.workload import Budget

    def announce(work: Workload, what: str) -> None:
        if narrate and work.seconds >= ANNOUNCE_SECONDS:
            _err().print(f"{what}: {_escape(work.headline())}")

    return Budget(allow_large=allow_large, announce=announce)


def _write_out(write: Callable[[], Path], narrate: bool, note: str = "") -> None:
    """Write an output folder (errors through :func:`_guard`) and say where, when narrating."""
    written = _guard(write)
    if narrate:
        _err().print(f"wrote {written}{note}")


def _print_json(doc: Any) -> None:
    """``doc`` as strict JSON: a number that is not finite (NaN: undefined, e.g. a share of nothing) is null."""
    sys.stdout.write(json.dumps(_finite(doc), indent=2, allow_nan=False) + "\n")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _formats(
    shown: str | None,
    as_json: bool = False,
    figures: str | None = None,
    crm: str | None = None,
    *,
    old: str = "figures",
) -> tuple[str, str, str | None]:
    """``(--format, --figures, --crm)`` resolved: what is printed (table, tsv or json; ``--json`` is ``--format
    json``), the figure format and the CRM dialect. ``--format png|svg`` (``old="figures"``: the commands that had it)
    and ``--format salesforce|hubspot|generic`` (``old="crm"``: calibrate, backtest), the spellings of earlier
    releases, still mean ``--figures`` and ``--crm``, with a one-line deprecation note."""
    text = None if shown is None else shown.strip().lower()
    if text in FIGURE_FORMATS and old == "figures":
        _deprecated(f"--format {text}", f"--figures {text}")
        figures, text = figures or text, None
    elif text in CRM_FORMATS and old == "crm":
        _deprecated(f"--format {text}", f"--crm {text}")
        crm, text = crm or text, None
    if text is not None and text not in OUTPUT_FORMATS:
        raise typer.BadParameter(f"expected table, tsv or json, got {shown!r}", param_hint="'--format'")
    if as_json and text not in (None, "json"):
        raise typer.BadParameter(f"--json is --format json; it cannot be combined with --format {text}")
    if figures is not None and figures.strip().lower() not in FIGURE_FORMATS:
        raise typer.BadParameter(f"figure format must be png or svg, got {figures!r}", param_hint="'--figures'")
    return ("json" if as_json else text or "table"), (figures or "png").strip().lower(), crm


def _deprecated(old: str, new: str) -> None:
    """One line on stderr (even with --quiet: a script's author must hear it) for a spelling that will go."""
    note = f"{_escape(old)} is now {_escape(new)}; the old spelling goes in the next release"
    _err().print(f"[yellow]deprecated:[/] {note}")


def _show(shown: str, doc: Callable[[], Any], frame: Callable[[], Any], table: Callable[[], None]) -> None:
    """Print a command's result as ``--format`` asks: ``doc()`` as JSON, ``frame()`` as TSV, or ``table()``."""
    if shown == "json":
        _print_json(doc())
    elif shown == "tsv":
        from funnelsim.report.terminal import print_tsv

        print_tsv(frame())
    else:
        table()


@contextmanager
def _progress(label: str, narrate: bool, total: int | None = None, plain_phases: bool = False) -> Iterator[Tracker]:
    """The one progress display of long commands (:func:`funnelsim.report.terminal.progress`): on stderr, in a
    terminal only, never with --quiet, --format json or tsv (``plain_phases``: not in a terminal, one line per
    phase, for calibrate, whose estimates come phase by phase)."""
    from funnelsim.report.terminal import progress

    with progress(label, narrate, total, plain_phases) as tracker:
        yield tracker


@app.command()
def run(
    scenario: ScenarioArg,
    seed: SeedOpt = None,
    overrides: SetOpt = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write tables, figures and manifest to this folder.")
    ] = None,
    force: ForceOpt = False,
    shown: FormatOpt = None,
    figures: FiguresOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    runs: Annotated[int, typer.Option(help="Monte Carlo: number of replications.", min=1)] = 1,
    jobs: JobsOpt = 1,
    scheduler: SchedulerOpt = None,
    replication: Annotated[
        int | None, typer.Option(help="Re-run replication I of --seed alone (same numbers as in a batch).", min=0)
    ] = None,
    goal: Annotated[
        str | None,
        typer.Option(
            help="Revenue goal of the horizon, e.g. 12M, 750k, 12000000: P(goal) over --runs; the plan of the quota "
            "capacity and the pipeline coverage's target.",
            show_default=False,
        ),
    ] = None,
    precision: Annotated[
        float | None,
        typer.Option(help="Add replications until the 95% CI of mean revenue is within this share of the mean."),
    ] = None,
    max_runs: Annotated[int | None, typer.Option(help="Upper bound of replications for --precision.", min=1)] = None,
    allow_large: AllowLargeOpt = False,
) -> None:
    """Simulate SCENARIO once, or --runs N times (Monte Carlo), and print what happened."""
    from funnelsim.randomness import resolve_seed
    from funnelsim.report.folder import check_target, estimate_output_bytes
    from funnelsim.studies.workload import estimate

    shown, figure_format, _ = _formats(shown, as_json, figures)
    sc = _load(scenario, overrides)
    goal_amount = _guard(lambda: parse_amount(goal, "--goal")) if goal is not None else None
    monte_carlo = runs > 1 or precision is not None or max_runs is not None
    most = _most_runs(runs, precision, max_runs) if monte_carlo else 1
    narrate = not quiet and shown == "table"
    budget = _budget(allow_large, narrate)
    what = "this Monte Carlo run" if monte_carlo else "this run"
    _guard(lambda: budget.admit(estimate(sc, most, jobs if monte_carlo else 1), what))  # before anything else
    if out_dir is not None:  # refuse before simulating
        size = _guard(lambda: estimate_output_bytes(sc, most))
        _guard(lambda: check_target(out_dir, force, figure_format, expected_bytes=size))
    run_seed = resolve_seed(sc, seed)
    if not monte_carlo:
        _single_run(sc, run_seed, replication or 0, out_dir, force, figure_format, narrate, shown, goal_amount)
        return
    if replication is not None:
        _guard(lambda: _bad("--replication re-runs one replication; it cannot be combined with --runs"))
    reps = _monte_carlo(sc, run_seed, runs, jobs, scheduler, goal_amount, precision, max_runs, narrate, shown)
    if out_dir is not None and reps.completed:
        from funnelsim.report.tables import write_replications

        note = "" if reps.complete else " (incomplete)"
        _write_out(lambda: write_replications(reps, out_dir, figure_format=figure_format, force=force), narrate, note)
    if reps.interruption is not None:
        raise typer.Exit(reps.interruption.exit_code)


def _most_runs(runs: int, precision: float | None, max_runs: int | None) -> int:
    """The replications a Monte Carlo run may make: ``runs``, or up to ``--max-runs`` for ``--precision``."""
    from funnelsim.studies.replications import MAX_RUNS

    return (max_runs or MAX_RUNS) if precision is not None else runs


def _single_run(
    sc: Scenario,
    seed: int,
    which: int,
    out_dir: Path | None,
    force: bool,
    figure_format: str,
    narrate: bool,
    shown: str,
    goal: float | None = None,
) -> None:
    """``funnelsim run`` without --runs: simulate replication ``which`` of ``seed``, write and print it
    (``goal``: the plan of the quota capacity and the target of the pipeline coverage, when the scenario has them)."""
    from funnelsim.engine import simulate
    from funnelsim.engine.warmup import start_of
    from funnelsim.report.tables import write_run
    from funnelsim.report.terminal import print_summary, summary_frame
    from funnelsim.run.metrics import summarize_run

    if narrate:
        rep_note = f", replication {which}" if which else ""
        _err().print(f"{sc.name}: {sc.horizon_days:g} days from {sc.start_date}, seed {seed}{rep_note}")
    sc = _warm(sc, seed, narrate)
    with _progress("simulating", narrate):
        result = _guard(lambda: simulate(sc, seed=seed, replication=which))
    stats = _guard(lambda: summarize_run(result, goal))
    if out_dir is not None:
        _write_out(lambda: write_run(result, out_dir, figure_format=figure_format, force=force, goal=goal), narrate)
    doc = {"scenario": sc.name, "seed": result.seed, "currency": sc.currency, "start": start_of(sc), "summary": stats}
    if which:
        doc["replication"] = which
    _show(shown, lambda: doc, lambda: summary_frame(stats), lambda: print_summary(stats, sc.currency))


def _warm(sc: Scenario, seed: int, narrate: bool) -> Scenario:
    """The scenario with its warm start's burn-in chosen (pilot runs, once), narrated."""
    from funnelsim.engine import warm_start

    with _progress("choosing the warm start's burn-in", narrate and sc.burns_in):
        resolved, burn_in = _guard(lambda: warm_start(sc, seed))
    if narrate and burn_in is not None:
        settled = "" if burn_in.settled else " [yellow]not settled: the funnel keeps filling[/]"
        _err().print(
            f"warm start: {burn_in.days:g} days of burn-in before {sc.start_date} ({burn_in.chosen_by}){settled}"
        )
    return resolved


def _bad(message: str) -> None:
    raise MonteCarloError(message)


def _monte_carlo(
    sc: Scenario,
    seed: int,
    runs: int,
    jobs: int,
    scheduler: str | None,
    goal: float | None,
    precision: float | None,
    max_runs: int | None,
    narrate: bool,
    shown: str,
) -> Replications:
    from funnelsim.report.terminal import print_replications
    from funnelsim.studies.replications import run as mc_run
    from funnelsim.studies.workload import UNLIMITED

    if narrate:
        where = f"Dask {scheduler}" if scheduler else f"{jobs} process{'es' if jobs > 1 else ''}"
        _err().print(f"{sc.name}: {sc.horizon_days:g} days from {sc.start_date}, seed {seed}, replications on {where}")
    sc = _warm(sc, seed, narrate)
    with _progress("replications", narrate, max_runs if precision is not None else runs) as tracker:

        def go() -> Replications:
            with executor(jobs, scheduler) as pool:
                return mc_run(
                    sc,
                    runs,
                    seed,
                    pool,
                    goal=goal,
                    precision=precision,
                    max_runs=max_runs,
                    progress=tracker.count,
                    budget=UNLIMITED,  # judged whole by the caller, before the output checks
                )

        reps = _guard(go)
    # Interrupted before the first replication finished: nothing to show, only the stop message.
    if reps.completed:
        _show(shown, reps.to_json, reps.summary, lambda: print_replications(reps))
    message = reps.stop_message()
    if message is not None:
        _err().print(_escape(message))
    return reps


# The planner's levers and default work budget, spelled out here so that the help needs no planner (it
# imports scipy and pandas); tests/test_startup.py checks they are the planner's own.
LEVERS = ("leads", "reps", "both", "budget")
MAX_EVALUATIONS = 60
MAX_VERIFICATIONS = 4

VerifyRunsOpt = Annotated[
    int | None,
    typer.Option(help="Fresh runs per verification round (default: enough for a 95% interval of +-2.5 points)."),
]
MaxVerificationsOpt = Annotated[
    int, typer.Option(help="Work budget of verification: at most this many rounds of --verify-runs.", min=1)
]
HireMonthOpt = Annotated[
    str | None, typer.Option(help="Month YYYY-MM the plan's extra AEs and SDRs join (default: the first simulated).")
]
LeadSourcesOpt = Annotated[
    str | None,
    typer.Option(help="Sources the lead lever scales, with weights: inbound=1,events=0.5 (default: all alike)."),
]
LeadMonthsOpt = Annotated[
    str | None,
    typer.Option(help="Months the lead lever scales: 2027-03:2027-12, or 2027-03=0.5,2027-04=1 (default: all)."),
]


GoalOpt = Annotated[
    str | None, typer.Option(help="Revenue to book in the period, e.g. 12M, 750k, 12000000 (subscriptions: new ARR).")
]
GoalArrOpt = Annotated[
    str | None, typer.Option("--goal-arr", help="Subscriptions: ARR at the end of the period, e.g. 18M.")
]
GoalNetNewArrOpt = Annotated[
    str | None,
    typer.Option("--goal-net-new-arr", help="Subscriptions: net new ARR in the period (new + expansion - churn)."),
]
GoalSegmentOpt = Annotated[
    str | None,
    typer.Option("--goal-segment", help="A segmented scenario: the goal is this segment's alone (e.g. enterprise)."),
]
GoalRevenueOpt = Annotated[
    str | None,
    typer.Option("--goal-revenue", help="Subscriptions: revenue recognised in the period (each month's ARR / 12)."),
]


@app.command()
def plan(
    scenario: ScenarioArg,
    goal: GoalOpt = None,
    goal_arr: GoalArrOpt = None,
    goal_net_new_arr: GoalNetNewArrOpt = None,
    goal_revenue: GoalRevenueOpt = None,
    goal_segment: GoalSegmentOpt = None,
    confidence: Annotated[float, typer.Option(help="Required probability of reaching the goal.")] = 0.8,
    period: Annotated[
        str | None, typer.Option(help="Whole months START:END, e.g. 2027-01-01:2027-12-31 (default: the horizon).")
    ] = None,
    lever: Annotated[
        str, typer.Option(help=f"What the plan may change: {', '.join(LEVERS)} ('aes' is 'reps').")
    ] = "leads",
    runs: Annotated[
        int, typer.Option(help="Replications per candidate of the search (same seeds for all).", min=1)
    ] = 100,
    lead_in: Annotated[
        int | None, typer.Option("--lead-in", help="Months simulated before the period (default: 90% of leads close).")
    ] = None,
    seed: SeedOpt = None,
    overrides: SetOpt = None,
    jobs: JobsOpt = 1,
    scheduler: SchedulerOpt = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write the sheet, planned.toml, figures and manifest here.")
    ] = None,
    force: ForceOpt = False,
    shown: FormatOpt = None,
    figures: FiguresOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    max_evaluations: Annotated[
        int,
        typer.Option(help="Work budget of the search: at most this many candidates of --runs replications.", min=2),
    ] = MAX_EVALUATIONS,
    verify_runs: VerifyRunsOpt = None,
    max_verifications: MaxVerificationsOpt = MAX_VERIFICATIONS,
    hire_month: HireMonthOpt = None,
    lead_sources: LeadSourcesOpt = None,
    lead_months: LeadMonthsOpt = None,
    allow_large: AllowLargeOpt = False,
) -> None:
    """Work back from a revenue GOAL to monthly targets for marketing and sales, verified on fresh seeds
    (exit 3 if infeasible)."""
    from funnelsim.report.folder import check_target
    from funnelsim.report.tables import write_plan
    from funnelsim.report.terminal import print_plan
    from funnelsim.studies.planner import LeadShape, Period, lever_name, work_budget

    shown, figure_format, _ = _formats(shown, as_json, figures)
    sc = _load(scenario, overrides)
    kind, flag, text, name = _guard(lambda: _goal_option(goal, goal_arr, goal_net_new_arr, goal_revenue))
    amount = _guard(lambda: parse_amount(text, flag))
    window = _guard(lambda: Period.parse(period)) if period is not None else None
    chosen = _guard(lambda: lever_name(lever))
    shape = _guard(lambda: LeadShape.parse(lead_sources, lead_months))
    hired = _guard(lambda: _month_option(hire_month, "--hire-month")) if hire_month is not None else None
    if out_dir is not None:
        _guard(lambda: check_target(out_dir, force, figure_format))
    narrate = not quiet and shown == "table"
    if narrate:
        what = ("" if kind == "bookings" else f" of {name}") + (f" in {goal_segment}" if goal_segment else "")
        asked = f"{amount:,.0f} {sc.currency}{what} at {confidence:.0%} confidence"
        _err().print(f"{sc.name}: planning {asked}, lever {chosen}")
        work = _guard(lambda: work_budget(confidence, runs, max_evaluations, verify_runs, max_verifications))
        _err().print(f"work budget: {work.describe()}")
    options: dict[str, Any] = {"period": window, "lever": chosen, "runs": runs, "seed": seed, "lead_in_months": lead_in}
    options |= {"max_evaluations": max_evaluations, "verify_runs": verify_runs, "max_verifications": max_verifications}
    options |= {"lead_shape": shape, "hire_month": hired, "goal_kind": kind, "goal_segment": goal_segment}
    result, diagnostics = _make_plan(
        sc, amount, confidence, options, jobs, scheduler, _budget(allow_large, narrate), narrate
    )
    if out_dir is not None:
        text, given = scenario.read_text(encoding="utf-8"), tuple(overrides or ())
        write = partial(write_plan, result, diagnostics, out_dir, source_text=text, overrides=given)
        _write_out(lambda: write(figure_format=figure_format, force=force), narrate)
        _excel_hint()
    _show(shown, result.to_json, lambda: result.sheet, lambda: print_plan(result, diagnostics))


def _excel_hint() -> None:
    """Without openpyxl the plan folder has no targets.xlsx: say so on stderr, even with -q or --json."""
    from funnelsim.report import xlsx

    if not xlsx.available():
        _err().print(_escape(xlsx.INSTALL_HINT))


def _goal_option(*texts: str | None) -> tuple[str, str, str, str]:
    """The one goal given (``texts`` in the order of the planner's ``GOAL_FLAGS``): what it measures, its flag,
    its text and its short name."""
    from funnelsim.studies.planner import GOAL_FLAGS, PlanError

    goals = [(kind, flag, name) for kind, (flag, _, name) in GOAL_FLAGS.items()]
    given = [(kind, flag, text, name) for (kind, flag, name), text in zip(goals, texts, strict=True) if text]
    if len(given) != 1 or len(given) != sum(text is not None for text in texts):
        raise PlanError(f"give exactly one goal: {', '.join(flag for _, flag, _ in goals)}")
    return given[0]


def _month_option(text: str, flag: str) -> dt.date:
    """``YYYY-MM`` as the 1st of that month; bad input names ``flag``."""
    from funnelsim.studies.planner import PlanError

    try:
        if len(text) != 7:
            raise ValueError(text)
        return dt.date.fromisoformat(f"{text}-01")
    except ValueError:
        raise PlanError(f"{flag}: expected a month YYYY-MM, e.g. 2027-03, got {text!r}") from None


def _make_plan(
    sc: Scenario,
    amount: float,
    confidence: float,
    options: dict[str, Any],
    jobs: int,
    scheduler: str | None,
    budget: Budget,
    narrate: bool,
) -> tuple[Plan, PlanDiagnostics]:
    """Run the planner on a pool, with the progress display on stderr saying what it is doing (in a terminal)."""
    from funnelsim.studies.planner import plan as make_plan

    with _progress("planning", narrate) as tracker:

        def go() -> tuple[Plan, PlanDiagnostics]:
            with executor(jobs, scheduler) as pool:
                return make_plan(sc, amount, confidence, pool=pool, progress=tracker.phase, budget=budget, **options)

        return _guard(go)


@app.command()
def mix(
    scenario: ScenarioArg,
    budget: Annotated[str, typer.Option(help="Marketing budget a month for the channels with a spend curve: 150k.")],
    objective: Annotated[str, typer.Option(help="What the mix maximises: revenue or wins.")] = "revenue",
    overrides: SetOpt = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write mix.csv and manifest.json here.")] = None,
    force: ForceOpt = False,
    shown: FormatOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Split a monthly BUDGET between the channels with a spend curve for the most expected revenue (or wins),
    beside today's mix (exit 2 without spend curves)."""
    from funnelsim.report.folder import check_target
    from funnelsim.report.tables import write_mix
    from funnelsim.report.terminal import print_mix
    from funnelsim.studies.budget import mix as best_mix

    shown, _, _ = _formats(shown, as_json, old="")
    sc = _load(scenario, overrides)
    amount = _guard(lambda: parse_amount(budget, "--budget"))
    if out_dir is not None:
        _guard(lambda: check_target(out_dir, force, "png"))
    result = _guard(lambda: best_mix(sc, amount, objective))
    narrate = not quiet and shown == "table"
    if out_dir is not None:
        _write_out(lambda: write_mix(result, out_dir, force=force), narrate)
    rows = result.table.to_dict("records")
    doc = {"scenario": sc.name, "currency": sc.currency, "budget": amount, "objective": result.objective}
    doc |= {"shadow_price": result.shadow_price, "unspent": result.unspent, "rows": rows}
    _show(shown, lambda: doc, lambda: result.table, lambda: print_mix(result))


@app.command()
def compare(
    scenarios: Annotated[list[Path], typer.Argument(help="Two or more scenario files; the first is the reference.")],
    runs: Annotated[int, typer.Option(help="Replications per scenario (the same seeds for all).", min=2)] = 100,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the first scenario's).", min=0)] = None,
    jobs: JobsOpt = 1,
    scheduler: SchedulerOpt = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write comparison.csv, replications, figures and manifest here.")
    ] = None,
    force: ForceOpt = False,
    shown: FormatOpt = None,
    figures: FiguresOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    attribute: Annotated[
        bool,
        typer.Option(
            "--attribute", help="Split the revenue gap between two scenarios into what each lever contributes."
        ),
    ] = False,
    lever: Annotated[
        list[str] | None,
        typer.Option(
            help="Name a lever: NAME=PATH[,PATH...] (dotted parameters or sections; implies --attribute; repeatable).",
            show_default=False,
        ),
    ] = None,
    allow_large: AllowLargeOpt = False,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Override a value in every scenario: dotted.path=value (repeatable).", show_default=False
        ),
    ] = None,
) -> None:
    """Run SCENARIOS on the same seeds and show each metric's paired difference against the first.

    With --attribute (two scenarios), every combination of the levers that differ is
    simulated too, and the revenue gap is split by Shapley values (docs/model.md).
    """
    from funnelsim.randomness import resolve_seed
    from funnelsim.report.folder import check_target
    from funnelsim.report.tables import write_comparison
    from funnelsim.report.terminal import print_comparison

    shown, figure_format, _ = _formats(shown, as_json, figures)
    loaded = [_load(path, overrides) for path in scenarios]
    named = _guard(lambda: _levers(lever or []))
    if out_dir is not None:
        _guard(lambda: check_target(out_dir, force, figure_format))
    run_seed = resolve_seed(loaded[0], seed)
    narrate = not quiet and shown == "table"
    if narrate:
        _err().print(f"comparing {len(loaded)} scenarios on {runs} common replications of seed {run_seed}")

    budget = _budget(allow_large, narrate)
    result = _compare(loaded, runs, run_seed, jobs, scheduler, attribute, named, budget, narrate)
    if out_dir is not None:
        _write_out(lambda: write_comparison(result, out_dir, figure_format=figure_format, force=force), narrate)
    _show(shown, result.to_json, result.table, lambda: print_comparison(result, runs, loaded[0].currency))


def _compare(
    loaded: list[Scenario],
    runs: int,
    seed: int,
    jobs: int,
    scheduler: str | None,
    attribute: bool,
    levers: dict[str, list[str]],
    budget: Budget,
    narrate: bool,
) -> Comparison:
    """Run the comparison on a pool, with a progress bar of replications on stderr (in a terminal)."""
    from funnelsim.studies.compare import compare as make_comparison

    def go() -> Comparison:
        with executor(jobs, scheduler) as pool, _progress("comparing", narrate) as tracker:
            return make_comparison(
                loaded, runs, seed, pool, attribute_levers=attribute, levers=levers, progress=tracker.count,
                budget=budget,
            )  # fmt: skip

    return _guard(go)


def _levers(specs: list[str]) -> dict[str, list[str]]:
    """``--lever NAME=PATH[,PATH...]`` options as ``{name: [path, ...]}``."""
    from funnelsim.studies.compare import CompareError

    named: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, paths = spec.partition("=")
        parts = [p.strip() for p in paths.split(",") if p.strip()]
        if not sep or not name.strip() or not parts:
            raise CompareError(f"--lever expects NAME=PATH[,PATH...], got {spec!r}")
        if name.strip() in named:
            raise CompareError(f"--lever {name.strip()!r} is given twice")
        named[name.strip()] = parts
    return named


# The CRM exports and how to read them: shared by calibrate and backtest.
LeadsOpt = Annotated[Path | None, typer.Option(help="Leads (contacts) export, CSV.")]
HistoryOpt = Annotated[Path | None, typer.Option(help="Stage history export (one row per stage change), CSV.")]
CrmFormatOpt = Annotated[
    str | None,
    typer.Option("--crm", help="How the exports are laid out: salesforce, hubspot or generic (default: detected)."),
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option("--map", help="COLUMN=FIELD, or STAGE LABEL=won|lost|open (repeatable).", show_default=False),
]
BaseOpt = Annotated[Path | None, typer.Option(help="Scenario for everything not calibrated (default: baseline).")]
DayfirstOpt = Annotated[
    bool | None, typer.Option("--dayfirst/--no-dayfirst", help="Slash dates are DD/MM (or MM/DD) when ambiguous.")
]
DateFormatOpt = Annotated[str | None, typer.Option("--date-format", help="strptime format for every date column.")]
StaleOpt = Annotated[
    str,
    typer.Option(
        "--stale",
        help="Open deals older than the P99 of closed cycles: close-lost (lost the day they went stale; "
        "not in the pipeline), drop (left out of fits and pipeline) or keep (open, as the CRM says).",
    ),
]
ShiftHiresOpt = Annotated[
    bool,
    typer.Option("--shift-hires", help="Keep the base's AE hires, moved to keep their offset (default: dropped)."),
]
CheckRunsOpt = Annotated[
    int,
    typer.Option("--check-runs", help="Replications of the self-check over the history (0: no self-check).", min=0),
]


@app.command()
def calibrate(
    opportunities: Annotated[Path, typer.Option(help="Opportunities (deals) export, CSV.", show_default=False)],
    out_path: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Write DIR/scenario.toml, DIR/pipeline.csv and the report here (NAME.toml: old layout, deprecated).",
        ),
    ],
    leads: LeadsOpt = None,
    history: HistoryOpt = None,
    crm_format: CrmFormatOpt = None,
    mapping: MapOpt = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Date of the export, YYYY-MM-DD, counted to the end of that day (default: the latest date)."
        ),
    ] = None,
    base: BaseOpt = None,
    dayfirst: DayfirstOpt = None,
    date_format: DateFormatOpt = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="A messy row is an error (exit 2) instead of rejected.")
    ] = False,
    stale: StaleOpt = "close-lost",
    shift_hires: ShiftHiresOpt = False,
    check_runs: CheckRunsOpt = 100,
    jobs: JobsOpt = 1,
    force: ForceOpt = False,
    shown: FormatOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Fit a scenario to CRM exports (cycle, win rate, deal size, volumes, reps, hand-off capacity, open
    pipeline), then simulate it over the history: exit 1 if observed months fall outside its P10-P90 more
    often than a binomial(months, 0.2) allows. --as-of D counts all of day D; the scenario starts D+1."""
    from funnelsim.calibrate import calibrate as fit_scenario
    from funnelsim.report.terminal import print_calibration

    shown, _, crm_format = _formats(shown, as_json, None, crm_format, old="crm")
    write, stem, pipeline_file = _calibration_target(out_path, force)
    narrate = not quiet and shown == "table"
    with executor(jobs) as pool, _progress("calibrating", narrate, plain_phases=True) as tracker:
        cal = _guard(
            lambda: fit_scenario(
                opportunities,
                leads,
                history,
                fmt=crm_format,
                mapping=tuple(mapping or ()),
                as_of=as_of,
                base=base,
                strict=strict,
                dayfirst=dayfirst,
                date_format=date_format,
                pipeline_file=pipeline_file,
                name=stem,
                stale=stale,
                shift_hires=shift_hires,
                check_runs=check_runs,
                pool=pool,
                progress=tracker.phase,
            )
        )
        tracker.phase("writing the scenario and the report")
        written = _guard(lambda: write(cal))
    if shown == "table" and not quiet:
        print_calibration(cal, written)
    elif shown != "table":
        for line in cal.warnings:  # warnings are not narration: a script must hear them too
            _err().print(f"[bold yellow]warning:[/] {_escape(line)}")
        _show(shown, lambda: _calibration_json(cal, written), lambda: cal.tables["parameters.csv"], lambda: None)
    _exit_if_check_failed(cal, written[2])


def _calibration_json(cal: Any, written: tuple[Path, Path, Path]) -> dict[str, Any]:
    """``calibrate --format json``: the as-of date, what was written, the self-check's verdict, the values."""
    return {
        "as_of": str(cal.as_of),
        "start_date": str(cal.start_date),
        "written": [str(path) for path in written],
        "self_check_passed": None if cal.check is None else cal.check.passed,
        "warnings": list(cal.warnings),
        "parameters": cal.tables["parameters.csv"].to_dict("records"),
    }


def _calibration_target(out: Path, force: bool) -> tuple[Callable[[Any], tuple[Path, Path, Path]], str, str]:
    """How ``calibrate --out`` writes (checked before any work), the scenario's name and its pipeline file:
    a folder DIR, as on every command; NAME.toml, the layout of earlier releases, with a deprecation note."""
    from funnelsim.report.calibration import FOLDER_PIPELINE, check_outputs, write_calibration, write_calibration_folder
    from funnelsim.report.folder import check_target

    if out.suffix == ".toml":
        _deprecated("calibrate --out NAME.toml", "calibrate --out DIR (DIR/scenario.toml, DIR/pipeline.csv, report)")
        _guard(lambda: check_outputs(out, force))
        return partial(write_calibration, out=out, force=force), out.with_suffix("").name, f"{out.stem}.pipeline.csv"
    _guard(lambda: check_target(out, force))
    return partial(write_calibration_folder, out_dir=out, force=force), out.name, FOLDER_PIPELINE


def _exit_if_check_failed(cal: Any, report: Path) -> None:
    """Exit 1, after everything is written, when the calibrated scenario does not reproduce its history."""
    if cal.check is not None and cal.check.passed is False:
        _err().print(
            "[bold red]self-check failed:[/] the calibrated scenario does not reproduce its own history "
            f"({_escape('; '.join(cal.check.failures))}); see {_escape(report.name)}/report.md"
        )
        raise typer.Exit(EXIT_FAILURE)


@app.command()
def backtest(
    export: Annotated[Path, typer.Argument(help="Opportunities (deals) export, CSV, reaching past the quarters.")],
    as_of: Annotated[
        str, typer.Option("--as-of", help="Cut-off date YYYY-MM-DD: fit on what happened before 00:00 that day.")
    ],
    quarters: Annotated[int, typer.Option(help="Quarters to forecast and score after the cut-off.")] = 3,
    leads: LeadsOpt = None,
    history: HistoryOpt = None,
    crm_format: CrmFormatOpt = None,
    mapping: MapOpt = None,
    base: BaseOpt = None,
    dayfirst: DayfirstOpt = None,
    date_format: DateFormatOpt = None,
    runs: Annotated[int, typer.Option(help="Replications of the forecast.", min=1)] = 200,
    seed: SeedOpt = None,
    jobs: JobsOpt = 1,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write backtest.csv, forecast, actuals, figures and manifest here.")
    ] = None,
    force: ForceOpt = False,
    shown: FormatOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    allow_large: AllowLargeOpt = False,
) -> None:
    """Fit on EXPORT up to --as-of, forecast the next --quarters, and score the actual wins and won value."""
    from funnelsim.calibrate.backtest import backtest as run_backtest
    from funnelsim.report.backtest import write_backtest
    from funnelsim.report.folder import check_target
    from funnelsim.report.terminal import print_backtest

    shown, _, crm_format = _formats(shown, as_json, None, crm_format, old="crm")
    if out_dir is not None:
        _guard(lambda: check_target(out_dir, force))
    narrate = not quiet and shown == "table"
    with _progress("back-testing", narrate) as tracker:

        def go() -> Any:
            with executor(jobs, None) as pool:
                return run_backtest(
                    export, as_of=as_of, quarters=quarters, leads=leads, history=history, fmt=crm_format,
                    mapping=tuple(mapping or ()), base=base, dayfirst=dayfirst, date_format=date_format,
                    runs=runs, seed=seed, pool=pool, progress=tracker.phase, budget=_budget(allow_large, narrate),
                )  # fmt: skip

        result = _guard(go)
    if out_dir is not None:
        _write_out(lambda: write_backtest(result, out_dir, force=force), narrate)
    _show(shown, result.to_json, lambda: result.scores, lambda: print_backtest(result))


ParamSpecOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        help="Parameter to vary: dotted.path=lo:hi:n or dotted.path=v1,v2,... (one or two; repeatable).",
        show_default=False,
    ),
]


@app.command()
def sweep(
    scenario: ScenarioArg,
    param: ParamSpecOpt = None,
    runs: Annotated[int, typer.Option(help="Replications per grid point (the same seeds at every point).", min=2)] = 50,
    seed: SeedOpt = None,
    metric: Annotated[str, typer.Option(help="Metric to optimise and plot (a summary key: revenue, wins, cac...).")] = (
        "revenue"
    ),
    overrides: SetOpt = None,
    jobs: JobsOpt = 1,
    scheduler: SchedulerOpt = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write sweep.csv, differences, replications, figures and manifest.")
    ] = None,
    force: ForceOpt = False,
    shown: FormatOpt = None,
    figures: FiguresOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    allow_large: AllowLargeOpt = False,
) -> None:
    """Run SCENARIO over a grid of one or two parameters, on the same seeds at every point."""
    from funnelsim.randomness import resolve_seed
    from funnelsim.report.folder import check_target
    from funnelsim.report.tables import write_sweep
    from funnelsim.report.terminal import print_sweep
    from funnelsim.studies.sweep import parse_param
    from funnelsim.studies.sweep import sweep as make_sweep

    shown, figure_format, _ = _formats(shown, as_json, figures)
    sc = _load(scenario, overrides)
    specs = _guard(lambda: [parse_param(p) for p in param or []])
    if out_dir is not None:
        _guard(lambda: check_target(out_dir, force, figure_format))
    run_seed = resolve_seed(sc, seed)
    narrate = not quiet and shown == "table"
    if narrate:
        points = math.prod(len(values) for _, values in specs)
        _err().print(f"{sc.name}: sweeping {', '.join(p for p, _ in specs)} over {points} points, "
                     f"{runs} common replications of seed {run_seed} each")  # fmt: skip
    with _progress("sweeping", narrate) as tracker:

        def go() -> Sweep:
            with executor(jobs, scheduler) as pool:
                return make_sweep(
                    sc,
                    specs,
                    runs,
                    run_seed,
                    pool,
                    metric=metric,
                    progress=tracker.count,
                    budget=_budget(allow_large, narrate),
                )

        result = _guard(go)
    if out_dir is not None:
        _write_out(
            lambda: write_sweep(result, out_dir, metric=metric, figure_format=figure_format, force=force), narrate
        )
    _show(shown, lambda: result.to_json(metric), result.table, lambda: print_sweep(result, metric))


@app.command()
def sensitivity(
    scenario: ScenarioArg,
    by: Annotated[str, typer.Option(help="Relative change of each parameter, e.g. 20% or 0.2.")] = "20%",
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="Vary only this dotted path (repeatable; default: every numeric parameter).",
            show_default=False,
        ),
    ] = None,
    runs: Annotated[int, typer.Option(help="Replications of the base and of each change (same seeds).", min=2)] = 30,
    seed: SeedOpt = None,
    metric: Annotated[str, typer.Option(help="Metric whose sensitivity is shown (a summary key).")] = "revenue",
    overrides: SetOpt = None,
    jobs: JobsOpt = 1,
    scheduler: SchedulerOpt = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write sensitivity.csv, skipped.csv, replications, tornado, manifest.")
    ] = None,
    force: ForceOpt = False,
    shown: FormatOpt = None,
    figures: FiguresOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    allow_large: AllowLargeOpt = False,
) -> None:
    """Move each numeric parameter of SCENARIO by -BY and +BY, one at a time, on the base's seeds."""
    from funnelsim.randomness import resolve_seed
    from funnelsim.report.folder import check_target
    from funnelsim.report.tables import write_sensitivity
    from funnelsim.report.terminal import print_sensitivity
    from funnelsim.studies.sensitivity import sensitivity as make_sensitivity

    shown, figure_format, _ = _formats(shown, as_json, figures)
    sc = _load(scenario, overrides)
    share = _guard(lambda: parse_share(by, "--by"))
    if out_dir is not None:
        _guard(lambda: check_target(out_dir, force, figure_format))
    run_seed = resolve_seed(sc, seed)
    narrate = not quiet and shown == "table"
    if narrate:
        _err().print(f"{sc.name}: {metric} sensitivity to ±{share:.0%} of each parameter, "
                     f"{runs} common replications of seed {run_seed}")  # fmt: skip
    with _progress("sensitivity", narrate) as tracker:

        def go() -> Sensitivity:
            with executor(jobs, scheduler) as pool:
                return make_sensitivity(
                    sc,
                    share,
                    runs,
                    run_seed,
                    pool,
                    params=param or None,
                    metric=metric,
                    progress=tracker.count,
                    budget=_budget(allow_large, narrate),
                )

        result = _guard(go)
    if out_dir is not None:
        _write_out(lambda: write_sensitivity(result, out_dir, figure_format=figure_format, force=force), narrate)
    _show(shown, result.to_json, result.table, lambda: print_sensitivity(result))


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="The scenario file to write, e.g. acme.toml.", show_default=False)],
    template: Annotated[
        str | None, typer.Option(help="Start from saas, transactional or baseline (default: ask, in a terminal).")
    ] = None,
    ask: Annotated[
        bool, typer.Option("--ask", help="Ask the questions even with --template or when input is not a terminal.")
    ] = False,
    force: ForceOpt = False,
) -> None:
    """Write a commented scenario file to start from: answer a few questions, or pick a --template."""
    from funnelsim.report import starter

    questions = template is None or ask
    _guard(lambda: starter.check_request(path, force, questions, ask or sys.stdin.isatty()))
    answers = None
    if questions:
        asking = (typer.prompt, typer.confirm, typer.BadParameter)
        template, answers = _guard(lambda: starter.ask(template, *asking, path.stem))
    text = _guard(lambda: starter.starter_toml(str(template), answers, str(path)))
    _guard(lambda: starter.write_starter(path, text, force))
    _err().print(f"wrote {_escape(str(path))} (template {template}); run it with: funnelsim run {_escape(str(path))}")


@app.command()
def serve(
    scenario: ScenarioArg,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).", min=0, max=65535)] = 8765,
    goal: Annotated[str | None, typer.Option(help="Revenue goal of the horizon for P(goal), e.g. 6M.")] = None,
    runs: Annotated[int, typer.Option(help="Replications when a lever is let go.", min=1, max=1000)] = 50,
    drag_runs: Annotated[int, typer.Option(help="Replications while a lever moves.", min=1, max=1000)] = 5,
    seed: SeedOpt = None,
    overrides: SetOpt = None,
    jobs: JobsOpt = 1,
) -> None:
    """Serve a what-if page of SCENARIO on 127.0.0.1: move the levers, watch revenue and P(goal); Ctrl-C stops."""
    from funnelsim.report.serve import serve as serve_page

    amount = _guard(lambda: parse_amount(goal, "--goal")) if goal is not None else None
    say: Callable[[str], None] = lambda line: _err().print(_escape(line))  # noqa: E731
    _guard(lambda: serve_page(scenario, tuple(overrides or ()), seed=seed, goal=amount, runs=runs,
                              drag_runs=drag_runs, jobs=jobs, port=port, say=say))  # fmt: skip


@app.command()
def validate(scenario: ScenarioArg, overrides: SetOpt = None) -> None:
    """Check SCENARIO and report every problem (exit 2 if any)."""
    sc = _load(scenario, overrides)
    _out().print(f"{scenario}: ok ({sc.name}, {len(sc.sources)} sources, {len(sc.personas)} personas)")


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files."""
    from funnelsim.model.scenario import Scenario

    sys.stdout.write(json.dumps(Scenario.model_json_schema(by_alias=True), indent=2) + "\n")


def _version(value: bool) -> None:
    if value:
        from funnelsim import __version__

        _out().print(f"funnelsim {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Simulate the sales and marketing funnel to plan one shared revenue target."""


def main() -> None:
    # SIGTERM stops a run as Ctrl-C does, and a second signal cannot cut short the clean-up.
    with stop_on_signals():
        try:
            app()
        except SystemExit as exc:
            # Typer turns an interrupt that lands outside every _guard (while printing, say)
            # into exit 130; SIGTERM's is 143.
            cause = _interrupt_behind(exc) if exc.code == EXIT_INTERRUPTED else None
            if cause is None:
                raise
            raise SystemExit(interruption_of(cause).exit_code) from None


def _interrupt_behind(exc: BaseException) -> KeyboardInterrupt | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
