"""The fast engine against the one-process-per-lead model it replaces (the test oracle).

``simulate`` decides arrivals and nurture with array work; ``simulate_reference``
advances every lead touch by touch as its own SimPy process. A user relies on the
shortcut changing nothing but speed: over independent replications both give the
same distributions of MQLs, SQLs, opportunities, wins and revenue (two-sample
Kolmogorov-Smirnov tests, p > 0.01, fixed seeds). Per-lead quantities decided before
the hand-off (days from lead to MQL, fit of the MQLs) are independent across leads,
so they are pooled over replications, which gives those tests much more power.

A KS test that never fails proves nothing, so the same machinery must also tell a
deliberately changed scenario apart (lower win rate, weaker nurture): p < 0.01.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from funnelsim import RunResult, Scenario, parse_scenario, simulate, simulate_reference, summary
from funnelsim.model.paths import apply_overrides
from scaled import TENTH

BASELINE = Path(__file__).resolve().parent.parent / "scenarios" / "baseline.toml"
ALPHA = 0.01
ENGINE_SEED, REFERENCE_SEED = 101, 202  # different seeds: the two samples must be independent

# The baseline company at a tenth of its volume and team, every mechanism still on
# (seasonality, nurture, recycling, patience, hires, attrition, prospecting).
SCALED_DOWN = list(TENTH)
PER_RUN = ("mqls", "sqls", "opportunities", "wins", "revenue", "dormant", "partner_sqls", "events_sqls")
PER_LEAD = ("days_to_mql", "mql_fit")

Engine = Callable[..., RunResult]


def scaled_baseline(*overrides: str) -> Scenario:
    with BASELINE.open("rb") as handle:
        raw: dict[str, Any] = tomllib.load(handle)
    # Cold: the engines are compared on the mechanics; a warm start adds a burn-in both run alike
    # (engine.warmup) and a window both cut alike (RunResult.build).
    return parse_scenario(apply_overrides(raw, [*SCALED_DOWN, "start=cold", *overrides]), "baseline/10")


@dataclass(frozen=True)
class Sample:
    """Per-replication totals, and per-lead values pooled over replications."""

    runs: pd.DataFrame
    leads: dict[str, np.ndarray]


def sample(engine: Engine, scenario: Scenario, seed: int, replications: int) -> Sample:
    rows, days_to_mql, mql_fit = [], [], []
    for replication in range(replications):
        result = engine(scenario, seed=seed, replication=replication)
        row = summary(result.events)
        row["dormant"] = int((result.events["event"] == "dormant").sum())
        leads = result.leads
        # SQLs of a source straight to sales (partner, qualified by source in the baseline) and of a nurtured one.
        for name in ("partner", "events"):
            row[f"{name}_sqls"] = int(leads.loc[leads["source"] == name, "sql"].notna().sum())
        rows.append(row)
        # Leads that went through nurture (not straight-to-sales sources nor prospected deals).
        nurtured = leads[leads["source"].isin(["inbound", "events"]) & leads["mql"].notna()]
        days_to_mql.append((nurtured["mql"] - nurtured["created"]).to_numpy())
        mql_fit.append(nurtured["fit"].to_numpy())
    return Sample(pd.DataFrame(rows), {"days_to_mql": np.concatenate(days_to_mql), "mql_fit": np.concatenate(mql_fit)})


def ks_pvalues(a: Sample, b: Sample) -> dict[str, float]:
    out = {name: float(stats.ks_2samp(a.runs[name], b.runs[name]).pvalue) for name in PER_RUN}
    out.update({name: float(stats.ks_2samp(a.leads[name], b.leads[name]).pvalue) for name in PER_LEAD})
    return out


def _describe(a: Sample, b: Sample) -> str:
    means = pd.DataFrame({"engine": a.runs[list(PER_RUN)].mean(), "reference": b.runs[list(PER_RUN)].mean()})
    return means.to_string()


# ---------------------------------------------------------------------------
# Default run: 30 replications of each model


FAST_REPLICATIONS = 30


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return scaled_baseline()


@pytest.fixture(scope="module")
def reference(scenario: Scenario) -> Sample:
    return sample(simulate_reference, scenario, REFERENCE_SEED, FAST_REPLICATIONS)


@pytest.fixture(scope="module")
def engine(scenario: Scenario) -> Sample:
    return sample(simulate, scenario, ENGINE_SEED, FAST_REPLICATIONS)


def _check_same(engine: Sample, reference: Sample) -> None:
    pvalues = ks_pvalues(engine, reference)
    failed = {name: p for name, p in pvalues.items() if p <= ALPHA}
    assert not failed, f"distributions differ (KS p <= {ALPHA}): {failed}\n{_describe(engine, reference)}"


def test_engine_matches_reference_model(engine: Sample, reference: Sample) -> None:
    """Same distributions from the fast engine and the per-lead model (30 replications each).

    Per run: MQLs, SQLs, opportunities, wins, revenue and dormant leads; per lead
    (pooled): days from lead to MQL and fit of the MQLs of nurtured sources.
    """
    assert reference.runs["wins"].sum() > 0 and engine.runs["wins"].sum() > 0
    _check_same(engine, reference)


def test_ks_detects_a_lower_win_rate(reference: Sample) -> None:
    """Power check: the engine on the same funnel with win rate 0.25 -> 0.08 is told apart.

    Arrivals and nurture are unchanged (their tests must still pass), while wins and
    revenue per run come out different at p < 0.01.
    """
    changed = sample(simulate, scaled_baseline("sales.win_rate=0.08"), ENGINE_SEED, FAST_REPLICATIONS)
    pvalues = ks_pvalues(changed, reference)
    assert pvalues["wins"] < ALPHA and pvalues["revenue"] < ALPHA, pvalues
    assert pvalues["days_to_mql"] > ALPHA and pvalues["mql_fit"] > ALPHA, pvalues


def test_ks_detects_weaker_nurture(reference: Sample) -> None:
    """Power check on the nurture shortcut: a touch lift of 0.14 instead of 0.15 is told apart.

    A 7% weaker nurture shows in the MQLs per run and in the pooled per-lead days to
    MQL and fit of the MQLs, the quantities the fast engine computes by array work
    instead of touch by touch.
    """
    changed = sample(simulate, scaled_baseline("nurture.touch_lift=0.14"), ENGINE_SEED, FAST_REPLICATIONS)
    pvalues = ks_pvalues(changed, reference)
    assert max(pvalues["mqls"], pvalues["days_to_mql"], pvalues["mql_fit"]) < ALPHA, pvalues


# ---------------------------------------------------------------------------
# Qualification by source (sources.<name>.qualified_by)

# Sales' bar raised so that it turns many MQLs down, and events leads (nurtured) qualified
# by their source like the partner referrals (straight to sales): every way sales decides
# is used, on a first pass (decided before the run by the fast engine) and on a recycled one.
BY_SOURCE = ("qualification.sql.threshold=0.7", "sources.events.qualified_by=source")


@pytest.fixture(scope="module")
def by_source_reference() -> Sample:
    return sample(simulate_reference, scaled_baseline(*BY_SOURCE), REFERENCE_SEED, FAST_REPLICATIONS)


def test_engine_matches_reference_model_with_sources_qualifying(by_source_reference: Sample) -> None:
    """Same distributions from both models when sales qualifies some sources by source and
    turns others down by score (30 replications each), per source's SQLs included."""
    engine = sample(simulate, scaled_baseline(*BY_SOURCE), ENGINE_SEED, FAST_REPLICATIONS)
    assert engine.runs["events_sqls"].sum() > 0 and by_source_reference.runs["events_sqls"].sum() > 0
    _check_same(engine, by_source_reference)


def test_ks_detects_a_source_qualified_by_score(by_source_reference: Sample) -> None:
    """Power check: the engine with the events leads qualified by score again is told apart
    on their SQLs per run (about half as many pass sales' raised bar)."""
    changed = sample(simulate, scaled_baseline(BY_SOURCE[0]), ENGINE_SEED, FAST_REPLICATIONS)
    pvalues = ks_pvalues(changed, by_source_reference)
    assert pvalues["events_sqls"] < ALPHA, pvalues
    assert pvalues["partner_sqls"] > ALPHA, pvalues


# ---------------------------------------------------------------------------
# Slow: 150 replications of each model


@pytest.mark.slow
def test_engine_matches_reference_model_many_runs() -> None:
    """The oracle comparison again with 150 replications of each model (more power)."""
    scenario = scaled_baseline()
    _check_same(
        sample(simulate, scenario, ENGINE_SEED + 1, 150),
        sample(simulate_reference, scenario, REFERENCE_SEED + 1, 150),
    )
