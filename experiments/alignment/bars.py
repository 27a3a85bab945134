"""Each organisation's qualification bars, chosen by the rule that organisation follows.

The alignment result must not rest on hand-picked bars, so neither scenario file's bar is
a free choice:

* **aligned** (one shared rule, one bar for MQL and SQL): the bar that maximises the
  company's revenue, found by a sweep of the shared bar (``ALIGNED_RANGE``), the joint
  optimum both teams are measured on (:func:`shared_sweep`, :func:`optimum`; ``levels.py``
  applies the same rule to the other levels with one shared definition, defined and
  integrated);
* **misaligned**: marketing, paid on MQL volume, sets its bar as high as it can while still
  hitting its MQL target (``mql_growth`` times last year's MQLs, the baseline's); sales,
  which protects its win rate, rejects every lead that would dilute it: its bar is the lowest
  whose win rate is within ``win_rate_slack`` of the best win rate any bar gives (stricter
  bars buy less than that). Marketing's bar comes first: sales works on what marketing
  sends.

The targets themselves are assumptions (the company's plan), so the study also reports the
revenue ratio over a band of them (``BAND``): every shared bar within 5% of the aligned
optimum's revenue, against misaligned companies with MQL targets of +10% to +40% and a
win-rate slack of one to three points. All points run on common random
numbers (the same replications of one seed), and every bar is on a 0.02 grid (0.1 for the quick check).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from funnelsim.model.loading import parse_scenario
from funnelsim.model.paths import set_paths
from funnelsim.model.scenario import Scenario
from funnelsim.studies import replications as mc

# The bars searched (from, to); the grid's step is choose()'s.
ALIGNED_RANGE = (0.50, 0.80)
MQL_RANGE = (0.30, 0.70)
SQL_RANGE = (0.30, 0.80)
# The plan's targets: MQL growth over last year; how far below its best win rate sales goes.
RULE = {"mql_growth": 1.25, "win_rate_slack": 0.02}
BAND = {"mql_growth": (1.10, 1.25, 1.40), "win_rate_slack": (0.01, 0.02, 0.03)}
# Replications per point of the bar sweeps (common random numbers: replications 0 .. RUNS-1).
RUNS = 8
# An aligned bar is plausible when its revenue is within this share of the optimum's.
NEAR_OPTIMUM = 0.05


@dataclass(frozen=True)
class Bars:
    """What the rules chose, what the sweeps measured, and the ratio over the band."""

    aligned: float
    mql: float
    sql: float
    targets: dict[str, float]
    aligned_sweep: pd.DataFrame  # threshold, revenue, mqls, win_rate (means)
    misaligned_sweep: pd.DataFrame  # mql_threshold, sql_threshold, revenue, mqls, win_rate
    band: pd.DataFrame  # aligned_threshold, mql_growth, win_rate_slack, mql, sql, revenues, ratio


def with_bars(scenario: Scenario, mql: float, sql: float) -> Scenario:
    """``scenario`` with its MQL and SQL thresholds set (weights unchanged), validated again."""
    changes = {"qualification.mql.threshold": mql, "qualification.sql.threshold": sql}
    return parse_scenario(set_paths(scenario.to_dict(), changes), scenario.name)


def _means(scenario: Scenario, runs: int, seed: int, pool: mc.Executor) -> dict[str, float]:
    table = mc.run(scenario, runs, seed, pool).table
    return {metric: float(table[metric].mean()) for metric in ("revenue", "mqls", "win_rate")}


def _sweep(
    points: Iterable[tuple[dict[str, float], Scenario]], runs: int, seed: int, pool: mc.Executor
) -> pd.DataFrame:
    return pd.DataFrame([key | _means(scenario, runs, seed, pool) for key, scenario in points])


def _grid(bounds: tuple[float, float], step: float) -> list[float]:
    return np.round(np.arange(bounds[0], bounds[1] + step / 2, step), 2).tolist()


def shared_sweep(scenario: Scenario, runs: int, seed: int, pool: mc.Executor, step: float = 0.02) -> pd.DataFrame:
    """The aligned rule's sweep for any company with one shared definition: ``scenario`` with
    its one bar (MQL = SQL) at every point of ``ALIGNED_RANGE``; one row per bar with the
    ``threshold`` and the mean ``revenue``, ``mqls`` and ``win_rate`` of replications
    ``0 .. runs-1`` of ``seed``."""
    grid = _grid(ALIGNED_RANGE, step)
    return _sweep((({"threshold": t}, with_bars(scenario, t, t)) for t in grid), runs, seed, pool)


def optimum(sweep: pd.DataFrame) -> float:
    """The bar the aligned rule chooses from a :func:`shared_sweep`: the highest mean revenue."""
    return float(sweep.loc[sweep["revenue"].idxmax(), "threshold"])


def near_optimum(sweep: pd.DataFrame) -> list[float]:
    """The plausible shared bars of a :func:`shared_sweep`: revenue within ``NEAR_OPTIMUM`` of the best."""
    best = float(sweep["revenue"].max())
    return [float(t) for t in sweep.loc[sweep["revenue"] >= (1 - NEAR_OPTIMUM) * best, "threshold"]]


def choose(
    baseline: pd.DataFrame,
    misaligned: Scenario,
    aligned: Scenario,
    runs: int,
    seed: int,
    pool: mc.Executor,
    step: float = 0.02,
) -> Bars:
    """Apply the rules. ``baseline`` is last year's replications (the baseline company's table)."""
    mql_grid, sql_grid = (_grid(r, step) for r in (MQL_RANGE, SQL_RANGE))
    last_mqls = float(baseline["mqls"].mean())
    shared = shared_sweep(aligned, runs, seed, pool, step)
    best = shared.loc[shared["revenue"].idxmax()]
    # MQL volume depends on marketing's bar only (sales' bar at its current value).
    volume = _sweep(
        (({"mql_threshold": t}, with_bars(misaligned, t, misaligned.qualification.sql.threshold)) for t in mql_grid),
        runs,
        seed,
        pool,
    )
    marketing = {g: _highest_meeting(volume, "mql_threshold", "mqls", g * last_mqls) for g in BAND["mql_growth"]}
    rows = _sweep(
        (
            ({"mql_threshold": m, "sql_threshold": s}, with_bars(misaligned, m, s))
            for m in set(marketing.values())
            for s in sql_grid
        ),
        runs,
        seed,
        pool,
    )
    band = _band(shared, best["revenue"], rows, marketing)
    rule = band[(band["mql_growth"] == RULE["mql_growth"]) & (band["win_rate_slack"] == RULE["win_rate_slack"])]
    return Bars(
        aligned=float(best["threshold"]),
        mql=float(rule["mql"].iloc[0]),
        sql=float(rule["sql"].iloc[0]),
        targets={"mqls": RULE["mql_growth"] * last_mqls, "win_rate": float(rule["win_rate_target"].iloc[0])},
        aligned_sweep=shared,
        misaligned_sweep=rows,
        band=band,
    )


def _highest_meeting(table: pd.DataFrame, bar: str, metric: str, target: float) -> float:
    """The highest bar whose mean ``metric`` reaches ``target`` (the lowest bar if none does)."""
    meeting = table[table[metric] >= target]
    return float(meeting[bar].max() if len(meeting) else table[bar].min())


def _lowest_meeting(table: pd.DataFrame, bar: str, metric: str, target: float) -> float:
    """The lowest bar whose mean ``metric`` reaches ``target`` (the highest bar if none does)."""
    meeting = table[table[metric] >= target]
    return float(meeting[bar].min() if len(meeting) else table[bar].max())


def _band(shared: pd.DataFrame, best: float, rows: pd.DataFrame, marketing: dict[float, float]) -> pd.DataFrame:
    """The revenue ratio aligned / misaligned for every plausible pair of organisations."""
    near = shared[shared["revenue"] >= (1 - NEAR_OPTIMUM) * best]
    out = []
    for growth, mql in marketing.items():
        sales = rows[rows["mql_threshold"] == mql]
        for slack in BAND["win_rate_slack"]:
            target = float(sales["win_rate"].max()) - slack
            sql = _lowest_meeting(sales, "sql_threshold", "win_rate", target)
            revenue = float(sales.loc[sales["sql_threshold"] == sql, "revenue"].iloc[0])
            for point in near.itertuples():
                out.append(
                    {
                        "aligned_threshold": point.threshold,
                        "mql_growth": growth,
                        "win_rate_slack": slack,
                        "win_rate_target": target,
                        "mql": mql,
                        "sql": sql,
                        "aligned_revenue": point.revenue,
                        "misaligned_revenue": revenue,
                        "ratio": point.revenue / revenue,
                    }
                )
    return pd.DataFrame(out)


def figure(bars: Bars) -> tuple[Any, Any]:
    """The ratio over the band: one line per misaligned company, across plausible shared bars."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for (growth, slack), group in bars.band.groupby(["mql_growth", "win_rate_slack"]):
        chosen = growth == RULE["mql_growth"] and slack == RULE["win_rate_slack"]
        ax.plot(
            group["aligned_threshold"],
            group["ratio"],
            marker="o",
            lw=2.5 if chosen else 1,
            color="C3" if chosen else "0.6",
            label=f"misaligned: MQL target +{growth - 1:.0%}, win rate within {slack:.0%} of best" if chosen else None,
        )
    ax.axhline(1.0, color="k", lw=0.8)
    ax.axvline(bars.aligned, color="C0", ls="--", lw=1, label=f"aligned optimum {bars.aligned:.2f}")
    ax.set_xlabel("aligned company's shared bar (plausible: revenue within 5% of the optimum)")
    ax.set_ylabel("revenue, aligned / misaligned")
    low, high = bars.band["ratio"].min(), bars.band["ratio"].max()
    ax.set_title(f"Alignment is worth {low:.2f}x to {high:.2f}x over the band (grey: other targets)")
    ax.set_ylim(0, max(1.5, high * 1.1))
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig, ax


def main(argv: list[str] | None = None) -> int:
    """Print the bars the rules choose for the bundled scenarios (without the rest of the study)."""
    import argparse
    from pathlib import Path

    from funnelsim import load_scenario
    from funnelsim.studies import executors

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)
    folder = Path(__file__).resolve().parent.parent.parent / "scenarios"
    scenarios = {name: load_scenario(folder / f"{name}.toml") for name in ("baseline", "misaligned", "aligned")}
    with executors.executor(args.jobs) as pool:
        baseline = mc.run(scenarios["baseline"], args.runs, args.seed, pool).table
        chosen = choose(baseline, scenarios["misaligned"], scenarios["aligned"], args.runs, args.seed, pool)
    print(f"aligned {chosen.aligned:.2f}; misaligned MQL {chosen.mql:.2f}, SQL {chosen.sql:.2f}")
    print(f"targets {chosen.targets}")
    print(chosen.aligned_sweep.to_string())
    print(chosen.misaligned_sweep.to_string())
    print(chosen.band.to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
