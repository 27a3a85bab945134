"""Engine speed: the fast engine against the one-process-per-lead reference, in one process.

    python benchmarks/engine.py [--repeats 5] [--reference-repeats 1]

The scenario is the baseline company scaled to about 100,000 leads a year and 45
reps (9 SDRs, 30 AEs growing to 38). Prints leads per second for each model,
the speed-up, and the mean wins / revenue of the timed runs as a sanity check
that both simulate the same funnel (the statistical comparison is in
tests/test_oracle.py).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from funnelsim import load_scenario, simulate, simulate_reference, summary

ROOT = Path(__file__).resolve().parent.parent
SCALE_100K = [
    "sources.inbound.leads_per_month=7000",
    "sources.events.leads_per_month=1100",
    "sources.partner.leads_per_month=220",
    "handoff.sdr.count=9",
    "sales.ae.count=30",
    "sales.ae.hires=[{date=2027-04-01, count=4}, {date=2027-07-01, count=4}]",
]


def _time(fn, scenario, repeats: int, first_replication: int) -> tuple[list[float], list[dict]]:
    seconds, stats = [], []
    for i in range(repeats):
        start = time.perf_counter()
        result = fn(scenario, seed=1, replication=first_replication + i)
        seconds.append(time.perf_counter() - start)
        stats.append({"leads": len(result.attributes), **summary(result.events)})
    return seconds, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of the fast engine")
    parser.add_argument("--reference-repeats", type=int, default=1, help="timed runs of the reference model")
    args = parser.parse_args()

    scenario = load_scenario(ROOT / "scenarios" / "baseline.toml", SCALE_100K)
    simulate(scenario, seed=0)  # warm up imports and caches
    rows = {}
    for name, fn, repeats in (
        ("engine", simulate, args.repeats),
        ("reference", simulate_reference, args.reference_repeats),
    ):
        seconds, stats = _time(fn, scenario, repeats, 0)
        leads = statistics.mean(s["leads"] for s in stats)
        best = min(seconds)
        rows[name] = leads / best
        print(
            f"{name:>9}: {leads:,.0f} leads/year, best {best:.3f} s, median {statistics.median(seconds):.3f} s "
            f"over {repeats} runs -> {leads / best:,.0f} leads/s; "
            f"mean wins {statistics.mean(s['wins'] for s in stats):,.0f}, "
            f"mean revenue {statistics.mean(s['revenue'] for s in stats):,.0f}"
        )
    print(f"  speed-up: {rows['engine'] / rows['reference']:.1f}x (target >= 10x; 100k-lead year < 1 s)")


if __name__ == "__main__":
    main()
