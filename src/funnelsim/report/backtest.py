"""Writing a back-test (``funnelsim backtest --out DIR``): one folder, complete or not at all
(:func:`funnelsim.report.folder.write_atomically`).

Files (money in the scenario's currency; every CSV has a header row and no index column):

``backtest.csv``
    One row per quarter and metric (``wins``, ``won_value``): ``quarter, label, start, end``
    (``end`` excluded), ``metric, runs, actual, mean, p10, p50, p90, inside, band_share, pit,
    crps, pinball_p10, pinball_p50, pinball_p90, pinball`` (:mod:`funnelsim.studies.backtest`).
``forecast.csv``
    One row per replication and quarter: ``replication, quarter, wins, won_value``.
``actuals.csv``
    One row per quarter: ``quarter, label, wins, won_value, won_without_amount`` from the export.
``monthly.csv``
    The forecast's months per replication (as ``run --runs`` writes them), from the cut-off.
``calibrated.toml``, ``calibrated.pipeline.csv``
    The scenario fitted on the data before the cut-off and its open pipeline, as ``calibrate``
    writes them (``funnelsim run calibrated.toml`` runs it).
``calibration.md``, ``parameters.csv``
    The calibration's report and its table of values (see docs/outputs.md, calibration).
``figures/wins.png``, ``figures/won_value.png``
    :func:`funnelsim.report.figures.backtest_chart` of each metric.
``manifest.json``
    As for every folder, with ``command: "backtest"``, the cut-off, quarters, seed, runs,
    coverage, facts and notes; ``scenario`` is the forecast's (horizon to the last quarter's end).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from funnelsim.calibrate.backtest import PIPELINE_FILE
from funnelsim.report import pages
from funnelsim.report.calibration import report_markdown
from funnelsim.report.folder import save_figures, write_atomically, write_csv, write_report_and_manifest
from funnelsim.studies.backtest import METRICS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from funnelsim.studies.backtest import Backtest

__all__ = ["write_backtest"]


def write_backtest(result: Backtest, out_dir: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write ``result`` into the folder ``out_dir`` (see the module docstring for its files)."""
    return write_atomically(out_dir, force, "png", lambda folder: _fill(result, folder))


def _fill(result: Backtest, folder: Path) -> None:
    from funnelsim.report.figures import backtest_chart

    write_csv(result.scores, folder / "backtest.csv")
    write_csv(result.forecast, folder / "forecast.csv")
    write_csv(result.actuals, folder / "actuals.csv")
    write_csv(result.reps.monthly, folder / "monthly.csv")
    cal = result.calibration
    if cal is not None:
        write_csv(cal.pipeline, folder / PIPELINE_FILE)
        (folder / "calibrated.toml").write_text(cal.text(), encoding="utf-8")
        (folder / "calibration.md").write_text(report_markdown(cal, "calibrated.toml"), encoding="utf-8")
        write_csv(cal.tables["parameters.csv"], folder / "parameters.csv")
    currency = result.scenario.currency
    charts: dict[str, Figure] = {
        metric: backtest_chart(result.forecast, result.actuals, metric, currency)[0] for metric in METRICS
    }
    save_figures(charts, folder / "figures", "png", f"back-test as of {result.as_of}, seed {result.reps.seed}")
    doc = result.to_json()
    run: dict[str, Any] = {"command": "backtest", "complete": True}
    run |= {key: doc[key] for key in ("export", "as_of", "cutoff", "seed", "runs", "quarters", "coverage", "facts")}
    run["notes"] = doc["notes"]
    page = lambda manifest: pages.backtest_page(result, manifest)  # noqa: E731
    write_report_and_manifest(result.scenario, folder, "png", run, "backtest", page)
