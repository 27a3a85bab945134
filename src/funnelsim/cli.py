"""Command line: argument parsing and output only; every command calls into the library.

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

import json
import math
import sys
import typing
from collections.abc import Callable, Iterator
from concurrent.futures import BrokenExecutor, Executor
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from funnelsim import __version__
from funnelsim.calibrate.readers import CalibrationError
from funnelsim.engine import simulate
from funnelsim.model.scenario import Scenario, ScenarioError, load_scenario
from funnelsim.report.folder import (
    OutputError,
    OutputWriteError,
    check_target,
    estimate_output_bytes,
    write_comparison,
    write_plan,
    write_replications,
    write_run,
    write_sensitivity,
    write_sweep,
)
from funnelsim.run.metrics import summarize_run
from funnelsim.run.result import resolve_seed
from funnelsim.studies.compare import Attribution, CompareError, Comparison
from funnelsim.studies.compare import compare as make_comparison
from funnelsim.studies.planner import (
    LEVERS,
    MAX_EVALUATIONS,
    Lever,
    Period,
    Plan,
    PlanDiagnostics,
    PlanError,
    PlanInfeasible,
)
from funnelsim.studies.planner import plan as make_plan
from funnelsim.studies.replications import MAX_RUNS, MonteCarloError, Replications, interruption_of, stop_on_signals
from funnelsim.studies.replications import executor as mc_executor
from funnelsim.studies.replications import run as mc_run
from funnelsim.studies.sweep import Sensitivity, Sweep, SweepError, parse_param
from funnelsim.studies.sweep import sensitivity as make_sensitivity
from funnelsim.studies.sweep import sweep as make_sweep
from funnelsim.studies.workload import UNLIMITED, Budget, Workload, WorkloadTooLarge, estimate

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Simulate the sales and marketing funnel to plan one shared revenue target.",
)
# soft_wrap: messages stay on one line in logs and CI, where grep must find them.
err = Console(stderr=True, soft_wrap=True, highlight=False)
out = Console(soft_wrap=True)

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_INFEASIBLE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 3, 130, 143

T = TypeVar("T")

ScenarioArg = Annotated[Path, typer.Argument(help="Scenario file (TOML).", show_default=False)]
JobsOpt = Annotated[int, typer.Option(help="Worker processes for the replications.", min=1)]
SchedulerOpt = Annotated[
    str | None, typer.Option(help="Dask scheduler address (tcp://host:port), or 'local' for a local cluster.")
]
SeedOpt = Annotated[int | None, typer.Option(help="Random seed (default: the scenario's).", min=0)]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace an existing --out folder.")]
FormatOpt = Annotated[str, typer.Option("--format", help="Figure format: png or svg.")]
QuietOpt = Annotated[bool, typer.Option("-q", "--quiet", help="No narration.")]
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


def _guard(action: Callable[[], T]) -> T:
    """Run ``action``; turn bad input and failures into messages and exit codes."""
    try:
        return action()
    except PlanInfeasible as exc:
        err.print(f"[bold red]infeasible:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_INFEASIBLE) from None
    except OutputWriteError as exc:  # after the work: the environment failed, not the input
        err.print(f"[bold red]run failed:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_FAILURE) from None
    except (
        ScenarioError,
        OutputError,
        MonteCarloError,
        PlanError,
        CompareError,
        CalibrationError,
        SweepError,
        WorkloadTooLarge,
    ) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or a dead worker (montecarlo.interruption_of)
        stop = interruption_of(exc)
        if stop.cause == "worker died":
            err.print(f"[bold red]run failed:[/] {escape(stop.detail)}")
        else:
            err.print("interrupted" if stop.cause == "SIGINT" else f"interrupted ({stop.cause})")
        raise typer.Exit(stop.exit_code) from None
    except BrokenExecutor as exc:
        err.print(f"[bold red]run failed:[/] a worker process died ({escape(str(exc))})")
        raise typer.Exit(EXIT_FAILURE) from None
    except Exception as exc:  # a bug or an environment problem: say it, no traceback
        err.print(f"[bold red]run failed:[/] {type(exc).__name__}: {escape(str(exc))}")
        raise typer.Exit(EXIT_FAILURE) from None


@contextmanager
def executor(jobs: int = 1, scheduler: str | None = None) -> Iterator[Executor]:
    """:func:`funnelsim.studies.replications.executor`, with a one-line warning on stderr when --jobs is capped."""
    with mc_executor(jobs, scheduler, warn=lambda message: err.print(f"[yellow]warning:[/] {escape(message)}")) as pool:
        yield pool


def _load(path: Path, overrides: list[str] | None) -> Scenario:
    return _guard(lambda: load_scenario(path, overrides or ()))


# Work estimated to take longer than this is announced before it starts.
ANNOUNCE_SECONDS = 5.0


def _budget(allow_large: bool, narrate: bool) -> Budget:
    """The work allowed to a command: refused above the limits unless --allow-large; long work announced."""

    def announce(work: Workload, what: str) -> None:
        if narrate and work.seconds >= ANNOUNCE_SECONDS:
            err.print(f"{what}: {work.describe()}")

    return Budget(allow_large=allow_large, announce=announce)


@app.command()
def run(
    scenario: ScenarioArg,
    seed: SeedOpt = None,
    overrides: SetOpt = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write tables, figures and manifest to this folder.")
    ] = None,
    force: ForceOpt = False,
    figure_format: FormatOpt = "png",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON document.")] = False,
    quiet: QuietOpt = False,
    runs: Annotated[int, typer.Option(help="Monte Carlo: number of replications.", min=1)] = 1,
    jobs: JobsOpt = 1,
    scheduler: SchedulerOpt = None,
    replication: Annotated[
        int | None, typer.Option(help="Re-run replication I of --seed alone (same numbers as in a batch).", min=0)
    ] = None,
    goal: Annotated[
        str | None, typer.Option(help="Revenue goal for P(goal), e.g. 12M, 750k, 12000000.", show_default=False)
    ] = None,
    precision: Annotated[
        float | None,
        typer.Option(help="Add replications until the 95% CI of mean revenue is within this share of the mean."),
    ] = None,
    max_runs: Annotated[int | None, typer.Option(help="Upper bound of replications for --precision.", min=1)] = None,
    allow_large: AllowLargeOpt = False,
) -> None:
    """Simulate SCENARIO once, or --runs N times (Monte Carlo), and print what happened."""
    sc = _load(scenario, overrides)
    goal_amount = _guard(lambda: parse_amount(goal, "--goal")) if goal is not None else None
    monte_carlo = runs > 1 or precision is not None or max_runs is not None
    most = ((max_runs or MAX_RUNS) if precision is not None else runs) if monte_carlo else 1
    narrate = not (quiet or as_json)
    budget = _budget(allow_large, narrate)
    what = "this Monte Carlo run" if monte_carlo else "this run"
    _guard(lambda: budget.admit(estimate(sc, most, jobs if monte_carlo else 1), what))  # before anything else
    if out_dir is not None:  # refuse before simulating
        size = _guard(lambda: estimate_output_bytes(sc, most))
        _guard(lambda: check_target(out_dir, force, figure_format, expected_bytes=size))
    run_seed = resolve_seed(sc, seed)
    if monte_carlo:
        if replication is not None:
            _guard(lambda: _bad("--replication re-runs one replication; it cannot be combined with --runs"))
        reps = _monte_carlo(sc, run_seed, runs, jobs, scheduler, goal_amount, precision, max_runs, narrate, as_json)
        if out_dir is not None and reps.completed:
            written = _guard(lambda: write_replications(reps, out_dir, figure_format=figure_format, force=force))
            if narrate:
                err.print(f"wrote {written}{'' if reps.complete else ' (incomplete)'}")
        if reps.interruption is not None:
            raise typer.Exit(reps.interruption.exit_code)
        return
    which = replication or 0
    if narrate:
        rep_note = f", replication {which}" if which else ""
        err.print(f"{sc.name}: {sc.horizon_days:g} days from {sc.start_date}, seed {run_seed}{rep_note}")
    result = _guard(lambda: simulate(sc, seed=run_seed, replication=which))
    stats = _guard(lambda: summarize_run(result))
    if out_dir is not None:
        written = _guard(lambda: write_run(result, out_dir, figure_format=figure_format, force=force))
        if narrate:
            err.print(f"wrote {written}")
    if as_json:
        doc = {"scenario": sc.name, "seed": result.seed, "currency": sc.currency, "summary": stats}
        if which:
            doc["replication"] = which
        sys.stdout.write(json.dumps(doc, indent=2, default=_json_number) + "\n")
        return
    _print_summary(stats, sc.currency)


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
    as_json: bool,
) -> Replications:
    if narrate:
        where = f"Dask {scheduler}" if scheduler else f"{jobs} process{'es' if jobs > 1 else ''}"
        err.print(f"{sc.name}: {sc.horizon_days:g} days from {sc.start_date}, seed {seed}, replications on {where}")
    columns = (
        TextColumn("replications"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("elapsed"),
        TimeElapsedColumn(),
        TextColumn("remaining"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True, disable=not (narrate and err.is_terminal)) as bar:
        task = bar.add_task("runs", total=max_runs if precision is not None else runs)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

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
                    progress=progress,
                    budget=UNLIMITED,  # judged whole by the caller, before the output checks
                )

        reps = _guard(go)
    if as_json:
        sys.stdout.write(json.dumps(reps.to_json(), indent=2, default=_json_number) + "\n")
    else:
        _print_replications(reps)
    message = reps.stop_message()
    if message is not None:
        err.print(escape(message))
    return reps


def _print_replications(reps: Replications) -> None:
    cur = reps.scenario.currency
    table = Table(
        title=f"{reps.completed} replications (95% CI of the mean; percentiles across runs)", title_justify="left"
    )
    for name in ("metric", "mean", "95% CI", "P10", "P50", "P90"):
        table.add_column(name, justify="left" if name == "metric" else "right")
    summary = reps.summary().set_index("metric")
    shown = [
        ("leads", "leads", "{:,.0f}"),
        ("MQLs", "mqls", "{:,.0f}"),
        ("SQLs", "sqls", "{:,.0f}"),
        ("opportunities", "opportunities", "{:,.0f}"),
        ("wins", "wins", "{:,.0f}"),
        (f"revenue ({cur})", "revenue", "money"),
        ("win rate", "win_rate", "{:.1%}"),
        ("median cycle, days", "median_cycle_days", "{:.0f}"),
        (f"CAC ({cur})", "cac", "money"),
    ]
    for label, key, fmt in shown:
        row = summary.loc[key]
        cells = [row["mean"], row["ci_low"], row["ci_high"], row["p10"], row["p50"], row["p90"]]
        f = [_short(x, fmt) for x in cells]
        table.add_row(label, f[0], f"{f[1]}–{f[2]}", f[3], f[4], f[5])
    out.print(table)
    stop = reps.stopped
    if reps.precision is not None:
        width = reps.to_json()["revenue_ci_half_width_relative"]
        shown_width = "n/a" if width is None else f"{width:.2%}"
        stop += f" (CI half-width {shown_width} of mean revenue; asked {reps.precision:.2%})"
    out.print(f"runs:             {reps.completed} of {reps.requested} ({stop})")
    p = reps.p_goal()
    if p is not None and reps.goal is not None:
        out.print(
            f"P(revenue >= {reps.goal:,.0f} {cur}): {_pct(p['estimate'])} "
            f"(95% CI {_pct(p['ci_low'])} – {_pct(p['ci_high'])}, {p['hits']} of {p['n']} runs)"
        )


def _short(x: float, fmt: str) -> str:
    """Compact cells for the terminal (full precision is in --json and the CSV files)."""
    if not math.isfinite(x):
        return "n/a"
    if fmt != "money":
        return fmt.format(x)
    for size, suffix in ((1e9, "bn"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= size:
            return f"{x / size:.3g}{suffix}"
    return f"{x:.0f}"


def parse_amount(text: str, option: str = "amount") -> float:
    """``12M``, ``750k``, ``1.5bn``, ``12,000,000`` or ``12000000`` as a number."""
    cleaned = text.strip().replace(",", "").replace("_", "")
    multipliers = {"k": 1e3, "m": 1e6, "mm": 1e6, "b": 1e9, "bn": 1e9}
    number, suffix = cleaned, ""
    for end in sorted(multipliers, key=len, reverse=True):
        if cleaned.lower().endswith(end):
            number, suffix = cleaned[: -len(end)], end
            break
    try:
        value = float(number) * multipliers.get(suffix, 1.0)
    except ValueError:
        raise MonteCarloError(f"{option}: expected an amount such as 12M, 750k or 12000000, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise MonteCarloError(f"{option}: must be a non-negative amount, got {text!r}")
    return value


def _json_number(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _print_summary(stats: dict[str, float], currency: str) -> None:
    table = Table(title="Funnel", title_justify="left")
    table.add_column("stage")
    table.add_column("volume", justify="right")
    table.add_column("conversion from previous", justify="right")
    rows = [
        ("leads", "leads", None),
        ("MQLs", "mqls", "lead_to_mql"),
        ("SQLs", "sqls", "mql_to_sql"),
        ("opportunities", "opportunities", "sql_to_opportunity"),
        ("wins", "wins", "opportunity_to_win"),
    ]
    for label, key, conv in rows:
        table.add_row(label, f"{stats[key]:,.0f}", "" if conv is None else _pct(stats[conv]))
    out.print(table)
    out.print(f"revenue booked:   {stats['revenue']:,.0f} {currency}")
    if "pipeline_revenue" in stats:  # the scenario starts from an open pipeline
        out.print(
            f"  from pipeline:  {stats['pipeline_revenue']:,.0f} {currency} "
            f"({stats['pipeline_wins']:,.0f} of {stats['pipeline_deals']:,.0f} deals open on day 0 won, "
            f"{stats['pipeline_losses']:,.0f} lost)"
        )
    out.print(f"win rate:         {_pct(stats['win_rate'])} of closed opportunities")
    out.print(f"average deal:     {stats['average_deal_size']:,.0f} {currency}")
    out.print(f"median cycle:     {stats['median_cycle_days']:.0f} days (opportunity to win)")
    out.print(f"median lead->win: {stats['median_lead_to_win_days']:.0f} days")
    out.print(
        f"cost:             {stats['total_cost']:,.0f} {currency} "
        f"(marketing {stats['marketing_cost']:,.0f}, sales {stats['sales_cost']:,.0f}); "
        f"CAC {stats['cac']:,.0f}"
    )
    out.print(
        f"utilisation:      SDRs {_pct(stats['sdr_utilisation'])}, AEs {_pct(stats['ae_utilisation'])} (time-weighted)"
    )


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}%"


@app.command()
def plan(
    scenario: ScenarioArg,
    goal: Annotated[str, typer.Option(help="Revenue to close in the period, e.g. 12M, 750k, 12000000.")],
    confidence: Annotated[float, typer.Option(help="Required probability of reaching the goal.")] = 0.8,
    period: Annotated[
        str | None, typer.Option(help="Whole months START:END, e.g. 2027-01-01:2027-12-31 (default: the horizon).")
    ] = None,
    lever: Annotated[str, typer.Option(help=f"What the plan may change: {', '.join(LEVERS)}.")] = "leads",
    runs: Annotated[int, typer.Option(help="Replications per candidate (same seeds for all).", min=1)] = 100,
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
    figure_format: FormatOpt = "png",
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as one JSON document.")] = False,
    quiet: QuietOpt = False,
    max_evaluations: Annotated[
        int,
        typer.Option(help="Work budget of the search: at most this many candidates of --runs replications.", min=2),
    ] = MAX_EVALUATIONS,
    allow_large: AllowLargeOpt = False,
) -> None:
    """Work back from a revenue GOAL to monthly targets for marketing and sales (exit 3 if infeasible)."""
    sc = _load(scenario, overrides)
    amount = _guard(lambda: parse_amount(goal, "--goal"))
    window = _guard(lambda: Period.parse(period)) if period is not None else None
    if lever not in LEVERS:
        _guard(lambda: _bad(f"--lever must be one of {', '.join(LEVERS)}, got {lever!r}"))
    if out_dir is not None:
        _guard(lambda: check_target(out_dir, force, figure_format))
    narrate = not (quiet or as_json)
    if narrate:
        err.print(f"{sc.name}: planning {amount:,.0f} {sc.currency} at {confidence:.0%} confidence, lever {lever}")
    with err.status("planning", spinner="dots") if narrate and err.is_terminal else _nothing() as status:

        def progress(text: str) -> None:
            if status is not None:
                status.update(text)

        def go() -> tuple[Plan, PlanDiagnostics]:
            with executor(jobs, scheduler) as pool:
                return make_plan(
                    sc,
                    amount,
                    confidence,
                    period=window,
                    lever=typing.cast(Lever, lever),
                    runs=runs,
                    seed=seed,
                    pool=pool,
                    lead_in_months=lead_in,
                    progress=progress,
                    budget=_budget(allow_large, narrate),
                    max_evaluations=max_evaluations,
                )

        result, diagnostics = _guard(go)
    if out_dir is not None:
        text = scenario.read_text(encoding="utf-8")
        written = _guard(
            lambda: write_plan(
                result,
                diagnostics,
                out_dir,
                source_text=text,
                overrides=tuple(overrides or ()),
                figure_format=figure_format,
                force=force,
            )
        )
        if narrate:
            err.print(f"wrote {written}")
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
    else:
        _print_plan(result, diagnostics)


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def _print_plan(p: Plan, d: PlanDiagnostics) -> None:
    cur = p.scenario.currency
    out.print(f"Plan: {p.goal:,.0f} {cur} closed in {p.period} with {p.confidence:.0%} confidence (lever: {p.lever})")
    sheet = p.sheet
    table = Table(
        title="Joint targets per month: marketing (MKT), hand-off (SHARED), sales",
        title_justify="left",
        caption="* lead-in month: builds the pipeline for the period",
        caption_justify="left",
    )
    columns = [
        ("month", None),
        ("leads\nMKT", "leads"),
        ("MQLs\nMKT", "mqls"),
        ("SQLs\nSHARED", "sqls"),
        ("opps\nSALES", "opportunities"),
        ("wins\nSALES", "wins"),
        (f"revenue\n{cur}", "revenue"),
        ("AEs\nramped", None),
        ("SDRs", None),
    ]
    for name, _ in columns:
        table.add_column(name, justify="left" if name == "month" else "right", no_wrap=True)
    # Marketing's leads: every source but the deals AEs prospect themselves.
    wide = sheet[sheet["source"] != "prospecting"].groupby(["month", "stage"])["target"].sum().unstack()
    heads = p.headcount.set_index("month")
    for month in wide.index:
        lead_in = heads.loc[month, "phase"] != "period"
        cells = [f"{month}{'*' if lead_in else ''}"]
        cells += [f"{wide.loc[month, key]:,.0f}" for _, key in columns[1:6] if key is not None]
        cells += [_short(wide.loc[month, "revenue"], "money")]
        cells += [f"{heads.loc[month, 'aes']:.1f}", f"{heads.loc[month, 'sdrs']:.0f}"]
        table.add_row(*cells, style="dim" if lead_in else None)
    out.print(table)
    per_month = sheet[(sheet["stage"] == "leads") & (sheet["phase"] == "period")]
    out.print(
        f"marketing:        leads x{p.lead_multiplier:.3f} of today's volume, "
        f"{per_month['target'].sum():,.0f} leads in the period (+ {p.lead_in_months} months lead-in)"
    )
    hires = f"+{p.extra_aes} AEs hired on {p.scenario.start_date}" if p.extra_aes else "no extra AEs"
    out.print(f"sales:            {hires}, {p.sdrs} SDRs")
    inside = heads[heads["phase"] == "period"]
    short = inside[(inside["aes_needed"] > inside["aes"]) | (inside["sdrs_needed"] > inside["sdrs"])]
    out.print(
        f"capacity check:   busiest month needs {inside['aes_needed'].max():.1f} AEs and "
        f"{inside['sdrs_needed'].max():.1f} SDRs at 80% utilisation (Little's law); "
        + (f"short in {len(short)} month(s): see headcount.csv" if len(short) else "the plan's headcount covers it")
    )
    terms = p.handoff_terms
    out.print(
        f"hand-off terms:   follow up {terms['follow_up_rate']:.0%} of MQLs, mean response "
        f"{terms['response_time_hours_mean']:.1f} h, SQL bar {terms['sql_threshold']:g}"
    )
    pg = p.p_goal
    out.print(
        f"confidence:       goal reached in {_pct(pg['estimate'])} of {pg['n']} runs "
        f"(95% CI {_pct(pg['ci_low'])} – {_pct(pg['ci_high'])}); revenue P10 {_short(p.revenue['p10'], 'money')}, "
        f"P50 {_short(p.revenue['p50'], 'money')}, P90 {_short(p.revenue['p90'], 'money')}"
    )
    out.print(
        f"cost in period:   {p.cost['period_total']:,.0f} {cur} (marketing {p.cost['marketing']:,.0f}); "
        f"CAC {p.cost['cac']:,.0f}"
    )
    out.print(
        f"analytic plan:    leads x{d.analytic_multiplier:.3f} (no queues); simulation needed x{p.lead_multiplier:.3f}"
    )


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
    figure_format: FormatOpt = "png",
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as one JSON document.")] = False,
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
) -> None:
    """Run SCENARIOS on the same seeds and show each metric's paired difference against the first.

    With --attribute (two scenarios), every combination of the levers that differ is
    simulated too, and the revenue gap is split by Shapley values (docs/model.md).
    """
    loaded = [_load(path, None) for path in scenarios]
    named = _guard(lambda: _levers(lever or []))
    if out_dir is not None:
        _guard(lambda: check_target(out_dir, force, figure_format))
    run_seed = resolve_seed(loaded[0], seed)
    narrate = not (quiet or as_json)
    if narrate:
        err.print(f"comparing {len(loaded)} scenarios on {runs} common replications of seed {run_seed}")

    def go() -> Comparison:
        with executor(jobs, scheduler) as pool, _replication_bar(narrate) as progress:
            return make_comparison(
                loaded,
                runs,
                run_seed,
                pool,
                attribute_levers=attribute,
                levers=named,
                progress=progress,
                budget=_budget(allow_large, narrate),
            )

    result = _guard(go)
    if out_dir is not None:
        written = _guard(lambda: write_comparison(result, out_dir, figure_format=figure_format, force=force))
        if narrate:
            err.print(f"wrote {written}")
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return
    cur = loaded[0].currency
    table = Table(
        title=f"{runs} common replications; difference = scenario - {result.labels[0]} (paired, 95% CI)",
        title_justify="left",
    )
    for name in ("metric", "scenario", "mean", "difference", "95% CI", "CI vs unpaired"):
        table.add_column(name, justify="left" if name in ("metric", "scenario") else "right")
    shown = {"revenue": f"revenue ({cur})", "wins": "wins", "sqls": "SQLs", "mqls": "MQLs", "cac": f"CAC ({cur})"}
    rows = result.table(list(shown))
    for row in rows.to_dict("records"):
        first = row["scenario"] == result.labels[0]
        fmt = "money" if row["metric"] in ("revenue", "cac") else "{:,.0f}"
        table.add_row(
            shown[row["metric"]],
            row["scenario"],
            _short(row["mean"], fmt),
            "" if first else _short(row["difference"], fmt),
            "" if first else f"{_short(row['diff_ci_low'], fmt)} – {_short(row['diff_ci_high'], fmt)}",
            "" if first else f"{row['narrower']:.1f}x narrower",
        )
    out.print(table)
    if result.attribution is not None:
        _print_attribution(result.attribution, cur)


def _levers(specs: list[str]) -> dict[str, list[str]]:
    """``--lever NAME=PATH[,PATH...]`` options as ``{name: [path, ...]}``."""
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


def _print_attribution(attribution: Attribution, currency: str) -> None:
    a, b = attribution.labels
    table = Table(
        title=f"Revenue gap {b} - {a} by lever (Shapley values on common replications, 95% CI)", title_justify="left"
    )
    for name in ("lever", "contribution", "95% CI", "share", "alone", "parameters"):
        table.add_column(name, justify="left" if name in ("lever", "parameters") else "right")
    for row in attribution.table().to_dict("records"):
        table.add_row(
            row["lever"],
            _short(row["contribution"], "money"),
            f"{_short(row['ci_low'], 'money')} – {_short(row['ci_high'], 'money')}",
            _pct(row["share_of_gap"]),
            "" if row["lever"] == "total" else _short(row["alone"], "money"),
            row["parameters"],
        )
    out.print(table)
    out.print(f"amounts in {currency}; alone: switching only that lever in {a}")


@app.command()
def calibrate(
    opportunities: Annotated[Path, typer.Option(help="Opportunities (deals) export, CSV.", show_default=False)],
    out_path: Annotated[
        Path,
        typer.Option("--out", help="Scenario file to write (NAME.toml; also NAME.pipeline.csv, NAME.calibration/)."),
    ],
    leads: Annotated[Path | None, typer.Option(help="Leads (contacts) export, CSV.")] = None,
    history: Annotated[Path | None, typer.Option(help="Stage history export (one row per stage change), CSV.")] = None,
    crm_format: Annotated[
        str | None, typer.Option("--format", help="salesforce, hubspot or generic (default: detected from headers).")
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option("--map", help="COLUMN=FIELD, or STAGE LABEL=won|lost|open (repeatable).", show_default=False),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Date of the export, YYYY-MM-DD (default: day after the latest date).")
    ] = None,
    base: Annotated[
        Path | None, typer.Option(help="Scenario for everything not calibrated (default: baseline).")
    ] = None,
    dayfirst: Annotated[
        bool | None, typer.Option("--dayfirst/--no-dayfirst", help="Slash dates are DD/MM (or MM/DD) when ambiguous.")
    ] = None,
    date_format: Annotated[
        str | None, typer.Option("--date-format", help="strptime format for every date column.")
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="A messy row is an error (exit 2) instead of rejected.")
    ] = False,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Fit a scenario to CRM exports: cycle, win rate, deal size, volumes, reps and the open pipeline."""
    from funnelsim.calibrate import calibrate as fit_scenario
    from funnelsim.calibrate.readers import REASONS
    from funnelsim.report.calibration import check_outputs, write_calibration

    _guard(lambda: check_outputs(out_path, force))
    stem = out_path.with_suffix("").name
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
            pipeline_file=f"{stem}.pipeline.csv",
            name=stem,
        )
    )
    written = _guard(lambda: write_calibration(cal, out_path, force=force))
    if quiet:
        return
    for t in (cal.opportunities, cal.leads, cal.history):
        if t is None:
            continue
        dates = ", ".join(f"{c} {f}" for c, f in t.date_conventions.items())
        line = f"{t.path.name}: {t.dialect} ({t.dialect_how}); dates {dates}; "
        line += f"{t.rows_read} rows read, {t.rows_read - len(t.issues)} used, {len(t.issues)} rejected"
        err.print(escape(line))
        for reason, count in t.rejected.items():
            lines = [str(i.line) for i in t.issues if i.reason == reason][:3]
            more = ", ..." if count > 3 else ""
            err.print(escape(f"  {count} {REASONS[str(reason)]} (lines {', '.join(lines)}{more})"))
    b, w = cal.best, cal.win
    others = ", ".join(f"{f.family} {f.aic:.1f}" for f in cal.fits[1:])
    out.print(f"as of:            {cal.as_of}")
    out.print(
        f"sales cycle:      {b.family} by AIC ({b.aic:.1f}; {others}); mean {b.mean:.1f} d "
        f"(95% CI {b.mean_ci[0]:.1f}-{b.mean_ci[1]:.1f}); closed deals only would say {cal.naive_closed_only.mean:.1f}"
    )
    out.print(
        f"win rate:         competing risks {_pct(w['competing_risks'])} (95% CI {_pct(w['ci_low'])}-"
        f"{_pct(w['ci_high'])}) vs naive won/(won+lost) {_pct(w['naive'])}"
    )
    out.print(f"pipeline:         {len(cal.pipeline)} deals open on {cal.as_of}")
    if "stages.csv" in cal.tables:
        from funnelsim.report.calibration import stages_line

        out.print(escape(f"time in stage:    {stages_line(cal.tables['stages.csv'])}"))
    err.print(f"wrote {written[0]}, {written[1].name}, {written[2].name}/")


ParamSpecOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        help="Parameter to vary: dotted.path=lo:hi:n or dotted.path=v1,v2,... (one or two; repeatable).",
        show_default=False,
    ),
]


@contextmanager
def _replication_bar(narrate: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar of replications over a whole job (a grid, a comparison), on stderr and only in a terminal."""
    columns = (
        TextColumn("replications"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("elapsed"),
        TimeElapsedColumn(),
        TextColumn("remaining"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True, disable=not (narrate and err.is_terminal)) as bar:
        task = bar.add_task("runs", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield progress


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
    figure_format: FormatOpt = "png",
    as_json: Annotated[bool, typer.Option("--json", help="Print the sweep as one JSON document.")] = False,
    quiet: QuietOpt = False,
    allow_large: AllowLargeOpt = False,
) -> None:
    """Run SCENARIO over a grid of one or two parameters, on the same seeds at every point."""
    sc = _load(scenario, overrides)
    specs = _guard(lambda: [parse_param(p) for p in param or []])
    if out_dir is not None:
        _guard(lambda: check_target(out_dir, force, figure_format))
    run_seed = resolve_seed(sc, seed)
    narrate = not (quiet or as_json)
    if narrate:
        points = math.prod(len(values) for _, values in specs)
        err.print(f"{sc.name}: sweeping {', '.join(p for p, _ in specs)} over {points} points, "
                  f"{runs} common replications of seed {run_seed} each")  # fmt: skip
    with _replication_bar(narrate) as progress:

        def go() -> Sweep:
            with executor(jobs, scheduler) as pool:
                return make_sweep(
                    sc,
                    specs,
                    runs,
                    run_seed,
                    pool,
                    metric=metric,
                    progress=progress,
                    budget=_budget(allow_large, narrate),
                )

        result = _guard(go)
    if out_dir is not None:
        written = _guard(lambda: write_sweep(result, out_dir, metric=metric, figure_format=figure_format, force=force))
        if narrate:
            err.print(f"wrote {written}")
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(metric), indent=2) + "\n")
        return
    _print_sweep(result, metric)


def _print_sweep(result: Sweep, metric: str) -> None:
    fmt = _metric_format(metric)
    best = result.optimum(metric)
    diffs = result.differences(metric, against=best.point).set_index("point")
    rows = result.table(metric)
    title = f"{result.n_runs} common replications per point; difference = point - best (paired, 95% CI)"
    table = Table(title=title, title_justify="left")
    # A long path breaks at its dots, so a narrow terminal keeps every column readable.
    for path in result.parameters:
        table.add_column(path.replace(".", ".\n"), justify="right")
    for name in (f"{metric} mean", "95% CI", "P10–P90", "vs best ± 95% CI"):
        table.add_column(name, justify="right")
    for row in rows.to_dict("records"):
        d = diffs.loc[row["point"]]
        is_best = row["point"] == best.point
        table.add_row(
            *[_value(row[p]) for p in result.parameters],
            _short(row[f"{metric}_mean"], fmt),
            f"{_short(row[f'{metric}_ci_low'], fmt)}–{_short(row[f'{metric}_ci_high'], fmt)}",
            f"{_short(row[f'{metric}_p10'], fmt)}–{_short(row[f'{metric}_p90'], fmt)}",
            "best" if is_best else _plus_minus(d["difference"], d["paired_half_width"], fmt),
            style="bold" if is_best else None,
        )
    out.print(table)
    where = ", ".join(f"{p}={_value(v)}" for p, v in best.values.items())
    shape = "inside the range" if best.interior else "at the edge of the range: widen it to find the optimum"
    worse = int(best.neighbours["significant"].sum())
    out.print(
        f"best {metric}:  {_short(best.mean, fmt)} at {where} "
        f"(95% CI {_short(best.ci_low, fmt)}–{_short(best.ci_high, fmt)}), {shape}; "
        f"{worse} of {len(best.neighbours)} neighbouring points significantly "
        f"{'lower' if best.maximize else 'higher'}"
    )


def _plus_minus(x: float, half: float, fmt: str) -> str:
    # Paired intervals are symmetric: "-1.5M ± 160k" says as much as two bounds, in half the width.
    return f"{_short(x, fmt)} ± {_short(half, fmt)}"


def _metric_format(metric: str) -> str:
    if metric in ("revenue", "average_deal_size", "revenue_per_ae") or "cost" in metric or metric == "cac":
        return "money"
    if "rate" in metric or "_to_" in metric or "utilisation" in metric:
        return "{:.1%}"
    return "{:,.3g}"


def _value(x: Any) -> str:
    if not isinstance(x, float):
        return str(x)
    return f"{x:,.0f}" if abs(x) >= 1e4 else f"{x:.4g}"


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
    figure_format: FormatOpt = "png",
    as_json: Annotated[bool, typer.Option("--json", help="Print the sensitivity as one JSON document.")] = False,
    quiet: QuietOpt = False,
    allow_large: AllowLargeOpt = False,
) -> None:
    """Move each numeric parameter of SCENARIO by -BY and +BY, one at a time, on the base's seeds."""
    sc = _load(scenario, overrides)
    share = _guard(lambda: parse_share(by, "--by"))
    if out_dir is not None:
        _guard(lambda: check_target(out_dir, force, figure_format))
    run_seed = resolve_seed(sc, seed)
    narrate = not (quiet or as_json)
    if narrate:
        err.print(f"{sc.name}: {metric} sensitivity to ±{share:.0%} of each parameter, "
                  f"{runs} common replications of seed {run_seed}")  # fmt: skip
    with _replication_bar(narrate) as progress:

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
                    progress=progress,
                    budget=_budget(allow_large, narrate),
                )

        result = _guard(go)
    if out_dir is not None:
        written = _guard(lambda: write_sensitivity(result, out_dir, figure_format=figure_format, force=force))
        if narrate:
            err.print(f"wrote {written}")
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return
    _print_sensitivity(result)


def parse_share(text: str, option: str = "share") -> float:
    """``20%`` or ``0.2`` as 0.2; a share strictly between 0 and 1."""
    cleaned = text.strip()
    try:
        value = float(cleaned[:-1]) / 100 if cleaned.endswith("%") else float(cleaned)
    except ValueError:
        raise SweepError(f"{option}: expected a share such as 20% or 0.2, got {text!r}") from None
    if not 0 < value < 1:
        raise SweepError(f"{option} must be between 0 and 100% (exclusive), got {text!r}")
    return value


def _print_sensitivity(result: Sensitivity) -> None:
    metric = result.metric
    fmt = _metric_format(metric)
    rows = result.table()
    base = rows["base_mean"].iloc[0]
    title = (
        f"{metric} at -{result.by:.0%} / +{result.by:.0%} of each parameter; base {_short(base, fmt)}; "
        f"{result.base.completed} common replications (paired 95% CI)"
    )
    table = Table(title=title, title_justify="left")
    for name in ("parameter", "low / high", "effect of low ± 95% CI", "effect of high ± 95% CI", "swing"):
        table.add_column(name, justify="left" if name == "parameter" else "right", overflow="fold")
    for row in rows.to_dict("records"):
        low_half = (row["low_diff_ci_high"] - row["low_diff_ci_low"]) / 2
        high_half = (row["high_diff_ci_high"] - row["high_diff_ci_low"]) / 2
        table.add_row(
            row["parameter"] + (" (mean)" if row["kind"] == "distribution" else ""),
            f"{_value(row['low_value'])} / {_value(row['high_value'])}",
            _plus_minus(row["low_diff"], low_half, fmt),
            _plus_minus(row["high_diff"], high_half, fmt),
            _short(row["swing"], fmt),
        )
    out.print(table)
    noted = rows[rows["note"].str.contains("clipped|not run|not allowed", regex=True)]
    for row in noted.to_dict("records"):
        out.print(f"note: {row['parameter']}: {row['note']}")
    out.print(f"not varied: {len(result.skipped)} keys (see skipped.csv or --json: each with its reason)")


@app.command()
def validate(scenario: ScenarioArg, overrides: SetOpt = None) -> None:
    """Check SCENARIO and report every problem (exit 2 if any)."""
    sc = _load(scenario, overrides)
    out.print(f"{scenario}: ok ({sc.name}, {len(sc.sources)} sources, {len(sc.personas)} personas)")


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files."""
    sys.stdout.write(json.dumps(Scenario.model_json_schema(by_alias=True), indent=2) + "\n")


def _version(value: bool) -> None:
    if value:
        out.print(f"funnelsim {__version__}")
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
