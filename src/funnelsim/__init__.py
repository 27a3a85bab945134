"""funnelsim: plan one shared revenue target for marketing and sales by simulating the funnel."""

from importlib.metadata import PackageNotFoundError, version

from funnelsim.engine import simulate, simulate_reference
from funnelsim.model.loading import load_scenario, parse_scenario
from funnelsim.model.scenario import Scenario, ScenarioError
from funnelsim.run.metrics import summary
from funnelsim.run.result import RunResult

try:
    __version__ = version("funnelsim")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = [
    "RunResult",
    "Scenario",
    "ScenarioError",
    "__version__",
    "load_scenario",
    "parse_scenario",
    "simulate",
    "simulate_reference",
    "summary",
]
