"""Calibrate speed and memory: a synthetic Salesforce opportunities export of 100k and 1M rows.

    python benchmarks/calibrate.py [--rows 100000 1000000] [--keep DIR]

Writes, per size, an export with the columns of ``tests/crm/salesforce_opportunities.csv``
(deals created over two years, lognormal cycles of mean 60 days, a quarter won, the rest
lost or still open on the as-of date, 40 owners), then calibrates it in a *fresh*
subprocess -- read, fit, write the scenario, pipeline and report folder, as
``funnelsim calibrate`` does -- so the peak resident memory (``ru_maxrss``) is that of the
calibration alone, not of the generator or of the previous size. Prints one line per size:
rows, seconds (wall, per phase and total) and peak MB.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "tests" / "crm" / "salesforce_opportunities.csv"
AS_OF = pd.Timestamp("2027-01-01")


def generate(rows: int, path: Path, seed: int = 1) -> None:
    """A Salesforce-style opportunities export of ``rows`` deals as seen on :data:`AS_OF`."""
    with TEMPLATE.open(newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    rng = np.random.default_rng(seed)
    created = AS_OF - pd.to_timedelta(rng.uniform(1, 730, rows), unit="D")
    sigma = np.sqrt(np.log(1 + (35 / 60) ** 2))
    cycle = rng.lognormal(np.log(60) - sigma**2 / 2, sigma, rows)
    closed = created + pd.to_timedelta(cycle, unit="D")
    won = rng.random(rows) < 0.25
    is_closed = closed < AS_OF
    stage = np.where(is_closed, np.where(won, "Closed Won", "Closed Lost"), "Negotiation/Review")
    amount = np.round(rng.lognormal(np.log(25000) - 0.2, 0.6, rows), 2)
    frame = pd.DataFrame(
        {
            "Id": [f"006{i:09d}" for i in range(rows)],
            "Name": [f"Account {i % 5000}" for i in range(rows)],
            "CreatedDate": created.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "CloseDate": closed.strftime("%Y-%m-%d"),  # open deals: Salesforce's expected close date
            "StageName": stage,
            "Amount": amount,
            "IsWon": np.where(is_closed & won, "true", "false"),
            "IsClosed": np.where(is_closed, "true", "false"),
            "OwnerId": [f"005{k:03d}" for k in rng.integers(0, 40, rows)],
            "LeadSource": rng.choice(["Web", "Partner", "Event", "Outbound"], rows),
            "Type": rng.choice(["New Business", "Existing Business"], rows),
        }
    )
    assert list(frame.columns) == header, "the template's columns changed: update the generator"
    frame.to_csv(path, index=False)


def child(path: Path, out: Path) -> None:
    """Calibrate ``path`` and write to ``out``; print the phase timings and peak memory as JSON."""
    from funnelsim.calibrate import calibrate
    from funnelsim.report.calibration import write_calibration

    start = time.perf_counter()
    cal = calibrate(path, as_of=str(AS_OF.date()))
    fitted = time.perf_counter()
    write_calibration(cal, out)
    done = time.perf_counter()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    print(json.dumps({"calibrate_s": fitted - start, "write_s": done - fitted, "peak_mb": peak_kb / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--keep", type=Path, help="Folder to keep the exports and outputs in (default: temporary).")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"{'rows':>10} {'calibrate s':>12} {'write s':>8} {'total s':>8} {'peak MB':>8}")
        for rows in args.rows:
            export = folder / f"opportunities_{rows}.csv"
            generate(rows, export)
            out = folder / f"calibrated_{rows}.toml"
            for stale in (out, out.with_name(out.stem + ".pipeline.csv")):
                stale.unlink(missing_ok=True)
            shutil.rmtree(out.with_name(out.stem + ".calibration"), ignore_errors=True)
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(export), str(out)],
                check=True,
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - start
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{rows:>10} {r['calibrate_s']:>12.1f} {r['write_s']:>8.1f} {wall:>8.1f} {r['peak_mb']:>8.0f}")


if __name__ == "__main__":
    main()
