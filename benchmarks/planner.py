"""Planner speed: time to plan the baseline scenario, per lever, search and verification apart.

    python benchmarks/planner.py [--goal 6M] [--confidence 0.8] [--lever leads reps both]
                                 [--runs 100] [--jobs 2] [--reference]

Times :func:`funnelsim.studies.planner.plan` (the code path of ``funnelsim plan``) on the
bundled baseline for each lever asked, and prints wall time, CPU time (this process and
its workers: steadier than wall time on a shared machine), the candidates and
replications of the search, the verification rounds and their replications, and the
plan with its verified P(goal). With ``--reference`` it also times, in the same process,
the straightforward search a user would write: bisection on the same 2% grid of lead
volumes between half and twice the analytic guess, ``runs`` replications per step on the
same seeds, with no verification.
"""

from __future__ import annotations

import argparse
import math
import resource
import time
from pathlib import Path

from funnelsim import load_scenario
from funnelsim.studies import executors, planner
from funnelsim.studies import replications as mc
from funnelsim.units import parse_amount

ROOT = Path(__file__).resolve().parent.parent


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the pool's workers once it is shut)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


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


def one(sc, goal: float, args: argparse.Namespace, lever: str) -> None:
    """Plan once with ``lever`` on a fresh pool and print what it took (CPU counted once the pool is shut)."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    failed: Exception | None = None
    with executors.executor(args.jobs) as pool:
        try:
            result, d = planner.plan(sc, goal, args.confidence, runs=args.runs, seed=1, pool=pool, lever=lever)
        except (planner.PlanInfeasible, planner.PlanError) as exc:
            failed = exc
    took, used = time.perf_counter() - wall, cpu_seconds() - cpu
    if failed is not None:
        print(f"--lever {lever}: {took:.0f} s wall, {used:.0f} s CPU; {type(failed).__name__}: {failed}")
        return
    pg = result.p_goal
    rounds = ", ".join(
        f"{r.p_goal:.1%} of {r.runs}{' (stopped early)' if r.stopped_early else ''}"
        for r in d.verifications.itertuples()
    )
    print(
        f"--lever {lever}: {took:.0f} s wall, {used:.0f} s CPU; search {len(d.candidates)} candidates, "
        f"{d.simulated:,} replications; verification {len(d.verifications)} round(s), {d.verified:,} replications "
        f"[{rounds}]; {result.status}: leads x{result.lead_multiplier:.3f}, +{result.extra_aes} AEs, "
        f"{result.sdrs} SDRs; verified P(goal) {pg['estimate']:.1%} (95% CI {pg['ci_low']:.1%}-{pg['ci_high']:.1%}, "
        f"n={pg['n']}), search's own {result.search_p_goal['estimate']:.0%} of {result.search_p_goal['n']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--goal", default="6M")
    parser.add_argument("--confidence", type=float, default=0.8)
    parser.add_argument("--lever", nargs="+", default=["leads", "reps", "both"])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--reference", action="store_true")
    args = parser.parse_args()
    goal = parse_amount(args.goal)
    sc = load_scenario(ROOT / "scenarios" / "baseline.toml")
    print(
        f"funnelsim plan baseline --goal {args.goal} --confidence {args.confidence} --runs {args.runs} "
        f"--jobs {args.jobs}"
    )
    for lever in args.lever:
        one(sc, goal, args, lever)
    if args.reference:
        with executors.executor(args.jobs) as pool:
            start = time.perf_counter()
            k, tried = reference(sc, goal, args.confidence, args.runs, 1, pool)
            took_ref = time.perf_counter() - start
        print(f"reference bisection (no verification): {took_ref:.1f} s; {tried} candidates, leads x{k:.3f}")


if __name__ == "__main__":
    main()
