"""funnelsim: plan one shared revenue target for marketing and sales by simulating the funnel.

The curated API, for notebooks and scripts (each name is imported on first use, so
``import funnelsim`` stays cheap)::

    import funnelsim as fs

    scenario = fs.load_scenario("scenarios/baseline.toml", ["sales.ae.count=12"])
    one = fs.simulate(scenario, seed=1)                 # one simulated year: fs.RunResult
    many = fs.replicate(scenario, runs=200, seed=1)     # Monte Carlo: fs.Replications
    gap = fs.compare([misaligned, aligned], runs=100, seed=1)          # fs.Comparison
    plan, diagnostics = fs.plan(scenario, goal=5e6, confidence=0.8)    # fs.Plan
    grid = fs.sweep(scenario, {"qualification.mql.threshold": [0.5, 0.6]}, runs=20, seed=1)
    cal = fs.calibrate("opportunities.csv")                             # fs.Calibration

Layers, each importing only from those before it: :mod:`funnelsim.vocabulary`
(stages and events), :mod:`funnelsim.model` (what a scenario is), :mod:`funnelsim.run`
(what a run says), :mod:`funnelsim.engine` (how a run is made), :mod:`funnelsim.studies`
(many runs), :mod:`funnelsim.calibrate` (scenarios from CRM data), :mod:`funnelsim.report`
(files and figures for people), :mod:`funnelsim.cli`. See docs/architecture.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> (module, attribute): the whole public API, imported on first use.
_API = {
    "Scenario": ("funnelsim.model.scenario", "Scenario"),
    "ScenarioError": ("funnelsim.model.scenario", "ScenarioError"),
    "load_scenario": ("funnelsim.model.loading", "load_scenario"),
    "parse_scenario": ("funnelsim.model.loading", "parse_scenario"),
    "RunResult": ("funnelsim.run.result", "RunResult"),
    "summary": ("funnelsim.run.metrics", "summary"),
    "simulate": ("funnelsim.engine", "simulate"),
    "simulate_reference": ("funnelsim.engine", "simulate_reference"),
    "replicate": ("funnelsim.studies.replications", "run"),
    "Replications": ("funnelsim.studies.replications", "Replications"),
    "executor": ("funnelsim.studies.executors", "executor"),
    "compare": ("funnelsim.studies.compare", "compare"),
    "Comparison": ("funnelsim.studies.compare", "Comparison"),
    "sweep": ("funnelsim.studies.sweep", "sweep"),
    "Sweep": ("funnelsim.studies.sweep", "Sweep"),
    "sensitivity": ("funnelsim.studies.sensitivity", "sensitivity"),
    "Sensitivity": ("funnelsim.studies.sensitivity", "Sensitivity"),
    "plan": ("funnelsim.studies.planner", "plan"),
    "Plan": ("funnelsim.studies.planner", "Plan"),
    "PlanDiagnostics": ("funnelsim.studies.planner", "PlanDiagnostics"),
    "PlanInfeasible": ("funnelsim.studies.planner", "PlanInfeasible"),
    "Budget": ("funnelsim.studies.workload", "Budget"),
    "calibrate": ("funnelsim.calibrate", "calibrate"),
    "Calibration": ("funnelsim.calibrate", "Calibration"),
}

__all__ = [
    "Budget",
    "Calibration",
    "Comparison",
    "Plan",
    "PlanDiagnostics",
    "PlanInfeasible",
    "Replications",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "Sensitivity",
    "Sweep",
    "__version__",
    "calibrate",
    "compare",
    "executor",
    "load_scenario",
    "parse_scenario",
    "plan",
    "replicate",
    "sensitivity",
    "simulate",
    "simulate_reference",
    "summary",
    "sweep",
]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on demand
    __version__: str
    from funnelsim.calibrate import Calibration, calibrate
    from funnelsim.engine import simulate, simulate_reference
    from funnelsim.model.loading import load_scenario, parse_scenario
    from funnelsim.model.scenario import Scenario, ScenarioError
    from funnelsim.run.metrics import summary
    from funnelsim.run.result import RunResult
    from funnelsim.studies.compare import Comparison, compare
    from funnelsim.studies.executors import executor
    from funnelsim.studies.planner import Plan, PlanDiagnostics, PlanInfeasible, plan
    from funnelsim.studies.replications import Replications
    from funnelsim.studies.replications import run as replicate
    from funnelsim.studies.sensitivity import Sensitivity, sensitivity
    from funnelsim.studies.sweep import Sweep, sweep
    from funnelsim.studies.workload import Budget


def _version() -> str:
    """The installed distribution's version (importlib.metadata is a start-up cost of its own: read once, on demand)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("funnelsim")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        globals()[name] = _version()
        return globals()[name]
    if name not in _API:
        raise AttributeError(f"module 'funnelsim' has no attribute {name!r}")
    module, attribute = _API[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), "__version__", *_API})
