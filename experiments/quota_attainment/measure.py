"""Quota attainment of the baseline's AEs: how many make a plausible quota, against the 57-60% rule of thumb.

The rule of thumb (57-60% of reps make quota; DESIGN.md, a survey figure without a single
source) is a calibration target to *report against*, never to tune to. This script simulates
the baseline company (warm start, one year) ``--runs`` times and, on the same runs, reads every
AE's attainment (bookings credited ÷ ramped quota, :mod:`funnelsim.run.quotas`) under several
quotas per ramped AE. The quota does not change the simulation (it is a target, not a
mechanism), so all quotas are read on the same replications.

Which quota is plausible? Two common ways to set one:

* from the plan: the quota at which the team's capacity equals what the company books
  (``team attainment = 100%``), and that quota over-assigned by 10% (capacity 1.1x the plan);
* from pay: 4-5x on-target earnings; the baseline's AE costs 180k a year fully loaded,
  about 145k of pay (OTE) at a 1.25 loading, so 580k-725k.

For each quota the table gives, over AEs with a quota (a hire still at a 0 share of its ramp
has none): the share at >= 100% (mean over replications with its 95% t interval), the share
at >= 70%, the median attainment; and the same share for the AEs on staff the whole year
(the starting team, no leavers), closer to how surveys count "reps who made quota".

Run (from the repository root)::

    python experiments/quota_attainment/measure.py --runs 20
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from funnelsim import load_scenario, simulate
from funnelsim.run.quotas import QuotaReport, quota_report_of
from funnelsim.studies.stats import describe

ROOT = Path(__file__).resolve().parents[2]
QUOTAS = (400_000, 450_000, 500_000, 550_000, 600_000, 700_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios" / "baseline.toml"))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--quota-ramp", default=None, help="a quota_ramp, e.g. [0,0,0,0,0,0.25,0.5,1]")
    args = parser.parse_args()
    base = load_scenario(args.scenario)
    runs = [simulate(base, seed=args.seed, replication=i) for i in range(args.runs)]
    ramp = [] if args.quota_ramp is None else [f"sales.ae.quota_ramp={args.quota_ramp}"]

    def read(quota: float) -> list[QuotaReport]:
        scenario = load_scenario(args.scenario, [f"sales.ae.quota_per_year={quota}", *ramp])
        return [quota_report_of(r.events, r.roster, scenario, scenario.horizon_days) for r in runs]

    rows = {quota: read(quota) for quota in QUOTAS}
    team = np.array([rep.summary["team_attainment"] for rep in rows[500_000]])
    plan_quota = 500_000 * float(team.mean())
    print(f"{base.name}: {args.runs} replications of seed {args.seed}, {base.horizon_days:g} days, warm start")
    print(f"quota ramp: {args.quota_ramp or 'the capacity ramp'}")
    print(f"quota at which capacity = bookings (team attainment 100%): {plan_quota:,.0f} per ramped AE")
    for extra in (plan_quota, 1.1 * plan_quota):
        rows[round(extra)] = read(extra)
    print("quota per AE  AEs   at>=100% (95% CI)      at>=70%  median  full-year AEs at>=100% (95% CI)")
    for quota in sorted(rows):
        print(_line(quota, rows[quota]))


def _line(quota: float, reports: list[QuotaReport]) -> str:
    """One row of the table: the shares over replications (mean, 95% t interval)."""
    at = describe(np.array([r.summary["share_aes_at_quota"] for r in reports]))
    at70 = np.mean([r.summary["share_aes_at_70pct"] for r in reports])
    median = np.mean([r.summary["attainment_median"] for r in reports])
    full = [r.aes[r.aes["ramped_at_start"] & r.aes["left"].isna()] for r in reports]
    whole = describe(np.array([float((f["attainment"] >= 1).mean()) for f in full if len(f)]))
    n = np.mean([r.summary["aes_with_quota"] for r in reports])
    share = f"{at['mean']:6.1%} ({at['ci_low']:.1%}-{at['ci_high']:.1%})"
    year = f"{whole['mean']:6.1%} ({whole['ci_low']:.1%}-{whole['ci_high']:.1%})"
    return f"{quota:>12,.0f} {n:5.1f}   {share}   {at70:6.1%}  {median:6.1%}  {year}"


if __name__ == "__main__":
    main()
