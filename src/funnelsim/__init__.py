"""funnelsim: plan one shared revenue target for marketing and sales by simulating the funnel."""

from importlib.metadata import PackageNotFoundError, version

from .engine import simulate, simulate_reference
from .metrics import summary
from .results import RunResult
from .scenario import Scenario, ScenarioError, load_scenario, parse_scenario

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
