"""Every figure funnelsim draws, one module per family: a run (:mod:`.run`), many runs
(:mod:`.montecarlo`), recurring revenue (:mod:`.recurring`), a plan (:mod:`.planner`), a comparison
(:mod:`.compare`), a sweep or sensitivity (:mod:`.sweep`), a calibration (:mod:`.calibration`), a
back-test (:mod:`.backtest`) and the sales team's quota attainment and pipeline views (:mod:`.sales`);
their shared look is :mod:`.style`.

Every function takes tidy tables (from :mod:`funnelsim.run.metrics`, or the per-replication
tables of the Monte Carlo runs) and an optional matplotlib ``ax`` to draw into, and
returns ``(fig, ax)``. The exceptions are :func:`revenue_distribution`, which always
draws its own figure of two panels side by side (histogram and ECDF) and returns
``(fig, (hist_ax, ecdf_ax))``, and :func:`arr_bridge_figure`, the two ARR charts side by side
(``(fig, (waterfall_ax, months_ax))``). None of them calls ``plt.show()`` or touches pyplot's
state: a new figure is a bare :class:`matplotlib.figure.Figure`, so a batch of runs accumulates no
open figures and any backend (including a headless one) works. Save with ``fig.savefig(path)``.
"""

from funnelsim.report.figures.backtest import backtest_chart
from funnelsim.report.figures.calibration import (
    calibration_arrivals_chart,
    calibration_cycle_chart,
    calibration_deal_size_chart,
    calibration_selfcheck_chart,
)
from funnelsim.report.figures.compare import (
    compare_funnel_chart,
    compare_leakage_chart,
    compare_revenue_chart,
    lever_waterfall_chart,
)
from funnelsim.report.figures.montecarlo import fan_chart, funnel_range_chart, revenue_distribution
from funnelsim.report.figures.planner import plan_waterfall_chart, quota_chart, tradeoff_chart
from funnelsim.report.figures.recurring import arr_bridge_figure, arr_by_month_chart, arr_waterfall_chart
from funnelsim.report.figures.run import capacity_chart, funnel_chart, leakage_chart, revenue_chart
from funnelsim.report.figures.sales import attainment_chart, pipeline_views_chart
from funnelsim.report.figures.style import INFO_REASONS
from funnelsim.report.figures.sweep import sweep_chart, sweep_heatmap, tornado_chart

__all__ = [
    "INFO_REASONS",
    "arr_bridge_figure",
    "arr_by_month_chart",
    "arr_waterfall_chart",
    "attainment_chart",
    "backtest_chart",
    "calibration_arrivals_chart",
    "calibration_cycle_chart",
    "calibration_deal_size_chart",
    "calibration_selfcheck_chart",
    "capacity_chart",
    "compare_funnel_chart",
    "compare_leakage_chart",
    "compare_revenue_chart",
    "fan_chart",
    "funnel_chart",
    "funnel_range_chart",
    "leakage_chart",
    "lever_waterfall_chart",
    "pipeline_views_chart",
    "plan_waterfall_chart",
    "quota_chart",
    "revenue_chart",
    "revenue_distribution",
    "sweep_chart",
    "sweep_heatmap",
    "tornado_chart",
    "tradeoff_chart",
]
