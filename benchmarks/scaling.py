"""Scaling: cost per lead and per AE event as the company grows (issue 14, "work is bounded").

    python benchmarks/scaling.py [--quick] [--range leads|aes|both] [--limit-gb 8] [--timeout 1800]

Each size runs one simulated year from a cold start: a warm start adds a burn-in (about
270 days for the baseline) and, unless ``burn_in_days`` is given, eight pilot runs of
1,095 days to choose it, which at 10M leads a year would be 24 years of leads; their
cost per lead is the engine's, so the year is what is measured here.

Two ranges, each size simulated once (seed 1) in a fresh subprocess, so its peak
memory (the child's own ``ru_maxrss``) and its time are its own:

* **leads**: the baseline company with every source's ``leads_per_month`` scaled to
  100k, 1M and 3M leads a year, SDRs, AEs and AE hires scaled by the same factor so
  utilisation stays comparable. Unit: one lead.
* **aes**: 10, 100, 1,000 and 10,000 AEs (SDRs and hires in proportion), with a tenth
  of the baseline's leads per AE (358 a year; all of the baseline's would make 36M
  leads at 10,000 AEs) and the baseline's prospecting (1.5 deals per idle AE a
  month), so every AE has work. Unit: one AE event (an ``sql`` handed to sales, an
  opportunity, a close, a disqualification, an abandonment, or a prospected lead).

For each size it prints the seconds of ``simulate`` (imports and scenario loading
excluded), the seconds per unit, the peak memory of the process and the peak memory
above what the process held before ``simulate`` per lead; then, per range, the ratio
of the largest to the smallest per-unit cost. The acceptance of issue 14 is that this
ratio stays within 2x. Absolute seconds depend on the machine and its load; the ratios
are what to compare. Also printed: the *marginal* seconds per unit between
consecutive sizes, which leaves out what a run costs whatever its size.

A size whose memory, projected from the previous size's per-lead peak, would exceed
``--limit-gb`` is reported as skipped rather than run; a size that takes longer than
``--timeout`` seconds is reported as timed out.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scenarios" / "baseline.toml"
AE_EVENTS = ("sql", "opportunity", "disqualified", "won", "lost", "ae_abandoned")
LEADS_PER_AE = 0.1  # the AE range's share of the baseline's leads per AE

FULL = {"leads": [100_000, 1_000_000, 3_000_000, 10_000_000], "aes": [10, 100, 1_000, 10_000]}
QUICK = {"leads": [30_000, 100_000, 300_000], "aes": [10, 100, 1_000]}


def _overrides(factor: float, ae_factor: float) -> list[str]:
    """Overrides of the baseline: leads scaled by ``factor``, AEs (and hires) by ``ae_factor``."""
    from funnelsim import load_scenario

    sc = load_scenario(BASELINE)
    out = []
    for name, source in sc.sources.items():
        out.append(f"sources.{name}.leads_per_month={source.leads_per_day_mean * 365.25 / 12 * factor!r}")
        for other in ("leads_per_week", "leads_per_day"):
            if getattr(source, other) is not None:
                raise SystemExit(f"source {name} gives {other}: scale leads_per_month only")
    ae = sc.sales.ae
    hires = ", ".join(f"{{date={h.date.isoformat()}, count={max(1, round(h.count * ae_factor))}}}" for h in ae.hires)
    out += [
        'start="cold"',  # one simulated year; a warm start's pilot and burn-in are a longer run (see below)
        f"handoff.sdr.count={max(1, round(sc.handoff.sdr.count * factor))}",
        f"sales.ae.count={max(1, round(ae.count * ae_factor))}",
        f"sales.ae.hires=[{hires}]",
    ]
    return out


def _expected_leads(factor: float) -> float:
    from funnelsim import load_scenario

    sc = load_scenario(BASELINE)
    return factor * sum(
        s.leads_per_day_mean * sc.horizon_days * sum(s.seasonality) / len(s.seasonality) for s in sc.sources.values()
    )


def _size(kind: str, n: int) -> dict[str, Any]:
    """What the child runs for size ``n`` of range ``kind``: the overrides and the expected leads."""
    from funnelsim import load_scenario

    base_leads = _expected_leads(1.0)
    if kind == "leads":
        factor = n / base_leads
        return {"overrides": _overrides(factor, factor), "leads": n}
    base_aes = load_scenario(BASELINE).sales.ae.count
    ae_factor = n / base_aes
    factor = ae_factor * LEADS_PER_AE
    return {"overrides": _overrides(factor, ae_factor), "leads": _expected_leads(factor)}


def child(spec: dict[str, Any]) -> None:
    """Run one size and print its measurements as JSON (in a fresh process)."""
    from funnelsim import load_scenario, simulate

    scenario = load_scenario(BASELINE, spec["overrides"])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    result = simulate(scenario, seed=1)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    events = result.events
    counts = events["event"].value_counts()
    created_prospects = int((result.attributes["source"] == "prospecting").sum())  # one per prospected deal
    ae_events = int(sum(int(counts.get(e, 0)) for e in AE_EVENTS)) + created_prospects
    print(
        json.dumps(
            {
                "seconds": seconds,
                "leads": len(result.attributes),
                "events": len(events),
                "ae_events": ae_events,
                "aes": int(result.roster.loc[result.roster["team"] == "ae", "rep"].nunique()),
                "peak_bytes": peak,
                "before_bytes": before,
            }
        )
    )


def _run(kind: str, n: int, timeout: float) -> dict[str, Any]:
    spec = _size(kind, n)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"status": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"status": f"failed: {tail}"}
    return {"status": "ok", **json.loads(done.stdout.strip().splitlines()[-1])}


def measure(kind: str, sizes: list[int], limit: float, timeout: float) -> list[dict[str, Any]]:
    unit = "lead" if kind == "leads" else "AE event"
    label = "leads/year" if kind == "leads" else "AEs"
    print(f"\n== {kind}: cost per {unit} ==")
    header = (
        f"{label:>11} {'leads':>10} {unit + 's':>10} {'seconds':>9} {'us/' + unit:>12} "
        f"{'peak MB':>8} {'kB/lead':>8} {'marginal us/' + unit:>20}"
    )
    print(header, flush=True)
    rows: list[dict[str, Any]] = []
    per_lead_peak = None
    row: dict[str, Any]
    for n in sizes:
        expected = _size(kind, n)["leads"]
        if per_lead_peak is not None and rows[-1]["status"] == "ok":
            projected = rows[-1]["before_bytes"] + per_lead_peak * expected
            if projected > limit:
                row = {"n": n, "status": f"skipped: projected peak {projected / 2**30:.1f} GB > {limit / 2**30:.0f} GB"}
                rows.append(row)
                print(f"{n:>11,} {row['status']}", flush=True)
                continue
        row = {"n": n, **_run(kind, n, timeout)}
        rows.append(row)
        if row["status"] != "ok":
            print(f"{n:>11,} {row['status']}", flush=True)
            continue
        units = row["leads"] if kind == "leads" else row["ae_events"]
        row["units"] = units
        row["per_unit"] = row["seconds"] / units
        row["kb_per_lead"] = (row["peak_bytes"] - row["before_bytes"]) / row["leads"] / 1024
        per_lead_peak = (row["peak_bytes"] - row["before_bytes"]) / row["leads"]
        ok = [r for r in rows[:-1] if r["status"] == "ok"]
        marginal = ""
        if ok:
            prev = ok[-1]
            marginal = f"{(row['seconds'] - prev['seconds']) / (units - prev['units']) * 1e6:.2f}"
        print(
            f"{n:>11,} {row['leads']:>10,} {units:>10,} {row['seconds']:>9.2f} {row['per_unit'] * 1e6:>12.2f} "
            f"{row['peak_bytes'] / 2**20:>8.0f} {row['kb_per_lead']:>8.2f} {marginal:>20}",
            flush=True,
        )
    ok = [r for r in rows if r["status"] == "ok"]
    if len(ok) >= 2:
        cost = [r["per_unit"] for r in ok]
        mem = [r["kb_per_lead"] for r in ok]
        print(
            f"ratio largest/smallest size ({ok[-1]['n']:,} vs {ok[0]['n']:,}): time per {unit} "
            f"{cost[-1] / cost[0]:.2f}x, memory per lead {mem[-1] / mem[0]:.2f}x; "
            f"max/min over sizes: time {max(cost) / min(cost):.2f}x, memory {max(mem) / min(mem):.2f}x "
            f"(acceptance: within 2x)"
        )
    if len(ok) < len(rows):
        print(f"{len(rows) - len(ok)} size(s) not measured (see above)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes: 30k-300k leads, 10-1,000 AEs")
    parser.add_argument("--range", choices=["leads", "aes", "both"], default="both", dest="which")
    parser.add_argument("--limit-gb", type=float, default=8.0, help="skip a size projected to need more memory")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before a size is abandoned")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    sizes = QUICK if args.quick else FULL
    for kind in ("leads", "aes"):
        if args.which in (kind, "both"):
            measure(kind, sizes[kind], args.limit_gb * 2**30, args.timeout)


if __name__ == "__main__":
    main()
