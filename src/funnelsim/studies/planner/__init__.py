"""The reverse planner: from a revenue goal back to lead quotas, headcount and hand-off terms.

``plan(scenario, goal, confidence)`` returns ``(Plan, PlanDiagnostics)`` or raises
:class:`PlanInfeasible`. The rooms: :mod:`.period` (the period and the simulated time
frame), :mod:`.levers` (what a plan may change), :mod:`.waterfall` (the analytic funnel
worked backwards), :mod:`.search` (the simulated search on common random numbers),
:mod:`.plan` (the entry point and the joint-target sheet), :mod:`.errors`.
"""

from funnelsim.studies.planner.errors import PlanError, PlanInfeasible
from funnelsim.studies.planner.levers import (
    LEVERS,
    MAX_EXTRA_AES,
    MAX_LEAD_MULTIPLIER,
    Lever,
    apply_changes,
    planned_changes,
)
from funnelsim.studies.planner.period import Period, frame, period_revenue
from funnelsim.studies.planner.plan import TEAMS, Plan, PlanDiagnostics, plan
from funnelsim.studies.planner.search import MAX_EVALUATIONS, STEP, Candidate
from funnelsim.studies.planner.waterfall import (
    STAGES,
    TARGET_UTILISATION,
    PipelineFlow,
    SourceYield,
    Waterfall,
    ae_revenue_ceiling,
    analytic_multiplier,
    pipeline_flow,
    source_yields,
    waterfall,
)

__all__ = [
    "LEVERS",
    "MAX_EVALUATIONS",
    "MAX_EXTRA_AES",
    "MAX_LEAD_MULTIPLIER",
    "STAGES",
    "STEP",
    "TARGET_UTILISATION",
    "TEAMS",
    "Candidate",
    "Lever",
    "Period",
    "PipelineFlow",
    "Plan",
    "PlanDiagnostics",
    "PlanError",
    "PlanInfeasible",
    "SourceYield",
    "Waterfall",
    "ae_revenue_ceiling",
    "analytic_multiplier",
    "apply_changes",
    "frame",
    "period_revenue",
    "pipeline_flow",
    "plan",
    "planned_changes",
    "source_yields",
    "waterfall",
]
