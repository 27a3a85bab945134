"""What one run is and what it says: the :class:`~funnelsim.run.result.RunResult` tables and pure metrics over them."""
