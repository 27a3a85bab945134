"""Monte Carlo throughput: replications per second with 1 and 2 worker processes.

    python benchmarks/montecarlo.py [--runs 1000] [--scale baseline|100k] [--jobs 1 2]

Runs ``--runs`` replications of the scenario through :func:`funnelsim.studies.replications.run`
(the code path of ``funnelsim run --runs N --jobs J``) for each ``--jobs`` value, and
prints wall time, replications per second, parallel efficiency (``T1 / (J * TJ)``)
and the time 1,000 replications would take at that rate. As the reference, it also
times the straightforward loop a user would write by hand,
``[summarize_run(simulate(sc, seed, i)) for i in range(n)]``, on a sample of the same
replications in the same process, so the overhead of the Monte Carlo machinery
shows. The replication tables of every ``--jobs`` value are checked to be identical.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from engine import SCALE_100K  # the same 100k-lead company as benchmarks/engine.py
from funnelsim import load_scenario, simulate
from funnelsim.run.metrics import summarize_run
from funnelsim.studies import executors
from funnelsim.studies import replications as mc

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--scale", choices=["baseline", "100k"], default="baseline")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--reference-runs", type=int, default=20, help="replications timed with the plain loop")
    args = parser.parse_args()

    overrides = SCALE_100K if args.scale == "100k" else []
    scenario = load_scenario(ROOT / "scenarios" / "baseline.toml", overrides)
    simulate(scenario, seed=0)  # warm up imports and caches

    start = time.perf_counter()
    for i in range(args.reference_runs):
        summarize_run(simulate(scenario, seed=1, replication=i))
    per_run = (time.perf_counter() - start) / args.reference_runs
    print(f"{args.scale}: plain loop, {args.reference_runs} replications: {per_run:.3f} s each")

    tables: dict[int, pd.DataFrame] = {}
    times: dict[int, float] = {}
    for jobs in args.jobs:
        start = time.perf_counter()
        with executors.executor(jobs) as pool:
            reps = mc.run(scenario, args.runs, seed=1, pool=pool)
        times[jobs] = time.perf_counter() - start
        tables[jobs] = reps.table
        revenue = reps.summary().set_index("metric").loc["revenue"]
        print(
            f"  --jobs {jobs}: {args.runs} replications in {times[jobs]:.1f} s -> "
            f"{args.runs / times[jobs]:.2f} replications/s; "
            f"efficiency {times[min(times)] * min(times) / (jobs * times[jobs]):.0%}; "
            f"overhead vs plain loop {times[jobs] * jobs / (args.runs * per_run) - 1:+.0%}; "
            f"mean revenue {revenue['mean']:,.0f} (95% CI {revenue['ci_low']:,.0f}-{revenue['ci_high']:,.0f}); "
            f"1,000 replications would take {1000 * times[jobs] / args.runs / 60:.1f} min"
        )
    first = tables[args.jobs[0]]
    for table in tables.values():
        pd.testing.assert_frame_equal(table, first, check_exact=True)
    print(f"  replication tables identical for --jobs {', '.join(map(str, args.jobs))}")


if __name__ == "__main__":
    main()
