"""The reverse planner: from a revenue goal back to lead quotas, headcount and hand-off terms."""
