"""What each command's ``report.html`` says: its question, the answer in one sentence with its range,
the assumptions, the tables and the figures' captions (:mod:`funnelsim.report.html` renders them).

Each ``*_page`` function takes what the command's folder writer already holds (the result and the
tables it writes) and returns the page's context. The answer's numbers are the tables' numbers,
rounded the way the page rounds (:func:`~funnelsim.report.html.short_money`): a reader who checks
the answer against the table below it finds the same figure.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

from funnelsim.report.html import HtmlTable, count, days, frame_table, money, percent, short_money

if TYPE_CHECKING:
    import pandas as pd

    from funnelsim.calibrate import Calibration
    from funnelsim.model.scenario import Scenario
    from funnelsim.run.result import RunResult
    from funnelsim.studies.backtest import Backtest
    from funnelsim.studies.budget import Mix
    from funnelsim.studies.compare import Comparison
    from funnelsim.studies.planner import Plan, PlanDiagnostics
    from funnelsim.studies.replications import Replications
    from funnelsim.studies.sensitivity import Sensitivity
    from funnelsim.studies.sweep import Sweep

__all__ = [
    "assumptions",
    "backtest_page",
    "calibration_page",
    "comparison_page",
    "metadata",
    "mix_page",
    "plan_page",
    "replications_page",
    "run_page",
    "sensitivity_page",
    "sweep_page",
]


# --- the parts every page shares --------------------------------------------------------------------


def _mean(x: Any) -> float:
    """A number, or a distribution's mean (an uncertain rate, a cycle, a deal size)."""
    return float(x.mean) if hasattr(x, "dist") else float(x)


def _dist(x: Any, unit: str, scale: float = 1.0, fmt: str = "{:,.0f}") -> str:
    """``mean 25,000 USD (lognormal, sd 15,000)``: a distribution's mean in ``unit``, and its shape."""
    if not hasattr(x, "dist"):
        return f"{fmt.format(float(x) * scale)} {unit}".strip()
    sd = math.sqrt(float(x.variance))  # every distribution knows its variance (model.distributions)
    spread = f", sd {fmt.format(sd * scale)}" if math.isfinite(sd) and sd > 0 else ""
    return f"mean {fmt.format(_mean(x) * scale)} {unit} ({x.dist}{spread})".replace("  ", " ")


def _team(count_: int, hires: list[Any], noun: str) -> str:
    text = f"{count_} {noun}{'' if count_ == 1 else 's'} at the start"
    if hires:
        text += "; hires " + ", ".join(f"+{h.count} on {h.date.isoformat()}" for h in hires)
    return text


def _start(sc: Scenario) -> str:
    from funnelsim.engine.warmup import start_of

    start = start_of(sc)
    mode = start["mode"]
    if mode == "warm" and "burn_in_days" in start:
        return f"warm: {start['burn_in_days']:,.0f} days of burn-in before the start date (pipeline and queues settled)"
    if mode == "warm":
        return "warm: burn-in before the start date (pipeline and queues settled)"
    if mode == "pipeline":
        return "from the open pipeline given in the scenario (initial_pipeline)"
    return "cold: an empty company on the start date (no pipeline, no queues)"


def _sources(sc: Scenario) -> str:
    from funnelsim.model.scenario import DAYS_PER_MONTH

    parts = []
    for name, src in sc.sources.items():
        per_month = src.leads_per_day_mean * DAYS_PER_MONTH
        entry = " as MQLs" if src.entry_stage == "mql" else ""
        cost = f" at {src.cost_per_lead:,.0f} {sc.currency} a lead" if src.cost_per_lead else ""
        parts.append(f"{name} {per_month:,.0f} leads/month{entry}{cost}")
    return "; ".join(parts) + " (before seasonality)"


def _scenario_rows(sc: Scenario) -> list[tuple[str, str]]:
    """The scenario in words and units: the lines a planner checks before trusting the answer."""
    from funnelsim.model.analytic import expected_leads

    q, h, s = sc.qualification, sc.handoff, sc.sales
    last_day = sc.start_date + dt.timedelta(days=math.ceil(sc.horizon_days) - 1)
    rows = [
        ("Horizon", f"{sc.horizon_days:,.0f} days from {sc.start_date} to {last_day}"),
        ("Start", _start(sc)),
        ("Lead sources", _sources(sc)),
        ("Leads expected over the horizon", f"{expected_leads(sc):,.0f} (with seasonality)"),
        (
            "MQL bar (marketing)",
            f"score ≥ {q.mql.threshold:g}, score = {q.mql.fit_weight:g}·fit + {q.mql.engagement_weight:g}·engagement",
        ),
        (
            "SQL bar (sales)",
            f"score ≥ {q.sql.threshold:g}, score = {q.sql.fit_weight:g}·fit + {q.sql.engagement_weight:g}·engagement",
        ),
        (
            "Hand-off",
            f"{_mean(h.follow_up_rate):.0%} of MQLs followed up; response time "
            + _dist(h.response_delay_days, "hours", 24, "{:,.1f}"),
        ),
        ("SDRs", _team(h.sdr.count, h.sdr.hires, "SDR") + f"; {h.sdr.cost_per_year:,.0f} {sc.currency}/year each"),
        (
            "AEs",
            _team(s.ae.count, s.ae.hires, "AE") + f"; at most {s.ae.max_open_opportunities} open deals each; "
            f"{s.ae.cost_per_year:,.0f} {sc.currency}/year each",
        ),
        (
            "Sales",
            f"{_mean(s.opportunity_rate):.0%} of SQLs become opportunities; win rate {_mean(s.win_rate):.0%} "
            f"(at fit 0.5); cycle " + _dist(s.cycle_days, "days"),
        ),
        ("Deal size", _dist(s.deal_size, sc.currency)),
    ]
    prospecting = sc.prospecting.opportunities_per_ae_per_month
    if prospecting:
        rows.append(
            ("Prospecting", f"{prospecting:g} opportunit{'y' if prospecting == 1 else 'ies'} per idle AE a month")
        )
    if sc.segments:
        rows.append(("Segments", ", ".join(sc.segments)))
    if sc.subscription is not None:
        rows.append(("Revenue model", "subscription (ARR at signing; renewals, expansion and churn at term end)"))
    return rows


def assumptions(scenarios: dict[str, Scenario]) -> HtmlTable:
    """The scenarios' assumptions as a table: one row per item, one column per scenario, or per segment of a
    lone segmented scenario (rows that differ between columns in bold)."""
    if len(scenarios) == 1:  # a segmented scenario: one column per segment, each with its own teams and rates
        ((label, only),) = scenarios.items()
        if only.segments:
            scenarios = {f"{label}: {name}": only.segment_view(name) for name in only.segment_names}
    labels = list(scenarios)
    columns = {label: dict(_scenario_rows(sc)) for label, sc in scenarios.items()}
    items = list(dict.fromkeys(item for col in columns.values() for item in col))
    rows = [[item, *(columns[label].get(item, "–") for label in labels)] for item in items]
    differ = {i for i, row in enumerate(rows) if len(set(row[1:])) > 1}
    first = scenarios[labels[0]]
    caption = f"Money in {first.currency}; rates are means where the scenario gives a distribution."
    header = ["", *labels] if len(labels) > 1 else ["", first.name]
    return HtmlTable("The scenario", header, rows, caption, "manifest.json", ["l"] * len(header), differ)


def metadata(doc: dict[str, Any], extra: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """What produced the folder, from its manifest document (:func:`~funnelsim.report.folder.manifest_document`)."""
    start = doc.get("start", {})
    burn = f", {start['burn_in_days']:,.0f} days of burn-in" if "burn_in_days" in start else ""
    runs = doc.get("completed", doc.get("runs"))
    rows = [
        ("funnelsim", str(doc.get("funnelsim_version", ""))),
        ("written", str(doc.get("created_at", ""))),
        ("scenario", str(doc.get("scenario_name", ""))),
        ("scenario SHA-256", str(doc.get("scenario_sha256", ""))),
        ("seed", str(doc.get("seed", ""))),
        ("runs", "1" if runs is None else f"{runs:,}"),
        ("start", f"{start.get('mode', '')}{burn}"),
        ("start date, horizon", f"{doc.get('start_date', '')}, {doc.get('horizon_days', 0):,.0f} days"),
        ("currency", str(doc.get("currency", ""))),
    ]
    libraries = doc.get("libraries", {})
    if libraries:
        rows.append(("libraries", ", ".join(f"{k} {v}" for k, v in libraries.items())))
    return rows + (extra or [])


def _period(sc: Scenario) -> str:
    return f"the {sc.horizon_days:,.0f} days from {sc.start_date}"


def _metric_row(summary: pd.DataFrame, key: str, label: str, unit: str, fmt: Any) -> list[str]:
    r = summary.loc[key]
    return [
        label,
        unit,
        fmt(r["mean"]),
        f"{fmt(r['ci_low'])} – {fmt(r['ci_high'])}",
        fmt(r["p10"]),
        fmt(r["p50"]),
        fmt(r["p90"]),
    ]


# --- run ---------------------------------------------------------------------------------------------


def run_page(result: RunResult, tables: dict[str, pd.DataFrame], doc: dict[str, Any]) -> dict[str, Any]:
    """One run: revenue over the horizon, the funnel, the headline numbers, the quarters and the leakage."""
    sc = result.scenario
    cur = sc.currency
    stats = tables["summary.csv"].iloc[0]
    answer = f"Revenue over {_period(sc)}: {short_money(stats['revenue'])} {cur} from {count(stats['wins'])} wins."
    if "ending_arr" in stats:  # a subscription scenario: bookings are the new customers' ARR at signing
        answer = (
            f"New ARR booked over {_period(sc)}: {short_money(stats['revenue'])} {cur} from {count(stats['wins'])} "
            f"wins; ARR at the end {short_money(stats['ending_arr'])} {cur} "
            f"(net new {_signed(stats['net_new_arr'], short_money)})."
        )
    note = f"One simulated run (seed {result.seed}), so no range: run it with --runs 200 for P10–P90 and P(goal)."
    cycle = stats["median_cycle_days"]
    return {
        "title": f"{sc.name}: one year simulated" if sc.horizon_days == 365 else f"{sc.name}: one run",
        "description": sc.description,
        "question": f"What will {sc.name} book over {_period(sc)}, and where do its leads go?",
        "answer": answer,
        "answer_note": note,
        "key_numbers": [
            ("revenue", short_money(stats["revenue"]), cur),
            ("wins", count(stats["wins"]), f"{percent(stats['win_rate'])} of closed deals"),
            ("average deal", short_money(stats["average_deal_size"]), cur),
            ("median cycle", f"{cycle:.0f} days" if math.isfinite(cycle) else "n/a", "opportunity to win"),
            ("CAC", short_money(stats["cac"]), f"{cur} per win"),
            ("reps busy", f"{percent(stats['ae_utilisation'])}", f"AEs; SDRs {percent(stats['sdr_utilisation'])}"),
        ],
        "assumptions": assumptions({sc.name: sc}),
        "tables": _run_tables(stats, tables, cur),
        "figure_captions": RUN_FIGURES,
        "metadata": metadata(doc),
    }


def _run_tables(stats: pd.Series, tables: dict[str, pd.DataFrame], cur: str) -> list[HtmlTable]:
    """A run's tables: headline numbers, funnel, quarters, leakage, time in stage, sources."""
    headline = [
        ("revenue booked", money(stats["revenue"]), cur),
        ("wins", count(stats["wins"]), "deals"),
        ("win rate", percent(stats["win_rate"]), "of closed opportunities"),
        ("average deal", money(stats["average_deal_size"]), cur),
        ("median cycle", days(stats["median_cycle_days"]), "days, opportunity to win"),
        ("total cost", money(stats["total_cost"]), cur),
        ("CAC", money(stats["cac"]), f"{cur} per win"),
        ("SDR utilisation", percent(stats["sdr_utilisation"]), "time-weighted"),
        ("AE utilisation", percent(stats["ae_utilisation"]), "time-weighted"),
    ]
    funnel = [
        ("leads", "leads", None),
        ("MQLs", "mqls", "lead_to_mql"),
        ("SQLs", "sqls", "mql_to_sql"),
        ("opportunities", "opportunities", "sql_to_opportunity"),
        ("wins", "wins", "opportunity_to_win"),
    ]
    quarters = tables["revenue_by_quarter.csv"]
    stages = [(k, k.replace("mqls", "MQLs").replace("sqls", "SQLs"), "count") for k in FUNNEL_KEYS]
    spans = [("stage", "span", "text"), ("n", "leads", "count")]
    spans += [(f"{k}_days", k.replace("p90", "P90"), "days") for k in ("mean", "median", "p90")]
    return [
        HtmlTable(
            "Headline numbers",
            ["", "value", "unit"],
            [list(r) for r in headline],
            source="summary.csv",
            align=["l", "r", "l"],
        ),
        HtmlTable(
            "Funnel",
            ["stage", "volume", "conversion from the stage before"],
            [[label, count(stats[k]), "" if c is None else percent(stats[c])] for label, k, c in funnel],
            source="summary.csv",
        ),
        frame_table(
            quarters, f"Revenue by quarter ({cur})", _period_columns(quarters, cur), source="revenue_by_quarter.csv"
        ),
        _leakage_table(tables["leakage.csv"]),
        frame_table(
            tables["time_in_stage.csv"].assign(stage=lambda f: f["stage"].str.replace("_", " ")),
            "Time in each stage (days)",
            spans,
            source="time_in_stage.csv",
        ),
        frame_table(
            tables["by_source.csv"],
            f"By source (revenue in {cur})",
            [
                ("source", "source", "text"),
                *stages,
                ("revenue", "revenue", "money"),
                ("lead_to_win", "lead to win", "percent"),
            ],
            source="by_source.csv",
        ),
    ]


FUNNEL_KEYS = ("leads", "mqls", "sqls", "opportunities", "wins")


RUN_FIGURES = {
    "funnel": "Volume at each stage and the conversion between stages.",
    "revenue_by_month": "Revenue booked each month, at close date.",
    "capacity": "SDR and AE utilisation and queues by month.",
    "leakage": "Where every lead is at the horizon: lost (and why), still in the funnel, or won.",
    "attainment": "AE attainment of ramped quota.",
    "pipeline_views": "Pipeline coverage and forecast categories by month.",
    "arr_bridge": "ARR bridge by month: new, expansion, contraction, churn.",
}


def _leakage_table(leakage: pd.DataFrame) -> HtmlTable:
    """Where leads left, in words: a loss per reason, then what is not a loss (recycled, still open)."""
    from funnelsim.report.figures.style import LEAKAGE_NAMES

    words = {
        **LEAKAGE_NAMES,
        "recycled": "recycled to nurture (may still win)",
        "recycled_then_won": "recycled, then won",
        "still_open": "still in the funnel at the horizon",
    }
    frame = leakage.assign(reason=[words.get(r, str(r).replace("_", " ")) for r in leakage["reason"]])
    columns = [
        ("reason", "reason", "text"),
        ("stage", "left from", "text"),
        ("leads", "leads", "count"),
        ("share_of_leads", "share of all leads", "percent"),
    ]
    return frame_table(frame, "Where leads left the funnel", columns, source="leakage.csv")


def _period_columns(frame: pd.DataFrame, cur: str) -> list[tuple[str, str, str]]:
    cols = []
    for col in frame.columns:
        fmt = "money" if col in ("revenue", "average_deal_size") else ("count" if col == "wins" else "number")
        cols.append((str(col), str(col).replace("_", " "), fmt))
    return cols


# --- run --runs N ------------------------------------------------------------------------------------


REPLICATION_METRICS = (
    ("revenue", "revenue booked", "money", "short"),
    ("wins", "wins", "deals", "count"),
    ("opportunities", "opportunities", "", "count"),
    ("sqls", "SQLs", "", "count"),
    ("mqls", "MQLs", "", "count"),
    ("leads", "leads", "", "count"),
    ("win_rate", "win rate", "of closed", "percent"),
    ("median_cycle_days", "median cycle", "days", "days"),
    ("cac", "CAC", "money", "short"),
    ("ending_arr", "ending ARR", "money", "short"),
    ("net_new_arr", "net new ARR", "money", "short"),
)


def replications_page(reps: Replications, doc: dict[str, Any]) -> dict[str, Any]:
    """A Monte Carlo run: revenue's P10–P90 across runs, P(goal), and every headline metric's range."""
    from funnelsim.report.html import FORMATS

    sc, cur = reps.scenario, reps.scenario.currency
    summary = reps.summary().set_index("metric")
    rows = [
        _metric_row(summary, key, label, cur if unit == "money" else unit, FORMATS[fmt])
        for key, label, unit, fmt in REPLICATION_METRICS
        if key in summary.index
    ]
    notes = []
    if reps.completed and "revenue" in summary.index:
        r = summary.loc["revenue"]
        answer = (
            f"Revenue over {_period(sc)}: {short_money(r['p50'])} {cur} median "
            f"(P10–P90 {short_money(r['p10'])}–{short_money(r['p90'])}) across {reps.completed:,} runs; "
            f"mean {short_money(r['mean'])} (95% CI {short_money(r['ci_low'])}–{short_money(r['ci_high'])})."
        )
    else:
        answer = "No replication completed: there is nothing to summarise."
    cards = []
    if reps.completed and "revenue" in summary.index:
        r, w = summary.loc["revenue"], summary.loc["wins"]
        cards = [
            ("revenue, median", short_money(r["p50"]), cur),
            ("revenue, P10–P90", f"{short_money(r['p10'])}–{short_money(r['p90'])}", f"{cur}: 8 runs in 10"),
            ("wins, median", count(w["p50"]), f"P10–P90 {count(w['p10'])}–{count(w['p90'])}"),
            ("runs", f"{reps.completed:,}", f"seed {reps.seed}"),
        ]
    p = reps.p_goal()
    if p is not None and reps.goal is not None:
        cards.append(("P(goal)", percent(p["estimate"]), f"revenue ≥ {short_money(reps.goal)} {cur}"))
        notes.append(
            f"P(revenue ≥ {short_money(reps.goal)} {cur}) = {percent(p['estimate'])} "
            f"(95% CI {percent(p['ci_low'])}–{percent(p['ci_high'])}; {p['hits']} of {p['n']} runs)."
        )
    if reps.completed and "ending_arr" in summary.index:
        arr = summary.loc["ending_arr"]
        notes.append(
            f"Revenue here is bookings: the new customers' ARR at signing. ARR at the end: "
            f"{short_money(arr['p50'])} {cur} median (P10–P90 {short_money(arr['p10'])}–{short_money(arr['p90'])})."
        )
    if reps.completed < reps.requested:
        notes.append(f"{reps.completed} of {reps.requested} runs completed ({reps.stopped}).")
    table = HtmlTable(
        f"{reps.completed:,} runs: the mean with its 95% CI, and the spread across runs",
        ["metric", "unit", "mean", "95% CI of the mean", "P10", "P50", "P90"],
        rows,
        "P10–P90: 8 runs in 10 fall inside; the CI says how well the mean is known.",
        "summary.csv",
        ["l", "l", "r", "r", "r", "r", "r"],
    )
    return {
        "title": f"{sc.name}: {reps.completed:,} simulated runs",
        "description": sc.description,
        "question": f"What range of revenue can {sc.name} expect over {_period(sc)}?",
        "answer": answer,
        "notes": notes,
        "key_numbers": cards,
        "assumptions": assumptions({sc.name: sc}),
        "tables": [table],
        "figure_captions": {
            "fan_chart": "Cumulative revenue by month: the median and the P10–P90 band across runs.",
            "revenue_distribution": "Revenue over the horizon across runs (and the goal, if given).",
            "funnel_range": "Each stage's volume: the spread across runs.",
        },
        "metadata": metadata(doc),
    }


# --- plan --------------------------------------------------------------------------------------------


def _months(period: Any) -> str:
    """``2027`` for a calendar year, ``2027-01 to 2027-03`` otherwise."""
    start, end = period.start, period.end
    if (start.month, start.day, end.month, end.day) == (1, 1, 12, 31) and start.year == end.year:
        return str(start.year)
    first, last = f"{start:%Y-%m}", f"{end:%Y-%m}"
    return first if first == last else f"{first} to {last}"


GOAL_MEASURES = {"bookings": "", "ending_arr": " of ending ARR", "net_new_arr": " of net new ARR"}


def plan_page(plan: Plan, diagnostics: PlanDiagnostics, stages: pd.DataFrame, doc: dict[str, Any]) -> dict[str, Any]:
    """A plan: the lever's value, the goal and the verified confidence; the monthly targets and headcount."""
    sc, cur, pg = plan.scenario, plan.scenario.currency, plan.p_goal
    lever = "Budget" if plan.spend else "Leads"
    hires = [f"+{plan.extra_aes} AEs"] if plan.extra_aes else []
    hires += [f"{plan.sdrs} SDRs"] if plan.hires["sdr"]["planned"] else []
    with_hires = f" and {', '.join(hires)}" if hires else ""
    when, measure = _months(plan.period), GOAL_MEASURES.get(getattr(plan.period, "goal", "bookings"), "")
    goal = f"{short_money(plan.goal)} {cur}{measure} in {when}"
    verified = f"{percent(pg['estimate'])} verified ({percent(pg['ci_low'])}–{percent(pg['ci_high'])})"
    if plan.status == "already met":
        answer = (
            f"Already met: the scenario as it is reaches {goal} in {percent(pg['estimate'])} of fresh runs "
            f"({percent(pg['ci_low'])}–{percent(pg['ci_high'])})."
        )
    else:
        answer = f"{lever} ×{plan.lead_multiplier:.2f}{with_hires} reach {goal} with {verified}."
    sheet = plan.sheet
    leads = sheet[(sheet["stage"] == "leads") & (sheet["phase"] == "period") & (sheet["team"] == "marketing")]
    heads = plan.headcount[plan.headcount["phase"] == "period"]
    notes = [
        f"Goal: {money(plan.goal)} {cur}{measure} in {when}, asked with {plan.confidence:.0%} confidence; "
        f"verified on {pg['n']:,} fresh runs the search never saw (95% Wilson interval).",
        f"Revenue in the period: P10 {short_money(plan.revenue['p10'])}, P50 {short_money(plan.revenue['p50'])}, "
        f"P90 {short_money(plan.revenue['p90'])} {cur}.",
    ]
    return {
        "title": f"{sc.name}: plan for {goal}",
        "description": sc.description,
        "question": f"What must marketing and sales commit to, month by month, to book {money(plan.goal)} {cur}"
        f"{measure} in {when} with {plan.confidence:.0%} confidence?",
        "answer": answer,
        "notes": notes,
        "key_numbers": [
            (lever.lower(), f"×{plan.lead_multiplier:.2f}", "of today's volume"),
            ("P(goal)", percent(pg["estimate"]), f"verified on {pg['n']:,} runs"),
            ("leads", count(round(float(leads["target"].sum()))), "marketing's quota in the period"),
            ("AEs", f"{heads['aes'].mean():.1f}", f"ramped, mean; +{plan.extra_aes} hired"),
            ("SDRs", f"{plan.sdrs}", "in all"),
            ("cost", short_money(plan.cost["period_total"]), f"{cur}; CAC {short_money(plan.cost['cac'])}"),
        ],
        "assumptions": assumptions({f"{sc.name} (planned)": sc}),
        "tables": [
            _targets_table(plan),
            _stages_table(stages),
            _headcount_table(plan.headcount),
            _verification_table(diagnostics.verifications),
        ],
        "figure_captions": {
            "waterfall": "The goal worked back up the funnel: each stage's volume, analytic and simulated.",
            "quotas": "Monthly targets per team.",
            "fan_chart": "Cumulative revenue in the period on the verification runs: median and P10–P90.",
            "tradeoff": "Leads against AEs: the plans that reach the goal, and their cost.",
        },
        "metadata": metadata(
            doc,
            [
                ("search", f"{diagnostics.runs:,} runs per candidate, {len(diagnostics.candidates):,} candidates"),
                (
                    "verification",
                    f"{pg['n']:,} fresh runs from replication {pg['first_replication']:,} of seed {pg['seed']}",
                ),
            ],
        ),
    }


def _verification_table(rounds: pd.DataFrame) -> HtmlTable:
    columns = [
        ("round", "round", "count"),
        ("lead_multiplier", "lever ×", "number"),
        ("extra_aes", "+AEs", "count"),
        ("sdrs", "SDRs", "count"),
        ("runs", "runs", "count"),
        ("hits", "goal reached", "count"),
        ("p_goal", "P(goal)", "percent"),
        ("ci_low", "95% CI low", "percent"),
        ("ci_high", "95% CI high", "percent"),
        ("passed", "passed", "text"),
    ]
    columns = [c for c in columns if c[0] in rounds.columns]
    frame = rounds.assign(passed=rounds["passed"].map({True: "yes", False: "no"})) if "passed" in rounds else rounds
    return frame_table(frame, "Verification on fresh runs", columns, source="verification.csv")


def _targets_table(plan: Plan) -> HtmlTable:
    """The joint-target sheet, months down, stages across (marketing's leads: every source but prospecting)."""
    sheet, heads = plan.sheet, plan.headcount.set_index("month")
    wide = sheet[sheet["source"] != "prospecting"].groupby(["month", "stage"])["target"].sum().unstack()
    keys = [k for k in ("leads", "mqls", "sqls", "opportunities", "wins", "revenue", "spend") if k in wide.columns]
    names = {
        "leads": "leads (MKT)",
        "mqls": "MQLs (MKT)",
        "sqls": "SQLs (shared)",
        "opportunities": "opps (sales)",
        "wins": "wins (sales)",
        "revenue": f"revenue ({plan.scenario.currency})",
        "spend": "spend (MKT)",
    }
    rows: list[list[str]] = []
    strong: set[int] = set()
    for month in wide.index:
        lead_in = heads.loc[month, "phase"] != "period"
        cells = [f"{month}{' (lead-in)' if lead_in else ''}"]
        cells += [
            money(wide.loc[month, k]) if k in ("revenue", "spend") else count(round(wide.loc[month, k])) for k in keys
        ]
        rows.append([*cells, days(heads.loc[month, "aes"]), days(heads.loc[month, "sdrs"])])
    inside = wide.loc[[m for m in wide.index if heads.loc[m, "phase"] == "period"]]
    total = ["period total"] + [
        money(inside[k].sum()) if k in ("revenue", "spend") else count(round(inside[k].sum())) for k in keys
    ]
    strong.add(len(rows))
    rows.append([*total, "", ""])
    return HtmlTable(
        "Joint targets per month",
        ["month", *(names[k] for k in keys), "AEs (ramped)", "SDRs"],
        rows,
        "Leads: marketing's quota; MQLs to wins: the plan's mean; revenue: the goal spread like the "
        "plan's mean revenue. Lead-in months build the pipeline for the period.",
        "targets.csv",
        strong=strong,
    )


def _stages_table(stages: pd.DataFrame) -> HtmlTable:
    columns = [
        ("stage", "stage", "text"),
        ("team", "team", "text"),
        ("analytic", "today (analytic)", "count"),
        ("planned_analytic", "planned (analytic)", "count"),
        ("simulated_mean", "simulated mean", "count"),
        ("simulated_p10", "P10", "count"),
        ("simulated_p90", "P90", "count"),
    ]
    columns = [c for c in columns if c[0] in stages.columns]
    return frame_table(stages, "Period totals per stage", columns, source="stages.csv")


def _headcount_table(heads: pd.DataFrame) -> HtmlTable:
    columns = [
        ("month", "month", "text"),
        ("phase", "phase", "text"),
        ("aes", "AEs (ramped)", "days"),
        ("aes_needed", "AEs needed", "days"),
        ("sdrs", "SDRs", "days"),
        ("sdrs_needed", "SDRs needed", "days"),
        ("cost", "cost", "money"),
    ]
    columns = [c for c in columns if c[0] in heads.columns]
    return frame_table(
        heads,
        "Headcount per month (expected, after hires, ramp and attrition)",
        columns,
        caption="Needed: the reps the month's flow keeps 80% busy (Little's law).",
        source="headcount.csv",
    )


# --- compare -----------------------------------------------------------------------------------------


COMPARED = (("revenue", "revenue booked"), ("wins", "wins"), ("sqls", "SQLs"), ("mqls", "MQLs"), ("cac", "CAC"))


def comparison_page(comparison: Comparison, table: pd.DataFrame, doc: dict[str, Any]) -> dict[str, Any]:
    """Scenarios on common seeds: the revenue difference against the first with its paired CI, per metric."""
    labels = comparison.labels
    first = comparison.runs[labels[0]].scenario
    cur = first.currency
    runs = comparison.runs[labels[0]].completed
    revenue = table[(table["metric"] == "revenue")].set_index("scenario")
    parts = []
    for label in labels[1:]:
        r = revenue.loc[label]
        parts.append(
            f"{label} books {_signed(r['difference'], short_money)} {cur} against {labels[0]} "
            f"(95% CI {_signed(r['diff_ci_low'], short_money)} to {_signed(r['diff_ci_high'], short_money)})"
        )
    answer = "; ".join(parts) + f", over {runs:,} common runs of {_period(first)}."
    tables = [_comparison_table(table, labels, cur, runs)]
    notes = []
    if comparison.attribution is not None:
        levers = comparison.attribution.table()
        tables.append(_attribution_table(levers, comparison.attribution.labels, cur))
        top = levers[levers["lever"] != "total"].sort_values("contribution", ascending=False).iloc[0]
        notes.append(
            f"The lever worth most: {top['lever']}, {short_money(top['contribution'])} {cur} "
            f"({percent(top['share_of_gap'])} of the gap)."
        )
    return {
        "title": " vs ".join(labels),
        "description": "",
        "question": f"How much more (or less) does each scenario book than {labels[0]}, on the same simulated "
        "market, and is the difference real?",
        "answer": answer,
        "notes": notes,
        "assumptions": assumptions({label: comparison.runs[label].scenario for label in labels}),
        "tables": tables,
        "figure_captions": {
            "revenue": "Revenue per scenario across the common runs.",
            "funnel": "Each stage's mean volume per scenario.",
            "leakage": "Leads lost per reason and scenario.",
            "levers": "The revenue gap split by lever (Shapley values).",
        },
        "metadata": metadata(
            doc, [("scenarios", "; ".join(f"{k} {reps.scenario.sha256()}" for k, reps in comparison.runs.items()))]
        ),
    }


def _comparison_table(table: pd.DataFrame, labels: list[str], cur: str, runs: int) -> HtmlTable:
    """Each headline metric per scenario: mean, P10–P90, and the paired difference against the first."""
    rows: list[list[str]] = []
    strong: set[int] = set()
    names = dict(COMPARED)
    for r in table[table["metric"].isin(list(names))].to_dict("records"):
        money_like = r["metric"] in ("revenue", "cac")
        fmt = short_money if money_like else count
        base = r["scenario"] == labels[0]
        if base:
            strong.add(len(rows))
        rows.append(
            [
                names[r["metric"]] + (f" ({cur})" if money_like else ""),
                r["scenario"],
                fmt(r["mean"]),
                f"{fmt(r['p10'])} – {fmt(r['p90'])}",
                "" if base else _signed(r["difference"], fmt),
                "" if base else f"{_signed(r['diff_ci_low'], fmt)} – {_signed(r['diff_ci_high'], fmt)}",
            ]
        )
    return HtmlTable(
        f"{runs:,} common runs; difference = scenario − {labels[0]} (paired, 95% CI)",
        ["metric", "scenario", "mean", "P10 – P90", "difference", "95% CI of the difference"],
        rows,
        "Every scenario runs on the same replications (common random numbers), so the paired "
        "interval is narrower than two separate ones.",
        "comparison.csv",
        ["l", "l", "r", "r", "r", "r"],
        strong,
    )


def _attribution_table(levers: pd.DataFrame, labels: tuple[str, str], cur: str) -> HtmlTable:
    a, b = labels
    columns = [("lever", "lever", "text"), ("contribution", "contribution", "money")]
    columns += [("ci_low", "95% CI low", "money"), ("ci_high", "95% CI high", "money")]
    columns += [("share_of_gap", "share of gap", "percent"), ("alone", "alone", "money")]
    columns += [("parameters", "parameters", "text")]
    title = f"Revenue gap {b} − {a} by lever (Shapley values, {cur})"
    frame = levers.assign(parameters=levers["parameters"].fillna("").str.replace(" ", ", "))
    note = f"Alone: the revenue gained by switching only that lever in {a}."
    return frame_table(frame, title, columns, caption=note, source="attribution.csv", strong={len(levers) - 1})


def _signed(x: float, fmt: Any) -> str:
    if not math.isfinite(float(x)):
        return "n/a"
    return ("+" if x > 0 else "−" if x < 0 else "") + fmt(abs(x))


# --- sweep and sensitivity ---------------------------------------------------------------------------


def _metric_fmt(metric: str) -> Any:
    from funnelsim.report.terminal import metric_format

    fmt = metric_format(metric)
    if fmt == "money":
        return short_money
    if "%" in fmt:
        return percent
    return lambda x: f"{float(x):,.3g}" if math.isfinite(float(x)) else "n/a"


def sweep_page(sweep: Sweep, table: pd.DataFrame, metric: str, doc: dict[str, Any]) -> dict[str, Any]:
    """A grid of one or two parameters: the best point of ``metric`` with its CI, and every point's range."""
    from funnelsim.report.terminal import value_text

    sc, fmt = sweep.scenario, _metric_fmt(metric)
    best = sweep.optimum(metric)
    where = ", ".join(f"{p} = {value_text(v)}" for p, v in best.values.items())
    edge = "" if best.interior else " It sits at the edge of the range: widen it to find the optimum."
    answer = (
        f"Best {metric}: {fmt(best.mean)} at {where} (95% CI {fmt(best.ci_low)}–{fmt(best.ci_high)}), "
        f"over {sweep.n_runs:,} common runs per point.{edge}"
    )
    rows: list[list[str]] = []
    strong: set[int] = set()
    for r in table.to_dict("records"):
        if r["point"] == best.point:
            strong.add(len(rows))
        rows.append(
            [
                *(value_text(r[p]) for p in sweep.parameters),
                fmt(r[f"{metric}_mean"]),
                f"{fmt(r[f'{metric}_ci_low'])} – {fmt(r[f'{metric}_ci_high'])}",
                f"{fmt(r[f'{metric}_p10'])} – {fmt(r[f'{metric}_p90'])}",
            ]
        )
    unit = f" ({sc.currency})" if fmt is short_money else ""
    grid = HtmlTable(
        f"{metric}{unit} at each point of the grid",
        [*sweep.parameters, "mean", "95% CI", "P10 – P90"],
        rows,
        "The best point in bold.",
        "sweep.csv",
        strong=strong,
    )
    return {
        "title": f"{sc.name}: {metric} across {', '.join(sweep.parameters)}",
        "description": sc.description,
        "question": f"Which value of {' and '.join(sweep.parameters)} gives the best {metric}?",
        "answer": answer,
        "assumptions": assumptions({sc.name: sc}),
        "tables": [grid],
        "figure_captions": {
            "sweep": f"{metric} against the parameter: mean and 95% CI.",
            "heatmap": f"{metric} over the two parameters.",
        },
        "metadata": metadata(doc),
    }


def sensitivity_page(sensitivity: Sensitivity, table: pd.DataFrame, doc: dict[str, Any]) -> dict[str, Any]:
    """One-at-a-time ±by: the parameter with the largest swing, and every parameter's effects."""
    from funnelsim.report.terminal import value_text

    sc, metric, fmt = sensitivity.scenario, sensitivity.metric, _metric_fmt(sensitivity.metric)
    by = f"±{sensitivity.by:.0%}"
    rows = []
    for r in table.to_dict("records"):
        rows.append(
            [
                r["parameter"],
                f"{value_text(r['low_value'])} / {value_text(r['high_value'])}",
                _signed(r["low_diff"], fmt),
                _signed(r["high_diff"], fmt),
                fmt(r["swing"]),
                r["note"] or "",
            ]
        )
    if len(table):
        top = table.iloc[0]
        answer = (
            f"{top['parameter']} moves {metric} most: {fmt(top['swing'])} between {by} "
            f"(base {fmt(top['base_mean'])}), over {sensitivity.base.completed:,} common runs."
        )
    else:
        answer = "No parameter was varied."
    return {
        "title": f"{sc.name}: what moves {metric} ({by})",
        "description": sc.description,
        "question": f"Which assumptions move {metric} most when each is changed by {by}?",
        "answer": answer,
        "assumptions": assumptions({sc.name: sc}),
        "tables": [
            HtmlTable(
                f"Effect on {metric} of each parameter at −/+{sensitivity.by:.0%} (paired)",
                ["parameter", "low / high", "effect of low", "effect of high", "swing", "note"],
                rows,
                f"{len(sensitivity.skipped)} keys not varied: see skipped.csv.",
                "sensitivity.csv",
                ["l", "r", "r", "r", "r", "l"],
            )
        ],
        "figure_captions": {"tornado": f"Each parameter's effect on {metric}, largest swing first."},
        "metadata": metadata(doc),
    }


# --- calibrate and backtest --------------------------------------------------------------------------


def calibration_page(cal: Calibration, tables: dict[str, pd.DataFrame], scenario_name: str) -> dict[str, Any]:
    """A calibration: the fitted cycle, win rate and deal size with their CIs; every value and its status."""
    b, w = cal.best, cal.win
    size = tables["deal_sizes.csv"].iloc[0]
    deal = (
        f"; deal size mean {money(size['mean'])} (95% CI {money(size['mean_ci_low'])}–{money(size['mean_ci_high'])})"
        if size["n"]
        else ""
    )
    answer = (
        f"Sales cycle mean {b.mean:.1f} days (95% CI {b.mean_ci[0]:.1f}–{b.mean_ci[1]:.1f}, {b.family}); "
        f"win rate {percent(w['competing_risks'])} ({percent(w['ci_low'])}–{percent(w['ci_high'])}){deal}."
    )
    params = tables["parameters.csv"]
    out = [frame_table(params, "Every scenario value and where it comes from", source="parameters.csv")]
    if "selfcheck.csv" in tables:
        from funnelsim.report.calibration import selfcheck_wide

        out.append(
            frame_table(
                selfcheck_wide(tables["selfcheck.csv"]),
                "Self-check: observed [simulated P10–P90] per month",
                source="selfcheck.csv",
            )
        )
    out.append(
        frame_table(
            tables["fits.csv"],
            "Cycle-time fits (AIC: lower is better)",
            [
                ("family", "family", "text"),
                ("aic", "AIC", "number"),
                ("mean_days", "mean days", "days"),
                ("mean_ci_low", "CI low", "days"),
                ("mean_ci_high", "CI high", "days"),
                ("median_days", "median days", "days"),
                ("n_closed", "closed", "count"),
                ("n_open", "open", "count"),
            ],
            source="fits.csv",
        )
    )
    inputs = [
        ("as of", f"end of {cal.as_of}"),
        ("scenario starts", str(cal.start_date)),
        ("base scenario", cal.base_path.name),
        ("written", scenario_name),
        ("open deals at the end", f"{len(cal.pipeline):,}"),
    ]
    return {
        "title": f"Calibration of {scenario_name}",
        "question": "What do the CRM exports say the sales cycle, win rate and deal size are, and does the fitted "
        "scenario reproduce the history?",
        "answer": answer,
        "notes": list(cal.warnings),
        "assumptions": HtmlTable("Inputs", ["", "value"], [list(r) for r in inputs], align=["l", "l"]),
        "tables": out,
        "figure_captions": {
            "cycle_km": "Time to close: Kaplan-Meier (open deals censored) and the fitted curve.",
            "arrivals": "New opportunities per month in the export.",
            "deal_size": "Deal sizes: the amounts resampled, and a lognormal for comparison.",
            "selfcheck": "Observed months against the calibrated scenario's P10–P90.",
        },
        "metadata": [("funnelsim", _version()), ("as of", str(cal.as_of)), ("report", "report.md (the full text)")],
    }


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("funnelsim")
    except PackageNotFoundError:
        return "unknown"


def backtest_page(result: Backtest, doc: dict[str, Any]) -> dict[str, Any]:
    """A back-test: how many quarters fell inside the forecast's P10–P90, per metric, and each quarter's scores."""
    cur = result.scenario.currency
    coverage = result.coverage()
    parts = [f"{metric.replace('_', ' ')} in {c['inside']} of {c['quarters']}" for metric, c in coverage.items()]
    answer = (
        f"Forecast from {result.as_of}: what happened fell inside the P10–P90 range for {', '.join(parts)} "
        f"quarters ({result.reps.completed:,} runs)."
    )
    rows = []
    for r in result.scores.to_dict("records"):
        fmt = short_money if r["metric"] == "won_value" else count
        rows.append(
            [
                r["label"],
                "won value" if r["metric"] == "won_value" else "wins",
                fmt(r["actual"]),
                fmt(r["p10"]),
                fmt(r["p50"]),
                fmt(r["p90"]),
                "yes" if r["inside"] else "no",
                f"{r['pit']:.2f}",
            ]
        )
    facts = result.facts
    inputs = [
        ("cut-off", f"{result.as_of} 00:00"),
        ("deals created before it", f"{facts['deals_before_cutoff']:,}"),
        ("open at the cut-off", f"{facts['open_at_cutoff']:,} (the forecast starts from those)"),
        ("quarters scored", ", ".join(q.label for q in result.quarters)),
    ]
    return {
        "title": f"Back-test as of {result.as_of}",
        "question": "Had we calibrated on the data up to the cut-off, would the forecast's range have held what "
        "happened next?",
        "answer": answer,
        "answer_note": "A calibrated forecast holds the actuals in 8 quarters of 10 over many back-tests; a few "
        "quarters alone cannot tell.",
        "notes": list(result.notes),
        "assumptions": HtmlTable("Inputs", ["", "value"], [list(r) for r in inputs], align=["l", "l"]),
        "tables": [
            HtmlTable(
                f"Forecast ranges against what happened ({cur})",
                ["quarter", "metric", "actual", "P10", "P50", "P90", "inside", "PIT"],
                rows,
                "PIT: where the actual fell in the forecast (0.5 = the median).",
                "backtest.csv",
                ["l", "l", "r", "r", "r", "r", "l", "r"],
            )
        ],
        "figure_captions": {
            "wins": "Wins per quarter: forecast range and actual.",
            "won_value": "Won value per quarter: forecast range and actual.",
        },
        "metadata": metadata(doc),
    }


# --- mix ---------------------------------------------------------------------------------------------


def mix_page(result: Mix, doc: dict[str, Any]) -> dict[str, Any]:
    """The best split of a monthly budget over the channels, beside today's."""
    sc, cur, table = result.scenario, result.scenario.currency, result.table
    key = f"{result.objective}_per_month"
    by = {mix: rows.set_index("channel") for mix, rows in table.groupby("mix", sort=False)}
    best, today = by["optimal"], by["today"]
    b, now = float(best.loc["total", key]), float(today.loc["total", key])
    amount = short_money if result.objective == "revenue" else (lambda x: f"{float(x):,.2f}")
    answer = (
        f"Best split of {money(result.budget)} {cur} a month: {amount(b)} "
        f"{cur + ' of revenue' if result.objective == 'revenue' else 'wins'} a month, against {amount(now)} "
        "with today's spend."
    )
    rows = []
    for channel, r in best.iterrows():
        rows.append(
            [
                str(channel),
                money(today.loc[channel, "spend_per_month"]),
                money(r["spend_per_month"]),
                count(r["leads_per_month"]),
                f"{r['wins_per_month']:,.2f}",
                money(r["revenue_per_month"]),
            ]
        )
    return {
        "title": f"{sc.name}: marketing mix for {short_money(result.budget)} {cur} a month",
        "description": sc.description,
        "question": f"How should {money(result.budget)} {cur} a month be split between channels for the most "
        f"{result.objective}?",
        "answer": answer,
        "assumptions": assumptions({sc.name: sc}),
        "tables": [
            HtmlTable(
                f"Spend per channel ({cur} a month), today and best",
                ["channel", "today", "best", "leads", "wins", "revenue"],
                rows,
                "A month at steady state; reps never the bottleneck.",
                "mix.csv",
                strong={len(rows) - 1},
            )
        ],
        "metadata": metadata(doc),
    }
