"""The working calendar: business days, holidays, working hours per team and time zone.

What a user relies on: a lead arriving on Friday night waits until Monday (Tuesday after a
holiday Monday); a team in another zone works its own local hours; summer time moves the
hours in run time but not their length; with ``response_clock = "working"`` the delay before
an SDR picks a lead up is the configured distribution *in working time*; both engines agree
on a calendar scenario; bad calendar input is refused naming the field; and a scenario
without a calendar runs exactly as before.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from typer.testing import CliRunner

from funnelsim import load_scenario, parse_scenario, simulate, simulate_reference
from funnelsim.cli import app
from funnelsim.model.workcal import WorkingCalendar, clock_of, office_clock, parse_hours, working_time
from funnelsim.report.tables import _tables
from funnelsim.run import response

sys.path.insert(0, str(Path(__file__).parent))
from scaled import TENTH, tiny_scenario
from test_oracle import PER_LEAD, PER_RUN, Sample, ks_pvalues, sample, scaled_baseline

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.toml"
START = dt.date(2027, 1, 1)  # a Friday: run day 3 is Monday 4 January
HOLIDAY = dt.date(2027, 1, 11)  # a Monday
BERLIN = WorkingCalendar(time_zone="Europe/Berlin", holidays=[HOLIDAY])
MINUTE = 1 / 1440
HOUR = 1 / 24
ALPHA = 0.01

OFFICE = (
    "calendar.time_zone=Europe/Berlin",
    "calendar.holidays=[2027-04-05, 2027-05-17, 2027-12-24]",
    "handoff.sdr.working_hours=09:00-17:00",
    "handoff.response_clock=working",
)


def clock(hours: str = "09:00-17:00", zone: str | None = None, calendar: WorkingCalendar = BERLIN) -> Any:
    return working_time(calendar, hours, start_date=START, span_days=400, time_zone=zone)


# ---------------------------------------------------------------------------
# The map W and its inverse


def test_working_time_and_its_inverse_round_trip() -> None:
    """W(W⁻¹(w)) = w for any working time; W⁻¹(W(t)) = t in working hours and the next opening
    outside them; W never decreases and grows at slope 1 in working hours (random points, seed 1)."""
    c = clock("08:00-12:00,13:00-17:30")
    rng = np.random.default_rng(1)
    w = rng.uniform(0, float(c.working(390.0)), 20_000)
    np.testing.assert_allclose(c.working(c.calendar(w)), w, rtol=0, atol=1e-9)
    t = np.sort(rng.uniform(0, 390, 20_000))
    back = c.calendar(c.working(t))
    inside = c.is_open(t)
    assert 0.2 < inside.mean() < 0.35  # 42.5 of 168 hours a week, some holidays
    np.testing.assert_allclose(back[inside], t[inside], rtol=0, atol=1e-9)
    # Outside hours: the next opening, which is an opening of the map and the first one after t.
    outside = ~inside
    assert np.isin(back[outside], c.opens).all()
    first_after = c.opens[np.searchsorted(c.opens, t[outside], side="right")]
    np.testing.assert_array_equal(back[outside], first_after)
    assert np.all(np.diff(c.working(t)) >= 0)
    step = 1e-3
    same = inside & c.is_open(t + step) & (c.working(t + step) - c.working(t) < 2 * step)
    np.testing.assert_allclose((c.working(t + step) - c.working(t))[same], step, atol=1e-9)
    # The event loop's scalar versions give the same floats as the arrays.
    for x in t[:200]:
        assert c.working_one(float(x)) == float(c.working(x))
        assert c.after_one(float(x), 0.01) == float(c.after(x, 0.01))


def test_friday_night_lead_waits_until_monday_or_tuesday_after_a_holiday() -> None:
    """Friday 23:00 + 5 working minutes = Monday 09:05; a week later Monday is a holiday: Tuesday 09:05.
    With no delay at all the pick-up is the opening itself."""
    c = clock()
    assert float(c.after(0 + 23 * HOUR, 5 * MINUTE)) == pytest.approx(3 + 9 * HOUR + 5 * MINUTE, abs=1e-12)
    assert float(c.after(7 + 23 * HOUR, 5 * MINUTE)) == pytest.approx(11 + 9 * HOUR + 5 * MINUTE, abs=1e-12)
    assert float(c.after(0 + 23 * HOUR, 0.0)) == 3 + 9 * HOUR
    # A delay longer than what is left of the day runs on into the next working day.
    assert float(c.after(3 + 16.5 * HOUR, 1 * HOUR)) == pytest.approx(4 + 9.5 * HOUR, abs=1e-12)
    classes = c.arrival_class(np.array([3 + 12 * HOUR, 3 + 2 * HOUR, 2 + 12 * HOUR, 10 + 12 * HOUR]))
    assert classes.tolist() == [0, 1, 2, 2]  # Monday noon, Monday night, Sunday, the holiday Monday


def test_a_team_in_another_zone_works_its_own_local_hours() -> None:
    """A New York team of a Berlin company: its 09:00-17:00 is 15:00-23:00 in Berlin in January, and
    its days (business days, the holiday) are New York's."""
    ny = clock(zone="America/New_York")
    assert ny.opens[ny.opens > 3][0] == pytest.approx(3 + 15 * HOUR, abs=1e-12)  # Monday 4 Jan, 09:00 EST
    # Friday 1 January, 16:00 in Berlin is 10:00 in New York: answered 5 minutes later.
    assert float(ny.after(16 * HOUR, 5 * MINUTE)) == pytest.approx(16 * HOUR + 5 * MINUTE, abs=1e-12)
    # Its holiday Monday 11 January runs from New York midnight (06:00 in Berlin) to the next.
    assert not ny.is_open(np.array([10 + 20 * HOUR])).any()
    assert ny.is_open(np.array([11 + 20 * HOUR])).all()
    # Berlin's Tuesday 05:00 is the holiday Monday's 23:00 in New York; Wednesday 05:00 an ordinary night.
    assert ny.arrival_class(np.array([11 + 5 * HOUR, 12 + 5 * HOUR])).tolist() == [2, 1]


def test_summer_time_moves_the_hours_in_run_time_but_not_their_length() -> None:
    """Berlin goes to summer time on Sunday 28 March 2027: run time is elapsed time from 1 January
    00:00 CET, so Monday's 09:00 CEST is run day 87 + 8 h; the working day is still 8 hours; a lead
    of Friday 26 March 23:00 picked up 5 working minutes later waited 57 h 05 min, not 58 h 05."""
    c = clock()
    monday = c.opens[(c.opens > 87) & (c.opens < 88)][0]
    assert monday == pytest.approx(87 + 8 * HOUR, abs=1e-12)
    assert float(c.working(monday + 8 * HOUR) - c.working(monday)) == pytest.approx(8 * HOUR, abs=1e-12)
    friday_night = 84 + 23 * HOUR  # Friday 26 March, 23:00 CET
    waited = float(c.after(friday_night, 5 * MINUTE)) - friday_night
    assert waited == pytest.approx(57 * HOUR + 5 * MINUTE, abs=1e-9)
    # Around the clock, every day: the spring day has 23 hours of work, the autumn day (31 Oct) 25.
    always = working_time(
        WorkingCalendar(time_zone="Europe/Berlin", business_days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
        "00:00-24:00",
        start_date=START,
        span_days=400,
    )
    spring, autumn = 86, (dt.date(2027, 10, 31) - START).days
    for day, hours in ((spring, 23), (autumn, 25)):
        starts = always.day_starts
        i = np.searchsorted(starts, day + 0.5) - 1
        assert float(always.working(starts[i + 1]) - always.working(starts[i])) == pytest.approx(hours * HOUR)
    assert len(always.opens) == 1  # one interval: around the clock never closes (only the virtual end)


ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "America/Santiago")


@st.composite
def calendars(draw: Any) -> tuple[WorkingCalendar, str, str | None]:
    """A random calendar: zone, business days, holidays, one to three spans of hours, maybe a team zone."""
    days = draw(st.lists(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), min_size=1, unique=True))
    holidays = draw(st.lists(st.dates(dt.date(2026, 12, 1), dt.date(2028, 2, 1)), max_size=20))
    cuts = sorted(draw(st.lists(st.integers(0, 96), min_size=2, max_size=6, unique=True)))
    spans = [(a * 15, b * 15) for a, b in itertools.pairwise(cuts)][::2]
    hours = ",".join(f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in spans)
    calendar = WorkingCalendar(time_zone=draw(st.sampled_from(ZONES)), business_days=days, holidays=holidays)
    return calendar, hours, draw(st.one_of(st.none(), st.sampled_from(ZONES)))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(calendars(), st.floats(0, 300), st.lists(st.floats(0, 3), min_size=1, max_size=50))
def test_any_calendar_maps_work_into_its_hours(cal: Any, start: float, delays: list[float]) -> None:
    """For any zones, days, holidays and spans: W is non-decreasing, W(W⁻¹(w)) = w, and work of any
    length from any time ends in the team's hours, its working length exactly the delay."""
    calendar, hours, zone = cal
    c = working_time(calendar, hours, start_date=START, span_days=400, origin=30.0, time_zone=zone)
    t = start + np.arange(len(delays)) * 0.37
    done = c.after(t, np.array(delays))
    assert np.all(done >= t)
    np.testing.assert_allclose(c.working(done) - c.working(t), delays, rtol=0, atol=1e-9)
    inside = done < 400
    assert c.is_open(done[inside]).all()
    grid = np.linspace(-30, 420, 2000)
    assert np.all(np.diff(c.working(grid)) >= 0)
    w = np.linspace(0, float(c.working(420.0)), 500)
    np.testing.assert_allclose(c.working(c.calendar(w)), w, rtol=0, atol=1e-9)


def test_hours_are_parsed_and_checked() -> None:
    """Spans in minutes after midnight; 24:00 ends a day; reversed, overlapping or malformed spans are refused."""
    assert parse_hours("09:00-17:00") == ((540, 1020),)
    assert parse_hours("13:00-17:30, 08:00-12:00") == ((480, 720), (780, 1050))
    assert parse_hours("00:00-24:00") == ((0, 1440),)
    for bad in ("17:00-09:00", "9-17", "08:00-12:00,11:00-13:00", "24:30-25:00", "09:60-10:00"):
        with pytest.raises(ValueError):
            parse_hours(bad)


# ---------------------------------------------------------------------------
# The engine


def _desk_scenario(*extra: str, clock_mode: str = "working") -> Any:
    """MQLs straight from a source, SDRs never short, a fixed 5-minute delay: every pick-up is at once."""
    raw = tiny_scenario()
    raw["horizon_days"] = 120
    raw["sources"]["inbound"].update({"leads_per_day": 10.0, "entry_stage": "mql", "qualified_by": "source"})
    raw["handoff"].update({"follow_up_rate": 1.0, "response_delay_days": 5 * MINUTE, "response_clock": clock_mode})
    raw["handoff"]["sdr"].update({"count": 60, "work_days": 0.002, "working_hours": "09:00-17:00"})
    raw["calendar"] = {"time_zone": "Europe/Berlin", "holidays": [HOLIDAY]}
    from funnelsim.model.paths import apply_overrides

    return parse_scenario(apply_overrides(raw, list(extra)), "desk")


@pytest.mark.parametrize("engine", [simulate, simulate_reference], ids=["fast", "reference"])
def test_engines_pick_mqls_up_after_the_working_delay(engine: Any) -> None:
    """In both engines each MQL is started at W⁻¹(W(MQL) + 5 min), in the SDR team's hours."""
    sc = _desk_scenario()
    result = engine(sc, seed=4)
    c = clock_of(result.scenario, "sdr")
    passes = response.sdr_passes(result.events)
    due = c.after(passes["mql"], 5 * MINUTE) < sc.horizon_days
    assert passes["start"][~due].isna().all()  # picked up after the horizon: never started
    passes = passes[due]
    assert len(passes) > 900 and passes["start"].notna().all()
    assert not (result.events["event"] == "sdr_queued").any()
    np.testing.assert_allclose(passes["start"], c.after(passes["mql"], 5 * MINUTE), rtol=0, atol=1e-9)
    assert c.is_open(passes["start"].to_numpy()).all()
    assert (c.arrival_class(passes["mql"].to_numpy()) != 0).mean() > 0.6  # most arrive out of hours


@pytest.mark.parametrize("engine", [simulate, simulate_reference], ids=["fast", "reference"])
def test_closed_desks_start_work_only_in_their_hours(engine: Any) -> None:
    """With the delay in calendar time an MQL picked up at night waits for the SDR desk to open; AEs with
    hours open opportunities only in them (SQLs handed over after hours wait), prospecting aside."""
    sc = _desk_scenario("sales.ae.working_hours=10:00-16:00", "sales.ae.time_zone=Europe/London", clock_mode="calendar")
    result = engine(sc, seed=5)
    ev = result.events
    sdr, ae = clock_of(result.scenario, "sdr"), clock_of(result.scenario, "ae")
    starts = ev.loc[ev["event"] == "sdr_start", "time"].to_numpy()
    assert sdr.is_open(starts).all() and (ev["event"] == "sdr_queued").sum() > 300
    sold = ev[ev["event"].isin(["opportunity", "disqualified"])]
    assert len(sold) > 20 and ae.is_open(sold["time"].to_numpy()).all()
    # London 10:00 is Berlin 11:00: the AE desk opens at run time day + 11 h (day 0 is Berlin's midnight).
    assert ae.opens[(ae.opens > 3) & (ae.opens < 4)][0] == pytest.approx(3 + 11 * HOUR, abs=1e-12)


def test_working_pick_up_delays_follow_the_configured_distribution() -> None:
    """With response_clock = "working", W(start) - W(MQL) of the leads an SDR started at once follows
    response_delay_days (lognormal, mean 0.02, sd 0.06): one-sample KS, p > 0.01 (seed 11, pooled over
    4 replications). The same test tells the elapsed delays apart (p < 1e-6): it can fail."""
    spec = {"dist": "lognormal", "mean": 0.02, "sd": 0.06}
    sc = _desk_scenario(f"handoff.response_delay_days={{dist='lognormal', mean={spec['mean']}, sd={spec['sd']}}}")
    worked, elapsed = [], []
    for replication in range(4):
        result = simulate(sc, seed=11, replication=replication)
        c = clock_of(result.scenario, "sdr")
        passes = response.sdr_passes(result.events)
        passes = passes[passes["mql"] < sc.horizon_days - 60]  # far from the end: no pick-up cut off
        assert passes["start"].notna().all() and not (result.events["event"] == "sdr_queued").any()
        worked.append(c.working(passes["start"]) - c.working(passes["mql"]))
        elapsed.append((passes["start"] - passes["mql"]).to_numpy())
    cdf = sc.handoff.response_delay_days.scipy().cdf
    working_p = stats.kstest(np.concatenate(worked), cdf).pvalue
    elapsed_p = stats.kstest(np.concatenate(elapsed), cdf).pvalue
    assert working_p > ALPHA, working_p
    assert elapsed_p < 1e-6, elapsed_p


def test_speed_to_lead_can_read_working_time() -> None:
    """speed_to_lead_clock = "working": the contact curve reads W(start) - W(MQL), so night MQLs answered
    at opening + 5 min are reached as if answered in 5 minutes; on elapsed time (the default) almost none are."""
    curve = "handoff.speed_to_lead=published"
    by_clock = {}
    for mode in ("calendar", "working"):
        result = simulate(_desk_scenario(curve, f"handoff.speed_to_lead_clock={mode}"), seed=6)
        table = response.speed_to_lead_by_arrival(
            response.sdr_passes(result.events), clock_of(result.scenario, "sdr"), horizon_days=120
        )
        reached = result.events["event"].isin(["sql", "rejected"]).sum() / (result.events["event"] == "sdr_start").sum()
        by_clock[mode] = (table.set_index("arrival"), reached)
    assert by_clock["working"][1] > 0.9 > 0.5 > by_clock["calendar"][1]
    night = by_clock["calendar"][0].loc["outside_hours"]
    assert night["answered_within_5_min"] == 0 and night["median_response_working_hours"] == pytest.approx(5 / 60)


@pytest.mark.parametrize(
    ("response_clock", "speed_clock"), [("working", "calendar"), ("calendar", "calendar"), ("working", "working")]
)
def test_reached_share_matches_the_analytic_contact_rate(response_clock: str, speed_clock: str) -> None:
    """With a desk that never queues, the share of worked MQLs reached equals the analytic model's
    average of the contact curve over arrivals around the clock (analytic.calendar_contact_rate, the
    planner's waterfall uses it): inside the 99% Wilson interval of 3 pooled replications (seed 12)."""
    from funnelsim.model.analytic import calendar_contact_rate

    sc = _desk_scenario(
        "handoff.speed_to_lead=conservative",
        "handoff.response_delay_days={dist='lognormal', mean=0.05, sd=0.1}",
        f"handoff.speed_to_lead_clock={speed_clock}",
        "sources.inbound.leads_per_day=40",
        "handoff.sdr.count=150",
        clock_mode=response_clock,
    )
    window = 110.0  # MQLs of the last days could be picked up after the horizon: left out, here and below
    expected = calendar_contact_rate(sc.model_copy(update={"horizon_days": window}))
    assert expected is not None
    reached = worked = 0
    for replication in range(3):
        ev = simulate(sc, seed=12, replication=replication).events
        passes = response.sdr_passes(ev)
        leads = passes.loc[passes["mql"] < window, "lead"].to_numpy()
        mine = ev[ev["lead"].isin(leads)]
        assert (mine["event"] == "sdr_start").sum() == len(leads)
        # Picked up in working time, an MQL never waits; in calendar time, only for the desk to open.
        assert response_clock == "calendar" or not (mine["event"] == "sdr_queued").any()
        worked += len(leads)
        reached += int(mine["event"].isin(["sql", "rejected"]).sum())
    ci = stats.binomtest(reached, worked).proportion_ci(0.99, method="wilson")
    assert ci.low <= expected <= ci.high, (reached / worked, expected, ci)


def test_working_clocks_on_both_sides_give_the_contact_rate_without_calendar() -> None:
    """Closed form: picked up in working time and read in working time, the curve sees the drawn delay
    itself, so the calendar's contact rate is E[P_c(D)] of the model without calendar; read in elapsed
    time it is far lower (the nights count)."""
    from funnelsim.model.analytic import calendar_contact_rate, expected_contact_rate

    delay = "handoff.response_delay_days={dist='lognormal', mean=0.05, sd=0.1}"
    both = _desk_scenario("handoff.speed_to_lead=conservative", delay, "handoff.speed_to_lead_clock=working")
    plain = expected_contact_rate(both.handoff.speed_to_lead, both.handoff.response_delay_days, 0.0, 256)
    assert calendar_contact_rate(both) == pytest.approx(plain, rel=1e-6)
    elapsed = _desk_scenario("handoff.speed_to_lead=conservative", delay)
    assert calendar_contact_rate(elapsed) < 0.5 * plain


# ---------------------------------------------------------------------------
# The oracle: fast engine and per-lead model on a calendar scenario

CALENDAR_ORACLE = (
    *OFFICE,
    "handoff.speed_to_lead=conservative",
    "handoff.sdr.work_days=0.036",
    "sales.ae.working_hours=08:30-18:00",
)
REPLICATIONS = 30


def _with_responses(engine: Any, scenario: Any, seed: int) -> Sample:
    """:func:`test_oracle.sample` plus the pooled elapsed response times (MQL to SDR start)."""
    runs: dict[int, Any] = {}

    def once(scenario: Any, seed: int, replication: int) -> Any:
        runs[replication] = engine(scenario, seed=seed, replication=replication)
        return runs[replication]

    base = sample(once, scenario, seed, REPLICATIONS)
    pooled = []
    for replication in range(REPLICATIONS):
        passes = response.sdr_passes(runs[replication].events)
        pooled.append((passes["start"] - passes["mql"]).dropna().to_numpy())
    return Sample(base.runs, {**base.leads, "response_days": np.concatenate(pooled)})


@pytest.fixture(scope="module")
def calendar_reference() -> Sample:
    return _with_responses(simulate_reference, scaled_baseline(*CALENDAR_ORACLE), 202)


def test_engine_matches_reference_model_with_a_calendar(calendar_reference: Sample) -> None:
    """Same distributions from both models with office hours, working-time pick-ups and AE hours
    (30 replications each, KS p > 0.01): per run MQLs ... revenue, per lead (pooled) days to MQL,
    fit of the MQLs and the elapsed time from MQL to an SDR starting."""
    engine = _with_responses(simulate, scaled_baseline(*CALENDAR_ORACLE), 101)
    pvalues = ks_pvalues(engine, calendar_reference)
    pvalues["response_days"] = float(
        stats.ks_2samp(engine.leads["response_days"], calendar_reference.leads["response_days"]).pvalue
    )
    assert set(pvalues) == {*PER_RUN, *PER_LEAD, "response_days"}
    failed = {name: p for name, p in pvalues.items() if p <= ALPHA}
    assert not failed, failed


def test_ks_detects_a_delay_counted_in_calendar_time(calendar_reference: Sample) -> None:
    """Power check: the engine with the delay counted in calendar time (the desk still closed at night)
    is told apart on the pooled response times, p < 0.01."""
    changed = _with_responses(simulate, scaled_baseline(*CALENDAR_ORACLE, "handoff.response_clock=calendar"), 101)
    p = stats.ks_2samp(changed.leads["response_days"], calendar_reference.leads["response_days"]).pvalue
    assert p < ALPHA, p


# ---------------------------------------------------------------------------
# Bad input, and scenarios without a calendar

BAD = [
    (("calendar.time_zone=Europe/Pariss",), "calendar.time_zone: unknown time zone 'Europe/Pariss' (did you mean"),
    (
        ("calendar.time_zone=Europe/Paris", "handoff.sdr.working_hours=17:00-09:00"),
        "handoff.sdr.working_hours: '17:00-09:00' ends before it starts",
    ),
    (
        ("calendar.time_zone=UTC", "calendar.business_days=['mon', 'funday']"),
        "calendar.business_days.1: input should be",
    ),
    (("calendar.time_zone=UTC", "calendar.business_days=['mon', 'Monday']"), "listed twice: mon"),
    (("handoff.sdr.working_hours=09:00-17:00",), "handoff.sdr.working_hours needs a [calendar] section"),
    (("calendar.time_zone=UTC", "handoff.response_clock=working"), "handoff.response_clock = 'working'"),
    (
        ("calendar.time_zone=UTC", "sales.ae.working_hours=09:00-17:00", "sales.ae.time_zone=Mars/Olympus"),
        "sales.ae.time_zone: unknown time zone 'Mars/Olympus'",
    ),
    (("calendar.time_zone=UTC", "calendar.holidays=['2027-13-01']"), "calendar.holidays.0"),
]


@pytest.mark.parametrize(("overrides", "expected"), BAD, ids=[b[1].split(":")[0] for b in BAD])
def test_bad_calendar_input_exits_2_naming_the_field(overrides: tuple[str, ...], expected: str) -> None:
    """`funnelsim validate` refuses it: exit 2, the dotted field in the message, no traceback."""
    args = ["validate", str(BASELINE), *(f"--set={o}" for o in overrides)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert expected in " ".join(result.stderr.split()), result.stderr


def test_a_scenario_without_calendar_is_unchanged() -> None:
    """No calendar: the resolved scenario holds none of the new keys (manifests and hashes as before), and
    a calendar whose teams have no working hours changes no event; neither writes the calendar outputs."""
    plain = load_scenario(BASELINE, ["horizon_days=60", *TENTH])
    data = plain.to_dict()
    assert "calendar" not in data
    assert not {"response_clock", "speed_to_lead_clock"} & set(data["handoff"])
    assert not {"working_hours", "time_zone"} & (set(data["handoff"]["sdr"]) | set(data["sales"]["ae"]))
    with_calendar = load_scenario(BASELINE, ["horizon_days=60", *TENTH, "calendar.time_zone=Asia/Tokyo"])
    a, b = simulate(plain, seed=3), simulate(with_calendar, seed=3)
    pd.testing.assert_frame_equal(a.events, b.events)
    tables = _tables(b)
    assert "speed_to_lead_by_arrival.csv" not in tables
    assert "mean_response_working_days" not in tables["capacity_by_month.csv"].columns
    assert "answered_5min_in_hours" not in tables["summary.csv"].columns


def test_hours_around_the_clock_are_the_model_without_calendar() -> None:
    """Working hours 00:00-24:00 every day, no holidays, delays in working time: the same events at the
    same times (to 1e-9 days) as without a calendar; the desks never close."""
    every_day = "['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']"
    base = ["horizon_days=90", *TENTH, "start=cold"]
    always = [
        "calendar.time_zone=America/Chicago",
        f"calendar.business_days={every_day}",
        "handoff.sdr.working_hours=00:00-24:00",
        "handoff.response_clock=working",
        "handoff.speed_to_lead_clock=working",
        "sales.ae.working_hours=00:00-24:00",
    ]
    a = simulate(load_scenario(BASELINE, base), seed=8).events
    b = simulate(load_scenario(BASELINE, [*base, *always]), seed=8).events
    assert a["event"].tolist() == b["event"].tolist() and a["lead"].tolist() == b["lead"].tolist()
    np.testing.assert_allclose(a["time"], b["time"], rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------
# Outputs


def _pass_log(rows: list[tuple[float, int, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["time", "lead", "event", "value"]).assign(rep=-1)


def test_speed_to_lead_table_by_arrival_on_a_hand_made_log() -> None:
    """Three passes: Monday 10:00 answered in 3 minutes (then an SQL), Monday 20:00 answered at 09:02
    the next day, Saturday noon never started (went cold): shares, medians and SQL share by class."""
    c = clock()
    mon10, mon20, sat12 = 3 + 10 * HOUR, 3 + 20 * HOUR, 8 + 12 * HOUR
    tue = 4 + 9 * HOUR + 2 * MINUTE
    log = _pass_log(
        [
            (mon10, 0, "mql", np.nan),
            (mon10 + 3 * MINUTE, 0, "sdr_start", 3 * MINUTE),
            (mon10 + 1 * HOUR, 0, "sql", np.nan),
            (mon20, 1, "mql", np.nan),
            (mon20, 1, "sdr_queued", np.nan),
            (tue, 1, "sdr_start", tue - mon20),
            (tue + HOUR, 1, "unreached", np.nan),
            (sat12, 2, "mql", np.nan),
            (sat12, 2, "sdr_queued", np.nan),
            (sat12 + 2, 2, "sdr_abandoned", np.nan),
            (9.0, 3, "mql", np.nan),
            (9.0, 3, "not_followed_up", np.nan),
        ]
    ).sort_values("time", kind="stable")
    passes = response.sdr_passes(log)
    assert passes["lead"].tolist() == [0, 1, 2]
    table = response.speed_to_lead_by_arrival(passes, c).set_index("arrival")
    assert table["mqls"].tolist() == [1, 1, 1, 3]
    assert table["answered_within_5_min"].tolist() == pytest.approx([1, 0, 0, 1 / 3])
    assert table.loc["outside_hours", "median_response_hours"] == pytest.approx(13 + 2 / 60)
    assert table.loc["outside_hours", "median_response_working_hours"] == pytest.approx(2 / 60)
    assert np.isnan(table.loc["non_working_day", "median_response_hours"])
    assert table["sql_share"].tolist() == pytest.approx([1, 0, 0, 1 / 3])


def test_calendar_outputs_are_written_documented_and_reported() -> None:
    """A run with office hours writes speed_to_lead_by_arrival.csv and mean_response_working_days, each
    column and summary key in docs/outputs.md, and its terminal report has a calendar line (only then)."""
    outputs = (ROOT / "docs" / "outputs.md").read_text(encoding="utf-8")
    sc = load_scenario(BASELINE, ["horizon_days=60", *TENTH, *OFFICE, "handoff.sdr.work_days=0.036"])
    result = simulate(sc, seed=3)
    tables = _tables(result)
    by_arrival = tables["speed_to_lead_by_arrival.csv"]
    assert by_arrival["arrival"].tolist() == ["working_hours", "outside_hours", "non_working_day", "all"]
    assert by_arrival.iloc[:3]["mqls"].sum() == by_arrival.iloc[3]["mqls"] > 0
    capacity = tables["capacity_by_month.csv"]
    sdr = capacity[capacity["team"] == "sdr"]
    assert (sdr["mean_response_working_days"] <= sdr["mean_response_days"]).all()
    assert capacity.loc[capacity["team"] == "ae", "mean_response_working_days"].isna().all()  # AEs: no hours
    names = [*by_arrival.columns, "mean_response_working_days", *response.response_summary(result)]
    names += ["speed_to_lead_by_arrival.csv", *by_arrival["arrival"]]
    missing = [n for n in names if f"`{n}`" not in outputs]
    assert not missing, missing
    small = [str(BASELINE), "--set=horizon_days=60", *(f"--set={o}" for o in TENTH), "--seed", "3"]
    plain = CliRunner().invoke(app, ["run", *small])
    office = CliRunner().invoke(app, ["run", *small, *(f"--set={o}" for o in OFFICE)])
    assert plain.exit_code == office.exit_code == 0
    assert "calendar:" not in plain.stdout and "calendar:" in office.stdout
    assert "of MQLs arrive in SDR hours" in " ".join(office.stdout.split())


# ---------------------------------------------------------------------------
# When leads arrive: office hours


IN_OFFICE = ['calendar.office_hours="09:00-18:00"', "calendar.arrival_share_in_office_hours=0.8"]
AROUND_THE_CLOCK = ["calendar.time_zone=Europe/Berlin", "start=cold"]


def _arrivals(overrides: list[str]) -> tuple[Any, pd.DataFrame]:
    sc = load_scenario(BASELINE, [*AROUND_THE_CLOCK, *overrides])
    result = simulate(sc, seed=3)
    created = result.events[result.events["event"] == "created"]
    source = result.attributes["source"].astype(str).to_numpy()[created["lead"].to_numpy()]
    leads = pd.DataFrame({"time": created["time"].to_numpy(), "source": source})
    return sc, leads[leads["source"].isin(list(sc.sources))]  # not the deals AEs prospect


def test_leads_arrive_in_office_hours_in_the_share_asked_and_each_month_keeps_its_leads() -> None:
    """With office hours 09:00-18:00 on weekdays (27% of the clock) and a share of 0.8, 80% of the year's
    ~35,000 leads arrive in them (99.9% Wilson interval of the count); around the clock, 27%. The profile
    only moves leads within their month: on the same seed, each source brings exactly as many leads in
    each calendar month as without it (the intensity's integral at month ends is unchanged)."""
    sc, office = _arrivals(IN_OFFICE)
    _, even = _arrivals([])
    clock = office_clock(sc)
    inside = int(np.sum(clock.is_open(office["time"].to_numpy())))
    low, high = stats.binomtest(inside, len(office)).proportion_ci(0.999, method="wilson")
    assert low <= 0.8 <= high, (inside / len(office), low, high)
    assert float(np.mean(clock.is_open(even["time"].to_numpy()))) < 0.3
    edges = [(dt.date(2027, m, 1) - dt.date(2027, 1, 1)).days for m in range(1, 13)] + [365]
    for name in sc.sources:
        a = np.histogram(office.loc[office["source"] == name, "time"], bins=edges)[0]
        b = np.histogram(even.loc[even["source"] == name, "time"], bins=edges)[0]
        assert a.tolist() == b.tolist(), name


def test_office_hours_and_their_share_come_together() -> None:
    done = CliRunner().invoke(
        app, ["validate", str(BASELINE), "--set", "calendar.time_zone=UTC", "--set", IN_OFFICE[0]]
    )
    assert done.exit_code == 2
    assert "arrival_share_in_office_hours" in done.output and "Traceback" not in done.output
