"""What can go wrong when planning: a request that cannot be carried out, or a goal out of reach.

Two kinds of failure, kept apart because the CLI answers them differently: a
:class:`PlanError` is the user's to fix (a bad goal, period or option); a
:class:`PlanInfeasible` is the funnel's answer (no plan within reach meets the goal) and
names the binding constraint.
"""

from __future__ import annotations

__all__ = ["PlanError", "PlanInfeasible"]


class PlanError(ValueError):
    """A planning request that cannot be carried out as asked (bad goal, period, option)."""


class PlanInfeasible(Exception):
    """No plan within reach meets the goal; ``constraint`` names what binds."""

    def __init__(self, constraint: str, explanation: str, remedy: str) -> None:
        self.constraint, self.explanation, self.remedy = constraint, explanation, remedy
        super().__init__(f"{constraint}: {explanation} To make it feasible: {remedy}")
