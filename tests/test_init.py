"""``funnelsim init``: a commented, valid scenario from a template or from a few answers, never over a file.

Each template is a bundled scenario with its comments; the answers typed at the prompts (CliRunner
``input=``) land in the file, which ``funnelsim validate`` accepts and ``funnelsim run`` runs.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import funnelsim
from funnelsim.cli import EXIT_BAD_INPUT, app
from funnelsim.report.starter import TEMPLATES

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def _init(*args: str, answers: str | None = None):
    return runner.invoke(app, ["init", *args], input=answers)


def _body(text: str) -> list[str]:
    """The lines after the header comment (the file's first key onwards)."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    return lines[first:]


def _comments(lines: list[str]) -> list[str]:
    return [line for line in lines if line.lstrip().startswith("#")]


@pytest.mark.parametrize("template", list(TEMPLATES))
def test_each_template_writes_a_commented_scenario_that_validates(template, tmp_path):
    """`init --template T` writes a file `funnelsim validate` accepts (in a folder of its own: nothing it
    needs is left behind), with the header saying what it is and the template's comments on its keys."""
    path = tmp_path / "company.toml"
    result = _init(str(path), "--template", template)
    assert result.exit_code == 0, result.output
    check = runner.invoke(app, ["validate", str(path)])
    assert check.exit_code == 0, check.output
    text = path.read_text()
    assert text.startswith(f"# {template}: a scenario written by `funnelsim init --template {template}`")
    bundled = (ROOT / "scenarios" / ("saas.toml" if template == "saas" else "baseline.toml")).read_text()
    assert _comments(_body(bundled)) == _comments(_body(text))  # every comment of the bundled file, in order
    assert "saas-customers.csv" not in text


def test_baseline_template_is_the_bundled_file_under_a_new_header(tmp_path):
    """Reuse, not a copy: with no answers the baseline template is the bundled baseline.toml, line for line."""
    path = tmp_path / "b.toml"
    assert _init(str(path), "--template", "baseline").exit_code == 0
    assert _body(path.read_text()) == _body((ROOT / "scenarios" / "baseline.toml").read_text())


def test_transactional_books_one_off_orders(tmp_path):
    """The transactional template has no subscription, smaller deals and shorter cycles than the baseline."""
    path = tmp_path / "t.toml"
    assert _init(str(path), "--template", "transactional").exit_code == 0
    raw = tomllib.loads(path.read_text())
    assert "subscription" not in raw and raw["sales"]["ae"]["hires"] == []
    assert raw["sales"]["deal_size"]["mean"] == 6000 and raw["sales"]["cycle_days"]["mean"] == 21
    assert "one-off order" in path.read_text()


def test_answers_at_the_prompts_land_in_the_file_and_it_runs(tmp_path):
    """A subscription business answering the questions gets the saas template with its name, currency,
    leads (the sources add up to them), SDRs and AEs (split between the segments), deal size and cycle;
    an answer that is not a positive number is asked again; the file runs."""
    path = tmp_path / "acme.toml"
    typed = ["y", "Acme Analytics", "EUR", "400", "0", "5", "6", "20000", "45"]  # "0" SDRs: asked again
    result = _init(str(path), "--ask", answers="\n".join(typed) + "\n")
    assert result.exit_code == 0, result.output
    assert "expected a number above 0" in result.output
    raw = tomllib.loads(path.read_text())
    assert raw["name"] == "Acme Analytics" and raw["currency"] == "EUR"
    assert sum(s["leads_per_month"] for s in raw["sources"].values()) == pytest.approx(400, abs=0.15)
    segments = raw["segments"]
    sdrs = [
        seg.get("handoff", {}).get("sdr", {}).get("count", raw["handoff"]["sdr"]["count"]) for seg in segments.values()
    ]
    aes = [seg.get("sales", {}).get("ae", {}).get("count", raw["sales"]["ae"]["count"]) for seg in segments.values()]
    assert sum(sdrs) == 5 and sum(aes) == 6 and min(sdrs) >= 1 and min(aes) >= 1
    assert raw["sales"]["deal_size"]["mean"] == 20000 and raw["sales"]["cycle_days"]["mean"] == 45
    assert raw["segments"]["mid_market"]["sales"]["deal_size"]["mean"] == pytest.approx(40000 * 20000 / 12000, abs=1)
    run = runner.invoke(app, ["run", str(path), "--runs", "1", "--json"])
    assert run.exit_code == 0, run.output
    doc = json.loads(run.stdout)
    assert doc["scenario"] == "Acme Analytics" and doc["currency"] == "EUR"


def test_no_subscription_answers_give_the_transactional_template(tmp_path):
    """Answering no to subscriptions, and Enter to every other question, writes the transactional template
    with the file's name as the company's."""
    path = tmp_path / "shop.toml"
    result = _init(str(path), "--ask", answers="n\n" + "\n" * 7)
    assert result.exit_code == 0, result.output
    raw = tomllib.loads(path.read_text())
    assert raw["name"] == "shop" and "subscription" not in raw and raw["sales"]["deal_size"]["mean"] == 6000
    assert "--template transactional" in path.read_text().splitlines()[0]


def test_an_existing_file_is_never_overwritten_without_force(tmp_path):
    """init refuses an existing file (exit 2, naming --force) and leaves it as it was; --force replaces it."""
    path = tmp_path / "mine.toml"
    path.write_text("# my own work\n")
    result = _init(str(path), "--template", "saas")
    assert result.exit_code == EXIT_BAD_INPUT and "--force" in result.output
    assert path.read_text() == "# my own work\n"
    assert _init(str(path), "--template", "saas", "--force").exit_code == 0
    assert tomllib.loads(path.read_text())["name"] == "saas"


def test_without_a_terminal_init_needs_a_template(tmp_path):
    """Not in a terminal (a script, CI) and no --template: exit 2 with a message naming the flag; nothing written."""
    path = tmp_path / "x.toml"
    result = _init(str(path))
    assert result.exit_code == EXIT_BAD_INPUT and "--template" in result.output and "Traceback" not in result.output
    assert not path.exists()
    bad = _init(str(path), "--template", "retail")
    assert bad.exit_code == EXIT_BAD_INPUT and "--template" in bad.output and not path.exists()


def _in_a_terminal(args: list[str], typed: str, timeout: float = 60) -> tuple[int, str]:
    """Run ``funnelsim ARGS`` with a pseudo-terminal as its input and output, ``typed`` at the keyboard."""
    master, slave = os.openpty()
    env = {**os.environ, "PYTHONPATH": str(Path(funnelsim.__file__).resolve().parents[1])}
    command = [sys.executable, "-m", "funnelsim", *args]
    proc = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    os.write(master, typed.encode())
    output, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        try:
            chunk = os.read(master, 4096) if ready else b""
        except OSError:  # the terminal closed: the command has finished
            break
        if ready and not chunk:
            break
        output += chunk
        if proc.poll() is not None and not ready:
            break
    os.close(master)
    if proc.poll() is None:  # still waiting for input after the deadline: a failure, not a hang
        proc.kill()
    return proc.wait(), output.decode(errors="replace")


def test_in_a_terminal_init_asks_without_a_template(tmp_path):
    """On a terminal, `funnelsim init PATH` alone asks the questions (no --ask needed) and writes the answers."""
    path = tmp_path / "shop.toml"
    code, output = _in_a_terminal(["init", str(path)], "n\nShop Ltd\nGBP\n500\n2\n3\n4000\n14\n")
    assert code == 0, output
    assert "Do you sell subscriptions" in output and "Company name [shop]" in output
    raw = tomllib.loads(path.read_text())
    assert raw["name"] == "Shop Ltd" and raw["currency"] == "GBP" and raw["handoff"]["sdr"]["count"] == 2
    assert raw["sales"]["ae"]["count"] == 3 and raw["sales"]["deal_size"]["mean"] == 4000
    assert raw["sales"]["cycle_days"]["mean"] == 14 and "subscription" not in raw
