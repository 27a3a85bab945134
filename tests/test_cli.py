"""`funnelsim run` as a script sees it: exit codes, stdout, and the output folder."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from funnelsim.cli import app
from scaled import TENTH_VOLUME

ROOT = Path(__file__).resolve().parents[1]
BASELINE = str(ROOT / "scenarios" / "baseline.toml")
# The baseline company at a tenth of its size and a quarter of a year: a run takes well under a second.
SMALL = [f"--set={override}" for override in ("horizon_days=90", *TENTH_VOLUME)]


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["run", BASELINE, *SMALL, *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


def test_json_is_the_only_thing_on_stdout() -> None:
    code, stdout, stderr = _run("--json", "--seed", "3")
    assert code == 0
    doc = json.loads(stdout)
    assert doc["seed"] == 3 and doc["scenario"] == "baseline" and doc["currency"] == "USD"
    assert doc["summary"]["leads"] > 0
    assert stderr == ""


def test_quiet_keeps_the_summary_and_drops_the_narration() -> None:
    code, stdout, stderr = _run("-q")
    assert code == 0
    assert "revenue booked" in stdout
    assert stderr == ""
    code, _, stderr = _run()
    assert code == 0 and "seed 2027" in stderr


def test_out_writes_a_folder_and_refuses_to_overwrite_it(tmp_path: Path) -> None:
    target = tmp_path / "results"
    code, _, stderr = _run("--out", str(target), "--figures", "svg", "-q")
    assert code == 0, stderr
    assert (target / "summary.csv").is_file()
    assert sorted(p.suffix for p in (target / "figures").iterdir()) == [".svg"] * 4
    before = {p: p.stat().st_mtime_ns for p in target.rglob("*")}

    code, stdout, stderr = _run("--out", str(target))
    assert code == 2
    assert str(target) in stderr and "--force" in stderr
    assert "Traceback" not in stdout + stderr
    assert {p: p.stat().st_mtime_ns for p in target.rglob("*")} == before

    code, _, _ = _run("--out", str(target), "--force", "-q")
    assert code == 0
    assert sorted(p.suffix for p in (target / "figures").iterdir()) == [".png"] * 4


def test_bad_figure_format_is_bad_input_before_anything_is_written(tmp_path: Path) -> None:
    target = tmp_path / "results"
    code, _, stderr = _run("--out", str(target), "--figures", "gif")
    assert code == 2
    assert "figure format" in stderr
    assert not target.exists()


def test_a_run_names_the_team_that_is_the_bottleneck() -> None:
    """More leads than the SDRs can work: the run says how long MQLs wait, how many go cold, and names
    the SDRs as the bottleneck (so "more leads, less revenue" is never silent); the small company with
    room to spare names none."""
    runner = CliRunner()
    flooded = runner.invoke(
        app, ["run", BASELINE, *SMALL, "--set=sources.inbound.leads_per_month=3000", "--set=handoff.sdr.count=1"]
    )
    assert flooded.exit_code == 0, flooded.output
    assert "of MQLs waited for an SDR" in flooded.output
    assert "bottleneck:       SDRs are" in flooded.output and "until SDRs are added" in flooded.output
    calm = runner.invoke(app, ["run", BASELINE, *SMALL, "--set=handoff.sdr.count=3"])
    assert calm.exit_code == 0 and "queues:" in calm.output and "bottleneck" not in calm.output
