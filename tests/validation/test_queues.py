"""Queue outputs a queueing person can check: each team's queue against Erlang C and Erlang-A.

Each desk below is exactly M/M/c, or M/M/c+M (exponential patience), for one team: Poisson
arrivals, exponential work, first come first served. It runs with the default warm start (the
burn-in is simulated and cut, so the reported year is steady from day 0), and the run-level
``p_wait``, wait of all arrivals, wait of those served and abandonment share of
:func:`~funnelsim.run.metrics.queue_visits` (what ``capacity_by_month`` reports per month) are
compared with :func:`~funnelsim.model.analytic.erlang_a` (Erlang C when nobody abandons): the
closed form must lie inside the 99% Student-t interval of the replications' values.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from funnelsim import RunResult, Scenario, parse_scenario, simulate
from funnelsim.model.analytic import ErlangA, erlang_a
from funnelsim.run.metrics import capacity_by_month, queue_visits

BASELINE = Path(__file__).resolve().parents[2] / "scenarios" / "baseline.toml"
SEED = 20271231
CONTACT = 0.9999  # the most a scenario allows (< 1), with no decay: a Poisson stream thinned by it stays Poisson
NO_DECAY = {"contact_rate_immediate": CONTACT, "knots_hours": [0.0, 1.0], "odds_multiplier": [1.0, 1.0]}


def _raw(horizon_days: float, persona: str, buying_intent: float, per_day: float, fit: float) -> dict[str, Any]:
    """The baseline with one persona and one Poisson source entering at MQL, and nothing else in the way."""
    with BASELINE.open("rb") as handle:
        raw = tomllib.load(handle)
    raw["horizon_days"] = horizon_days
    raw["personas"] = {persona: {"buying_intent": buying_intent}}
    raw["sources"] = {
        "demo": {"leads_per_day": per_day, "entry_stage": "mql", "persona_mix": {persona: 1.0}, "fit": fit}
    }
    raw["recycling"] = {"probability": 0.0}
    raw["prospecting"] = {"opportunities_per_ae_per_month": 0.0}
    raw["handoff"]["follow_up_rate"] = 1.0
    raw["handoff"]["response_delay_days"] = 0
    raw["handoff"]["speed_to_lead"] = NO_DECAY
    raw["sales"]["deal_size_by_persona"] = {}
    return raw


def sdr_desk(servers: int, work_days: float, offered_load: float, patience_days: float | None) -> Scenario:
    """MQLs straight to ``servers`` SDRs (M/M/c, +M with patience); every lead is then rejected."""
    raw = _raw(120, "researcher", 0.0, offered_load / work_days, 0.5)
    sdr: dict[str, Any] = {"count": servers, "work_days": {"dist": "exponential", "mean": work_days}}
    if patience_days is not None:
        sdr["patience_days"] = {"dist": "exponential", "mean": patience_days}
    raw["handoff"]["sdr"] = sdr
    raw["sales"]["ae"] = {"count": 1, "max_open_opportunities": 1}
    return parse_scenario(raw, f"sdr M/M/{servers}")


def ae_desk(slots: int, cycle_days: float, offered_load: float, patience_days: float) -> Scenario:
    """SQLs to ``slots`` AE slots held for an exponential cycle (M/M/c+M). Every MQL qualifies; the SDR
    step in front (50 SDRs, exponential work of 15 minutes, never queueing) passes a Poisson stream on
    (the departures of M/M/infinity are Poisson)."""
    raw = _raw(365, "buyer", 1.0, offered_load / cycle_days, 0.9)
    raw["qualification"]["sql"]["threshold"] = 0.0
    raw["handoff"]["sdr"] = {"count": 50, "work_days": {"dist": "exponential", "mean": 0.01}}
    raw["sales"].update(
        opportunity_rate=1.0,
        cycle_days={"dist": "exponential", "mean": cycle_days},
        patience_days={"dist": "exponential", "mean": patience_days},
        queue="fifo",
    )
    raw["sales"]["ae"] = {
        "count": slots,
        "max_open_opportunities": 1,
        "hires": [],
        "ramp": [1.0],
        "attrition_per_year": 0.0,
    }
    return parse_scenario(raw, f"ae M/M/{slots}+M")


def _measures(result: RunResult, team: str) -> dict[str, float]:
    visits = queue_visits(result.events, team)
    ended = visits[visits["outcome"] != "waiting"]
    served = ended[ended["outcome"] == "served"]
    return {
        "p_wait": float(visits["queued"].mean()),
        "p_abandon": float((ended["outcome"] == "abandoned").mean()),
        "wait_all": float(ended["wait"].mean()),
        "wait_served": float(served["wait"].mean()),
    }


def _check(scenario: Scenario, team: str, expected: ErlangA, runs: int, level: float = 0.99) -> None:
    """Each of the four quantities inside its ``level`` Student-t interval of the ``runs`` replications."""
    rows = [_measures(simulate(scenario, seed=SEED, replication=i), team) for i in range(runs)]
    for name in ("p_wait", "p_abandon", "wait_all", "wait_served"):
        x = np.array([row[name] for row in rows])
        want = getattr(expected, name)
        if want == 0 and not x.any():
            continue  # Erlang C: nobody abandons, and nobody did
        half = stats.t.ppf(0.5 + level / 2, runs - 1) * x.std(ddof=1) / math.sqrt(runs)
        assert abs(x.mean() - want) <= half, (
            f"{team} {name}: Erlang {want:.5g}, runs {x.mean():.5g} +- {half:.3g} ({level:.1%})"
        )


@pytest.mark.parametrize(
    ("servers", "load", "patience"),
    [(3, 2.4, None), (3, 3.3, 0.2)],
    ids=["erlang-c-3-servers-80pct", "erlang-a-3-servers-110pct"],
)
def test_sdr_queue_outputs_match_erlang(servers: int, load: float, patience: float | None) -> None:
    """P(wait), mean wait of all arrivals and of those served, abandonment: 20 warm runs of 120 days
    (about 2,900 MQLs each). The Erlang-A desk is offered more work than it can do (110%): only
    abandonment keeps its queue finite."""
    work = 0.1
    theta = 0.0 if patience is None else 1 / patience
    _check(sdr_desk(servers, work, load, patience), "sdr", erlang_a(servers, load / work, 1 / work, theta), 20)


def test_ae_queue_outputs_match_erlang_a() -> None:
    """The AE queue as M/M/6+M at 120% of its slots (cycle 20 days, patience 10): 20 warm runs of a
    year, about 130 SQLs each; 40 runs: the queue is short-lived, runs are cheap."""
    slots, cycle, load, patience = 6, 20.0, 7.2, 10.0
    expected = erlang_a(slots, CONTACT * load / cycle, 1 / cycle, 1 / patience)
    _check(ae_desk(slots, cycle, load, patience), "ae", expected, 40)


def test_monthly_columns_are_the_visits_of_the_month() -> None:
    """capacity_by_month's queue columns are queue_visits grouped by arrival month; Little's law
    ties them to the level log: mean queue = arrivals per day x mean wait of all arrivals (1%)."""
    scenario = sdr_desk(3, 0.1, 2.4, 0.5)
    result = simulate(scenario, seed=SEED)
    months = capacity_by_month(result.levels, result.events, scenario.start_date, scenario.horizon_days)
    sdr = months[months["team"] == "sdr"].reset_index(drop=True)
    visits = queue_visits(result.events, "sdr")
    assert sdr["arrivals"].sum() == len(visits)
    assert sdr["still_waiting"].sum() == (visits["outcome"] == "waiting").sum()
    days = np.array([31, 28, 31, 30])
    little = sdr["arrivals"] / days * sdr["wait_all_days"]
    full = sdr.index[:3]  # the fourth month is cut by the horizon (120 days)
    np.testing.assert_allclose(sdr.loc[full, "mean_queue"], little[full], rtol=0.05)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("servers", "load", "patience"), [(3, 2.4, None), (3, 3.3, 0.2), (8, 7.6, 0.5)], ids=["c-3", "a-3", "a-8"]
)
def test_sdr_queue_outputs_match_erlang_many_runs(servers: int, load: float, patience: float | None) -> None:
    """The SDR checks again with 100 warm runs each (an interval about 2.3x narrower), and a larger desk.
    Sixteen quantities are checked in the slow tests: each at 99.9%, so that the family has a ~98.4%
    chance of passing when the engine is right (a 3-standard-error miss of one of them does happen)."""
    work = 0.1
    theta = 0.0 if patience is None else 1 / patience
    expected = erlang_a(servers, load / work, 1 / work, theta)
    _check(sdr_desk(servers, work, load, patience), "sdr", expected, 100, level=0.999)


@pytest.mark.slow
def test_ae_queue_outputs_match_erlang_a_many_runs() -> None:
    """The AE check again with 500 warm runs of a year (99.9% per quantity, as above). It is the check
    that found the warm start's burn-in too short for a slow, overloaded AE queue (MSER-5 chose 30
    days for a 20-day cycle; abandonment came out 0.251 against Erlang-A's 0.266): the burn-in is now
    at least three mean sales cycles."""
    slots, cycle, load, patience = 6, 20.0, 7.2, 10.0
    expected = erlang_a(slots, CONTACT * load / cycle, 1 / cycle, 1 / patience)
    _check(ae_desk(slots, cycle, load, patience), "ae", expected, 500, level=0.999)
