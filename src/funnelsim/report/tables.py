"""What each command writes into its output folder: the tables, event log, figures and manifest
of ``run``, ``run --runs``, ``plan``, ``mix``, ``compare``, ``sweep`` and ``sensitivity``.

Each ``write_*`` fills a folder through :func:`funnelsim.report.folder.write_atomically`, so it
appears complete or not at all, and ends with :func:`funnelsim.report.folder.write_manifest`.

Files written (times are days since the scenario's ``start_date``, money is in
its ``currency``; every CSV has a header row, no index column, and floats
written to full precision so they read back bit for bit):

``summary.csv``
    One row: ``scenario``, ``seed``, ``replication``, then the headline numbers of
    :func:`funnelsim.run.metrics.summarize_run` (volumes, conversions, revenue, win rate,
    cycle times, costs, CAC, utilisation).
``stages_by_month.csv``
    Per calendar month: leads, MQLs, SQLs, opportunities, wins, revenue and flow
    ratios (:func:`~funnelsim.run.metrics.stages_by_month`).
``time_in_stage.csv``
    Velocity per stage: n, mean, median and P90 days (:func:`~funnelsim.run.metrics.time_in_stage`).
``revenue_by_month.csv``, ``revenue_by_quarter.csv``
    Wins, revenue and average deal size per period, at close date
    (:func:`~funnelsim.run.metrics.revenue_by_period`).
``leakage.csv``
    Where and why leads left the funnel, with share of all leads (:func:`~funnelsim.run.metrics.leakage`).
``capacity_by_month.csv``
    Per month and team (sdr, ae): capacity, busy, time-weighted utilisation, mean and
    max queue, mean wait in days (:func:`~funnelsim.run.metrics.capacity_by_month`).
``pipeline.csv``
    Open opportunities and their value after each change (:func:`~funnelsim.run.metrics.pipeline_over_time`).
``by_source.csv``, ``by_persona.csv``
    Funnel volumes, revenue and lead-to-win rate per source and per persona
    (:func:`~funnelsim.run.metrics.by_segment`).
``leads.csv``
    One row per lead: traits, first time at each milestone, final state, deal
    amount, AE (:attr:`funnelsim.RunResult.leads`).
``levels.csv``
    The level log: ``time, team, queue, busy, capacity`` at each change.
``roster.csv``
    The roster: ``time, team, rep, change, productivity`` at each change.
``events.parquet`` (or ``events.csv.gz`` when pyarrow is not installed)
    The event log ``time, lead, event, rep, value`` (see :mod:`funnelsim.vocabulary`).
``manifest.json``
    What produced the folder: funnelsim version, creation time (UTC), scenario name,
    SHA-256 and the fully resolved scenario, seed, replication, library versions,
    currency and units, start date, horizon, and the list of files.
``figures/funnel.<fmt>``, ``figures/revenue_by_month.<fmt>``, ``figures/capacity.<fmt>``, ``figures/leakage.<fmt>``
    The charts of :mod:`funnelsim.report.figures.run`, as PNG (default) or SVG.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from funnelsim.run import metrics

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from funnelsim.run.result import RunResult
    from funnelsim.studies.budget import Mix
    from funnelsim.studies.compare import Comparison
    from funnelsim.studies.planner import Plan, PlanDiagnostics
    from funnelsim.studies.replications import Replications
    from funnelsim.studies.sensitivity import Sensitivity
    from funnelsim.studies.sweep import Sweep


from funnelsim.report.folder import save_figures, write_atomically, write_csv, write_manifest
from funnelsim.report.scenario_file import planned_toml

__all__ = [
    "FIGURES",
    "write_comparison",
    "write_mix",
    "write_plan",
    "write_replications",
    "write_run",
    "write_sensitivity",
    "write_sweep",
]

FIGURES = ("funnel", "revenue_by_month", "capacity", "leakage")


def write_run(
    result: RunResult, out_dir: str | os.PathLike[str], *, figure_format: str = "png", force: bool = False
) -> Path:
    """Write the tables, event log, figures and manifest of one run to ``out_dir``.

    Parameters
    ----------
    result
        The run, from :func:`funnelsim.simulate`.
    out_dir
        Folder to create. Its parent is created if missing.
    figure_format
        ``"png"`` or ``"svg"``.
    force
        Replace ``out_dir`` if it exists. The old folder is removed only after the
        new one is complete and in place.

    Returns
    -------
    pathlib.Path
        ``out_dir``.

    Raises
    ------
    OutputExistsError
        ``out_dir`` exists and ``force`` is false (checked before any work), or it
        is not a folder, or it contains the current working directory.
    OutputError
        Unknown ``figure_format``.
    """
    return write_atomically(
        out_dir, force, figure_format, lambda folder: _write_contents(result, folder, figure_format)
    )


def write_replications(
    reps: Replications, out_dir: str | os.PathLike[str], *, figure_format: str = "png", force: bool = False
) -> Path:
    """Write a Monte Carlo run to ``out_dir``, as :func:`write_run` does for one run.

    Files: ``replications.csv`` (one row per replication), ``monthly.csv`` (one row per
    replication and month), ``summary.csv`` (one row per metric), ``manifest.json``, and
    figures ``fan_chart``, ``revenue_distribution`` and ``funnel_range``.
    """
    return write_atomically(
        out_dir, force, figure_format, lambda folder: _write_replication_contents(reps, folder, figure_format)
    )


def _write_contents(result: RunResult, folder: Path, figure_format: str) -> None:
    tables = _tables(result)
    for name, frame in tables.items():
        write_csv(frame, folder / name)
    events_file = _write_events(result.events, folder)
    _write_figures(result, tables, folder / "figures", figure_format)
    _write_manifest(result, folder, figure_format, events_file)


def _tables(result: RunResult) -> dict[str, pd.DataFrame]:
    """Every CSV table of the folder, by file name."""
    sc = result.scenario
    ev = result.events
    start = sc.start_date
    horizon = float(sc.horizon_days)
    summary = {"scenario": sc.name, "seed": result.seed, "replication": result.replication}
    summary.update(metrics.summarize_run(result))
    return {
        "summary.csv": pd.DataFrame([summary]),
        "stages_by_month.csv": metrics.stages_by_month(ev, start, horizon),
        "time_in_stage.csv": metrics.time_in_stage(ev),
        "revenue_by_month.csv": metrics.revenue_by_period(ev, start, "month", horizon),
        "revenue_by_quarter.csv": metrics.revenue_by_period(ev, start, "quarter", horizon),
        "leakage.csv": metrics.leakage(ev),
        "capacity_by_month.csv": metrics.capacity_by_month(result.levels, ev, start, horizon),
        "pipeline.csv": metrics.pipeline_over_time(ev, _opening(result)),
        "by_source.csv": metrics.by_segment(result.leads, by="source"),
        "by_persona.csv": metrics.by_segment(result.leads, by="persona"),
        "leads.csv": result.leads,
        "levels.csv": result.levels,
        "roster.csv": result.roster,
    }


def _parquet_available() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def _write_events(events: pd.DataFrame, folder: Path) -> str:
    """The event log as Parquet if pyarrow is installed, else gzipped CSV; returns the file name."""
    if _parquet_available():
        events.to_parquet(folder / "events.parquet", index=False)
        return "events.parquet"
    # mtime 0: the same run gives the same bytes.
    write_csv(events, folder / "events.csv.gz", compression={"method": "gzip", "mtime": 0})
    return "events.csv.gz"


def _write_figures(result: RunResult, tables: dict[str, pd.DataFrame], folder: Path, figure_format: str) -> None:
    from funnelsim.report import figures

    ev = result.events
    sc = result.scenario
    charts: dict[str, Figure] = {
        "funnel": figures.funnel_chart(metrics.stage_volumes(ev), conversions=metrics.conversions(ev))[0],
        "revenue_by_month": figures.revenue_chart(tables["revenue_by_month.csv"], sc.currency)[0],
        "capacity": figures.capacity_chart(tables["capacity_by_month.csv"])[0],
        "leakage": figures.leakage_chart(tables["leakage.csv"])[0],
    }
    save_figures(charts, folder, figure_format, f"{sc.name}, seed {result.seed}")


def _write_manifest(result: RunResult, folder: Path, figure_format: str, events_file: str) -> None:
    run = {
        "complete": True,
        "seed": result.seed,
        "replication": result.replication,
        "drawn_parameters": result.metadata.get("parameters", {}),
        "events_file": events_file,
    }
    extra = ("pyarrow",) if events_file.endswith(".parquet") else ()
    write_manifest(result.scenario, folder, figure_format, run, extra)


def _write_replication_contents(reps: Replications, folder: Path, figure_format: str) -> None:
    from funnelsim.report import figures

    write_csv(reps.table, folder / "replications.csv")
    write_csv(reps.monthly, folder / "monthly.csv")
    write_csv(reps.summary(), folder / "summary.csv")
    sc = reps.scenario
    p_goal = reps.p_goal()
    charts: dict[str, Figure] = {}
    if reps.completed:
        charts = {
            "fan_chart": figures.fan_chart(reps.monthly, sc.currency, goal=reps.goal)[0],
            "revenue_distribution": figures.revenue_distribution(
                reps.table, sc.currency, goal=reps.goal, p_goal=None if p_goal is None else p_goal["estimate"]
            )[0],
            "funnel_range": figures.funnel_range_chart(reps.table)[0],
        }
    save_figures(charts, folder / "figures", figure_format, f"{sc.name}, seed {reps.seed}, {reps.completed} runs")
    doc = reps.to_json()
    run: dict[str, Any] = {key: doc[key] for key in ("complete", "seed", "requested", "completed", "stopped")}
    run["interruption"] = doc.get("interruption")
    run |= {"goal": reps.goal, "precision": reps.precision, "confidence": reps.confidence}
    write_manifest(sc, folder, figure_format, run)


def write_plan(
    plan: Plan,
    diagnostics: PlanDiagnostics,
    out_dir: str | os.PathLike[str],
    *,
    source_text: str | None = None,
    overrides: tuple[str, ...] = (),
    figure_format: str = "png",
    force: bool = False,
) -> Path:
    """Write a plan to ``out_dir`` (atomically, as :func:`write_run`).

    Files: ``plan.json`` (the ``--json`` document), ``targets.csv`` (the joint-target
    sheet), ``headcount.csv``, ``stages.csv`` (period totals, analytic vs. simulated),
    ``candidates.csv`` (every candidate the search simulated), ``verification.csv`` (every
    verification round), ``tradeoff.csv`` (lever "both"), ``replications.csv`` and
    ``monthly.csv`` (the plan's verification replications, on fresh seeds),
    ``planned.toml``, ``manifest.json`` and figures ``waterfall``, ``quotas``,
    ``fan_chart`` (and ``tradeoff``). See docs/outputs.md.
    """

    def fill(folder: Path) -> None:
        from funnelsim.report import figures

        reps = diagnostics.replications
        stages = diagnostics.stages()
        doc = plan.to_json()
        (folder / "plan.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        tables = {
            "targets.csv": plan.sheet,
            "headcount.csv": plan.headcount,
            "stages.csv": stages,
            "candidates.csv": diagnostics.candidates,
            "verification.csv": diagnostics.verifications,
            "replications.csv": reps.table,
            "monthly.csv": reps.monthly,
        }
        if diagnostics.tradeoff is not None:
            tables["tradeoff.csv"] = diagnostics.tradeoff
        for name, frame in tables.items():
            write_csv(frame, folder / name)
        (folder / "planned.toml").write_text(planned_toml(plan, source_text, overrides), encoding="utf-8")
        inside = reps.monthly[reps.monthly["month"].isin(plan.period.months)].copy()
        inside["cumulative_revenue"] = inside.groupby("replication")["revenue"].cumsum()
        cur = plan.scenario.currency
        charts: dict[str, Figure] = {
            "waterfall": figures.plan_waterfall_chart(stages)[0],
            "quotas": figures.quota_chart(plan.sheet)[0],
            "fan_chart": figures.fan_chart(inside, cur, goal=plan.goal)[0],
        }
        if diagnostics.tradeoff is not None:
            charts["tradeoff"] = figures.tradeoff_chart(diagnostics.tradeoff, cur)[0]
        pg = plan.p_goal
        label = f"{plan.scenario.name}, seed {diagnostics.seed}, {pg['n']} fresh runs (verification)"
        save_figures(charts, folder / "figures", figure_format, label)
        run: dict[str, Any] = {"seed": diagnostics.seed, "runs": diagnostics.runs, "goal": plan.goal}
        run |= {
            "confidence": plan.confidence,
            "status": plan.status,
            "budget": plan.budget,
            "seeds": _plan_seeds(plan, diagnostics),
        }
        write_manifest(plan.scenario, folder, figure_format, run)

    return write_atomically(out_dir, force, figure_format, fill)


def _plan_seeds(plan: Plan, diagnostics: PlanDiagnostics) -> dict[str, Any]:
    """Which replications of which seed the search and each verification round ran (the manifest's ``seeds``)."""
    rounds = diagnostics.verifications.to_dict("records")
    return {
        "seed": diagnostics.seed,
        "search": {"replications": [0, diagnostics.runs - 1], "note": "every candidate on the same replications"},
        "verification": [
            {
                "round": int(r["round"]),
                "replications": [int(r["first_replication"]), int(r["first_replication"] + r["runs"] - 1)],
            }
            for r in rounds
        ],
        "note": "replications are children of SeedSequence(seed); each verification round runs a block of them "
        f"the search and the other rounds never ran; the plan's p_goal is round {plan.p_goal['round']}'s",
    }


def write_comparison(
    comparison: Comparison, out_dir: str | os.PathLike[str], *, figure_format: str = "png", force: bool = False
) -> Path:
    """Write a comparison to ``out_dir`` (atomically): ``comparison.csv`` (per metric and
    scenario, with the paired difference against the first), ``leakage.csv`` (leads lost
    per reason and scenario), ``replications.csv`` (every scenario's replications,
    stacked), ``manifest.json`` (the first scenario's, with every scenario's name and
    SHA-256) and figures ``revenue``, ``funnel`` and ``leakage``. With an attribution:
    ``attribution.csv`` (one row per lever, then ``total``), ``coalitions.csv`` (every
    combination of levers simulated) and the figure ``levers``."""

    def fill(folder: Path) -> None:
        from funnelsim.report import figures

        table = comparison.table()
        stacked = comparison.replications()
        leakage = comparison.leakage()
        write_csv(table, folder / "comparison.csv")
        write_csv(leakage, folder / "leakage.csv")
        write_csv(stacked, folder / "replications.csv")
        first = comparison.runs[comparison.labels[0]].scenario
        charts: dict[str, Figure] = {
            "revenue": figures.compare_revenue_chart(stacked, first.currency)[0],
            "funnel": figures.compare_funnel_chart(table)[0],
            "leakage": figures.compare_leakage_chart(leakage)[0],
        }
        attribution = comparison.attribution
        if attribution is not None:
            levers = attribution.table()
            write_csv(levers, folder / "attribution.csv")
            write_csv(attribution.coalitions(), folder / "coalitions.csv")
            charts["levers"] = figures.lever_waterfall_chart(levers, attribution.start(), attribution.labels)[0]
        label = f"{' vs '.join(comparison.labels)}, seed {comparison.seed}"
        save_figures(charts, folder / "figures", figure_format, label)
        run = {
            "seed": comparison.seed,
            "runs": comparison.runs[comparison.labels[0]].completed,
            "scenarios": {k: reps.scenario.sha256() for k, reps in comparison.runs.items()},
        }
        write_manifest(first, folder, figure_format, run)

    return write_atomically(out_dir, force, figure_format, fill)


def write_sweep(
    sweep: Sweep,
    out_dir: str | os.PathLike[str],
    *,
    metric: str = "revenue",
    figure_format: str = "png",
    force: bool = False,
) -> Path:
    """Write a sweep to ``out_dir`` (atomically): ``sweep.csv`` (one row per grid point),
    ``differences.csv`` (every point against the optimum of ``metric``, paired),
    ``replications.csv`` (every point's replications, stacked), ``manifest.json`` (the base
    scenario, the grid and the optimum) and the figure ``sweep`` (one parameter) or
    ``heatmap`` (two)."""
    from funnelsim.studies.sweep import SWEEP_METRICS

    def fill(folder: Path) -> None:
        from funnelsim.report import figures

        metrics = list(dict.fromkeys([*SWEEP_METRICS, metric]))
        table = sweep.table(metrics)
        best = sweep.optimum(metric)
        write_csv(table, folder / "sweep.csv")
        write_csv(sweep.differences(metric, against=best.point), folder / "differences.csv")
        write_csv(sweep.replications(), folder / "replications.csv")
        sc = sweep.scenario
        unit = sc.currency if metric in ("revenue", "cac") or "cost" in metric else ""
        if len(sweep.parameters) == 1:
            path = sweep.parameters[0]
            chart = figures.sweep_chart(table, path, metric, unit, best=best.values[path])[0]
            charts: dict[str, Figure] = {"sweep": chart}
        else:
            charts = {"heatmap": figures.sweep_heatmap(table, sweep.parameters, metric, unit)[0]}
        save_figures(charts, folder / "figures", figure_format, f"{sc.name}, seed {sweep.seed}, {sweep.n_runs} runs")
        run = {
            "seed": sweep.seed,
            "runs": sweep.n_runs,
            "parameters": sweep.axes,
            "metric": metric,
            "optimum": best.to_json(),
        }
        write_manifest(sc, folder, figure_format, run)

    return write_atomically(out_dir, force, figure_format, fill)


def write_sensitivity(
    sensitivity: Sensitivity, out_dir: str | os.PathLike[str], *, figure_format: str = "png", force: bool = False
) -> Path:
    """Write a sensitivity analysis to ``out_dir`` (atomically): ``sensitivity.csv`` (one row
    per parameter, by swing), ``skipped.csv`` (what was not varied and why),
    ``replications.csv`` (base, low and high runs, stacked), ``manifest.json`` and the
    figure ``tornado``."""

    def fill(folder: Path) -> None:
        from funnelsim.report import figures

        table = sensitivity.table()
        write_csv(table, folder / "sensitivity.csv")
        write_csv(sensitivity.skipped, folder / "skipped.csv")
        write_csv(sensitivity.replications(), folder / "replications.csv")
        sc = sensitivity.scenario
        metric = sensitivity.metric
        unit = sc.currency if metric in ("revenue", "cac") or "cost" in metric else ""
        charts: dict[str, Figure] = {"tornado": figures.tornado_chart(table, unit)[0]}
        label = f"{sc.name}, seed {sensitivity.seed}, {sensitivity.base.completed} runs, ±{sensitivity.by:.0%}"
        save_figures(charts, folder / "figures", figure_format, label)
        run = {"seed": sensitivity.seed, "runs": sensitivity.base.completed, "by": sensitivity.by, "metric": metric}
        write_manifest(sc, folder, figure_format, run)

    return write_atomically(out_dir, force, figure_format, fill)


def _opening(result: RunResult) -> tuple[int, float]:
    """The opportunities open on day 0 that the log does not open (a warm start's), and their value."""
    opening = result.metadata.get("open_at_start", {})
    return int(opening.get("opportunities", 0)), float(opening.get("value", 0.0))


def write_mix(result: Mix, out_dir: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write a budget mix to ``out_dir`` (atomically): ``mix.csv`` (one row per mix and channel, and a
    ``total`` per mix; columns in docs/outputs.md) and ``manifest.json``."""

    def fill(folder: Path) -> None:
        write_csv(result.table, folder / "mix.csv")
        run = {"budget": result.budget, "objective": result.objective, "shadow_price": result.shadow_price}
        write_manifest(result.scenario, folder, "png", run)

    return write_atomically(out_dir, force, "png", fill)
