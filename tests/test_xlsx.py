"""targets.xlsx of ``funnelsim plan --out``: a sheet per team with the months across, every number the
CSV's rounded half up, a summary that agrees with plan.json, and text that never runs as a formula.

The workbook is read back with openpyxl (the ``excel`` extra, in the ``test`` extra too); the expected
numbers are computed here from the plan's own CSV files, independently of the workbook writer.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from funnelsim.cli import app
from scaled import TENTH_VOLUME

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scenarios" / "baseline.toml"
SEGMENTED = ROOT / "tests" / "scenarios" / "segmented.toml"
HOSTILE = '=HYPERLINK("http://example.com/x","Click")'
# The fast plan of tests/test_planner.py: a quarter after a three-month lead-in, a small team.
FAST = (*TENTH_VOLUME, "handoff.sdr.count=2", "sales.ae.count=3", "sales.ae.hires=[]")
FAST += ("prospecting.opportunities_per_ae_per_month=0",)
QUARTER = ("--period", "2027-01-01:2027-03-31", "--lead-in", "3")
QUICK = ("--runs", "20", "--seed", "4", "--verify-runs", "60")
runner = CliRunner()


def _plan(out: Path, *args: str, scenario: Path = BASELINE, sets: tuple[str, ...] = FAST):
    overrides = [f"--set={item}" for item in sets]
    return runner.invoke(app, ["plan", str(scenario), *overrides, *args, "--out", str(out)])


def half_up(x: float) -> int:
    return math.floor(x + 0.5)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A plan of 100k in a quarter for a company whose name is a spreadsheet formula."""
    out = tmp_path_factory.mktemp("xlsx") / "plan"
    result = _plan(out, "--goal", "100k", *QUARTER, *QUICK, "-q", sets=(*FAST, f"name='{HOSTILE}'"))
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def book(folder):
    return load_workbook(folder / "targets.xlsx")


def _rows(ws) -> dict[str, list]:
    """A team sheet's rows by measure: the cells after the unit (months, then the period total)."""
    return {row[0]: list(row[2:]) for row in ws.iter_rows(min_row=3, values_only=True) if row[1] is not None}


def test_one_sheet_per_team_with_the_months_across(folder, book):
    """Summary first, then marketing, SDR and sales; each team sheet has the plan's months across, in order."""
    assert book.sheetnames == ["Summary", "Marketing", "SDR", "Sales"]
    heads = pd.read_csv(folder / "headcount.csv")
    for name in ("Marketing", "SDR", "Sales"):
        ws = book[name]
        header = [c.value for c in ws[1]]
        assert header == ["measure", "unit", *heads["month"], "period total"]
        assert [c.value for c in ws[2]][2:-1] == list(heads["phase"])
        assert ws.freeze_panes == "C3"
        assert all(cell.font.b for cell in ws[1])


def test_every_monthly_cell_is_the_csv_value_rounded(folder, book):
    """Leads per source, MQLs, SQLs, opportunities, wins and bookings are targets.csv's `target`, heads are
    headcount.csv's columns, each rounded half up to a whole number; the period's bookings are the goal."""
    sheet = pd.read_csv(folder / "targets.csv", keep_default_na=False)
    heads = pd.read_csv(folder / "headcount.csv")

    def csv(stage: str, source: str = "") -> list[int]:
        rows = sheet[(sheet["stage"] == stage) & (sheet["source"] == source)]
        return [half_up(float(v)) for v in rows["target"]]

    n = len(heads)
    marketing, sdr, sales = (_rows(book[name]) for name in ("Marketing", "SDR", "Sales"))
    for source in ("inbound", "events", "partner"):
        assert marketing[f"Leads: {source}"][:n] == csv("leads", source)
    assert marketing["MQLs"][:n] == csv("mqls")
    assert sdr["SQLs"][:n] == csv("sqls")
    assert sales["Opportunities"][:n] == csv("opportunities")
    assert sales["Wins"][:n] == csv("wins")
    assert sales["Bookings"][:n] == csv("revenue")
    assert sales["Deals AEs prospect"][:n] == csv("leads", "prospecting")
    for label, column in [("SDR headcount", "sdr_headcount"), ("SDR hires", "sdr_hires")]:
        assert sdr[label][:n] == [half_up(v) for v in heads[column]]
    for label, column in [("AE headcount", "ae_headcount"), ("AE leavers (expected)", "ae_leavers")]:
        assert sales[label][:n] == [half_up(v) for v in heads[column]]
    assert sales["Bookings"][n] == 100_000  # the period's monthly targets sum to the goal
    inside = sheet[(sheet["phase"] == "period") & (sheet["stage"] == "leads") & (sheet["team"] == "marketing")]
    assert marketing["Leads: all sources"][n] == half_up(inside["target"].sum())
    assert sales["AE headcount"][n] is None  # a stock has no period total


def test_numbers_are_whole_numbers_with_thousands_separators(book):
    """Every number on a team sheet is stored as a whole number (not text), shown as #,##0."""
    for name in ("Marketing", "SDR", "Sales"):
        for row in book[name].iter_rows(min_row=3, min_col=3):
            for cell in row:
                if cell.value is not None:
                    assert isinstance(cell.value, int) and cell.data_type == "n", (name, cell.coordinate)
                    assert cell.number_format == "#,##0"


def test_summary_agrees_with_plan_json(folder, book):
    """Goal, what it measures, the confidence asked, the verified P(goal) and its interval, the lever,
    and the assumptions (scenario, start mode, seed, runs) are plan.json's and the manifest's."""
    doc = json.loads((folder / "plan.json").read_text())
    manifest = json.loads((folder / "manifest.json").read_text())
    summary = {row[0]: row[1] for row in book["Summary"].iter_rows(min_row=2, values_only=True) if row[0]}
    assert summary["Goal"] == doc["goal"] == 100_000
    assert summary["Goal measure"] == doc["goal_measure"] == "bookings"
    assert summary["Confidence asked"] == doc["confidence"]
    assert summary["Verified confidence P(goal)"] == pytest.approx(doc["p_goal"]["estimate"], rel=1e-15)
    assert summary["95% interval, low"] == pytest.approx(doc["p_goal"]["ci_low"], rel=1e-15)
    assert summary["95% interval, high"] == pytest.approx(doc["p_goal"]["ci_high"], rel=1e-15)
    assert summary["Lever"] == doc["lever"] == "leads"
    assert summary["Seed"] == manifest["seed"] == 4 and summary["Runs per candidate (search)"] == 20
    assert summary["Start mode"] == manifest["start"]["mode"]
    inbound = "sources.inbound.leads_per_month"
    assert summary[inbound] == pytest.approx(doc["changes"][inbound], rel=1e-15)


def test_a_name_that_is_a_formula_stays_text(book):
    """The scenario's name `=HYPERLINK(...)` is written as quoted text, and no cell of the workbook is a formula."""
    summary = {row[0].value: row[1] for row in book["Summary"].iter_rows(min_row=2) if row[0].value}
    name = summary["Scenario"]
    assert name.value == "'" + HOSTILE + "-plan" and name.data_type == "s"
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)


def test_segmented_plan_has_each_segments_period_targets(tmp_path):
    """A segmented scenario's summary lists each segment's period targets: segment_targets.csv's leads, SQLs,
    wins and bookings of the period summed, its SDRs and AEs averaged, rounded half up."""
    out = tmp_path / "plan"
    args = ("--goal", "50k", "--runs", "10", "--verify-runs", "40", "--seed", "3", "-q")
    result = _plan(out, *args, "--period", "2027-04-01:2027-06-30", "--lead-in", "3", scenario=SEGMENTED, sets=())
    assert result.exit_code == 0, result.output
    segments = pd.read_csv(out / "segment_targets.csv")
    inside = segments[segments["phase"] == "period"].groupby("segment", sort=False)
    rows = list(load_workbook(out / "targets.xlsx")["Summary"].iter_rows(values_only=True))
    header = next(i for i, row in enumerate(rows) if row[0] == "segment")
    assert rows[header][1:7] == ("leads", "SQLs", "wins", "bookings (USD)", "SDRs (mean)", "AEs (mean)")
    got = {row[0]: list(row[1:7]) for row in rows[header + 1 :]}
    assert set(got) == {"smb", "enterprise"}
    for name, months in inside:
        sums = [half_up(months[c].sum()) for c in ("leads", "sqls", "wins", "revenue")]
        heads = [half_up(months["sdr_headcount"].mean()), half_up(months["ae_headcount"].mean())]
        assert got[name] == [*sums, *heads]


def test_without_openpyxl_the_folder_is_written_and_the_cli_says_how_to_get_the_sheet(tmp_path, monkeypatch):
    """No openpyxl: the plan folder is written as before, without targets.xlsx, and one line on stderr
    names the extra that gives it (with -q too: never silently)."""
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # `import openpyxl` now fails
    out = tmp_path / "plan"
    result = _plan(out, "--goal", "100k", *QUARTER, *QUICK, "-q")
    assert result.exit_code == 0, result.output
    assert (out / "targets.csv").is_file() and not (out / "targets.xlsx").exists()
    hints = [line for line in result.stderr.splitlines() if "targets.xlsx" in line]
    assert hints == ["targets.xlsx not written: pip install 'funnelsim[excel]' gives it (openpyxl)"]
