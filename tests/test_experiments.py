"""The experiments reproduce: each one's quick run prints exactly its committed output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def test_alignment_study_quick_run_prints_its_committed_report(tmp_path: Path) -> None:
    """Same code, scenarios and seed: the same report, line for line (update with
    ``python experiments/alignment/run.py --quick > experiments/alignment/expected-quick.txt``)."""
    out = tmp_path / "results"
    script = EXPERIMENTS / "alignment" / "run.py"
    done = subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(out)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    expected = (EXPERIMENTS / "alignment" / "expected-quick.txt").read_text()
    assert done.stdout == expected
    assert (out / "report.txt").read_text() == expected
    # The tables and figures the README shows are written too.
    assert {"comparison", "sensitivity", "mql-sweep", "published.csv", "report.txt"} <= {p.name for p in out.iterdir()}
    assert (out / "comparison" / "figures" / "levers.png").exists()
    levers = pd.read_csv(out / "comparison" / "attribution.csv").set_index("lever")
    gap = levers.loc["total", "contribution"]
    assert abs(levers.drop("total")["contribution"].sum() - gap) <= 1e-6 * abs(gap)


def test_levels_study_quick_run_prints_its_committed_report(tmp_path: Path) -> None:
    """The four-level study (experiments/alignment/levels.py) at a tenth of the company: same
    code, scenarios and seed, the same report line for line (update with ``python
    experiments/alignment/levels.py --quick > experiments/alignment/expected-levels-quick.txt``),
    and the tables and figures its README shows, consistent with each other."""
    out = tmp_path / "levels"
    script = EXPERIMENTS / "alignment" / "levels.py"
    done = subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(out)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    expected = (EXPERIMENTS / "alignment" / "expected-levels-quick.txt").read_text()
    assert done.stdout == expected
    assert (out / "report.txt").read_text() == expected
    written = {p.name for p in out.iterdir()}
    assert {"levels.csv", "steps.csv", "replications.csv", "bars.csv", "integration.csv"} <= written
    assert {"revenue.png", "bars.png"} <= written
    # The split of the last step adds up to that step's paired revenue difference.
    split = pd.read_csv(out / "integration.csv").set_index("lever")
    steps = pd.read_csv(out / "steps.csv").set_index(["metric", "from", "to"])
    gap = steps.loc[("revenue", "aligned", "integrated"), "difference"]
    assert split.loc["total", "contribution"] == pytest.approx(gap, rel=1e-9)
    assert split.drop("total")["contribution"].sum() == pytest.approx(gap, rel=1e-9)
