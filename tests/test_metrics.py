"""Metrics on small hand-built tables (exact values worked out in comments) and one real run.

A planner reads these numbers as facts about the funnel, so each metric is checked
against a table small enough to compute by hand; the time-weighted ones on step
functions whose areas are easy to add up. One smoke test on the baseline scenario
checks that the tables agree with each other (leakage, revenue and segments add up).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from funnelsim import RunResult, Scenario, load_scenario, parse_scenario, simulate
from funnelsim.run import metrics as m
from funnelsim.vocabulary import EVENTS

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scenarios" / "baseline.toml"
JAN_1 = dt.date(2027, 1, 1)  # day 0; Feb 1 is day 31, Mar 1 day 59, Apr 1 day 90
NAN = float("nan")


def event_log(rows: list[tuple[float, int, str, int, float]]) -> pd.DataFrame:
    """An event log as the engine writes it: sorted by time (ties keep their order), categorical events."""
    frame = pd.DataFrame(rows, columns=["time", "lead", "event", "rep", "value"])
    frame = frame.sort_values("time", kind="stable").reset_index(drop=True)
    frame["event"] = pd.Categorical(frame["event"], categories=list(EVENTS))
    return frame.astype({"time": float, "lead": np.int64, "rep": np.int32, "value": float})


def level_log(rows: list[tuple[float, str, int, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["time", "team", "queue", "busy", "capacity"]).astype({"time": float})


# Thirteen leads, one per path through the funnel (times in days since 2027-01-01).
ROWS: list[tuple[float, int, str, int, float]] = [
    # lead 0: inbound, worked fast, won in February (day 40 = Feb 10)
    (0.5, 0, "created", -1, NAN),
    (10.0, 0, "mql", -1, NAN),
    (10.25, 0, "sdr_start", 0, 0.25),
    (10.5, 0, "sql", 0, NAN),
    (12.0, 0, "opportunity", 0, 20000.0),
    (40.0, 0, "won", 0, 20000.0),
    # lead 1: never reached the MQL bar
    (1.0, 1, "created", -1, NAN),
    (20.0, 1, "dormant", -1, NAN),
    # lead 2: an MQL sales never worked
    (2.0, 2, "created", -1, NAN),
    (5.0, 2, "mql", -1, NAN),
    (5.0, 2, "not_followed_up", -1, NAN),
    # lead 3: unreached, recycled, MQL again, lost
    (3.0, 3, "created", -1, NAN),
    (6.0, 3, "mql", -1, NAN),
    (7.0, 3, "sdr_start", 1, 1.0),
    (7.5, 3, "unreached", 1, NAN),
    (7.5, 3, "recycled", -1, NAN),
    (35.0, 3, "mql", -1, NAN),
    (35.5, 3, "sdr_start", 0, 0.5),
    (36.0, 3, "sql", 0, NAN),
    (36.0, 3, "opportunity", 1, 10000.0),
    (70.0, 3, "lost", 1, 10000.0),
    # lead 4: rejected by sales, dropped
    (4.0, 4, "created", -1, NAN),
    (8.0, 4, "mql", -1, NAN),
    (8.5, 4, "sdr_start", 2, 0.5),
    (9.0, 4, "rejected", 2, NAN),
    # lead 5: went cold waiting for an SDR
    (32.0, 5, "created", -1, NAN),
    (33.0, 5, "mql", -1, NAN),
    (43.0, 5, "sdr_abandoned", -1, NAN),
    # lead 6: a deal an AE prospected (no MQL, no SQL), won on day 63 = Mar 5
    (33.0, 6, "created", -1, NAN),
    (33.0, 6, "opportunity", 2, 30000.0),
    (63.0, 6, "won", 2, 30000.0),
    # lead 7: disqualified, recycled, MQL again, won on day 80 = Mar 22
    (34.0, 7, "created", -1, NAN),
    (34.0, 7, "mql", -1, NAN),
    (34.5, 7, "sdr_start", 1, 0.5),
    (35.0, 7, "sql", 1, NAN),
    (35.0, 7, "disqualified", 0, NAN),
    (35.0, 7, "recycled", -1, NAN),
    (50.0, 7, "mql", -1, NAN),
    (50.2, 7, "sdr_start", 2, 0.2),
    (51.0, 7, "sql", 2, NAN),
    (52.0, 7, "opportunity", 0, 5000.0),
    (80.0, 7, "won", 0, 5000.0),
    # lead 8: went cold waiting for an AE
    (40.0, 8, "created", -1, NAN),
    (41.0, 8, "mql", -1, NAN),
    (41.5, 8, "sdr_start", 0, 0.5),
    (42.0, 8, "sql", 0, NAN),
    (60.0, 8, "ae_abandoned", -1, NAN),
    # lead 9: still an MQL at the end
    (60.0, 9, "created", -1, NAN),
    (61.0, 9, "mql", -1, NAN),
    # lead 10: still an open opportunity at the end
    (62.0, 10, "created", -1, NAN),
    (62.0, 10, "mql", -1, NAN),
    (62.5, 10, "sdr_start", 1, 0.5),
    (63.0, 10, "sql", 1, NAN),
    (64.0, 10, "opportunity", 2, 8000.0),
    # lead 11: a partner lead (MQL on arrival) answered too late, dropped
    (5.0, 11, "created", -1, NAN),
    (5.0, 11, "mql", -1, NAN),
    (6.5, 11, "sdr_start", 2, 1.5),
    (7.0, 11, "unreached", 2, NAN),
    # lead 12: disqualified by the AE, dropped
    (20.0, 12, "created", -1, NAN),
    (21.0, 12, "mql", -1, NAN),
    (21.5, 12, "sdr_start", 0, 0.5),
    (22.0, 12, "sql", 0, NAN),
    (22.5, 12, "disqualified", 1, NAN),
]


@pytest.fixture
def events() -> pd.DataFrame:
    return event_log(ROWS)


# ---------------------------------------------------------------------------
# Volumes, conversions, summary


def test_volumes_and_conversions_count_distinct_leads(events: pd.DataFrame) -> None:
    """A recycled lead that becomes an MQL twice is one MQL; conversions follow the same leads."""
    # leads 0-12; MQLs: all but 1 (dormant) and 6 (prospected); SQLs: 0, 3, 7, 8, 10, 12;
    # opportunities: 0, 3, 6, 7, 10; wins: 0, 6, 7
    assert m.stage_volumes(events).to_dict() == {"leads": 13, "mqls": 11, "sqls": 6, "opportunities": 5, "wins": 3}
    assert m.conversions(events) == pytest.approx(
        {
            "lead_to_mql": 11 / 13,
            "mql_to_sql": 6 / 11,
            "sql_to_opportunity": 4 / 6,  # 0, 3, 7, 10 of the six SQLs (6 was prospected)
            "opportunity_to_win": 3 / 5,
        }
    )


def test_summary_headline_numbers(events: pd.DataFrame) -> None:
    """The one-line summary: revenue, win rate, deal size and cycle times of the run."""
    s = m.summary(events)
    assert s["losses"] == 1
    assert s["revenue"] == 55000.0  # 20000 + 30000 + 5000
    assert s["win_rate"] == 0.75  # 3 wins / (3 wins + 1 loss)
    assert s["average_deal_size"] == pytest.approx(55000 / 3)
    assert s["median_cycle_days"] == 28.0  # opportunity -> won: 28, 30, 28
    assert s["median_lead_to_win_days"] == 39.5  # created -> won: 39.5, 30, 46


# ---------------------------------------------------------------------------
# Per month, time in stage, revenue


def test_stages_by_month_counts_each_lead_in_the_month_it_first_reached_a_stage(events: pd.DataFrame) -> None:
    """Monthly volumes add up to the run's volumes; the monthly ratio is a flow ratio that may exceed 1."""
    table = m.stages_by_month(events, JAN_1)
    assert list(table.columns) == [
        "month",
        *("leads", "mqls", "sqls", "opportunities", "wins", "revenue"),
        *("lead_to_mql", "mql_to_sql", "sql_to_opportunity", "opportunity_to_win"),
    ]
    assert table["month"].tolist() == ["2027-01", "2027-02", "2027-03"]
    # created: Jan 0,1,2,3,4,11,12; Feb 5,6,7,8; Mar 9,10
    assert table["leads"].tolist() == [7, 4, 2]
    # first MQL: Jan 0,2,3,4,11,12; Feb 5,7,8 (lead 3's second MQL on day 35 does not count again); Mar 9,10
    assert table["mqls"].tolist() == [6, 3, 2]
    # first SQL: Jan 0,12; Feb 3,7,8; Mar 10
    assert table["sqls"].tolist() == [2, 3, 1]
    # opportunities: Jan 0; Feb 3,6,7; Mar 10
    assert table["opportunities"].tolist() == [1, 3, 1]
    # wins: Feb 0 (day 40); Mar 6 (day 63), 7 (day 80)
    assert table["wins"].tolist() == [0, 1, 2]
    assert table["revenue"].tolist() == [0.0, 20000.0, 35000.0]
    assert table["lead_to_mql"].tolist() == pytest.approx([6 / 7, 3 / 4, 2 / 2])
    assert table["mql_to_sql"].tolist() == pytest.approx([2 / 6, 3 / 3, 1 / 2])
    assert table["sql_to_opportunity"].tolist() == pytest.approx([1 / 2, 3 / 3, 1 / 1])
    assert table["opportunity_to_win"].tolist() == pytest.approx([0 / 1, 1 / 3, 2 / 1])  # March: 2 > 1


def test_stages_by_month_lists_quiet_months_up_to_the_horizon(events: pd.DataFrame) -> None:
    """A month where nothing happened still has a row (zeros, NaN ratios), so charts have no gaps."""
    table = m.stages_by_month(events, JAN_1, horizon_days=120)  # day 119 is Apr 30
    assert table["month"].tolist() == ["2027-01", "2027-02", "2027-03", "2027-04"]
    april = table.iloc[3]
    assert (april["leads"], april["wins"], april["revenue"]) == (0, 0, 0.0)
    assert math.isnan(april["lead_to_mql"])


def test_time_in_stage_from_first_time_at_each_milestone(events: pd.DataFrame) -> None:
    """Velocity per stage: mean, median and P90 days, over the leads that reached both milestones."""
    table = m.time_in_stage(events).set_index("stage")
    assert table.index.tolist() == [
        "lead_to_mql",
        "mql_to_sql",
        "sql_to_opportunity",
        "opportunity_to_close",
        "lead_to_win",
    ]
    expected = {
        # lead->MQL: 9.5, 3, 3, 4, 1, 0, 1, 1, 0, 0, 1 (leads 0,2,3,4,5,7,8,9,10,11,12); sum 23.5
        # sorted 0,0,0,1,1,1,1,3,3,4,9.5: median 1; P90 at position 0.9 * 10 = 9 -> 4
        "lead_to_mql": (11, 23.5 / 11, 1.0, 4.0),
        # MQL->SQL: 0.5, 30 (lead 3, via recycling), 1, 1, 1, 1; sum 34.5
        # sorted 0.5,1,1,1,1,30: median 1; P90 at 4.5 -> 1 + 0.5 * 29 = 15.5
        "mql_to_sql": (6, 34.5 / 6, 1.0, 15.5),
        # SQL->opportunity: 1.5, 0, 17 (lead 7: first SQL 35, opportunity 52), 1; sorted 0,1,1.5,17
        # median (1 + 1.5) / 2; P90 at 2.7 -> 1.5 + 0.7 * 15.5 = 12.35
        "sql_to_opportunity": (4, 19.5 / 4, 1.25, 12.35),
        # opportunity->close: 28, 34, 30 (prospected), 28; sorted 28,28,30,34; P90 at 2.7 -> 30 + 0.7 * 4
        "opportunity_to_close": (4, 30.0, 29.0, 32.8),
        # lead->win: 39.5, 30, 46; P90 at 1.8 -> 39.5 + 0.8 * 6.5 = 44.7
        "lead_to_win": (3, 38.5, 39.5, 44.7),
    }
    for stage, (n, mean, median, p90) in expected.items():
        row = table.loc[stage]
        assert row["n"] == n, stage
        assert (row["mean_days"], row["median_days"], row["p90_days"]) == pytest.approx((mean, median, p90)), stage


def test_revenue_is_booked_at_close_per_month_and_quarter(events: pd.DataFrame) -> None:
    """Revenue, wins and average deal size per period, every period of the horizon present."""
    months = m.revenue_by_period(events, JAN_1, "month")
    assert months["period"].tolist() == ["2027-01", "2027-02", "2027-03"]
    assert months["wins"].tolist() == [0, 1, 2]
    assert months["revenue"].tolist() == [0.0, 20000.0, 35000.0]  # March: 30000 + 5000
    assert months["average_deal_size"].tolist()[1:] == [20000.0, 17500.0]
    assert math.isnan(months["average_deal_size"].iloc[0])  # no wins in January
    quarters = m.revenue_by_period(events, JAN_1, "quarter", horizon_days=200)  # day 199 is Jul 19
    assert quarters["period"].tolist() == ["2027Q1", "2027Q2", "2027Q3"]
    assert quarters["wins"].tolist() == [3, 0, 0]
    assert quarters["revenue"].tolist() == [55000.0, 0.0, 0.0]
    assert quarters["average_deal_size"].iloc[0] == pytest.approx(55000 / 3)


def test_periods_follow_the_calendar_from_a_mid_month_start() -> None:
    """Day 0 is start_date: a run starting on Nov 20 books day 11 in December and day 42 in the next year."""
    log = event_log(
        [
            (0.0, 0, "created", -1, NAN),
            (0.0, 0, "opportunity", 0, 100.0),
            (11.0, 0, "won", 0, 100.0),  # Dec 1
            (1.0, 1, "created", -1, NAN),
            (1.0, 1, "opportunity", 0, 50.0),
            (42.9, 1, "won", 0, 50.0),  # day 42 = Jan 1, 2027
        ]
    )
    table = m.revenue_by_period(log, dt.date(2026, 11, 20), "month")
    assert table["period"].tolist() == ["2026-11", "2026-12", "2027-01"]
    assert table["revenue"].tolist() == [0.0, 100.0, 50.0]
    quarters = m.revenue_by_period(log, dt.date(2026, 11, 20), "quarter")
    assert quarters["period"].tolist() == ["2026Q4", "2027Q1"]


# ---------------------------------------------------------------------------
# Leakage


def test_leakage_accounts_for_every_lead_by_its_final_state(events: pd.DataFrame) -> None:
    """Each lead that left the funnel is counted once, by why it left; leaks + wins + open = all leads."""
    table = m.leakage(events).set_index("reason")
    # final states: 1 dormant, 2 not followed up, 5 SDR abandoned, 11 unreached, 4 rejected,
    # 12 disqualified, 8 AE abandoned, 3 lost; lead 3 was unreached and lead 7 disqualified
    # earlier, but both were recycled, so those do not count as leaks
    leaks = {
        "never_mql_dormant": 1,
        "not_followed_up": 1,
        "sdr_abandoned": 1,
        "lost_to_slow_response": 1,
        "rejected_by_sales": 1,
        "disqualified_by_ae": 1,
        "ae_abandoned": 1,
        "lost_deal": 1,
    }
    assert table.index.tolist() == [*leaks, "recycled", "recycled_then_won", "still_open"]
    assert table["leads"].to_dict() == {**leaks, "recycled": 2, "recycled_then_won": 1, "still_open": 2}
    assert table["share_of_leads"].tolist() == pytest.approx(table["leads"].to_numpy() / 13)
    wins = 3  # leads 0, 6, 7
    leaked = table.loc[table["kind"] == "leak", "leads"].sum()
    assert leaked + wins + table.loc["still_open", "leads"] == 13  # 8 + 3 + 2 (lead 9 MQL, lead 10 opportunity)
    assert table.loc["never_mql_dormant", "stage"] == "lead"
    assert table.loc["lost_deal", "stage"] == "opportunity"


def test_leakage_is_not_fooled_by_a_creation_logged_after_the_mql() -> None:
    """A partner lead whose creation sorts after its MQL (same moment, one ulp apart) still counts as leaked."""
    log = event_log(
        [
            (5.0 - 1e-15, 0, "mql", -1, NAN),
            (5.0 - 1e-15, 0, "not_followed_up", -1, NAN),
            (5.0, 0, "created", -1, NAN),
            (6.0, 1, "created", -1, NAN),  # only created: still in nurture
        ]
    )
    table = m.leakage(log).set_index("reason")["leads"]
    assert (table["not_followed_up"], table["still_open"]) == (1, 1)


# ---------------------------------------------------------------------------
# Levels: time-weighted


def test_utilisation_is_busy_slot_days_over_available_slot_days() -> None:
    """Two slots for 10 days, one busy for 4 days then both for 6: utilisation (4 + 12) / 20 = 0.8."""
    levels = level_log(
        [
            (0.0, "sdr", 0, 1, 2),
            (4.0, "sdr", 0, 2, 2),
            (10.0, "sdr", 0, 0, 2),
            (0.0, "ae", 0, 0, 5),
        ]
    )
    assert m.utilisation(levels, "sdr") == pytest.approx(0.8)  # end defaults to the last row (day 10)
    assert m.utilisation(levels, "sdr", 0.0, 20.0) == pytest.approx(16 / 40)  # idle after day 10
    assert m.utilisation(levels, "sdr", 4.0, 10.0) == pytest.approx(1.0)
    assert m.utilisation(levels, "ae", 0.0, 10.0) == 0.0


def test_utilisation_weights_by_capacity_not_by_time() -> None:
    """One slot busy for 5 days, then 3 idle slots for 5: 5 / 20 = 0.25, not the 0.5 a mean of ratios gives."""
    levels = level_log([(0.0, "ae", 0, 1, 1), (5.0, "ae", 0, 0, 3)])
    assert m.utilisation(levels, "ae", 0.0, 10.0) == pytest.approx(5 / (1 * 5 + 3 * 5))
    assert m.time_weighted_mean(levels, "ae", "capacity", 0.0, 10.0) == pytest.approx(2.0)  # (5 + 15) / 10


def test_time_weighted_mean_queue() -> None:
    """A level holds until the next change; of two rows at one time the last holds; 0 before the first row."""
    levels = level_log(
        [
            (2.0, "sdr", 5, 1, 1),  # superseded at once by the next row
            (2.0, "sdr", 3, 1, 1),
            (5.0, "sdr", 1, 1, 1),
        ]
    )
    # 0 on [0, 2), 3 on [2, 5), 1 on [5, 10): (0 + 9 + 5) / 10
    assert m.time_weighted_mean(levels, "sdr", "queue", 0.0, 10.0) == pytest.approx(1.4)
    # 3 on [3, 5), 1 on [5, 7): (6 + 2) / 4
    assert m.time_weighted_mean(levels, "sdr", "queue", 3.0, 7.0) == pytest.approx(2.0)


def test_capacity_by_month_time_weights_each_calendar_month(events: pd.DataFrame) -> None:
    """Per month and team: mean slots, busy, utilisation, queue and the waits a lead saw."""
    levels = level_log(
        [
            (0.0, "sdr", 0, 0, 2),
            (10.0, "sdr", 0, 1, 2),
            (20.0, "sdr", 3, 2, 2),
            (40.0, "sdr", 0, 2, 2),
            (59.0, "sdr", 1, 1, 2),
            (59.0, "sdr", 0, 1, 4),  # two SDRs join on Mar 1; this row holds
            (0.0, "ae", 0, 5, 10),
            (31.0, "ae", 2, 10, 10),
        ]
    )
    table = m.capacity_by_month(levels, events, JAN_1, horizon_days=90)
    assert list(table.columns) == [
        "month",
        "team",
        *("capacity", "busy", "utilisation", "mean_queue", "max_queue"),
        *("arrivals", "p_wait", "wait_all_days", "wait_served_days", "abandoned_share", "still_waiting"),
        "mean_response_days",
    ]
    assert list(zip(table["month"], table["team"], strict=True)) == [
        ("2027-01", "sdr"),
        ("2027-01", "ae"),
        ("2027-02", "sdr"),
        ("2027-02", "ae"),
        ("2027-03", "sdr"),
        ("2027-03", "ae"),
    ]
    sdr = table[table["team"] == "sdr"].set_index("month")
    # January, days [0, 31): busy 0 x 10 + 1 x 10 + 2 x 11 = 32; queue 3 x 11 = 33; capacity 2
    # February, [31, 59): busy 2 x 28; queue 3 on [31, 40) = 27, then 0
    # March, [59, 90): capacity 4, busy 1, queue 0
    assert sdr["capacity"].tolist() == pytest.approx([2.0, 2.0, 4.0])
    assert sdr["busy"].tolist() == pytest.approx([32 / 31, 2.0, 1.0])
    assert sdr["utilisation"].tolist() == pytest.approx([32 / 62, 1.0, 0.25])
    assert sdr["mean_queue"].tolist() == pytest.approx([33 / 31, 27 / 28, 0.0])
    assert sdr["max_queue"].tolist() == [3, 3, 0]  # February starts with the queue of 3 from day 20
    # SDR waits (sdr_start value): Jan 0.25, 1.0, 0.5, 1.5, 0.5 -> 3.75 / 5; Feb 0.5, 0.5, 0.2, 0.5 -> 1.7 / 4; Mar 0.5
    assert sdr["mean_response_days"].tolist() == pytest.approx([0.75, 0.425, 0.5])
    ae = table[table["team"] == "ae"].set_index("month")
    assert ae["utilisation"].tolist() == pytest.approx([0.5, 1.0, 1.0])
    assert ae["mean_queue"].tolist() == pytest.approx([0.0, 2.0, 2.0])
    assert ae["max_queue"].tolist() == [0, 2, 2]
    # AE waits, opportunity minus the lead's latest SQL: Jan lead 0 12 - 10.5; Feb lead 3 36 - 36 and
    # lead 7 52 - 51 (not its first SQL on day 35); Mar lead 10 64 - 63; lead 6 was prospected, no SQL
    assert ae["mean_response_days"].tolist() == pytest.approx([1.5, 0.5, 1.0])


QUEUE_ROWS = [
    (1.0, 0, "mql", -1, NAN),
    (1.0, 0, "sdr_start", 0, 0.0),  # an SDR free: served at once
    (1.2, 0, "sql", 0, NAN),
    (1.2, 0, "opportunity", 1, 9000.0),  # an AE slot free: served at once
    (2.0, 1, "mql", -1, NAN),
    (2.5, 1, "sdr_queued", -1, NAN),  # picked up after 0.5 days, every SDR busy
    (3.0, 1, "sdr_start", 1, 1.0),
    (3.1, 1, "sql", 1, NAN),
    (10.0, 1, "ae_abandoned", -1, NAN),
    (2.0, 2, "mql", -1, NAN),
    (2.2, 2, "sdr_queued", -1, NAN),
    (4.0, 2, "sdr_abandoned", -1, NAN),
    (5.0, 3, "mql", -1, NAN),
    (5.0, 3, "sdr_queued", -1, NAN),  # still waiting when the log ends
    (0.5, 4, "sdr_start", 2, 3.0),  # its MQL and queueing were before day 0: not an arrival of the log
    (4.0, 5, "sql", 2, NAN),
    (6.0, 5, "disqualified", 1, NAN),
]


def test_queue_visits_are_one_row_per_arrival_with_its_wait_and_outcome() -> None:
    """SDR arrivals are the pick-ups (queued or not), AE arrivals the SQLs; waits run to the start or
    to going cold; a wait still open at the end has no value; a pass begun before the log is left out."""
    log = event_log(QUEUE_ROWS)
    sdr = m.queue_visits(log, "sdr")
    assert sdr["time"].tolist() == [1.0, 2.2, 2.5, 5.0]
    assert sdr["queued"].tolist() == [False, True, True, True]
    assert sdr["outcome"].astype(str).tolist() == ["served", "abandoned", "served", "waiting"]
    np.testing.assert_allclose(sdr["wait"], [0.0, 1.8, 0.5, np.nan])
    ae = m.queue_visits(log, "ae")
    assert ae["time"].tolist() == [1.2, 3.1, 4.0]
    assert ae["queued"].tolist() == [False, True, True]
    assert ae["outcome"].astype(str).tolist() == ["served", "abandoned", "served"]
    np.testing.assert_allclose(ae["wait"], [0.0, 6.9, 2.0])
    months = m.capacity_by_month(pd.DataFrame(columns=["time", "team", "queue", "busy", "capacity"]), log, JAN_1, 31)
    row = months[months["team"] == "sdr"].iloc[0]
    assert (row["arrivals"], row["still_waiting"]) == (4, 1)
    assert row["p_wait"] == pytest.approx(3 / 4) and row["abandoned_share"] == pytest.approx(1 / 3)
    assert row["wait_all_days"] == pytest.approx(2.3 / 3) and row["wait_served_days"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="team"):
        m.queue_visits(log, "marketing")


def test_pipeline_over_time_steps_with_each_deal(events: pd.DataFrame) -> None:
    """Open pipeline count and value rise when a deal opens and fall when it closes, won or lost."""
    table = m.pipeline_over_time(events)
    assert table["time"].tolist() == [12.0, 33.0, 36.0, 40.0, 52.0, 63.0, 64.0, 70.0, 80.0]
    # opens: 0 (20000), 6 (30000), 3 (10000); 0 won; opens 7 (5000); 6 won; opens 10 (8000); 3 lost; 7 won
    assert table["open_opportunities"].tolist() == [1, 2, 3, 2, 3, 2, 3, 2, 1]
    assert table["open_value"].tolist() == [20000, 50000, 60000, 40000, 45000, 15000, 23000, 13000, 8000]


def test_pipeline_changes_at_one_time_give_one_row() -> None:
    """Two changes at the same moment show as one step; an empty pipeline is worth exactly 0."""
    log = event_log(
        [
            (0.0, 0, "created", -1, NAN),
            (1.0, 0, "opportunity", 0, 0.1),
            (0.0, 1, "created", -1, NAN),
            (2.0, 1, "opportunity", 0, 0.7),
            (2.0, 0, "won", 0, 0.1),
            (3.0, 1, "lost", 0, 0.7),
        ]
    )
    table = m.pipeline_over_time(log)
    assert table["time"].tolist() == [1.0, 2.0, 3.0]
    assert table["open_opportunities"].tolist() == [1, 1, 0]
    assert table["open_value"].tolist() == pytest.approx([0.1, 0.7, 0.0])
    assert table["open_value"].iloc[-1] == 0.0  # 0.1 + 0.7 - 0.1 - 0.7 leaves no rounding residue


# ---------------------------------------------------------------------------
# Money


def small_scenario(horizon_days: float) -> Scenario:
    """The baseline company with two sources A ($100 a lead) and B ($50); an SDR costs $100 a day, an AE $200."""
    raw: dict[str, Any] = tomllib.loads(BASELINE.read_text(encoding="utf-8"))
    source = {"leads_per_month": 10, "persona_mix": {"buyer": 1.0}, "fit": 0.5}
    raw["sources"] = {"A": {**source, "cost_per_lead": 100.0}, "B": {**source, "cost_per_lead": 50.0}}
    raw["horizon_days"] = horizon_days
    raw["handoff"]["sdr"]["cost_per_year"] = 36525.0  # 100 a day over 365.25 days
    raw["sales"]["ae"]["cost_per_year"] = 73050.0  # 200 a day
    return parse_scenario(raw)


def test_costs_marketing_per_lead_and_sales_per_rep_day() -> None:
    """Marketing pays per lead by source, sales per rep-day on payroll (ramping hires in full); CAC = cost / win."""
    attributes = pd.DataFrame({"lead": range(6), "source": pd.Categorical(["A", "A", "A", "B", "B", "prospecting"])})
    events = event_log(
        [
            *[(0.0, lead, "created", -1, NAN) for lead in range(6)],
            *[(1.0, lead, "mql", -1, NAN) for lead in range(4)],
            *[(2.0, lead, "sql", 0, NAN) for lead in range(2)],
            (3.0, 0, "opportunity", 0, 10000.0),
            (3.0, 5, "opportunity", 0, 6000.0),
            (30.0, 0, "won", 0, 10000.0),
            (30.0, 5, "won", 0, 6000.0),
        ]
    )
    roster = pd.DataFrame(
        [
            (0.0, "sdr", 0, "joined", 1.0),  # on payroll the whole 100 days
            (0.0, "sdr", 1, "joined", 1.0),
            (40.0, "sdr", 1, "left", 0.0),  # left on day 40: 40 days
            (0.0, "ae", 0, "joined", 1.0),  # 100 days
            (30.0, "ae", 1, "joined", 0.0),  # a hire whose first ramp month is 0%: paid from day 30, 70 days
            (50.0, "ae", 2, "joined", 0.25),
            (60.0, "ae", 2, "ramp", 0.5),
            (80.0, "ae", 2, "left", 0.0),  # ramping, left on day 80: 30 days
            (20.0, "ae", 3, "joined", 0.0),
            (50.0, "ae", 3, "ramp", 0.0),  # a 0% ramp step is not a departure
            (70.0, "ae", 3, "left", 0.0),  # left on day 70 before being productive: 50 days
        ],
        columns=["time", "team", "rep", "change", "productivity"],
    )
    money = m.costs(attributes, roster, small_scenario(100), events)
    # marketing: 3 x 100 + 2 x 50; the prospected deal costs nothing
    assert money["marketing_cost_by_source"] == {"A": 300.0, "B": 100.0}
    assert money["marketing_cost"] == 400.0
    assert money["sdr_cost"] == pytest.approx((100 + 40) * 100.0)
    assert money["ae_cost"] == pytest.approx((100 + 70 + 30 + 50) * 200.0)
    assert money["sales_cost"] == pytest.approx(14000 + 50000)
    assert money["total_cost"] == pytest.approx(64400.0)
    assert money["average_sdr_headcount"] == pytest.approx(1.4)  # 140 rep-days / 100 days
    assert money["average_ae_headcount"] == pytest.approx(2.5)  # 250 / 100
    assert money["cost_per_mql"] == pytest.approx(400 / 4)  # marketing cost / MQLs (leads 0-3)
    assert money["cost_per_sql"] == pytest.approx(400 / 2)
    assert money["cost_per_win"] == pytest.approx(64400 / 2)  # total cost / wins
    assert money["cac"] == money["cost_per_win"]
    assert money["revenue_per_ae"] == pytest.approx(16000 / 2.5)
    # a shorter horizon cuts everyone's days: SDRs 50 + 40, AEs 50 + 20 + 0 + 30
    short = m.costs(attributes, roster, small_scenario(100), events, horizon_days=50)
    assert short["sdr_cost"] == pytest.approx(90 * 100.0)
    assert short["ae_cost"] == pytest.approx(100 * 200.0)


# ---------------------------------------------------------------------------
# Segments


def test_by_segment_splits_the_funnel_by_source_and_persona() -> None:
    """Volumes and revenue per channel and per persona, with a row for a category that brought no leads."""
    leads = pd.DataFrame(
        {
            "lead": range(6),
            "source": pd.Categorical(
                ["inbound", "inbound", "inbound", "partner", "prospecting", "partner"],
                categories=["inbound", "events", "partner", "prospecting"],
            ),
            "persona": pd.Categorical(
                ["buyer", "influencer", "buyer", "buyer", "buyer", "influencer"],
                categories=["buyer", "influencer", "researcher"],
            ),
            "mql": [1.0, 1.0, NAN, 0.0, NAN, 3.0],
            "sql": [2.0, NAN, NAN, 1.0, NAN, 4.0],
            "opportunity": [3.0, NAN, NAN, 2.0, 0.0, 5.0],
            "state": ["won", "rejected", "dormant", "lost", "won", "opportunity"],
            "amount": [10000.0, NAN, NAN, 5000.0, 20000.0, 7000.0],  # only won amounts are revenue
        }
    )
    source = m.by_segment(leads, "source").set_index("source")
    assert source.index.tolist() == ["inbound", "events", "partner", "prospecting"]
    assert source["leads"].tolist() == [3, 0, 2, 1]
    assert source["mqls"].tolist() == [2, 0, 2, 0]
    assert source["sqls"].tolist() == [1, 0, 2, 0]
    assert source["opportunities"].tolist() == [1, 0, 2, 1]
    assert source["wins"].tolist() == [1, 0, 0, 1]
    assert source["revenue"].tolist() == [10000.0, 0.0, 0.0, 20000.0]
    assert source["lead_to_win"].tolist() == pytest.approx([1 / 3, NAN, 0.0, 1.0], nan_ok=True)
    persona = m.by_segment(leads, "persona").set_index("persona")
    assert persona.index.tolist() == ["buyer", "influencer", "researcher"]
    assert persona["leads"].tolist() == [4, 2, 0]  # buyers: 0, 2, 3, 4
    assert persona["opportunities"].tolist() == [3, 1, 0]
    assert persona["wins"].tolist() == [2, 0, 0]
    assert persona["revenue"].tolist() == [30000.0, 0.0, 0.0]
    assert persona["lead_to_win"].iloc[0] == 0.5


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ev, lv: m.revenue_by_period(ev, JAN_1, "week"), "freq must be"),
        (lambda ev, lv: m.utilisation(lv, "SDR"), "unknown team 'SDR'"),
        (lambda ev, lv: m.time_weighted_mean(lv, "sdr", "waiting"), "no column 'waiting'"),
        (lambda ev, lv: m.utilisation(lv, "sdr", 5.0, 1.0), "before start"),
        (lambda ev, lv: m.stages_by_month(ev, JAN_1, horizon_days=0), "horizon_days must be > 0"),
        (lambda ev, lv: m.by_segment(pd.DataFrame(), "region"), "by must be"),
    ],
)
def test_bad_arguments_are_refused_with_a_message(call: Any, message: str, events: pd.DataFrame) -> None:
    """A typo in a team, column or period is an error naming it, not a silent NaN."""
    levels = level_log([(0.0, "sdr", 0, 0, 1)])
    with pytest.raises(ValueError, match=message):
        call(events, levels)


# ---------------------------------------------------------------------------
# A real run: the tables agree with each other


@pytest.fixture(scope="module")
def run() -> RunResult:
    return simulate(load_scenario(BASELINE), seed=11)


def test_metrics_of_a_baseline_run_add_up(run: RunResult) -> None:
    """On a simulated year every table is consistent: leakage, periods and segments sum to the run's totals."""
    sc, events = run.scenario, run.events
    s = m.summary(events)

    # Every lead of the log ends in one state: the year's leads and those carried over from the burn-in.
    leak = m.leakage(events).set_index("reason")
    in_log = len(run.attributes)
    assert leak.loc[leak["kind"] == "leak", "leads"].sum() + s["wins"] + leak.loc["still_open", "leads"] == in_log
    assert s["leads"] == (events["event"] == "created").sum() < in_log
    assert leak.loc["recycled", "leads"] <= (run.attributes["recycles"] > 0).sum()  # some were recycled before

    for freq in ("month", "quarter"):
        periods = m.revenue_by_period(events, sc.start_date, freq, sc.horizon_days)
        assert len(periods) == {"month": 12, "quarter": 4}[freq]
        assert periods["revenue"].sum() == pytest.approx(s["revenue"])
        assert periods["wins"].sum() == s["wins"]

    months = m.stages_by_month(events, sc.start_date, sc.horizon_days)
    assert len(months) == 12
    for column in ("leads", "mqls", "sqls", "opportunities", "wins"):
        assert months[column].sum() == s[column]

    for by in ("source", "persona"):
        seg = m.by_segment(run.leads, by)
        for column in ("leads", "mqls", "sqls", "opportunities", "wins"):
            assert seg[column].sum() == s[column], (by, column)
        assert seg["revenue"].sum() == pytest.approx(s["revenue"])

    # Spans from creation count the leads created in the year (a lead from the burn-in has no start).
    stages = m.time_in_stage(events).set_index("stage")
    born = run.leads["created"].notna()
    assert stages.loc["lead_to_mql", "n"] == (born & run.leads["mql"].notna()).sum() < s["mqls"]
    assert stages.loc["lead_to_win", "n"] == (born & (run.leads["state"] == "won")).sum() < s["wins"]
    assert stages.loc["lead_to_win", "median_days"] == pytest.approx(s["median_lead_to_win_days"])

    capacity = m.capacity_by_month(run.levels, events, sc.start_date, sc.horizon_days)
    assert len(capacity) == 24
    assert capacity["utilisation"].between(0, 1).all()
    sdr = capacity[capacity["team"] == "sdr"]
    year = m.time_weighted_mean(run.levels, "sdr", "queue", 0.0, sc.horizon_days)
    days = np.diff([0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365])
    assert np.dot(sdr["mean_queue"], days) / 365 == pytest.approx(year)  # months partition the year

    # The pipeline starts from the deals open on day 0; at the end it holds the deals opened in the year
    # and still open, and those of day 0 still open (without an event in the year, not in the lead table).
    opening = run.metadata["open_at_start"]
    pipeline = m.pipeline_over_time(events, (opening["opportunities"], opening["value"]))
    open_in_table = (run.leads["state"] == "opportunity").sum()
    assert open_in_table <= pipeline["open_opportunities"].iloc[-1] <= open_in_table + opening["opportunities"]
    assert (pipeline["open_opportunities"] >= 0).all()

    flat = m.summarize_run(run)
    assert set(s) <= set(flat)
    assert all(type(v) in (int, float) for v in flat.values())
    json.dumps(flat)  # ready for --json
    sources = [f"marketing_cost_{name}" for name in sc.sources]
    assert sum(flat[key] for key in sources) == pytest.approx(flat["marketing_cost"])
    assert 0 < flat["sdr_utilisation"] <= 1 and 0 < flat["ae_utilisation"] <= 1
    assert flat["cac"] == pytest.approx(flat["total_cost"] / flat["wins"])


def test_summarize_run_agrees_with_summary_costs_and_utilisation():
    sc = load_scenario(Path(__file__).resolve().parent.parent / "scenarios" / "baseline.toml", ["sales.ae.count=3"])
    result = simulate(sc, seed=3)
    flat = m.summarize_run(result)
    expected = dict(m.summary(result.events))
    money = m.costs(result.attributes, result.roster, sc, result.events)
    by_source = money.pop("marketing_cost_by_source")
    expected |= money | {f"marketing_cost_{k}": v for k, v in by_source.items()}
    expected |= {f"{t}_utilisation": m.utilisation(result.levels, t, 0.0, sc.horizon_days) for t in m.TEAMS}
    for t in m.TEAMS:  # the whole run's queue: capacity_by_month's columns over every arrival of the run
        visits = m.queue_visits(result.events, t)
        ended = visits[visits["outcome"] != "waiting"]
        expected[f"{t}_p_wait"] = visits["queued"].mean()
        expected[f"{t}_wait_all_days"] = ended["wait"].mean()
        expected[f"{t}_abandoned_share"] = (ended["outcome"] == "abandoned").mean()
    assert flat.keys() == expected.keys()
    for key, value in expected.items():
        assert flat[key] == pytest.approx(value, rel=1e-12, nan_ok=True), key
    # With last year's revenue the summary adds the growth over it (a 365-day horizon, as is).
    grown = simulate(sc.model_copy(update={"prior_year_revenue": 2_000_000.0}), seed=3)
    assert m.summarize_run(grown)["yoy_growth"] == pytest.approx(flat["revenue"] / 2_000_000.0 - 1)


def test_leakage_counts_are_the_leak_rows_of_leakage():
    """The numpy-only per-replication counts agree with the pandas table, reason by reason."""
    sc = load_scenario(Path(__file__).resolve().parent.parent / "scenarios" / "misaligned.toml", ["sales.ae.count=3"])
    result = simulate(sc, seed=4)
    table = m.leakage(result.events).set_index("reason")
    counts = m.leakage_counts(result.events)
    assert list(counts) == [f"leak_{reason}" for reason, _, _ in m.LEAKAGE_REASONS]
    for reason, _, _ in m.LEAKAGE_REASONS:
        assert counts[f"leak_{reason}"] == table.loc[reason, "leads"], reason
    assert counts["leak_ae_abandoned"] > 0  # three AEs: SQLs go cold waiting
