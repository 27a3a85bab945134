"""Start-up stays cheap: the command line imports numpy, pandas, scipy and matplotlib only when a command
needs them, never to parse its arguments, print its help or its version (benchmarks/startup.py times it;
here only which modules are imported is checked, never how long it takes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from funnelsim import cli

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numpy", "pandas", "scipy", "matplotlib")


def _imported(*args: str) -> set[str]:
    """Every module a fresh ``python -X importtime ARGS`` imports (names from its report, not times)."""
    done = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }


def test_importing_the_cli_imports_no_heavy_library() -> None:
    code = f"import funnelsim.cli, sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["run", "--help"], ["plan", "--help"]], ids=" ".join)
def test_help_and_version_import_no_heavy_library(args: list[str]) -> None:
    imported = _imported("-m", "funnelsim", *args)
    assert "funnelsim.cli" in imported  # the report is read right
    assert not [m for m in HEAVY if m in imported]


def test_the_cli_copy_of_the_planner_defaults_is_the_planners() -> None:
    """``plan --help`` shows the planner's levers and work budget without importing the planner."""
    from funnelsim.studies import planner

    assert cli.LEVERS == planner.LEVERS
    assert (cli.MAX_EVALUATIONS, cli.MAX_VERIFICATIONS) == (planner.MAX_EVALUATIONS, planner.MAX_VERIFICATIONS)


def test_every_bad_input_error_is_where_the_cli_looks_for_it() -> None:
    """The CLI finds the errors it turns into exit 2 by module and name (so that it need not import them)."""
    import importlib

    for module, name in cli.BAD_INPUT:
        error = getattr(importlib.import_module(module), name)
        assert issubclass(error, Exception) and error.__module__ == module, (module, name)
