"""What the command line prints: the rich tables and summary lines of ``run``, ``run --runs``,
``plan``, ``mix``, ``compare``, ``calibrate``, ``backtest``, ``sweep`` and ``sensitivity``.

Results go to :data:`out` (stdout) and narration, warnings and errors to :data:`err`
(stderr), so ``--json`` and pipes see only results. Cells are compact (``12.3M``, ``41.5%``);
full precision is in ``--format json``, ``--format tsv`` (:func:`print_tsv`) and the CSV files.

Piped or redirected (``| less``, ``> file``), stdout is as wide as its widest table: nothing is
cut at 80 columns or wrapped (:class:`ResultsConsole`). While a long command works, stderr shows
one progress display (:func:`progress`), in a terminal only: a pipe, a log or ``--quiet`` gets no
bar, no spinner and no control characters.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd
    from rich.progress import Progress, Task, TaskID
    from rich.text import Text

    from funnelsim.calibrate import Calibration
    from funnelsim.studies.backtest import Backtest
    from funnelsim.studies.budget import Mix
    from funnelsim.studies.compare import Attribution, Comparison
    from funnelsim.studies.planner import Plan, PlanDiagnostics
    from funnelsim.studies.replications import Replications
    from funnelsim.studies.sensitivity import Sensitivity
    from funnelsim.studies.sweep import Sweep

__all__ = [
    "PIPED_WIDTH",
    "ResultsConsole",
    "Tracker",
    "err",
    "metric_format",
    "out",
    "pct",
    "plus_minus",
    "print_arr_bridge",
    "print_attribution",
    "print_backtest",
    "print_calibration",
    "print_comparison",
    "print_mix",
    "print_plan",
    "print_replications",
    "print_sensitivity",
    "print_summary",
    "print_sweep",
    "print_tsv",
    "progress",
    "short",
    "summary_frame",
    "value_text",
]

PIPED_WIDTH = 10_000
"""Columns of stdout when it is not a terminal: wider than any table, so none is cut or wrapped."""


class ResultsConsole(Console):
    """The console of results: a terminal's own width in a terminal; piped or redirected (``| less``,
    ``> file``), :data:`PIPED_WIDTH`, so tables keep every column at full width (rich would otherwise
    fit them into 80 columns, or into the width of the terminal the pipe starts from)."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        return size if self.is_terminal else ConsoleDimensions(PIPED_WIDTH, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


# soft_wrap: messages stay on one line in logs and CI, where grep must find them.
err = Console(stderr=True, soft_wrap=True, highlight=False)
out = ResultsConsole(soft_wrap=True)


def print_tsv(frame: pd.DataFrame) -> None:
    """``frame`` as tab-separated values on stdout (``--format tsv``): a header row, then one row per record,
    numbers at full precision (the ``--format json`` values), an undefined number (NaN) as an empty cell."""
    sys.stdout.write(frame.to_csv(sep="\t", index=False, lineterminator="\n"))


def summary_frame(stats: dict[str, float]) -> pd.DataFrame:
    """One run's summary (``funnelsim run``) as rows of ``metric`` and ``value``: its ``--format tsv``."""
    import pandas as pd

    return pd.DataFrame({"metric": list(stats), "value": list(stats.values())})


class Tracker:
    """What a long command tells its progress display: replications done (:meth:`count`, a bar with an
    ETA) and the phase it is in (:meth:`phase`). Without a display (a pipe, ``--quiet``) both do nothing."""

    def __init__(
        self, bar: Progress | None = None, task: TaskID | None = None, plain: Callable[[str], None] | None = None
    ) -> None:
        self._bar, self._task, self._plain = bar, task, plain
        self._said = ""

    def count(self, done: int, total: int) -> None:
        """``done`` of ``total`` replications are finished (a :data:`funnelsim.studies.replications.Progress`)."""
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done, total=total)

    def phase(self, text: str) -> None:
        """The work is now ``text`` (e.g. ``simulating 100 runs: leads x1.2``). Without a display but with
        ``plain`` lines, each new phase (its text before `` (``) is said once, with its estimate."""
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=escape(text))
        elif self._plain is not None and text.split(" (")[0] != self._said:
            self._said = text.split(" (")[0]
            self._plain(text)


@contextmanager
def progress(label: str, enabled: bool, total: int | None = None, plain_phases: bool = False) -> Iterator[Tracker]:
    """The one progress display of every long command, on stderr and only when ``enabled`` in a terminal:
    a spinner, the phase, a bar, and once replications are counted ``done/total``, the time elapsed and the
    time left. It disappears when the work ends, leaving the narration above it. Not in a terminal, with
    ``plain_phases`` (a command whose estimates come phase by phase), each phase is one plain line."""
    if not (enabled and err.is_terminal):
        yield Tracker(
            plain=(lambda text: err.print(escape(text), highlight=False)) if enabled and plain_phases else None
        )
        return
    from rich.progress import BarColumn, SpinnerColumn, TextColumn
    from rich.progress import Progress as Display
    from rich.table import Column

    # One line whatever the terminal's width: a long phase is cut with an ellipsis, the times never wrap.
    phase = TextColumn("{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1))
    columns = (SpinnerColumn(), phase, BarColumn(bar_width=20), _times_column())
    with Display(*columns, console=err, transient=True) as bar:
        yield Tracker(bar, bar.add_task(escape(label), total=total))


def _times_column() -> Any:
    """A column of ``12/200 · 0:00:04 elapsed · 0:00:31 left``, or only the time elapsed before any count."""
    from rich.progress import ProgressColumn
    from rich.table import Column
    from rich.text import Text

    class Times(ProgressColumn):
        def render(self, task: Task) -> Text:
            elapsed = _clock(task.finished_time if task.finished else task.elapsed)
            if task.total is None:
                return Text(f"{elapsed} elapsed", style="progress.elapsed")
            left = task.time_remaining
            ahead = "" if left is None else f" · {_clock(left)} left"
            counts = f"{task.completed:,.0f}/{task.total:,.0f}"
            return Text(f"{counts} · {elapsed} elapsed{ahead}", style="progress.remaining")

    return Times(table_column=Column(no_wrap=True))


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    whole = int(max(0.0, seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def print_replications(reps: Replications) -> None:
    cur = reps.scenario.currency
    table = Table(
        title=f"{reps.completed} replications (95% CI of the mean; percentiles across runs)", title_justify="left"
    )
    for name in ("metric", "mean", "95% CI", "P10", "P50", "P90"):
        table.add_column(name, justify="left" if name == "metric" else "right")
    summary = reps.summary().set_index("metric")
    shown = [
        ("leads", "leads", "{:,.0f}"),
        ("MQLs", "mqls", "{:,.0f}"),
        ("SQLs", "sqls", "{:,.0f}"),
        ("opportunities", "opportunities", "{:,.0f}"),
        ("wins", "wins", "{:,.0f}"),
        (f"revenue ({cur})", "revenue", "money"),
        ("win rate", "win_rate", "{:.1%}"),
        ("median cycle, days", "median_cycle_days", "{:.0f}"),
        (f"CAC ({cur})", "cac", "money"),
    ]
    if "ending_arr" in summary.index:  # a subscription scenario
        shown += [
            (f"ending ARR ({cur})", "ending_arr", "money"),
            (f"net new ARR ({cur})", "net_new_arr", "money"),
            ("NRR", "nrr", "{:.1%}"),
            ("GRR", "grr", "{:.1%}"),
            ("LTV:CAC", "ltv_to_cac", "{:.1f}"),
            ("CAC payback, months", "cac_payback_months", "{:.1f}"),
        ]
    # A segmented scenario: each segment's wins and revenue under the totals.
    for name in reps.scenario.segment_names:
        shown += [
            (f"  {name}: wins", f"segment:{name}:wins", "{:,.0f}"),
            (f"  {name}: revenue ({cur})", f"segment:{name}:revenue", "money"),
        ]
    for label, key, fmt in shown:
        row = summary.loc[key]
        cells = [row["mean"], row["ci_low"], row["ci_high"], row["p10"], row["p50"], row["p90"]]
        f = [short(x, fmt) for x in cells]
        table.add_row(label, f[0], f"{f[1]}–{f[2]}", f[3], f[4], f[5])
    out.print(table)
    stop = reps.stopped
    if reps.precision is not None:
        width = reps.to_json()["revenue_ci_half_width_relative"]
        shown_width = "n/a" if width is None else f"{width:.2%}"
        stop += f" (CI half-width {shown_width} of mean revenue; asked {reps.precision:.2%})"
    out.print(f"runs:             {reps.completed} of {reps.requested} ({stop})")
    p = reps.p_goal()
    if p is not None and reps.goal is not None:
        out.print(
            f"P(revenue >= {reps.goal:,.0f} {cur}): {pct(p['estimate'])} "
            f"(95% CI {pct(p['ci_low'])} – {pct(p['ci_high'])}, {p['hits']} of {p['n']} runs)"
        )


def short(x: float, fmt: str) -> str:
    """Compact cells for the terminal (full precision is in --json and the CSV files)."""
    if not math.isfinite(x):
        return "n/a"
    if fmt != "money":
        return fmt.format(x)
    for size, suffix in ((1e9, "bn"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= size:
            return f"{x / size:.3g}{suffix}"
    return f"{x:.0f}"


def print_summary(stats: dict[str, float], currency: str) -> None:
    table = Table(title="Funnel", title_justify="left")
    table.add_column("stage")
    table.add_column("volume", justify="right")
    table.add_column("conversion from previous", justify="right")
    rows = [
        ("leads", "leads", None),
        ("MQLs", "mqls", "lead_to_mql"),
        ("SQLs", "sqls", "mql_to_sql"),
        ("opportunities", "opportunities", "sql_to_opportunity"),
        ("wins", "wins", "opportunity_to_win"),
    ]
    for label, key, conv in rows:
        table.add_row(label, f"{stats[key]:,.0f}", "" if conv is None else pct(stats[conv]))
    out.print(table)
    booked = " (ARR of the new customers at signing)" if "ending_arr" in stats else ""
    out.print(f"revenue booked:   {stats['revenue']:,.0f} {currency}{booked}")
    for line in segment_lines(stats, currency):
        out.print(line)
    if "pipeline_revenue" in stats:  # the scenario starts from an open pipeline
        out.print(
            f"  from pipeline:  {stats['pipeline_revenue']:,.0f} {currency} "
            f"({stats['pipeline_wins']:,.0f} of {stats['pipeline_deals']:,.0f} deals open on day 0 won, "
            f"{stats['pipeline_losses']:,.0f} lost)"
        )
    out.print(f"win rate:         {pct(stats['win_rate'])} of closed opportunities")
    out.print(f"average deal:     {stats['average_deal_size']:,.0f} {currency}")
    out.print(f"median cycle:     {stats['median_cycle_days']:.0f} days (opportunity to win)")
    out.print(f"median lead->win: {stats['median_lead_to_win_days']:.0f} days")
    commission = f" incl. commission {stats['commission_cost']:,.0f}" if "commission_cost" in stats else ""
    out.print(
        f"cost:             {stats['total_cost']:,.0f} {currency} "
        f"(marketing {stats['marketing_cost']:,.0f}, sales {stats['sales_cost']:,.0f}{commission}); "
        f"CAC {stats['cac']:,.0f}"
    )
    out.print(
        f"utilisation:      SDRs {pct(stats['sdr_utilisation'])}, AEs {pct(stats['ae_utilisation'])} (time-weighted)"
    )
    out.print(
        f"queues:           {_queue_line(stats, 'sdr', 'MQLs', 'an SDR')}; {_queue_line(stats, 'ae', 'SQLs', 'an AE')}"
    )
    if "ending_arr" in stats:  # a subscription scenario
        print_arr_bridge(stats, currency)
    if "answered_5min_in_hours" in stats:  # a working calendar with SDR working hours
        out.print(f"calendar:         {_calendar_line(stats)}")
    for team, people, leads in (("sdr", "SDRs", "MQLs"), ("ae", "AEs", "SQLs")):
        busy, gone = stats[f"{team}_utilisation"], stats.get(f"{team}_abandoned_share", math.nan)
        if busy >= BOTTLENECK_BUSY or gone >= BOTTLENECK_ABANDONED:
            late = ", and are reached too late (speed to lead)" if team == "sdr" else ""
            out.print(
                f"[bold yellow]bottleneck:[/]       {people} are {pct(busy)} busy: {leads} queue for them, "
                f"{pct(gone)} go cold waiting{late}; more leads bring little or no more revenue until "
                f"{people} are added"
            )

    _print_sales_views(stats, currency)


def _print_sales_views(stats: dict[str, float], currency: str) -> None:
    """The attainment and quota capacity lines (AE quotas), and the forecast lines (a forecast section)."""
    if "aes_with_quota" in stats:
        out.print(
            f"attainment:       {stats['aes_at_quota']:,.0f} of {stats['aes_with_quota']:,.0f} AEs at ≥100% of "
            f"ramped quota; {stats['aes_at_70pct']:,.0f} at ≥70% (median {pct(stats['attainment_median'])}, "
            f"P10–P90 {pct(stats['attainment_p10'])}–{pct(stats['attainment_p90'])})"
        )
        plan = stats["quota_plan"]
        versus = "" if math.isnan(plan) else f", {stats['quota_capacity_to_plan']:.2f}x the plan of {plan:,.0f}"
        out.print(f"quota capacity:   {stats['quota_capacity']:,.0f} {currency} (sum of ramped quotas){versus}")
    if "slipped_share" in stats:
        coverage = stats["mean_pipeline_coverage"]
        cover = "" if math.isnan(coverage) else f"; mean coverage {coverage:.1f}x the remaining target"
        out.print(
            f"forecast:         {pct(stats['slipped_share'])} of closed deals closed after their first forecast date "
            f"({stats['pushes_per_closed_deal']:.2f} pushes a deal){cover}"
        )
        out.print(
            f"won by category:  commit {pct(stats['commit_won_share'])}, best case "
            f"{pct(stats['best_case_won_share'])}, pipeline {pct(stats['pipeline_won_share'])} of closed deals"
        )


ARR_BRIDGE_ROWS = (
    ("opening ARR", "opening_arr", "", "opening_customers"),
    ("+ new", "new_arr", "+", "new_customers"),
    ("+ expansion", "expansion_arr", "+", None),
    ("− contraction", "contraction_arr", "−", None),
    ("− churn", "churned_arr", "−", "churned_customers"),
    ("closing ARR", "ending_arr", "", "ending_customers"),
)
"""The rows of the ARR bridge ``funnelsim run`` prints: label, summary key, sign, customers' key."""


def print_arr_bridge(stats: dict[str, float], currency: str) -> None:
    """The horizon's ARR bridge (opening + new + expansion − contraction − churn = closing), then
    retention and unit economics on one line each."""
    table = Table(title=f"ARR bridge ({currency}, over the horizon)", title_justify="left")
    table.add_column("")
    table.add_column("ARR", justify="right")
    table.add_column("customers", justify="right")
    for label, key, sign, count in ARR_BRIDGE_ROWS:
        customers = "" if count is None else f"{sign}{stats[count]:,.0f}"
        table.add_row(label, f"{sign}{stats[key]:,.0f}", customers)
    out.print(table)
    if stats["opening_customers"] == 0:
        out.print("                  no installed base: ARR starts at 0 on the start date (docs/model.md, section 22)")
    out.print(
        f"retention:        NRR {pct(stats['nrr'])}, GRR {pct(stats['grr'])} (customers of day 0); "
        f"net new ARR {stats['net_new_arr']:,.0f} {currency}"
    )
    ratio = stats["ltv_to_cac"]
    out.print(
        f"unit economics:   LTV {short(stats['ltv'], 'money')}, CAC {short(stats['cac'], 'money')}, "
        f"LTV:CAC {'n/a' if math.isnan(ratio) else f'{ratio:.1f}'}, "
        f"CAC payback {short(stats['cac_payback_months'], '{:.1f}')} months, "
        f"magic number {short(stats['magic_number'], '{:.2f}')}"
    )


def segment_lines(stats: dict[str, float], currency: str) -> list[str]:
    """One line per segment of a segmented run (its ``segment:<name>:<metric>`` keys); none otherwise."""
    names = list(dict.fromkeys(key.split(":")[1] for key in stats if key.startswith("segment:")))
    lines = []
    for name in names:
        seg = {key.rsplit(":", 1)[1]: value for key, value in stats.items() if key.startswith(f"segment:{name}:")}
        cycle = seg["median_cycle_days"]
        lines.append(
            f"  {name}: {seg['leads']:,.0f} leads, {seg['mqls']:,.0f} MQLs, {seg['sqls']:,.0f} SQLs, "
            f"{seg['wins']:,.0f} wins (win rate {pct(seg['win_rate'])}), {seg['revenue']:,.0f} {currency}, "
            f"average deal {short(seg['average_deal_size'], 'money')}, median cycle "
            + ("n/a" if math.isnan(cycle) else f"{cycle:.0f} days")
            + f"; {seg['average_sdr_headcount']:.1f} SDRs, {seg['average_ae_headcount']:.1f} AEs"
        )
    return lines


BOTTLENECK_BUSY = 0.9
BOTTLENECK_ABANDONED = 0.05
"""A team this busy over the run, or losing this share of its arrivals to waiting, is named the bottleneck."""


def _queue_line(stats: dict[str, float], team: str, leads: str, rep: str) -> str:
    waited, wait = stats.get(f"{team}_p_wait", math.nan), stats.get(f"{team}_wait_all_days", math.nan)
    if math.isnan(waited) or waited == 0:
        return f"no {leads[:-1]} waited for {rep}"
    hours = 24 * wait
    wait_text = f"{hours:.1f} h" if hours < 48 else f"{wait:.1f} days"
    return (
        f"{pct(waited)} of {leads} waited for {rep} (mean wait {wait_text}), "
        f"{pct(stats[f'{team}_abandoned_share'])} went cold waiting"
    )


def _calendar_line(stats: dict[str, float]) -> str:
    """MQLs by arrival in the SDR team's hours, answered within 5 minutes, mean response both ways."""
    hours = 24 * stats["sdr_response_days_mean"]
    worked = 24 * stats["sdr_response_working_days_mean"]
    return (
        f"{pct(stats['mqls_in_hours_share'])} of MQLs arrive in SDR hours; answered within 5 min: "
        f"{pct(stats['answered_5min_in_hours'])} of those, {pct(stats['answered_5min_off_hours'])} of the others; "
        f"mean response {worked:.1f} working h ({hours:.1f} h elapsed)"
    )


def pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}%"


def _segment_plan_lines(p: Plan) -> list[str]:
    """A segmented plan's targets per segment: its leads, SQLs, wins and bookings in the period, its SDRs
    and AEs (analytic, at the plan's volume), and the simulated wins and bookings of the verification."""
    lines = []
    for name, months in p.segments.items():
        inside = months[months["phase"] == "period"]
        lines.append(
            f"  {name + ':':<16}{inside['leads'].sum():,.0f} leads, {inside['sqls'].sum():,.0f} SQLs, "
            f"{inside['wins'].sum():,.0f} wins, {short(inside['revenue'].sum(), 'money')} booked; "
            f"{inside['sdr_headcount'].mean():.1f} SDRs, {inside['ae_headcount'].mean():.1f} AEs "
            f"(busiest month needs {inside['aes_needed'].max():.1f} AEs)"
        )
    return ["per segment (analytic, at the plan's volume):", *lines] if lines else []


def print_plan(p: Plan, d: PlanDiagnostics) -> None:
    """The plan: its joint-target sheet, then one line each for status, marketing, sales, capacity and confidence."""
    from funnelsim.studies.planner import GOAL_FLAGS

    cur = p.scenario.currency
    goal = p.period.goal
    what = GOAL_FLAGS[goal][1]
    alone = f" ({p.period.segment} alone)" if p.period.segment else ""
    out.print(
        f"Plan: {p.goal:,.0f} {cur} {what} {p.period}{alone} with {p.confidence:.0%} confidence (lever: {p.lever})"
    )
    heads = p.headcount.set_index("month")
    out.print(_plan_table(p, heads))
    pg = p.p_goal
    if p.status == "already met":
        out.print(
            f"already met:      the scenario as it is reaches the goal in {pct(pg['estimate'])} of {pg['n']:,} fresh "
            f"runs (95% CI {pct(pg['ci_low'])} – {pct(pg['ci_high'])}): no more leads or reps are needed"
        )
    sheet = p.sheet
    per_month = sheet[(sheet["stage"] == "leads") & (sheet["phase"] == "period") & (sheet["team"] == "marketing")]
    if p.spend:
        _print_spend(p, float(per_month["target"].sum()))
    else:
        out.print(
            f"marketing:        leads x{p.lead_multiplier:.3f} of today's volume{_shape_note(p)}, "
            f"{per_month['target'].sum():,.0f} leads in the period (+ {p.lead_in_months} months lead-in)"
        )
    out.print(f"sales:            {_hires_line(p)}")
    inside = heads[heads["phase"] == "period"]
    short_months = inside[(inside["aes_needed"] > inside["aes"]) | (inside["sdrs_needed"] > inside["sdrs"])]
    out.print(
        f"capacity check:   busiest month needs {inside['aes_needed'].max():.1f} AEs and "
        f"{inside['sdrs_needed'].max():.1f} SDRs at 80% utilisation (Little's law); "
        + (
            f"short in {len(short_months)} month(s): see headcount.csv"
            if len(short_months)
            else "the plan's headcount covers it"
        )
    )
    terms = p.handoff_terms
    out.print(
        f"hand-off terms:   follow up {terms['follow_up_rate']:.0%} of MQLs, mean response "
        f"{terms['response_time_hours_mean']:.1f} h, SQL bar {terms['sql_threshold']:g}"
    )
    sp = p.search_p_goal
    out.print(
        f"confidence:       verified on {pg['n']:,} fresh runs (replications {pg['first_replication']:,}+ of seed "
        f"{pg['seed']}): goal reached in {pct(pg['estimate'])} (95% CI {pct(pg['ci_low'])} – {pct(pg['ci_high'])}); "
        f"on the search's own {sp['n']} runs {pct(sp['estimate'])}"
    )
    if goal == "bookings":
        out.print(
            f"revenue:          P10 {short(p.revenue['p10'], 'money')}, P50 {short(p.revenue['p50'], 'money')}, "
            f"P90 {short(p.revenue['p90'], 'money')} in the period (monthly revenue targets: the goal spread like "
            "the mean, summing to it)"
        )
    else:
        measure = GOAL_FLAGS[goal][2]
        out.print(
            f"{measure + ':':<17} P10 {short(p.revenue['p10'], 'money')}, P50 {short(p.revenue['p50'], 'money')}, "
            f"P90 {short(p.revenue['p90'], 'money')} (monthly bookings targets: the new ARR the goal needs, "
            "spread like the mean)"
        )
    for line in _segment_plan_lines(p):
        out.print(line)
    out.print(
        f"cost in period:   {p.cost['period_total']:,.0f} {cur} (marketing {p.cost['marketing']:,.0f}); "
        f"CAC {p.cost['cac']:,.0f}"
    )
    lever = "budget" if p.spend else "leads"
    floor = " (never below today's)" if p.spend and d.analytic_multiplier < 1 else ""
    out.print(
        f"analytic plan:    {lever} x{d.analytic_multiplier:.3f} (no queues); simulation needed "
        f"x{p.lead_multiplier:.3f}{floor}"
    )
    out.print(
        f"work:             search {len(d.candidates)} candidates, {d.simulated:,} replications; verification "
        f"{len(d.verifications)} round(s), {d.verified:,} replications (budget {p.budget['max_replications']:,})"
    )


def _print_spend(p: Plan, leads: float) -> None:
    """The marketing lines of a plan on spend curves: the budget, then each channel's spend today and planned."""
    cur, spend = p.scenario.currency, p.spend
    out.print(
        f"marketing:        budget x{p.lead_multiplier:.3f} of today's spend{_shape_note(p)}: "
        f"{spend['planned_per_month']:,.0f} {cur} a month on the spend curves (today {spend['today_per_month']:,.0f}), "
        f"{leads:,.0f} leads in the period (+ {p.lead_in_months} months lead-in)"
    )
    for name, c in spend["channels"].items():
        fixed = "" if c["in_budget"] else " (kept: not in --lead-sources)"
        out.print(
            f"  {name + ':':<16}{c['today_per_month']:,.0f} -> {c['planned_per_month']:,.0f} {cur} a month, "
            f"{c['leads_per_month']:,.1f} leads a month at {c['average_cost_per_lead']:,.0f} average, "
            f"{c['marginal_cost_per_lead']:,.0f} marginal per lead{fixed}"
        )


def _shape_note(p: Plan) -> str:
    """Where the extra leads go when the lead lever is shaped (nothing when every source and month is alike)."""
    parts = []
    if p.lead_shape.get("sources") is not None:
        parts.append("sources " + ", ".join(f"{k}={v:g}" for k, v in p.lead_shape["sources"].items()))
    if p.lead_shape.get("months") is not None:
        months = sorted(p.lead_shape["months"])
        parts.append(f"months {months[0]} to {months[-1]}")
    return f" (extra leads: {'; '.join(parts)})" if parts else ""


def _hires_line(p: Plan) -> str:
    """The plan's hires and what attrition takes: ``+2 AEs and +1 SDR hired on 2026-06-01; ...``."""
    ae, sdr = p.hires["ae"], p.hires["sdr"]
    hired = [_count(ae["planned"], "AE", "+") + _where(ae), _count(sdr["planned"], "SDR", "+") + _where(sdr)]
    said = " and ".join(x for x in hired if x)
    sdrs = _count(p.sdrs, "SDR")
    line = f"{said} hired on {p.hire_date}, {sdrs} in all" if said else f"no hires, {sdrs}"
    for team, info in (("AEs", ae), ("SDRs", sdr)):
        if info["leavers_expected"] > 0.05:
            line += (
                f"; ~{info['leavers_expected']:.1f} {team} expected to leave over the {len(p.headcount)} months, "
                f"~{info['backfills_expected']:.1f} backfilled (hires to hold the headcount: "
                f"~{info['leavers_expected']:.1f})"
            )
    return line


def _where(hires: dict[str, Any]) -> str:
    """`` (enterprise 2, smb 1)``: a segmented plan's hires by segment; empty otherwise or without hires."""
    split = {name: n for name, n in hires.get("by_segment", {}).items() if n}
    return f" ({', '.join(f'{name} {n}' for name, n in split.items())})" if split else ""


def _count(n: int, noun: str, sign: str = "") -> str:
    """``3 SDRs``, ``1 SDR``, ``+2 AEs``; empty for no one when ``sign`` is given."""
    if sign and not n:
        return ""
    return f"{sign}{n} {noun}{'' if n == 1 else 's'}"


def _plan_table(p: Plan, heads: pd.DataFrame) -> Table:
    """The joint-target sheet, one row per month and a total of the period; lead-in months dimmed and starred."""
    cur = p.scenario.currency
    sheet = p.sheet
    table = Table(
        title="Joint targets per month: marketing (MKT), hand-off (SHARED), sales",
        title_justify="left",
        caption="* lead-in month: builds the pipeline for the period. Leads: quota; MQLs to wins: the plan's mean;\n"
        "revenue: the goal spread like the plan's mean revenue (the period sums to the goal)",
        caption_justify="left",
    )
    columns = [
        ("month", None),
        ("leads\nMKT", "leads"),
        ("MQLs\nMKT", "mqls"),
        ("SQLs\nSHARED", "sqls"),
        ("opps\nSALES", "opportunities"),
        ("wins\nSALES", "wins"),
        (f"revenue\n{cur}", "revenue"),
        ("AEs\nramped", None),
        ("SDRs", None),
    ]
    # Marketing's leads: every source but the deals AEs prospect themselves.
    wide = sheet[sheet["source"] != "prospecting"].groupby(["month", "stage"])["target"].sum().unstack()
    spends = "spend" in wide.columns  # a plan on spend curves: marketing's budget beside its quotas
    for name, _ in [*columns, *([(f"spend\nMKT {cur}", "spend")] if spends else [])]:
        table.add_column(name, justify="left" if name == "month" else "right", no_wrap=True)
    for month in wide.index:
        lead_in = heads.loc[month, "phase"] != "period"
        cells = [f"{month}{'*' if lead_in else ''}"]
        cells += [f"{wide.loc[month, key]:,.0f}" for _, key in columns[1:6] if key is not None]
        cells += [short(wide.loc[month, "revenue"], "money")]
        cells += [f"{heads.loc[month, 'aes']:.1f}", f"{heads.loc[month, 'sdrs']:.1f}"]
        cells += [short(float(wide.loc[month, "spend"]), "money")] if spends else []
        table.add_row(*cells, style="dim" if lead_in else None)
    inside = wide.loc[[m for m in wide.index if heads.loc[m, "phase"] == "period"]]
    total = ["period"] + [f"{inside[key].sum():,.0f}" for _, key in columns[1:6] if key is not None]
    total += [short(inside["revenue"].sum(), "money"), "", ""]
    total += [short(float(inside["spend"].sum()), "money")] if spends else []
    table.add_row(*total, style="bold")
    return table


def print_attribution(attribution: Attribution, currency: str) -> None:
    a, b = attribution.labels
    table = Table(
        title=f"Revenue gap {b} - {a} by lever (Shapley values on common replications, 95% CI)", title_justify="left"
    )
    for name in ("lever", "contribution", "95% CI", "share", "alone", "parameters"):
        table.add_column(name, justify="left" if name in ("lever", "parameters") else "right")
    for row in attribution.table().to_dict("records"):
        table.add_row(
            row["lever"],
            short(row["contribution"], "money"),
            f"{short(row['ci_low'], 'money')} – {short(row['ci_high'], 'money')}",
            pct(row["share_of_gap"]),
            "" if row["lever"] == "total" else short(row["alone"], "money"),
            row["parameters"],
        )
    out.print(table)
    out.print(f"amounts in {currency}; alone: switching only that lever in {a}")


def print_sweep(result: Sweep, metric: str) -> None:
    fmt = metric_format(metric)
    best = result.optimum(metric)
    diffs = result.differences(metric, against=best.point).set_index("point")
    rows = result.table(metric)
    title = f"{result.n_runs} common replications per point; difference = point - best (paired, 95% CI)"
    table = Table(title=title, title_justify="left")
    # A long path breaks at its dots, so a narrow terminal keeps every column readable.
    for path in result.parameters:
        table.add_column(path.replace(".", ".\n"), justify="right")
    for name in (f"{metric} mean", "95% CI", "P10–P90", "vs best ± 95% CI"):
        table.add_column(name, justify="right")
    for row in rows.to_dict("records"):
        d = diffs.loc[row["point"]]
        is_best = row["point"] == best.point
        table.add_row(
            *[value_text(row[p]) for p in result.parameters],
            short(row[f"{metric}_mean"], fmt),
            f"{short(row[f'{metric}_ci_low'], fmt)}–{short(row[f'{metric}_ci_high'], fmt)}",
            f"{short(row[f'{metric}_p10'], fmt)}–{short(row[f'{metric}_p90'], fmt)}",
            "best" if is_best else plus_minus(d["difference"], d["paired_half_width"], fmt),
            style="bold" if is_best else None,
        )
    out.print(table)
    where = ", ".join(f"{p}={value_text(v)}" for p, v in best.values.items())
    shape = "inside the range" if best.interior else "at the edge of the range: widen it to find the optimum"
    worse = int(best.neighbours["significant"].sum())
    out.print(
        f"best {metric}:  {short(best.mean, fmt)} at {where} "
        f"(95% CI {short(best.ci_low, fmt)}–{short(best.ci_high, fmt)}), {shape}; "
        f"{worse} of {len(best.neighbours)} neighbouring points significantly "
        f"{'lower' if best.maximize else 'higher'}"
    )


def plus_minus(x: float, half: float, fmt: str) -> str:
    # Paired intervals are symmetric: "-1.5M ± 160k" says as much as two bounds, in half the width.
    return f"{short(x, fmt)} ± {short(half, fmt)}"


def metric_format(metric: str) -> str:
    if metric in ("revenue", "average_deal_size", "revenue_per_ae") or "cost" in metric or metric == "cac":
        return "money"
    if "rate" in metric or "_to_" in metric or "utilisation" in metric:
        return "{:.1%}"
    return "{:,.3g}"


def value_text(x: Any) -> str:
    if not isinstance(x, float):
        return str(x)
    return f"{x:,.0f}" if abs(x) >= 1e4 else f"{x:.4g}"


def print_sensitivity(result: Sensitivity) -> None:
    metric = result.metric
    fmt = metric_format(metric)
    rows = result.table()
    base = rows["base_mean"].iloc[0]
    title = (
        f"{metric} at -{result.by:.0%} / +{result.by:.0%} of each parameter; base {short(base, fmt)}; "
        f"{result.base.completed} common replications (paired 95% CI)"
    )
    table = Table(title=title, title_justify="left")
    for name in ("parameter", "low / high", "effect of low ± 95% CI", "effect of high ± 95% CI", "swing"):
        table.add_column(name, justify="left" if name == "parameter" else "right", overflow="fold")
    for row in rows.to_dict("records"):
        low_half = (row["low_diff_ci_high"] - row["low_diff_ci_low"]) / 2
        high_half = (row["high_diff_ci_high"] - row["high_diff_ci_low"]) / 2
        table.add_row(
            row["parameter"] + (" (mean)" if row["kind"] == "distribution" else ""),
            f"{value_text(row['low_value'])} / {value_text(row['high_value'])}",
            plus_minus(row["low_diff"], low_half, fmt),
            plus_minus(row["high_diff"], high_half, fmt),
            short(row["swing"], fmt),
        )
    out.print(table)
    noted = rows[rows["note"].str.contains("clipped|not run|not allowed", regex=True)]
    for row in noted.to_dict("records"):
        out.print(f"note: {row['parameter']}: {row['note']}")
    out.print(f"not varied: {len(result.skipped)} keys (see skipped.csv or --json: each with its reason)")


def print_comparison(result: Comparison, runs: int, currency: str) -> None:
    """Each headline metric per scenario, with its paired difference against the first; then the attribution."""
    table = Table(
        title=f"{runs} common replications; difference = scenario - {result.labels[0]} (paired, 95% CI)",
        title_justify="left",
    )
    for name in ("metric", "scenario", "mean", "difference", "95% CI", "CI vs unpaired"):
        table.add_column(name, justify="left" if name in ("metric", "scenario") else "right")
    shown = {
        "revenue": f"revenue ({currency})",
        "wins": "wins",
        "sqls": "SQLs",
        "mqls": "MQLs",
        "cac": f"CAC ({currency})",
    }
    rows = result.table(list(shown))
    for row in rows.to_dict("records"):
        first = row["scenario"] == result.labels[0]
        fmt = "money" if row["metric"] in ("revenue", "cac") else "{:,.0f}"
        table.add_row(
            shown[row["metric"]],
            row["scenario"],
            short(row["mean"], fmt),
            "" if first else short(row["difference"], fmt),
            "" if first else f"{short(row['diff_ci_low'], fmt)} – {short(row['diff_ci_high'], fmt)}",
            "" if first else f"{row['narrower']:.1f}x narrower",
        )
    out.print(table)
    if result.attribution is not None:
        print_attribution(result.attribution, currency)


def print_calibration(cal: Calibration, written: tuple[Path, Path, Path]) -> None:
    """How each export was read (on stderr), the fitted cycle, win rate, deal size, capacity and pipeline,
    the self-check table, the warnings (on stderr) and what was written."""
    _print_exports_read(cal)
    b, w = cal.best, cal.win
    others = ", ".join(f"{f.family} {f.aic:.1f}" for f in cal.fits[1:])
    out.print(f"as of:            end of {cal.as_of} (the scenario starts {cal.start_date})")
    out.print(
        f"sales cycle:      {b.family} by AIC ({b.aic:.1f}; {others}); mean {b.mean:.1f} d "
        f"(95% CI {b.mean_ci[0]:.1f}-{b.mean_ci[1]:.1f}); closed deals only would say {cal.naive_closed_only.mean:.1f}"
    )
    out.print(
        f"win rate:         competing risks {pct(w['competing_risks'])} (95% CI {pct(w['ci_low'])}-"
        f"{pct(w['ci_high'])}) vs naive won/(won+lost) {pct(w['naive'])}"
    )
    size = cal.tables["deal_sizes.csv"].iloc[0]
    if size["n"]:
        out.print(
            f"deal size:        {size['n']} amounts resampled; mean {size['mean']:,.0f} (95% CI "
            f"{size['mean_ci_low']:,.0f}-{size['mean_ci_high']:,.0f}); "
            f"a lognormal would say {size['lognormal_mean']:,.0f}"
        )
    if cal.stale is not None:
        out.print(escape(f"stale deals:      {cal.stale.describe()}"))
    _print_capacity(cal)
    out.print(f"pipeline:         {len(cal.pipeline)} deals open at the end of {cal.as_of}")
    if "stages.csv" in cal.tables:
        from funnelsim.report.calibration import stages_line

        out.print(escape(f"time in stage:    {stages_line(cal.tables['stages.csv'])}"))
    _print_selfcheck(cal)
    for line in cal.warnings:
        err.print(f"[bold yellow]warning:[/] {escape(line)}")
    if written[0].parent == written[2]:  # calibrate --out DIR: one folder
        err.print(f"wrote {written[2]}/ ({written[0].name}, {written[1].name}, report.md, ...)")
    else:
        err.print(f"wrote {written[0]}, {written[1].name}, {written[2].name}/")


def _print_capacity(cal: Calibration) -> None:
    """SDRs, AE slots, volumes and prospecting as fitted to the observed flow (one line)."""
    params = {p["path"]: p for p in cal.parameters}
    parts = []
    for path, label in (
        ("handoff.sdr.count", "SDRs"),
        ("sales.ae.count", "AEs"),
        ("sales.ae.max_open_opportunities", "max open per AE"),
    ):
        if path in params:
            parts.append(f"{label} {params[path]['value']} ({params[path]['status']})")
    if cal.flow is not None:
        parts.append(cal.flow.note)
    out.print(escape("capacity:         " + "; ".join(parts)))


def _print_selfcheck(cal: Calibration) -> None:
    """The self-check: a table of observed months against the simulated P10-P90, and the verdict."""
    check = cal.check
    if check is None:
        return
    if check.passed is None:
        out.print(escape(f"self-check:       {check.note}"))
        return
    from funnelsim.report.calibration import selfcheck_wide

    table = Table(
        title=escape(f"Self-check: observed [simulated P10-P90], {check.runs} runs; ▼ below / ▲ above"),
        title_justify="left",
        caption=escape(check.start),
        caption_justify="left",
    )
    for name in ("month", "opportunities", "wins", "won value"):
        table.add_column(name, justify="left" if name == "month" else "right")
    for r in selfcheck_wide(check.table).to_dict("records"):
        table.add_row(r["month"], escape(r["opportunities"]), escape(r["wins"]), escape(r["won_value"]))
    out.print(table)
    verdicts = "; ".join(
        f"{r.quantity} {r.outside} of {r.months} outside (<= {r.allowed})" for r in check.verdicts.itertuples()
    )
    out.print(f"self-check:       {'passed' if check.passed else 'FAILED'}: {verdicts}")


def _print_exports_read(cal: Calibration) -> None:
    from funnelsim.calibrate.readers import REASONS

    for t in (cal.opportunities, cal.leads, cal.history):
        if t is None:
            continue
        dates = ", ".join(f"{c} {f}" for c, f in t.date_conventions.items())
        line = f"{t.path.name}: {t.dialect} ({t.dialect_how}); dates {dates}; "
        line += f"{t.rows_read} rows read, {t.rows_read - len(t.issues)} used, {len(t.issues)} rejected"
        err.print(escape(line))
        for reason, count in t.rejected.items():
            lines = [str(i.line) for i in t.issues if i.reason == reason][:3]
            more = ", ..." if count > 3 else ""
            err.print(escape(f"  {count} {REASONS[str(reason)]} (lines {', '.join(lines)}{more})"))


def print_backtest(result: Backtest) -> None:
    """The cut-off and what the fit stood on, one row per quarter and metric, and the coverage."""
    facts, cur = result.facts, result.scenario.currency
    out.print(
        f"cut-off:          {result.as_of} 00:00; fitted on {facts['deals_before_cutoff']} deals created before it, "
        f"{facts['open_at_cutoff']} of them open then (the forecast starts from those)"
    )
    out.print(f"forecast:         {result.reps.completed} replications, seed {result.reps.seed}; money in {cur}")
    out.print(f"quarters:         {', '.join(q.label for q in result.quarters)}")
    table = Table(title="Forecast ranges vs what happened", title_justify="left")
    for name in ("", "metric", "actual", "P10", "P50", "P90", "inside", "PIT", "CRPS"):
        table.add_column(name, justify="left" if name in ("", "metric") else "right")
    for row in result.scores.to_dict("records"):
        money = row["metric"] == "won_value"
        fmt = "money" if money else "{:,.0f}"
        cells = [short(row[k], fmt) for k in ("actual", "p10", "p50", "p90")]
        inside = "yes" if row["inside"] else "[bold red]no[/]"
        crps = short(row["crps"], "money" if money else "{:,.1f}")
        table.add_row(f"Q{row['quarter']}", "won value" if money else "wins", *cells, inside, f"{row['pit']:.2f}", crps)
    out.print(table)
    coverage = result.coverage()
    parts = [f"{metric.replace('_', ' ')} {c['inside']} of {c['quarters']}" for metric, c in coverage.items()]
    out.print(
        f"inside P10–P90:   {', '.join(parts)} quarters (a calibrated forecast: 80% over many back-tests; "
        "a few quarters alone cannot tell)"
    )
    for note in result.notes:
        err.print(escape(f"note: {note}"))


def print_mix(result: Mix) -> None:
    """The optimal split of the budget per channel beside today's spend and today's shares of the budget."""
    cur, table = result.scenario.currency, result.table
    by = {mix: rows.set_index("channel") for mix, rows in table.groupby("mix", sort=False)}
    best, today, shares = by["optimal"], by["today"], by["today_shares"]
    grid = Table(
        title=f"Best split of {result.budget:,.0f} {cur} a month for the most {result.objective}",
        title_justify="left",
        caption="A month at the base volume, steady state, reps never the bottleneck. Cost per lead: average /\n"
        "marginal (the last lead bought). * no spend curve: outside the budget. MQLs and more: mix.csv",
        caption_justify="left",
    )
    for name in ("channel", f"spend {cur}\ntoday → best", "leads", "cost per\nlead", "SQLs", "wins", "revenue"):
        grid.add_column(name, justify="left" if name == "channel" else "right", no_wrap=True)
    for channel, row in best.iterrows():
        total = channel == "total"
        cost = "" if total or not row["in_budget"] else f" / {row['marginal_cost_per_lead']:,.0f}"
        grid.add_row(
            f"{channel}{'' if total or row['in_budget'] else '*'}",
            f"{short(float(today.loc[channel, 'spend_per_month']), 'money')} → "
            f"{short(float(row['spend_per_month']), 'money')}",
            f"{row['leads_per_month']:,.0f}",
            f"{row['average_cost_per_lead']:,.0f}{cost}",
            f"{row['sqls_per_month']:,.1f}",
            f"{row['wins_per_month']:,.2f}",
            short(float(row["revenue_per_month"]), "money"),
            style="bold" if total else None,
        )
    out.print(grid)
    key = f"{result.objective}_per_month"
    b, same, now = (float(frame.loc["total", key]) for frame in (best, shares, today))
    change = f" ({b / same - 1:+.1%})" if same > 0 else ""
    out.print(
        f"{result.objective} a month: {_amount(b, result.objective, cur)} with the best split{change}, "
        f"{_amount(same, result.objective, cur)} with the budget in today's shares, "
        f"{_amount(now, result.objective, cur)} with today's spend ({today.loc['total', 'spend_per_month']:,.0f} {cur})"
    )
    unit = f"{cur} of revenue" if result.objective == "revenue" else "wins"
    out.print(
        f"at the margin every funded channel brings {result.shadow_price:,.4g} {unit} per {cur} spent"
        + (f"; {result.unspent:,.0f} {cur} is worth spending on no channel" if result.unspent > 0 else "")
    )


def _amount(value: float, objective: str, currency: str) -> str:
    """Revenue as money, wins as a count."""
    return f"{value:,.0f} {currency}" if objective == "revenue" else f"{value:,.2f} wins"
