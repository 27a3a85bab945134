"""Recurring revenue: customers renew or churn by tenure, expand and contract, and the ARR bridge,
retention and unit economics read from their ledger are exact where a closed form exists.

The scenario is tests/scenarios/subscription.toml (a small SaaS company with 40 customers on day 0
in tests/scenarios/customers.csv). Statistical checks state their interval; seeds are fixed.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from funnelsim import load_scenario, simulate
from funnelsim.cli import app
from funnelsim.engine.customers import NewCustomers, installed_schedule, simulate_customers
from funnelsim.model.scenario import DAYS_PER_MONTH, Scenario, ScenarioError
from funnelsim.model.subscription import Contraction, Customer, Expansion, InstalledBase, Subscription
from funnelsim.randomness import Streams
from funnelsim.report.figures import arr_by_month_chart, arr_waterfall_chart
from funnelsim.run import recurring
from funnelsim.run.metrics import costs, spend_by_period, summarize_run
from funnelsim.studies import replications

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "tests" / "scenarios"
SUBSCRIPTION = SCENARIOS / "subscription.toml"
BASELINE = ROOT / "scenarios" / "baseline.toml"
START = dt.date(2027, 1, 1)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario(SUBSCRIPTION)


def _with(scenario: Scenario, horizon_days: float | None = None, **subscription: Any) -> Scenario:
    """``scenario`` with a subscription section of exactly these keys (and another horizon)."""
    update: dict[str, Any] = {"subscription": Subscription(**subscription)}
    if horizon_days is not None:
        update["horizon_days"] = horizon_days
    return scenario.model_copy(update=update)


def _cents(x: Any) -> np.ndarray:
    return np.rint(np.asarray(x, dtype=float) * 100).astype(np.int64)


def _check_bridge(bridge: pd.DataFrame) -> None:
    """closing = opening + new + expansion − contraction − churn in every period, to the cent, and
    each period opens where the previous one closed (ARR and customers)."""
    c = {col: _cents(bridge[col]) for col in recurring.BRIDGE_COLUMNS}
    flows = c["new_arr"] + c["expansion_arr"] - c["contraction_arr"] - c["churned_arr"]
    assert np.array_equal(c["closing_arr"] - c["opening_arr"], flows)
    assert np.array_equal(c["net_new_arr"], flows)
    assert np.array_equal(c["opening_arr"][1:], c["closing_arr"][:-1])
    n = bridge
    assert np.array_equal(n["closing_customers"] - n["opening_customers"], n["new_customers"] - n["churned_customers"])
    assert np.array_equal(n["opening_customers"].to_numpy()[1:], n["closing_customers"].to_numpy()[:-1])


def _balances(ledger: pd.DataFrame) -> tuple[int, int]:
    """ARR (cents) and customers at the end, read from each customer's last row (not from the bridge)."""
    last = ledger.drop_duplicates("customer", keep="last")
    alive = last[last["kind"] != "churn"]
    return int(_cents(alive["arr_after"]).sum()), len(alive)


# ---------------------------------------------------------------------------
# Closed forms


def _expected_customers(per_month: float, renewal: float, horizon: float) -> float:
    """E[customers just before the horizon]: arrivals at rate λ survive k monthly renewals with r^k,
    ``λ ∫_0^H r^floor(a / M) da`` (→ λ_month / (1 − r) for a long horizon)."""
    rate = per_month / DAYS_PER_MONTH
    full = int(horizon // DAYS_PER_MONTH)
    k = np.arange(full)
    return rate * (DAYS_PER_MONTH * float(np.sum(renewal**k)) + (horizon - full * DAYS_PER_MONTH) * renewal**full)


def test_steady_state_customers_are_new_per_month_over_monthly_churn(scenario: Scenario) -> None:
    """Monthly terms, renewal 0.9, Poisson arrivals of 20 a month: after 8 years the customer count is
    ``20 / 0.1 = 200`` (to 4e-5 of it: the truncated sum). Each replication's count is Poisson(200);
    over 120 replications the 99.9% Student-t interval of the mean (half-width ≈ 4.3) holds it: a
    renewal decided one month early or late (count 180 or 220) is far outside."""
    horizon = 96 * DAYS_PER_MONTH
    sc = _with(scenario, horizon, term_months=1, billing="monthly", renewal_probability=[0.9])
    counts = []
    for rep in range(120):
        rng = np.random.default_rng([2027, rep])
        n = rng.poisson(20 * 96)
        signed = np.sort(rng.uniform(0, horizon, n))
        ledger, _ = simulate_customers(sc, NewCustomers.of(signed, np.full(n, 12_000.0)), Streams(5, rep), horizon)
        counts.append(recurring.arr_bridge(ledger, sc.start_date, horizon)["closing_customers"].iloc[-1])
    x = np.array(counts, dtype=float)
    expected = _expected_customers(20, 0.9, horizon)
    assert abs(expected - 200) < 0.01
    half = stats.t.ppf(0.9995, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    assert abs(x.mean() - expected) <= half, (x.mean(), expected, half)
    assert 0.8 < x.var(ddof=1) / x.mean() < 1.25  # Poisson: variance = mean (chi-square 99.9%: 0.72-1.37)


def test_renewal_probability_by_tenure_is_honoured(scenario: Scenario) -> None:
    """renewal_probability = [0.6, 0.8, 0.95]: the share renewing at the 1st, 2nd, 3rd and 4th term end
    (new customers), and an installed customer with one renewal behind it renewing at 0.8: each
    within the 99.9% Wilson interval of its count."""
    customers = [Customer(arr=10_000.0, renewal_date=dt.date(2027, 2, 1), renewals=1) for _ in range(4000)]
    sc = _with(
        scenario,
        5 * 365.25,
        term_months=12,
        renewal_probability=[0.6, 0.8, 0.95],
        installed_base=InstalledBase(customers=customers),
    )
    n = 8000
    signed = np.linspace(0, 20, n)
    ledger, _ = simulate_customers(sc, NewCustomers.of(signed, np.full(n, 10_000.0)), Streams(3))
    new = ledger[ledger["customer"] >= 4000]  # the installed base comes first
    for tenure, probability in enumerate([0.6, 0.8, 0.95, 0.95]):
        renewed = int(((new["kind"] == "renewal") & (new["renewals"] == tenure + 1)).sum())
        churned = int(((new["kind"] == "churn") & (new["renewals"] == tenure)).sum())
        ci = stats.binomtest(renewed, renewed + churned).proportion_ci(0.999, method="wilson")
        assert ci.low <= probability <= ci.high, (tenure, renewed, churned)
    base = ledger[(ledger["customer"] < 4000) & (ledger["time"] == 31.0)]
    renewed = int((base["kind"] == "renewal").sum())
    assert renewed + int((base["kind"] == "churn").sum()) == 4000  # each decided on 1 February
    ci = stats.binomtest(renewed, 4000).proportion_ci(0.999, method="wilson")
    assert ci.low <= 0.8 <= ci.high


def test_ltv_is_arpa_times_margin_over_churn_for_constant_rates() -> None:
    """A constructed ledger: 100 customers at 12,000 ARR (ARPA 1,000 a month); each month 5 churn and 5
    new ones sign at the same moment. Churn is 5 / 100 = 5% a month, so LTV = 1,000 × 0.8 / 0.05 =
    16,000 exactly; with CAC 4,000: LTV:CAC 4 and payback 4,000 / (1,000 × 0.8) = 5 months."""
    rows = [(-1, c, "opening", 12_000.0, 12_000.0) for c in range(100)]
    alive, next_id = list(range(100)), 100
    for month in range(12):
        t = (month + 0.5) * DAYS_PER_MONTH
        for c in alive[:5]:
            rows.append((t, c, "churn", -12_000.0, 0.0))
        alive = alive[5:]
        for _ in range(5):
            rows.append((t, next_id, "new", 12_000.0, 12_000.0))
            alive.append(next_id)
            next_id += 1
    ledger = pd.DataFrame(rows, columns=["time", "customer", "kind", "arr_change", "arr_after"])
    ledger["time"] = ledger["time"].clip(lower=0.0)
    horizon = 12 * DAYS_PER_MONTH
    got = recurring.unit_economics(ledger, horizon, gross_margin=0.8, cac=4_000.0)
    assert got["arpa_per_month"] == pytest.approx(1_000.0, rel=1e-12)
    assert got["monthly_churn_rate"] == pytest.approx(0.05, rel=1e-12)
    assert got["ltv"] == pytest.approx(16_000.0, rel=1e-12)
    assert got["ltv_to_cac"] == pytest.approx(4.0, rel=1e-12)
    assert got["cac_payback_months"] == pytest.approx(5.0, rel=1e-12)


def test_nrr_and_grr_of_a_hand_made_cohort() -> None:
    """Three customers of 100 on day 0: one expands to 150, one churns, one contracts to 80; a new
    customer (not in the cohort) signs. NRR = 230 / 300, GRR = (100 + 0 + 80) / 300 (expansion capped)."""
    ledger = pd.DataFrame(
        [
            (0.0, 0, "opening", 100.0, 100.0),
            (0.0, 1, "opening", 100.0, 100.0),
            (0.0, 2, "opening", 100.0, 100.0),
            (10.0, 3, "new", 500.0, 500.0),
            (20.0, 0, "expansion", 50.0, 150.0),
            (30.0, 1, "churn", -100.0, 0.0),
            (40.0, 2, "contraction", -20.0, 80.0),
        ],
        columns=["time", "customer", "kind", "arr_change", "arr_after"],
    )
    got = recurring.retention(ledger, 0.0, 365.0)
    assert got["nrr"] == pytest.approx(230 / 300)
    assert got["grr"] == pytest.approx(180 / 300)
    assert got["cohort_customers"] == 3


# ---------------------------------------------------------------------------
# The bridge: exact, every month, whatever the settings


def _random_subscription(rng: np.random.Generator) -> dict[str, Any]:
    term = int(rng.choice([1, 3, 6, 12, 24]))
    billing = str(rng.choice([b for b, m in (("monthly", 1), ("quarterly", 3), ("annual", 12)) if term % m == 0]))
    start = START - dt.timedelta(days=int(rng.integers(0, 900)))
    base = [
        Customer(arr=float(rng.lognormal(9, 1)), start_date=start - dt.timedelta(days=int(rng.integers(0, 400))))
        for _ in range(int(rng.integers(0, 30)))
    ]
    return {
        "term_months": term,
        "billing": billing,
        "renewal_probability": list(rng.uniform(0.3, 1.0, int(rng.integers(1, 4)))),
        "expansion": Expansion(
            probability_per_month=float(rng.uniform(0, 0.3)),
            size_fraction={"dist": "lognormal", "mean": float(rng.uniform(0.05, 0.5)), "sd": 0.2},
            probability_at_renewal=float(rng.uniform(0, 0.5)),
        ),
        "contraction": Contraction(
            probability_per_month=float(rng.uniform(0, 0.3)),
            size_fraction={"dist": "beta", "a": 2.0, "b": float(rng.uniform(1, 10))},
            probability_at_renewal=float(rng.uniform(0, 0.5)),
            size_fraction_at_renewal={"dist": "uniform", "low": 0.0, "high": 1.0},
        ),
        "installed_base": InstalledBase(customers=base),
    }


@pytest.mark.parametrize("seed", range(40))
def test_bridge_sums_exactly_to_the_change_in_arr_every_month(scenario: Scenario, seed: int) -> None:
    """40 random subscription settings (terms, billing, renewal by tenure, expansion and contraction per
    month and at renewal, an installed base, ARR in odd cents): each month's and quarter's bridge holds
    to the cent, and the closing ARR and customers are those of the customers' own balances."""
    rng = np.random.default_rng(seed)
    horizon = float(rng.uniform(100, 1500))
    sc = _with(scenario, horizon, **_random_subscription(rng))
    n = int(rng.poisson(60))
    new = NewCustomers.of(np.sort(rng.uniform(0, horizon, n)), rng.lognormal(10, 1, n))
    ledger, billings = simulate_customers(sc, new, Streams(seed))
    for freq in ("month", "quarter"):
        bridge = recurring.arr_bridge(ledger, sc.start_date, horizon, freq, billings)  # type: ignore[arg-type]
        _check_bridge(bridge)
    arr, customers = _balances(ledger)
    assert _cents(bridge["closing_arr"].iloc[-1]) == arr and bridge["closing_customers"].iloc[-1] == customers
    assert (ledger["time"] < horizon).all() and (ledger["arr_after"] >= 0).all()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_bridge_of_a_simulated_year_holds(scenario: Scenario, seed: int) -> None:
    """The full engine on the test scenario: won deals become the new customers (their ARR is the deal's
    value), and the bridge and the summary agree with the ledger."""
    result = simulate(scenario, seed=seed)
    assert result.arr_ledger is not None and result.billings is not None
    won = result.events[result.events["event"] == "won"]
    new = result.arr_ledger[result.arr_ledger["kind"] == "new"]
    assert np.array_equal(_cents(new["arr_change"]), _cents(won["value"]))
    assert np.array_equal(new["lead"].to_numpy(), won["lead"].to_numpy())
    bridge = recurring.arr_bridge(result.arr_ledger, scenario.start_date, scenario.horizon_days)
    _check_bridge(bridge)
    stats_ = summarize_run(result)
    assert stats_["new_customers"] == len(won) == stats_["wins"]
    assert stats_["new_arr"] == pytest.approx(stats_["revenue"])
    assert stats_["ending_arr"] == pytest.approx(stats_["opening_arr"] + stats_["net_new_arr"])
    assert stats_["opening_customers"] == 40


# ---------------------------------------------------------------------------
# The installed base


def test_installed_base_is_read_from_the_csv(scenario: Scenario) -> None:
    """The 40 rows of customers.csv become the installed base; the ledger opens with their ARR, and each
    customer's first renewal falls on its renewal date (or on the anniversary of its start date)."""
    customers = scenario.subscription.customers  # type: ignore[union-attr]
    assert len(customers) == 40
    first = customers[0]
    assert (first.id, first.arr, first.renewal_date, first.renewals) == ("C001", 20012.31, dt.date(2027, 9, 7), 3)
    result = simulate(scenario, seed=1)
    ledger = result.arr_ledger
    assert ledger is not None
    opening = ledger[ledger["kind"] == "opening"]
    assert len(opening) == 40 and (opening["lead"] == -1).all()
    assert _cents(opening["arr_change"]).sum() == _cents([c.arr for c in customers]).sum()
    decided = ledger[ledger["kind"].isin(["renewal", "churn"]) & (ledger["customer"] == 0)]
    assert decided["time"].iloc[0] == (dt.date(2027, 9, 7) - START).days
    # C004 started 2025-01-17 on annual terms: 714 days before day 0, so its 2nd term ends on day
    # 2 × 365.25 − 714 = 16.5, one renewal behind it.
    c004 = customers[3]
    assert c004.start_date == dt.date(2025, 1, 17)
    assert installed_schedule(c004, START, 12) == (pytest.approx(16.5), 1)


def _bad_scenario(tmp_path: Path, csv_text: str) -> Path:
    (tmp_path / "customers.csv").write_text(csv_text, encoding="utf-8")
    path = tmp_path / "scenario.toml"
    path.write_text(SUBSCRIPTION.read_text(encoding="utf-8"), encoding="utf-8")
    return path


BAD_ROWS = (
    "id,arr,renewal_date,start_date,renewals\n"
    "A,1000,2027-03-01,,\n"  # line 2: fine
    "B,abc,2027-03-01,,\n"  # line 3: not a number
    "C,-5,2027-03-01,,\n"  # line 4: negative
    "D,1000,2027-13-01,,\n"  # line 5: no such month
    "E,1000,2026-12-01,,\n"  # line 6: a renewal already past
    "F,1000,,2027-02-01,\n"  # line 7: started after day 0
    "G,1000,,,\n"  # line 8: no date at all
    "A,1000,2027-03-01,,\n"  # line 9: duplicate id
    "H,1000,2027-03-01,,1.5\n"  # line 10: renewals not a whole number
    "I,,2027-03-01,,\n"  # line 11: arr missing
)


@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_customer_rows_are_refused_with_their_line_numbers(tmp_path: Path, command: str) -> None:
    """Each bad cell of the installed base's CSV is named by file, line and column; exit 2, no traceback."""
    path = _bad_scenario(tmp_path, BAD_ROWS)
    done = CliRunner().invoke(app, [command, str(path)])
    text = done.stdout + done.stderr
    assert done.exit_code == 2, text
    assert "Traceback" not in text
    where = str(tmp_path / "customers.csv")
    for line, column, message in [
        (3, "arr", "expected a number, got 'abc'"),
        (4, "arr", "must be a finite number >= 0, got '-5'"),
        (5, "renewal_date", "expected a date YYYY-MM-DD, got '2027-13-01'"),
        (6, "renewal_date", "2026-12-01 is before start_date 2027-01-01"),
        (7, "start_date", "2027-02-01 is after start_date 2027-01-01"),
        (8, "renewal_date", "give renewal_date or start_date (or both)"),
        (9, "id", "duplicate id 'A' (first on line 2)"),
        (10, "renewals", "expected a whole number >= 0, got '1.5'"),
        (11, "arr", "required, but empty"),
    ]:
        assert f"{where} line {line}, column {column}: {message}" in text, (line, text)
    assert "line 2," not in text


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("id,arr,renewl_date\n", "column 'renewl_date': unknown column (did you mean 'renewal_date'?)"),
        ("id,renewal_date\n", "missing the required column 'arr'"),
        ("id,arr\n", "needs a column 'renewal_date' or 'start_date'"),
    ],
)
def test_a_bad_header_is_refused(tmp_path: Path, header: str, message: str) -> None:
    path = _bad_scenario(tmp_path, header + "A,1,2027-02-01\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert "customers.csv line 1" in str(caught.value) and message in str(caught.value)


def test_inline_customers_are_checked_with_their_dotted_path(scenario: Scenario) -> None:
    """Inline customers get the CSV's checks, named by dotted path; the section's own rules too."""
    raw = load_scenario(BASELINE).to_dict()
    raw["subscription"] = {
        "renewal_probability": [0.9],
        "term_months": 6,
        "billing": "annual",
        "installed_base": {"customers": [{"arr": 10.0, "renewal_date": "2026-12-01"}, {"arr": 5.0}]},
    }
    from funnelsim.model.loading import parse_scenario

    with pytest.raises(ScenarioError) as caught:
        parse_scenario(raw)
    text = str(caught.value)
    assert "subscription.installed_base.customers.0.renewal_date: 2026-12-01 is before start_date" in text
    assert "subscription.installed_base.customers.1: give renewal_date or start_date (or both)" in text
    del raw["subscription"]["installed_base"]
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(raw)
    assert "subscription: billing = 'annual' invoices every 12 months: term_months must be a multiple of 12" in str(
        caught.value
    )


# ---------------------------------------------------------------------------
# What does not change


def test_a_scenario_without_subscription_is_unchanged() -> None:
    """No ledger, no new summary keys or monthly columns, no key in the resolved scenario (so its
    manifest and SHA-256 are the same as before; tests/test_golden_outputs.py checks every table)."""
    sc = load_scenario(BASELINE, ["horizon_days=60", "sources.inbound.leads_per_month=250"])
    result = simulate(sc, seed=3)
    assert result.arr_ledger is None and result.billings is None
    assert "ending_arr" not in summarize_run(result)
    assert "subscription" not in sc.to_dict()
    one = replications.replicate_one(sc, 3, 0)
    assert "arr" not in one.monthly.columns and "nrr" not in one.summary


def test_subscriptions_do_not_move_the_funnel(scenario: Scenario) -> None:
    """The customers draw from streams of their own: with or without the subscription section, the
    same seed gives the same event log."""
    with_sub = simulate(scenario, seed=8)
    without = simulate(scenario.model_copy(update={"subscription": None}), seed=8)
    pd.testing.assert_frame_equal(with_sub.events, without.events)


def test_a_customers_draws_do_not_depend_on_later_customers(scenario: Scenario) -> None:
    """Common random numbers: adding a customer who signs last leaves every other customer's ledger as it was."""
    rng = np.random.default_rng(4)
    signed, arr = np.sort(rng.uniform(0, 300, 50)), rng.lognormal(10, 0.5, 50)
    sc = scenario.model_copy(update={"horizon_days": 900.0})
    a, _ = simulate_customers(sc, NewCustomers.of(signed[:49], arr[:49]), Streams(1))
    b, _ = simulate_customers(sc, NewCustomers.of(signed, arr), Streams(1))
    pd.testing.assert_frame_equal(a, b[b["customer"] != 40 + 49].reset_index(drop=True), check_categorical=False)


# ---------------------------------------------------------------------------
# Outputs


def test_run_prints_the_arr_bridge() -> None:
    """`funnelsim run` on a subscription scenario prints the bridge (opening, new, expansion,
    contraction, churn, closing) with the summary's numbers, and NRR, GRR, LTV:CAC and payback."""
    done = CliRunner().invoke(app, ["run", str(SUBSCRIPTION), "--seed", "2"])
    assert done.exit_code == 0, done.stdout + done.stderr
    text = done.stdout
    stats_ = summarize_run(simulate(load_scenario(SUBSCRIPTION), seed=2))
    assert "ARR bridge" in text
    for label, key, sign in [
        ("opening ARR", "opening_arr", ""),
        ("+ new", "new_arr", "+"),
        ("+ expansion", "expansion_arr", "+"),
        ("− contraction", "contraction_arr", "−"),
        ("− churn", "churned_arr", "−"),
        ("closing ARR", "ending_arr", ""),
    ]:
        row = next(line for line in text.splitlines() if f" {label} " in line)
        assert f"{sign}{stats_[key]:,.0f}" in row, (label, row)
    for word in ("NRR", "GRR", "LTV:CAC", "CAC payback", "magic number"):
        assert word in text


def test_run_out_writes_the_arr_tables(tmp_path: Path) -> None:
    done = CliRunner().invoke(app, ["run", str(SUBSCRIPTION), "--seed", "2", "--out", str(tmp_path / "o"), "-q"])
    assert done.exit_code == 0, done.stdout + done.stderr
    folder = tmp_path / "o"
    bridge = pd.read_csv(folder / "arr_bridge.csv")
    assert list(bridge.columns[:8]) == ["period", *recurring.BRIDGE_COLUMNS]
    _check_bridge(bridge)
    quarter = pd.read_csv(folder / "arr_by_quarter.csv")
    assert len(quarter) == 4 and np.isnan(quarter["magic_number"].iloc[0])
    spend = quarter["sales_marketing_spend"].to_numpy()
    assert quarter["magic_number"].iloc[1:].to_numpy() == pytest.approx(quarter["net_new_arr"].iloc[1:] / spend[:-1])
    assert (folder / "arr_ledger.csv").exists() and (folder / "billings.csv").exists()
    assert (folder / "figures" / "arr_bridge.png").exists()


def test_spend_by_quarter_adds_up_to_the_run_cost(scenario: Scenario) -> None:
    """The magic number's denominators: the quarters' spend sums to the run's marketing and sales cost."""
    result = simulate(scenario, seed=4)
    spend = spend_by_period(result, "quarter")
    money = costs(result.attributes, result.roster, scenario, result.events)
    for column in ("marketing_cost", "sdr_cost", "ae_cost", "total_cost"):
        assert spend[column].sum() == pytest.approx(money[column], rel=1e-12)


def test_monte_carlo_tables_gain_arr_columns(scenario: Scenario) -> None:
    reps = replications.run(scenario, 3, seed=1)
    for column in ("arr", "new_arr", "expansion_arr", "contraction_arr", "churned_arr", "customers"):
        assert column in reps.monthly.columns
    metrics = set(reps.summary()["metric"])
    wanted = {"ending_arr", "net_new_arr", "nrr", "grr", "ltv", "cac", "cac_payback_months", "ltv_to_cac"}
    assert wanted | {"magic_number"} <= metrics
    last = reps.monthly.groupby("replication").tail(1)
    assert last["arr"].to_numpy() == pytest.approx(reps.table["ending_arr"].to_numpy())


def test_the_arr_figures_draw_the_bridge(scenario: Scenario) -> None:
    """The waterfall's bars step from the opening ARR by each flow to the closing ARR; the monthly chart
    draws one bar of net new ARR per month and the line of ARR at month end; labels say the currency."""
    result = simulate(scenario, seed=2)
    assert result.arr_ledger is not None
    bridge = recurring.arr_bridge(result.arr_ledger, scenario.start_date, scenario.horizon_days)
    _, ax = arr_waterfall_chart(bridge, "USD")
    bars = ax.patches
    heights = [b.get_height() for b in bars]
    flows = [bridge[c].sum() for c in ("new_arr", "expansion_arr", "contraction_arr", "churned_arr")]
    expected = [bridge["opening_arr"].iloc[0], flows[0], flows[1], -flows[2], -flows[3], bridge["closing_arr"].iloc[-1]]
    assert heights == pytest.approx(expected)
    assert bars[4].get_y() + heights[4] == pytest.approx(heights[5])  # the last step lands on the closing
    assert "USD" in ax.get_ylabel()
    _, ax = arr_by_month_chart(bridge, "USD")
    assert len(ax.patches) == len(bridge)
    assert list(ax.lines[0].get_ydata()) == pytest.approx(bridge["closing_arr"].to_list())
    assert "USD" in ax.get_ylabel() and ax.get_xlabel() == "month"


def test_every_recurring_output_is_documented(scenario: Scenario) -> None:
    """Each table, column, summary key, ledger kind and Monte Carlo column of a subscription scenario
    is in docs/outputs.md (tests/test_docs.py checks the same for a scenario without one)."""
    from funnelsim.report import tables

    outputs = (ROOT / "docs" / "outputs.md").read_text(encoding="utf-8")
    result = simulate(scenario, seed=2)
    names: list[str] = list(summarize_run(result)) + list(recurring.LEDGER_KINDS)
    for name, frame in tables._tables(result).items():
        names += [name, *map(str, frame.columns)]
    names += [*replications.MONTHLY_ARR_COLUMNS.values(), "arr_bridge.png"]
    missing = [n for n in dict.fromkeys(names) if f"`{n}`" not in outputs and not n.startswith("marketing_cost_")]
    assert not missing, f"not in docs/outputs.md: {missing}"


def test_planned_toml_inlines_the_installed_base(scenario: Scenario) -> None:
    """A plan's scenario file lives elsewhere than customers.csv: the customers are written inline, and
    the file reads back to the same installed base."""
    import tomllib

    import tomlkit

    from funnelsim.model.loading import parse_scenario
    from funnelsim.report.scenario_file import _inline_installed_base

    doc = tomlkit.parse(SUBSCRIPTION.read_text(encoding="utf-8"))
    _inline_installed_base(doc, scenario)
    text = tomlkit.dumps(doc)
    assert "file =" not in text.split("[subscription.installed_base]")[1]
    again = parse_scenario(tomllib.loads(text))
    assert again.subscription is not None and scenario.subscription is not None
    assert again.subscription.customers == scenario.subscription.customers


def test_each_segment_renews_at_its_own_rate(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    """With segments, each customer takes its segment's settings (``subscription_of``): here SMB renews
    at 0.5 on monthly terms and enterprise at 0.95 on quarterly ones, in one book; each share within
    the 99.9% Wilson interval, and no enterprise customer decides in a month that is not a quarter end."""
    from funnelsim.engine import customers as engine

    own = {
        "smb": Subscription(term_months=1, billing="monthly", renewal_probability=[0.5]),
        "ent": Subscription(term_months=3, billing="quarterly", renewal_probability=[0.95]),
    }
    monkeypatch.setattr(engine, "subscription_of", lambda sc, segment: own[segment])
    n = 3000
    signed = np.zeros(n)
    segment = np.where(np.arange(n) % 2 == 0, "smb", "ent").astype(object)
    new = NewCustomers(signed, np.full(n, 1200.0), np.arange(n), segment)
    ledger, billings = simulate_customers(_with(scenario, 200.0, renewal_probability=[0.0]), new, Streams(2))
    decided = ledger[ledger["kind"].isin(["renewal", "churn"])]
    first = decided.drop_duplicates("customer")
    for name, probability in (("smb", 0.5), ("ent", 0.95)):
        mine = first[first["segment"] == name]
        renewed = int((mine["kind"] == "renewal").sum())
        ci = stats.binomtest(renewed, len(mine)).proportion_ci(0.999, method="wilson")
        assert ci.low <= probability <= ci.high, (name, renewed, len(mine))
    months = decided[decided["segment"] == "ent"]["time"].to_numpy() / DAYS_PER_MONTH
    assert np.allclose(months, np.rint(months)) and (np.rint(months) % 3 == 0).all()
    invoices = billings.merge(ledger[ledger["kind"] == "new"][["customer", "segment"]], on="customer")
    smb_first = invoices[(invoices["segment"] == "smb") & (invoices["time"] == 0)]["amount"]
    assert (smb_first == 100.0).all()  # 1,200 a year, invoiced monthly
