"""The reverse planner: from a revenue goal back to lead quotas, headcount and hand-off terms.

``plan(scenario, goal, confidence)`` returns ``(Plan, PlanDiagnostics)`` or raises
:class:`PlanInfeasible`. The rooms: :mod:`.period` (the period and the simulated time
frame), :mod:`.levers` (what a plan may change), :mod:`.staffing` (a team's expected
headcount: hires, ramp, attrition), :mod:`.waterfall` (the analytic funnel worked
backwards), :mod:`.desk` (the SDR desk as a queue), :mod:`.frontier` (the both-lever
search's calibrated map of headcounts), :mod:`.search` (the simulated search on common
random numbers), :mod:`.verify` (the chosen plan on fresh seeds), :mod:`.steps` (further up a lever when
verification fails; the work budget), :mod:`.sheet` (the joint-target sheet),
:mod:`.plan` (the entry point), :mod:`.errors`.
"""

from funnelsim.studies.planner.errors import PlanError, PlanInfeasible
from funnelsim.studies.planner.levers import (
    LEVER_ALIASES,
    LEVERS,
    MAX_EXTRA_AES,
    MAX_EXTRA_SDRS,
    MAX_LEAD_MULTIPLIER,
    LeadShape,
    Lever,
    SegmentNeeds,
    apply_changes,
    lever_name,
    planned_changes,
    split_heads,
    team_size,
)
from funnelsim.studies.planner.period import GOAL_FLAGS, GOALS, Period, frame, period_revenue
from funnelsim.studies.planner.plan import TEAMS, Plan, PlanDiagnostics, plan, work_budget
from funnelsim.studies.planner.search import MAX_EVALUATIONS, STEP, Candidate
from funnelsim.studies.planner.steps import WorkBudget
from funnelsim.studies.planner.verify import (
    BLOCK,
    HALF_WIDTH,
    MAX_VERIFICATIONS,
    Verdict,
    verification_runs,
)
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
    "BLOCK",
    "GOALS",
    "GOAL_FLAGS",
    "HALF_WIDTH",
    "LEVERS",
    "LEVER_ALIASES",
    "MAX_EVALUATIONS",
    "MAX_EXTRA_AES",
    "MAX_EXTRA_SDRS",
    "MAX_LEAD_MULTIPLIER",
    "MAX_VERIFICATIONS",
    "STAGES",
    "STEP",
    "TARGET_UTILISATION",
    "TEAMS",
    "Candidate",
    "LeadShape",
    "Lever",
    "Period",
    "PipelineFlow",
    "Plan",
    "PlanDiagnostics",
    "PlanError",
    "PlanInfeasible",
    "SegmentNeeds",
    "SourceYield",
    "Verdict",
    "Waterfall",
    "WorkBudget",
    "ae_revenue_ceiling",
    "analytic_multiplier",
    "apply_changes",
    "frame",
    "lever_name",
    "period_revenue",
    "pipeline_flow",
    "plan",
    "planned_changes",
    "source_yields",
    "split_heads",
    "team_size",
    "verification_runs",
    "waterfall",
    "work_budget",
]
