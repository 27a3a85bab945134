"""Engine speed as ratios in one process: against the least work (``limit.py``) and the per-lead reference.

    python benchmarks/engine.py [--repeats 5] [--no-reference] [--scenarios baseline aligned ...]

Each bundled scenario is scaled to about 100,000 leads a year and 45 reps (9 SDRs, 30
AEs growing to 38) and run from a cold start (the pipeline scenario with its deals on
day 0), so the three models simulate the same year. For each scenario the engine and
the limit run alternately, ``--repeats`` times each on replications 1, 2, ...; the
script prints the median seconds of each and **engine ÷ limit**. On the first scenario
the one-process-per-lead reference model takes its turn in the alternation as well (about
20 s a run), for **reference ÷ engine**. Medians of alternating runs in one process: a shared machine's
drift reaches both sides alike. Absolute seconds are printed beside the ratios only.

The mean wins and revenue of the timed runs are printed as a sanity check that the
models simulate the same funnel (the statistical comparisons are tests/test_limit.py
and tests/test_oracle.py).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from funnelsim import load_scenario, simulate, simulate_reference, summary
from limit import simulate_limit

ROOT = Path(__file__).resolve().parent.parent
SCALE_100K = [
    "sources.inbound.leads_per_month=7000",
    "sources.events.leads_per_month=1100",
    "sources.partner.leads_per_month=220",
    "handoff.sdr.count=9",
    "sales.ae.count=30",
    "sales.ae.hires=[{date=2027-04-01, count=4}, {date=2027-07-01, count=4}]",
]
SCENARIOS = ("baseline", "aligned", "misaligned", "baseline-with-pipeline")


def scaled(name: str) -> Any:
    """A bundled scenario at about 100,000 leads a year, started cold (a pipeline one: its deals on day 0)."""
    start = "burn_in_days=0" if name == "baseline-with-pipeline" else 'start="cold"'
    return load_scenario(ROOT / "scenarios" / f"{name}.toml", [*SCALE_100K, start])


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds of one call, after a full garbage collection (the previous run's garbage is not billed to this one)."""
    gc.collect()
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def headline(result: Any) -> dict[str, float]:
    return result if isinstance(result, dict) else summary(result.events)


def compare(models: dict[str, Callable[[int], Any]], repeats: int) -> dict[str, tuple[float, dict[str, float]]]:
    """Median seconds and mean wins / revenue of each model, the models alternating run by run."""
    seconds: dict[str, list[float]] = {name: [] for name in models}
    outputs: dict[str, list[dict[str, float]]] = {name: [] for name in models}
    for i in range(1, repeats + 1):
        for name, run in models.items():
            took, out = timed(lambda run=run, i=i: run(i))
            seconds[name].append(took)
            outputs[name].append(headline(out))
    return {
        name: (
            statistics.median(seconds[name]),
            {k: statistics.mean(o[k] for o in outputs[name]) for k in ("leads", "wins", "revenue")},
        )
        for name in models
    }


def report(scenario: str, rows: dict[str, tuple[float, dict[str, float]]]) -> None:
    for name, (median, means) in rows.items():
        print(
            f"  {name:>9}: median {median:.3f} s; mean leads {means['leads']:,.0f}, wins {means['wins']:,.1f}, "
            f"revenue {means['revenue']:,.0f}"
        )
    engine = rows["engine"][0]
    print(f"  {scenario}: engine / limit = {engine / rows['limit'][0]:.2f} (target <= 2.0)")
    if "reference" in rows:
        print(f"  {scenario}: reference / engine = {rows['reference'][0] / engine:.1f} (target >= 100)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of the engine and of the limit")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference model")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    args = parser.parse_args()
    for n, name in enumerate(args.scenarios):
        sc = scaled(name)
        simulate(sc, seed=1, replication=0)  # imports, caches
        simulate_limit(sc, 1, 0)
        models: dict[str, Callable[[int], Any]] = {
            "engine": lambda i, sc=sc: simulate(sc, seed=1, replication=i),
            "limit": lambda i, sc=sc: simulate_limit(sc, 1, i),
        }
        if n == 0 and not args.no_reference:
            models["reference"] = lambda i, sc=sc: simulate_reference(sc, seed=1, replication=i)
        print(f"{name} (100k-lead year, {args.repeats} alternating runs each):")
        rows = compare(models, args.repeats)
        report(name, rows)


if __name__ == "__main__":
    main()
