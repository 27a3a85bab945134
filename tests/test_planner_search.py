"""The both-lever search: it finds the cheapest plan of its grid without simulating what its bounds rule out.

Two kinds of check. On a *synthetic funnel* (the simulation replaced by a known revenue
model, so that every candidate's ``P(goal)`` on the search's runs can be computed for the
whole grid) the search's pick is compared with the exhaustive search over the same rungs
and lead grid. On the *real engine* (a small company, a quarter), a sequential decision
(:meth:`~funnelsim.studies.planner.search.Evaluator.decide`) gives the answer of all the
runs, and the SDR desk model moves the way the simulation does. No timing is asserted.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from funnelsim import load_scenario
from funnelsim.studies import executors
from funnelsim.studies import replications as mc
from funnelsim.studies.planner import Period, apply_changes, frame, plan, planned_changes, source_yields, waterfall
from funnelsim.studies.planner.search import STEP, TOP, Evaluator, hits_needed
from funnelsim.studies.planner.waterfall import desk_of, expected
from funnelsim.studies.workload import Budget
from scaled import TENTH_VOLUME

BASELINE = Path(__file__).resolve().parent.parent / "scenarios" / "baseline.toml"
QUARTER = Period.parse("2027-01-01:2027-03-31")
# A small company with one SDR and three AEs, started cold: its desk queues, so SDRs matter.
SMALL = (
    *TENTH_VOLUME,
    "start=cold",
    "handoff.sdr.count=1",
    "sales.ae.count=3",
    "sales.ae.hires=[]",
    "prospecting.opportunities_per_ae_per_month=0",
)
GOAL, CONFIDENCE, RUNS, SEED = 200_000.0, 0.8, 40, 11
# The synthetic funnel: mean revenue is the waterfall with a queue at the SDR desk (load factor
# TRUE_LOAD) plus what the waterfall leaves out (OFFSET), plus SDR_BONUS per SDR hired, which the
# search's model does not know (the simulation, too, gains more from an SDR than the model says);
# replication i adds SD * z_i, the same z_i for every candidate (common random numbers).
TRUE_LOAD, OFFSET, SD, SDR_BONUS = 1.4, 15_000.0, 12_000.0, 40_000.0


@pytest.fixture(scope="module")
def small():
    return load_scenario(BASELINE, SMALL)


def _z(seed: int, index: int) -> float:
    return float(np.random.default_rng([seed, index]).standard_normal())


class SyntheticFunnel:
    """Stands in for :func:`funnelsim.studies.replications.run`: revenue of a candidate from the model, one
    normal draw per replication index; ``calls`` lists the scenarios asked for, with their replications."""

    def __init__(self, base, period: Period):
        self.period = period
        self.yields = source_yields(base)
        self.calls: list[tuple[object, list[int]]] = []

    def mean(self, scenario) -> float:
        hired = sum(h.count for h in scenario.handoff.sdr.hires)
        return expected(scenario, self.period, self.yields, TRUE_LOAD).revenue + OFFSET + SDR_BONUS * hired

    def revenue(self, scenario, seed: int, indices: list[int]) -> np.ndarray:
        return self.mean(scenario) + SD * np.array([_z(seed, i) for i in indices])

    def __call__(self, scenario, runs, seed=None, pool=None, *, replications=None, **_):
        indices = list(range(runs) if replications is None else replications)
        self.calls.append((scenario, indices))
        revenue = self.revenue(scenario, seed, indices)
        waited = desk_of(scenario, self.yields).p_wait(TRUE_LOAD)
        busy = expected(scenario, self.period, self.yields, TRUE_LOAD).ae_utilisation
        table = pd.DataFrame(
            {"replication": indices, "sdr_utilisation": 0.5, "ae_utilisation": busy, "sdr_p_wait": waited}
        )
        rows = [
            {"replication": i, "month": m, **dict.fromkeys(mc.MONTHLY_COLUMNS, 0.0), "revenue": r / 3}
            for i, r in zip(indices, revenue, strict=True)
            for m in self.period.months
        ]
        return mc.Replications(scenario, seed, table, pd.DataFrame(rows), len(indices), "completed")


def test_both_lever_search_picks_the_cheapest_plan_of_its_grid(small, monkeypatch):
    """On a funnel where every candidate's P(goal) on the search's runs is known, the both-lever search picks
    a plan no more expensive than the exhaustive search over the same rungs and lead grid, never simulates a
    rung its cost bound rules out, and simulates a fraction of the grid's candidates cheaper than its pick."""
    funnel = SyntheticFunnel(small, QUARTER)
    monkeypatch.setattr(mc, "run", funnel)
    _, d = plan(small, GOAL, CONFIDENCE, runs=RUNS, seed=SEED, period=QUARTER, lead_in_months=3, lever="both")
    table = d.tradeoff
    pick = table[table["chosen"]].iloc[0]
    framed = mc.same_burn_in([frame(small, QUARTER, 3)], SEED, [frame(small, QUARTER, 3)])[0]
    need = hits_needed(RUNS, CONFIDENCE)
    z = np.array([_z(SEED, i) for i in range(RUNS)])

    def candidate(j: int, a: int, s: int):
        return apply_changes(framed, planned_changes(framed, STEP**j, a, s))

    def cost(j: int, a: int, s: int) -> float:
        return float(waterfall(candidate(j, a, s), QUARTER, yields=funnel.yields).in_period["cost"].sum())

    def reaches(j: int, a: int, s: int) -> bool:
        return int(np.sum(funnel.mean(candidate(j, a, s)) + SD * z >= GOAL)) >= need

    j_pick = round(math.log(pick["lead_multiplier"]) / math.log(STEP))
    assert reaches(j_pick, pick["extra_aes"], pick["sdrs"])
    cheaper = 0
    for row in table.itertuples():
        j = 0
        while j <= TOP and cost(j, row.extra_aes, row.sdrs) < pick["cost"]:
            assert not reaches(j, row.extra_aes, row.sdrs), (row, j)  # a cheaper plan the search missed
            cheaper, j = cheaper + 1, j + 1
    simulated = {(round(c.lead_multiplier, 9), c.extra_aes, c.sdrs) for c in d.candidates.itertuples()}
    by_bound = table[table["outcome"].str.startswith("pruned: costs more than the best plan even")]
    assert not {(c[1], c[2]) for c in simulated} & set(zip(by_bound["extra_aes"], by_bound["sdrs"], strict=True))
    assert len(by_bound) >= 1
    today = (1.0, 0, small.handoff.sdr.count)  # checked before any search
    for row in table[table["outcome"].str.startswith("pruned: short")].itertuples():
        tried = {c for c in simulated if (c[1], c[2]) == (row.extra_aes, row.sdrs) and c != today}
        assert len(tried) == 1, tried  # one decision
    assert (table["outcome"] == "reached").sum() >= 2  # a later rung was searched, and beat the first
    assert len(simulated) < cheaper / 2, (len(simulated), cheaper)


@pytest.fixture(scope="module")
def evaluator(small):
    framed = frame(small, QUARTER, 3)
    with executors.executor(1) as pool:
        yield Evaluator(
            framed, QUARTER, 120_000.0, 0.8, RUNS, SEED, pool, None, source_yields(small), Budget(), 10**6
        )  # fmt: skip


@pytest.mark.parametrize(("k", "sdrs"), [(1.0, 1), (1.3, 1), (1.0, 2), (1.6, 2)])
def test_sequential_decision_gives_the_answer_of_all_the_runs(evaluator, k, sdrs):
    """``decide`` stops a candidate's replications once the rest cannot change whether it reaches the
    confidence: its answer is the one all ``runs`` replications give, on the same seeds."""
    reached, partial = evaluator.decide(k, 0, sdrs)
    full = evaluator(k, 0, sdrs)
    assert full.runs == RUNS and reached == evaluator.ok(full)
    need = hits_needed(RUNS, 0.8)
    assert partial.hits >= need if reached else partial.hits + RUNS - partial.runs < need
    print(k, sdrs, reached, partial.runs, partial.hits, full.hits)


def test_sdr_desk_model_loses_contacts_where_the_simulation_queues(small):
    """The SDR desk model (Erlang C per day) says one SDR loses more of its MQLs' contacts to waiting than two,
    and more at a higher volume, as the simulated share of MQLs that wait does."""
    framed = frame(small, QUARTER, 3)
    yields = source_yields(small)

    def kept(k: float, sdrs: int) -> float:
        desk = desk_of(apply_changes(framed, planned_changes(framed, k, 0, sdrs)), yields)
        return float(desk.arrivals @ desk.kept(1.0)) / float(desk.arrivals.sum())

    def waited(k: float, sdrs: int) -> float:
        reps = mc.run(apply_changes(framed, planned_changes(framed, k, 0, sdrs)), 20, SEED)
        return float(reps.table["sdr_p_wait"].mean())

    assert kept(1.0, 1) < kept(1.0, 2) <= 1.0
    assert kept(2.0, 1) < kept(1.0, 1)
    assert waited(1.0, 1) > waited(1.0, 2)
    assert waited(2.0, 1) > waited(1.0, 1)
