"""Planner speed: time to plan the baseline scenario at 80% confidence.

    python benchmarks/planner.py [--goal 5M] [--runs 100] [--jobs 2] [--no-reference]

Times :func:`funnelsim.studies.planner.plan` (the code path of ``funnelsim plan``) on the
bundled baseline, and as the reference, in the same process, the straightforward
search a user would write: bisection on the same 2% grid of lead volumes between half
and twice the analytic guess, ``runs`` replications per step on the same seeds. Prints
wall time, candidates simulated, replications run and the plans found.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from funnelsim import load_scenario
from funnelsim.studies import executors, planner
from funnelsim.studies import replications as mc
from funnelsim.units import parse_amount

ROOT = Path(__file__).resolve().parent.parent


def reference(sc, goal, confidence, runs, seed, pool) -> tuple[float, int]:
    """Plain bisection on the lead grid from the analytic bracket; returns (multiplier, candidates)."""
    period = planner.Period.of(sc)
    framed = planner.frame(sc, period, 7)
    k0 = planner.analytic_multiplier(framed, period, goal)
    step = math.log(planner.STEP)
    lo, hi = math.floor(math.log(k0 / 2) / step), math.ceil(math.log(2 * k0) / step)
    tried = 0

    def ok(j: int) -> bool:
        nonlocal tried
        tried += 1
        changes = planner.planned_changes(framed, planner.STEP**j)
        reps = mc.run(planner.apply_changes(framed, changes), runs, seed, pool)
        return (planner.period_revenue(reps.monthly, period) >= goal).mean() >= confidence

    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return planner.STEP**hi, tried


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--goal", default="5M")
    parser.add_argument("--confidence", type=float, default=0.8)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-reference", action="store_true")
    args = parser.parse_args()
    goal = parse_amount(args.goal)
    sc = load_scenario(ROOT / "scenarios" / "baseline.toml")
    with executors.executor(args.jobs) as pool:
        start = time.perf_counter()
        result, diagnostics = planner.plan(sc, goal, args.confidence, runs=args.runs, seed=1, pool=pool)
        took = time.perf_counter() - start
        simulated = diagnostics.simulated
        print(
            f"funnelsim plan baseline --goal {args.goal} --confidence {args.confidence} --runs {args.runs} "
            f"--jobs {args.jobs}: {took:.1f} s; {len(diagnostics.candidates)} candidates, {simulated} replications "
            f"({result.lead_in_months}-month lead-in); leads x{result.lead_multiplier:.3f} "
            f"(analytic x{diagnostics.analytic_multiplier:.3f}), P(goal) {result.p_goal['estimate']:.0%}"
        )
        if not args.no_reference:
            start = time.perf_counter()
            k, tried = reference(sc, goal, args.confidence, args.runs, 1, pool)
            took_ref = time.perf_counter() - start
            print(
                f"reference bisection: {took_ref:.1f} s; {tried} candidates, {tried * args.runs} replications; "
                f"leads x{k:.3f}; planner is {took_ref / took:.1f}x faster"
            )


if __name__ == "__main__":
    main()
