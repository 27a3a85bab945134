"""Output folder of a run: complete, self-describing, and never half-written or overwritten by accident.

A planner runs ``funnelsim run scenario.toml --out DIR`` and hands DIR to finance or
to a notebook. The tests check that every table, the event log, the figures and the
manifest are there and read back exactly; that the manifest identifies the scenario
and seed that produced them; that an existing folder is only replaced with ``force``;
and that a failure at any point leaves no temporary folder and the old folder as it was.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from funnelsim import RunResult, load_scenario, simulate
from funnelsim.report import tables as output_module
from funnelsim.report.folder import OutputError, OutputExistsError
from funnelsim.report.tables import write_run
from funnelsim.run.metrics import summarize_run

BASELINE = Path(__file__).resolve().parent.parent / "scenarios" / "baseline.toml"

# The baseline company at about a tenth of its lead volume over half a year.
SMALL = [
    "sources.inbound.leads_per_month=300",
    "sources.events.leads_per_month=50",
    "sources.partner.leads_per_month=10",
    "horizon_days=180",
]

TABLES = [
    "summary.csv",
    "stages_by_month.csv",
    "time_in_stage.csv",
    "revenue_by_month.csv",
    "revenue_by_quarter.csv",
    "leakage.csv",
    "capacity_by_month.csv",
    "pipeline.csv",
    "by_source.csv",
    "by_persona.csv",
    "leads.csv",
    "levels.csv",
    "roster.csv",
]
FIGURES = ["funnel", "revenue_by_month", "capacity", "leakage"]


def _expected_files(events_file: str = "events.parquet", fmt: str = "png") -> set[str]:
    return {*TABLES, events_file, "manifest.json", "report.html", *(f"figures/{name}.{fmt}" for name in FIGURES)}


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in _files(folder)}


@pytest.fixture(scope="module")
def result() -> RunResult:
    return simulate(load_scenario(BASELINE, SMALL), seed=11)


@pytest.fixture(scope="module")
def written(result: RunResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(result, tmp_path_factory.mktemp("written") / "run")


@pytest.fixture
def previous(tmp_path: Path) -> Path:
    """An output folder from an earlier run, with a file only it has."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "keep.txt").write_text("earlier run\n")
    (folder / "summary.csv").write_text("revenue\n1\n")
    return folder


def test_run_folder_holds_every_table_the_event_log_figures_and_manifest(written: Path, result: RunResult) -> None:
    """Everything the issue lists is written, each table parses with a header, and the folder sits
    alone in its parent (no temporary folders left behind)."""
    assert _files(written) == _expected_files()
    assert [p.name for p in written.parent.iterdir()] == ["run"]
    for name in TABLES:
        table = pd.read_csv(written / name)
        assert len(table.columns) > 1, name
    assert len(pd.read_csv(written / "leads.csv")) == len(result.leads)
    assert len(pd.read_csv(written / "levels.csv")) == len(result.levels)
    for name in FIGURES:
        assert (written / "figures" / f"{name}.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_summary_csv_is_one_row_of_summarize_run_read_back_exactly(written: Path, result: RunResult) -> None:
    """summary.csv is one row naming the scenario, seed and replication, then every headline
    number, with floats that read back bit for bit."""
    summary = pd.read_csv(written / "summary.csv")
    assert len(summary) == 1
    row = summary.iloc[0]
    assert (row["scenario"], row["seed"], row["replication"]) == ("baseline", 11, 0)
    expected = summarize_run(result)
    assert list(summary.columns) == ["scenario", "seed", "replication", *expected]
    for key, value in expected.items():
        if pd.isna(value):
            assert pd.isna(row[key]), key
        else:
            assert row[key] == value, key


def test_per_lead_table_round_trips_times_and_amounts(written: Path, result: RunResult) -> None:
    """leads.csv keeps full float precision: milestone times and deal amounts read back equal."""
    leads = pd.read_csv(written / "leads.csv")
    assert list(leads.columns) == list(result.leads.columns)
    for column in ("fit", "created", "mql", "sql", "opportunity", "closed", "amount"):
        pd.testing.assert_series_equal(leads[column], result.leads[column], check_names=False)


def test_manifest_identifies_scenario_seed_and_software(written: Path, result: RunResult) -> None:
    """manifest.json says what produced the folder: the scenario's SHA-256 (matching
    ``scenario.sha256()`` and the resolved scenario stored beside it), seed, replication, library
    versions, currency and units, and the list of files."""
    manifest = json.loads((written / "manifest.json").read_text())
    scenario = result.scenario
    assert manifest["scenario_sha256"] == scenario.sha256()
    assert manifest["scenario"] == scenario.to_dict()
    stored = json.dumps(manifest["scenario"], sort_keys=True).encode()
    assert hashlib.sha256(stored).hexdigest() == manifest["scenario_sha256"]
    assert manifest["scenario_name"] == "baseline"
    assert (manifest["seed"], manifest["replication"]) == (11, 0)
    assert manifest["currency"] == "USD"
    assert manifest["units"] == {"time": "days since start_date", "money": "USD"}
    assert manifest["start_date"] == "2027-01-01"
    assert manifest["horizon_days"] == 180
    assert {"python", "numpy", "pandas", "scipy", "simpy", "pydantic", "matplotlib"} <= set(manifest["libraries"])
    assert manifest["funnelsim_version"]
    created = dt.datetime.fromisoformat(manifest["created_at"])
    assert created.utcoffset() == dt.timedelta(0)
    assert set(manifest["files"]) == _files(written)


def test_event_log_round_trips_through_parquet(written: Path, result: RunResult) -> None:
    """With pyarrow installed the event log is Parquet and reads back identical, dtypes included."""
    pytest.importorskip("pyarrow")
    events = pd.read_parquet(written / "events.parquet")
    pd.testing.assert_frame_equal(events, result.events)


def test_event_log_falls_back_to_gzipped_csv_without_pyarrow(
    result: RunResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without pyarrow the event log is events.csv.gz: same rows, columns and values, and the
    manifest names it."""
    monkeypatch.setattr(output_module, "_parquet_available", lambda: False)
    monkeypatch.setattr(output_module, "_write_figures", lambda *args: None)  # not under test here
    folder = write_run(result, tmp_path / "run")
    assert not (folder / "events.parquet").exists()
    with gzip.open(folder / "events.csv.gz", "rt") as handle:
        events = pd.read_csv(handle)
    assert events.shape == result.events.shape
    assert list(events.columns) == list(result.events.columns)
    pd.testing.assert_series_equal(events["time"], result.events["time"])
    pd.testing.assert_series_equal(events["value"], result.events["value"])
    assert events["event"].tolist() == result.events["event"].astype(str).tolist()
    assert json.loads((folder / "manifest.json").read_text())["events_file"] == "events.csv.gz"


def test_existing_folder_is_refused_before_any_work(
    result: RunResult, previous: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without force an existing folder is an error that names it and suggests --force, raised
    before anything is computed; the folder is untouched and nothing else appears beside it."""
    before = _snapshot(previous)

    def no_work(*args: object) -> None:
        raise AssertionError("computed tables for a folder it must refuse")

    monkeypatch.setattr(output_module, "_tables", no_work)
    with pytest.raises(OutputExistsError, match="--force") as info:
        write_run(result, previous)
    assert str(previous) in str(info.value)
    assert isinstance(info.value, OutputError) and isinstance(info.value, FileExistsError)
    assert _snapshot(previous) == before
    assert [p.name for p in previous.parent.iterdir()] == ["run"]


def test_force_replaces_the_folder_completely(result: RunResult, previous: Path) -> None:
    """With force the old folder is replaced as a whole: no file of the earlier run survives, and
    no temporary or set-aside folder is left."""
    write_run(result, previous, force=True)
    assert _files(previous) == _expected_files()
    assert [p.name for p in previous.parent.iterdir()] == ["run"]


@pytest.mark.parametrize("step", ["_tables", "_write_events", "_write_figures", "_write_manifest"])
def test_failure_midway_leaves_previous_folder_intact_and_no_temporary_folder(
    result: RunResult, previous: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """A run that fails while writing (here: one step raises) leaves the earlier output exactly as
    it was, even with force, and removes its temporary folder."""
    before = _snapshot(previous)

    def broken(*args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(output_module, step, broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_run(result, previous, force=True)
    assert _snapshot(previous) == before
    assert [p.name for p in previous.parent.iterdir()] == ["run"]


def test_failure_midway_without_previous_folder_leaves_nothing(
    result: RunResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first run that fails leaves no output folder at all, so a later run is not refused."""

    def broken(*args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(output_module, "_write_events", broken)
    with pytest.raises(RuntimeError):
        write_run(result, tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def test_failed_swap_puts_the_previous_folder_back(
    result: RunResult, previous: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If moving the new folder into place fails after the old one was set aside, the old one is
    moved back, so the user never ends up with neither."""
    before = _snapshot(previous)
    real_rename = output_module.os.rename

    def rename(src: Path, dst: Path) -> None:
        # Fail moving the new folder (named "run", in the staging folder) onto the target; let the
        # old folder be set aside and come back.
        if Path(dst) == previous and Path(src).name == "run" and Path(src).parent != previous.parent:
            raise OSError("rename failed")
        real_rename(src, dst)

    monkeypatch.setattr(output_module, "_write_figures", lambda *args: None)  # not under test here
    monkeypatch.setattr(output_module.os, "rename", rename)
    with pytest.raises(OSError, match="rename failed"):
        write_run(result, previous, force=True)
    assert _snapshot(previous) == before
    assert [p.name for p in previous.parent.iterdir()] == ["run"]


def test_svg_figures_into_new_parent_folders(result: RunResult, tmp_path: Path) -> None:
    """``figure_format="svg"`` writes SVG figures (and the manifest says so); missing parent
    folders of the output folder are created."""
    folder = write_run(result, tmp_path / "results" / "2027" / "run", figure_format="svg")
    assert _files(folder) == _expected_files(fmt="svg")
    for name in FIGURES:
        text = (folder / "figures" / f"{name}.svg").read_text()
        assert "<svg" in text
    assert json.loads((folder / "manifest.json").read_text())["figure_format"] == "svg"


def test_bad_figure_format_and_file_in_the_way_are_refused(result: RunResult, tmp_path: Path) -> None:
    """An unknown figure format, or a file where the folder should go (even with force), is refused
    before anything is written."""
    with pytest.raises(OutputError, match="figure format"):
        write_run(result, tmp_path / "run", figure_format="jpeg")
    assert list(tmp_path.iterdir()) == []
    in_the_way = tmp_path / "run.csv"
    in_the_way.write_text("not a folder\n")
    with pytest.raises(OutputExistsError, match="not a folder"):
        write_run(result, in_the_way, force=True)
    assert in_the_way.read_text() == "not a folder\n"
    assert list(tmp_path.iterdir()) == [in_the_way]


def test_force_refuses_to_replace_the_current_directory(
    result: RunResult, previous: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--out . --force`` would delete the folder the user is working in; it is refused."""
    monkeypatch.chdir(previous)
    with pytest.raises(OutputExistsError, match="current directory"):
        write_run(result, ".", force=True)
    assert (previous / "keep.txt").exists()
