"""Starting a run from today's pipeline: the ``initial_pipeline`` section and what the engines make of it.

A planner who loads the CRM's open deals relies on four things, each shown here:

* the deals are read as written (a CSV file next to the scenario or inline rows), and
  a bad row is refused with its file, line and column, never silently skipped;
* each deal closes after the *rest* of its cycle, ``T - a | T > a`` for a deal open
  ``a`` days, and is won with the usual win probability: the engine's wins and
  remaining times match the closed forms (scipy quadrature) within confidence
  intervals over replications;
* the deals hold AE slots from day 0, so fewer new deals open while the pipeline is
  full, and they are opportunities, wins and revenue but never leads, MQLs or SQLs,
  with every accounting identity of the tables intact;
* the fast engine and the per-lead reference model agree in distribution, a scenario
  without a pipeline is unchanged (its event log and the golden files), and the
  planner counts the pipeline's closes.
"""

from __future__ import annotations

import copy
import math
import pickle
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter
from scipy import integrate, stats
from typer.testing import CliRunner

from funnelsim import RunResult, Scenario, ScenarioError, load_scenario, parse_scenario, simulate, simulate_reference
from funnelsim.engine.world import assign_owners
from funnelsim.model.distributions import Dist
from funnelsim.model.loading import read_pipeline_csv
from funnelsim.model.mechanisms import win_probability
from funnelsim.model.paths import apply_overrides
from funnelsim.run import metrics as m
from funnelsim.run.metrics import summarize_run
from funnelsim.studies import replications
from funnelsim.studies.planner import Period, analytic_multiplier, frame, pipeline_flow, plan
from scaled import TENTH, tiny_scenario

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scenarios" / "baseline.toml"
EXAMPLE = ROOT / "scenarios" / "baseline-with-pipeline.toml"
Z = 3.29  # two-sided 99.9% normal quantile: a handful of checks per test, each rarely wrong by chance
ALPHA = 0.01


def _baseline_text() -> str:
    return BASELINE.read_text(encoding="utf-8")


def _write(folder: Path, csv_text: str, section: str = '[initial_pipeline]\nfile = "p.csv"\n') -> Path:
    """A copy of the baseline with ``section`` appended, and ``p.csv`` next to it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "p.csv").write_text(csv_text, encoding="utf-8")
    path = folder / "scenario.toml"
    path.write_text(_baseline_text() + "\n" + section, encoding="utf-8")
    return path


def _problems(path: Path, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, overrides)
    return str(caught.value)


# ---------------------------------------------------------------------------
# Loading


CSV = """id,owner,age_days,deal_size,fit,persona
OPP-1,ann,35,24000,0.55,buyer
OPP-2,ann,0,,0.4,
OPP-3,,120.5,18000,,influencer
"""


def test_file_and_inline_forms_load_the_same_deals(tmp_path: Path) -> None:
    """A CSV next to the scenario and the same rows inline give the same scenario (same hash).

    Empty cells are missing values (drawn on the run), persona defaults to "buyer";
    the loaded scenario holds the rows, not the path, so it pickles and hashes by content.
    """
    from_file = load_scenario(_write(tmp_path / "file", CSV))
    inline = (
        "[initial_pipeline]\nopportunities = [\n"
        '  { id = "OPP-1", owner = "ann", age_days = 35, deal_size = 24000, fit = 0.55, persona = "buyer" },\n'
        '  { id = "OPP-2", owner = "ann", age_days = 0, fit = 0.4 },\n'
        '  { id = "OPP-3", age_days = 120.5, deal_size = 18000, persona = "influencer" },\n]\n'
    )
    from_inline = load_scenario(_write(tmp_path / "inline", "unused\n", inline))
    deals = from_file.open_deals
    assert [d.age_days for d in deals] == [35.0, 0.0, 120.5]
    assert [d.deal_size for d in deals] == [24000.0, None, 18000.0]
    assert [d.fit for d in deals] == [0.55, 0.4, None]
    assert [d.persona for d in deals] == ["buyer", "buyer", "influencer"]
    assert [d.owner for d in deals] == ["ann", "ann", None]
    assert from_file.initial_pipeline is not None and from_file.initial_pipeline.file is None
    assert from_file == from_inline and from_file.sha256() == from_inline.sha256()
    assert pickle.loads(pickle.dumps(from_file)) == from_file
    # The resolved scenario re-validates from its own dump anywhere (the planner's apply_changes).
    assert parse_scenario(from_file.to_dict()) == from_file


def test_a_relative_file_is_found_from_the_scenario_not_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``file = "../data/p.csv"`` is relative to the scenario file, whatever the current folder."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "p.csv").write_text("age_days\n10\n20\n", encoding="utf-8")
    path = _write(tmp_path / "scenarios", "age_days\n99\n", '[initial_pipeline]\nfile = "../data/p.csv"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert [d.age_days for d in load_scenario(path).open_deals] == [10.0, 20.0]
    # parse_scenario resolves from base_dir, else from the current folder.
    raw = apply_overrides(tomllib.loads(path.read_text(encoding="utf-8")), ['initial_pipeline.file="p.csv"'])
    assert [d.age_days for d in parse_scenario(raw, base_dir=path.parent).open_deals] == [99.0]
    with pytest.raises(ScenarioError, match=r"initial_pipeline\.file: cannot read"):
        parse_scenario(raw)


def test_set_overrides_keep_working(tmp_path: Path) -> None:
    """``--set`` can point at another file (relative to the scenario) or change anything else around the pipeline."""
    path = _write(tmp_path, CSV)
    (tmp_path / "other.csv").write_text("age_days\n1\n", encoding="utf-8")
    assert [d.age_days for d in load_scenario(path, ["initial_pipeline.file=other.csv"]).open_deals] == [1.0]
    changed = load_scenario(path, ["sales.win_rate=0.3"])
    assert changed.sales.win_rate == 0.3 and len(changed.open_deals) == 3
    inline = load_scenario(BASELINE, ["initial_pipeline.opportunities=[{age_days = 4}]"])
    assert [d.age_days for d in inline.open_deals] == [4.0]


@pytest.mark.parametrize(
    ("csv_text", "where", "message"),
    [
        ("id,age_days\nA,10\nB,-3\n", "line 3, column age_days", "must be >= 0, got -3"),
        ("age_days,fit\n10,0.5\n20,1.5\n", "line 3, column fit", "must be between 0 and 1, got 1.5"),
        ("age_days,persona\n10,buyer\n12,buyr\n", "line 3, column persona", "unknown persona 'buyr' (did you mean"),
        ("age_days,deal_size\n10,24k\n", "line 2, column deal_size", "expected a number, got '24k'"),
        ("id,deal_size\nA,100\n", "line 1", "missing the required column 'age_days'"),
        ("age_days,fit\n,0.5\n", "line 2, column age_days", "required, but empty"),
        ("age_days,fit\nnan,0.5\n", "line 2, column age_days", "must be a finite number"),
        ("agedays\n10\n", "line 1, column 'agedays'", "unknown column (did you mean 'age_days'?)"),
        ("age_days,fit\n10\n", "line 2", "expected 2 fields, got 1"),
        ("id,age_days\nA,1\nA,2\n", "line 3, column id", "duplicate id 'A' (first on line 2)"),
        ("", "p.csv", "empty file"),
    ],
    ids=[
        "negative_age",
        "fit_above_1",
        "unknown_persona",
        "not_a_number",
        "no_age_column",
        "empty_age",
        "nan_age",
        "unknown_column",
        "short_row",
        "duplicate_id",
        "empty_file",
    ],
)
def test_bad_rows_are_refused_naming_file_line_and_column(
    tmp_path: Path, csv_text: str, where: str, message: str
) -> None:
    """Each bad cell is one problem that names the CSV file, its line and its column; nothing is dropped silently."""
    text = _problems(_write(tmp_path, csv_text))
    assert f"{tmp_path / 'p.csv'} {where}" in text or (where == "p.csv" and str(tmp_path / "p.csv") in text), text
    assert message in text, text


def test_every_bad_row_is_listed_up_to_a_limit(tmp_path: Path) -> None:
    """A broken export lists its first 20 problems and how many more there are, in one error."""
    rows = "".join(f"{-i},0.5\n" for i in range(1, 31))
    text = _problems(_write(tmp_path, "age_days,fit\n" + rows))
    assert text.count("must be >= 0") == 20 and "... and 10 more problems" in text
    # The module-level reader says the same for a file on its own.
    with pytest.raises(ScenarioError, match="line 2, column age_days"):
        read_pipeline_csv(tmp_path / "p.csv")


def test_rules_across_keys(tmp_path: Path) -> None:
    """Both forms at once, a default persona the scenario lacks, no AE to hold the deals, a source named 'pipeline'."""
    both = '[initial_pipeline]\nfile = "p.csv"\nopportunities = [{age_days = 1}]\n'
    assert "give either file or opportunities, not both" in _problems(_write(tmp_path / "a", CSV, both))
    raw = tomllib.loads(_write(tmp_path / "b", "age_days\n5\n").read_text(encoding="utf-8"))
    raw["personas"]["purchaser"] = raw["personas"].pop("buyer")
    for source in raw["sources"].values():
        source["persona_mix"] = {("purchaser" if k == "buyer" else k): v for k, v in source["persona_mix"].items()}
    raw["prospecting"]["persona"] = "purchaser"
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(raw, base_dir=tmp_path / "b")
    assert "line 2, column persona: unknown persona 'buyer' (the default" in str(caught.value)
    path = _write(tmp_path / "c", CSV)
    assert "sales.ae.count: the open deals of initial_pipeline need AEs on day 0" in _problems(
        path, ("sales.ae.count=0",)
    )
    assert "sources.pipeline: the name 'pipeline' is kept" in _problems(
        path, ("sources.pipeline={leads_per_day = 1, persona_mix = {buyer = 1.0}, fit = 0.5}",)
    )


# ---------------------------------------------------------------------------
# The remaining cycle of a deal that has lasted a days: T - a | T > a


def _conditional_mean(spec: Any, age: float, horizon: float = math.inf) -> float:
    """``E[min(T - a, H) | T > a] = ∫_a^{a+H} S(t) dt / S(a)`` by quadrature on the spec's scipy distribution."""
    dist = spec.scipy()
    area, _ = integrate.quad(dist.sf, age, age + horizon, limit=200)
    return float(area / dist.sf(age))


@pytest.mark.parametrize(
    "spec",
    [
        {"dist": "lognormal", "mean": 60, "sd": 35},
        {"dist": "gamma", "mean": 45, "sd": 20},
        {"dist": "weibull", "shape": 1.5, "scale": 60},
        {"dist": "exponential", "mean": 30},
        {"dist": "uniform", "low": 10, "high": 100},
        {"dist": "triangular", "low": 10, "mode": 30, "high": 100},
    ],
    ids=lambda spec: spec["dist"],
)
def test_remaining_time_has_the_conditional_mean(spec: dict[str, Any]) -> None:
    """``remaining_after`` samples ``T - a | T > a``: mean ``∫_a^∞ S / S(a)`` (99.9% CI) at three ages."""
    dist = TypeAdapter(Dist).validate_python(spec)
    rng = np.random.default_rng(7)
    for age in (0.0, 40.0, 90.0):
        draws = dist.remaining_after(np.full(20_000, age), 1.0 - rng.random(20_000))
        assert (draws >= 0).all()
        expected = _conditional_mean(dist, age)
        se = draws.std(ddof=1) / math.sqrt(len(draws))
        assert abs(draws.mean() - expected) < Z * se + 1e-9, (spec, age, draws.mean(), expected)


def test_remaining_time_of_fixed_and_empirical_cycles_is_exact() -> None:
    """A fixed cycle leaves exactly ``v - a`` (0 once past it); an empirical one a value above ``a``, uniformly."""
    fixed = TypeAdapter(Dist).validate_python(45)
    assert fixed.remaining_after(np.array([0.0, 30.0, 45.0, 80.0]), np.full(4, 0.5)).tolist() == [45, 15, 0, 0]
    empirical = TypeAdapter(Dist).validate_python({"dist": "empirical", "values": [10, 20, 30, 40]})
    u = np.array([0.01, 0.5, 0.7, 1.0])  # thirds of (0, 1] pick 20, 30, 40
    assert empirical.remaining_after(np.full(4, 15.0), u).tolist() == [5, 15, 25, 25]
    assert empirical.remaining_after(np.array([40.0]), np.array([0.3])).tolist() == [0]


# ---------------------------------------------------------------------------
# Engine: a pipeline alone, with AEs unlimited and no leads


def _tiny(pipeline: list[dict[str, Any]], **sales: Any) -> dict[str, Any]:
    """A scenario with no leads and no prospecting: only the pipeline moves."""
    raw = tiny_scenario()
    raw["horizon_days"] = 240
    raw["personas"]["influencer"] = {"buying_intent": 0.3}
    raw["sources"]["inbound"]["leads_per_day"] = 0.0
    raw["sales"] = {
        "opportunity_rate": 0.7,
        "win_rate": 0.3,
        "fit_effect": 2.0,
        "cycle_days": {"dist": "lognormal", "mean": 60, "sd": 35},
        "deal_size": {"dist": "lognormal", "mean": 20000, "sd": 8000},
        "deal_size_by_persona": {"influencer": 5000},
        "ae": {"count": 1, "max_open_opportunities": 1_000_000},
        **sales,
    }
    raw["prospecting"] = {"opportunities_per_ae_per_month": 0.0, "fit": {"dist": "beta", "a": 3.0, "b": 3.0}}
    raw["start"] = "pipeline"
    raw["initial_pipeline"] = {"opportunities": pipeline}
    return raw


AGES = (0.0, 30.0, 90.0, 200.0)
ALONE = [{"age_days": a, "fit": 0.8} for a in AGES for _ in range(5)] + [
    {"age_days": a, "persona": "influencer"} for a in AGES for _ in range(5)
]


def _pipeline_rows(result: RunResult) -> pd.DataFrame:
    """The pipeline's deals, in the order of the file, with their close time (NaN: still open)."""
    leads = result.leads
    return leads[leads["source"] == "pipeline"].reset_index(drop=True)


@pytest.fixture(scope="module")
def alone() -> tuple[Scenario, list[RunResult]]:
    scenario = parse_scenario(_tiny(ALONE), "alone")
    return scenario, [simulate(scenario, seed=31, replication=r) for r in range(200)]


def test_expected_wins_are_the_sum_of_win_probabilities(alone: tuple[Scenario, list[RunResult]]) -> None:
    """Wins per run average ``Σ_i p_i P(T - a_i < H | T > a_i)`` (99.9% CI over 200 runs).

    ``p_i`` is the win probability of the deal's fit, or its mean over
    ``prospecting.fit`` (scipy quadrature) when the row gives none; the revenue of
    influencer deals is their persona's fixed deal size.
    """
    scenario, runs = alone
    s, horizon = scenario.sales, scenario.horizon_days
    beta = stats.beta(3, 3)
    drawn_fit = integrate.quad(lambda f: float(win_probability(0.3, 2.0, f)) * beta.pdf(f), 0, 1)[0]
    cycle = s.cycle_days.scipy()
    expected = 0.0
    for deal in scenario.open_deals:
        p = drawn_fit if deal.fit is None else float(win_probability(0.3, 2.0, deal.fit))
        expected += p * (1 - cycle.sf(deal.age_days + horizon) / cycle.sf(deal.age_days))
    wins = np.array([summarize_run(r)["pipeline_wins"] for r in runs], dtype=float)
    assert abs(wins.mean() - expected) < Z * wins.std(ddof=1) / math.sqrt(len(wins)), (wins.mean(), expected)
    # Influencer deals carry their persona's deal size; the others a draw of sales.deal_size.
    rows = pd.concat([_pipeline_rows(r) for r in runs])
    assert (rows.loc[rows["persona"] == "influencer", "amount"] == 5000).all()
    assert rows.loc[rows["persona"] == "buyer", "amount"].nunique() > 100


def test_remaining_time_matches_the_conditional_cycle(alone: tuple[Scenario, list[RunResult]]) -> None:
    """Each deal closes after ``min(T - a, H)`` with mean ``∫_a^{a+H} S / S(a)`` (scipy quad), per age, 99.9% CI.

    Pooled over the 10 deals of each age and 200 runs (independent draws); a deal still
    open at the horizon counts ``H``.
    """
    scenario, runs = alone
    horizon = scenario.horizon_days
    rows = pd.concat([_pipeline_rows(r).assign(age=[d.age_days for d in scenario.open_deals]) for r in runs])
    rows["until"] = rows["closed"].fillna(horizon)
    assert (rows["opportunity"] == 0).all() and rows["created"].isna().all()
    for age, group in rows.groupby("age"):
        expected = _conditional_mean(scenario.sales.cycle_days, float(age), horizon)
        values = group["until"].to_numpy()
        se = values.std(ddof=1) / math.sqrt(len(values))
        assert abs(values.mean() - expected) < Z * se, (age, values.mean(), expected)


# ---------------------------------------------------------------------------
# Deals hold AE slots


def test_open_deals_hold_ae_slots_from_day_0() -> None:
    """Two AEs with 3 slots each and 8 open deals: no new deal opens until the first ones close.

    The deals of one owner stay with one AE, even over its cap (ann's 5 deals on AE 0);
    the level log shows 8 busy of 8 (a rep over the cap counts its deals as capacity),
    so utilisation stays within 1. With the same scenario and no pipeline, AEs
    prospect from day 1.
    """
    deals = [{"age_days": 0, "owner": "ann"}] * 5 + [{"age_days": 0, "owner": "bob"}] * 2 + [{"age_days": 0}]
    raw = _tiny(deals, cycle_days=30, ae={"count": 2, "max_open_opportunities": 3})
    raw["prospecting"]["opportunities_per_ae_per_month"] = 30.0
    result = simulate(parse_scenario(raw), seed=5)
    ev = result.events
    pipeline = set(_pipeline_rows(result)["lead"])
    opened = ev[ev["event"] == "opportunity"]
    assert opened.loc[opened["lead"].isin(pipeline), "rep"].tolist() == [0] * 5 + [1] * 3
    others = opened[~opened["lead"].isin(pipeline)]
    assert len(others) > 0 and others["time"].min() >= 30.0  # a fixed 30-day cycle frees the first slots
    ae = result.levels[result.levels["team"] == "ae"]
    at_start = ae[ae["time"] == 0].iloc[-1]
    assert (at_start["busy"], at_start["capacity"]) == (8, 8)
    assert (ae["busy"] <= ae["capacity"]).all()
    assert m.utilisation(result.levels, "ae", 0, 30) == pytest.approx(1.0)

    raw["initial_pipeline"]["opportunities"] = []
    empty = simulate(parse_scenario(raw), seed=5).events
    # Without the pipeline both AEs fill their 3 slots by prospecting well before day 30.
    assert ((empty["event"] == "opportunity") & (empty["time"] < 30)).sum() == 6


def test_owners_are_spread_over_the_aes_together() -> None:
    """One owner's deals go to one AE (the least loaded, in order of first appearance); the rest one by one."""
    # a (2 deals) -> AE 0, b -> AE 1, c -> AE 2; then the ownerless ones to AE 1, AE 2, AE 0.
    assert assign_owners(["a", "b", "a", None, "c", None, None], 3) == [0, 1, 0, 1, 2, 2, 0]
    assert assign_owners([None] * 5, 2) == [0, 1, 0, 1, 0]
    with pytest.raises(ValueError, match="at least one AE"):
        assign_owners(["a"], 0)


# ---------------------------------------------------------------------------
# The baseline at a tenth of its size, with a tenth of the example pipeline


def _tenth_pipeline() -> list[dict[str, Any]]:
    """Every tenth deal of scenarios/pipeline.csv (12 deals for the tenth-size team of one AE)."""
    return read_pipeline_csv(ROOT / "scenarios" / "pipeline.csv", ["buyer", "influencer"])[::10]


def _scaled(*overrides: str, pipeline: list[dict[str, Any]] | None = None) -> Scenario:
    raw = apply_overrides(tomllib.loads(_baseline_text()), [*TENTH, *overrides])
    raw["initial_pipeline"] = {"opportunities": _tenth_pipeline() if pipeline is None else pipeline}
    return parse_scenario(raw, "baseline/10 with pipeline")


FLAT = (
    *(f"sources.{s}.seasonality=[1,1,1,1,1,1,1,1,1,1,1,1]" for s in ("inbound", "events", "partner")),
    "sales.ae.hires=[]",
)


def _sqls_by_quarter(scenario: Scenario) -> tuple[float, float]:
    """Mean SQLs per replication in the first and in the last quarter of the year (40 replications)."""
    monthly = replications.run(scenario, 40, seed=5).monthly
    per_month = monthly.pivot_table(index="replication", columns="month", values="sqls", aggfunc="sum")
    return float(per_month.iloc[:, :3].sum(axis=1).mean()), float(per_month.iloc[:, -3:].sum(axis=1).mean())


def test_a_pipeline_start_puts_a_warm_marketing_funnel_in_front_of_the_crm_deals() -> None:
    """A pipeline start burns marketing and the SDRs in: on a flat scenario the first quarter
    qualifies as many leads as the last (within 15%; 40 replications make the quarterly mean's
    standard error ~3.5%, so 15% is ~3 standard errors of the difference). With burn_in_days = 0
    marketing starts empty and the first quarter qualifies under 70% of the last.

    Sales' side of the burn-in is the CRM's: the only deals open on day 0 are the pipeline's
    (every other opportunity is opened in the window, none carried from a simulated burn-in)."""
    warm = _scaled(*FLAT)
    result = simulate(warm, seed=3)
    assert result.metadata["start"] == "pipeline" and result.metadata["burn_in_days"] > 0
    ev, leads = result.events, result.leads
    deals = ev[ev["event"] == "opportunity"]
    at_start = deals[deals["time"] == 0]
    assert len(at_start) == len(warm.open_deals)
    assert (leads["source"].to_numpy()[at_start["lead"].to_numpy()] == "pipeline").all()
    opening = result.metadata["open_at_start"]
    assert opening["opportunities"] == len(warm.open_deals) and opening["leads"] > 0
    assert opening["value"] == pytest.approx(at_start["value"].sum(), rel=1e-12)
    assert summarize_run(result)["pipeline_deals"] == len(warm.open_deals)  # not the burn-in's carried leads
    closed = ev[ev["event"].isin(["won", "lost"])]
    assert set(closed["lead"]) <= set(deals["lead"])  # every close has its opening in the window
    first, last = _sqls_by_quarter(warm)
    assert abs(first / last - 1) < 0.15, (first, last)
    first_cold, last_cold = _sqls_by_quarter(_scaled(*FLAT, "burn_in_days=0"))
    assert first_cold < 0.7 * last_cold, (first_cold, last_cold)


@pytest.mark.parametrize("engine", [simulate, simulate_reference], ids=["engine", "reference"])
def test_pipeline_deals_are_opportunities_not_leads_and_every_table_adds_up(engine: Any) -> None:
    """The deals open on day 0 are opportunities, wins, losses and revenue, never leads, MQLs or SQLs.

    In both engines: each deal's log is ``opportunity`` at time 0 (no ``created``), then
    ``won`` or ``lost`` with the same amount and AE; summary volumes, segments, periods
    and leakage still add up (leakage: leak rows + wins + still open = leads + deals);
    cycle-time metrics leave the deals out (they opened before the run). Marketing starts
    empty (burn_in_days = 0), so that every other lead is created in the run and the
    identities are exact.
    """
    scenario = _scaled("burn_in_days=0")
    result = engine(scenario, seed=3)
    ev, leads = result.events, result.leads
    deals = _pipeline_rows(result)
    n = len(scenario.open_deals)
    assert len(deals) == n == 12
    per_deal = ev[ev["lead"].isin(deals["lead"])]
    first = per_deal.drop_duplicates("lead", keep="first")
    assert (first["event"] == "opportunity").all() and (first["time"] == 0).all()
    assert set(per_deal["event"].astype(str)) <= {"opportunity", "won", "lost"}
    assert per_deal.groupby("lead").size().max() <= 2
    closed = per_deal[per_deal["event"].isin(["won", "lost"])].set_index("lead")
    opened = per_deal[per_deal["event"] == "opportunity"].set_index("lead")
    assert (closed["value"] == opened.loc[closed.index, "value"]).all()
    assert (closed["rep"] == opened.loc[closed.index, "rep"]).all()
    given = [d.deal_size for d in scenario.open_deals]
    assert [a for a, g in zip(deals["amount"], given, strict=True) if g is not None] == [g for g in given if g]

    s = summarize_run(result)
    assert s["leads"] == (ev["event"] == "created").sum() == (leads["source"] != "pipeline").sum()
    assert s["pipeline_deals"] == n
    assert s["pipeline_wins"] + s["pipeline_losses"] + deals["closed"].isna().sum() == n
    assert s["pipeline_wins"] == (deals["state"] == "won").sum()
    assert s["pipeline_revenue"] == pytest.approx(deals.loc[deals["state"] == "won", "amount"].sum())
    assert s["opportunities"] == leads["opportunity"].notna().sum()
    assert s["mqls"] == leads["mql"].notna().sum() and deals["mql"].isna().all() and deals["sql"].isna().all()
    assert not math.isnan(s["median_lead_to_win_days"]) and not math.isnan(s["median_cycle_days"])

    leak = m.leakage(ev).set_index("reason")
    assert leak.loc[leak["kind"] == "leak", "leads"].sum() + s["wins"] + leak.loc["still_open", "leads"] == (
        s["leads"] + n
    )
    by_source = m.by_segment(leads, "source").set_index("source")
    assert by_source.loc["pipeline", "leads"] == 0 and by_source.loc["pipeline", "opportunities"] == n
    assert math.isnan(by_source.loc["pipeline", "lead_to_win"])
    for column in ("leads", "opportunities", "wins"):
        assert by_source[column].sum() == s[column], column
    assert by_source["revenue"].sum() == pytest.approx(s["revenue"])
    months = m.stages_by_month(ev, scenario.start_date, scenario.horizon_days)
    assert months["opportunities"].sum() == s["opportunities"] and months["leads"].sum() == s["leads"]
    quarters = m.revenue_by_period(ev, scenario.start_date, "quarter", scenario.horizon_days)
    assert quarters["revenue"].sum() == pytest.approx(s["revenue"])
    stages = m.time_in_stage(ev).set_index("stage")
    closed_from_run = leads["closed"].notna() & leads["created"].notna() & leads["opportunity"].notna()
    assert stages.loc["opportunity_to_close", "n"] == closed_from_run.sum()
    open_now = m.pipeline_over_time(ev)
    assert open_now["open_opportunities"].iloc[0] >= n
    assert (result.levels["busy"] <= result.levels["capacity"]).all()


def test_a_scenario_without_pipeline_is_unchanged_and_arrivals_do_not_depend_on_it() -> None:
    """An empty ``initial_pipeline`` gives the event log of a cold start without one, bit for bit.

    The pipeline draws from streams of its own, so with a pipeline the same leads still
    arrive at the same times with the same traits (common random numbers); only what
    competes for AEs changes. (The golden files of tests/test_scenarios.py pin the
    shipped scenarios without a pipeline.)
    """
    raw = apply_overrides(tomllib.loads(_baseline_text()), [*TENTH, "start=cold"])
    without = simulate(parse_scenario(copy.deepcopy(raw)), seed=9)
    del raw["start"]  # a pipeline, even empty, starts the run from it
    raw["initial_pipeline"] = {"opportunities": []}
    raw["burn_in_days"] = 0  # and marketing as empty as the cold start's
    empty = simulate(parse_scenario(copy.deepcopy(raw)), seed=9)
    pd.testing.assert_frame_equal(empty.events, without.events)
    pd.testing.assert_frame_equal(empty.levels, without.levels)
    assert {k: v for k, v in summarize_run(empty).items() if not k.startswith("pipeline_")} == pytest.approx(
        summarize_run(without), nan_ok=True
    )
    with_pipeline = simulate(_scaled("burn_in_days=0"), seed=9)
    keep = ["source", "persona", "fit", "has_need", "created"]
    arrived = with_pipeline.leads[with_pipeline.leads["source"].isin(list(raw["sources"]))][keep]
    before = without.leads[without.leads["source"].isin(list(raw["sources"]))][keep]
    pd.testing.assert_frame_equal(
        arrived.reset_index(drop=True).astype({"source": str}), before.reset_index(drop=True).astype({"source": str})
    )


# ---------------------------------------------------------------------------
# The fast engine against the reference model


PER_RUN = ("opportunities", "wins", "revenue", "pipeline_wins", "pipeline_revenue", "prospected")


def _sample(engine: Any, scenario: Scenario, seed: int, runs: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Per-run totals, and the close times of the pipeline's deals pooled over runs."""
    rows, closes = [], []
    for r in range(runs):
        result = engine(scenario, seed=seed, replication=r)
        row = summarize_run(result)
        leads = result.leads
        row["prospected"] = int(((leads["source"] == "prospecting") & leads["opportunity"].notna()).sum())
        rows.append(row)
        closes.append(_pipeline_rows(result)["closed"].fillna(scenario.horizon_days).to_numpy())
    return pd.DataFrame(rows), np.concatenate(closes)


def _ks(a: tuple[pd.DataFrame, np.ndarray], b: tuple[pd.DataFrame, np.ndarray]) -> dict[str, float]:
    out = {name: float(stats.ks_2samp(a[0][name], b[0][name]).pvalue) for name in PER_RUN}
    out["pipeline_close_time"] = float(stats.ks_2samp(a[1], b[1]).pvalue)
    return out


HALF_YEAR = ("horizon_days=181",)


@pytest.fixture(scope="module")
def reference_sample() -> tuple[pd.DataFrame, np.ndarray]:
    return _sample(simulate_reference, _scaled(*HALF_YEAR), 202, 30)


def test_engine_matches_reference_model_with_a_pipeline(reference_sample: tuple[pd.DataFrame, np.ndarray]) -> None:
    """Same distributions from both engines (KS p > 0.01, 30 runs each, independent seeds).

    Per run: opportunities, wins, revenue, the pipeline's wins and revenue and the
    deals AEs prospected (which the pipeline's slots hold back); pooled: the close
    times of the pipeline's deals.
    """
    engine = _sample(simulate, _scaled(*HALF_YEAR), 101, 30)
    pvalues = _ks(engine, reference_sample)
    assert min(pvalues.values()) > ALPHA, pvalues
    assert engine[0]["pipeline_wins"].sum() > 0 and reference_sample[0]["prospected"].sum() > 0


def test_ks_detects_a_pipeline_whose_age_is_ignored(reference_sample: tuple[pd.DataFrame, np.ndarray]) -> None:
    """Power check: the same deals closing after a whole fresh cycle (age ignored) are told apart (KS p < 0.01)."""
    fresh = [{**deal, "age_days": 0.0} for deal in _tenth_pipeline()]
    changed = _sample(simulate, _scaled(*HALF_YEAR, pipeline=fresh), 101, 30)
    assert _ks(changed, reference_sample)["pipeline_close_time"] < ALPHA


@pytest.mark.slow
def test_engine_matches_reference_model_with_a_pipeline_many_runs() -> None:
    """The comparison again over a full year with 150 runs of each model (more power)."""
    pvalues = _ks(_sample(simulate, _scaled(), 103, 150), _sample(simulate_reference, _scaled(), 204, 150))
    assert min(pvalues.values()) > ALPHA, pvalues


# ---------------------------------------------------------------------------
# The planner


def test_waterfall_counts_the_pipelines_closes() -> None:
    """The planner's expected pipeline wins and revenue per quarter match the simulation's (99.9% CI, 60 runs)."""
    scenario = parse_scenario(_tiny(ALONE, deal_size=20000, deal_size_by_persona={}), "alone")
    flow = pipeline_flow(scenario, round(scenario.horizon_days))
    assert flow.deals == len(ALONE) and flow.open[0] < len(ALONE)
    runs = [simulate(scenario, seed=41, replication=r) for r in range(60)]
    for quarter, (lo, hi) in enumerate([(0, 90), (90, 181)]):
        won = np.array(
            [((r.events["event"] == "won") & r.events["time"].between(lo, hi, inclusive="left")).sum() for r in runs]
        )
        expected = flow.wins[lo:hi].sum()
        assert abs(won.mean() - expected) < Z * won.std(ddof=1) / math.sqrt(len(won)) + 0.05, (quarter, expected)
        assert flow.revenue[lo:hi].sum() == pytest.approx(20000 * expected)


def test_a_healthy_pipeline_needs_fewer_leads() -> None:
    """Planning the first half-year from today's pipeline takes fewer leads than from an empty one.

    Both start on the scenario's start_date (a pipeline fixes the date: no lead-in
    before it); analytically and in the simulated plan (10 runs a candidate, common
    seeds), the pipeline's closes replace part of the leads.
    """
    period = Period.parse("2027-01-01:2027-06-30")
    goal = 130_000.0
    with_pipeline = _scaled()
    empty = _scaled(pipeline=[])
    framed = frame(with_pipeline, period, 6)
    assert framed.start_date == with_pipeline.start_date  # no lead-in before the pipeline's date
    k_with = analytic_multiplier(framed, period, goal)
    k_without = analytic_multiplier(frame(empty, period, 6), period, goal)
    assert 0 < k_with < k_without
    planned, _ = plan(with_pipeline, goal, 0.8, period=period, runs=10, seed=5, verify_runs=100)
    planned_empty, _ = plan(empty, goal, 0.8, period=period, runs=10, seed=5, verify_runs=100)
    assert planned.lead_multiplier < planned_empty.lead_multiplier
    assert planned.scenario.open_deals == with_pipeline.open_deals


def test_planned_toml_carries_the_pipeline_rows(tmp_path: Path) -> None:
    """``planned.toml`` lists the deals inline: the CSV path was relative to the original scenario, not to it.

    Re-loaded from another folder it has the same open deals; the plan starts on the
    pipeline's date (no lead-in before it).
    """
    from funnelsim.report.scenario_file import planned_toml

    sets = (*TENTH, "sales.ae.count=3")
    scenario = load_scenario(EXAMPLE, sets)
    planned, _ = plan(
        scenario, 300_000, 0.8, period=Period.parse("2027-01-01:2027-06-30"), runs=10, seed=3, verify_runs=100
    )
    assert planned.lead_in_months == 0 and planned.scenario.start_date == scenario.start_date
    text = planned_toml(planned, EXAMPLE.read_text(encoding="utf-8"), sets)
    assert 'file = "pipeline.csv"' not in text and "read from pipeline.csv when planned" in text
    (tmp_path / "planned.toml").write_text(text, encoding="utf-8")
    assert load_scenario(tmp_path / "planned.toml").open_deals == scenario.open_deals


def test_a_period_before_the_pipeline_date_is_refused() -> None:
    """The open deals describe start_date: a plan cannot start earlier, nor ask for a lead-in before it."""
    from funnelsim.studies.planner import PlanError

    with pytest.raises(PlanError, match="before 2027-01-01, the date of the scenario's initial_pipeline"):
        frame(_scaled(), Period.parse("2026-10-01:2027-06-30"), 3)
    with pytest.raises(PlanError, match="--lead-in 3: the scenario starts from its initial pipeline on 2027-01-01"):
        plan(_scaled(), 1e5, period=Period.parse("2027-01-01:2027-06-30"), lead_in_months=3, runs=10)


# ---------------------------------------------------------------------------
# Command line


def _invoke(*args: str) -> Any:
    from funnelsim.cli import app

    return CliRunner().invoke(app, list(args))


def test_cli_run_reports_the_pipelines_revenue(tmp_path: Path) -> None:
    """``funnelsim run`` on the bundled example (at a tenth of its size) prints what the pipeline brought.

    The printed amount is ``pipeline_revenue`` of the same run through the API, and
    ``by_source.csv`` carries the deals as the source "pipeline".
    """
    sets = [f"--set={o}" for o in TENTH]
    done = _invoke("run", str(EXAMPLE), *sets, "--out", str(tmp_path / "out"), "-q")
    assert done.exit_code == 0, done.stderr
    s = summarize_run(simulate(load_scenario(EXAMPLE, TENTH)))
    assert s["pipeline_deals"] == 120 and s["pipeline_revenue"] > 0
    line = next(x for x in done.stdout.splitlines() if "from pipeline" in x)
    assert f"{s['pipeline_revenue']:,.0f} USD" in line and f"of {s['pipeline_deals']} deals open on day 0" in line
    by_source = pd.read_csv(tmp_path / "out" / "by_source.csv").set_index("source")
    assert by_source.loc["pipeline", "revenue"] == pytest.approx(s["pipeline_revenue"])
    assert by_source.loc["pipeline", "leads"] == 0


def test_cli_refuses_a_bad_pipeline_file_with_exit_2(tmp_path: Path) -> None:
    """A bad row is bad input: exit code 2, the file, line and column in the message, no traceback."""
    path = _write(tmp_path, "age_days,fit\n10,1.5\n")
    done = _invoke("run", str(path))
    assert done.exit_code == 2
    assert f"{tmp_path / 'p.csv'} line 2, column fit: must be between 0 and 1" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_a_goal_the_pipeline_nearly_covers_is_not_called_saturated() -> None:
    """With most of the goal already in the pipeline, a few more leads add little revenue
    on 10 noisy runs; the planner's saturation stop judges the gain on its paired interval,
    so it keeps searching instead of declaring the goal infeasible (it once did, for a
    goal below one it could plan)."""
    period = Period.parse("2027-01-01:2027-06-30")
    planned, _ = plan(_scaled(), 100_000.0, 0.8, period=period, runs=10, seed=5, verify_runs=100)
    assert planned.p_goal["ci_low"] >= 0.8


def test_the_pipeline_table_counts_a_pipeline_starts_open_deals_once(tmp_path: Path) -> None:
    """``pipeline.csv`` of a pipeline start: on day 0 the open pipeline is the CRM's deals, each once (they are
    opened in the log on day 0, so the warm start's 'open before day 0' count must not be added again; it once
    read 240 for the bundled file's 120 deals)."""
    from funnelsim.report.tables import write_run

    path = Path(__file__).resolve().parents[1] / "scenarios" / "baseline-with-pipeline.toml"
    sc = load_scenario(path)
    result = simulate(sc, seed=2027)
    write_run(result, tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "pipeline.csv")
    day0 = result.events[(result.events["time"] == 0) & (result.events["event"] == "opportunity")]
    assert len(sc.open_deals) == len(day0) == 120
    first = table.iloc[0]
    assert first["time"] == 0
    assert first["open_opportunities"] == len(day0)
    assert first["open_value"] == pytest.approx(float(day0["value"].sum()))
