"""Invariants of every run, checked on random small scenarios (hypothesis).

Whatever the scenario, a user relies on the event log being a faithful account: every
lead is created once and then follows only paths the model allows, in time order,
and ends in exactly one state; the level log never shows a negative queue or more
reps busy than there are; with unlimited capacity nobody waits; with capacity limits,
more leads lose wins only through the queues (gone cold, reached later, still waiting),
every expected win lost being in the queue outputs. Examples are derandomized (the same
examples on every run, so a failure reproduces) and kept small (short horizons, a few
leads a day) so each runs in a fraction of a second.
"""

from __future__ import annotations

import datetime as dt
import itertools
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from funnelsim import RunResult, Scenario, parse_scenario, simulate, simulate_reference
from funnelsim.engine.world import Step, World
from funnelsim.model.mechanisms import contact_probability, score, win_probability
from funnelsim.model.scenario import DAYS_PER_MONTH
from funnelsim.run.metrics import summarize_run
from funnelsim.vocabulary import EVENTS, OPEN_STATES, STATE_AFTER
from scaled import SPEED_TO_LEAD, tiny_scenario

Engine = Callable[..., RunResult]

PROSPECTING = "prospecting"  # the source name the engine gives to deals AEs sourced themselves

# Which event may follow which, for one lead (from engine/world.py and engine/fast.py).
# ``None`` is "no event yet"; an event missing from the keys is terminal.
NEXT: dict[str | None, set[str]] = {
    None: {"created"},
    "created": {"dormant", "mql", "opportunity"},  # opportunity: only a prospected deal
    "mql": {"not_followed_up", "sdr_start", "sdr_queued"},
    "sdr_queued": {"sdr_start", "sdr_abandoned"},
    "sdr_start": {"unreached", "rejected", "sql"},
    "unreached": {"recycled"},
    "rejected": {"recycled"},
    "disqualified": {"recycled"},
    "recycled": {"mql", "dormant"},
    "sql": {"ae_abandoned", "disqualified", "opportunity"},
    "opportunity": {"won", "lost"},
}
SDR_EVENTS = {"sdr_start", "unreached", "rejected", "sql"}
AE_EVENTS = {"disqualified", "opportunity", "won", "lost"}

PROPERTY_SETTINGS = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ---------------------------------------------------------------------------
# Random small scenarios


def _prob() -> st.SearchStrategy[float]:
    return st.floats(0.0, 1.0)


def _mostly_high() -> st.SearchStrategy[float]:
    """A share in [0, 1], often above 0.5 so that leads get far down the funnel."""
    return st.one_of(st.floats(0.5, 1.0), _prob())


def _duration(low: float, high: float) -> st.SearchStrategy[Any]:
    """A positive duration spec: fixed, exponential or lognormal with mean in [low, high]."""
    mean = st.floats(low, high)
    return st.one_of(
        mean,
        mean.map(lambda m: {"dist": "exponential", "mean": m}),
        st.tuples(mean, st.floats(0.1, 1.5)).map(lambda ms: {"dist": "lognormal", "mean": ms[0], "sd": ms[0] * ms[1]}),
    )


def _unit() -> st.SearchStrategy[Any]:
    """A spec on [0, 1]: fixed, uniform or beta."""
    return st.one_of(
        _prob(),
        st.tuples(_prob(), _prob()).map(lambda lh: {"dist": "uniform", "low": min(lh), "high": max(lh)}),
        st.tuples(st.floats(0.5, 5), st.floats(0.5, 5)).map(lambda ab: {"dist": "beta", "a": ab[0], "b": ab[1]}),
    )


def _rule() -> st.SearchStrategy[dict[str, float]]:
    return st.tuples(_prob(), _prob()).map(
        lambda wt: {"fit_weight": wt[0], "engagement_weight": 1 - wt[0], "threshold": wt[1]}
    ) | st.tuples(_prob(), st.floats(0.0, 0.5)).map(
        lambda wt: {"fit_weight": wt[0], "engagement_weight": 1 - wt[0], "threshold": wt[1]}
    )


@st.composite
def _source(draw: st.DrawFn) -> dict[str, Any]:
    buyer = draw(st.floats(0.0, 1.0))
    return {
        "leads_per_day": draw(st.floats(0.0, 6.0)),
        "seasonality": draw(st.lists(st.floats(0.0, 2.0), min_size=12, max_size=12)),
        "persona_mix": {"buyer": buyer, "researcher": 1 - buyer},
        "fit": draw(_unit()),
        "initial_engagement": draw(_unit()),
        "entry_stage": draw(st.sampled_from(["lead", "mql"])),
        "qualified_by": draw(st.sampled_from(["score", "source"])),
    }


def scenarios(unlimited: bool = False) -> st.SearchStrategy[Scenario]:
    """A small random scenario: every mechanism may be on or off.

    ``unlimited``: SDRs and AEs are never the bottleneck and MQLs are answered at once
    (so no lead should ever wait).
    """
    return raw_scenarios(unlimited).map(lambda raw: parse_scenario(raw, "hypothesis"))


@st.composite
def raw_scenarios(draw: st.DrawFn, unlimited: bool = False) -> dict[str, Any]:
    """The plain data of :func:`scenarios`."""
    start = draw(st.sampled_from([dt.date(2027, 1, 1), dt.date(2027, 11, 20), dt.date(2028, 2, 28)]))
    horizon = draw(st.integers(10, 120))
    hires = [
        {"date": start + dt.timedelta(days=day), "count": count}
        for day, count in draw(st.lists(st.tuples(st.integers(0, horizon), st.integers(1, 2)), max_size=2))
    ]
    raw: dict[str, Any] = {
        "name": "random",
        # Cold: the invariants are those of a lead's whole life; a warm start's window of a run is
        # checked against the whole run in tests/test_warm_start.py.
        "start": "cold",
        "start_date": start,
        "horizon_days": horizon,
        "personas": {
            "buyer": {"buying_intent": draw(_mostly_high()), "engagement_response": draw(st.floats(0.0, 2.0))},
            "researcher": {"buying_intent": draw(st.floats(0.0, 0.2)), "engagement_response": 1.2},
        },
        "sources": {f"s{i}": draw(_source()) for i in range(draw(st.integers(1, 2)))},
        "nurture": {
            "touch_interval_days": draw(_duration(1.0, 15.0)),
            "touch_lift": draw(st.floats(0.0, 0.6)),
            "engagement_half_life_days": draw(st.floats(2.0, 60.0)),
            "max_nurture_days": draw(st.floats(5.0, 90.0)),
        },
        "qualification": {"mql": draw(_rule()), "sql": draw(_rule())},
        "handoff": {
            "follow_up_rate": draw(_mostly_high()),
            "response_delay_days": 0 if unlimited else draw(_duration(0.01, 2.0)),
            "speed_to_lead": SPEED_TO_LEAD,
            "sdr": {
                "count": 1000 if unlimited else draw(st.integers(1, 3)),
                "work_days": draw(_duration(0.02, 2.0)),
                "patience_days": draw(st.none() | _duration(0.1, 5.0)),
            },
        },
        "recycling": {
            "probability": draw(_mostly_high()),
            "max_times": draw(st.integers(0, 3)),
            "engagement_kept": draw(_prob()),
        },
        "sales": {
            "opportunity_rate": draw(_mostly_high()),
            "win_rate": draw(_prob()),
            "fit_effect": draw(st.floats(-3.0, 3.0)),
            "cycle_days": draw(_duration(1.0, 40.0)),
            "deal_size": draw(_duration(1000.0, 50000.0)),
            "queue": draw(st.sampled_from(["fifo", "score"])),
            "patience_days": draw(st.none() | _duration(0.5, 20.0)),
            "ae": (
                {"count": 1, "max_open_opportunities": 1_000_000}
                if unlimited
                else {
                    "count": draw(st.integers(0, 3)),
                    "max_open_opportunities": draw(st.integers(1, 4)),
                    "hires": hires,
                    "ramp": draw(st.lists(_prob(), min_size=1, max_size=4)),
                    "attrition_per_year": draw(st.sampled_from([0.0, 0.5, 3.0])),
                    "backfill_days": draw(st.none() | st.floats(0.0, 30.0)),
                }
            ),
        },
        "prospecting": {
            "opportunities_per_ae_per_month": draw(st.sampled_from([0.0, 0.0 if unlimited else 2.0, 8.0])),
            "fit": draw(_unit()),
        },
    }
    return raw


@st.composite
def busy_scenarios(draw: st.DrawFn) -> Scenario:
    """A random small scenario (:func:`raw_scenarios`, its reps as few and as slow, queues and patience
    as random) that sells: leads from MQL to won are likely enough and the horizon long enough for the
    queues to matter. Sales' bar is on fit alone (:func:`fit_only_bar`)."""
    raw = draw(raw_scenarios())
    raw["horizon_days"] = draw(st.integers(60, 150))
    raw["personas"]["buyer"]["buying_intent"] = draw(st.floats(0.5, 1.0))
    raw["qualification"]["mql"]["threshold"] = draw(st.floats(0.0, 0.5))
    for source in raw["sources"].values():
        buyer = draw(st.floats(0.5, 1.0))
        source.update(leads_per_day=draw(st.floats(1.0, 8.0)), persona_mix={"buyer": buyer, "researcher": 1 - buyer})
    raw["qualification"]["sql"] = {"fit_weight": 1.0, "engagement_weight": 0.0, "threshold": draw(st.floats(0, 0.6))}
    raw["handoff"]["follow_up_rate"] = draw(st.floats(0.5, 1.0))
    raw["sales"].update(
        opportunity_rate=draw(st.floats(0.5, 1.0)),
        win_rate=draw(st.floats(0.2, 0.9)),
        cycle_days=draw(_duration(1.0, 30.0)),
    )
    raw["sales"]["ae"].update(count=draw(st.integers(1, 3)), max_open_opportunities=draw(st.integers(1, 6)))
    return parse_scenario(raw, "hypothesis")


# ---------------------------------------------------------------------------
# The invariants


def per_lead(events: pd.DataFrame) -> pd.DataFrame:
    """The event log ordered by lead, each lead's events in the order they were logged."""
    ev = events.sort_values("lead", kind="stable").reset_index(drop=True)
    ev["event"] = ev["event"].astype(str)
    ev["previous"] = ev.groupby("lead", sort=False)["event"].shift(1)
    ev["previous_time"] = ev.groupby("lead", sort=False)["time"].shift(1)
    return ev


def check_invariants(result: RunResult) -> None:
    """Assert every invariant of one run (see the module docstring)."""
    sc, events, attrs = result.scenario, result.events, result.attributes
    horizon = sc.horizon_days
    ev = per_lead(events)
    n = len(attrs)

    # Leads: ids 0..n-1, each in the log, created exactly once and first.
    assert (attrs["lead"].to_numpy() == np.arange(n)).all()
    assert set(ev["lead"].unique()) == set(range(n))
    assert (events["event"] == "created").sum() == n
    first = ev.drop_duplicates("lead", keep="first")
    assert (first["event"] == "created").all(), first[first["event"] != "created"].head().to_string()

    # Time: within the run, and never backwards for a lead. The log is sorted by time,
    # so each lead's events are in time order; the path check below makes sure that
    # order is also the order in which things happened (created before MQL, ...).
    assert events["time"].between(0, horizon).all()
    assert events["time"].is_monotonic_increasing
    back = ev["time"] < ev["previous_time"]
    assert not back.any(), ev[back].head().to_string()

    # Paths: only allowed transitions; prospected deals skip straight to the opportunity.
    allowed = np.array(
        [b in NEXT.get(a if isinstance(a, str) else None, set()) for a, b in ev[["previous", "event"]].to_numpy()]
    )
    assert allowed.all(), ev[~allowed].head().to_string()
    prospected = set(attrs.loc[attrs["source"] == PROSPECTING, "lead"])
    after_created = ev[ev["previous"] == "created"]
    straight_to_deal = after_created["event"] == "opportunity"
    assert set(after_created.loc[straight_to_deal, "lead"]) <= prospected
    assert not set(after_created.loc[~straight_to_deal, "lead"]) & prospected
    deals = after_created[straight_to_deal]
    assert (deals["time"] == deals["previous_time"]).all()
    mql_entry = [i for i, s in enumerate(sc.sources.values()) if s.entry_stage == "mql"]
    entry = ev[(ev["previous"] == "created") & attrs["source"].cat.codes.isin(mql_entry).to_numpy()[ev["lead"]]]
    assert (entry["event"] == "mql").all() and (entry["time"] == entry["previous_time"]).all()

    # Exactly one state at the end: the state after the last event, as in result.leads.
    last = ev.drop_duplicates("lead", keep="last").set_index("lead")["event"]
    final = last.map(STATE_AFTER).reindex(range(n))
    assert final.notna().all()
    assert (result.leads["state"].astype(str).to_numpy() == final.to_numpy()).all()
    states = result.leads["state"].value_counts()
    assert states.sum() == n

    # Recycling: counted in the attributes and at most max_times per lead.
    recycled = ev[ev["event"] == "recycled"].groupby("lead").size().reindex(range(n), fill_value=0)
    assert (recycled.to_numpy() == attrs["recycles"].to_numpy()).all()
    assert (recycled <= sc.recycling.max_times).all()

    # Reps and values.
    n_ae = result.roster.loc[result.roster["team"] == "ae", "rep"].nunique()
    sdr_rows = ev["event"].isin(SDR_EVENTS)
    ae_rows = ev["event"].isin(AE_EVENTS)
    assert ev.loc[sdr_rows, "rep"].between(0, sc.handoff.sdr.count - 1).all()
    assert ev.loc[ae_rows, "rep"].between(0, max(n_ae - 1, 0)).all()
    assert (ev.loc[~sdr_rows & ~ae_rows, "rep"] == -1).all()
    starts = ev[ev["event"] == "sdr_start"]
    assert (starts["value"] >= 0).all()
    # The delay since MQL is measured from the lead's latest MQL event (before the queue, if it queued).
    assert starts["previous"].isin(["mql", "sdr_queued"]).all()
    mqls = ev.loc[ev["event"] == "mql", ["time", "lead"]].rename(columns={"time": "mql_time"}).sort_values("mql_time")
    ordered = starts[["time", "lead", "value"]].sort_values("time")
    since = pd.merge_asof(ordered, mqls, left_on="time", right_on="mql_time", by="lead")
    assert np.allclose(since["value"], since["time"] - since["mql_time"], rtol=0, atol=1e-9)
    closed = ev[ev["event"].isin(["won", "lost"])]
    opened = ev[ev["event"] == "opportunity"].set_index("lead")
    assert (closed["value"].to_numpy() == opened.loc[closed["lead"], "value"].to_numpy()).all()
    assert (closed["rep"].to_numpy() == opened.loc[closed["lead"], "rep"].to_numpy()).all()
    assert (opened["value"] >= 0).all()

    # Level log: no negative queue, utilisation busy / capacity within [0, 1].
    lv = result.levels
    assert set(lv["team"]) <= {"sdr", "ae"}
    assert (lv["queue"] >= 0).all() and (lv["busy"] >= 0).all()
    assert (lv["busy"] <= lv["capacity"]).all(), lv[lv["busy"] > lv["capacity"]].head().to_string()
    sdr = lv[lv["team"] == "sdr"]
    # SDRs join one by one at time 0; from then on the whole team is there.
    assert (sdr.loc[sdr["time"] > 0, "capacity"] == sc.handoff.sdr.count).all()
    roster = result.roster
    assert roster["productivity"].between(0, 1).all()


# ---------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("engine", [simulate, simulate_reference], ids=["engine", "reference"])
@PROPERTY_SETTINGS
@given(scenario=scenarios(), seed=st.integers(0, 2**32 - 1))
def test_every_run_keeps_the_invariants(engine: Engine, scenario: Scenario, seed: int) -> None:
    """Any scenario gives a sound event and level log.

    Every lead is created once, first, and ends in exactly one state (the state after
    its last event, as reported in ``result.leads``); event times never go backwards
    for a lead and each step is one the model allows (``NEXT``); recycling respects
    ``max_times``; won/lost carry the opportunity's amount and AE; the SDR wait is
    measured from the MQL; the level log never has a negative queue and utilisation
    busy / capacity stays in [0, 1].
    """
    check_invariants(engine(scenario, seed=seed))


@PROPERTY_SETTINGS
@given(scenario=scenarios(unlimited=True), seed=st.integers(0, 2**32 - 1))
def test_no_lead_waits_when_capacity_is_unlimited(scenario: Scenario, seed: int) -> None:
    """With more reps than leads and an immediate response, no MQL or SQL ever waits.

    Every SDR starts the moment the lead becomes an MQL (``sdr_start`` value 0), every
    SQL gets an AE at once (its next event is at the same time) and nobody abandons.
    """
    result = simulate(scenario, seed=seed)
    check_invariants(result)
    ev = per_lead(result.events)
    assert (ev.loc[ev["event"] == "sdr_start", "value"] == 0).all()
    after_sql = ev[ev["previous"] == "sql"]
    assert (after_sql["time"] == after_sql["previous_time"]).all()
    assert not ev["event"].isin(["sdr_queued", "sdr_abandoned", "ae_abandoned"]).any()
    assert (result.levels["queue"] == 0).all()


@PROPERTY_SETTINGS
@given(
    ramp=st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]), min_size=2, max_size=6),
    hire_day=st.integers(0, 60),
    seed=st.integers(0, 2**32 - 1),
)
def test_new_hires_follow_the_ramp(ramp: list[float], hire_day: int, seed: int) -> None:
    """A new AE works at ``ramp[m]`` of full capacity in month ``m`` after joining.

    Headcount plans rely on hires becoming productive: with no attrition, the roster
    shows each hire's productivity step to each ramp value one month (365.25/12 days)
    after the previous one, including ramps that start at 0 (a new hire in training).
    """
    raw = tiny_scenario()
    raw["horizon_days"] = 240
    raw["sales"]["ae"] = {
        "count": 1,
        "max_open_opportunities": 10,
        "hires": [{"date": raw["start_date"] + dt.timedelta(days=hire_day), "count": 1}],
        "ramp": ramp,
    }
    result = simulate(parse_scenario(raw), seed=seed)
    roster = result.roster[(result.roster["team"] == "ae") & (result.roster["rep"] == 1)]
    assert roster["time"].iloc[0] == hire_day
    # Productivity in the middle of each month after joining (the last roster row before then).
    for month, share in enumerate(ramp):
        when = hire_day + (month + 0.5) * DAYS_PER_MONTH
        if when >= 240:
            break
        now = roster.loc[roster["time"] <= when, "productivity"].iloc[-1]
        assert now == share, f"month {month}: productivity {now}, ramp {ramp}; roster:\n{roster.to_string()}"
    after = hire_day + len(ramp) * DAYS_PER_MONTH
    if after < 240:
        assert roster.loc[roster["time"] <= after + 1, "productivity"].iloc[-1] == ramp[-1]


def test_event_vocabulary_is_covered() -> None:
    """The transition table names every event of the log, so a new event type cannot slip past it."""
    named = set(NEXT) - {None} | {e for targets in NEXT.values() for e in targets}
    assert named == set(EVENTS)
    assert set(OPEN_STATES) <= set(STATE_AFTER.values())


def test_mql_is_never_logged_before_its_lead_is_created() -> None:
    """A lead that enters as an MQL is created, then an MQL, at the same instant, in that order.

    Sparse demo requests early in a run are where the fast engine's clock can land a
    rounding error away from the arrival time; 200 short replications make such leads
    common enough to check every one of them.
    """
    raw = tiny_scenario()
    raw["horizon_days"] = 30
    raw["sources"]["inbound"].update(entry_stage="mql", leads_per_day=0.5)
    scenario = parse_scenario(raw)
    for replication in range(200):
        ev = per_lead(simulate(scenario, seed=1, replication=replication).events)
        first = ev.drop_duplicates("lead", keep="first")
        assert (first["event"] == "created").all(), f"replication {replication}:\n{first.head(20).to_string()}"
        mql = ev[ev["event"] == "mql"]
        bad = mql[(mql["previous"] != "created") | (mql["time"] != mql["previous_time"])]
        assert bad.empty, f"replication {replication}:\n" + ev[ev["lead"].isin(bad["lead"])].to_string(
            float_format=lambda x: f"{x:.17g}"
        )


def test_a_run_always_ends_even_with_zero_touch_interval() -> None:
    """``touch_interval_days = 0`` (allowed by the schema) is refused on load or simulated; it never hangs.

    A lead touched with no time passing, whose score can never reach the MQL bar
    (no lift), would be nurtured forever at one instant. The run happens in a child
    process so that a hang fails this test instead of the whole suite.
    """
    code = textwrap.dedent(
        f"""
        import datetime
        from funnelsim import ScenarioError, parse_scenario, simulate
        raw = {tiny_scenario()!r}
        raw["nurture"].update(touch_interval_days=0, touch_lift=0.0)
        try:
            scenario = parse_scenario(raw)
        except ScenarioError as exc:
            print("refused:", exc)
        else:
            simulate(scenario, seed=1)
            print("simulated")
        """
    )
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("simulate() did not return within 20 s: nurture with a zero touch interval never advances time")
    assert done.returncode == 0, done.stderr


@PROPERTY_SETTINGS
@given(scenario=scenarios(unlimited=True), seed=st.integers(0, 2**32 - 1), more=st.floats(1.05, 3.0))
def test_more_leads_of_the_same_mix_never_lower_wins_when_nothing_queues(
    scenario: Scenario, seed: int, more: float
) -> None:
    """With reps that are never the bottleneck, every lead's fate is its own (its draws are made per
    lead, common random numbers across volumes): scaling every source's volume up adds leads and never
    takes a win away, in every replication. (Recycled passes and prospected deals draw from shared
    streams, so they are switched off here; with capacity limits, see the tests below: more leads
    lower wins only by what the queues explain.)"""
    base = scenario.model_copy(
        update={
            "recycling": scenario.recycling.model_copy(update={"probability": 0.0}),
            "prospecting": scenario.prospecting.model_copy(update={"opportunities_per_ae_per_month": 0.0}),
        }
    )
    wins = [summarize_run(simulate(s, seed=seed))["wins"] for s in (base, more_leads(base, more))]
    assert wins[1] >= wins[0], wins


# ---------------------------------------------------------------------------
# More leads with capacity limits: every expected win lost is in the queue outputs
#
# A lead's first way through sales (before any recycling), picked up ``u`` days into a run of
# horizon ``H`` after its own response delay ``r`` (since its MQL at ``m``), is won inside the run
# with chance  V = c(r) * q * o * w * P(X + C < H - u)  if it is served at once: ``c`` the
# speed-to-lead curve, ``q`` whether it passes sales' bar, ``o`` the opportunity rate, ``w`` the
# win probability of its fit, ``X`` its SDR work and ``C`` its sales cycle. The queues take
# expected wins away at two moments, each logged:
#
# * an SDR starts on it ``s`` days in (``sdr_start``, value d = s - m): its chance is then
#   c(d) * q * o * w * P(X + C < H - s); 0 if it went cold (``sdr_abandoned``) or still waits at
#   the horizon (last event ``sdr_queued``);
# * it became an SQL at ``e`` (chance o * w * P(C < H - e)) and an AE starts on it at ``a``
#   (``opportunity`` or ``disqualified``): o * w * P(C < H - a); 0 if it went cold
#   (``ae_abandoned``) or still waits (last event ``sql``).
#
# The explained loss L of a run is the sum of these drops. The draws after each moment (work,
# contact, accept, cycle, win) are the lead's own and do not depend on how long it waited, so in
# every run E[W + L] = E[sum of V], W its first-pass wins (the accounting). With every source
# ``more`` times the leads, on common random numbers (same seed and replication), the same leads
# come with the same traits and draws, no later, and new ones join: sum V cannot fall, so
# E[W' + L'] >= E[W + L]: wins fall by no more than the explained loss grows. That is the
# property of issue 17; its slack is E[sum V' - sum V], what the extra leads bring, so the
# accounting, checked in each scenario, is the sharper test of "nothing is lost silently". Two
# exact readings back it: a followed-up MQL with no pick-up is one whose response delay ran past
# the horizon (as many as expected), and a lead read as still waiting is in its team's queue.
# A lead's other passes (recycled) and the AEs' own deals draw from shared streams: not counted,
# but their load on the reps is in the waits. Engagement at the hand-off is not in the outputs,
# so ``q`` is read from the lead's traits with sales' bar on fit alone (:func:`fit_only_bar`).
# Nothing depends on the speed-to-lead curve's numbers: ``c`` is the scenario's own.

FIRST_PASS = ("mql", "not_followed_up", "sdr_queued", "sdr_start", "rejected", "sql", "opportunity", "disqualified")
QUADRATURE = 64  # quantiles of the SDR work in P(X + C < t)
MIN_EXPECTED_WINS = 20  # per scenario over the replications, for a Student-t interval of counts
BASELINE = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.toml"
# Two speed-to-lead curves, pinned here (the checks hold for any curve; the margins of the broken
# engines' test are measured on the first). Mild: the odds ratios of the published studies (0.97 at
# once, 0.61 at 30 minutes, 0.11 after a day); steep: 0.97 within 5 minutes, 0.05 from 30 minutes
# to 2 hours, 0.006 after a day.
MILD_SPEED_TO_LEAD = {
    "contact_rate_immediate": 0.97,
    "knots_hours": [0.0, 0.0833, 0.5, 1.0, 2.0, 24.0],
    "odds_multiplier": [1.0, 1.0, 0.0476, 0.035, 0.032, 0.0039],
}
STEEP_SPEED_TO_LEAD = {
    "contact_rate_immediate": 0.97,
    "knots_hours": [0.0, 0.0833, 0.5, 2.0, 24.0],
    "odds_multiplier": [1.0, 1.0, 0.001628, 0.001628, 0.0001867],
}


Chance = Callable[[np.ndarray], np.ndarray]


class Accounts(NamedTuple):
    """What :func:`capacity_accounts` reads from one run: the first passes of the sources' leads."""

    wins: float  # W: won on their first pass
    loss: float  # L: expected wins the queues took away (gone cold, reached later, still waiting)
    value: float  # sum of V: the served-at-once chances of the leads picked up
    unpicked: float  # followed-up MQLs never picked up (no sdr_queued or sdr_start)
    unpicked_expected: float  # the expected number: those whose response delay runs past the horizon


def fit_only_bar(scenario: Scenario) -> Scenario:
    """``scenario`` with sales' bar on fit alone (same threshold): whether a lead qualifies is in its traits."""
    sql = scenario.qualification.sql.model_copy(update={"fit_weight": 1.0, "engagement_weight": 0.0})
    return scenario.model_copy(update={"qualification": scenario.qualification.model_copy(update={"sql": sql})})


def more_leads(scenario: Scenario, more: float) -> Scenario:
    """``scenario`` with every source's volume ``more`` times as large (the same mix)."""
    sources = {
        name: source.model_copy(update={"leads_per_day": source.leads_per_day_mean * more})
        for name, source in scenario.sources.items()
    }
    return scenario.model_copy(update={"sources": sources})


def first_pass(events: pd.DataFrame, n: int) -> dict[str, np.ndarray]:
    """Per lead, when each event of :data:`FIRST_PASS` and ``won`` happened on its first way through
    sales (before its first ``recycled``; NaN if it did not), and ``delay``, the ``sdr_start`` value."""
    ev = events.sort_values("lead", kind="stable")  # each lead's events stay in time order
    lead = ev["lead"].to_numpy()
    first = pd.Series((ev["event"] == "recycled").to_numpy()).groupby(lead).cumsum().to_numpy() == 0

    def per_lead(event: str, column: str) -> np.ndarray:
        rows = first & (ev["event"] == event).to_numpy()  # once at most on a pass
        out = np.full(n, np.nan)
        out[lead[rows]] = ev[column].to_numpy(float)[rows]
        return out

    times = {event: per_lead(event, "time") for event in (*FIRST_PASS, "won")}
    return times | {"delay": per_lead("sdr_start", "value")}


def _closing_inside(scenario: Scenario) -> tuple[Chance, Chance]:
    """P(C < t) and P(X + C < t) for ``t`` days left (the latter by ``QUADRATURE`` quantiles of X)."""
    cycle, work = scenario.sales.cycle_days, scenario.handoff.sdr.work_days
    x = work.remaining_after(np.zeros(QUADRATURE), (np.arange(QUADRATURE) + 0.5) / QUADRATURE)

    def deal(left: np.ndarray) -> np.ndarray:
        return np.where(left > 0, 1.0 - cycle.survival(np.maximum(left, 0.0)), 0.0)

    def worked(left: np.ndarray) -> np.ndarray:
        return np.asarray(deal(left[:, None] - x[None, :]).mean(axis=1))

    return deal, worked


def _queues_at_the_end(result: RunResult) -> None:
    """A pass whose last event is ``sdr_queued`` (``sql``) is read as still waiting for an SDR (an AE):
    as many as the level log's final queue of that team, so no lead stalled silently."""
    last = result.events.drop_duplicates("lead", keep="last")["event"]
    final = result.levels.drop_duplicates("team", keep="last").set_index("team")["queue"]
    for team, event in (("sdr", "sdr_queued"), ("ae", "sql")):
        waiting = int((last == event).sum())
        assert waiting == final.get(team, 0), f"{waiting} leads left at {event}, the {team} queue ends at {final}"


def capacity_accounts(result: RunResult) -> Accounts:
    """:class:`Accounts` of one run (see the comment above): cold, fixed rates, sales' bar on fit alone."""
    sc = result.scenario
    rule, sales, horizon = sc.qualification.sql, sc.sales, float(sc.horizon_days)
    assert rule.engagement_weight == 0 and sc.start_mode == "cold" and not sc.uncertain_parameters()
    _queues_at_the_end(result)
    n = len(result.attributes)
    t = first_pass(result.events, n)
    fit = result.attributes["fit"].to_numpy(float)
    by_source = {name: source.qualified_by == "source" for name, source in sc.sources.items()}
    vouched = result.attributes["source"].astype(str).map(by_source).fillna(False).to_numpy(bool)
    passes = vouched | (score(rule, fit, 0.0) >= rule.threshold)
    qualified = result.attributes["has_need"].to_numpy(bool) & passes
    assert qualified[~np.isnan(t["sql"])].all() and not qualified[~np.isnan(t["rejected"])].any()
    chance = qualified * float(sales.opportunity_rate) * win_probability(float(sales.win_rate), sales.fit_effect, fit)
    deal, worked = _closing_inside(sc)

    def from_sdr(delay: np.ndarray, when: np.ndarray) -> np.ndarray:
        out = np.zeros(n)
        on = ~np.isnan(when) & (chance > 0)
        out[on] = contact_probability(sc.handoff.speed_to_lead, delay[on]) * chance[on] * worked(horizon - when[on])
        return out

    def from_ae(when: np.ndarray) -> np.ndarray:
        out = np.zeros(n)
        on = ~np.isnan(t["sql"]) & ~np.isnan(when)
        out[on] = chance[on] * deal(horizon - when[on])
        return out

    pick_up = np.where(np.isnan(t["sdr_queued"]), t["sdr_start"], t["sdr_queued"])
    value = from_sdr(pick_up - t["mql"], pick_up)
    sdr_loss = value - from_sdr(t["delay"], t["sdr_start"])
    ae_loss = from_ae(t["sql"]) - from_ae(np.fmin(t["opportunity"], t["disqualified"]))
    followed = ~np.isnan(t["mql"]) & np.isnan(t["not_followed_up"])
    late = sc.handoff.response_delay_days.survival(horizon - t["mql"][followed])
    return Accounts(
        wins=float(np.count_nonzero(~np.isnan(t["won"]) & ~np.isnan(t["mql"]))),
        loss=float((sdr_loss + ae_loss).sum()),
        value=float(value.sum()),
        unpicked=float(np.isnan(pick_up[followed]).sum()),
        unpicked_expected=float(np.sum(late)),
    )


def volume_study(scenario: Scenario, more: float, reps: int, seed: int) -> np.ndarray:
    """:class:`Accounts` of ``reps`` paired replications: [replication, (scenario, more leads), field]."""
    bigger = more_leads(scenario, more)
    return np.array(
        [[capacity_accounts(simulate(s, seed=seed, replication=r)) for s in (scenario, bigger)] for r in range(reps)]
    )


def _t_half(x: np.ndarray, level: float) -> float:
    """Student-t half-width for the mean of ``x`` with one-sided coverage ``level``."""
    return float(stats.t.ppf(level, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))


def explained(study: np.ndarray, level: float = 0.99, accounting: float = 0.999) -> dict[str, float]:
    """The paired numbers of a :func:`volume_study` and the verdicts of its checks.

    ``drop_bound``: the one-sided ``level`` upper confidence bound (Student-t over the paired
    replications) of E[(W' + L') - (W + L)]; the property holds unless it is below 0. ``accounting``:
    the two-sided ``accounting`` interval of E[W + L - V] covers 0 in both scenarios. ``handed_over``:
    no more followed-up MQLs went without a pick-up than their response delays explain (one-sided,
    Poisson, ``accounting``). ``informative``: each scenario's replications expect ``MIN_EXPECTED_WINS``
    first-pass wins or more (V - L, decided before any win draw); with fewer, wins are too rare for
    Student-t.
    """
    wins, loss, value, unpicked, expected = (study[..., i] for i in range(len(Accounts._fields)))
    d = (wins + loss)[:, 1] - (wins + loss)[:, 0]
    gap = wins + loss - value
    half = [_t_half(gap[:, i], 0.5 + accounting / 2) for i in (0, 1)]
    missing, due = float(unpicked.sum()), float(expected.sum())
    return {
        "wins_change": float((wins[:, 1] - wins[:, 0]).mean()),
        "loss_change": float((loss[:, 1] - loss[:, 0]).mean()),
        "explained_change": float(d.mean()),
        "drop_bound": float(d.mean() + _t_half(d, level)),
        "gap": float(gap[:, 0].mean()),
        "gap_more": float(gap[:, 1].mean()),
        "accounting": all(abs(gap[:, i].mean()) <= half[i] + 1e-9 for i in (0, 1)),
        "unpicked": missing,
        "unpicked_expected": due,
        "handed_over": bool(missing == 0 or (due > 0 and stats.poisson.sf(missing - 1, due) >= 1 - accounting)),
        "informative": bool((value - loss).sum(axis=0).min() >= MIN_EXPECTED_WINS),
    }


def assert_explained(study: np.ndarray) -> dict[str, float]:
    """Both scenarios of a :func:`volume_study` pass every check of :func:`explained`; its numbers."""
    verdict = explained(study)
    assert verdict["handed_over"], f"MQLs vanished before an SDR picked them up: {verdict}"
    if verdict["informative"]:
        assert verdict["drop_bound"] >= 0, f"more leads lost wins the queues do not explain: {verdict}"
        assert verdict["accounting"], f"wins + explained loss != served-at-once value: {verdict}"
    return verdict


def baseline_cliff(speed_to_lead: dict[str, Any], third: bool = False) -> Scenario:
    """The bundled baseline, cold, with sales' bar on fit alone and the given speed-to-lead curve: at 1.4x
    the leads its SDRs are the bottleneck (the cliff of issue 17). ``third``: a third of the company (a
    third of the leads, one SDR instead of three, three AEs and one hire), the same load on each SDR."""
    with BASELINE.open("rb") as handle:
        raw = tomllib.load(handle)
    raw["start"] = "cold"
    raw["handoff"]["speed_to_lead"] = speed_to_lead
    # The hand-off as the baseline had it when the cliff was found (3 SDRs, ~3 h response), so that
    # the scenario stays at the cliff whatever the bundled file's SDR team and response become.
    raw["handoff"]["sdr"]["count"] = 3
    raw["handoff"]["response_delay_days"] = {"dist": "lognormal", "mean": 0.125, "sd": 0.15}
    if third:
        for source in raw["sources"].values():
            source["leads_per_month"] /= 3
        raw["handoff"]["sdr"]["count"] = 1
        raw["sales"]["ae"].update(count=3, hires=[{"date": dt.date(2027, 4, 1), "count": 1}])
    return fit_only_bar(parse_scenario(raw, "baseline-cliff"))


def test_more_leads_lower_wins_only_by_what_the_queues_explain_at_the_sdr_cliff() -> None:
    """Issue 17: at the SDR cliff more leads may bring fewer wins, but only as many as the queue outputs
    explain (gone cold, reached later, still waiting). A third of the bundled baseline, cold, 1.4x the
    leads, 20 paired replications: the 99% one-sided upper bound (Student-t on the paired differences) of
    E[(W' + L') - (W + L)] is not below 0; the 99.9% interval of E[W + L - V] covers 0 in each scenario;
    no MQL is lost before its pick-up, no lead stalls in a queue (see :func:`explained`)."""
    verdict = assert_explained(volume_study(baseline_cliff(MILD_SPEED_TO_LEAD, third=True), 1.4, 20, seed=17))
    assert verdict["informative"] and verdict["loss_change"] > 5, verdict  # capacity-bound: the queues take more


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(scenario=busy_scenarios(), seed=st.integers(0, 2**32 - 1), more=st.floats(1.05, 3.0))
def test_more_leads_never_lower_wins_beyond_what_the_queues_explain(scenario: Scenario, seed: int, more: float) -> None:
    """The same checks on random small scenarios with few reps, queues and patience
    (:func:`busy_scenarios`), 16 paired replications each. Recycling and prospecting stay on: their
    wins are not counted, their load on the reps is in the waits."""
    assert_explained(volume_study(scenario, more, 16, seed))


@pytest.mark.slow
@pytest.mark.parametrize("curve", [MILD_SPEED_TO_LEAD, STEEP_SPEED_TO_LEAD], ids=["mild-curve", "steep-curve"])
def test_more_leads_lower_wins_only_by_what_the_queues_explain_on_the_bundled_baseline(curve: dict[str, Any]) -> None:
    """The SDR-cliff check on the whole bundled baseline (cold, three SDRs, 1.4x the leads) with 100
    paired replications, under two speed-to-lead curves: the property does not depend on the curve."""
    verdict = assert_explained(volume_study(baseline_cliff(curve), 1.4, 100, seed=2027))
    assert verdict["informative"] and verdict["loss_change"] > 5, verdict


@pytest.mark.slow
@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(scenario=busy_scenarios(), seed=st.integers(0, 2**32 - 1), more=st.floats(1.05, 3.0))
def test_more_leads_never_lower_wins_beyond_what_the_queues_explain_many_runs(
    scenario: Scenario, seed: int, more: float
) -> None:
    """The random-scenario check with 40 scenarios of 60 paired replications each."""
    assert_explained(volume_study(scenario, more, 60, seed))


# Engines that lose wins silently, each caught by one of the checks (monkeypatched into World).


def _overflowing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once 10 MQLs waited for an SDR, every later MQL vanishes at its pick-up (a latched overflow)."""
    picked_up = World.picked_up  # every pick-up, first (a feed) or later (a step)

    def broken(world: World, lead: int, mql_time: float, k: int) -> None:
        world.overflowed = getattr(world, "overflowed", False) or world.sdr.queue_length >= 10
        if not world.overflowed:
            picked_up(world, lead, mql_time, k)

    monkeypatch.setattr(World, "picked_up", broken)


def _vanishing(monkeypatch: pytest.MonkeyPatch) -> None:
    """One in 50 MQLs picked up while every SDR is busy vanishes, no event."""
    picked_up, busy = World.picked_up, itertools.count(1)

    def broken(world: World, lead: int, mql_time: float, k: int) -> None:
        if world.sdr.in_use < world.sdr.capacity or next(busy) % 50:
            picked_up(world, lead, mql_time, k)

    monkeypatch.setattr(World, "picked_up", broken)


def _busy_losing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A deal that closes while MQLs wait for an SDR is lost (a busy team's deals go cold), no event says so."""
    close = World._close

    def broken(world: World, step: Step) -> None:
        lead, rep, amount, outcome = step.carried
        if outcome is not None and world.sdr.queue_length:
            step.carried = (lead, rep, amount, (outcome[0], 0.0))
        close(world, step)

    monkeypatch.setattr(World, "_close", broken)


def _stalling(monkeypatch: pytest.MonkeyPatch) -> None:
    """One in 10 SQLs an AE takes is never worked (the AE's slot freed at once), no event."""
    start, taken = World._ae_start, itertools.count(1)

    def broken(world: World, lead: int, k: int, rep: int | None) -> None:
        if rep is not None and not next(taken) % 10:
            world.ae.release(rep)
            return
        start(world, lead, k, rep)

    monkeypatch.setattr(World, "_ae_start", broken)


@pytest.mark.parametrize(
    ("breaking", "caught_by"),
    [
        (_overflowing, "drop_bound"),
        (_vanishing, "handed_over"),
        (_busy_losing, "accounting"),
        (_stalling, "waiting"),
    ],
    ids=["overflow-more-leads-fewer-wins", "vanish-before-pick-up", "busy-deals-lost", "stalled-sql"],
)
def test_the_checks_fail_on_an_engine_that_loses_wins_silently(
    breaking: Callable[[pytest.MonkeyPatch], None], caught_by: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks above are not vacuous: the SDR-cliff case (8 paired replications) fails on an engine
    that loses wins without an event. ``drop_bound``: the property itself (more leads, fewer wins than the
    queues explain); ``handed_over``: MQLs missing at the pick-up; ``accounting``: wins + explained loss
    below the served-at-once value; ``waiting``: leads read as waiting that no queue holds."""
    breaking(monkeypatch)
    scenario = baseline_cliff(MILD_SPEED_TO_LEAD, third=True)
    if caught_by == "waiting":
        with pytest.raises(AssertionError, match="leads left at sql"):
            volume_study(scenario, 1.4, 1, seed=17)
        return
    verdict = explained(volume_study(scenario, 1.4, 8, seed=17))
    assert verdict["informative"], verdict
    if caught_by == "drop_bound":
        assert verdict["drop_bound"] < 0, verdict
    else:
        assert not verdict[caught_by], verdict
