"""funnelsim calibrate on hostile and malformed files (issue 14).

Every refusal is exit 2 with a message naming the file, line, column or flag, leaves the outputs of an
earlier calibration exactly as they were, and never quotes the file's content back. Text that a
spreadsheet would run as a formula is written quoted in every CSV output.
"""

from __future__ import annotations

import csv
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomlkit
from typer.testing import CliRunner

from funnelsim import load_scenario
from funnelsim.calibrate import calibrate, fitting
from funnelsim.calibrate.readers import read_opportunities
from funnelsim.cli import app
from funnelsim.report.folder import write_csv
from funnelsim.report.spreadsheet import FORMULA_START, neutralise_formulas

HEADER = "id,name,created,closed,status,amount,owner,source,segment"
# a spreadsheet reads these as numbers, never as formulas
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _rows(n: int = 40, seed: int = 5) -> list[str]:
    """``n`` deals in 2027: about two in three closed (won or lost), the rest open on 2027-12-01."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        created = pd.Timestamp("2027-01-04") + pd.Timedelta(days=int(rng.integers(0, 250)))
        closed = created + pd.Timedelta(days=int(rng.integers(5, 120)))
        status = "open" if closed >= pd.Timestamp("2027-12-01") or i % 3 == 0 else ("won" if i % 2 else "lost")
        rows.append(
            f"D{i},Account {i},{created.date()},{closed.date() if status != 'open' else ''},{status},"
            f"{1000 * (5 + i)},rep{i % 4},web,buyer"
        )
    return rows


def _export(path: Path, rows: list[str] | None = None, header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *(rows if rows is not None else _rows())]) + "\n", encoding="utf-8")
    return path


def _invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["calibrate", *args, "--as-of", "2027-12-01"], env=env)
    return result.exit_code, result.output


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def earlier(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, tuple[bytes, int]]]:
    """The outputs of an earlier, successful calibration (``acme.toml`` and its pipeline and report)."""
    folder = tmp_path_factory.mktemp("earlier")
    opportunities = _export(folder / "clean.csv")
    code, output = _invoke("--opportunities", str(opportunities), "--out", str(folder / "out" / "acme.toml"))
    assert code == 0, output
    return folder / "out" / "acme.toml", _snapshot(folder / "out")


def _refused(earlier: tuple[Path, dict[str, tuple[bytes, int]]], *args: str, env: dict[str, str] | None = None) -> str:
    """Run calibrate over the earlier outputs with --force: exit 2, and the earlier outputs untouched."""
    out, before = earlier
    code, output = _invoke(*args, "--out", str(out), "--force", env=env)
    assert code == 2, output
    assert "Traceback" not in output and "run failed" not in output
    assert _snapshot(out.parent) == before
    return " ".join(output.split())  # rich wraps long lines


# --- 1. formula injection ---------------------------------------------------------------------


def test_neutralise_formulas_quotes_text_only() -> None:
    """Text cells starting with = + - @ tab CR get a leading quote; numbers, numeric text and other text do not."""
    frame = pd.DataFrame(
        {
            "name": [*(c + "cmd|' /C calc'!A0" for c in FORMULA_START), "-12.5", "Acme", None],
            "amount": [-1.0, -2.5, 3.0, -4.0, 5.0, 6.0, -7.0, 8.0, np.nan],
            "persona": pd.Categorical(["=x", "buyer", "=x", "buyer", "@y", "buyer", "buyer", "buyer", "buyer"]),
        }
    )
    out = neutralise_formulas(frame)
    assert list(out["name"][:6]) == ["'" + c + "cmd|' /C calc'!A0" for c in FORMULA_START]
    assert list(out["name"][6:8]) == ["-12.5", "Acme"] and out["name"].isna().iloc[8]
    assert out["amount"].equals(frame["amount"])  # negative numbers stay numbers
    assert set(out["persona"].cat.categories) == {"'=x", "'@y", "buyer"}
    assert frame["name"].iloc[0] == "=cmd|' /C calc'!A0"  # the input is not modified
    clean = pd.DataFrame({"a": ["x", "y"], "b": [-1, 2]})
    assert neutralise_formulas(clean) is clean


def test_write_csv_quotes_formulas_in_every_table(tmp_path: Path) -> None:
    """output.write_csv (every CSV of run, compare, sweep, plan and calibrate goes through it) writes them quoted."""
    write_csv(pd.DataFrame({"source": ["=1+1", "@SUM(A1)"], "leads": [-3, 4]}), tmp_path / "t.csv")
    with (tmp_path / "t.csv").open(newline="", encoding="utf-8") as f:
        assert list(csv.reader(f)) == [["source", "leads"], ["'=1+1", "-3"], ["'@SUM(A1)", "4"]]


def test_crm_text_starting_with_formula_characters_is_quoted_in_every_output(tmp_path: Path) -> None:
    """Account names, stages, owners and segments that start with = + - @ tab or CR: after calibrate no CSV cell
    written starts with one of them (unless it is a number), the hostile owners are there quoted, and the
    scenario file (tomlkit) loads with a hostile file name kept as plain text."""
    rows = _rows()
    hostile = [c + 'HYPERLINK("http://evil","x")' for c in FORMULA_START]
    for k, text in enumerate(hostile):
        fields = rows[k].split(",")
        fields[1] = '"' + text.replace('"', '""') + '"'  # account name
        fields[6] = '"' + text.replace('"', '""') + '"'  # owner
        fields[8] = '"' + text.replace('"', '""') + '"'  # segment
        rows[k] = ",".join(fields)
    rows.append('X1,"=cmd",2027-02-01,2027-03-01,"@stage",1000,"-rep",web,buyer')  # a messy row: unknown stage
    rows.append("X2,-2+3,2027-02-01,2027-01-01,won,-500,rep1,web,buyer")  # close before create, negative amount
    name = '=evil" name'
    opportunities = _export(tmp_path / f"{name}.csv", rows)
    code, output = _invoke("--opportunities", str(opportunities), "--out", str(tmp_path / "acme.toml"))
    assert code == 0, output
    written = [tmp_path / "acme.pipeline.csv", *(tmp_path / "acme.calibration").glob("*.csv")]
    cells = []
    for path in written:
        with path.open(newline="", encoding="utf-8") as f:
            cells += [cell for row in csv.reader(f) for cell in row]
    dangerous = [c for c in cells if c.startswith(FORMULA_START) and not NUMBER.fullmatch(c)]
    assert dangerous == []
    # the owners are in reps.csv, quoted; a leading tab or CR is whitespace the reader strips from every cell
    assert {"'" + h for h in hostile[:4]} | {h.strip() for h in hostile[4:]} <= set(cells)
    assert "'" + name + ".csv" in cells  # messy_rows.csv names the file
    assert any(c.startswith("-") and NUMBER.fullmatch(c) for c in cells)  # negative numbers stay numbers
    scenario = load_scenario(tmp_path / "acme.toml")
    assert scenario.description is not None and name in scenario.description
    assert tomlkit.parse((tmp_path / "acme.toml").read_text(encoding="utf-8"))["name"] == "acme"


# --- 2. malformed rows ----------------------------------------------------------------------------


def test_short_and_long_rows_are_messy_with_their_lines(tmp_path: Path) -> None:
    """A truncated row and a row with an extra field are rejected and reported with their line numbers (report,
    messy_rows.csv and the printed summary); a trailing empty field is no problem; --strict makes it exit 2."""
    rows = _rows()
    rows[3] = ",".join(rows[3].split(",")[:4])  # line 5: 4 of 9 fields
    rows[6] = rows[6] + ",surplus"  # line 8: 10 of 9 fields
    rows[9] = rows[9] + ","  # line 11: a trailing delimiter, nothing in it
    opportunities = _export(tmp_path / "opps.csv", rows)
    table = read_opportunities(opportunities)
    assert [(i.line, i.reason, i.column) for i in table.issues] == [
        (5, "short_row", "status"),
        (8, "extra_fields", "field 10"),
    ]
    assert table.rows_read == 40 and len(table.rows) == 38 and "D9" in set(table.rows["id"])
    code, output = _invoke("--opportunities", str(opportunities), "--out", str(tmp_path / "acme.toml"))
    assert code == 0, output
    assert "fewer fields than the header" in output and "(lines 5)" in output and "(lines 8)" in output
    messy = pd.read_csv(tmp_path / "acme.calibration" / "messy_rows.csv")
    assert list(zip(messy["line"], messy["reason"], strict=True)) == [(5, "short_row"), (8, "extra_fields")]
    code, output = _invoke("--opportunities", str(opportunities), "--strict", "--out", str(tmp_path / "b.toml"))
    assert code == 2 and "line 5, column 'status': fewer fields" in " ".join(output.split())


def test_unclosed_quote_is_an_error_naming_the_line_where_it_opened(
    tmp_path: Path, earlier: tuple[Path, dict[str, tuple[bytes, int]]]
) -> None:
    """A quote opened on line 12 and never closed would swallow the 30 rows after it: exit 2 naming line 12."""
    rows = _rows()
    rows[10] = rows[10].replace(",Account 10,", ',"Account 10,')
    message = _refused(earlier, "--opportunities", str(_export(tmp_path / "opps.csv", rows)))
    assert "opps.csv, line 12, column 'name': a quote opens a field and is never closed" in message


def test_unclosed_quote_after_a_multiline_field_names_its_own_line(tmp_path: Path) -> None:
    """A closed quoted field spanning two lines before the open one: the line counted is where the quote opened."""
    rows = _rows()
    rows[4] = rows[4].replace(",Account 4,", ',"Account\nfour",')
    rows[5] = rows[5].replace(",web,", ',"web,')
    path = _export(tmp_path / "opps.csv", rows)
    with pytest.raises(Exception, match=r"line 8, column 'source': a quote opens a field"):
        read_opportunities(path)


def test_stray_quote_is_an_error_naming_the_line(tmp_path: Path, earlier: tuple[Path, dict]) -> None:
    """``"won"x`` is not CSV: exit 2 naming the line, not a silent guess."""
    rows = _rows()
    rows[2] = rows[2].replace(",web,", ',"web"x,')
    message = _refused(earlier, "--opportunities", str(_export(tmp_path / "opps.csv", rows)))
    assert "opps.csv, line 4: not valid CSV" in message


# --- 3. refusals ------------------------------------------------------------------------------------


def test_duplicate_column_names_are_refused(tmp_path: Path, earlier: tuple[Path, dict]) -> None:
    """Two columns called 'amount': which one is meant cannot be guessed."""
    path = _export(tmp_path / "opps.csv", [r + ",7" for r in _rows()], header=HEADER + ",amount")
    message = _refused(earlier, "--opportunities", str(path))
    assert "opps.csv, line 1: column 'amount' appears twice (columns 6 and 10)" in message


def test_field_over_one_mebibyte_is_refused(tmp_path: Path, earlier: tuple[Path, dict]) -> None:
    """A 1.5 MB account name (line 7) is refused with its line; a 200 kB one (over csv's default limit) is read."""
    rows = _rows()
    rows[5] = rows[5].replace(",Account 5,", "," + "x" * 1_500_000 + ",")
    message = _refused(earlier, "--opportunities", str(_export(tmp_path / "big.csv", rows)))
    assert "big.csv, line 7: a field is longer than 1.0 MiB" in message
    rows = _rows()
    rows[5] = rows[5].replace(",Account 5,", "," + "x" * 200_000 + ",")
    assert len(read_opportunities(_export(tmp_path / "long.csv", rows)).rows) == 40


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_utf16_and_utf32_exports_are_decoded(tmp_path: Path, encoding: str) -> None:
    """Excel's 'Unicode text' (UTF-16 with a byte-order mark, or without one) reads as the UTF-8 file does."""
    text = "\n".join([HEADER, *_rows()]).replace("Account 1,", "Äccount €,") + "\n"
    (tmp_path / "utf8.csv").write_text(text, encoding="utf-8")
    (tmp_path / "other.csv").write_text(text, encoding=encoding)
    a, b = read_opportunities(tmp_path / "utf8.csv"), read_opportunities(tmp_path / "other.csv")
    assert b.rows.equals(a.rows) and b.issues == [] and len(b.rows) == 40


def test_excel_workbook_is_refused_with_what_to_do(tmp_path: Path, earlier: tuple[Path, dict]) -> None:
    """An .xlsx (a zip) given as --opportunities: 'export it as CSV', whatever its name."""
    book = tmp_path / "deals.csv"
    with zipfile.ZipFile(book, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    message = _refused(earlier, "--opportunities", str(book))
    assert "deals.csv is an Excel workbook (.xlsx)" in message and "export it as CSV" in message


def test_binary_file_is_refused(tmp_path: Path, earlier: tuple[Path, dict]) -> None:
    """NUL bytes: not a text export."""
    (tmp_path / "blob.csv").write_bytes(HEADER.encode() + b"\n\x00\x01\x02\xff\xfe\x00\x00\x07")
    assert "blob.csv is binary (NUL bytes on line 2)" in _refused(
        earlier, "--opportunities", str(tmp_path / "blob.csv")
    )


@pytest.mark.parametrize("where", ["created", "closed"])
def test_date_in_year_10000_or_9999_is_refused_naming_line_and_column(
    tmp_path: Path, earlier: tuple[Path, dict], where: str
) -> None:
    """A created date in year 10000, or a won deal closed 9999-12-31: exit 2 naming the line and column."""
    rows = _rows()
    fields = rows[7].split(",")
    fields[2 if where == "created" else 3] = "10000-01-01" if where == "created" else "9999-12-31"
    fields[4] = "won"
    rows[7] = ",".join(fields)
    message = _refused(earlier, "--opportunities", str(_export(tmp_path / "opps.csv", rows)))
    assert f"opps.csv, line 9, column '{where}': a date's year is outside 1678-2261" in message


def test_placeholder_close_date_of_an_open_deal_is_ignored(tmp_path: Path) -> None:
    """9999-12-31 as the expected close of an *open* deal is ignored like any open deal's close date."""
    rows = [r.replace(",,open,", ",9999-12-31,open,") for r in _rows()]
    table = read_opportunities(_export(tmp_path / "opps.csv", rows))
    assert table.issues == [] and (table.rows["outcome"] == "open").sum() > 0


@pytest.mark.parametrize("as_of", ["9999-12-31", "garbage", "2027-02-30"])
def test_as_of_out_of_range_or_garbage_names_the_flag(tmp_path: Path, earlier: tuple[Path, dict], as_of: str) -> None:
    """--as-of must be a real date the simulation can start on."""
    out, before = earlier
    opportunities = _export(tmp_path / "opps.csv")
    result = CliRunner().invoke(
        app, ["calibrate", "--opportunities", str(opportunities), "--as-of", as_of, "--out", str(out), "--force"]
    )
    assert result.exit_code == 2, result.output
    assert "--as-of:" in result.output and "Traceback" not in result.output
    assert _snapshot(out.parent) == before


def test_folder_fifo_and_device_are_refused_before_reading(tmp_path: Path, earlier: tuple[Path, dict]) -> None:
    """A folder, a named pipe (no writer: reading it would hang) and /dev/zero (endless) are refused at once."""
    (tmp_path / "folder.csv").mkdir()
    assert "folder.csv' is a directory" in _refused(earlier, "--opportunities", str(tmp_path / "folder.csv"))
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.csv")
        message = _refused(earlier, "--opportunities", str(tmp_path / "pipe.csv"))
        assert "pipe.csv' is a FIFO (named pipe)" in message
    if Path("/dev/zero").exists():
        assert "/dev/zero' is a character device" in _refused(earlier, "--opportunities", "/dev/zero")
    clean = _export(tmp_path / "clean.csv")
    message = _refused(earlier, "--opportunities", str(clean), "--leads", str(tmp_path / "folder.csv"))
    assert "--leads: " in message and "is a directory" in message


def test_file_over_the_size_cap_is_refused_naming_the_setting(tmp_path: Path, earlier: tuple[Path, dict]) -> None:
    """Over FUNNELSIM_MAX_EXPORT_BYTES (default 1 GiB; here lowered to 1000 bytes): refused before reading."""
    opportunities = _export(tmp_path / "opps.csv")
    assert opportunities.stat().st_size > 1000
    message = _refused(earlier, "--opportunities", str(opportunities), env={"FUNNELSIM_MAX_EXPORT_BYTES": "1000"})
    assert "above the 1 kB limit" in message and "FUNNELSIM_MAX_EXPORT_BYTES" in message


def test_errors_never_echo_the_file(tmp_path: Path, earlier: tuple[Path, dict]) -> None:
    """A wrong path pointing at a private file (a passwd-like header, a token in a cell): the error names the file,
    the line and what is missing, but no byte of its content."""
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:SECRET-TOKEN-1:/root:/bin/bash\ndaemon:x:1:1::/:SECRET-TOKEN-2\n", encoding="utf-8")
    message = _refused(earlier, "--opportunities", str(secret))
    assert "no column for id, created" in message and "SECRET" not in message and "root:x" not in message
    rows = _rows()
    rows[2] = rows[2].replace("2027-", "SECRET-TOKEN-3-", 1)  # an unparseable created date
    message = _refused(earlier, "--opportunities", str(_export(tmp_path / "opps.csv", rows)), "--strict")
    assert "line 4, column 'created': unparseable created date" in message and "SECRET" not in message
    history = tmp_path / "history.csv"
    history.write_text("SECRET-TOKEN-4,b\n1,2\n", encoding="utf-8")
    message = _refused(earlier, "--opportunities", str(_export(tmp_path / "o.csv")), "--history", str(history))
    assert "--history" in message and "SECRET" not in message


# --- 4. the bootstrap ----------------------------------------------------------------------------------


def _old_bootstrap(days: np.ndarray, outcome: np.ndarray, boot: int, seed: int) -> np.ndarray:
    """The straightforward bootstrap the fast one replaces: one Aalen-Johansen table per resample."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(days), size=(boot, len(days)))
    return np.array([fitting.aalen_johansen(days[i], outcome[i])["cif_won"].iloc[-1] for i in idx])


def test_bootstrap_matches_one_table_per_resample_exactly() -> None:
    """Up to BOOT_MAX_DEALS deals the fast bootstrap draws the same resamples and gets the same numbers, bit for bit
    (ties, open deals after the last close and all)."""
    rng = np.random.default_rng(2)
    days = np.round(rng.lognormal(3.5, 0.7, 700), 0)  # rounded: many ties
    outcome = rng.choice(np.array(["won", "lost", "open"]), 700, p=[0.25, 0.45, 0.3])
    draws = _old_bootstrap(days, outcome, 60, 9)
    w = fitting.win_rate(days, outcome, boot=60, seed=9)
    assert w["ci_low"] == np.quantile(draws, 0.025) and w["ci_high"] == np.quantile(draws, 0.975)
    assert w["boot_deals"] == 700


def test_subsampled_bootstrap_agrees_with_the_full_one_within_its_monte_carlo_error() -> None:
    """m-out-of-n (2,000 of 20,000 deals) against the full bootstrap: the interval ends agree within the Monte Carlo
    error the docstring states (0.13 standard errors per end at B = 400, two independent bootstraps: x sqrt 2,
    4 sigma), and the variance within 4 x sqrt(2) x 7%."""
    rng = np.random.default_rng(4)
    n = 20_000
    days = rng.lognormal(3.5, 0.6, n)
    outcome = rng.choice(np.array(["won", "lost", "open"]), n, p=[0.2, 0.5, 0.3])
    full = fitting.win_rate(days, outcome, boot=400, seed=1)
    sub = fitting.win_rate(days, outcome, boot=400, seed=2, max_deals=2_000)
    assert sub["boot_deals"] == 2_000 and sub["competing_risks"] == full["competing_risks"]
    se = (full["ci_high"] - full["ci_low"]) / (2 * 1.96)
    tolerance = 4 * np.sqrt(2) * 0.13 * se
    assert abs(sub["ci_low"] - full["ci_low"]) < tolerance and abs(sub["ci_high"] - full["ci_high"]) < tolerance
    var_full = full["competing_risks"] * (1 - full["competing_risks"]) / (full["n_eff"] + 1)
    var_sub = sub["competing_risks"] * (1 - sub["competing_risks"]) / (sub["n_eff"] + 1)
    assert abs(var_sub / var_full - 1) < 4 * np.sqrt(2) * 0.071


def test_calibrate_library_call_refuses_an_as_of_date_out_of_range(tmp_path: Path) -> None:
    """The library checks a date given as a date too, not only the CLI's text."""
    import datetime as dt

    with pytest.raises(Exception, match="--as-of: 9999-12-31 is outside"):
        calibrate(_export(tmp_path / "opps.csv"), as_of=dt.date(9999, 12, 31))


def test_fixture_outputs_of_the_earlier_calibration_exist(earlier: tuple[Path, dict]) -> None:
    """The sentinel is real: a scenario, its pipeline and a report folder (else 'unchanged' would prove nothing)."""
    out, before = earlier
    assert out.name == "acme.toml"
    assert {"acme.toml", "acme.pipeline.csv", "acme.calibration/messy_rows.csv"} <= set(before)
