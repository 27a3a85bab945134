"""Studies built on many runs: replications, comparisons, sweeps, sensitivity, plans, and the work they may take."""
