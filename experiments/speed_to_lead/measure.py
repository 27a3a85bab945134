"""Speed to lead, measured from outcomes: how much likelier a lead answered sooner is to qualify.

The published figures are about qualification, each in its own ratio type:

* Oldroyd (MIT / InsideSales.com 2007): contacted within 5 minutes rather than 30, the *odds*
  of qualifying the lead are 21 times higher;
* Harvard Business Review (Oldroyd, McElheran & Elkington 2011): firms that answer within the
  first hour are nearly 7 times as *likely* to qualify the lead as those answering in the second
  hour, and more than 60 times as likely as those waiting 24 hours or longer.

This script measures the same three quantities from simulated leads, not from the curve's
parameters. Each delay band is a scenario of its own: the scenario's personas, fit and sales'
bar, its sources entering at MQL (no nurture in the way), every MQL followed up after a
response delay drawn uniformly inside the band, and SDRs that never queue (200 of them), so
the delay is the response time and nothing else. A lead qualifies when its ``sql`` event
happens; the ratios are of the share of worked MQLs that qualify, with 95% intervals from
the binomial counts (a log-ratio normal interval). The 24-48 h band gets ten times the leads
of the others: few of its leads qualify.

The bundled scenarios use the ``published`` curve (``speed_to_lead = "published"``), which
reproduces all three; ``--preset conservative`` measures the halved curve (each ratio its
square root). ``tests/validation/test_speed_to_lead.py`` runs this measurement.

Run (from the repository root)::

    python experiments/speed_to_lead/measure.py                 # the bundled baseline's curve
    python experiments/speed_to_lead/measure.py --preset conservative
    python experiments/speed_to_lead/measure.py scenarios/aligned.toml --leads 40000
"""

from __future__ import annotations

import argparse
import math
import tomllib
from pathlib import Path

from funnelsim import parse_scenario, simulate
from funnelsim.run.metrics import summarize_run

HERE = Path(__file__).resolve().parent
MINUTE = 1 / 1440
# The bands (days): answered within 5 minutes; at about 30 minutes; in the first hour; in the
# second; after 24 hours (24 to 48).
BANDS = {
    "0-5 min": (0.0, 5 * MINUTE),
    "25-35 min": (25 * MINUTE, 35 * MINUTE),
    "first hour": (0.0, 60 * MINUTE),
    "second hour": (60 * MINUTE, 120 * MINUTE),
    "24-48 h": (1.0, 2.0),
}
# Leads in a band, as a multiple of --leads.
BAND_WEIGHT = {"24-48 h": 10}
PUBLISHED = {
    "odds ratio, 5 vs 30 minutes (MIT/InsideSales)": 21.0,
    "likelihood ratio, first vs second hour (HBR 2011)": 7.0,
    "likelihood ratio, first hour vs 24 h+ (HBR 2011)": 60.0,
}

# What each preset is built to give: the published figures, or their square roots.
TARGETS = {
    "published": PUBLISHED,
    "conservative": {name: math.sqrt(value) for name, value in PUBLISHED.items()},
}


def band_scenario(
    path: Path, low: float, high: float, leads: int, preset: str | None = None, horizon_days: float = 120.0
):
    """``path``'s company with every MQL answered after a delay uniform on [low, high] days
    (and the speed-to-lead curve ``preset``, if given)."""
    with path.open("rb") as handle:
        raw = tomllib.load(handle)
    raw.pop("initial_pipeline", None)
    raw["start"] = "cold"
    raw["horizon_days"] = horizon_days
    total = sum(float(s.get("leads_per_month", 0)) for s in raw["sources"].values()) or 1.0
    for source in raw["sources"].values():
        source["entry_stage"] = "mql"
        share = float(source.get("leads_per_month", 0)) / total
        for key in ("leads_per_month", "leads_per_week", "leads_per_day"):
            source.pop(key, None)
        source["leads_per_day"] = leads * share / (horizon_days - 10)
        source["seasonality"] = [1.0] * 12
        source.pop("month_multipliers", None)
    raw["handoff"]["follow_up_rate"] = 1.0
    raw["handoff"]["response_delay_days"] = {"dist": "uniform", "low": low, "high": high} if high > low else low
    raw["handoff"]["sdr"] = {"count": 200, "work_days": 0.01}
    if preset is not None:
        raw["handoff"]["speed_to_lead"] = preset
    raw["recycling"] = {"probability": 0.0}
    raw["prospecting"] = {"opportunities_per_ae_per_month": 0.0}
    return parse_scenario(raw, f"speed-to-lead {low:.4f}-{high:.4f} d")


def qualified(path: Path, leads: int, seed: int, preset: str | None = None) -> dict[str, tuple[int, int]]:
    """Per band: (MQLs worked, of them qualified: SQLs)."""
    out = {}
    for name, (low, high) in BANDS.items():
        scenario = band_scenario(path, low, high, leads * BAND_WEIGHT.get(name, 1), preset)
        result = simulate(scenario, seed=seed)
        ev = result.events
        worked = int(ev.loc[ev["event"] == "sdr_start", "lead"].nunique())
        sqls = int(summarize_run(result)["sqls"])
        out[name] = (worked, sqls)
    return out


def _ratio(a: tuple[int, int], b: tuple[int, int], odds: bool) -> tuple[float, float, float]:
    """Ratio of shares (or odds) a / b with a 95% log-normal interval."""
    (na, ka), (nb, kb) = a, b
    if odds:
        value = (ka / (na - ka)) / (kb / (nb - kb))
        se = math.sqrt(1 / ka + 1 / (na - ka) + 1 / kb + 1 / (nb - kb))
    else:
        value = (ka / na) / (kb / nb)
        se = math.sqrt(1 / ka - 1 / na + 1 / kb - 1 / nb)
    return value, value * math.exp(-1.96 * se), value * math.exp(1.96 * se)


def ratios(counts: dict[str, tuple[int, int]]) -> dict[str, tuple[float, float, float]]:
    return {
        "odds ratio, 5 vs 30 minutes (MIT/InsideSales)": _ratio(counts["0-5 min"], counts["25-35 min"], odds=True),
        "likelihood ratio, first vs second hour (HBR 2011)": _ratio(
            counts["first hour"], counts["second hour"], odds=False
        ),
        "likelihood ratio, first hour vs 24 h+ (HBR 2011)": _ratio(counts["first hour"], counts["24-48 h"], odds=False),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", nargs="?", type=Path, default=HERE.parent.parent / "scenarios" / "baseline.toml")
    ap.add_argument("--leads", type=int, default=20000, help="MQLs per band")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--preset", help="a speed-to-lead preset instead of the scenario's curve (e.g. conservative)")
    args = ap.parse_args(argv)
    counts = qualified(args.scenario, args.leads, args.seed, args.preset)
    curve = f", {args.preset} curve" if args.preset else ""
    print(f"{args.scenario.name}{curve}: share of worked MQLs that qualify, by response delay")
    for name, (n, k) in counts.items():
        print(f"  {name:12s} {k:7,d} of {n:9,d}  {k / n:7.2%}")
    for name, (value, low, high) in ratios(counts).items():
        target = f"; {args.preset} target {TARGETS[args.preset][name]:.2f}" if args.preset in TARGETS else ""
        print(f"{name}: {value:.2f} (95% CI {low:.2f}-{high:.2f}); published {PUBLISHED[name]:g}{target}")


if __name__ == "__main__":
    main()
