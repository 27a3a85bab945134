"""Command line: argument parsing and output only; every command calls into the library.

Exit codes: 0 ok, 1 the run failed, 2 bad input (scenario, override or option).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import __version__
from .engine import simulate
from .metrics import summarize_run
from .output import OutputError, check_target, write_run
from .results import resolve_seed
from .scenario import Scenario, ScenarioError, load_scenario

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Simulate the sales and marketing funnel to plan one shared revenue target.",
)
# soft_wrap: messages stay on one line in logs and CI, where grep must find them.
err = Console(stderr=True, soft_wrap=True, highlight=False)
out = Console(soft_wrap=True)

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2

T = TypeVar("T")

ScenarioArg = Annotated[Path, typer.Argument(help="Scenario file (TOML).", show_default=False)]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a value: dotted.path=value (repeatable).", show_default=False),
]


def _guard(action: Callable[[], T]) -> T:
    """Run ``action``; turn bad input and failures into messages and exit codes."""
    try:
        return action()
    except (ScenarioError, OutputError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None
    except Exception as exc:  # a bug or an environment problem: say it, no traceback
        err.print(f"[bold red]run failed:[/] {type(exc).__name__}: {escape(str(exc))}")
        raise typer.Exit(EXIT_FAILURE) from None


def _load(path: Path, overrides: list[str] | None) -> Scenario:
    return _guard(lambda: load_scenario(path, overrides or ()))


@app.command()
def run(
    scenario: ScenarioArg,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the scenario's).", min=0)] = None,
    overrides: SetOpt = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write tables, figures and manifest to this folder.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out folder.")] = False,
    figure_format: Annotated[str, typer.Option("--format", help="Figure format: png or svg.")] = "png",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON document.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No narration.")] = False,
) -> None:
    """Simulate one run of SCENARIO and print what happened."""
    sc = _load(scenario, overrides)
    if out_dir is not None:
        _guard(lambda: check_target(out_dir, force, figure_format))  # refuse before simulating
    narrate = not (quiet or as_json)
    run_seed = resolve_seed(sc, seed)
    if narrate:
        err.print(f"{sc.name}: {sc.horizon_days:g} days from {sc.start_date}, seed {run_seed}")
    result = _guard(lambda: simulate(sc, seed=run_seed))
    stats = _guard(lambda: summarize_run(result))
    if out_dir is not None:
        written = _guard(lambda: write_run(result, out_dir, figure_format=figure_format, force=force))
        if narrate:
            err.print(f"wrote {written}")
    if as_json:
        doc = {"scenario": sc.name, "seed": result.seed, "currency": sc.currency, "summary": stats}
        sys.stdout.write(json.dumps(doc, indent=2, default=_json_number) + "\n")
        return
    _print_summary(stats, sc.currency)


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
    app()
