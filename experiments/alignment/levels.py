"""The four relationship levels between sales and marketing, run on common random numbers.

Kotler, Rackham & Krishnaswamy ("Ending the War Between Sales and Marketing", HBR 2006)
describe four relationships between the two teams: undefined, defined, aligned and
integrated. The bundled ladder (``LEVELS``) is one company run four ways; the levels differ
only through concrete mechanisms, on the scenario files' ``ALIGNMENT LEVER`` lines
(``tests/test_levels.py`` compares the loaded scenarios key by key). The study

1. runs the four levels on the same replications of one seed, from the same warm start,
   and reports revenue, MQLs, SQLs, wins, win rate, median cycle and cost per won deal
   (and where the queues are: the share of MQLs waiting for an SDR, of SQLs for an AE):
   each level's mean with its 95% Student-t interval, and the paired difference between
   consecutive levels with the 95% t-interval of the per-replication differences;
2. applies the aligned company's bar rule (``bars.py``: the revenue optimum of a sweep of
   the shared bar) to every level with one shared definition (defined, aligned,
   integrated) and sets what it chooses beside the bar the scenario file carries;
3. splits the step from aligned to integrated over its mechanisms (Shapley values,
   ``funnelsim.studies.compare.attribute``). The steps below it are split by the main
   study (``run.py``: misaligned to aligned, six levers).

Run (from the repository root)::

    python experiments/alignment/levels.py --runs 10   # the committed study, ~6 min on one core
    python experiments/alignment/levels.py --quick     # a tenth of the company, ~15 s

Results go to ``experiments/alignment/results/levels`` (``--quick``:
``results-quick/levels``), written to a temporary folder and moved into place. The printed
report is deterministic for a given ``--seed`` and ``--runs``; the quick one is committed as
``expected-levels-quick.txt`` and checked by ``tests/test_experiments.py``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from funnelsim import load_scenario
from funnelsim.model.scenario import Scenario
from funnelsim.studies import executors
from funnelsim.studies import replications as mc
from funnelsim.studies.compare import Attribution, Comparison, attribute, compare
from funnelsim.studies.stats import paired_difference

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bars as rules  # this folder's module, also when levels.py is imported from elsewhere

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE.parent.parent / "scenarios"

# The ladder: level -> bundled scenario file (scenarios/README.md, "The four levels").
# The undefined level is misaligned.toml and the aligned level aligned.toml, as they were
# before the ladder: one file per level, none repeated.
LEVELS = {
    "undefined": "misaligned.toml",
    "defined": "defined.toml",
    "aligned": "aligned.toml",
    "integrated": "integrated.toml",
}
# Levels with one shared definition, whose bar the aligned rule chooses (bars.py).
SHARED = ("defined", "aligned", "integrated")

# What the study reports per level: metric -> label (summary columns, docs/outputs.md).
METRICS = {
    "revenue": "revenue",
    "mqls": "MQLs",
    "sqls": "SQLs",
    "wins": "wins",
    "win_rate": "win rate (closed deals)",
    "median_cycle_days": "median cycle of won deals, days",
    "cost_per_win": "cost per won deal",
    # Where the bottleneck is: the share of MQLs that found every SDR busy, of SQLs every AE.
    "sdr_p_wait": "MQLs that wait for an SDR",
    "ae_p_wait": "SQLs that wait for an AE",
}
SHARES = ("win_rate", "sdr_p_wait", "ae_p_wait")

# The step from aligned to integrated, named as an organisation would take it.
INTEGRATION = {
    "AE queue by shared score": ["sales.queue"],
    "automatic routing": ["handoff.response_delay_days"],
    "one contact history": ["recycling"],
    "closed-loop targeting": ["sources"],
    "shared bar": ["qualification"],
}

# A tenth of the company, every mechanism still on (for --quick; tests/scaled.py's TENTH).
TENTH = (
    "sources.inbound.leads_per_month=250",
    "sources.events.leads_per_month=40",
    "sources.partner.leads_per_month=8",
    "handoff.sdr.count=1",
    "sales.ae.count=1",
    "sales.ae.hires=[{date=2027-04-01, count=1}]",
)


def load_levels(overrides: tuple[str, ...] | list[str] = ()) -> dict[str, Scenario]:
    """The four bundled levels, in order, each with ``overrides`` applied (``--set`` syntax)."""
    return {level: load_scenario(SCENARIOS / file, overrides) for level, file in LEVELS.items()}


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    runs = args.runs or (4 if args.quick else 10)
    out = args.out or HERE / ("results-quick" if args.quick else "results") / "levels"
    levels = load_levels(TENTH if args.quick else ())
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".results-{out.name}.partial-", dir=out.parent))
    try:
        with executors.executor(args.jobs) as pool:
            report = _study(levels, runs, args.seed, pool, staging, args.quick)
        (staging / "report.txt").write_text(report)
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
    parser.add_argument("--runs", type=int, default=None, help="replications per level (default 10; quick 4)")
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    return parser.parse_args(argv)


def _study(levels: dict[str, Scenario], runs: int, seed: int, pool: mc.Executor, folder: Path, quick: bool) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    # One warm start for all four (the longest any level's pilot asks for), so the levels are
    # compared over the same window from the same kind of start, on the same streams.
    ladder = dict(zip(levels, mc.same_burn_in(list(levels.values()), seed, list(levels.values())), strict=True))
    result = compare(list(ladder.values()), runs, seed, pool, labels=list(ladder))
    table, steps = level_table(result), step_table(result)
    table.to_csv(folder / "levels.csv", index=False)
    steps.to_csv(folder / "steps.csv", index=False)
    result.replications().to_csv(folder / "replications.csv", index=False)
    fig, _ = figure(table, steps)
    fig.savefig(folder / "revenue.png", dpi=110)
    # The bar each shared-definition level's rule chooses: the file's own scenario, swept (bars.py).
    bar_runs = min(runs, rules.RUNS)
    sweeps = {
        level: rules.shared_sweep(levels[level], bar_runs, seed, pool, step=0.1 if quick else 0.02) for level in SHARED
    }
    swept = pd.concat([sweep.assign(level=level) for level, sweep in sweeps.items()], ignore_index=True)
    swept[["level", "threshold", "revenue", "mqls", "win_rate"]].to_csv(folder / "bars.csv", index=False)
    fig, _ = bars_figure(sweeps, levels)
    fig.savefig(folder / "bars.png", dpi=110)
    known = [result.runs["aligned"], result.runs["integrated"]]
    split = attribute(
        ladder["aligned"], ladder["integrated"], runs, seed, pool, levers=INTEGRATION, labels=("aligned", "integrated"),
        known=known,
    )  # fmt: skip
    split.table().to_csv(folder / "integration.csv", index=False)
    burn_in = ladder["undefined"].burn_in_days
    head = f"Relationship levels{' (quick: a tenth of the company)' if quick else ''}: {runs} common replications"
    lines = [f"{head} of seed {seed}, warm start (burn-in {burn_in:.0f} days for every level)", ""]
    lines += [*_level_lines(table), "", *_step_lines(steps), ""]
    lines += [*_bar_lines(sweeps, levels, bar_runs), "", *_integration_lines(split)]
    return "\n".join(lines) + "\n"


def level_table(result: Comparison) -> pd.DataFrame:
    """One row per metric and level: ``mean``, ``ci_low``, ``ci_high`` (95% Student t over replications)."""
    table = result.table(list(METRICS))
    return table.rename(columns={"scenario": "level"})[["metric", "level", "mean", "ci_low", "ci_high"]]


def step_table(result: Comparison, confidence: float = 0.95) -> pd.DataFrame:
    """One row per metric and step between consecutive levels: the paired ``difference``
    (upper level minus lower, mean over replications) and its Student-t interval
    ``ci_low``, ``ci_high`` on the per-replication differences (common random numbers)."""
    rows = []
    for lower, upper in zip(result.labels, result.labels[1:], strict=False):
        a = result.runs[lower].table.set_index("replication")
        b = result.runs[upper].table.set_index("replication").loc[a.index]
        for metric in METRICS:
            pair = paired_difference(a[metric].to_numpy(float), b[metric].to_numpy(float), confidence)
            rows.append({"metric": metric, "from": lower, "to": upper, "difference": pair["difference"],
                         "ci_low": pair["ci_low"], "ci_high": pair["ci_high"]})  # fmt: skip
    return pd.DataFrame(rows)


def figure(table: pd.DataFrame, steps: pd.DataFrame, ax: Any = None) -> tuple[Any, Any]:
    """Revenue by level (mean and 95% interval), each step labelled with its paired difference."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2)) if ax is None else (ax.figure, ax)
    revenue = table[table["metric"] == "revenue"].set_index("level").loc[list(LEVELS)]
    x = np.arange(len(revenue))
    low, high = revenue["mean"] - revenue["ci_low"], revenue["ci_high"] - revenue["mean"]
    ax.bar(x, revenue["mean"] / 1e6, color=["C3", "C1", "C0", "C2"], alpha=0.8)
    ax.errorbar(x, revenue["mean"] / 1e6, yerr=[low / 1e6, high / 1e6], fmt="none", ecolor="k", capsize=5)
    step = steps[steps["metric"] == "revenue"].reset_index(drop=True)
    top = float(revenue["ci_high"].max()) / 1e6
    for i, row in step.iterrows():
        text = f"{row['difference'] / 1e6:+.2f}M\n({row['ci_low'] / 1e6:+.2f} to {row['ci_high'] / 1e6:+.2f})"
        ax.annotate(text, (int(i) + 0.5, top * 1.04), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [f"{i + 1}. {level}" for i, level in enumerate(revenue.index)])
    ax.set_ylim(0, top * 1.3)
    ax.set_xlabel("relationship between sales and marketing (Kotler, Rackham & Krishnaswamy 2006)")
    ax.set_ylabel("revenue, M (mean and 95% interval)")
    ax.set_title("The same company at four levels; between bars: the paired step (95% interval)", fontsize=10)
    fig.tight_layout()
    return fig, ax


def bars_figure(sweeps: dict[str, pd.DataFrame], levels: dict[str, Scenario], ax: Any = None) -> tuple[Any, Any]:
    """Revenue against the shared bar for each level with one definition; the file's bar marked."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2)) if ax is None else (ax.figure, ax)
    for color, (level, sweep) in zip(("C1", "C0", "C2"), sweeps.items(), strict=False):
        ax.plot(sweep["threshold"], sweep["revenue"] / 1e6, marker="o", ms=3, color=color, label=level)
        bar = levels[level].qualification.sql.threshold
        at = sweep.loc[(sweep["threshold"] - bar).abs().idxmin()]
        ax.plot([at["threshold"]], [at["revenue"] / 1e6], marker="*", ms=14, color=color, mec="k")
    ax.set_xlabel("shared bar (one rule for MQL and SQL); star: the scenario file's bar")
    ax.set_ylabel("revenue, M (mean of common replications)")
    ax.set_title("The aligned rule (revenue optimum of the shared bar) at each level", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig, ax


def _value(metric: str, x: float, signed: bool = False) -> str:
    sign = "+" if signed else ""
    if metric == "revenue":
        return f"{x / 1e6:{sign},.2f}M" if abs(x) >= 1e6 else f"{x / 1e3:{sign},.0f}k"
    if metric in SHARES:
        return f"{100 * x:{sign}.1f}" + (" pts" if signed else "%")
    if metric == "median_cycle_days":
        return f"{x:{sign}.1f}"
    return f"{x:{sign},.0f}"


def _level_lines(table: pd.DataFrame) -> list[str]:
    lines = ["| metric (mean, 95% interval) | " + " | ".join(LEVELS) + " |", "|---" + "|---:" * len(LEVELS) + "|"]
    for metric, label in METRICS.items():
        rows = table[table["metric"] == metric].set_index("level")
        cells = [
            f"{_value(metric, r['mean'])} ({_value(metric, r['ci_low'])} to {_value(metric, r['ci_high'])})"
            for _, r in rows.loc[list(LEVELS)].iterrows()
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _step_lines(steps: pd.DataFrame) -> list[str]:
    pairs = list(dict.fromkeys(zip(steps["from"], steps["to"], strict=True)))
    lines = ["| paired step (95% interval) | " + " | ".join(f"{a} -> {b}" for a, b in pairs) + " |"]
    lines.append("|---" + "|---:" * len(pairs) + "|")
    for metric, label in METRICS.items():
        rows = steps[steps["metric"] == metric]
        cells = [
            f"{_value(metric, r['difference'], True)} ({_value(metric, r['ci_low'], True)} to "
            f"{_value(metric, r['ci_high'], True)})"
            for _, r in rows.iterrows()
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _bar_lines(sweeps: dict[str, pd.DataFrame], levels: dict[str, Scenario], runs: int) -> list[str]:
    lines = [f"Shared bar chosen by the aligned rule (revenue optimum of the shared-bar sweep, {runs} replications):"]
    lines += ["| level | chosen | within 5% of its revenue | scenario file |", "|---|---:|---|---:|"]
    for level, sweep in sweeps.items():
        near = rules.near_optimum(sweep)
        span = f"{min(near):.2f}-{max(near):.2f}" if len(near) > 1 else f"{near[0]:.2f}"
        chosen, file = rules.optimum(sweep), levels[level].qualification.sql.threshold
        lines.append(f"| {level} | {chosen:.2f} | {span} | {file:.2f} |")
    return lines


def _integration_lines(split: Attribution) -> list[str]:
    lines = ["Aligned -> integrated, split over its mechanisms (Shapley values of revenue):"]
    lines += ["| mechanism | contribution | 95% interval | switched alone into aligned |", "|---|---:|---:|---:|"]
    for row in split.table().to_dict("records"):
        alone = "" if row["lever"] == "total" else f"{row['alone']:+,.0f}"
        interval = f"{row['ci_low']:+,.0f} to {row['ci_high']:+,.0f}"
        lines.append(f"| {row['lever']} | {row['contribution']:+,.0f} | {interval} | {alone} |")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
