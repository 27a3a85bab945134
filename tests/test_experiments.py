"""The experiments reproduce: each one's quick run prints exactly its committed output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

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
