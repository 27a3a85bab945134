"""Calibrate a scenario from CRM exports: read (:mod:`.readers`), fit (:mod:`.fitting`), write (:mod:`.report`).

:func:`calibrate` turns an opportunities export (and optionally leads and stage history)
into a scenario: the sales cycle (censored fits, chosen by AIC), the win rate (competing
risks), deal sizes (the observed amounts, resampled), lead volumes and seasonality, the
SQL->opportunity conversion (Beta), the AE team, the hand-off capacity sized from the
observed flow (:mod:`.flow`) and the open pipeline at the as-of date. Stale open deals and a
truncated history are detected (:mod:`.diagnostics`), and the calibrated scenario is
simulated over the history it came from (:mod:`.selfcheck`). Everything the data cannot tell
is kept from a base scenario and listed as *assumed* in the report. See docs/calibrate.md.

The as-of date ``D`` means the **end** of day ``D``: everything dated ``D`` or earlier has
happened (a deal closed on ``D`` is closed, one created on ``D`` is in), a deal closed after
``D`` is still open, and the calibrated scenario starts on ``D + 1`` with the deals open at
00:00 that day as its initial pipeline (their ages counted to then).
"""

from __future__ import annotations

import datetime as dt
import math
import typing
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomlkit

from funnelsim.calibrate import diagnostics, fitting
from funnelsim.calibrate.diagnostics import DEFAULT_STALE, STALE_POLICIES, Finding, StaleDeals
from funnelsim.calibrate.export import export_leads, export_opportunities
from funnelsim.calibrate.flow import FlowFit
from funnelsim.calibrate.readers import (
    CalibrationError,
    Issue,
    Table,
    as_of_date,
    check_as_of,
    parse_mapping,
    read_history,
    read_leads,
    read_opportunities,
)
from funnelsim.calibrate.selfcheck import CHECK_RUNS, SelfCheck, Window
from funnelsim.model.loading import bundled_scenario
from funnelsim.model.scenario import Scenario

if typing.TYPE_CHECKING:
    from funnelsim.run.result import RunResult

__all__ = [
    "CHECK_RUNS",
    "DEFAULT_STALE",
    "REPORT_WHERE",
    "STALE_POLICIES",
    "WORK_BUDGET_SECONDS",
    "Calibration",
    "CalibrationError",
    "calibrate",
    "export_leads",
    "export_opportunities",
]

REPORT_WHERE = "in the .calibration folder beside this file"
"""Where a calibrated scenario's header says its report is (``calibrate --out DIR`` says: in this folder)."""


BASELINE = bundled_scenario("baseline.toml")
MIN_HALF_DAY = 0.5  # a deal closed the day it was created counts as half a day (dates have no time)
ACTIVE_DAYS = 90  # an owner with a deal created in the last 90 days, or one open, is on the team
FIT_SEED = 20_161  # the fit by simulation's seed (the self-check uses another: selfcheck.CHECK_SEED)
WORK_BUDGET_SECONDS = 300.0
"""Estimated seconds (on one core) the fit by simulation and the self-check may each spend; a bigger
company is sized analytically and its self-check runs fewer replications (or none), and the report says so."""


@dataclass
class Calibration:
    """What :func:`calibrate` found: the scenario document, the pipeline and the report tables.

    ``parameters`` has one row per scenario key decided (``path, value, status, rows,
    ci_low, ci_high, note``) with ``status`` in ``calibrated`` (from the data),
    ``fitted (simulation)`` (set so the simulated history reproduces the observed flow),
    ``sized (from flow)`` (capacity the data does not record, sized for the observed flow),
    ``assumed (from base)``, ``dropped (from base)`` and ``observed only``; the other tables
    are written to the report folder as CSV. ``stale`` and ``truncation`` are what
    :mod:`.diagnostics` found, ``flow`` the fit of volumes and capacity, ``check`` the self-check.
    """

    document: Any  # tomlkit document of the calibrated scenario
    pipeline: pd.DataFrame
    as_of: dt.date
    base_path: Path
    opportunities: Table
    leads: Table | None
    history: Table | None
    fits: list[fitting.CycleFit]
    naive_closed_only: fitting.CycleFit
    win: dict[str, float]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    parameters: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pipeline_supported: bool = False
    stale: StaleDeals | None = None
    truncation: list[Finding] = field(default_factory=list)
    observed: pd.DataFrame = field(default_factory=pd.DataFrame)
    flow: FlowFit | None = None
    check: SelfCheck | None = None
    window: Window | None = None
    dropped: list[str] = field(default_factory=list)

    @property
    def best(self) -> fitting.CycleFit:
        return self.fits[0]

    @property
    def start_date(self) -> dt.date:
        """The calibrated scenario's first day: the day after the as-of date (which counts whole)."""
        return self.as_of + dt.timedelta(days=1)

    @property
    def warnings(self) -> list[str]:
        """What a user must not miss, one line each: a truncated history, stale deals, dropped base values,
        and a self-check that failed or did not run."""
        lines = [f"truncated history: {f.message}" for f in self.truncation]
        if self.stale is not None and self.stale.count:
            lines.append(f"stale deals: {self.stale.describe()}")
        lines += [f"dropped from the base: {d}" for d in self.dropped]
        if self.flow is not None and not self.flow.converged:
            lines.append(f"capacity and volumes: {self.flow.note}")
        if self.check is not None and self.check.passed is False:
            lines.append("self-check FAILED: " + "; ".join(self.check.failures))
        elif self.check is not None and self.check.passed is None:
            lines.append(f"self-check {self.check.note}")
        elif self.check is not None and self.check.note:
            lines.append(f"self-check: {self.check.note}")
        return lines

    def messy_rows(self) -> pd.DataFrame:
        issues: list[Issue] = list(self.opportunities.issues)
        for t in (self.leads, self.history):
            if t is not None:
                issues += t.issues
        from funnelsim.calibrate.readers import REASONS

        return pd.DataFrame(
            [
                {
                    "file": i.file,
                    "line": i.line,
                    "reason": i.reason,
                    "meaning": REASONS[i.reason],
                    "column": i.column,
                    "value": i.value,
                }
                for i in issues
            ],
            columns=["file", "line", "reason", "meaning", "column", "value"],
        )

    def text(self) -> str:
        import tomlkit

        return tomlkit.dumps(self.document)


def _days(later: pd.Series | pd.Timestamp, earlier: pd.Series) -> np.ndarray:
    return np.asarray((later - earlier) / pd.Timedelta(days=1), dtype=float)


def calibrate(
    opportunities: str | Path,
    leads: str | Path | None = None,
    history: str | Path | None = None,
    *,
    fmt: str | None = None,
    mapping: Sequence[str] = (),
    as_of: str | dt.date | None = None,
    base: str | Path | None = None,
    strict: bool = False,
    dayfirst: bool | None = None,
    date_format: str | None = None,
    pipeline_file: str = "pipeline.csv",
    name: str = "calibrated",
    stale: str = DEFAULT_STALE,
    shift_hires: bool = False,
    check_runs: int = CHECK_RUNS,
    pool: Executor | None = None,
    budget_seconds: float = WORK_BUDGET_SECONDS,
    progress: Callable[[str], None] | None = None,
) -> Calibration:
    """Fit a scenario to CRM exports, and check that it reproduces them.

    Parameters
    ----------
    opportunities, leads, history
        CSV exports (see docs/calibrate.md for the columns of each dialect).
    fmt, mapping
        ``salesforce``, ``hubspot`` or ``generic`` (None: detected from the headers); ``--map``
        items ``"Column=field"`` or ``"Stage label=won|lost|open"``.
    as_of
        The date of the export (``YYYY-MM-DD``), counted to the end of that day; default: the
        latest date in the exports. The scenario starts the day after.
    base
        Scenario for everything the data cannot tell (default: the bundled baseline).
    strict, pipeline_file
        Turn the first messy row into a :class:`CalibrationError`; the file name of the scenario's
        ``[initial_pipeline]`` (written next to it).
    stale
        Open deals older than the P99 of closed cycles: ``close-lost`` (default), ``drop`` or
        ``keep`` (:mod:`.diagnostics`).
    shift_hires
        Keep the base's AE hires, moved to keep their offset from the start date (default:
        dropped and listed in the report; the base's plan is not this company's).
    check_runs
        Replications of the self-check (0: no self-check); see :mod:`.selfcheck`.
    pool, budget_seconds
        Executor of the self-check's replications (in-process when None); the estimated seconds
        the fit by simulation and the self-check may each spend.
    progress
        Called with the name of each phase as it starts (a million rows take about a minute).

    Raises
    ------
    CalibrationError
        Missing files or columns, ambiguous dates, too little data, a messy row with ``strict``, a bad ``stale``.
    """
    phase = progress or (lambda _: None)
    if stale not in STALE_POLICIES:
        raise CalibrationError(f"--stale must be one of {', '.join(STALE_POLICIES)}, got {stale!r}")
    base_path, base_sc = _load_base(base)
    phase("reading the exports")
    columns, stages = parse_mapping(mapping)
    opps, lead_table, hist = _read_exports(
        (opportunities, leads, history), fmt, columns, stages, (dayfirst, date_format, strict)
    )
    phase("fitting the sales cycle and the win rate (bootstrap)")
    latest = _latest_date(opps, lead_table)
    as_of = _resolve_as_of(as_of, latest, opps)
    cut = pd.Timestamp(as_of) + pd.Timedelta(days=1)  # the end of the as-of day
    cal, rows, outcome, duration = _fit_history(opps, as_of, cut, stale, base_path)
    cal.leads, cal.history = lead_table, hist
    _diagnose(cal, rows["every"], latest, cut)
    if hist is not None:
        _stages(cal, hist, cut, stages, set(rows["kept"]["id"]))
    phase("simulating the base for the fits and volumes CRMs do not record")
    settings = _Settings(pipeline_file, name, shift_hires, check_runs, pool, budget_seconds, phase)
    _fill(cal, base_sc, rows["kept"], outcome, duration, cut, _base_run(base_sc), settings)
    _check(cal, settings)
    return cal


def _read_exports(
    paths: tuple[Any, Any, Any], fmt: str | None, columns: dict[str, str], stages: dict[str, str], dates: Any
) -> tuple[Table, Table | None, Table | None]:
    """The opportunities, leads and stage-history exports (the last two when given)."""
    opportunities, leads, history = paths
    opps = read_opportunities(opportunities, fmt, columns, stages, *dates)
    lead_table = read_leads(leads, fmt, columns, *dates) if leads is not None else None
    hist = read_history(history, fmt, columns, *dates) if history is not None else None
    return opps, lead_table, hist


def _fit_history(
    opps: Table, as_of: dt.date, cut: pd.Timestamp, stale: str, base_path: Path
) -> tuple[Calibration, dict[str, pd.DataFrame], pd.Series, np.ndarray]:
    """The observed months, the stale deals, the cycle fits and the win rate of the deals up to the as-of day.

    Returns the calibration so far, the deals (``every`` created by the as-of day, ``kept`` for
    the fits after the stale policy) and the kept deals' outcomes and durations.
    """
    every = _created_before(opps, cut, as_of)
    outcome, duration = _censored(every, cut)
    observed = diagnostics.observed_months(
        every["created"], every["closed"], (outcome == "won").to_numpy(), every["amount"], cut
    )
    found = diagnostics.stale_deals(outcome, duration, stale)
    keep, outcome, duration = found.apply(outcome, duration)
    kept, outcome, duration = every[keep], outcome[keep], duration[keep]
    timed = found.in_cycle_fit(keep)  # close-lost deals died at an unknown time: not in the cycle fit
    fits, naive, km = _cycle_fits(duration[timed], outcome[timed], opps, as_of)
    cal = Calibration(
        document=None,
        pipeline=pd.DataFrame(),
        as_of=as_of,
        base_path=base_path,
        opportunities=opps,
        leads=None,
        history=None,
        fits=fits,
        naive_closed_only=naive,
        win=fitting.win_rate(duration, outcome.to_numpy()),
        tables={"km.csv": km, "win_rate.csv": fitting.aalen_johansen(duration, outcome.to_numpy())},
        stale=found,
        observed=observed,
    )
    return cal, {"every": every, "kept": kept}, outcome, duration


@dataclass(frozen=True)
class _Settings:
    """The options of one :func:`calibrate` call that the steps after the fits need."""

    pipeline_file: str
    name: str
    shift_hires: bool
    check_runs: int
    pool: Executor | None
    budget_seconds: float
    phase: Callable[[str], None]


def _latest_date(opps: Table, lead_table: Table | None) -> pd.Timestamp:
    """The latest date in the exports (created or closed; the leads' stage dates)."""
    rows = opps.rows
    latest = pd.concat([rows["created"], rows["closed"]]).max()
    if lead_table is not None:
        latest = max(latest, lead_table.rows[["created", "mql", "sql", "opportunity"]].max().max())
    if pd.isna(latest):
        raise CalibrationError(f"{opps.path}: no usable rows (every row was rejected; see the messy rows)")
    return typing.cast(pd.Timestamp, latest)


def _diagnose(cal: Calibration, every: pd.DataFrame, latest: pd.Timestamp, cut: pd.Timestamp) -> None:
    """The stale deals (``stale_deals.csv``) and the signs of a truncated history."""
    assert cal.stale is not None
    stale = every[cal.stale.mask]
    cal.tables["stale_deals.csv"] = pd.DataFrame(
        {
            "id": stale["id"].to_numpy(),
            "created": stale["created"].dt.strftime("%Y-%m-%d").to_numpy(),
            "age_days": np.round(cal.stale.ages, 1),
            "owner": stale["owner"].to_numpy(),
            "amount": stale["amount"].to_numpy(),
            "treated_as": {"close-lost": "lost", "drop": "dropped", "keep": "open"}[cal.stale.policy],
        }
    )
    history_first = cal.history.rows["date"].min() if cal.history is not None and len(cal.history.rows) else None
    cal.truncation = diagnostics.truncation(every["created"], cal.observed, cut, latest, history_first)


def _stages(cal: Calibration, hist: Table, cut: pd.Timestamp, stages: dict[str, str], ids: set[str]) -> None:
    """Time in each stage from the stage history (``stages.csv``): reported, not a scenario key."""
    from funnelsim.calibrate.readers import DEFAULT_STAGES

    terminal = {label for label, outcome in {**DEFAULT_STAGES, **stages}.items() if outcome != "open"}
    table = fitting.stage_durations(hist.rows, cut, terminal)
    cal.tables["stages.csv"] = table
    unknown = sorted(set(hist.rows["id"]) - ids)
    if unknown:
        cal.notes.append(
            f"stage history: {len(unknown)} opportunity id(s) not among the usable opportunities "
            f"(e.g. {', '.join(unknown[:3])}); their stages are still counted"
        )
    cal.notes.append(
        "stage history: time in each stage is reported (stages.csv) but not simulated; the scenario has one "
        "cycle time from opportunity to close"
    )


def _param(
    cal: Calibration,
    path: Any,
    value: Any,
    status: str,
    rows: Any = "",
    ci: Any = None,
    note: str = "",
) -> None:
    """One row of ``parameters.csv``; a later decision on the same ``path`` replaces the earlier row."""
    cal.parameters[:] = [p for p in cal.parameters if p["path"] != path]
    cal.parameters.append(
        {
            "path": path,
            "value": value,
            "status": status,
            "rows": rows,
            "ci_low": ci[0] if ci else math.nan,
            "ci_high": ci[1] if ci else math.nan,
            "note": note,
        }
    )


def _load_base(base: str | Path | None) -> tuple[Path, Any]:
    """The base scenario (everything the data cannot tell), a bad one reported as ``--base``."""
    from funnelsim.model.loading import load_scenario
    from funnelsim.model.scenario import ScenarioError

    base_path = Path(base) if base is not None else BASELINE
    try:
        return base_path, load_scenario(base_path)
    except ScenarioError as exc:
        raise CalibrationError(f"--base: {exc}") from None


def _base_run(base_sc: Any) -> RunResult:
    """One run of the base: its opportunities stand in for the fits CRMs do not record, its flow for the SDRs'."""
    from funnelsim.engine import simulate

    return simulate(base_sc, seed=base_sc.seed if base_sc.seed is not None else 0)


def _resolve_as_of(as_of: str | dt.date | None, latest: pd.Timestamp, opps: Table) -> dt.date:
    """The as-of date: given (checked), else the day of the latest date in the exports (counted whole)."""
    if isinstance(as_of, str):
        as_of = as_of_date(as_of)
    elif as_of is not None:
        as_of = check_as_of(as_of)
    if as_of is not None:
        return as_of
    return check_as_of(typing.cast(dt.date, latest.normalize().date()))


def _created_before(opps: Table, cut: pd.Timestamp, as_of: dt.date) -> pd.DataFrame:
    """The deals created up to the end of the as-of day; later ones are counted as messy rows."""
    rows = opps.rows
    late = rows["created"] >= cut
    for line in rows.index[late]:
        opps.issues.append(Issue(opps.path.name, int(line), "created_after_as_of", opps.columns["created"], ""))
    rows = rows[~late].copy()
    if len(rows) < 10:
        raise CalibrationError(f"{opps.path}: only {len(rows)} usable opportunities up to {as_of}; need at least 10")
    return rows


def _censored(rows: pd.DataFrame, cut: pd.Timestamp) -> tuple[pd.Series, np.ndarray]:
    """Each deal's outcome at the end of the as-of day and its duration in days (still-open deals censored there)."""
    # Deals closed after the as-of day were still open then: censored at the end of that day.
    closed_by_cut = (rows["outcome"] != "open") & (rows["closed"] < cut)
    outcome = rows["outcome"].where(closed_by_cut, "open")
    end = rows["closed"].where(closed_by_cut, cut)
    return outcome, np.maximum(_days(end, rows["created"]), MIN_HALF_DAY)


def _cycle_fits(
    duration: np.ndarray, outcome: pd.Series, opps: Table, as_of: dt.date
) -> tuple[list[fitting.CycleFit], fitting.CycleFit, pd.DataFrame]:
    """The censored cycle fits (best first), the biased closed-only fit, and the Kaplan-Meier table with each CDF."""
    is_closed = (outcome != "open").to_numpy()
    closed_t, open_t = duration[is_closed], duration[~is_closed]
    if len(closed_t) < 10:
        raise CalibrationError(f"{opps.path}: only {len(closed_t)} closed deals up to {as_of}; need at least 10")
    fits = fitting.fit_cycles(closed_t, open_t)
    naive = fitting.fit_cycle(closed_t, np.array([]), "lognormal")
    km = fitting.kaplan_meier(closed_t, open_t)
    for f in fits:
        km[f"cdf_{f.family}"] = f.dist.cdf(km["days"].to_numpy())
    km["cdf_closed_only_lognormal"] = naive.dist.cdf(km["days"].to_numpy())
    return fits, naive, km


def _fill(
    cal: Calibration,
    base_sc: Any,
    rows: pd.DataFrame,
    outcome: pd.Series,
    duration: np.ndarray,
    cut: pd.Timestamp,
    base_run: RunResult,
    settings: _Settings,
) -> None:
    """Decide every scenario value: calibrated, fitted, sized, observed only, assumed or dropped from the base."""
    filler = _Filler(cal, base_sc, rows, outcome, duration, cut, base_run, settings)
    for step in (
        filler.cycle,
        filler.win_rate,
        filler.deal_size,
        filler.reps,
        filler.hires,
        filler.volumes,
        filler.pipeline,
        filler.capacity,
        filler.finish,
    ):
        step()


@dataclass
class _Filler:
    """What :func:`_fill` decides, one section at a time, into the base's TOML document ``doc``."""

    cal: Calibration
    base_sc: Any
    rows: pd.DataFrame
    outcome: pd.Series
    duration: np.ndarray
    cut: pd.Timestamp
    base_run: RunResult
    settings: _Settings
    doc: Any = None
    sales: Any = None
    touched: set[str] = field(default_factory=set)
    w: dict[str, Any] = field(default_factory=dict)
    at_half: float = math.nan
    fit_effect: float = math.nan
    personas: set[str] = field(default_factory=set)
    scaled_volumes: dict[str, float] = field(default_factory=dict)  # sources scaled to the opportunities
    owners_observed: bool = False
    base_requests_per_lead: float = 0.0

    @property
    def base_leads(self) -> pd.DataFrame:
        return self.base_run.leads

    @property
    def base_opps(self) -> pd.DataFrame:
        leads = self.base_run.leads
        return leads[leads["opportunity"].notna()]

    @property
    def base_months(self) -> float:
        return float(self.base_sc.horizon_days) / fitting.DAYS_PER_MONTH

    def __post_init__(self) -> None:
        self.doc = tomlkit.parse(self.cal.base_path.read_text(encoding="utf-8"))
        self.sales = self.doc["sales"]
        self.cal.document = self.doc

    def put(self, table: Any, key: str, value: Any, comment: str, path: str) -> None:
        """Set ``key`` of ``table`` with its comment, and note the dotted ``path`` as decided."""
        if isinstance(value, dict):
            inline = tomlkit.inline_table()
            inline.update(value)
            value = inline
        table[key] = value
        table[key].comment(comment)
        self.touched.add(path)

    def cycle(self) -> None:
        """The sales cycle: the best censored fit."""
        n_closed, n_open = int(self.cal.best.n_closed), int(self.cal.best.n_open)
        best = self.cal.best
        spec = best.spec()
        self.put(
            self.sales,
            "cycle_days",
            spec,
            f"calibrated: {best.family} (best AIC) from {n_closed} closed + {n_open} open deals; "
            f"mean {best.mean:.1f} d (95% CI {best.mean_ci[0]:.1f}-{best.mean_ci[1]:.1f}, delta method)",
            "sales.cycle_days",
        )
        _param(
            self.cal,
            "sales.cycle_days",
            spec,
            "calibrated",
            n_closed + n_open,
            best.mean_ci,
            f"{best.family}; CI is of the mean",
        )

    def win_rate(self) -> None:
        """The win rate at fit 0.5 from the competing-risks estimate (and the fit effect, assumed)."""
        # Win rate: the competing-risks estimate is the average opportunity's; the scenario's
        # win_rate is at fit 0.5, so solve the intercept over the base's opportunity fits.
        self.w = w = self.cal.win
        self.fit_effect = float(self.base_sc.sales.fit_effect)
        fits = self.base_opps["fit"].to_numpy(float)
        self.at_half = fitting.intercept_for_average(w["competing_risks"], self.fit_effect, fits)
        lo = fitting.intercept_for_average(w["ci_low"], self.fit_effect, fits)
        hi = fitting.intercept_for_average(w["ci_high"], self.fit_effect, fits)
        n_eff = w["n_eff"]
        win_value: Any = round(self.at_half, 4)
        if math.isfinite(n_eff) and n_eff > 2:
            win_value = {"dist": "beta", "a": _r(self.at_half * n_eff), "b": _r((1 - self.at_half) * n_eff)}
        self.put(
            self.sales,
            "win_rate",
            win_value,
            f"calibrated: competing risks {w['competing_risks']:.3f} (95% CI {w['ci_low']:.3f}-{w['ci_high']:.3f}) "
            f"from {w['won']} won, {w['lost']} lost, {w['open']} open; at fit 0.5 with fit_effect {self.fit_effect:g}",
            "sales.win_rate",
        )
        _param(
            self.cal,
            "sales.win_rate",
            round(self.at_half, 4),
            "calibrated",
            w["won"] + w["lost"] + w["open"],
            (lo, hi),
            f"Beta(a, b) with the bootstrap variance; average opportunity {w['competing_risks']:.4f}, "
            f"naive closed-only {w['naive']:.4f}; fit of opportunities from one run of the base "
            f"(mean {np.mean(fits):.3f})",
        )
        _param(self.cal, "sales.fit_effect", self.fit_effect, "assumed (from base)", note="CRM exports carry no fit")

    def deal_size(self) -> None:
        """Deal sizes: the observed amounts of won deals (or all), resampled; per segment that names a persona."""
        # Won deals when there are enough of them (revenue is what they book). A price list is
        # multimodal: a lognormal through it can put the mean far from the sample's, so the
        # amounts themselves are resampled (their mean is the sample mean, exactly).
        won = self.outcome == "won"
        enough = int(self.rows.loc[won, "amount"].notna().sum()) >= 20
        pool = self.rows[won] if enough else self.rows
        which = "won deals" if enough else "deals (fewer than 20 won with an amount)"
        size = fitting.empirical_sizes(pool["amount"].to_numpy(float))
        self.personas = set(self.base_sc.personas)
        segments = []
        for seg, group in pool.groupby("segment"):
            if seg != "":
                s = fitting.empirical_sizes(group["amount"].to_numpy(float))
                segments.append({"segment": seg, **s, "persona": seg if seg in self.personas else ""})
        columns = ["segment", "persona", "n", "mean", "mean_ci_low", "mean_ci_high", "median", "sd"]
        columns += ["lognormal_mean", "support"]
        table = pd.DataFrame([{"segment": "(all)", **size, "persona": ""}, *segments])
        self.cal.tables["deal_sizes.csv"] = table[columns]
        if size["n"] >= 2:
            self.put(
                self.sales,
                "deal_size",
                {"dist": "empirical", "values": size["values"]},
                f"calibrated: the amounts of {size['n']} {which}, resampled ({size['support']}); mean "
                f"{size['mean']:,.0f} (95% bootstrap CI {size['mean_ci_low']:,.0f}-{size['mean_ci_high']:,.0f}); "
                f"a lognormal would say {size['lognormal_mean']:,.0f}",
                "sales.deal_size",
            )
            _param(
                self.cal,
                "sales.deal_size",
                f"empirical: {size['n']} {which} ({size['support']}), mean {size['mean']:,.2f}",
                "calibrated",
                size["n"],
                (size["mean_ci_low"], size["mean_ci_high"]),
                f"CI: percentile bootstrap of the mean; lognormal MLE mean {size['lognormal_mean']:,.2f} (not used)",
            )
        self._deal_size_by_persona(segments, which)

    def _deal_size_by_persona(self, segments: list[dict[str, Any]], which: str) -> None:
        """Segments naming a persona (>= 10 deals) set its deal size; the base's other per-persona sizes go."""
        by_persona = {
            s["segment"]: {"dist": "empirical", "values": s["values"]}
            for s in segments
            if s["persona"] and s["n"] >= 10
        }
        base_own = set(self.base_sc.sales.deal_size_by_persona)
        dropped = sorted(base_own - set(by_persona))
        if by_persona:
            table = tomlkit.inline_table()
            for persona, spec in by_persona.items():
                inner = tomlkit.inline_table()
                inner.update(spec)
                table[persona] = inner
            self.sales["deal_size_by_persona"] = table
            self.sales["deal_size_by_persona"].comment(
                f"calibrated: the amounts of the {which} of each segment naming a persona (>= 10 deals), resampled"
            )
            for persona in by_persona:
                n = next(s["n"] for s in segments if s["segment"] == persona)
                _param(
                    self.cal,
                    f"sales.deal_size_by_persona.{persona}",
                    "empirical",
                    "calibrated",
                    n,
                    note="segment column",
                )
        elif "deal_size_by_persona" in self.sales:
            del self.sales["deal_size_by_persona"]
        self.touched.add("sales.deal_size_by_persona")
        if dropped:
            line = (
                f"sales.deal_size_by_persona of {', '.join(dropped)} (the base's own sizes; these personas now "
                "take the calibrated sales.deal_size)"
            )
            self.cal.dropped.append(line)
            _param(
                self.cal,
                "sales.deal_size_by_persona",
                ", ".join(dropped),
                "dropped (from base)",
                note="not in the export's segments: the calibrated deal size applies",
            )
        if segments and not by_persona:
            _param(
                self.cal,
                "deal sizes per segment",
                len(segments),
                "observed only",
                note="segments are not personas of the base; see deal_sizes.csv",
            )

    def reps(self) -> None:
        """The AE team: owners active at the as-of date, and the most deals one held at once."""
        # Reps: owners active at the as-of date, and how many deals each held at once.
        offset = -_days(
            pd.Series(self.cut, index=self.rows.index), self.rows["created"]
        )  # days before the as-of date (< 0)
        start_day = np.floor(offset).astype(int)
        end_day = np.ceil(offset + self.duration).astype(int)
        reps = fitting.concurrency(self.rows["owner"].replace("", "(none)"), start_day, end_day)
        self.cal.tables["reps.csv"] = reps
        recent = self.rows["created"] >= self.cut - pd.Timedelta(days=ACTIVE_DAYS)
        active = self.rows.loc[recent | (self.outcome == "open"), "owner"]
        active = active[active != ""].nunique()
        ae = self.sales["ae"]
        if self.rows["owner"].ne("").any() and active > 0:
            self.owners_observed = True
            self.put(
                ae,
                "count",
                int(active),
                f"calibrated: owners with a deal open or created in the last {ACTIVE_DAYS} days "
                f"({self.rows['owner'].nunique()} in the file)",
                "sales.ae.count",
            )
            _param(
                self.cal,
                "sales.ae.count",
                int(active),
                "calibrated",
                len(self.rows),
                note=f"{self.rows['owner'].nunique()} distinct owners in the file",
            )
            observed_max = int(reps["max_open"].max())
            p90 = float(reps["p90_open"].max())
            cap = max(int(self.base_sc.sales.ae.max_open_opportunities), observed_max)
            self.put(
                ae,
                "max_open_opportunities",
                cap,
                f"lower bound {observed_max} observed (max over reps; P90 {p90:g}); "
                f"base {self.base_sc.sales.ae.max_open_opportunities}",
                "sales.ae.max_open_opportunities",
            )
            _param(
                self.cal,
                "sales.ae.max_open_opportunities",
                cap,
                "calibrated" if cap > self.base_sc.sales.ae.max_open_opportunities else "assumed (from base)",
                len(self.rows),
                note=f"observed max {observed_max}, P90 {p90:g} (a lower bound)",
            )

    def hires(self) -> None:
        """The base's hires: dropped (listed in the report), or with ``--shift-hires`` moved to keep their offset."""
        hires_base = self.base_sc.sales.ae.hires
        if not hires_base:
            _param(self.cal, "sales.ae.hires", "none", "assumed (from base)", note="the base plans no hires")
            return
        ae = self.sales["ae"]
        listed = ", ".join(f"{h.count} on {h.date}" for h in hires_base)
        if not self.settings.shift_hires:
            # The base's hiring plan is another company's: carried over it would add AEs nobody planned.
            ae["hires"] = tomlkit.array()
            ae["hires"].comment(f"dropped: the base's hires ({listed}); --shift-hires keeps them")
            self.cal.dropped.append(f"sales.ae.hires: the base's hires ({listed}); --shift-hires keeps them")
            _param(self.cal, "sales.ae.hires", listed, "dropped (from base)", note="--shift-hires keeps them")
            return
        shift = dt.timedelta(days=(self.cal.start_date - self.base_sc.start_date).days)
        hires = tomlkit.array()
        for h in hires_base:
            t = tomlkit.inline_table()
            t.update({"date": h.date + shift, "count": h.count})
            hires.append(t)
        ae["hires"] = hires
        ae["hires"].comment(f"assumed: the base's hires moved by {shift.days} days (--shift-hires)")
        self.cal.notes.append(
            f"sales.ae.hires: the base's hires ({listed}) moved by {shift.days} days to keep their offset from "
            "start_date (--shift-hires)"
        )
        _param(self.cal, "sales.ae.hires", listed, "assumed (from base)", note=f"moved by {shift.days} days")

    def volumes(self) -> None:
        """Lead volumes: from the leads export, else the base's scaled to the observed opportunities."""
        # Volumes: leads per source from the leads export, else scaled so the base yields the observed opportunities.
        first = self.rows["created"].min().normalize()
        opp_months = fitting.arrivals_by_month(self.rows["created"], first, self.cut - pd.Timedelta(days=1))
        season, season_note = fitting.seasonality(opp_months)
        opp_months["seasonality_multiplier"] = [season[m - 1] if season else 1.0 for m in opp_months["calendar_month"]]
        self.cal.tables["arrivals.csv"] = opp_months.assign(kind="opportunities", source="(all)")
        observed_rate = opp_months["count"].sum() / opp_months["days_observed"].sum() * fitting.DAYS_PER_MONTH
        base_rate = len(self.base_opps) / self.base_months
        sources = self.doc["sources"]
        if self.cal.leads is not None:
            _volumes_from_leads(self.cal, self.base_sc, sources, self.sales, self.cut, self.put, self.base_leads)
        from_leads = any(f"sources.{name}.leads_per_month" in self.touched for name in self.base_sc.sources)
        if not from_leads:
            # No volume from a leads export: every source scaled so the base's funnel gives the observed
            # opportunities (a first guess; :meth:`capacity` fits the factor by simulation).
            k = observed_rate / base_rate if base_rate > 0 else 1.0
            for sname, src in self.base_sc.sources.items():
                self.scaled_volumes[sname] = src.leads_per_day_mean * fitting.DAYS_PER_MONTH * k
            self.cal.notes.append(
                f"volumes: the base's funnel gives {base_rate:.1f} opportunities/month, the CRM {observed_rate:.1f}: "
                f"every source scaled x{k:.3f} as a first guess, then fitted by simulation (flow_fit.csv)"
            )
        _param(
            self.cal,
            "opportunities_per_month",
            _r(observed_rate),
            "observed only",
            len(self.rows),
            note=f"base run: {base_rate:.1f}; seasonality {season_note}",
        )

    def pipeline(self) -> None:
        """The initial pipeline: the deals open at the as-of date, each at the fit of the average deal."""
        # Initial pipeline: the deals open at the as-of date. CRMs record no fit, and an open deal
        # without one would draw it from prospecting.fit (the fit of AE-sourced deals, not of the
        # qualified leads that make most opportunities), winning too rarely. Each deal gets instead
        # the fit at which the calibrated win_rate gives the estimated win probability of an average
        # opportunity, so the pipeline's expected wins are the data's (a single p per deal gives a
        # binomial count, slightly wider than the true mixture: erring on the wide side).
        open_rows = self.rows[(self.outcome == "open").to_numpy()]
        pipeline_fit = fitting.fit_for_win_probability(self.w["competing_risks"], self.at_half, self.fit_effect)
        pipeline = pd.DataFrame(
            {
                "id": open_rows["id"].to_numpy(),
                "age_days": np.round(_days(pd.Series(self.cut, index=open_rows.index), open_rows["created"]), 3),
                "deal_size": open_rows["amount"].to_numpy(),
                "fit": np.full(len(open_rows), round(pipeline_fit, 4)),
                "persona": [s if s in self.personas else "buyer" for s in open_rows["segment"]],
                "owner": open_rows["owner"].to_numpy(),
            }
        )
        self.cal.pipeline = pipeline
        self.cal.pipeline_supported = "initial_pipeline" in Scenario.model_fields
        if self.cal.pipeline_supported:
            section = tomlkit.table()
            section.add(
                tomlkit.comment(
                    f"calibrated: {len(pipeline)} deals open at the end of {self.cal.as_of}, ages in days on start_date"
                )
            )
            section["file"] = self.settings.pipeline_file
            self.doc["initial_pipeline"] = section
            self.touched.add("initial_pipeline")
        else:
            self.cal.notes.append(
                f"initial pipeline: {len(pipeline)} open deals written to {self.settings.pipeline_file}, "
                "but this funnelsim has no [initial_pipeline] section yet, so the scenario does not load them"
            )
        _param(
            self.cal,
            "initial_pipeline",
            f"{len(pipeline)} open deals",
            "calibrated" if self.cal.pipeline_supported else "observed only",
            len(pipeline),
            note=f"fit {pipeline_fit:.4f} for every deal: win probability {self.w['competing_risks']:.4f} "
            f"at win_rate {self.at_half:.4f}, fit_effect {self.fit_effect:g} (CRMs record no fit)",
        )

    def capacity(self) -> None:
        """SDRs and AE slots sized for the observed flow; volumes and prospecting fitted by simulation."""
        from funnelsim.calibrate import flow, selfcheck

        lead_in = selfcheck.lead_in_days(self.base_sc.nurture.max_nurture_days)
        mid_stream = any(f.kind in diagnostics.MID_STREAM for f in self.cal.truncation)
        p90 = float(self.cal.best.dist.ppf(0.9))
        window = selfcheck.history_window(self.cal.observed, self.cut, lead_in, p90, mid_stream)
        self.cal.window = window
        raw = selfcheck.window_raw(self.doc, window)
        target = self._target(window)
        start = self._start_knobs(raw, target)
        fit = flow.fit_flow(
            raw,
            self.scaled_volumes,
            start,
            target,
            seed=FIT_SEED,
            budget_seconds=self.settings.budget_seconds,
            progress=self.settings.phase,
        )
        self.cal.flow = fit
        if len(fit.rounds):
            self.cal.tables["flow_fit.csv"] = fit.rounds
        _write_knobs(self, fit, start, target)

    def _target(self, window: Any) -> Any:
        """The observed flow over the window's measured months, and the AE-sourced share to aim at."""
        from funnelsim.calibrate import flow

        months = self.cal.observed
        start = pd.PeriodIndex(months["month"], freq="M").start_time
        inside = np.asarray((start >= window.measure_from) & (start < window.measure_to))
        if not months["full"].any():  # no full month: the whole export
            inside = np.ones(len(months), dtype=bool)
        days = float((window.measure_to - window.measure_from) / pd.Timedelta(days=1))
        rate = float(months.loc[inside, "opportunities"].sum()) / max(days, 1.0)
        observed_share = flow.observed_prospecting_share(self.rows["source"])
        run = self.base_run
        base = flow.base_flow(self.base_sc, run.events, run.attributes["source"], run.levels)
        share, how = (
            (observed_share, "observed (the source column names AE-sourced deals)")
            if observed_share is not None
            else (base["prospecting_share"], "assumed (the base run's share)")
        )
        self.base_requests_per_lead = base["requests_per_lead"]
        return flow.Target(
            opportunities_per_day=rate,
            prospecting_share=share,
            share_how=how,
            sdr_utilisation=base["sdr_utilisation"],
            start_day=window.day(window.measure_from),
            end_day=window.day(window.measure_to),
            cycle_mean_days=float(self.cal.best.mean),
            owners_observed=self.owners_observed,
            scale_marketing=bool(self.scaled_volumes),
        )

    def _start_knobs(self, raw: dict[str, Any], target: Any) -> Any:
        """The analytic first guess: SDRs for the base's MQLs per lead at these volumes, AE slots by Little's law."""
        from funnelsim.calibrate import flow

        knobs = flow.Knobs(
            volume_factor=1.0,
            prospecting_rate=float(self.base_sc.prospecting.opportunities_per_ae_per_month),
            sdr_count=int(self.base_sc.handoff.sdr.count),
            ae_count=int(self.sales["ae"]["count"]),
            ae_max_open=int(self.sales["ae"]["max_open_opportunities"]),
        )
        scenario = flow.window_scenario(raw, knobs, self.scaled_volumes)
        work = scenario.handoff.sdr.work_days.mean
        load = self.base_requests_per_lead * flow.marketing_leads_per_day(scenario) * work
        need = flow.ae_slots_needed(target.opportunities_per_day, target.cycle_mean_days)
        count, cap = knobs.ae_count, knobs.ae_max_open
        if count * cap < need:
            if target.owners_observed:
                cap = math.ceil(need / max(count, 1))
            else:
                count = math.ceil(need / cap)
        sdr = flow.sdr_count_for(load, target.sdr_utilisation)
        return replace(knobs, sdr_count=sdr, ae_count=count, ae_max_open=cap)

    def finish(self) -> None:
        """Dates and labels, what is assumed from the base, the header, and the parameters table."""
        self.doc["start_date"] = self.cal.start_date
        self.doc["start_date"].comment(f"calibrated: the day after the as-of date {self.cal.as_of} (counted whole)")
        self.doc["name"] = self.settings.name
        self.doc["description"] = (
            f"Calibrated from {self.cal.opportunities.path.name} on {self.cal.as_of} (base: {self.cal.base_path.name})."
        )
        assumed = [
            k for k in ("personas", "nurture", "qualification", "handoff", "recycling", "prospecting") if k in self.doc
        ]
        for key in assumed:
            _param(self.cal, key, "", "assumed (from base)")
            # a comment is one line: a file name may hold a line break (TOML strings are escaped by tomlkit)
            self.doc[key].comment(f"assumed: from base {_one_line(self.cal.base_path.name)}")
        for sname in self.base_sc.sources:
            if f"sources.{sname}.leads_per_month" not in self.touched:
                _param(self.cal, f"sources.{sname}", "", "assumed (from base)")
        for key in ("fit_effect", "queue", "patience_days", "deal_size_by_persona"):
            if f"sales.{key}" not in self.touched:
                _param(self.cal, f"sales.{key}", "", "assumed (from base)")
        if "sales.opportunity_rate" not in self.touched:
            _param(
                self.cal,
                "sales.opportunity_rate",
                "",
                "assumed (from base)",
                note="needs a leads export with SQL and opportunity dates",
            )
        for key in ("ramp", "attrition_per_year", "backfill_days", "cost_per_year"):
            _param(self.cal, f"sales.ae.{key}", "", "assumed (from base)")
        header = tomlkit.document()
        header.add(tomlkit.comment(f"Calibrated by `funnelsim calibrate` from CRM exports as of {self.cal.as_of}."))
        header.add(
            tomlkit.comment("Keys marked 'calibrated' come from the data (rows used and 95% CIs on their line);")
        )
        header.add(
            tomlkit.comment(
                f"everything else, and every section marked 'assumed', is from the base {self.cal.base_path.name}."
            )
        )
        header.add(tomlkit.comment(f"The full report (fits, messy rows, figures) is {REPORT_WHERE}."))
        header.add(tomlkit.nl())
        self.cal.document = tomlkit.parse(tomlkit.dumps(header) + tomlkit.dumps(self.doc))
        self.cal.tables["parameters.csv"] = pd.DataFrame(self.cal.parameters).astype({"value": str, "rows": str})


def _write_knobs(filler: _Filler, fit: FlowFit, start: Any, target: Any) -> None:
    """Put the fitted volumes, prospecting rate, SDRs and AE slots into the scenario, each with how it was set."""
    k = fit.knobs
    how = "fitted (simulation)" if fit.simulated else "calibrated"
    why = f"{fit.note} (flow_fit.csv)" if fit.simulated else fit.note
    per_month = target.opportunities_per_day * fitting.DAYS_PER_MONTH
    sources = filler.doc["sources"]
    for name, first in filler.scaled_volumes.items():
        value = _r(first * k.volume_factor)
        _set_volume(
            sources,
            name,
            value,
            filler.put,
            f"{how}: scaled so the simulated history gives the observed {per_month:.1f} opportunities/month",
        )
        _param(
            filler.cal,
            f"sources.{name}.leads_per_month",
            value,
            how,
            len(filler.rows),
            note=f"{why}; persona mix, fit and cost from the base",
        )
    if start.prospecting_rate > 0:
        prospecting = filler.doc["prospecting"]
        filler.put(
            prospecting,
            "opportunities_per_ae_per_month",
            _r(k.prospecting_rate),
            f"{how}: AE-sourced share {target.prospecting_share:.0%} of opportunities, {target.share_how}",
            "prospecting.opportunities_per_ae_per_month",
        )
        _param(
            filler.cal,
            "prospecting.opportunities_per_ae_per_month",
            _r(k.prospecting_rate),
            how,
            note=f"AE-sourced share {target.prospecting_share:.3f}, {target.share_how}; {why}",
        )
    _write_teams(filler, fit, k, target)


def _write_teams(filler: _Filler, fit: FlowFit, k: Any, target: Any) -> None:
    """The SDR team (always sized: an export does not record it) and the AE slots when Little's law raised them."""
    from funnelsim.calibrate.flow import UTILISATION_TARGET

    sdr = filler.doc["handoff"]["sdr"]
    base_sdr = filler.base_sc.handoff.sdr
    load = _last(fit, "sdr_offered_load")
    loaded = f"offered load {load:.2f} SDR-days/day" if math.isfinite(load) else "offered load from the base's MQLs"
    note = (
        f"{loaded} at <= {UTILISATION_TARGET:.0%} utilisation; work_days from the base (mean "
        f"{base_sdr.work_days.mean:g} d); base had {base_sdr.count}"
    )
    filler.put(sdr, "count", k.sdr_count, f"sized (from flow): {note}", "handoff.sdr.count")
    _param(filler.cal, "handoff.sdr.count", k.sdr_count, "sized (from flow)", note=note)
    ae = filler.sales["ae"]
    need = _r(target.opportunities_per_day * target.cycle_mean_days / UTILISATION_TARGET)
    little = (
        f"Little's law: {target.opportunities_per_day * fitting.DAYS_PER_MONTH:.1f} opportunities/month x "
        f"{target.cycle_mean_days:.1f} d cycle at <= {UTILISATION_TARGET:.0%} needs {need:g} slots"
    )
    if k.ae_max_open != int(ae["max_open_opportunities"]):
        filler.put(
            ae,
            "max_open_opportunities",
            k.ae_max_open,
            f"sized (from flow): {little}",
            "sales.ae.max_open_opportunities",
        )
        _param(filler.cal, "sales.ae.max_open_opportunities", k.ae_max_open, "sized (from flow)", note=little)
    if k.ae_count != int(ae["count"]):
        filler.put(ae, "count", k.ae_count, f"sized (from flow): {little}", "sales.ae.count")
        _param(filler.cal, "sales.ae.count", k.ae_count, "sized (from flow)", note=f"{little}; no owner column")


def _last(fit: FlowFit, column: str) -> float:
    """The last simulated round's ``column`` (NaN when nothing was simulated)."""
    return float(fit.rounds[column].iloc[-1]) if len(fit.rounds) else math.nan


def _check(cal: Calibration, settings: _Settings) -> None:
    """Simulate the calibrated scenario over its history window and compare it month by month (:mod:`.selfcheck`)."""
    from funnelsim.calibrate import selfcheck
    from funnelsim.model.loading import parse_scenario

    assert cal.window is not None
    window = parse_scenario(selfcheck.window_raw(cal.document, cal.window), "calibrated scenario (history window)")
    cal.check = selfcheck.self_check(
        window,
        cal.observed,
        cal.window.wins_from,
        runs=settings.check_runs,
        pool=settings.pool,
        budget_seconds=settings.budget_seconds,
        start=cal.window.describe(),
        progress=settings.phase,
    )
    if len(cal.check.table):
        cal.tables["selfcheck.csv"] = cal.check.table


def _set_volume(sources: Any, name: str, leads_per_month: float, put: Any, comment: str) -> None:
    """Give source ``name`` its calibrated monthly volume (the one volume key it may have)."""
    for key in ("leads_per_week", "leads_per_day"):
        if key in sources[name]:
            del sources[name][key]
    put(sources[name], "leads_per_month", leads_per_month, comment, f"sources.{name}.leads_per_month")


def _volumes_from_leads(
    cal: Calibration, base_sc: Any, sources: Any, sales: Any, cut: pd.Timestamp, put: Any, base_leads: pd.DataFrame
) -> None:
    """Leads per month per source (matching the base's source names), seasonality, and conversions."""
    assert cal.leads is not None
    lr = cal.leads.rows
    late = lr["created"] >= cut
    for line in lr.index[late]:
        cal.leads.issues.append(
            Issue(cal.leads.path.name, int(line), "created_after_as_of", cal.leads.columns["created"], "")
        )
    lr = lr[~late]
    _lead_volumes(cal, base_sc, sources, cut, put, lr)
    _lead_conversions(cal, base_sc, sales, cut, put, lr, base_leads)


def _lead_volumes(cal: Calibration, base_sc: Any, sources: Any, cut: pd.Timestamp, put: Any, lr: pd.DataFrame) -> None:
    """Leads per month and seasonality of each source the base knows (others are reported, not simulated)."""
    first = lr["created"].min().normalize()
    norm = {s.lower().replace(" ", "_"): s for s in base_sc.sources}
    observed = lr["source"].fillna("").astype(str)
    matched = observed.str.lower().str.replace(" ", "_").map(norm)
    frames = []
    if matched.notna().any():
        for sname, group in lr.groupby(matched):
            monthly = fitting.arrivals_by_month(group["created"], first, cut - pd.Timedelta(days=1))
            rate = monthly["count"].sum() / monthly["days_observed"].sum() * fitting.DAYS_PER_MONTH
            season, note = fitting.seasonality(monthly)
            _set_volume(
                sources,
                sname,
                _r(rate),
                put,
                f"calibrated: {len(group)} leads over {monthly['days_observed'].sum()} days",
            )
            _param(
                cal,
                f"sources.{sname}.leads_per_month",
                _r(rate),
                "calibrated",
                len(group),
                _poisson_ci(len(group), monthly["days_observed"].sum()),
            )
            if season is not None:
                arr = tomlkit_array(season)
                sources[sname]["seasonality"] = arr
                sources[sname]["seasonality"].comment(f"calibrated: {note}")
                _param(cal, f"sources.{sname}.seasonality", season, "calibrated", len(group), note=note)
            else:
                _param(cal, f"sources.{sname}.seasonality", "", "assumed (from base)", note=note)
            monthly["seasonality_multiplier"] = [season[m - 1] if season else 1.0 for m in monthly["calendar_month"]]
            frames.append(monthly.assign(kind="leads", source=sname))
    for other in sorted(set(observed[matched.isna()])):
        n = int((observed == other).sum())
        _param(
            cal,
            f"leads from source {other or '(blank)'}",
            n,
            "observed only",
            n,
            note="not a source of the base; add it by hand",
        )
    if frames:
        cal.tables["arrivals.csv"] = pd.concat([cal.tables["arrivals.csv"], *frames], ignore_index=True)


def _lead_conversions(
    cal: Calibration, base_sc: Any, sales: Any, cut: pd.Timestamp, put: Any, lr: pd.DataFrame, base_leads: pd.DataFrame
) -> None:
    """Conversions between stages: SQL to opportunity sets the scenario's rate, the others are reported."""
    # Conversions: only leads old enough to have had their chance (the base's nurture window / 30 days).
    conv: list[dict[str, Any]] = []
    mature_lead = lr["created"] < cut - pd.Timedelta(days=float(base_sc.nurture.max_nurture_days))
    steps = [
        ("lead_to_mql", mature_lead, lr["mql"].notna()),
        ("mql_to_sql", lr["mql"].notna() & (lr["mql"] < cut - pd.Timedelta(days=30)), lr["sql"].notna()),
        ("sql_to_opportunity", lr["sql"].notna() & (lr["sql"] < cut - pd.Timedelta(days=30)), lr["converted"]),
    ]
    b = base_leads[base_leads["source"].astype(str) != "prospecting"]
    base_ratio = {
        "lead_to_mql": b["mql"].notna().mean(),
        "mql_to_sql": b["sql"].notna().sum() / max(b["mql"].notna().sum(), 1),
        "sql_to_opportunity": b["opportunity"].notna().sum() / max(b["sql"].notna().sum(), 1),
    }
    for step, denominator, success in steps:
        n = int(denominator.sum())
        s = int((denominator & success).sum())
        if n == 0:
            continue
        beta = fitting.beta_conversion(s, n)
        conv.append({"step": step, **beta, "base_run": float(base_ratio[step])})
    cal.tables["conversions.csv"] = pd.DataFrame(conv)
    for row in conv:
        if row["step"] == "sql_to_opportunity":
            # The scenario's one direct conversion rate: the AE's discovery call.
            value = {"dist": "beta", "a": row["a"], "b": row["b"]}
            put(
                sales,
                "opportunity_rate",
                value,
                f"calibrated: {row['successes']} of {row['trials']} SQLs became opportunities, "
                f"Beta(s+1, n-s+1), 95% CI {row['ci_low']:.3f}-{row['ci_high']:.3f}",
                "sales.opportunity_rate",
            )
            _param(
                cal,
                "sales.opportunity_rate",
                round(row["mean"], 4),
                "calibrated",
                row["trials"],
                (row["ci_low"], row["ci_high"]),
                f"SQLs at least 30 days before the as-of date; base run {row['base_run']:.4f}",
            )
        else:
            _param(
                cal,
                row["step"],
                round(row["mean"], 4),
                "observed only",
                row["trials"],
                (row["ci_low"], row["ci_high"]),
                f"base run {row['base_run']:.4f}; set by thresholds, follow-up and speed to lead, not one rate",
            )


def _one_line(text: str) -> str:
    """``text`` with control characters (line breaks above all) shown as ``?``: safe in a TOML comment."""
    return "".join("?" if ord(c) < 32 or ord(c) == 127 else c for c in text)


def tomlkit_array(values: list[float]) -> Any:
    import tomlkit

    return tomlkit.array(str(values))


def _poisson_ci(count: int, days: float) -> tuple[float, float]:
    from scipy import stats

    scale = fitting.DAYS_PER_MONTH / days if days else math.nan
    lo = stats.chi2.ppf(0.025, 2 * count) / 2 if count else 0.0
    hi = stats.chi2.ppf(0.975, 2 * count + 2) / 2
    return float(lo * scale), float(hi * scale)


def _r(x: float) -> float:
    return float(f"{x:.5g}")
