"""The command line as scripts and people see it: shared flags that mean the same on every command
(docs/cli.md), full-width tables when piped, ``--format tsv``, the old spellings still working,
and the estimate and progress display on stderr (only in a terminal; nothing with --quiet)."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

import funnelsim.cli as cli
import funnelsim.report.terminal as terminal
from funnelsim.cli import app
from scaled import TENTH_VOLUME

ROOT = Path(__file__).resolve().parents[1]
BASELINE = str(ROOT / "scenarios" / "baseline.toml")
CRM_EXPORT = str(ROOT / "examples" / "crm" / "opportunities.csv")
# The baseline company at a tenth of its size and a quarter of a year: a run takes well under a second.
SMALL = [f"--set={override}" for override in ("horizon_days=90", *TENTH_VOLUME)]
CONTROL = re.compile(r"\x1b|\r")  # ANSI escapes (colour, cursor moves) and carriage returns (redrawn bars)


@pytest.fixture(autouse=True)
def _terminal_as_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich's environment overrides (FORCE_COLOR, TTY_COMPATIBLE) off: a pipe is a pipe in these tests."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)


def _commands() -> dict[str, Any]:
    """Every command of the app, by name (typer's click objects)."""
    return dict(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def _options(command: Any) -> dict[str, Any]:
    return {name: p for p in command.params for name in (*p.opts, *p.secondary_opts) if name.startswith("--")}


def _documented() -> list[tuple[str, str, set[str]]]:
    """The rows of docs/cli.md's table of shared flags: (flag, meaning, commands)."""
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    table = text.split("| flag | meaning | commands |", 1)[1].split("\n\n", 1)[0]  # the first table only
    rows = []
    for line in table.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if len(cells) == 3 and cells[0].startswith("`-"):
            flags = re.findall(r"`(-[^`]+)`", cells[0])
            flag = next(f.split()[0] for f in flags if f.startswith("--"))
            rows.append((flag, cells[1], {c.strip() for c in cells[2].split(",")}))
    return rows


DOCUMENTED = _documented()


def test_the_table_of_shared_flags_is_there() -> None:
    """docs/cli.md lists the five flags the issue names, and more (the table this file checks is not empty)."""
    assert {"--format", "--out", "--seed", "--runs", "--jobs"} <= {flag for flag, _, _ in DOCUMENTED}


@pytest.mark.parametrize("flag,meaning,commands", DOCUMENTED, ids=[row[0] for row in DOCUMENTED])
def test_a_shared_flag_means_the_same_on_every_command(flag: str, meaning: str, commands: set[str]) -> None:
    """The flag exists on exactly the commands docs/cli.md names, with one type everywhere; a flag marked
    *same help* has word for word the same help on each (so --format cannot be the figure format on one
    command and the CRM dialect on another, as it was)."""
    every = _commands()
    having = {name for name, command in every.items() if flag in _options(command)}
    assert having == commands, f"{flag}: documented on {sorted(commands)}, present on {sorted(having)}"
    params = [_options(every[name])[flag] for name in sorted(commands)]
    assert len({p.type_descriptor.annotation for p in params}) == 1, f"{flag} has different types"
    assert not any(p.hidden for p in params)
    if "*same help*" in meaning:
        helps = {getattr(p, "help", None) for p in params}
        assert len(helps) == 1, f"{flag} is explained differently: {helps}"


# Commands that print no table of results: a one-line check, a JSON schema, a scenario file written from
# questions (init), a local page (serve).
NO_RESULTS = ("validate", "schema", "init", "serve")


def test_every_command_with_results_speaks_the_same_format_flag() -> None:
    """Each command that prints results takes --format table|tsv|json, --json and --quiet."""
    for name, command in _commands().items():
        options = _options(command)
        if name in NO_RESULTS:
            continue
        assert "--format" in options and "--json" in options, name
        assert "--quiet" in options, name


def _invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def test_tsv_parses_and_its_numbers_are_the_json_ones() -> None:
    """`run --format tsv` is one table pandas reads with sep='\\t', and every number is the one --json prints."""
    tsv = _invoke("run", BASELINE, *SMALL, "--seed", "5", "--format", "tsv")
    doc = _invoke("run", BASELINE, *SMALL, "--seed", "5", "--json")
    assert tsv.exit_code == 0 and doc.exit_code == 0, tsv.stderr
    assert tsv.stderr == ""
    table = pd.read_csv(io.StringIO(tsv.stdout), sep="\t")
    assert list(table.columns) == ["metric", "value"]
    summary = json.loads(doc.stdout)["summary"]
    assert list(table["metric"]) == list(summary)
    for metric, value in zip(table["metric"], table["value"], strict=True):
        expected = summary[metric]
        assert (math.isnan(value) and expected is None) or value == expected, metric


def test_monte_carlo_tsv_is_the_json_summary() -> None:
    """`run --runs N --format tsv`: one row per metric, its mean, CI and percentiles equal to --json's."""
    args = ("run", BASELINE, *SMALL, "--runs", "3", "--seed", "5")
    table = pd.read_csv(io.StringIO(_invoke(*args, "--format", "tsv").stdout), sep="\t").set_index("metric")
    summary = json.loads(_invoke(*args, "--json").stdout)["summary"]
    assert set(table.index) == set(summary)
    for metric, row in summary.items():
        for key in ("mean", "ci_low", "ci_high", "p10", "p50", "p90"):
            value = table.loc[metric, key]
            assert (math.isnan(value) and row[key] is None) or value == row[key], (metric, key)


def test_format_and_json_disagreeing_or_unknown_is_bad_input() -> None:
    """--format gif and --json with --format tsv are refused (exit 2) naming the flag, before any work."""
    bad = _invoke("run", BASELINE, *SMALL, "--format", "gif")
    assert bad.exit_code == 2 and "--format" in bad.output and "table, tsv or json" in bad.output
    both = _invoke("run", BASELINE, *SMALL, "--json", "--format", "tsv")
    assert both.exit_code == 2 and "--json" in both.output


def test_piped_summary_keeps_its_long_lines_whole() -> None:
    """Piped (CliRunner is not a terminal), a run's summary lines longer than 80 columns come out whole,
    with no control characters (more leads than one SDR can work, so the queue and bottleneck lines are long)."""
    result = _invoke("run", BASELINE, *SMALL, "--set=sources.inbound.leads_per_month=3000", "--set=handoff.sdr.count=1")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    queues = next(line for line in lines if line.startswith("queues:"))
    assert len(queues) > 80 and "waited for an SDR" in queues and "for an AE" in queues
    bottleneck = next(line for line in lines if line.startswith("bottleneck:"))
    assert len(bottleneck) > 120 and bottleneck.endswith("until SDRs are added")
    assert not CONTROL.search(result.stdout + result.stderr)


def test_piped_tables_are_not_cut_at_80_columns() -> None:
    """A table wider than 80 columns (sensitivity: dotted parameter names and four intervals) prints each row
    on one line, the parameter whole; before, rich folded it into 80 columns (`qualification.mq` / `l.threshold`)."""
    result = _invoke(
        "sensitivity", BASELINE, *SMALL, "--set=burn_in_days=0", "--param", "qualification.mql.threshold",
        "--param", "handoff.follow_up_rate", "--runs", "2", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "qualification.mql.threshold" in line]
    assert rows and len(rows[0]) > 80
    assert "effect of low ± 95% CI" in result.stdout  # the header on one line too
    assert not CONTROL.search(result.stdout)


def test_old_figure_format_spelling_still_works_with_a_note(tmp_path: Path) -> None:
    """`--format svg` (the figure format of earlier releases) still writes SVG figures, and says once on stderr
    that it is now --figures svg; `--figures svg` says nothing."""
    old = _invoke("run", BASELINE, *SMALL, "--out", str(tmp_path / "old"), "--format", "svg", "-q")
    assert old.exit_code == 0, old.output
    assert sorted(p.suffix for p in (tmp_path / "old" / "figures").iterdir()) == [".svg"] * 4
    assert old.stderr.count("deprecated:") == 1 and "--figures svg" in old.stderr
    assert "revenue booked" in old.stdout  # --format svg still prints the table
    new = _invoke("run", BASELINE, *SMALL, "--out", str(tmp_path / "new"), "--figures", "svg", "-q")
    assert new.exit_code == 0 and new.stderr == ""


def test_calibrate_out_is_a_folder_and_the_old_file_spelling_still_works(tmp_path: Path) -> None:
    """`calibrate --out DIR` writes one folder (scenario.toml that runs, pipeline.csv, report.md), like --out
    everywhere, and --format tsv prints its parameters.csv; `--out NAME.toml` and `--format salesforce` still
    work, each with one deprecation note."""
    fast = ("--opportunities", CRM_EXPORT, "--check-runs", "0", "-q")
    folder = tmp_path / "acme"
    new = _invoke("calibrate", *fast, "--out", str(folder), "--crm", "salesforce", "--format", "tsv")
    assert new.exit_code == 0, new.output
    assert {"scenario.toml", "pipeline.csv", "report.md", "parameters.csv"} <= {p.name for p in folder.iterdir()}
    assert "in this folder (report.md)" in (folder / "scenario.toml").read_text(encoding="utf-8")
    assert "deprecated" not in new.stderr and "warning: stale deals" in new.stderr  # warnings still said
    printed = pd.read_csv(io.StringIO(new.stdout), sep="\t")
    assert list(printed["path"]) == list(pd.read_csv(folder / "parameters.csv")["path"])
    ran = _invoke("run", str(folder / "scenario.toml"), "--set=horizon_days=30", "-q")
    assert ran.exit_code == 0 and "from pipeline:" in ran.stdout
    old = _invoke("calibrate", *fast, "--out", str(tmp_path / "old.toml"), "--format", "salesforce")
    assert old.exit_code == 0, old.output
    assert (tmp_path / "old.toml").is_file() and (tmp_path / "old.calibration" / "report.md").is_file()
    assert old.stderr.count("deprecated:") == 2 and "--crm salesforce" in old.stderr and "--out DIR" in old.stderr


@pytest.fixture
def terminal_stderr(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """stderr as a terminal (rich's force_terminal), and every estimate announced (no 5 s threshold)."""
    buffer = io.StringIO()
    monkeypatch.setattr(
        terminal, "err", Console(file=buffer, force_terminal=True, width=120, soft_wrap=True, highlight=False)
    )
    monkeypatch.setattr(cli, "ANNOUNCE_SECONDS", 0.0)
    return buffer


def test_in_a_terminal_the_estimate_comes_before_the_work_then_a_progress_bar(
    terminal_stderr: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a terminal, `run --runs N` says what the work model expects (time, workers, runs × time per run)
    before the first replication starts, then draws a progress bar of the replications."""
    import funnelsim.studies.replications as replications

    seen_before: list[str] = []
    real = replications.run

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen_before.append(terminal_stderr.getvalue())
        return real(*args, **kwargs)

    monkeypatch.setattr(replications, "run", spy)
    result = _invoke("run", BASELINE, *SMALL, "--runs", "8")
    assert result.exit_code == 0, result.output
    assert seen_before, "the replications did not run through studies.replications.run"
    estimate = re.search(
        r"this Monte Carlo run: about \S+ s on 1 worker \((warm-start pilot \S+ s, then )?8 runs × \S+ s",
        seen_before[0],
    )
    assert estimate, seen_before[0]
    drawn = terminal_stderr.getvalue()
    assert "replications" in drawn and "/8" in drawn and "\x1b[" in drawn  # the bar, drawn as a terminal's


def test_not_a_terminal_gets_the_estimate_as_plain_text_and_no_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a terminal (CliRunner): the estimate is one plain line on stderr; no bar, no escapes, no \\r."""
    monkeypatch.setattr(cli, "ANNOUNCE_SECONDS", 0.0)
    result = _invoke("run", BASELINE, *SMALL, "--runs", "4")
    assert result.exit_code == 0
    assert re.search(
        r"^this Monte Carlo run: about .* on 1 worker \((warm-start pilot \S+ s, then )?4 runs × ", result.stderr, re.M
    )
    assert not CONTROL.search(result.stdout + result.stderr)


def test_quiet_prints_nothing_on_stderr_even_in_a_terminal(terminal_stderr: io.StringIO) -> None:
    """--quiet: no estimate, no narration and no progress display, though stderr is a terminal."""
    result = _invoke("run", BASELINE, *SMALL, "--runs", "4", "-q")
    assert result.exit_code == 0
    assert result.stderr == "" and terminal_stderr.getvalue() == ""
    assert "replications" in result.stdout


def test_a_sweep_draws_one_bar_over_the_whole_grid(terminal_stderr: io.StringIO) -> None:
    """The sweep reports its replications through the study's callback: the bar counts the whole grid."""
    result = _invoke(
        "sweep", BASELINE, *SMALL, "--set=burn_in_days=0", "--param", "handoff.sdr.count=2,3", "--runs", "2"
    )
    assert result.exit_code == 0, result.output
    drawn = terminal_stderr.getvalue()
    assert "this sweep: about" in drawn and "4/4" in drawn


def test_sweep_tsv_is_the_json_grid() -> None:
    """`sweep --format tsv` prints the grid, one row per point, with the numbers --json gives as `points`."""
    args = ("sweep", BASELINE, *SMALL, "--set=burn_in_days=0", "--param", "handoff.sdr.count=2,3", "--runs", "2")
    table = pd.read_csv(io.StringIO(_invoke(*args, "--format", "tsv").stdout), sep="\t")
    points = json.loads(_invoke(*args, "--json").stdout)["points"]
    assert len(table) == len(points) == 2
    for row, point in zip(table.to_dict("records"), points, strict=True):
        assert set(row) == set(point)
        for key, expected in point.items():
            value = row[key]
            assert (expected is None and math.isnan(value)) or value == expected, key


def test_calibrate_says_each_phase_and_its_estimate_when_not_a_terminal(tmp_path: Path) -> None:
    """calibrate learns its work phase by phase (the scenario exists only once fitted): piped, each phase is
    one plain line, the simulating ones with their estimate, before the work; --quiet says none of it."""
    crm = str(ROOT / "examples" / "crm" / "opportunities.csv")
    args = ["calibrate", "--opportunities", crm, "--check-runs", "10"]
    said = _invoke(*args, "--out", str(tmp_path / "a"))
    assert said.exit_code == 0, said.output
    lines = said.stderr.splitlines()
    fit = next(i for i, line in enumerate(lines) if line.startswith("fitting volumes and capacity by simulation"))
    check = next(i for i, line in enumerate(lines) if line.startswith("self-check: simulating the history window"))
    assert fit < check and "about" in lines[fit] and re.search(r"\(10 runs, about \S+ s", lines[check])
    assert not CONTROL.search(said.stderr)
    quiet = _invoke(*args, "--out", str(tmp_path / "b"), "--quiet")
    assert quiet.exit_code == 0 and "self-check: simulating" not in quiet.stderr
