"""What each command writes into its output folder: the tables, event log, figures and manifest
of ``run``, ``run --runs``, ``plan``, ``mix``, ``compare``, ``sweep`` and ``sensitivity``.

Each ``write_*`` fills a folder through :func:`funnelsim.report.folder.write_atomically`, so it
appears complete or not at all, and ends with ``report.html`` and the manifest
(:func:`funnelsim.report.folder.write_report_and_manifest`; what each page says is in
:mod:`funnelsim.report.pages`).

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
``speed_to_lead_by_arrival.csv``
    Only with a working calendar whose SDR team has working hours: MQLs answered within 5
    minutes, median response (elapsed and working time) and SQL share, by when the MQL
    arrived (:func:`~funnelsim.run.response.speed_to_lead_by_arrival`).
``pipeline.csv``
    Open opportunities and their value after each change (:func:`~funnelsim.run.metrics.pipeline_over_time`).
``by_source.csv``, ``by_persona.csv``
    Funnel volumes, revenue and lead-to-win rate per source and per persona
    (:func:`~funnelsim.run.metrics.by_segment`).
``segments.csv``, ``segments_by_month.csv`` (a scenario with segments only)
    The headline numbers per segment, and the monthly funnel per segment
    (:func:`~funnelsim.run.metrics.summarize_segments`, :func:`~funnelsim.run.metrics.segments_by_month`).
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
``attainment.csv``, ``attainment_by_quarter.csv`` (only with AE quotas, ``sales.ae.quota_per_year``)
    Per AE (and per AE and quarter): ramped quota, bookings credited, attainment, commission
    (:func:`funnelsim.run.quotas.quota_report`).
``pipeline_views.csv``, ``forecast_deals.csv``, ``forecast_calibration.csv`` (only with a ``forecast`` section)
    Per month: coverage, forecast categories, slippage; per deal: forecast dates and pushes; per
    category: how its deals closed (:func:`funnelsim.run.pipeline_views.pipeline_views`).
``figures/funnel.<fmt>``, ``figures/revenue_by_month.<fmt>``, ``figures/capacity.<fmt>``, ``figures/leakage.<fmt>``
    The charts of :mod:`funnelsim.report.figures.run`, as PNG (default) or SVG; with quotas also
    ``figures/attainment.<fmt>``, with a forecast section ``figures/pipeline_views.<fmt>``.

A subscription scenario adds ``arr_bridge.csv`` (ARR, its bridge, customers and billings by month,
:func:`funnelsim.run.recurring.arr_bridge`), ``arr_by_quarter.csv`` (the same by quarter, with the
sales and marketing spend and the magic number), ``arr_ledger.csv`` (the ARR ledger),
``billings.csv`` (the invoices) and ``figures/arr_bridge.<fmt>``.
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


from funnelsim.report import pages
from funnelsim.report.folder import save_figures, write_atomically, write_csv, write_report_and_manifest
from funnelsim.report.scenario_file import planned_toml

__all__ = [
    "FEATURE_FIGURES",
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
FEATURE_FIGURES = ("attainment", "pipeline_views")
"""Figures drawn only when the scenario asks for them: AE quotas, a forecast section."""


def write_run(
    result: RunResult,
    out_dir: str | os.PathLike[str],
    *,
    figure_format: str = "png",
    force: bool = False,
    goal: float | None = None,
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
    goal
        The command's bookings goal of the horizon (``--goal``): the plan of the quota
        capacity and the target of the pipeline coverage, when the scenario has them.

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
        out_dir, force, figure_format, lambda folder: _write_contents(result, folder, figure_format, goal)
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


def _write_contents(result: RunResult, folder: Path, figure_format: str, goal: float | None = None) -> None:
    tables = _tables(result, goal)
    for name, frame in tables.items():
        write_csv(frame, folder / name)
    events_file = _write_events(result.events, folder)
    _write_figures(result, tables, folder / "figures", figure_format)
    _write_manifest(result, tables, folder, figure_format, events_file)


def _tables(result: RunResult, goal: float | None = None) -> dict[str, pd.DataFrame]:
    """Every CSV table of the folder, by file name."""
    sc = result.scenario
    ev = result.events
    start = sc.start_date
    horizon = float(sc.horizon_days)
    summary = {"scenario": sc.name, "seed": result.seed, "replication": result.replication}
    summary.update(metrics.summarize_run(result, goal))
    # Only a segmented scenario has the per-segment tables (an unsegmented folder is as it was).
    segments = (
        {"segments.csv": metrics.summarize_segments(result), "segments_by_month.csv": metrics.segments_by_month(result)}
        if sc.segments
        else {}
    )
    working, by_arrival = _calendar_tables(result)
    return {
        "summary.csv": pd.DataFrame([summary]),
        **segments,
        "stages_by_month.csv": metrics.stages_by_month(ev, start, horizon),
        "time_in_stage.csv": metrics.time_in_stage(ev),
        "revenue_by_month.csv": metrics.revenue_by_period(ev, start, "month", horizon),
        "revenue_by_quarter.csv": metrics.revenue_by_period(ev, start, "quarter", horizon),
        "leakage.csv": metrics.leakage(ev),
        "capacity_by_month.csv": metrics.capacity_by_month(result.levels, ev, start, horizon, working),
        **by_arrival,
        "pipeline.csv": metrics.pipeline_over_time(ev, _opening(result)),
        "by_source.csv": metrics.by_segment(result.leads, by="source"),
        "by_persona.csv": metrics.by_segment(result.leads, by="persona"),
        "leads.csv": result.leads,
        "levels.csv": result.levels,
        "roster.csv": result.roster,
        **_feature_tables(result, goal),
        **_recurring_tables(result),
    }


def _recurring_tables(result: RunResult) -> dict[str, pd.DataFrame]:
    """The tables of a subscription scenario: the ARR bridge by month and quarter, the ledger, the invoices."""
    if result.arr_ledger is None or result.billings is None:
        return {}
    from funnelsim.run import recurring

    sc = result.scenario
    return {
        "arr_bridge.csv": recurring.arr_bridge(
            result.arr_ledger, sc.start_date, float(sc.horizon_days), "month", result.billings
        ),
        "arr_by_quarter.csv": recurring.arr_by_quarter(result),
        "arr_ledger.csv": result.arr_ledger,
        "billings.csv": result.billings,
    }


def _feature_tables(result: RunResult, goal: float | None) -> dict[str, pd.DataFrame]:
    """The tables a scenario asks for: attainment with AE quotas, the pipeline views with a forecast section
    (none for other scenarios, whose folders stay as they were)."""
    from funnelsim.run.quotas import has_quotas

    tables: dict[str, pd.DataFrame] = {}
    if has_quotas(result.scenario):
        from funnelsim.run.quotas import quota_report

        quotas = quota_report(result, goal)
        tables |= {"attainment.csv": quotas.aes, "attainment_by_quarter.csv": quotas.quarters}
    if result.scenario.forecast is not None:
        from funnelsim.run.pipeline_views import pipeline_views

        views = pipeline_views(result, goal)
        tables |= {
            "pipeline_views.csv": views.months,
            "forecast_deals.csv": views.deals,
            "forecast_calibration.csv": views.calibration,
        }
    return tables


def _calendar_tables(result: RunResult) -> tuple[dict[str, Any] | None, dict[str, pd.DataFrame]]:
    """With working hours for a team: each team's working clock (for ``capacity_by_month.csv``) and, when
    the SDR team has them, ``speed_to_lead_by_arrival.csv``; without: ``None`` and nothing."""
    if getattr(result.scenario, "calendar", None) is None:
        return None, {}
    from funnelsim.model.workcal import clock_of
    from funnelsim.run import response

    working = {team: response.working_clock(result, team) for team in ("sdr", "ae")}
    if all(w is None for w in working.values()):
        return None, {}  # a calendar but no team with working hours: the teams work around the clock
    clock = clock_of(result.scenario, "sdr")
    if clock is None:
        return working, {}
    passes = response.sdr_passes(result.events)
    table = response.speed_to_lead_by_arrival(passes, clock, working["sdr"], float(result.scenario.horizon_days))
    return working, {"speed_to_lead_by_arrival.csv": table}


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
    prospected, pipeline = _opened_elsewhere(result)
    charts: dict[str, Figure] = {
        "funnel": figures.funnel_chart(
            metrics.stage_volumes(ev), conversions=metrics.conversions(ev), prospected=prospected, pipeline=pipeline
        )[0],
        "revenue_by_month": figures.revenue_chart(tables["revenue_by_month.csv"], sc.currency)[0],
        "capacity": figures.capacity_chart(tables["capacity_by_month.csv"])[0],
        "leakage": figures.leakage_chart(tables["leakage.csv"])[0],
    }
    if "attainment.csv" in tables:
        charts["attainment"] = figures.attainment_chart(tables["attainment.csv"])[0]
    if "pipeline_views.csv" in tables:
        charts["pipeline_views"] = figures.pipeline_views_chart(tables["pipeline_views.csv"], sc.currency)[0]
    if "arr_bridge.csv" in tables:
        charts["arr_bridge"] = figures.arr_bridge_figure(tables["arr_bridge.csv"], sc.currency)[0]
    save_figures(charts, folder, figure_format, f"{sc.name}, seed {result.seed}")


def _opened_elsewhere(result: RunResult) -> tuple[int, int]:
    """Opportunities of the run that never were SQLs: prospected by the AEs, or an initial pipeline's."""
    from funnelsim.model.scenario import PIPELINE_SOURCE

    opened = result.leads["lead"].isin(result.events.loc[result.events["event"] == "opportunity", "lead"].unique())
    source = result.leads["source"]
    return int((opened & source.eq("prospecting")).sum()), int((opened & source.eq(PIPELINE_SOURCE)).sum())


def _write_manifest(
    result: RunResult, tables: dict[str, pd.DataFrame], folder: Path, figure_format: str, events_file: str
) -> None:
    run = {
        "complete": True,
        "seed": result.seed,
        "replication": result.replication,
        "drawn_parameters": result.metadata.get("parameters", {}),
        "events_file": events_file,
    }
    extra = ("pyarrow",) if events_file.endswith(".parquet") else ()
    page = lambda doc: pages.run_page(result, tables, doc)  # noqa: E731
    write_report_and_manifest(result.scenario, folder, figure_format, run, "run", page, extra)


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
    write_report_and_manifest(
        sc, folder, figure_format, run, "replications", lambda doc: pages.replications_page(reps, doc)
    )


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
    verification round), ``tradeoff.csv`` (lever "both"), ``segment_targets.csv`` (a segmented scenario),
    ``replications.csv`` and
    ``monthly.csv`` (the plan's verification replications, on fresh seeds),
    ``planned.toml``, ``manifest.json`` and figures ``waterfall``, ``quotas``,
    ``fan_chart`` (and ``tradeoff``); ``targets.xlsx`` (a sheet per team, months across) when
    openpyxl is installed (:func:`funnelsim.report.xlsx.available`). See docs/outputs.md.
    """

    def fill(folder: Path) -> None:
        from funnelsim.report import figures, xlsx

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
        if plan.segments:  # a segmented scenario: each segment's monthly targets and headcount
            tables["segment_targets.csv"] = pd.concat(
                [months.assign(segment=name) for name, months in plan.segments.items()], ignore_index=True
            )
        for name, frame in tables.items():
            write_csv(frame, folder / name)
        (folder / "planned.toml").write_text(planned_toml(plan, source_text, overrides), encoding="utf-8")
        if xlsx.available():
            xlsx.write_targets(plan, diagnostics, folder / "targets.xlsx")
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
        page = lambda doc: pages.plan_page(plan, diagnostics, stages, doc)  # noqa: E731
        write_report_and_manifest(plan.scenario, folder, figure_format, run, "plan", page)

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
            charts["levers"] = figures.lever_waterfall_chart(
                levers, attribution.start(), attribution.labels, currency=first.currency
            )[0]
        label = f"{' vs '.join(comparison.labels)}, seed {comparison.seed}"
        save_figures(charts, folder / "figures", figure_format, label)
        run = {
            "seed": comparison.seed,
            "runs": comparison.runs[comparison.labels[0]].completed,
            "scenarios": {k: reps.scenario.sha256() for k, reps in comparison.runs.items()},
        }
        page = lambda doc: pages.comparison_page(comparison, table, doc)  # noqa: E731
        write_report_and_manifest(first, folder, figure_format, run, "compare", page)

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
            chart = figures.sweep_chart(table, path, metric, unit, best=best.values[path], currency=sc.currency)[0]
            charts: dict[str, Figure] = {"sweep": chart}
        else:
            charts = {"heatmap": figures.sweep_heatmap(table, sweep.parameters, metric, unit, currency=sc.currency)[0]}
        save_figures(charts, folder / "figures", figure_format, f"{sc.name}, seed {sweep.seed}, {sweep.n_runs} runs")
        run = {
            "seed": sweep.seed,
            "runs": sweep.n_runs,
            "parameters": sweep.axes,
            "metric": metric,
            "optimum": best.to_json(),
        }
        page = lambda doc: pages.sweep_page(sweep, table, metric, doc)  # noqa: E731
        write_report_and_manifest(sc, folder, figure_format, run, "sweep", page)

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
        charts: dict[str, Figure] = {"tornado": figures.tornado_chart(table, unit, currency=sc.currency)[0]}
        label = f"{sc.name}, seed {sensitivity.seed}, {sensitivity.base.completed} runs, ±{sensitivity.by:.0%}"
        save_figures(charts, folder / "figures", figure_format, label)
        run = {"seed": sensitivity.seed, "runs": sensitivity.base.completed, "by": sensitivity.by, "metric": metric}
        page = lambda doc: pages.sensitivity_page(sensitivity, table, doc)  # noqa: E731
        write_report_and_manifest(sc, folder, figure_format, run, "sensitivity", page)

    return write_atomically(out_dir, force, figure_format, fill)


def _opening(result: RunResult) -> tuple[int, float]:
    """The opportunities open on day 0 that the log does not open (a warm start's), and their value.

    A pipeline start's open deals are opened in the log on day 0 (its ``open_at_start`` counts them
    too, for the narration): none to add, or they would count twice.
    """
    if result.scenario.start_mode == "pipeline":
        return 0, 0.0
    opening = result.metadata.get("open_at_start", {})
    return int(opening.get("opportunities", 0)), float(opening.get("value", 0.0))


def write_mix(result: Mix, out_dir: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write a budget mix to ``out_dir`` (atomically): ``mix.csv`` (one row per mix and channel, and a
    ``total`` per mix; columns in docs/outputs.md) and ``manifest.json``."""

    def fill(folder: Path) -> None:
        write_csv(result.table, folder / "mix.csv")
        run = {"budget": result.budget, "objective": result.objective, "shadow_price": result.shadow_price}
        page = lambda doc: pages.mix_page(result, doc)  # noqa: E731
        write_report_and_manifest(result.scenario, folder, "png", run, "mix", page)

    return write_atomically(out_dir, force, "png", fill)
