"""Segments and products: a segmented scenario is one funnel per segment behind shared sources.

What a user relies on:

* each segment runs as a world of its own (its own SDRs and AEs: territories), so a
  segmented run is exactly its segments' runs put together, and a scenario of one segment
  is the unsegmented funnel (exactly, on that segment's streams; in distribution, on any);
* a source's leads are split between segments by Poisson thinning: the segments' leads of
  a source add up to its volume;
* no lead is ever worked by another segment's SDR or AE (property test over random
  scenarios, both engines);
* the team totals of a segmented run (utilisation, headcount, cost, queues) are the sums
  over its segments' teams;
* a deal built from a price list is worth ``sum Bernoulli(attach) x price x quantity``: its
  mean is ``sum attach x price x E[quantity]`` and its values are the sums of the products
  included (the modes of real CRMs' deal sizes);
* bad input is refused with exit 2 and a message naming the dotted field.

Tolerances are stated where each test draws: 99.9% intervals (Poisson, binomial, normal),
fixed seeds.
"""

from __future__ import annotations

import copy
import math
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from typer.testing import CliRunner

from funnelsim import RunResult, Scenario, load_scenario, parse_scenario, simulate, simulate_reference
from funnelsim.cli import app
from funnelsim.engine.fast import run_on, segment_streams, warm_start
from funnelsim.model.analytic import mql_yield
from funnelsim.model.distributions import Bundle, BundleItem, Empirical, Fixed
from funnelsim.model.paths import MISSING, apply_overrides, get_effective
from funnelsim.model.scenario import ScenarioError
from funnelsim.randomness import Streams
from funnelsim.report.tables import write_run
from funnelsim.run import metrics
from funnelsim.studies import replications
from funnelsim.vocabulary import REP_TEAM, SEGMENT, TEAMS
from scaled import tiny_scenario
from test_properties import PROPERTY_SETTINGS, raw_scenarios

ROOT = Path(__file__).resolve().parents[1]
SEGMENTED = Path(__file__).parent / "scenarios" / "segmented.toml"
OUTPUTS = ROOT / "docs" / "outputs.md"
Z999 = stats.norm.ppf(0.9995)  # two-sided 99.9%


def raw_segmented() -> dict[str, Any]:
    with SEGMENTED.open("rb") as handle:
        return tomllib.load(handle)


@pytest.fixture(scope="module")
def segmented() -> Scenario:
    return load_scenario(SEGMENTED)


def _segment_rows(result: RunResult, name: str) -> tuple[pd.DataFrame, int]:
    """The events of segment ``name``'s leads in a merged run, and the segment's first lead id."""
    attributes = result.attributes
    leads = attributes.loc[attributes[SEGMENT] == name, "lead"].to_numpy()
    events = result.events[result.events["lead"].isin(leads)]
    return events, int(leads.min())


def _unshifted(events: pd.DataFrame, lead_offset: int, rep_offset: dict[str, int]) -> pd.DataFrame:
    """Merged events back on a segment's own ids (leads from 0, each team's reps from 0)."""
    team = events["event"].astype(str).map(REP_TEAM).fillna("").to_numpy()
    rep = events["rep"].to_numpy().copy()
    for name, offset in rep_offset.items():
        rep[(team == name) & (rep >= 0)] -= offset
    return events.assign(lead=events["lead"].to_numpy() - lead_offset, rep=rep).reset_index(drop=True)


def _first_reps(result: RunResult, name: str) -> dict[str, int]:
    roster = result.roster[result.roster[SEGMENT] == name]
    return {team: int(roster.loc[roster["team"] == team, "rep"].min()) for team in TEAMS}


# ---------------------------------------------------------------------------
# A segmented run is its segments' runs, put together


def test_each_segment_is_a_world_of_its_own(segmented: Scenario) -> None:
    """The events of a segment's leads in a segmented run are exactly those of the segment's view run
    alone on the segment's streams (ids aside): segments share nothing but the sources' split."""
    seed, replication = 7, 2
    merged = simulate(segmented, seed=seed, replication=replication)
    for name in segmented.segment_names:
        alone = run_on(
            segmented.segment_view(name), segment_streams(Streams(seed, replication), name), seed, replication
        )
        events, first_lead = _segment_rows(merged, name)
        pd.testing.assert_frame_equal(_unshifted(events, first_lead, _first_reps(merged, name)), alone.events)
        assert len(alone.events) > 1000  # a real funnel, not two empty logs


def _one_segment(raw: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(raw)
    for source in data["sources"].values():
        source["segment_mix"] = {"all": 1.0}
    data["segments"] = {"all": {"description": "everyone"}}
    return data


def _unsegmented(raw: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(raw)
    data.pop("segments")
    for source in data["sources"].values():
        source.pop("segment_mix")
    return data


def test_one_segment_is_the_unsegmented_funnel() -> None:
    """A scenario with one segment taking every lead is the unsegmented scenario: exactly, run on the
    segment's streams; and in distribution on the usual ones. Over 40 independent runs of each, the
    difference of the means of leads, SQLs, wins and revenue lies in its 99.9% Welch interval."""
    plain = parse_scenario(_unsegmented(raw_segmented()))
    single = parse_scenario(_one_segment(_unsegmented(raw_segmented())))
    exact = run_on(plain, Streams(3, 1).within("segment/all"), 3, 1)
    pd.testing.assert_frame_equal(simulate(single, seed=3, replication=1).events, exact.events)

    runs = 40
    keys = ("leads", "sqls", "wins", "revenue")
    a = pd.DataFrame([metrics.summary(simulate(plain, seed=11, replication=i).events) for i in range(runs)])
    b = pd.DataFrame([metrics.summary(simulate(single, seed=11, replication=i).events) for i in range(runs)])
    for key in keys:
        result = stats.ttest_ind(a[key], b[key], equal_var=False)
        low, high = result.confidence_interval(0.999)
        assert low <= 0 <= high, (key, a[key].mean(), b[key].mean())


def test_segments_leads_add_up_to_the_source_volumes(segmented: Scenario) -> None:
    """Each source's leads in each segment are Poisson with mean volume x share x horizon (thinning):
    over 20 cold runs, every (source, segment) count and every source's total is in its 99.9% Poisson
    interval."""
    runs, horizon = 20, segmented.horizon_days
    counts: dict[tuple[str, str], int] = {}
    for i in range(runs):
        leads = simulate(segmented, seed=5, replication=i).attributes
        for (source, segment), n in leads.groupby(["source", SEGMENT], observed=True).size().items():
            counts[(str(source), str(segment))] = counts.get((str(source), str(segment)), 0) + int(n)
    for name, source in segmented.sources.items():
        total = 0
        for segment, share in source.segment_mix.items():
            mu = runs * source.leads_per_day_mean * share * horizon
            low, high = stats.poisson.interval(0.999, mu)
            assert low <= counts.get((name, segment), 0) <= high, (name, segment, mu)
            total += counts.get((name, segment), 0)
        low, high = stats.poisson.interval(0.999, runs * source.leads_per_day_mean * horizon)
        assert low <= total <= high


# ---------------------------------------------------------------------------
# Territories: a property of every run


@st.composite
def segmented_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """A random small scenario (tests/test_properties.py) split into 1-3 segments with random mixes and
    their own teams: sizes, hires, attrition with or without backfill (leavers), prospecting."""
    raw = draw(raw_scenarios())
    names = [f"g{i}" for i in range(draw(st.integers(1, 3)))]
    for source in raw["sources"].values():
        weights = draw(st.lists(st.floats(0.0, 1.0), min_size=len(names), max_size=len(names)))
        weights = [w / sum(weights) for w in weights] if sum(weights) > 0 else [1 / len(names)] * len(names)
        mix = dict(zip(names, weights, strict=True))
        mix[names[-1]] = 1.0 - sum(weights[:-1])
        source["segment_mix"] = {k: max(v, 0.0) for k, v in mix.items()}
    raw["segments"] = {}
    for name in names:
        raw["segments"][name] = {
            "handoff": {
                "sdr": {
                    "count": draw(st.integers(1, 3)),
                    "attrition_per_year": draw(st.sampled_from([0.0, 3.0])),
                    "backfill_days": draw(st.none() | st.floats(0.0, 10.0)),
                }
            },
            "sales": {
                "ae": {
                    "count": draw(st.integers(0, 3)),
                    "max_open_opportunities": draw(st.integers(1, 3)),
                    "attrition_per_year": draw(st.sampled_from([0.0, 3.0])),
                    "backfill_days": draw(st.none() | st.floats(0.0, 10.0)),
                }
            },
            "prospecting": {"opportunities_per_ae_per_month": draw(st.sampled_from([0.0, 4.0]))},
        }
    return raw


def _check_territories(result: RunResult) -> None:
    roster = result.roster
    # Rep ids are unique across segments: one segment per (team, rep).
    owners = roster.groupby(["team", "rep"], observed=True)[SEGMENT].nunique()
    assert (owners == 1).all(), owners[owners > 1]
    owner = roster.drop_duplicates(["team", "rep"]).set_index(["team", "rep"])[SEGMENT].astype(str)
    events = result.events[result.events["rep"] >= 0]
    team = events["event"].astype(str).map(REP_TEAM)
    lead_segment = result.attributes[SEGMENT].astype(str).to_numpy()[events["lead"].to_numpy()]
    rep_segment = [owner.get((t, r)) for t, r in zip(team, events["rep"], strict=True)]
    wrong = [(t, r, s, o) for t, r, s, o in zip(team, events["rep"], lead_segment, rep_segment, strict=True) if s != o]
    assert not wrong, f"leads worked by another segment's rep (team, rep, lead's, rep's segment): {wrong[:5]}"


@PROPERTY_SETTINGS
@given(raw=segmented_scenarios(), seed=st.integers(0, 2**32 - 1))
def test_territory_routing_never_crosses_segments(raw: dict[str, Any], seed: int) -> None:
    """Every SDR or AE named in the event log (cold runs: every rep that ever joined is on the roster)
    belongs to the segment of the lead it works, whatever the teams, hires, leavers and prospecting."""
    _check_territories(simulate(parse_scenario(raw), seed=seed))


@settings(PROPERTY_SETTINGS, max_examples=15)
@given(raw=segmented_scenarios(), seed=st.integers(0, 2**32 - 1))
def test_territory_routing_never_crosses_segments_in_the_reference_model(raw: dict[str, Any], seed: int) -> None:
    """The same property for the one-process-per-lead model, which runs segments the same way."""
    _check_territories(simulate_reference(parse_scenario(raw), seed=seed))


def test_the_reference_model_runs_segments_alike(segmented: Scenario) -> None:
    """The fast engine and the reference model give the same distributions per segment: SQLs and wins
    of each segment over 25 runs each, two-sample Kolmogorov-Smirnov p > 0.001."""
    runs = 25

    def per_segment(result: RunResult) -> dict[str, float]:
        table = metrics.summarize_segments(result).set_index(SEGMENT)
        return {f"{name}_{key}": table.loc[name, key] for name in table.index for key in ("sqls", "wins")}

    fast = pd.DataFrame([per_segment(simulate(segmented, seed=101, replication=i)) for i in range(runs)])
    slow = pd.DataFrame([per_segment(simulate_reference(segmented, seed=202, replication=i)) for i in range(runs)])
    for column in fast.columns:
        assert stats.ks_2samp(fast[column], slow[column]).pvalue > 0.001, column


# ---------------------------------------------------------------------------
# Team totals over segments


def test_team_totals_are_sums_over_segments(segmented: Scenario) -> None:
    """Utilisation of a team is its segments' busy slot-days over their slot-days; headcount and cost
    are sums (each segment's reps at its own cost); monthly capacity and busy slots too."""
    seed, horizon = 4, float(segmented.horizon_days)
    merged = simulate(segmented, seed=seed)
    parts = {
        name: run_on(segmented.segment_view(name), segment_streams(Streams(seed, 0), name), seed, 0)
        for name in segmented.segment_names
    }
    whole = metrics.summarize_run(merged)
    alone = {name: metrics.summarize_run(part) for name, part in parts.items()}
    for team in TEAMS:

        def area(part: RunResult, column: str, team: str = team) -> float:
            return metrics.time_weighted_mean(part.levels, team, column, 0.0, horizon) * horizon

        busy = sum(area(p, "busy") for p in parts.values())
        capacity = sum(area(p, "capacity") for p in parts.values())
        assert whole[f"{team}_utilisation"] == pytest.approx(busy / capacity, rel=1e-12)
        assert metrics.time_weighted_mean(merged.levels, team, "queue", 0.0, horizon) == pytest.approx(
            sum(metrics.time_weighted_mean(p.levels, team, "queue", 0.0, horizon) for p in parts.values()), rel=1e-12
        )
        key = f"average_{team}_headcount"
        assert whole[key] == pytest.approx(sum(a[key] for a in alone.values()), rel=1e-12)
    for key in ("sdr_cost", "ae_cost", "marketing_cost", "revenue", "wins"):
        assert whole[key] == pytest.approx(sum(a[key] for a in alone.values()), rel=1e-12), key
    # The enterprise AEs cost more: the sales cost is not headcount x the top-level cost.
    flat = whole["average_ae_headcount"] * horizon * segmented.sales.ae.cost_per_year / 365.25
    assert whole["ae_cost"] > flat
    monthly = metrics.capacity_by_month(merged.levels, merged.events, segmented.start_date, horizon)
    months = [metrics.capacity_by_month(p.levels, p.events, segmented.start_date, horizon) for p in parts.values()]
    for column in ("capacity", "busy", "mean_queue"):
        expected = sum(m[column].to_numpy() for m in months)
        np.testing.assert_allclose(monthly[column].to_numpy(), expected, rtol=1e-12)
    biggest = np.maximum.reduce([m["max_queue"].to_numpy() for m in months])
    assert (monthly["max_queue"].to_numpy() >= biggest).all()
    assert (monthly["max_queue"].to_numpy() <= sum(m["max_queue"].to_numpy() for m in months)).all()


def test_per_segment_summary_is_each_segment_alone(segmented: Scenario) -> None:
    """segments.csv: each segment's row is the summary of its segment run alone; volumes and revenue
    add up to the run's; summarize_run reports them as segment:<name>:<metric>."""
    seed = 8
    merged = simulate(segmented, seed=seed)
    table = metrics.summarize_segments(merged).set_index(SEGMENT)
    assert list(table.index) == segmented.segment_names
    whole = metrics.summarize_run(merged)
    for name in segmented.segment_names:
        part = run_on(segmented.segment_view(name), segment_streams(Streams(seed, 0), name), seed, 0)
        alone = metrics.summarize_run(part)
        for key in metrics.SEGMENT_COLUMNS:
            assert table.loc[name, key] == pytest.approx(alone[key], rel=1e-12, nan_ok=True), (name, key)
        for key in metrics.SEGMENT_HEADLINE:
            assert whole[f"segment:{name}:{key}"] == pytest.approx(alone[key], nan_ok=True)
    for key in ("leads", "mqls", "sqls", "opportunities", "wins", "revenue", "total_cost"):
        assert table[key].sum() == pytest.approx(whole[key]), key
    monthly = metrics.segments_by_month(merged)
    assert monthly.groupby("month")["revenue"].sum().sum() == pytest.approx(whole["revenue"])
    assert list(monthly.columns[:2]) == ["month", SEGMENT]


# ---------------------------------------------------------------------------
# Warm start and Monte Carlo


def test_one_burn_in_for_the_whole_scenario() -> None:
    """A warm segmented scenario gets one burn-in, chosen once from every segment's pilot series (the
    longest): at least three mean cycles of its slowest segment; runs start from it."""
    scenario = load_scenario(SEGMENTED, ["start=warm"])
    resolved, burn_in = warm_start(scenario, 19)
    assert burn_in is not None and resolved.burn_in_days == burn_in.days
    assert {key.split(":")[0] for key in burn_in.truncation_days} == set(scenario.segment_names)
    slowest = max(scenario.segment_view(n).sales.cycle_days.mean for n in scenario.segment_names)
    assert burn_in.days >= 3 * slowest
    result = simulate(scenario, seed=19)
    assert result.metadata["burn_in_days"] == math.ceil(burn_in.days)
    assert result.metadata["open_at_start"]["opportunities"] > 0
    # Leads carried over from the burn-in keep their segment.
    assert result.attributes[SEGMENT].notna().all()


def test_monte_carlo_reports_segments_and_their_drawn_rates() -> None:
    """replications.csv has segment:<name>:<metric> columns; a rate a segment gives as a distribution is
    drawn per replication and reported at its path in the segmented scenario, and a top-level one is drawn
    once for the segments that inherit it (all of them see the same value: the same run as with it fixed)."""
    uncertain = [
        'segments.enterprise.sales.win_rate={dist = "beta", a = 2, b = 8}',
        'sales.opportunity_rate={dist = "beta", a = 7, b = 3}',
    ]
    scenario = load_scenario(SEGMENTED, uncertain)
    reps = replications.run(scenario, 3, seed=1)
    table = reps.table
    for column in ("parameter:segments.enterprise.sales.win_rate", "parameter:sales.opportunity_rate"):
        assert table[column].between(0, 1).all() and table[column].nunique() == 3, column
    assert not [c for c in table.columns if c.startswith("parameter:segments.smb")]
    leads = sum(table[f"segment:{name}:leads"] for name in scenario.segment_names)
    assert (leads == table["leads"]).all()
    result = simulate(scenario, seed=1, replication=0)
    drawn = result.metadata["parameters"]
    assert set(drawn) == {"sales.opportunity_rate", "segments.enterprise.sales.win_rate"}
    fixed = load_scenario(SEGMENTED, [f"sales.opportunity_rate={drawn['sales.opportunity_rate']!r}", uncertain[0]])
    smb_alone = simulate(fixed, seed=1, replication=0)
    smb = result.attributes.loc[result.attributes[SEGMENT] == "smb", "lead"]
    smb_fixed = smb_alone.attributes.loc[smb_alone.attributes[SEGMENT] == "smb", "lead"]
    pd.testing.assert_frame_equal(
        result.events[result.events["lead"].isin(smb)].reset_index(drop=True),
        smb_alone.events[smb_alone.events["lead"].isin(smb_fixed)].reset_index(drop=True),
    )


# ---------------------------------------------------------------------------
# Products: deal sizes from a price list

PRICE_LIST = [("core", 10_000.0, 1.0), ("addon", 4_000.0, 0.3), ("premium", 25_000.0, 0.1)]
# The four deals the list can make and how often: 10k, 14k, 35k and 39k.
MODES = {10_000.0: 0.7 * 0.9, 14_000.0: 0.3 * 0.9, 35_000.0: 0.7 * 0.1, 39_000.0: 0.3 * 0.1}


def _bundle(items: list[tuple[str, float, float]], quantity: Any = None) -> Bundle:
    return Bundle(
        items=[BundleItem(product=n, price=p, attach=a, quantity=quantity or Fixed(value=1.0)) for n, p, a in items]
    )


def _binomial_ok(hits: int, n: int, p: float) -> bool:
    low, high = stats.binom.interval(0.999, n, p)
    return bool(low <= hits <= high)


def test_bundle_mean_variance_and_modes() -> None:
    """A bundle's values are the sums of the products included, each with its probability (99.9%
    binomial intervals); its mean is sum attach x price x E[quantity] (99.9% normal interval of the
    sample mean, with the closed-form variance); a deal that includes nothing is worth 0."""
    n = 200_000
    spec = _bundle(PRICE_LIST)
    values = spec.sample(np.random.default_rng(1), n)
    assert set(np.unique(values)) == set(MODES)
    for value, p in MODES.items():
        assert _binomial_ok(int((values == value).sum()), n, p), value
    seats = Empirical(values=[1, 2, 5])
    spec = _bundle([("seat", 300.0, 0.8), ("support", 1_000.0, 0.5)], quantity=seats)
    assert spec.mean == pytest.approx(0.8 * 300 * seats.mean + 0.5 * 1_000 * seats.mean)
    values = spec.sample(np.random.default_rng(2), n)
    assert abs(values.mean() - spec.mean) <= Z999 * math.sqrt(spec.variance / n)
    assert values.var() == pytest.approx(spec.variance, rel=0.02)
    assert _binomial_ok(int((values == 0).sum()), n, 0.2 * 0.5)  # nothing attached
    assert spec.lower == 0 and spec.upper == 300 * 5 + 1_000 * 5


def _products_scenario() -> Scenario:
    """A year of a small funnel whose deals are built from PRICE_LIST, with AEs that never fill up."""
    raw = tiny_scenario()
    raw["horizon_days"] = 365
    # Straight to sales, answered at once and taken on source: the analytic model has its closed form.
    raw["sources"]["inbound"].update(leads_per_day=20.0, entry_stage="mql", qualified_by="source")
    raw["handoff"].update(response_delay_days=0.0, sdr={"count": 10, "work_days": 0.1})
    raw["sales"].pop("deal_size")
    raw["sales"]["ae"] = {"count": 1, "max_open_opportunities": 100_000}
    raw["products"] = {name: {"price": price} for name, price, _ in PRICE_LIST}
    raw["sales"]["products"] = {name: {"attach": attach} for name, _, attach in PRICE_LIST}
    return parse_scenario(raw)


def test_won_deals_take_the_price_lists_values() -> None:
    """Won deals of a scenario with products are worth exactly 10k, 14k, 35k or 39k, as often as the
    attach rates say (99.9% binomial intervals over every won deal of 4 runs), and their mean is the
    closed form within its 99.9% normal interval; the analytic model uses the exact mean."""
    scenario = _products_scenario()
    mean = sum(price * attach for _, price, attach in PRICE_LIST)
    assert scenario.sales.deal_size.mean == pytest.approx(mean)
    assert mql_yield(scenario, "inbound").deal_size == pytest.approx(mean)
    won = np.concatenate([r.events.loc[r.events["event"] == "won", "value"].to_numpy() for r in _runs(scenario, 4)])
    assert len(won) > 2_000
    assert set(np.unique(won)) <= set(MODES)
    for value, p in MODES.items():
        assert _binomial_ok(int((won == value).sum()), len(won), p), value
    assert abs(won.mean() - mean) <= Z999 * math.sqrt(scenario.sales.deal_size.variance / len(won))


def _runs(scenario: Scenario, n: int) -> list[RunResult]:
    return [simulate(scenario, seed=21, replication=i) for i in range(n)]


def test_products_round_trip_and_reprice() -> None:
    """The built deal size is not written out (the file's products are), reading the dump back gives the
    same scenario, and a changed price list is taken up (--set on the dump)."""
    scenario = _products_scenario()
    data = scenario.to_dict()
    assert "deal_size" not in data["sales"] and data["sales"]["products"]
    assert parse_scenario(data) == scenario
    repriced = parse_scenario(apply_overrides(data, ["products.premium.price=45000"]))
    assert repriced.sales.deal_size.mean == pytest.approx(scenario.sales.deal_size.mean + 0.1 * 20_000)


# ---------------------------------------------------------------------------
# The segment view, --set, and bad input


def test_segment_view_is_a_valid_plain_scenario(segmented: Scenario) -> None:
    """A segment's view has no segments, the sources at volume x share (a source with no share left out),
    the top level with the segment's tables merged in, and is itself a scenario that loads and runs."""
    view = segmented.segment_view("enterprise")
    assert not view.segments and all(not s.segment_mix for s in view.sources.values())
    assert parse_scenario(view.to_dict()) == view
    assert view.sources["inbound"].leads_per_day == pytest.approx(6.0 * 0.2)
    assert view.sales.win_rate == 0.2 and view.sales.cycle_days.mean == 90  # overridden
    assert view.sales.opportunity_rate == segmented.sales.opportunity_rate  # inherited
    assert view.qualification.sql.threshold == 0.45 and view.qualification.sql.fit_weight == 0.7  # merged
    assert view.sales.deal_size.mean == pytest.approx(12_000 * 6 + 5_000 * 0.6)
    assert view.handoff.sdr.count == segmented.handoff.sdr.count
    assert segmented.segment_view("smb").handoff.sdr.count == 2
    only_smb = load_scenario(SEGMENTED, ["sources.events.segment_mix={smb = 1.0, enterprise = 0.0}"])
    assert list(only_smb.segment_view("enterprise").sources) == ["inbound"]
    assert simulate(view, seed=1).events["event"].eq("opportunity").any()
    with pytest.raises(KeyError, match="unknown segment 'mid'"):
        segmented.segment_view("mid")


def test_set_reaches_into_a_segment() -> None:
    """--set segments.<name>.<section>.<key>=value changes that segment only, even where it had no table."""
    scenario = load_scenario(SEGMENTED, ["segments.enterprise.sales.ae.count=6", "segments.smb.sales.win_rate=0.5"])
    assert scenario.segment_view("enterprise").sales.ae.count == 6
    assert scenario.segment_view("smb").sales.win_rate == 0.5
    assert scenario.segment_view("enterprise").sales.win_rate == 0.2
    roster = simulate(scenario, seed=2).roster
    enterprise_aes = roster[(roster["team"] == "ae") & (roster[SEGMENT] == "enterprise")]
    assert enterprise_aes["rep"].nunique() == 6
    result = CliRunner().invoke(app, ["validate", str(SEGMENTED), "--set", "segments.enterprise.sales.ae.count=6"])
    assert result.exit_code == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["sources.inbound.segment_mix={smb = 0.8, entreprise = 0.2}"],
            "sources.inbound.segment_mix.entreprise: unknown segment 'entreprise' (did you mean 'enterprise'?)",
        ),
        (["sources.events.segment_mix.smb=0.5"], "sources.events.segment_mix: shares must sum to 1, got 1.1"),
        (["sales.deal_size=5000"], "sales.products: give either deal_size or products"),
        (
            ["segments.enterprise.sales.win_rat=0.3"],
            "segments.enterprise.sales.win_rat: unknown key 'win_rat' (did you mean 'win_rate'?)",
        ),
        (["segments.enterprise.sales.win_rate=1.3"], "segments.enterprise.sales.win_rate: must be <= 1, got 1.3"),
        (["segments.enterprise.salse.win_rate=0.3"], "segments.enterprise.salse: unknown key 'salse'"),
        (["segments.enterprise.initial_pipeline.file=x.csv"], "segments.enterprise.initial_pipeline: unknown key"),
        (
            ["segments.enterprise.sales.products.addon={attach = 0.2}"],
            "segments.enterprise.sales.products.addon: unknown product 'addon'",
        ),
        (
            ["sources.inbound.segment_mix={}"],
            "sources.inbound.segment_mix: required when there are segments: the share of this source in smb,",
        ),
        (
            ["segments.enterprise.prospecting.persona=buyr"],
            "segments.enterprise.prospecting.persona: unknown persona 'buyr' (did you mean 'buyer'?)",
        ),
        (
            ["segments.enterprise.sales.ae.hires=[{date = 2026-01-01, count = 1}]"],
            "segments.enterprise.sales.ae.hires.0.date: 2026-01-01 is before start_date 2027-01-01",
        ),
        (["sales.products.core.attach=2"], "sales.products.core.attach: must be <= 1, got 2"),
    ],
    ids=[
        "unknown-segment",
        "mix-not-one",
        "deal-size-and-products",
        "unknown-override-key",
        "override-out-of-range",
        "unknown-section",
        "pipeline-per-segment",
        "unknown-product",
        "source-without-mix",
        "persona-in-segment",
        "hire-in-segment",
        "attach-above-one",
    ],
)
def test_bad_segments_and_products_exit_2_naming_the_field(overrides: list[str], expected: str) -> None:
    """Each mistake exits 2 with one readable line naming the dotted path, no traceback."""
    args = ["validate", str(SEGMENTED)] + [f"--set={o}" for o in overrides]
    result = CliRunner().invoke(app, args)
    text = result.stdout + result.stderr
    assert result.exit_code == 2, text
    assert "Traceback" not in text
    assert expected in " ".join(text.split()), text


def test_segment_mix_without_segments_is_refused() -> None:
    """A segment_mix in a scenario without segments, or segments without a mix, names the source."""
    raw = tiny_scenario()
    raw["sources"]["inbound"]["segment_mix"] = {"smb": 1.0}
    with pytest.raises(ScenarioError, match=r"sources\.inbound\.segment_mix: the scenario has no segments"):
        parse_scenario(raw)
    raw = tiny_scenario()
    raw["segments"] = {"smb": {}}
    with pytest.raises(ScenarioError, match=r"sources\.inbound\.segment_mix: required when there are segments"):
        parse_scenario(raw)


def test_unsegmented_scenarios_are_as_before() -> None:
    """A scenario without the new sections dumps without their keys and its results have no segment column."""
    scenario = parse_scenario(tiny_scenario())
    data = scenario.to_dict()
    assert "segments" not in data and "products" not in data
    assert "segment_mix" not in data["sources"]["inbound"] and "products" not in data["sales"]
    result = simulate(scenario, seed=1)
    for frame in (result.attributes, result.levels, result.roster, result.leads):
        assert SEGMENT not in frame.columns
    assert "segment:" not in " ".join(metrics.summarize_run(result))


# ---------------------------------------------------------------------------
# Outputs


def test_run_folder_has_the_segment_tables_and_they_are_documented(segmented: Scenario, tmp_path: Path) -> None:
    """`run --out` of a segmented scenario writes segments.csv and segments_by_month.csv; leads, levels and
    roster carry a segment column; every column and the segment:<name>:<metric> keys are in outputs.md."""
    result = simulate(segmented, seed=3)
    folder = write_run(result, tmp_path / "out")
    outputs = OUTPUTS.read_text(encoding="utf-8")
    for name in ("segments.csv", "segments_by_month.csv"):
        frame = pd.read_csv(folder / name)
        assert f"`{name}`" in outputs
        missing = [c for c in frame.columns if f"`{c}`" not in outputs]
        assert not missing, f"{name} columns not in docs/outputs.md: {missing}"
    assert list(pd.read_csv(folder / "segments.csv")[SEGMENT]) == segmented.segment_names
    for name in ("leads.csv", "levels.csv", "roster.csv"):
        assert SEGMENT in pd.read_csv(folder / name).columns
    assert "`segment:<name>:<metric>`" in outputs
    missing = [key for key in metrics.SEGMENT_HEADLINE if f"`{key}`" not in outputs]
    assert not missing


def test_run_prints_one_line_per_segment() -> None:
    """`funnelsim run` of a segmented scenario prints a line per segment under the revenue."""
    result = CliRunner().invoke(app, ["run", str(SEGMENTED), "--seed", "3"])
    assert result.exit_code == 0, result.stdout + result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    for name in ("smb", "enterprise"):
        assert any(line.startswith(f"{name}: ") and " leads, " in line and " wins " in line for line in lines), name


def test_a_segment_inherits_the_keys_it_does_not_set_for_sweeps() -> None:
    """A key a segment does not set is the top level's (get_effective), so `sweep --param
    segments.smb.sales.win_rate=...` varies a rate the segment inherits; a typo is still refused."""
    raw = load_scenario(SEGMENTED).to_dict()
    assert get_effective(raw, "segments.smb.sales.win_rate") == 0.3  # inherited
    assert get_effective(raw, "segments.enterprise.sales.win_rate") == 0.2  # its own
    assert get_effective(raw, "segments.enterprise.sales.cycle_days.sd") == 40
    assert get_effective(raw, "segments.smb.sales.win_rat") is MISSING
    swept = load_scenario(SEGMENTED, ['segments.enterprise.sales.cycle_days={dist = "exponential", mean = 90}'])
    assert get_effective(swept.to_dict(), "segments.enterprise.sales.cycle_days.sd") is MISSING  # replaced whole
    args = ["sweep", str(SEGMENTED), "--param", "segments.smb.sales.win_rate=0.2:0.4:2", "--runs", "2", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stdout + result.stderr
