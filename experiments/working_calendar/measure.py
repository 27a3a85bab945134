"""What office hours cost the baseline: SQLs and revenue with a working calendar vs around the clock.

The baseline company (``scenarios/baseline.toml``) answers MQLs around the clock. This script
runs it, on the same seed and replications (common random numbers: the calendar draws
nothing) and the same warm start, as a New York company working 09:00-17:00, Monday to
Friday, with the usual US holidays (both years of the run, burn-in included):

``24/7``
    the baseline as it is.
``office, same effort``
    SDRs and AEs work office hours; the response delay counts the SDR team's working time
    (``response_clock = "working"``); an SDR's ``work_days`` (3.6 hours per MQL) is working
    time, so the SDR team works 40 of the 168 hours of a week: a quarter of its throughput.
``office, same throughput``
    the same, with ``work_days`` scaled by 40/168: the SDR team gets through as many MQLs a
    week as around the clock, so what is left is the wait for the opening.
``office, same throughput, speed to lead on working time``
    ``speed_to_lead_clock = "working"``: a buyer who writes at night expects no answer
    before the morning (the optimistic reading of the curve).

For each: SQLs and revenue, mean over the replications with its 95% Student-t interval, and
the paired difference from ``24/7`` with its 95% interval. Then the speed-to-lead view by
arrival time of the ``same throughput`` variant, pooled over the replications, and what its
SQL rates would give if 70% of MQLs arrived in office hours (the model spreads arrivals
around the clock: an indication, queues held as they are).

Run (from the repository root)::

    python experiments/working_calendar/measure.py              # seed 2027, 10 replications
    python experiments/working_calendar/measure.py --runs 30
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from funnelsim import Scenario, parse_scenario
from funnelsim.model.paths import apply_overrides
from funnelsim.model.workcal import clock_of
from funnelsim.run import response
from funnelsim.studies import replications as mc
from funnelsim.studies.stats import describe, paired_difference

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "scenarios" / "baseline.toml"
# New Year, Memorial Day, Independence Day (observed), Labor Day, Thanksgiving and the day after,
# Christmas (observed), for the burn-in year and the run's.
HOLIDAYS = (
    "[2026-01-01, 2026-05-25, 2026-07-03, 2026-09-07, 2026-11-26, 2026-11-27, 2026-12-25,"
    " 2027-01-01, 2027-05-31, 2027-07-05, 2027-09-06, 2027-11-25, 2027-11-26, 2027-12-24]"
)
OFFICE = (
    "calendar.time_zone=America/New_York",
    f"calendar.holidays={HOLIDAYS}",
    "handoff.sdr.working_hours=09:00-17:00",
    "sales.ae.working_hours=09:00-17:00",
    "handoff.response_clock=working",
)
SHARE_OF_WEEK = 40 / 168
SAME_THROUGHPUT = (
    f"handoff.sdr.work_days={{dist='lognormal', mean={0.15 * SHARE_OF_WEEK}, sd={0.08 * SHARE_OF_WEEK}}}",
)
VARIANTS = {
    "24/7": (),
    "office, same effort": OFFICE,
    "office, same throughput": (*OFFICE, *SAME_THROUGHPUT),
    "office, same throughput, speed to lead on working time": (
        *OFFICE,
        *SAME_THROUGHPUT,
        "handoff.speed_to_lead_clock=working",
    ),
}
METRICS = ("sqls", "revenue")
IN_HOURS_MIX = 0.7


def scenario(overrides: tuple[str, ...]) -> Scenario:
    raw = tomllib.loads(BASELINE.read_text(encoding="utf-8"))
    return parse_scenario(apply_overrides(raw, list(overrides)), "baseline")


def by_arrival(sc: Scenario, runs: int, seed: int) -> pd.DataFrame:
    """The speed-to-lead table of ``sc`` with its passes pooled over the replications."""
    from funnelsim.engine.fast import simulate

    frames = []
    for replication in range(runs):
        result = simulate(sc, seed=seed, replication=replication)
        frames.append(response.sdr_passes(result.events).assign(replication=replication))
        clock = clock_of(result.scenario, "sdr")
    assert clock is not None
    return response.speed_to_lead_by_arrival(pd.concat(frames), clock, horizon_days=float(sc.horizon_days))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=2027)
    args = parser.parse_args(argv)
    base = scenario(())
    scenarios = mc.same_burn_in([scenario(v) for v in VARIANTS.values()], args.seed, [base])
    tables = {name: mc.run(sc, args.runs, args.seed).table for name, sc in zip(VARIANTS, scenarios, strict=True)}
    print(f"baseline, seed {args.seed}, {args.runs} replications, warm start of {scenarios[0].burn_in_days:g} days")
    print("mean [95% t-interval]; difference from 24/7 on common random numbers [95% paired t-interval]\n")
    for metric in METRICS:
        print(f"{metric}:")
        for name, table in tables.items():
            d = describe(table[metric].to_numpy(float))
            line = f"  {name:<55} {d['mean']:>12,.0f} [{d['ci_low']:,.0f}, {d['ci_high']:,.0f}]"
            if name != "24/7":
                diff = paired_difference(tables["24/7"][metric].to_numpy(float), table[metric].to_numpy(float))
                share = diff["difference"] / tables["24/7"][metric].mean()
                line += (
                    f"   {diff['difference']:+,.0f} [{diff['ci_low']:+,.0f}, {diff['ci_high']:+,.0f}] ({share:+.0%})"
                )
            print(line)
        print()
    same = scenarios[list(VARIANTS).index("office, same throughput")]
    table = by_arrival(same, args.runs, args.seed)
    print("office, same throughput: MQLs by arrival time, pooled over the replications")
    with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
    rows = table.set_index("arrival")
    off = rows.loc[["outside_hours", "non_working_day"]]
    off_rate = float(np.average(off["sql_share"], weights=off["mqls"]))
    as_is = float(rows.loc["all", "sql_share"])
    mix = IN_HOURS_MIX * float(rows.loc["working_hours", "sql_share"]) + (1 - IN_HOURS_MIX) * off_rate
    print(
        f"\nSQLs per MQL pass: {as_is:.3f} with arrivals around the clock "
        f"({rows.loc['working_hours', 'share_of_mqls']:.0%} in office hours); "
        f"{mix:.3f} if {IN_HOURS_MIX:.0%} arrived in office hours (x{mix / as_is:.2f}, queues as they are)"
    )


if __name__ == "__main__":
    main()
