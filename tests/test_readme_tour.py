"""The README's tour draws every picture it shows: each image under docs/img has the tour command that
writes it, and running that command writes the figure.

Every image of the README is either a figure of a tour command's ``--out`` folder (:data:`TOUR`) or a
screenshot of a page, retaken by a script (:data:`SCREENSHOTS`; the pages themselves are checked in a
browser by tests/test_report_browser.py and tests/test_serve_browser.py). The commands are read from the
README's console blocks, so a command edited there is the one run here. In the default run they run with
fewer replications (``--runs`` at most 2, a plan's at most 10 with 40 verification runs, one worker): the
same flags, files and code paths, in seconds; ``pytest -m slow`` runs them as written.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

TOUR = {
    "baseline-funnel.png": ("results/baseline", "figures/funnel.png"),
    "baseline-leakage.png": ("results/baseline", "figures/leakage.png"),
    "alignment-levers.png": ("results/gap", "figures/levers.png"),
    "baseline-mql-sweep.png": ("results/mql", "figures/sweep.png"),
    "baseline-tornado.png": ("results/sensitivity", "figures/tornado.png"),
    "baseline-plan-quotas.png": ("results/plan-7m", "figures/quotas.png"),
    "baseline-attainment.png": ("results/quota", "figures/attainment.png"),
    "baseline-pipeline-views.png": ("results/quota", "figures/pipeline_views.png"),
    "saas-arr-bridge.png": ("results/saas", "figures/arr_bridge.png"),
}
"""README image -> (the ``--out`` folder of the tour command that draws it, the figure in that folder)."""

SCREENSHOTS = {"whatif.png": "docs/img/whatif.py", "report.png": "docs/screenshots.py"}
"""README screenshots of a page -> the script that retakes them."""


def _images() -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(docs/img/([^)\s]+)\)", README)


def _commands() -> dict[str, list[str]]:
    """The README's console commands that write an ``--out`` folder, by folder (joined continuation lines)."""
    out: dict[str, list[str]] = {}
    for block in re.findall(r"```console\n(.*?)```", README, flags=re.S):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            if not line.startswith("$ funnelsim "):
                continue
            words = shlex.split(line[2:].split("  #")[0], comments=True)
            if "--out" in words:
                out[words[words.index("--out") + 1]] = words
    return out


def _shrunk(words: list[str]) -> list[str]:
    """The command with fewer replications and one worker (see the module docstring)."""
    shrunk, plan = list(words), words[1] == "plan"
    for flag, cap in (("--runs", 10 if plan else 2), ("--verify-runs", 40), ("--jobs", 1)):
        if flag in shrunk:
            i = shrunk.index(flag) + 1
            shrunk[i] = str(min(int(shrunk[i]), cap))
        elif (flag == "--runs" and words[1] in ("compare", "sweep", "sensitivity", "plan")) or (
            flag == "--verify-runs" and plan
        ):
            shrunk += [flag, str(cap)]
    return shrunk


def test_every_picture_of_the_readme_has_the_command_that_draws_it() -> None:
    images = _images()
    assert images, "the README shows no image"
    commands = _commands()
    for image in images:
        assert (ROOT / "docs" / "img" / image).is_file(), image
        if image in SCREENSHOTS:
            assert (ROOT / SCREENSHOTS[image]).is_file(), SCREENSHOTS[image]
            continue
        assert image in TOUR, f"{image}: which tour command draws it? (add it to TOUR)"
        folder, _ = TOUR[image]
        assert folder in commands, f"{image}: no README console command writes --out {folder}"
    assert set(TOUR) <= set(images), "TOUR lists an image the README no longer shows"


def _run_tour_command(folder: str, words: list[str], cwd: Path) -> None:
    # The tour runs from the repository's root: its scenario paths are relative to it.
    for i, word in enumerate(words):
        if (ROOT / word).is_file():
            words[i] = str(ROOT / word)
    done = subprocess.run(
        [sys.executable, "-m", "funnelsim", *words[1:], "-q"], capture_output=True, text=True, cwd=cwd, timeout=900
    )
    assert done.returncode == 0, done.stderr[-2000:]
    drawn = [figure for image, (f, figure) in TOUR.items() if f == folder]
    for figure in drawn:
        assert (cwd / folder / figure).is_file(), f"{' '.join(words)} did not write {figure}"
    assert (cwd / folder / "report.html").is_file()


@pytest.mark.parametrize("folder", sorted({folder for folder, _ in TOUR.values()}))
def test_the_tour_command_writes_the_figures_the_readme_shows(folder: str, tmp_path: Path) -> None:
    _run_tour_command(folder, _shrunk(_commands()[folder]), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("folder", sorted({folder for folder, _ in TOUR.values()}))
def test_the_tour_command_as_written_writes_the_figures(folder: str, tmp_path: Path) -> None:
    _run_tour_command(folder, list(_commands()[folder]), tmp_path)


def test_the_readme_states_no_run_times() -> None:
    """Timing claims are ratios from benchmarks/ or gone: seconds on one machine are noise on another (the
    README once said a plan took minutes it did not on a fresh machine)."""
    claims = re.findall(
        r"(?:takes?|took|runs? in|finish(?:es)? in|in about|about) ~?\d[\d.,]* ?"
        r"(?:s|sec|seconds?|min|minutes?|h|hours?)\b",
        README,
        flags=re.I,
    )
    assert claims == [], claims
