"""The work estimate of funnelsim.studies.workload against what a run really costs.

    python benchmarks/workload.py [--quick]

Each case runs one replication of the baseline company, scaled, in a fresh Python
process (so peak memory is that run's alone), and prints the estimated and measured
seconds and peak memory with their ratio. The estimate's coefficients were chosen from
this table so that estimated / measured stays between about 1 and 3 for every case:
pessimistic enough to refuse a typo before it eats the machine, close enough not to
refuse honest work. Absolute seconds depend on the machine and its load; the ratios are
what to compare.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from funnelsim import load_scenario
from funnelsim.studies.workload import estimate

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scenarios" / "baseline.toml"
VOLUMES = {"inbound": 2500, "events": 400, "partner": 80}

CHILD = """
import json, resource, sys, time
from funnelsim import load_scenario, simulate
from funnelsim.run.metrics import summarize_run
sc = load_scenario(sys.argv[1], json.loads(sys.argv[2]))
start = time.perf_counter()
result = simulate(sc, seed=1)
summarize_run(result)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "peak_bytes": peak, "leads": len(result.attributes)}))
"""


def overrides(scale: float, horizon: int = 365, aes: int | None = None) -> list[str]:
    sets = [f"sources.{name}.leads_per_month={volume * scale:g}" for name, volume in VOLUMES.items()]
    sets.append(f"horizon_days={horizon}")
    if aes is not None:
        sets += [f"sales.ae.count={aes}", f"handoff.sdr.count={max(3, aes // 3)}"]
    return sets


def measure(sets: list[str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(BASELINE), json.dumps(sets)], capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only the small cases")
    args = parser.parse_args()
    cases = [("baseline x0.3", overrides(0.3)), ("baseline", overrides(1)), ("baseline x3", overrides(3))]
    if not args.quick:
        cases += [
            ("baseline x10", overrides(10)),
            ("baseline, 5 years", overrides(1, horizon=1825)),
            ("baseline x3, 1,000 AEs", overrides(3, aes=1000)),
        ]
    print(f"{'case':<26}{'leads':>11}{'est s':>8}{'meas s':>8}{'ratio':>7}{'est MB':>9}{'meas MB':>9}{'ratio':>7}")
    for label, sets in cases:
        work = estimate(load_scenario(BASELINE, sets))
        got = measure(sets)
        est_mb, got_mb = work.memory_bytes / 1e6, got["peak_bytes"] / 1e6
        print(
            f"{label:<26}{got['leads']:>11,.0f}{work.seconds:>8.2f}{got['seconds']:>8.2f}"
            f"{work.seconds / got['seconds']:>7.2f}{est_mb:>9,.0f}{got_mb:>9,.0f}{est_mb / got_mb:>7.2f}"
        )


if __name__ == "__main__":
    main()
