"""Hostile or careless input to the commands: each is refused at once with exit 2, a message
naming the field, file or flag to fix, no traceback, and the output of an earlier run untouched.

Work that would be huge (a typo in a volume, a horizon or a flag) is estimated and refused
before anything is allocated (:mod:`funnelsim.studies.workload`); files named by a user must be
regular files of a sane size and are never quoted back. (CSV exports given to ``calibrate``
have their own file: tests/test_hostile_calibrate.py; interrupts: tests/test_interrupts.py.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from funnelsim import load_scenario
from funnelsim.cli import app
from funnelsim.studies.workload import Limits, WorkloadTooLarge, check, estimate
from scaled import TENTH

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.toml"
SMALL = [f"--set={o}" for o in ("horizon_days=90", *TENTH)]


@pytest.fixture
def earlier(tmp_path: Path) -> Path:
    """An output folder from an earlier run: a refusal must leave it exactly as it was."""
    folder = tmp_path / "earlier"
    folder.mkdir()
    (folder / "summary.csv").write_text("revenue\n123\n")
    return folder


def _invoke(args: list[str], earlier: Path | None = None) -> tuple[int, str]:
    before = {p: p.read_bytes() for p in earlier.rglob("*") if p.is_file()} if earlier else {}
    result = CliRunner().invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    text = result.stdout + result.stderr
    assert "Traceback" not in text
    if earlier is not None:
        assert {p: p.read_bytes() for p in earlier.rglob("*") if p.is_file()} == before
    return result.exit_code, text


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--set", "sources.inbound.leads_per_month=1e9"], "sources.inbound.leads_per_month"),
        (["--set", "horizon_days=2000000", "--set", "sources.inbound.leads_per_month=1e5"], "horizon_days"),
        (["--set", "sales.ae.count=100000000"], "sales.ae.count"),
        (["--runs", "1000000000"], "--runs"),
        (["--runs", "1000", "--precision", "0.001", "--max-runs", "100000000"], "--runs"),
    ],
    ids=["leads-typo", "horizon-typo", "ae-typo", "runs", "precision-max-runs"],
)
def test_huge_work_is_refused_before_it_starts(args: list[str], names: str, earlier: Path) -> None:
    """The refusal states the estimate, the field or flag that drives it, and --allow-large."""
    code, text = _invoke(["run", str(BASELINE), *args, "--out", str(earlier), "--force"], earlier)
    assert code == 2, text
    assert "too large: estimated" in text and names in text and "--allow-large" in text


@pytest.mark.parametrize(
    "args",
    [
        ["sweep", str(BASELINE), "--param", "qualification.mql.threshold=0.3:0.8:100000000"],
        [
            "sweep",
            str(BASELINE),
            "--param",
            "qualification.mql.threshold=0.3:0.8:10000",
            "--param",
            "sales.win_rate=0.1:0.5:10000",
        ],
    ],
    ids=["one-axis", "two-axes"],
)
def test_a_sweep_grid_of_a_hundred_million_points_is_refused_at_parse_time(args: list[str], earlier: Path) -> None:
    code, text = _invoke([*args, "--out", str(earlier), "--force"], earlier)
    assert code == 2, text
    assert "points is above the 10,000" in text and "--param" in text


def test_compare_and_sensitivity_judge_the_whole_job(earlier: Path) -> None:
    """Every scenario and every perturbation counts: 2 x 10^7 runs is refused, naming --runs."""
    code, text = _invoke(["compare", str(BASELINE), str(BASELINE), "--runs", "10000000"], earlier)
    assert code == 2 and "this comparison is too large" in text and "--runs" in text
    code, text = _invoke(["sensitivity", str(BASELINE), "--runs", "1000000", "--out", str(earlier), "--force"], earlier)
    assert code == 2 and "this sensitivity analysis is too large" in text


def test_plan_states_and_respects_its_work_budget(earlier: Path) -> None:
    """A search that needs more candidates than --max-evaluations stops with exit 2 and says which flag to raise."""
    code, text = _invoke(
        ["plan", str(BASELINE), *SMALL, "--goal", "200k", "--runs", "10", "--max-evaluations", "2", "-q"], earlier
    )
    assert code == 2, text
    assert "of its 20 replications" in text and "--max-evaluations" in text


def test_the_estimate_is_cheap_and_within_a_factor_of_the_measured_cost() -> None:
    """The formula sees volumes, horizon, reps and runs; the benchmark (benchmarks/workload.py) checks its
    coefficients against measured runs, this checks that it scales the way the work does."""
    base = estimate(load_scenario(BASELINE, ["start=cold"]))
    double = estimate(load_scenario(BASELINE, ["horizon_days=730", "start=cold"]))
    assert double.leads_per_run == pytest.approx(2 * base.leads_per_run, rel=0.05)
    assert estimate(load_scenario(BASELINE, ["start=cold"]), 100, 2).seconds == pytest.approx(50 * base.seconds_per_run)
    assert base.drivers[0][0] == "sources.inbound.leads_per_month"
    # A warm start simulates its burn-in in every run, and once a pilot to choose it.
    burnt = estimate(load_scenario(BASELINE, ["burn_in_days=365"]), 100, 2)
    assert burnt.leads_per_run == pytest.approx(2 * base.leads_per_run, rel=0.05) and burnt.pilot_days == 0
    chosen = estimate(load_scenario(BASELINE), 100, 2)
    assert chosen.pilot_days > 0 and chosen.seconds > 50 * chosen.seconds_per_run
    # A small job passes a tight limit; the same job times a million does not.
    limits = Limits(memory_bytes=2e9, seconds=60)
    check(base, limits=limits)
    with pytest.raises(WorkloadTooLarge, match="--runs"):
        check(base.scaled(1_000_000), limits=limits)
    check(base.scaled(1_000_000), allow_large=True, limits=limits)


def _with_pipeline(tmp_path: Path, file: str) -> Path:
    text = BASELINE.read_text().replace("[sales.ae]", f'[initial_pipeline]\nfile = "{file}"\n\n[sales.ae]', 1)
    path = tmp_path / "with-pipeline.toml"
    path.write_text(text)
    return path


def test_scenario_paths_must_be_regular_files(tmp_path: Path, earlier: Path) -> None:
    """/dev/zero, a directory and a FIFO are refused before a byte is read, naming the kind of file."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path, kind in (("/dev/zero", "a character device"), (str(tmp_path), "a directory"), (str(fifo), "FIFO")):
        code, text = _invoke(["run", path, "--out", str(earlier), "--force"], earlier)
        assert code == 2 and kind in text and "scenario file" in text, text
        code, text = _invoke(["validate", str(_with_pipeline(tmp_path, path))])
        assert code == 2 and kind in text and "initial_pipeline.file" in text, text


def test_oversized_scenario_file_is_refused_by_its_size(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    with big.open("wb") as handle:
        handle.truncate(11_000_000)  # sparse: costs no disk
    code, text = _invoke(["validate", str(big)])
    assert code == 2 and "above the 10 MB limit" in text


def test_errors_never_quote_a_foreign_file(tmp_path: Path) -> None:
    """A scenario pointing its pipeline at any readable file (here a passwd-like one) does not leak its first line."""
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:TOPSECRET:/root:/bin/bash\ndaemon:x:1:1\n")
    code, text = _invoke(["validate", str(_with_pipeline(tmp_path, str(secret)))])
    assert code == 2 and "not a header of pipeline columns" in text
    assert "TOPSECRET" not in text and "root:x" not in text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("a = " + "[" * 5000 + "]" * 5000, "nested too deeply"),
        ("x = " + "{a=" * 600 + "1" + "}" * 600, "nested"),
        ("\ufeffname = 'x'\n".encode("utf-16").decode("latin-1"), "not UTF-8"),
        ("PK\x03\x04" + "\x00" * 40, "TOML syntax error"),
    ],
    ids=["nested-arrays", "nested-tables", "utf16", "xlsx"],
)
def test_malformed_scenario_files_are_bad_input(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(content.encode("latin-1"))
    code, text = _invoke(["validate", str(path)])
    assert code == 2 and expected in text and str(path) in text, text


def test_a_horizon_past_the_year_9999_names_horizon_days(earlier: Path) -> None:
    code, text = _invoke(["run", str(BASELINE), "--set", "start_date=9999-06-01", "--out", str(earlier)], earlier)
    assert code == 2 and "horizon_days" in text and "year 9999" in text


def test_a_megabyte_long_name_gives_a_short_message(tmp_path: Path) -> None:
    """Messages stay bounded (and so linear to build) however long the offending key or value."""
    path = tmp_path / "long.toml"
    path.write_text(BASELINE.read_text() + "\n" + "k" * 1_000_000 + " = 1\n")
    code, text = _invoke(["validate", str(path)])
    assert code == 2 and "unknown key" in text and "characters in all" in text
    assert len(text) < 2_000


def test_svg_figures_are_byte_identical_across_runs(tmp_path: Path) -> None:
    """Same scenario and seed, --figures svg twice: the same bytes (no date, fixed element ids)."""
    for name in ("a", "b"):
        code, text = _invoke(["run", str(BASELINE), *SMALL, "--figures", "svg", "-q", "--out", str(tmp_path / name)])
        assert code == 0, text
    figures = sorted((tmp_path / "a" / "figures").glob("*.svg"))
    assert len(figures) == 4
    for figure in figures:
        assert figure.read_bytes() == (tmp_path / "b" / "figures" / figure.name).read_bytes(), figure.name
