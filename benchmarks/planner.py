"""Planner work: evaluations and time of each lever against plain bisection, measured in one process.

    python benchmarks/planner.py [--goal 6M] [--confidence 0.8] [--lever leads reps both]
                                 [--runs 100] [--jobs 2] [--repeats 1] [--no-bisection]

Plans the bundled baseline with :func:`funnelsim.studies.planner.plan` (the code path of
``funnelsim plan``, seed 1) for each lever asked, then runs plain bisection for the same
goal, all in this process, and prints what each took and the ratios.

**Evaluations** are replications simulated to choose the plan, counted the same way for
every method: each call of :func:`funnelsim.studies.replications.run` adds the replications
it was asked for (a wrapper counts them, so nothing is counted by the planner about itself).
For the planner that is every candidate's runs (pilots, the unchanged scenario's check and
partially simulated candidates included); the verification rounds' fresh replications
(indices from 1,000,000, :mod:`funnelsim.studies.planner.verify`) are counted apart, since
plain bisection verifies nothing. **Plain bisection** is the search a user would write:
on the planner's frame and burn-in, the 2% lead grid bisected between half and twice the
analytic volume for the goal, ``runs`` replications per step on the same seeds, nothing
cached, no pilot, no pruning; ``bisection (leads)`` at today's headcount, ``bisection
(both)`` on each rung of the AE ladder the both-lever search starts from (0, 1/2, 1, 2,
3 times the analytic AE shortfall, SDRs sized by Little's law), the cheapest rung's pick
winning (its answer is not checked: bisection assumes the bracket's ends).

Times are wall seconds and CPU seconds (this process and its workers: each method runs on
its own pool, counted once the pool is shut; steadier than wall time on a shared
machine). With ``--repeats N`` the methods run N times in alternating order and the
times are medians (evaluations do not change: the seeds are fixed). Compare ratios, not
seconds.
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from funnelsim import load_scenario
from funnelsim.studies import executors, planner
from funnelsim.studies import replications as mc
from funnelsim.studies.planner.search import TOP, sdrs_for
from funnelsim.units import parse_amount

ROOT = Path(__file__).resolve().parent.parent
SEED = 1
BLOCK = 1_000_000  # verification round r runs replications from r * BLOCK


@dataclass
class Counter:
    """Replications asked of ``mc.run``: the search's and verification's apart."""

    search: int = 0
    verify: int = 0

    def wrap(self, run: Callable[..., mc.Replications]) -> Callable[..., mc.Replications]:
        def counting(scenario: Any, runs: int, *args: Any, replications: Any = None, **kw: Any) -> mc.Replications:
            for i in range(runs) if replications is None else replications:
                if i >= BLOCK:
                    self.verify += 1
                else:
                    self.search += 1
            return run(scenario, runs, *args, replications=replications, **kw)

        return counting


COUNTER = Counter()
mc.run = COUNTER.wrap(mc.run)  # every planner module calls mc.run through the module


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the pool's workers once it is shut)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class Measured:
    """One method: its evaluations, verification replications, times (one per repeat) and what it found."""

    name: str
    search: int = 0
    verify: int = 0
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    result: str = ""


def measure(item: Measured, body: Callable[[Any], str], jobs: int) -> None:
    """Run ``body(pool)`` on a fresh pool, counting its replications and timing it."""
    COUNTER.search = COUNTER.verify = 0
    wall, cpu = time.perf_counter(), cpu_seconds()
    with executors.executor(jobs) as pool:
        item.result = body(pool)
    item.wall.append(time.perf_counter() - wall)
    item.cpu.append(cpu_seconds() - cpu)
    item.search, item.verify = COUNTER.search, COUNTER.verify


def plan_once(sc: Any, goal: float, args: argparse.Namespace, lever: str) -> Callable[[Any], str]:
    """The plan of ``lever`` as a measured body: the levers, cost and verified P(goal), or why it is infeasible."""

    def body(pool: Any) -> str:
        try:
            result, _ = planner.plan(sc, goal, args.confidence, runs=args.runs, seed=SEED, pool=pool, lever=lever)
        except (planner.PlanInfeasible, planner.PlanError) as exc:
            return f"{type(exc).__name__}: {str(exc)[:60]}..."
        pg = result.p_goal
        return (
            f"{result.status}: leads x{result.lead_multiplier:.3f}, +{result.extra_aes} AEs, {result.sdrs} SDRs; "
            f"cost {result.cost['period_total'] / 1e6:.2f}M; verified {pg['estimate']:.1%} "
            f"({pg['ci_low']:.1%}-{pg['ci_high']:.1%}, n={pg['n']})"
        )

    return body


# ---------------------------------------------------------------------------
# Plain bisection


def planner_frame(sc: Any, goal: float) -> tuple[Any, Any, dict[str, Any]]:
    """The planner's frame of ``sc`` (no lead-in for a warm start, else the 90% lead -> win lag), its
    burn-in fixed as plan() fixes it; the period and the source yields."""
    period = planner.Period.of(sc)
    yields = planner.source_yields(sc)
    lead_in = 0
    if not sc.burns_in:
        probe = planner.waterfall(planner.frame(sc, period, 12), period, yields=yields)
        lead_in = min(12, math.ceil(probe.lag_p90_days / 30.44))
    framed = planner.frame(sc, period, lead_in)
    return mc.same_burn_in([framed], SEED, [framed])[0], period, yields


def candidate(framed: Any, k: float, extra_aes: int = 0, sdrs: int | None = None) -> Any:
    return planner.apply_changes(framed, planner.planned_changes(framed, k, extra_aes, sdrs))


def bisect_rung(
    framed: Any, period: Any, goal: float, args: argparse.Namespace, pool: Any, rung: tuple[int, int, float]
) -> int:
    """Plain bisection of the lead grid on one rung ``(extra_aes, sdrs, analytic multiplier)``: the grid point
    taken as the smallest reaching the confidence (the bracket's upper end assumed to reach it)."""
    extra_aes, sdrs, k = rung
    step = math.log(planner.STEP)
    lo = min(max(math.floor(math.log(k / 2) / step), 0), TOP)
    hi = min(max(math.ceil(math.log(2 * k) / step), 0), TOP)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        reps = mc.run(candidate(framed, planner.STEP**mid, extra_aes, sdrs), args.runs, SEED, pool)
        reached = (planner.period_revenue(reps.monthly, period) >= goal).mean() >= args.confidence
        lo, hi = (lo, mid) if reached else (mid, hi)
    return hi


def ae_rungs(framed: Any, period: Any, goal: float, yields: dict[str, Any]) -> list[tuple[int, int, float]]:
    """The AE ladder the both-lever search starts from, SDRs sized by Little's law, with each rung's analytic
    volume for the goal (rungs AE capacity rules out left out)."""
    k0 = planner.analytic_multiplier(framed, period, goal, yields)
    flow = planner.waterfall(candidate(framed, k0), period, yields=yields)
    short = float((flow.in_period["aes_needed"] - flow.in_period["aes"]).max())
    base = max(1, math.ceil(short))
    rungs = []
    for extra in sorted({0, base // 2, base, 2 * base, 3 * base}):
        sdrs = sdrs_for(planner.waterfall(candidate(framed, k0, extra), period, yields=yields), framed)
        staffed = candidate(framed, 1.0, extra, sdrs)
        if planner.ae_revenue_ceiling(staffed, period, yields) < goal:
            continue
        try:
            rungs.append((extra, sdrs, planner.analytic_multiplier(staffed, period, goal, yields)))
        except planner.PlanInfeasible:
            continue
    return rungs


def bisection(sc: Any, goal: float, args: argparse.Namespace, both: bool) -> Callable[[Any], str]:
    """Plain bisection as a measured body (see the module docstring)."""

    def body(pool: Any) -> str:
        framed, period, yields = planner_frame(sc, goal)
        if both:
            rungs = ae_rungs(framed, period, goal, yields)
        else:
            rungs = [(0, framed.handoff.sdr.count, planner.analytic_multiplier(framed, period, goal, yields))]
        picks = []
        for rung in rungs:
            j = bisect_rung(framed, period, goal, args, pool, rung)
            flow = planner.waterfall(candidate(framed, planner.STEP**j, rung[0], rung[1]), period, yields=yields)
            picks.append((float(flow.in_period["cost"].sum()), planner.STEP**j, rung[0], rung[1]))
        cost, k, extra, sdrs = min(picks)
        return f"picks leads x{k:.3f}, +{extra} AEs, {sdrs} SDRs (cost {cost / 1e6:.2f}M; not checked)"

    return body


# ---------------------------------------------------------------------------
# The report


def report(items: dict[str, Measured]) -> None:
    def med(values: list[float]) -> float:
        return statistics.median(values) if values else math.nan

    print(
        "evaluations: replications simulated to choose the plan (same count for every method); "
        "verification's fresh replications apart"
    )
    print(f"{'method':<20}{'evaluations':>12}{'verification':>14}{'wall s':>9}{'CPU s':>9}  result")
    for item in items.values():
        print(
            f"{item.name:<20}{item.search:>12,}{item.verify:>14,}{med(item.wall):>9.0f}{med(item.cpu):>9.0f}"
            f"  {item.result}"
        )

    def ratio(a: str, b: str, what: Callable[[Measured], float]) -> str:
        if a not in items or b not in items or what(items[b]) == 0:
            return "n/a"
        return f"{what(items[a]) / what(items[b]):.2f}"

    print(
        f"both / leads time: wall {ratio('both', 'leads', lambda m: med(m.wall))}, "
        f"CPU {ratio('both', 'leads', lambda m: med(m.cpu))}"
    )
    print(
        f"both / bisection (both) evaluations: {ratio('both', 'bisection both', lambda m: m.search)} "
        f"(with verification: {ratio('both', 'bisection both', lambda m: m.search + m.verify)}); "
        f"time: wall {ratio('both', 'bisection both', lambda m: med(m.wall))}, "
        f"CPU {ratio('both', 'bisection both', lambda m: med(m.cpu))}"
    )
    print(
        f"leads / bisection (leads) evaluations: {ratio('leads', 'bisection leads', lambda m: m.search)}; "
        f"time: wall {ratio('leads', 'bisection leads', lambda m: med(m.wall))}, "
        f"CPU {ratio('leads', 'bisection leads', lambda m: med(m.cpu))}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--goal", default="6M")
    parser.add_argument("--confidence", type=float, default=0.8)
    parser.add_argument("--lever", nargs="+", default=["leads", "reps", "both"])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--no-bisection", action="store_true")
    args = parser.parse_args()
    goal = parse_amount(args.goal)
    sc = load_scenario(ROOT / "scenarios" / "baseline.toml")
    print(
        f"funnelsim plan baseline --goal {args.goal} --confidence {args.confidence} --runs {args.runs} "
        f"--jobs {args.jobs} --seed {SEED}; {args.repeats} repeat(s)"
    )
    bodies: dict[str, Callable[[Any], str]] = {lever: plan_once(sc, goal, args, lever) for lever in args.lever}
    if not args.no_bisection:
        bodies["bisection leads"] = bisection(sc, goal, args, both=False)
        bodies["bisection both"] = bisection(sc, goal, args, both=True)
    items = {name: Measured(name if name.startswith("bisection") else f"--lever {name}") for name in bodies}
    for repeat in range(args.repeats):
        for name in list(bodies) if repeat % 2 == 0 else list(reversed(bodies)):
            measure(items[name], bodies[name], args.jobs)
            print(f"  [{repeat + 1}/{args.repeats}] {items[name].name}: {items[name].wall[-1]:.0f} s", flush=True)
    report(items)


if __name__ == "__main__":
    main()
