"""What a scenario is: its distributions, the validated scenario, its mechanisms' equations and the analytic funnel.

Nothing here simulates: the engine reads a :class:`~funnelsim.model.scenario.Scenario`,
the planner and the tests use :mod:`~funnelsim.model.analytic` for expected yields and lags.
"""
