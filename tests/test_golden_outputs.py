"""Golden outputs: every table each command writes, hashed, so a refactor that moves a number shows up.

For each command (``run``, ``run --runs``, ``compare --attribute``, ``sweep``,
``sensitivity``, ``plan``, ``calibrate``) on small versions of the bundled scenarios and a
fixed seed, every CSV and JSON file of the output folder (not the figures) is read,
normalised and hashed; the hashes are committed in ``tests/golden-outputs.json``.

Normalised means: floats rounded to 10 significant digits and JSON keys that say when and
with what the folder was written (creation time, library versions, paths) left out. The
rounding is what makes the hashes hold across machines: numpy picks its exp kernel by CPU,
and kernels differ in the last bit (a 1e-16 difference survives 10 digits except within
1e-16 of a rounding boundary). After an intended change, regenerate with
``python tests/test_golden_outputs.py`` and commit the new hashes in a commit that says why.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from funnelsim.cli import app

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from scaled import TENTH  # noqa: E402

GOLDEN = Path(__file__).parent / "golden-outputs.json"
SCENARIOS = ROOT / "scenarios"
SMALL = [f"--set={o}" for o in ("horizon_days=120", *TENTH)]
VOLATILE = {"created_at", "libraries", "funnelsim_version", "figure_format", "files", "path", "source_path"}

COMMANDS: dict[str, list[str]] = {
    "run": ["run", str(SCENARIOS / "baseline.toml"), *SMALL, "--seed", "5"],
    "run-pipeline": ["run", str(SCENARIOS / "baseline-with-pipeline.toml"), "--set=horizon_days=120", "--seed", "5"],
    "run-runs": ["run", str(SCENARIOS / "baseline.toml"), *SMALL, "--runs", "12", "--seed", "5", "--goal", "150k"],
    "compare": [
        "compare",
        str(SCENARIOS / "misaligned.toml"),
        str(SCENARIOS / "aligned.toml"),
        *SMALL,
        "--runs",
        "4",
        "--seed",
        "5",
        "--lever",
        "definition=qualification",
        "--lever",
        "sla=handoff.response_delay_days",
    ],
    "sweep": [
        "sweep",
        str(SCENARIOS / "baseline.toml"),
        *SMALL,
        "--param",
        "qualification.mql.threshold=0.5,0.6",
        "--runs",
        "4",
        "--seed",
        "5",
    ],
    "sensitivity": [
        "sensitivity",
        str(SCENARIOS / "baseline.toml"),
        *SMALL,
        "--param",
        "sales.win_rate",
        "--param",
        "handoff.follow_up_rate",
        "--runs",
        "4",
        "--seed",
        "5",
    ],
    "plan": [
        "plan",
        str(SCENARIOS / "baseline.toml"),
        "--set=sources.inbound.leads_per_month=250",
        "--set=sources.events.leads_per_month=40",
        "--set=sources.partner.leads_per_month=8",
        "--goal",
        "600k",
        "--runs",
        "10",
        "--verify-runs",
        "100",
        "--seed",
        "5",
        "--lead-in",
        "2",
    ],
}


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return value if not math.isfinite(value) or value == 0 else float(f"{value:.10g}")
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_round(v) for v in value]
    return value


def _normalised(path: Path) -> bytes:
    if path.suffix == ".json":
        return json.dumps(_round(json.loads(path.read_text())), sort_keys=True).encode()
    if path.name.endswith(".toml"):
        return b"\n".join(line for line in path.read_bytes().splitlines() if not line.startswith(b"#"))
    frame = pd.read_csv(path)
    for column in frame.columns:
        if frame[column].dtype.kind == "f":
            frame[column] = [_round(float(x)) for x in frame[column]]
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode()


def _hashes(folder: Path) -> dict[str, str]:
    tables = sorted(
        p for p in folder.rglob("*") if p.is_file() and (p.suffix in (".csv", ".json") or p.name.endswith(".toml"))
    )
    return {p.relative_to(folder).as_posix(): hashlib.sha256(_normalised(p)).hexdigest()[:16] for p in tables}


def outputs(name: str, tmp: Path) -> dict[str, str]:
    """The hashes of every table command ``name`` writes (its folder, or calibrate's files)."""
    if name == "calibrate":
        out = tmp / "acme.toml"
        args = ["calibrate", "--opportunities", str(ROOT / "examples" / "crm" / "opportunities.csv"), "--out", str(out)]
        args += ["--as-of", "2028-06-30"]
        folder = tmp
    else:
        folder = tmp / name
        args = [*COMMANDS[name], "--out", str(folder), "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return _hashes(folder)


NAMES = [*COMMANDS, "calibrate"]


@pytest.mark.parametrize("name", NAMES)
def test_outputs_match_the_golden_hashes(name: str, tmp_path: Path) -> None:
    """Every table of the command's output folder hashes as committed (see the module docstring)."""
    expected = json.loads(GOLDEN.read_text())[name]
    assert outputs(name, tmp_path) == expected


def _regenerate() -> None:
    import tempfile

    hashes = {}
    for name in NAMES:
        with tempfile.TemporaryDirectory() as tmp:
            hashes[name] = outputs(name, Path(tmp))
    GOLDEN.write_text(json.dumps(hashes, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    _regenerate()
