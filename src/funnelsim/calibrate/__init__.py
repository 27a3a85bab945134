"""Calibrate a scenario from CRM exports: read (:mod:`.readers`), fit (:mod:`.fitting`), write (:mod:`.report`).

:func:`calibrate` turns an opportunities export (and optionally leads and stage history)
into a scenario: the sales cycle (censored fits, chosen by AIC), the win rate (competing
risks), deal sizes, lead volumes and seasonality, the SQL->opportunity conversion (Beta),
the AE team and the open pipeline at the as-of date. Everything the data cannot tell is
kept from a base scenario and listed as *assumed* in the report. See docs/calibrate.md.

The as-of date ``D`` means the state at 00:00 on ``D``: everything dated before ``D``
has happened, a deal closed on ``D`` or later is still open, and the calibrated scenario
starts on ``D`` with the open deals as its initial pipeline.
"""

from __future__ import annotations

import datetime as dt
import math
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomlkit

from funnelsim.calibrate import fitting
from funnelsim.calibrate.export import export_leads, export_opportunities
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
from funnelsim.model.scenario import Scenario

__all__ = [
    "Calibration",
    "CalibrationError",
    "calibrate",
    "export_leads",
    "export_opportunities",
]


def _bundled(name: str) -> Path:
    """A bundled scenario: inside the installed package (``funnelsim/scenarios``, see
    pyproject.toml), or in the source tree's ``scenarios/`` for an editable install."""
    package = Path(__file__).resolve().parents[1]
    for folder in (package / "scenarios", package.parents[1] / "scenarios"):
        if (folder / name).is_file():
            return folder / name
    return package / "scenarios" / name  # missing: load_scenario names it in its error


BASELINE = _bundled("baseline.toml")
MIN_HALF_DAY = 0.5  # a deal closed the day it was created counts as half a day (dates have no time)
ACTIVE_DAYS = 90  # an owner with a deal created in the last 90 days, or one open, is on the team


@dataclass
class Calibration:
    """What :func:`calibrate` found: the scenario document, the pipeline and the report tables.

    ``parameters`` has one row per scenario key decided (``path, value, status, rows,
    ci_low, ci_high, note``) with ``status`` in ``calibrated``, ``assumed (from base)``,
    ``observed only``; the other tables are written to the report folder as CSV.
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

    @property
    def best(self) -> fitting.CycleFit:
        return self.fits[0]

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
    progress: Callable[[str], None] | None = None,
) -> Calibration:
    """Fit a scenario to CRM exports.

    Parameters
    ----------
    opportunities, leads, history
        CSV exports (see docs/calibrate.md for the columns of each dialect).
    fmt
        ``salesforce``, ``hubspot`` or ``generic``; detected from the headers when None.
    mapping
        ``--map`` items: ``"Column=field"`` or ``"Stage label=won|lost|open"``.
    as_of
        The date of the export (``YYYY-MM-DD``); default: the day after the latest date.
    base
        Scenario for everything the data cannot tell (default: the bundled baseline).
    strict
        Turn the first messy row into a :class:`CalibrationError`.
    pipeline_file
        File name the scenario's ``[initial_pipeline]`` refers to (written next to it).
    progress
        Called with the name of each phase as it starts (a million rows take about a minute).

    Raises
    ------
    CalibrationError
        Missing files or columns, ambiguous dates, too little data, a messy row with ``strict``.
    """
    phase = progress or (lambda _: None)
    base_path, base_sc = _load_base(base)
    phase("reading the exports")
    columns, stages = parse_mapping(mapping)
    opps = read_opportunities(opportunities, fmt, columns, stages, dayfirst, date_format, strict)
    lead_table = read_leads(leads, fmt, columns, dayfirst, date_format, strict) if leads is not None else None
    hist = read_history(history, fmt, columns, dayfirst, date_format, strict) if history is not None else None
    phase("fitting the sales cycle and the win rate (bootstrap)")
    as_of = _resolve_as_of(as_of, opps, lead_table)
    cut = pd.Timestamp(as_of)
    rows = _created_before(opps, cut, as_of)
    outcome, duration = _censored(rows, cut)
    fits, naive, km = _cycle_fits(duration, outcome, opps, as_of)
    win = fitting.win_rate(duration, outcome.to_numpy())
    cif = fitting.aalen_johansen(duration, outcome.to_numpy())

    cal = Calibration(
        document=None,
        pipeline=pd.DataFrame(),
        as_of=as_of,
        base_path=base_path,
        opportunities=opps,
        leads=lead_table,
        history=hist,
        fits=fits,
        naive_closed_only=naive,
        win=win,
        tables={"km.csv": km, "win_rate.csv": cif},
    )
    if hist is not None:
        _stages(cal, hist, cut, stages, set(rows["id"]))
    phase("simulating the base for the fits and volumes CRMs do not record")
    base_leads, base_opps, months = _base_run(base_sc)
    _fill(cal, base_sc, rows, outcome, duration, cut, base_opps, months, base_leads, pipeline_file, name)
    return cal


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


def _base_run(base_sc: Any) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """One run of the base: its leads, its opportunities (CRMs record no fit: theirs stand in) and its months."""
    from funnelsim.engine import simulate

    base_leads = simulate(base_sc, seed=base_sc.seed if base_sc.seed is not None else 0).leads
    return base_leads, base_leads[base_leads["opportunity"].notna()], base_sc.horizon_days / fitting.DAYS_PER_MONTH


def _resolve_as_of(as_of: str | dt.date | None, opps: Table, lead_table: Table | None) -> dt.date:
    """The as-of date: given (checked), else the day after the latest date in the exports."""
    if isinstance(as_of, str):
        as_of = as_of_date(as_of)
    elif as_of is not None:
        as_of = check_as_of(as_of)
    if as_of is not None:
        return as_of
    rows = opps.rows
    latest = pd.concat([rows["created"], rows["closed"]]).max()
    if lead_table is not None:
        latest = max(latest, lead_table.rows[["created", "mql", "sql", "opportunity"]].max().max())
    if pd.isna(latest):
        raise CalibrationError(f"{opps.path}: no usable rows (every row was rejected; see the messy rows)")
    return typing.cast(dt.date, (latest.normalize() + pd.Timedelta(days=1)).date())


def _created_before(opps: Table, cut: pd.Timestamp, as_of: dt.date) -> pd.DataFrame:
    """The deals created before the as-of date; later ones are counted as messy rows."""
    rows = opps.rows
    late = rows["created"] >= cut
    for line in rows.index[late]:
        opps.issues.append(Issue(opps.path.name, int(line), "created_after_as_of", opps.columns["created"], ""))
    rows = rows[~late].copy()
    if len(rows) < 10:
        raise CalibrationError(f"{opps.path}: only {len(rows)} usable opportunities before {as_of}; need at least 10")
    return rows


def _censored(rows: pd.DataFrame, cut: pd.Timestamp) -> tuple[pd.Series, np.ndarray]:
    """Each deal's outcome at the as-of date and its duration in days (still-open deals censored there)."""
    # Deals closed on or after the as-of date were still open then: censored at the as-of date.
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
        raise CalibrationError(f"{opps.path}: only {len(closed_t)} closed deals before {as_of}; need at least 10")
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
    base_opps: pd.DataFrame,
    base_months: float,
    base_leads: pd.DataFrame,
    pipeline_file: str,
    name: str,
) -> None:
    """Decide every scenario value: calibrated, observed only, or assumed from the base."""
    filler = _Filler(
        cal, base_sc, rows, outcome, duration, cut, base_opps, base_months, base_leads, pipeline_file, name
    )
    for step in (
        filler.cycle,
        filler.win_rate,
        filler.deal_size,
        filler.reps,
        filler.hires,
        filler.volumes,
        filler.pipeline,
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
    base_opps: pd.DataFrame
    base_months: float
    base_leads: pd.DataFrame
    pipeline_file: str
    name: str
    doc: Any = None
    sales: Any = None
    touched: set[str] = field(default_factory=set)
    w: dict[str, Any] = field(default_factory=dict)
    at_half: float = math.nan
    fit_effect: float = math.nan
    personas: set[str] = field(default_factory=set)

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
        """Deal sizes: lognormal over won deals (or all), and per segment that names a persona."""
        # Deal size: won deals when there are enough of them (revenue is what they book).
        won_amounts = self.rows.loc[self.outcome == "won", "amount"].dropna()
        pool, which = (
            (won_amounts, "won deals") if len(won_amounts) >= 20 else (self.rows["amount"].dropna(), "all deals")
        )
        size = fitting.fit_lognormal_sizes(pool.to_numpy())
        segments = []
        self.personas = set(self.base_sc.personas)
        by_persona: dict[str, Any] = {}
        if self.rows["segment"].ne("").any():
            for seg, group in self.rows[self.outcome == "won" if which == "won deals" else slice(None)].groupby(
                "segment"
            ):
                if seg == "":
                    continue
                s = fitting.fit_lognormal_sizes(group["amount"].to_numpy(float))
                segments.append({"segment": seg, **s, "persona": seg if seg in self.personas else ""})
                if seg in self.personas and s["n"] >= 10:
                    by_persona[seg] = {"dist": "lognormal", "mean": _r(s["mean"]), "sd": _r(s["sd"])}
        self.cal.tables["deal_sizes.csv"] = pd.DataFrame([{"segment": "(all)", **size, "persona": ""}, *segments])
        if size["n"] >= 2:
            self.put(
                self.sales,
                "deal_size",
                {"dist": "lognormal", "mean": _r(size["mean"]), "sd": _r(size["sd"])},
                f"calibrated: lognormal from {size['n']} {which}; mean {size['mean']:,.0f} "
                f"(95% CI {size['mean_ci_low']:,.0f}-{size['mean_ci_high']:,.0f})",
                "sales.deal_size",
            )
            _param(
                self.cal,
                "sales.deal_size",
                {"mean": size["mean"], "sd": size["sd"]},
                "calibrated",
                size["n"],
                (size["mean_ci_low"], size["mean_ci_high"]),
                which,
            )
        if by_persona:
            table = tomlkit.inline_table()
            for persona, s in by_persona.items():
                inner = tomlkit.inline_table()
                inner.update(s)
                table[persona] = inner
            self.sales["deal_size_by_persona"] = table
            self.sales["deal_size_by_persona"].comment(
                "calibrated: lognormal per segment matching a persona (>= 10 deals)"
            )
            self.touched.add("sales.deal_size_by_persona")
            for persona, s in by_persona.items():
                _param(self.cal, f"sales.deal_size_by_persona.{persona}", s, "calibrated", note="segment column")
        elif segments:
            _param(
                self.cal,
                "sales.deal_size_by_persona",
                "",
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
        """The base's hires, moved to keep their offset from the new start date."""
        ae = self.sales["ae"]
        # Hires keep their offset from the start, so a plan written for the base still reads the same.
        shift = dt.timedelta(days=(self.cal.as_of - self.base_sc.start_date).days)
        if self.base_sc.sales.ae.hires:
            hires = tomlkit.array()
            for h in self.base_sc.sales.ae.hires:
                t = tomlkit.inline_table()
                t.update({"date": h.date + shift, "count": h.count})
                hires.append(t)
            ae["hires"] = hires
            self.cal.notes.append(
                f"sales.ae.hires: the base's hires moved by {shift.days} days to keep their offset from start_date"
            )

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
        elif base_rate > 0:
            k = observed_rate / base_rate
            for sname, src in self.base_sc.sources.items():
                new = src.leads_per_day_mean * fitting.DAYS_PER_MONTH * k
                _set_volume(
                    sources, sname, _r(new), self.put,
                    f"scaled x{k:.3f}: base funnel gives {base_rate:.1f} opportunities/month, CRM {observed_rate:.1f} "
                    "(no leads export)",
                )  # fmt: skip
                _param(
                    self.cal,
                    f"sources.{sname}.leads_per_month",
                    _r(new),
                    "calibrated",
                    len(self.rows),
                    note=f"scaled x{k:.3f} from opportunity volume; persona mix, fit, cost from base",
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
                    f"calibrated: {len(pipeline)} deals open on {self.cal.as_of}, ages in days on start_date"
                )
            )
            section["file"] = self.pipeline_file
            self.doc["initial_pipeline"] = section
            self.touched.add("initial_pipeline")
        else:
            self.cal.notes.append(
                f"initial pipeline: {len(pipeline)} open deals written to {self.pipeline_file}, "
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

    def finish(self) -> None:
        """Dates and labels, what is assumed from the base, the header, and the parameters table."""
        self.doc["start_date"] = self.cal.as_of
        self.doc["start_date"].comment("calibrated: the as-of date of the CRM export")
        self.doc["name"] = self.name
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
        for key in ("ramp", "attrition_per_year", "backfill_days", "cost_per_year", "hires"):
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
        header.add(
            tomlkit.comment(
                "The full report (fits, messy rows, figures) is in the .calibration folder beside this file."
            )
        )
        header.add(tomlkit.nl())
        self.cal.document = tomlkit.parse(tomlkit.dumps(header) + tomlkit.dumps(self.doc))
        self.cal.tables["parameters.csv"] = pd.DataFrame(self.cal.parameters).astype({"value": str, "rows": str})


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
