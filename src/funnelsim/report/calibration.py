"""Writing a calibration: the scenario file, its pipeline CSV and the report, all or nothing.

``calibrate --out DIR`` writes one folder, as ``--out`` does on every command
(:func:`write_calibration_folder`, through :func:`funnelsim.report.folder.write_atomically`)::

    DIR/scenario.toml       the calibrated scenario (commented; loads with load_scenario)
    DIR/pipeline.csv        the deals open on the as-of date (the scenario's [initial_pipeline])
    DIR/report.md, fits.csv, parameters.csv, messy_rows.csv, ... and figures/

The layout of earlier releases (``--out NAME.toml``, deprecated, :func:`write_calibration`) puts
three outputs side by side::

    NAME.toml               the calibrated scenario (commented; loads with load_scenario)
    NAME.pipeline.csv       the deals open on the as-of date (the scenario's [initial_pipeline])
    NAME.calibration/       report.md, fits.csv, parameters.csv, messy_rows.csv, ... and figures/

None of them is replaced unless ``force``; the report folder goes through
:func:`funnelsim.report.folder.write_atomically` (a staging folder renamed into place), and the two
files are first written and the scenario loaded from a staging folder beside them, then
renamed into place, so a failure leaves the old outputs as they were.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from funnelsim.calibrate import REPORT_WHERE
from funnelsim.calibrate.readers import CalibrationError
from funnelsim.report.folder import OutputExistsError, check_target, save_figures, write_atomically, write_csv

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from funnelsim.calibrate import Calibration

__all__ = [
    "FOLDER_PIPELINE",
    "FOLDER_SCENARIO",
    "outputs_for",
    "report_markdown",
    "selfcheck_wide",
    "stages_line",
    "write_calibration",
    "write_calibration_folder",
]

FOLDER_SCENARIO = "scenario.toml"
FOLDER_PIPELINE = "pipeline.csv"
"""The scenario and its open pipeline in the folder of ``calibrate --out DIR``."""


def outputs_for(out: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """``(scenario, pipeline CSV, report folder)`` paths for ``--out``."""
    scenario = Path(os.path.abspath(out))
    if scenario.suffix != ".toml":
        raise CalibrationError(f"--out must name a .toml scenario file, got {str(out)!r}")
    stem = scenario.with_suffix("")
    return scenario, stem.with_name(stem.name + ".pipeline.csv"), stem.with_name(stem.name + ".calibration")


def check_outputs(out: str | os.PathLike[str], force: bool) -> tuple[Path, Path, Path]:
    """Refuse, before any work, outputs that exist (without ``force``) or are of the wrong kind."""
    scenario, pipeline, folder = outputs_for(out)
    for path in (scenario, pipeline):
        if path.is_dir():
            raise OutputExistsError(path, "exists and is a folder")
        if path.exists() and not force:
            raise OutputExistsError(path)
    check_target(folder, force)
    return scenario, pipeline, folder


def write_calibration(cal: Calibration, out: str | os.PathLike[str], *, force: bool = False) -> tuple[Path, Path, Path]:
    """Write the scenario, pipeline CSV and report folder for ``--out NAME.toml`` (see the module docstring)."""
    scenario, pipeline, folder = check_outputs(out, force)
    if cal.pipeline_supported:
        cal.document["initial_pipeline"]["file"] = pipeline.name
    scenario.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=scenario.parent, prefix=f".{scenario.stem}.partial-"))
    try:
        write_csv(cal.pipeline, staging / pipeline.name)
        (staging / scenario.name).write_text(cal.text(), encoding="utf-8")
        _check_loads(staging / scenario.name)
        write_atomically(folder, force, "png", lambda f: _fill_report(cal, f, scenario.name))
        os.replace(staging / pipeline.name, pipeline)
        os.replace(staging / scenario.name, scenario)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return scenario, pipeline, folder


def write_calibration_folder(
    cal: Calibration, out_dir: str | os.PathLike[str], *, force: bool = False
) -> tuple[Path, Path, Path]:
    """Write the scenario, its pipeline CSV and the report into the one folder ``out_dir``, atomically;
    ``(scenario, pipeline CSV, folder)``."""
    if cal.pipeline_supported:
        cal.document["initial_pipeline"]["file"] = FOLDER_PIPELINE

    def fill(folder: Path) -> None:
        write_csv(cal.pipeline, folder / FOLDER_PIPELINE)
        text = cal.text().replace(REPORT_WHERE, "in this folder (report.md)", 1)
        (folder / FOLDER_SCENARIO).write_text(text, encoding="utf-8")
        _check_loads(folder / FOLDER_SCENARIO)
        _fill_report(cal, folder, FOLDER_SCENARIO)

    folder = Path(os.path.abspath(write_atomically(out_dir, force, "png", fill)))
    return folder / FOLDER_SCENARIO, folder / FOLDER_PIPELINE, folder


def _check_loads(path: Path) -> None:
    """The promise of a calibration: the written scenario loads (with its pipeline) and so runs."""
    from funnelsim.model.loading import load_scenario
    from funnelsim.model.scenario import ScenarioError

    try:
        load_scenario(path)
    except ScenarioError as exc:
        raise CalibrationError(f"the calibrated scenario does not load (a bug, please report): {exc}") from None


def _fill_report(cal: Calibration, folder: Path, scenario_name: str) -> None:
    from funnelsim.report import figures as plots

    tables = dict(cal.tables)
    tables["fits.csv"] = fits_table(cal)
    tables["messy_rows.csv"] = cal.messy_rows()
    for name, frame in tables.items():
        write_csv(frame, folder / name)
    (folder / "report.md").write_text(report_markdown(cal, scenario_name), encoding="utf-8")
    rows = cal.opportunities.rows
    size = tables["deal_sizes.csv"].iloc[0]
    charts: dict[str, Figure] = {
        "cycle_km": plots.calibration_cycle_chart(_thin(tables["km.csv"], CHART_POINTS))[0],
        "arrivals": plots.calibration_arrivals_chart(tables["arrivals.csv"])[0],
    }
    if size["n"] >= 2:
        won = rows["outcome"] == "won"
        amounts = rows.loc[won, "amount"] if won.sum() >= 20 else rows["amount"]
        charts["deal_size"] = plots.calibration_deal_size_chart(amounts, size["mean"], size["lognormal_mean"])[0]
    if "selfcheck.csv" in tables:
        charts["selfcheck"] = plots.calibration_selfcheck_chart(tables["selfcheck.csv"])[0]
    save_figures(charts, folder / "figures", "png", f"calibrated {cal.as_of}")
    from funnelsim.report.html import write_report
    from funnelsim.report.pages import calibration_page

    write_report(folder, "calibrate", calibration_page(cal, tables, scenario_name))


CHART_POINTS = 4000
"""Rows of a curve drawn: a chart a few hundred pixels wide shows no more, and a million-deal export's
Kaplan-Meier table (a row per distinct close time) would otherwise cost matplotlib some 400 MB."""


def _thin(table: pd.DataFrame, points: int) -> pd.DataFrame:
    """At most ``points`` rows of ``table``, evenly spaced, the first and last kept (the CSV keeps all)."""
    if len(table) <= points:
        return table
    return table.iloc[np.unique(np.linspace(0, len(table) - 1, points).round().astype(int))]


def _days(x: float) -> str:
    return "–" if pd.isna(x) else f"{x:.1f}"


def stages_line(table: pd.DataFrame) -> str:
    """One line for the printed summary: each stage's Kaplan-Meier median days (``>`` its longest spell
    when more than half are still open)."""
    parts = []
    for r in table.to_dict("records"):
        median = f"{r['median_days']:.1f}" if pd.notna(r["median_days"]) else f">{r['max_days']:.0f}"
        parts.append(f"{r['stage']} {median}")
    return "median days " + ", ".join(parts) + f" (KM, open spells censored; {int(table['spells'].sum())} spells)"


def fits_table(cal: Calibration) -> pd.DataFrame:
    """One row per cycle-time fit: family, AIC, log-likelihood, parameters, mean and median with CIs."""
    rows = []
    for rank, f in enumerate([*cal.fits, cal.naive_closed_only]):
        naive = f is cal.naive_closed_only
        names, values = list(f.natural), list(f.natural.values())
        rows.append(
            {
                "family": f.family + (" (closed deals only)" if naive else ""),
                "chosen": rank == 0,
                "aic": f.aic if not naive else float("nan"),
                "loglik": f.loglik,
                "param1": names[0],
                "value1": values[0],
                "param2": names[1],
                "value2": values[1],
                "n_closed": f.n_closed,
                "n_open": f.n_open,
                "mean_days": f.mean,
                "mean_ci_low": f.mean_ci[0],
                "mean_ci_high": f.mean_ci[1],
                "median_days": f.median,
                "median_ci_low": f.median_ci[0],
                "median_ci_high": f.median_ci[1],
            }
        )
    return pd.DataFrame(rows)


def report_markdown(cal: Calibration, scenario_name: str = "scenario.toml") -> str:
    """The human summary: inputs, rows used and rejected, fits, win rate, what is assumed."""
    lines = [
        f"# Calibration of {scenario_name}",
        "",
        f"As of the end of **{cal.as_of}** (everything dated then or earlier has happened); the scenario starts "
        f"**{cal.start_date}**. Base: `{cal.base_path.name}`.",
        "",
    ]
    if cal.warnings:
        lines += ["**Warnings**", ""] + [f"- {w}" for w in cal.warnings] + [""]
    for section in (
        _inputs_section,
        _history_section,
        _cycle_section,
        _win_section,
        _deal_size_section,
        _capacity_section,
        _selfcheck_section,
        _stages_section,
        _parameters_section,
    ):
        lines += section(cal)
    return "\n".join(lines) + "\n"


def _inputs_section(cal: Calibration) -> list[str]:
    """The input files, how they were read, and the rejected rows by reason."""
    lines: list[str] = []
    o = cal.opportunities
    lines += [
        "## Inputs",
        "",
        "| file | dialect | rows read | rows used | rejected | dates | decimal mark |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in (o, cal.leads, cal.history):
        if t is None:
            continue
        dates = ", ".join(f"`{c}` {f}" for c, f in t.date_conventions.items())
        lines.append(
            f"| `{t.path.name}` | {t.dialect} ({t.dialect_how}) | {t.rows_read} | {t.rows_read - len(t.issues)} "
            f"| {len(t.issues)} | {dates} | `{t.decimal_mark}` |"
        )
    messy = cal.messy_rows()
    if len(messy):
        lines += ["", "### Rejected rows by reason (all in `messy_rows.csv`)", "", "| file | reason | rows | lines |"]
        lines.append("|---|---|---|---|")
        for (file, meaning), group in messy.groupby(["file", "meaning"], sort=False):
            shown = ", ".join(str(x) for x in group["line"].head(5)) + (", ..." if len(group) > 5 else "")
            lines.append(f"| `{file}` | {meaning} | {len(group)} | {shown} |")
    return lines


def _history_section(cal: Calibration) -> list[str]:
    """Stale open deals and the signs of a truncated history."""
    lines = ["", "## History: stale deals and truncation (`stale_deals.csv`)", ""]
    if cal.stale is not None:
        lines.append(f"- {cal.stale.describe()}")
    if cal.truncation:
        lines += [f"- truncated history ({f.kind}): {f.message}" for f in cal.truncation]
    else:
        lines.append(
            "- no sign of a truncated history (the first month ramps up, no import on day one, no stage change "
            "before the first deal, the as-of date within a week of the latest date)"
        )
    return lines


def _deal_size_section(cal: Calibration) -> list[str]:
    """The observed amounts, resampled: sample mean with its bootstrap interval, against a lognormal's mean."""
    table = cal.tables.get("deal_sizes.csv")
    if table is None or table.empty:
        return []
    lines = [
        "",
        "## Deal size (`deal_sizes.csv`, `figures/deal_size.png`)",
        "",
        'The scenario resamples the observed amounts (`dist = "empirical"`): its mean is the sample mean. '
        "A lognormal fitted to them is shown for comparison only.",
        "",
        "| segment | persona | deals | mean (95% bootstrap CI) | median | lognormal MLE mean | values listed |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in table.to_dict("records"):
        lines.append(
            f"| {r['segment']} | {r['persona'] or '–'} | {r['n']} | {r['mean']:,.0f} ({r['mean_ci_low']:,.0f}–"
            f"{r['mean_ci_high']:,.0f}) | {r['median']:,.0f} | {r['lognormal_mean']:,.0f} | {r['support']} |"
        )
    return lines


def _capacity_section(cal: Calibration) -> list[str]:
    """How volumes, prospecting, SDRs and AE slots were fitted to the observed flow."""
    fit = cal.flow
    if fit is None:
        return []
    lines = ["", "## Capacity and volumes (`flow_fit.csv`)", "", f"- {fit.note}"]
    if len(fit.rounds):
        lines += [
            f"- each round: {fit.runs} runs of the history window (seed {fit.seed})",
            "",
            "| round | volume factor | prospecting / AE / month | SDRs | AEs x max open | opportunities / month "
            "(observed) | AE-sourced share (target) | SDR utilisation | AE utilisation |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in fit.rounds.to_dict("records"):
            lines.append(
                f"| {r['round']} | {r['volume_factor']:.3f} | {r['prospecting_per_ae_per_month']:.3f} | "
                f"{r['sdr_count']} | {r['ae_count']} x {r['ae_max_open']} | {r['opportunities_per_month']:.1f} "
                f"({r['target_per_month']:.1f}) | {r['prospecting_share']:.1%} ({r['target_prospecting_share']:.1%}) | "
                f"{r['sdr_utilisation']:.0%} | {r['ae_utilisation']:.0%} |"
            )
    return lines


def selfcheck_wide(table: pd.DataFrame) -> pd.DataFrame:
    """The self-check table one row per month: each quantity's observed value and simulated P10–P90, flagged."""
    rows = []
    for month, group in table.groupby("month", sort=True):
        row = {"month": month}
        for r in group.to_dict("records"):
            mark = {"below": " ▼", "above": " ▲"}.get(r["position"], "")
            shown = "not compared" if not r["compared"] else f"{_number(r['sim_p10'])}–{_number(r['sim_p90'])}"
            row[r["quantity"]] = f"{_number(r['observed'])}{mark} [{shown}]"
        rows.append(row)
    return pd.DataFrame(rows)


def _number(x: float) -> str:
    if pd.isna(x):
        return "–"
    return f"{x:,.0f}"


def _selfcheck_section(cal: Calibration) -> list[str]:
    """Observed months against the simulated P10–P90, the rule and the verdict."""
    check = cal.check
    if check is None:
        return []
    lines = ["", "## Self-check: the calibrated scenario over its own history (`selfcheck.csv`)", ""]
    if check.passed is None:
        return [*lines, f"- {check.note}"]
    verdict = "**passed**" if check.passed else "**FAILED** (" + "; ".join(check.failures) + ")"
    lines += [
        f"- {verdict}; {check.runs} runs, seed {check.seed}; {check.start}",
        f"- rule: {check.rule}",
    ]
    if check.note:
        lines.append(f"- {check.note}")
    lines += ["", "| quantity | months compared | outside P10–P90 | most allowed |", "|---|---|---|---|"]
    for r in check.verdicts.to_dict("records"):
        note = "" if r["can_fail"] else " (too few months to fail)"
        lines.append(f"| {r['quantity']} | {r['months']} | {r['outside']} | {r['allowed']}{note} |")
    wide = selfcheck_wide(check.table)
    lines += [
        "",
        "Observed, ▼ below / ▲ above the simulated [P10–P90]:",
        "",
        "| month | opportunities | wins | won value |",
        "|---|---|---|---|",
    ]
    for r in wide.to_dict("records"):
        lines.append(f"| {r['month']} | {r['opportunities']} | {r['wins']} | {r['won_value']} |")
    return lines


def _cycle_section(cal: Calibration) -> list[str]:
    """The sales-cycle fits, open deals censored, against the biased closed-only fit."""
    lines: list[str] = []
    b = cal.best
    lines += [
        "",
        "## Sales cycle (open deals right-censored; `fits.csv`, `km.csv`, `figures/cycle_km.png`)",
        "",
        "| family | AIC | mean days (95% CI, delta method) | median days (95% CI) |",
        "|---|---|---|---|",
    ]
    for f in cal.fits:
        lines.append(
            f"| {f.family}{' (chosen)' if f is b else ''} | {f.aic:.1f} | {f.mean:.1f} ({f.mean_ci[0]:.1f}–"
            f"{f.mean_ci[1]:.1f}) | {f.median:.1f} ({f.median_ci[0]:.1f}–{f.median_ci[1]:.1f}) |"
        )
    n = cal.naive_closed_only
    lines.append(
        f"| lognormal, closed deals only (biased) | – | {n.mean:.1f} ({n.mean_ci[0]:.1f}–{n.mean_ci[1]:.1f}) "
        f"| {n.median:.1f} |"
    )
    return lines


def _win_section(cal: Calibration) -> list[str]:
    """The win rate by competing risks against the naive one."""
    lines: list[str] = []
    w = cal.win
    lines += [
        "",
        "## Win rate (`win_rate.csv`)",
        "",
        f"- competing risks (Aalen–Johansen, eventual): **{w['competing_risks']:.3f}** "
        f"(95% bootstrap CI {w['ci_low']:.3f}–{w['ci_high']:.3f}); share still open after the last close "
        f"{w['open_sf_at_end']:.3f}",
        f"- naive won / (won + lost): {w['naive']:.3f} (Wilson CI {w['naive_ci_low']:.3f}–{w['naive_ci_high']:.3f})",
        f"- {w['won']} won, {w['lost']} lost, {w['open']} open at the as-of date",
        "",
    ]
    return lines


def _stages_section(cal: Calibration) -> list[str]:
    """Time in each stage, from the stage history (when given)."""
    lines: list[str] = []
    st = cal.tables.get("stages.csv")
    if st is not None:
        lines += [
            "## Time in each stage (stage history; `stages.csv`; reported, not simulated)",
            "",
            "| stage | spells | ended | open (censored) | KM median days (95% CI) | restricted mean | "
            "mean of ended only |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in st.to_dict("records"):
            lines.append(
                f"| {r['stage']} | {r['spells']} | {r['ended']} | {r['open']} | {_days(r['median_days'])} "
                f"({_days(r['median_ci_low'])}–{_days(r['median_ci_high'])}) | {_days(r['restricted_mean_days'])} "
                f"| {_days(r['mean_days_ended'])} |"
            )
        lines.append("")
    return lines


def _parameters_section(cal: Calibration) -> list[str]:
    """Every scenario value with its status, rows and interval, then the notes."""
    lines: list[str] = []
    lines += [
        "## Scenario values (`parameters.csv`)",
        "",
        "| key | value | status | rows | 95% CI | note |",
        "|---|---|---|---|---|---|",
    ]
    for p in cal.parameters:
        ci = "" if pd.isna(p["ci_low"]) else f"{p['ci_low']:.4g}–{p['ci_high']:.4g}"
        lines.append(f"| `{p['path']}` | {p['value']} | {p['status']} | {p['rows']} | {ci} | {p['note']} |")
    if cal.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in cal.notes]
    return lines
