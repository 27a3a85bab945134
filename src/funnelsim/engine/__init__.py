"""The simulation engine: the only package that imports SimPy.

:func:`simulate` is the fast engine; :func:`simulate_reference` is the
straightforward one-process-per-lead model kept as its test oracle.
"""

from funnelsim.engine.fast import simulate, warm_start
from funnelsim.engine.reference import simulate_reference

__all__ = ["simulate", "simulate_reference", "warm_start"]
