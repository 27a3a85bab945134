"""The back-test of a company with a real marketing funnel: does a forecast from a calibrated
CRM export cover what happened next?

``tests/test_backtest.py`` checks the back-test machinery on a company built to isolate it
(demo requests entering at MQL, capacity that never queues). This study is the harder case:
the truth is ``scenarios/baseline.toml`` itself (nurture up to 180 days, 3 SDRs, three
personas with their own deal sizes, AE hires and attrition). Each history (seed 1000 + i)
simulates the baseline for 830 days, is exported whole as Salesforce files (opportunities and
leads), and is back-tested with the baseline as calibrate's base: fitted on what happened before
the cut-off (2028-07-01, after 18 months), three quarters forecast. History ``i`` keeps quarter
``i mod 3 + 1`` only, so the trials are independent; every quarter is also pooled.

Run (from the repository root)::

    python experiments/backtest/run.py --jobs 2              # 20 histories, 50 replications, ~15 min
    python experiments/backtest/run.py --histories 4 --runs 20   # a smoke check

Writes ``experiments/backtest/results/`` (``scores.csv``: one row per history, quarter and
metric; ``report.txt``: the printed report).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from funnelsim.calibrate import export_leads, export_opportunities
from funnelsim.calibrate.backtest import backtest
from funnelsim.engine import simulate
from funnelsim.model.loading import load_scenario
from funnelsim.studies import executors
from funnelsim.studies.backtest import METRICS

HERE = Path(__file__).resolve().parent
BASELINE = HERE.parent.parent / "scenarios" / "baseline.toml"
AS_OF = dt.date(2028, 7, 1)
QUARTERS = 3
DAYS = 830  # 2027-01-01 to past the end of the third quarter after the cut-off


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--histories", type=int, default=20)
    ap.add_argument("--runs", type=int, default=50, help="forecast replications per history")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)

    truth = load_scenario(BASELINE, [f"horizon_days={DAYS}"])
    rows = []
    started = time.perf_counter()
    with executors.executor(args.jobs) as pool, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i in range(args.histories):
            result = simulate(truth, seed=1000 + i)
            export_opportunities(result, "salesforce").to_csv(folder / "opps.csv", index=False)
            export_leads(result, "salesforce").to_csv(folder / "leads.csv", index=False)
            bt = backtest(
                folder / "opps.csv", as_of=AS_OF, quarters=QUARTERS, leads=folder / "leads.csv", base=BASELINE,
                runs=args.runs, seed=7 + i, pool=pool,
            )  # fmt: skip
            scores = bt.scores.assign(history=i, kept=lambda s, i=i: s["quarter"] == i % QUARTERS + 1)
            rows.append(scores)
            print(f"history {i}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    scores = pd.concat(rows, ignore_index=True)
    args.out.mkdir(parents=True, exist_ok=True)
    scores.to_csv(args.out / "scores.csv", index=False)
    report = _report(scores, args.runs)
    (args.out / "report.txt").write_text(report)
    print(report)


def _report(scores: pd.DataFrame, runs: int) -> str:
    lines = [
        f"baseline back-test: {scores['history'].nunique()} histories, cut-off {AS_OF}, {QUARTERS} quarters, "
        f"{runs} replications each"
    ]
    for metric in METRICS:
        rows = scores[scores["metric"] == metric]
        kept = rows[rows["kept"]]
        inside, n = int(kept["inside"].sum()), len(kept)
        cp = stats.binomtest(inside, n).proportion_ci(0.95, method="exact")
        lines.append(
            f"{metric}: one quarter per history {inside}/{n} inside P10-P90 ({inside / n:.0%}, 95% CI "
            f"{cp.low:.0%}-{cp.high:.0%}); the bands promise {kept['band_share'].mean():.0%}; "
            f"pooled over all quarters {rows['inside'].mean():.0%}; mean PIT {rows['pit'].mean():.2f}"
        )
        for quarter, q in rows.groupby("quarter"):
            lines.append(
                f"  quarter {quarter}: mean P50 {q['p50'].mean():,.0f} against mean actual {q['actual'].mean():,.0f}; "
                f"{int(q['inside'].sum())}/{len(q)} inside"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
