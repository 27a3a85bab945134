"""The alignment study: what the model says aligning sales and marketing is worth, and why.

The same company (``scenarios/baseline.toml``) is run three ways on common random
numbers: as it is (its bookings are "last year"), misaligned and aligned
(``scenarios/misaligned.toml``, ``scenarios/aligned.toml``: they differ only through
concrete mechanisms, see their comments). The study reports

1. each organisation's year-over-year growth over the baseline's bookings, its sales
   cycle and funnel, next to the published figures (``published.csv``);
2. which mechanism drives the gap: Shapley attribution of the revenue gap over six
   levers, with its waterfall (``comparison/``);
3. what else revenue is sensitive to: one-at-a-time ±20% on the misaligned company's
   main parameters (``sensitivity/``), and a sweep of its MQL bar (``mql-sweep/``).

Run (from the repository root)::

    python experiments/alignment/run.py --jobs 2 --runs 10  # the committed study, ~18 min on 2 cores
    python experiments/alignment/run.py --quick             # a tenth-size check in seconds

Results go to ``experiments/alignment/results`` (``--quick``: ``results-quick``), written
to a temporary folder and moved into place. The printed report is deterministic for a
given ``--seed`` and ``--runs``; the quick one is committed as ``expected-quick.txt`` and
checked by ``tests/test_experiments.py``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from funnelsim import load_scenario
from funnelsim.model.scenario import Scenario
from funnelsim.report.tables import write_comparison, write_sensitivity, write_sweep
from funnelsim.studies import executors
from funnelsim.studies import replications as mc
from funnelsim.studies.compare import Attribution, Comparison, compare
from funnelsim.studies.sensitivity import sensitivity
from funnelsim.studies.sweep import sweep

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bars as rules  # this folder's module, also when run.py is imported from elsewhere

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE.parent.parent / "scenarios"

# The alignment levers, named as an organisation would change them (docs/outputs.md).
LEVERS = {
    "targeting": ["sources"],
    "lead definition": ["qualification"],
    "follow-up": ["handoff.follow_up_rate"],
    "SLA": ["handoff.response_delay_days"],
    "recycling": ["recycling"],
    "messaging": ["sales"],
}

# Parameters of the misaligned company varied ±20% for the tornado: the alignment
# mechanisms, the volumes and the capacities they compete with.
SENSITIVITY = [
    "sources.inbound.leads_per_month",
    "sources.events.leads_per_month",
    "sources.partner.leads_per_month",
    "qualification.mql.threshold",
    "qualification.sql.threshold",
    "handoff.follow_up_rate",
    "handoff.response_delay_days",
    "handoff.sdr.count",
    "nurture.touch_lift",
    "sales.opportunity_rate",
    "sales.win_rate",
    "sales.cycle_days",
    "sales.deal_size",
    "sales.ae.count",
    "sales.ae.max_open_opportunities",
]

# A tenth of the company, every mechanism still on (for --quick).
TENTH = (
    "sources.inbound.leads_per_month=250",
    "sources.events.leads_per_month=40",
    "sources.partner.leads_per_month=8",
    "handoff.sdr.count=1",
    "sales.ae.count=1",
    "sales.ae.hires=[{date=2027-04-01, count=1}]",
)

# Published figures (DESIGN.md; second-hand where marked). Growth is "annual revenue growth".
PUBLISHED = {
    "aberdeen_2013": ("Aberdeen 2013 (second-hand): highly aligned vs misaligned YoY growth", 0.32, -0.07),
    "aberdeen_2010": ("Aberdeen 2010 (453 firms): best-in-class vs laggards YoY growth", 0.20, -0.04),
}


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    overrides = TENTH if args.quick else ()
    runs = args.runs or (4 if args.quick else 30)
    out = args.out or HERE / ("results-quick" if args.quick else "results")
    scenarios = {
        name: load_scenario(SCENARIOS / f"{name}.toml", overrides) for name in ("baseline", "misaligned", "aligned")
    }
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        with executors.executor(args.jobs) as pool:
            report = _study(scenarios, runs, args.seed, pool, staging, args.quick)
        (staging / "report.txt").write_text(report)
        if (out / "levels").is_dir():  # levels.py's study (the four levels) lives here too: keep it
            (out / "levels").rename(staging / "levels")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    sys.stdout.write(report)
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth-size company and a few runs (a smoke check)")
    parser.add_argument("--runs", type=int, default=None, help="replications per scenario (default 30; quick 4)")
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    return parser.parse_args(argv)


def _study(scenarios: dict[str, Scenario], runs: int, seed: int, pool: mc.Executor, folder: Path, quick: bool) -> str:
    # "Last year": the company as it is, on the same seeds; both organisations grow from it.
    baseline = mc.run(scenarios["baseline"], runs, seed, pool)
    prior = float(baseline.table["revenue"].mean())
    misaligned, aligned = (
        scenarios[name].model_copy(update={"prior_year_revenue": prior}) for name in ("misaligned", "aligned")
    )
    result = compare([misaligned, aligned], runs, seed, pool, levers=LEVERS)
    write_comparison(result, folder / "comparison")
    tornado = sensitivity(misaligned, 0.2, runs, seed, pool, params=SENSITIVITY)
    write_sensitivity(tornado, folder / "sensitivity")
    thresholds = np.round(np.linspace(0.45, 0.8, 4 if quick else 8), 3).tolist()
    bar = sweep(misaligned, {"qualification.mql.threshold": thresholds}, runs, seed, pool)
    write_sweep(bar, folder / "mql-sweep")
    published = _published(result, prior)
    published.to_csv(folder / "published.csv", index=False)
    bar_runs = min(runs, rules.RUNS)
    last_year = baseline.table[baseline.table["replication"] < bar_runs]
    chosen = rules.choose(last_year, misaligned, aligned, bar_runs, seed, pool, step=0.1 if quick else 0.02)
    _write_bars(chosen, folder / "bars")
    report = _report(result, published, prior, tornado.table(), bar.table("revenue"), runs, seed, quick)
    return report + _bars_report(chosen, misaligned, aligned)


def _write_bars(chosen: rules.Bars, folder: Path) -> None:
    folder.mkdir(parents=True)
    chosen.aligned_sweep.to_csv(folder / "aligned-sweep.csv", index=False)
    chosen.misaligned_sweep.to_csv(folder / "misaligned-sweep.csv", index=False)
    chosen.band.to_csv(folder / "robustness.csv", index=False)
    fig, _ = rules.figure(chosen)
    fig.savefig(folder / "robustness.png", dpi=110)


def _bars_report(chosen: rules.Bars, misaligned: Scenario, aligned: Scenario) -> str:
    q_m, q_a = misaligned.qualification, aligned.qualification
    lines = ["", "Bars chosen by each organisation's rule (experiments/alignment/bars.py) vs the scenario files:"]
    lines.append("| bar | rule | chosen | scenario file |")
    lines.append("|---|---|---:|---:|")
    lines.append(
        f"| aligned, shared | revenue optimum of the shared-bar sweep | {chosen.aligned:.2f} "
        f"| {q_a.sql.threshold:.2f} |"
    )
    lines.append(
        f"| misaligned, MQL | highest bar reaching {chosen.targets['mqls']:,.0f} MQLs "
        f"(+{rules.RULE['mql_growth'] - 1:.0%}) | {chosen.mql:.2f} | {q_m.mql.threshold:.2f} |"
    )
    lines.append(
        f"| misaligned, SQL | lowest bar with a win rate of {chosen.targets['win_rate']:.1%} "
        f"(best less {rules.RULE['win_rate_slack']:.0%}) "
        f"| {chosen.sql:.2f} | {q_m.sql.threshold:.2f} |"
    )
    band = chosen.band
    low, high = band["ratio"].min(), band["ratio"].max()
    lines += ["", f"Revenue ratio aligned/misaligned over the band: {low:.2f}x to {high:.2f}x"]
    lines.append("| MQL target | win rate within | misaligned bars (MQL/SQL) | ratio at each plausible shared bar |")
    lines.append("|---:|---:|---:|---|")
    for (growth, slack), group in band.groupby(["mql_growth", "win_rate_slack"]):
        row = group.iloc[0]
        ratios = " ".join(f"{r:.2f}x" for r in group.sort_values("aligned_threshold")["ratio"])
        lines.append(f"| +{growth - 1:.0%} | {slack:.0%} of best | {row['mql']:.2f}/{row['sql']:.2f} | {ratios} |")
    shared = ", ".join(f"{t:.2f}" for t in sorted(band["aligned_threshold"].unique()))
    lines.append(f"(plausible shared bars, in that order: {shared})")
    return "\n".join(lines) + "\n"


def _lever_table(attribution: Attribution, share: bool) -> list[str]:
    """The Shapley contributions as markdown rows (``share``: with the share of the gap)."""
    lines = ["| lever | contribution | 95% CI |" + (" share of gap |" if share else "") + " alone |"]
    lines.append("|---|---:|---:|" + ("---:|" if share else "") + "---:|")
    for row in attribution.table().to_dict("records"):
        alone = "" if row["lever"] == "total" else f"{row['alone']:,.0f}"
        cells = [row["lever"], f"{row['contribution']:,.0f}", f"{row['ci_low']:,.0f} to {row['ci_high']:,.0f}"]
        cells += [f"{row['share_of_gap']:.0%}"] if share else []
        lines.append("| " + " | ".join([*cells, alone]) + " |")
    return lines


def _published(result: Comparison, prior: float) -> pd.DataFrame:
    """The model's numbers next to the published ones, one row per claim.

    ``kind`` says how to read the two numbers: ``growth`` and ``change`` are relative
    changes, ``ratio`` a multiple, ``share`` a proportion.
    """
    metrics = [*mc.HEADLINE, "win_rate", "leak_rejected_by_sales", "yoy_growth"]
    table = result.table(metrics).set_index(["metric", "scenario"])

    def mean(metric: str, scenario: str) -> float:
        return float(table.loc[(metric, scenario), "mean"])

    growth_m, growth_a = mean("yoy_growth", "misaligned"), mean("yoy_growth", "aligned")
    ratio = mean("revenue", "aligned") / mean("revenue", "misaligned")
    rows = []
    for source in ("aberdeen_2013", "aberdeen_2010"):
        text, high, low = PUBLISHED[source]
        rows.append((f"{text}: aligned", "growth", high, growth_a))
        rows.append((f"{text}: misaligned", "growth", low, growth_m))
        rows.append((f"{text}: revenue ratio aligned/misaligned", "ratio", (1 + high) / (1 + low), ratio))
    rows.append(("SiriusDecisions (second-hand): up to 35% more growth (revenue ratio)", "ratio", 1.35, ratio))
    rows.append(("IDC: misalignment costs over 10% of revenue a year", "share", 0.10, 1 - 1 / ratio))
    cycle = mean("median_cycle_days", "aligned") / mean("median_cycle_days", "misaligned") - 1
    rows.append(("Accent Technologies: 10% shorter sales cycle (median won deal)", "change", -0.10, cycle))
    # Misaligned has no recycling: every MQL sales reached and turned down ends "rejected".
    evaluated = mean("sqls", "misaligned") + mean("leak_rejected_by_sales", "misaligned")
    rows.append(("Gartner: 44% of MQLs pass sales as a good fit (misaligned: SQLs of MQLs sales reached)", "share",
                 0.44, mean("sqls", "misaligned") / evaluated))  # fmt: skip
    return pd.DataFrame(rows, columns=["claim", "kind", "published", "model"])


def _report(
    result: Comparison,
    published: pd.DataFrame,
    prior: float,
    tornado: pd.DataFrame,
    bar: pd.DataFrame,
    runs: int,
    seed: int,
    quick: bool,
) -> str:
    size = " (quick: a tenth of the company)" if quick else ""
    lines = [f"Alignment study{size}: {runs} common replications of seed {seed}"]
    lines.append(f"last year's bookings (baseline company, mean): {prior:,.0f}")
    lines.append("")
    lines.append("| claim | published | model |")
    lines.append("|---|---:|---:|")
    for row in published.itertuples():
        lines.append(f"| {row.claim} | {_fmt(row.published, row.kind)} | {_fmt(row.model, row.kind)} |")
    lines.append("")
    table = result.table().set_index(["metric", "scenario"])
    lines.append("| metric | misaligned | aligned | difference (95% CI) |")
    lines.append("|---|---:|---:|---:|")
    for metric in ("revenue", "wins", "sqls", "mqls", "win_rate", "median_cycle_days", "yoy_growth", "cac"):
        m, a = table.loc[(metric, "misaligned")], table.loc[(metric, "aligned")]
        lines.append(
            f"| {metric} | {m['mean']:,.3g} | {a['mean']:,.3g} | "
            f"{a['difference']:,.3g} ({a['diff_ci_low']:,.3g} to {a['diff_ci_high']:,.3g}) |"
        )
    lines.append("")
    assert result.attribution is not None
    lines += _lever_table(result.attribution, share=True)
    lines.append("")
    lines.append("| parameter (misaligned, ±20%) | revenue at -20% | at +20% | swing |")
    lines.append("|---|---:|---:|---:|")
    for row in tornado.head(8).to_dict("records"):
        lines.append(
            f"| {row['parameter']} | {row['low_diff']:+,.0f} | {row['high_diff']:+,.0f} | {row['swing']:,.0f} |"
        )
    lines.append("")
    lines.append("| MQL threshold (misaligned) | revenue | 95% CI |")
    lines.append("|---:|---:|---:|")
    for row in bar.to_dict("records"):
        interval = f"{row['revenue_ci_low']:,.0f} to {row['revenue_ci_high']:,.0f}"
        lines.append(f"| {row['qualification.mql.threshold']:.3g} | {row['revenue_mean']:,.0f} | {interval} |")
    return "\n".join(lines) + "\n"


def _fmt(x: float, kind: str) -> str:
    if not np.isfinite(x):
        return "n/a"
    return {"ratio": f"{x:.2f}x", "share": f"{x:.0%}"}.get(kind, f"{x:+.0%}")


if __name__ == "__main__":
    raise SystemExit(main())
