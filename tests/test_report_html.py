"""report.html: the page each output folder carries says what the folder's tables say.

A reader checks the answer sentence against the tables below it; these tests do the same against the
CSV files (the answer's numbers are the tables' numbers, rounded as the page rounds), check that every
figure file of the folder is on the page, that user text (scenario names, descriptions, CSV cells)
arrives escaped, and that the page fetches nothing from the network. The browser test
(tests/test_report_browser.py) checks that it renders.
"""

from __future__ import annotations

import base64
import html
import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from funnelsim.cli import app
from funnelsim.report.html import HtmlTable, frame_table, short_money, write_report

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from scaled import TENTH, TENTH_VOLUME  # noqa: E402

BASELINE = ROOT / "scenarios" / "baseline.toml"
SMALL = [f"--set={o}" for o in ("horizon_days=120", *TENTH)]
HOSTILE = '<script>alert("x")</script> & <b>co</b>'


def _cli(*args: str) -> None:
    result = CliRunner().invoke(app, [*args, "-q"])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One folder per command, small: run (PNG), run --runs (with a goal), compare (SVG), sweep, plan."""
    tmp = tmp_path_factory.mktemp("reports")
    out = {name: tmp / name for name in ("run", "runs", "compare", "sweep", "plan")}
    _cli("run", str(BASELINE), *SMALL, "--seed", "5", "--out", str(out["run"]))
    _cli("run", str(BASELINE), *SMALL, "--runs", "12", "--seed", "5", "--goal", "150k", "--out", str(out["runs"]))
    scenarios = [str(ROOT / "scenarios" / f"{name}.toml") for name in ("misaligned", "aligned")]
    _cli("compare", *scenarios, *SMALL, "--runs", "3", "--seed", "5", "--format", "svg", "--out", str(out["compare"]))
    sweep = ["--param", "qualification.mql.threshold=0.5,0.6", "--runs", "3", "--seed", "5"]
    _cli("sweep", str(BASELINE), *SMALL, *sweep, "--out", str(out["sweep"]))
    fast = [f"--set={o}" for o in (*TENTH_VOLUME, "handoff.sdr.count=2", "sales.ae.count=3", "sales.ae.hires=[]")]
    fast += ["--set=prospecting.opportunities_per_ae_per_month=0", "--period", "2027-01-01:2027-03-31"]
    plan = ["--lead-in", "3", "--goal", "100k", "--runs", "20", "--seed", "4", "--verify-runs", "60"]
    _cli("plan", str(BASELINE), *fast, *plan, "--out", str(out["plan"]))
    return out


def _page(folder: Path) -> str:
    return (folder / "report.html").read_text(encoding="utf-8")


def _answer(page: str) -> str:
    match = re.search(r'<p class="answer">(.*?)</p>', page, re.DOTALL)
    assert match, "the page has no answer"
    return html.unescape(match.group(1))


def _table(page: str, title: str) -> list[list[str]]:
    """The body rows of the table captioned ``title``, as text."""
    match = re.search(rf"<caption>{re.escape(html.escape(title))}</caption>(.*?)</table>", page, re.DOTALL)
    assert match, f"no table {title!r}"
    body = match.group(1).split("<tbody>")[1]
    return [
        [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.DOTALL)
    ]


def test_run_answer_is_the_summary_tables_revenue_and_wins(folders: dict[str, Path]) -> None:
    """One run: the answer's revenue and wins are summary.csv's, and so are the headline table's cells."""
    page = _page(folders["run"])
    summary = pd.read_csv(folders["run"] / "summary.csv").iloc[0]
    answer = _answer(page)
    assert f": {short_money(summary['revenue'])} USD from {summary['wins']:,.0f} wins." in answer
    rows = {row[0]: row[1] for row in _table(page, "Headline numbers")}
    assert rows["revenue booked"] == f"{summary['revenue']:,.0f}"
    assert rows["wins"] == f"{summary['wins']:,.0f}"
    funnel = {row[0]: row[1] for row in _table(page, "Funnel")}
    assert funnel["SQLs"] == f"{summary['sqls']:,.0f}" and funnel["leads"] == f"{summary['leads']:,.0f}"


def test_monte_carlo_answer_gives_the_summary_tables_range(folders: dict[str, Path]) -> None:
    """run --runs: the answer's median and P10–P90 of revenue are summary.csv's, as in the page's table;
    P(goal) is the manifest's replications' share."""
    page = _page(folders["runs"])
    revenue = pd.read_csv(folders["runs"] / "summary.csv").set_index("metric").loc["revenue"]
    p50, p10, p90 = (short_money(revenue[k]) for k in ("p50", "p10", "p90"))
    assert f"{p50} USD median (P10–P90 {p10}–{p90}) across 12 runs" in _answer(page)
    row = next(
        r
        for r in _table(page, "12 runs: the mean with its 95% CI, and the spread across runs")
        if r[0] == "revenue booked"
    )
    assert row[4:] == [p10, p50, p90]
    table = pd.read_csv(folders["runs"] / "replications.csv")
    share = (table["revenue"] >= 150_000).mean()
    assert f"P(revenue ≥ 150k USD) = {100 * share:.1f}%" in html.unescape(page)


def test_plan_answer_is_plan_json(folders: dict[str, Path]) -> None:
    """plan: 'Leads ×k reach the goal with p verified (low–high)', every number from plan.json."""
    doc = json.loads((folders["plan"] / "plan.json").read_text())
    pg = doc["p_goal"]
    assert doc["status"] == "planned"
    expected = (
        f"Leads ×{doc['lead_multiplier']:.2f} reach 100k USD in 2027-01 to 2027-03 with "
        f"{100 * pg['estimate']:.1f}% verified ({100 * pg['ci_low']:.1f}%–{100 * pg['ci_high']:.1f}%)."
    )
    assert _answer(_page(folders["plan"])) == expected
    rows = _table(_page(folders["plan"]), "Joint targets per month")
    total = rows[-1]
    assert total[0] == "period total" and total[1] == f"{doc['leads_in_period']:,.0f}"


def test_compare_answer_is_the_paired_difference(folders: dict[str, Path]) -> None:
    """compare: the revenue difference and its paired CI in the answer are comparison.csv's."""
    table = pd.read_csv(folders["compare"] / "comparison.csv")
    row = table[(table["metric"] == "revenue") & (table["scenario"] == "aligned")].iloc[0]
    assert row["difference"] > 0
    low, high = (("+" if row[k] > 0 else "−") + short_money(abs(row[k])) for k in ("diff_ci_low", "diff_ci_high"))
    expected = f"aligned books +{short_money(row['difference'])} USD against misaligned (95% CI {low} to {high})"
    assert _answer(_page(folders["compare"])).startswith(expected)


def test_sweep_answer_is_the_best_row(folders: dict[str, Path]) -> None:
    """sweep: the best point and its mean are sweep.csv's highest mean revenue."""
    table = pd.read_csv(folders["sweep"] / "sweep.csv")
    best = table.loc[table["revenue_mean"].idxmax()]
    answer = _answer(_page(folders["sweep"]))
    assert answer.startswith(f"Best revenue: {short_money(best['revenue_mean'])} at ")
    assert f"qualification.mql.threshold = {best['qualification.mql.threshold']:.4g} " in answer


@pytest.mark.parametrize("name", ["run", "runs", "compare", "sweep", "plan"])
def test_every_figure_of_the_folder_is_embedded(folders: dict[str, Path], name: str) -> None:
    """Each PNG of figures/ is on the page as its own bytes in a data URI, each SVG inline; nothing else is."""
    page = _page(folders[name])
    files = sorted((folders[name] / "figures").iterdir())
    assert files
    for path in files:
        if path.suffix == ".png":
            assert f'src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}"' in page, path.name
        else:
            body = path.read_text(encoding="utf-8")
            assert body[body.index("<svg") : body.index("<metadata>")] in page, path.name
        assert f'data-file="figures/{path.name}"' in page
    assert page.count("<figure ") == len(files)
    assert page.count("<img ") + page.count("<svg") == len(files)


@pytest.mark.parametrize("name", ["run", "compare", "plan"])
def test_the_page_references_nothing_on_the_network(folders: dict[str, Path], name: str) -> None:
    """No URL at all (beyond the SVG namespace names, which are never fetched), no script, no stylesheet link."""
    page = _page(folders[name])
    without_namespaces = re.sub(r'xmlns(:\w+)?="[^"]*"', "", page)
    assert not re.search(r"https?://|//[\w.-]+\.\w+/", without_namespaces)
    assert "<script" not in page and "<link" not in page and "@import" not in page


def test_user_text_is_escaped(tmp_path: Path) -> None:
    """A scenario named and described with markup reaches the page as text: no tag of it survives."""
    scenario = tmp_path / "hostile.toml"
    text = BASELINE.read_text(encoding="utf-8")
    text = re.sub(r'(?m)^name = ".*"$', f"name = {json.dumps(HOSTILE)}", text)
    text = re.sub(r'(?m)^description = ".*"$', f"description = {json.dumps(HOSTILE)}", text)
    scenario.write_text(text, encoding="utf-8")
    _cli("run", str(scenario), "--set=horizon_days=60", *SMALL[1:], "--format", "svg", "--out", str(tmp_path / "r"))
    page = _page(tmp_path / "r")
    assert "<script" not in page and "<b>co</b>" not in page
    assert html.escape(HOSTILE, quote=False) in page or html.escape(HOSTILE) in page


def test_table_cells_are_escaped_and_missing_numbers_are_dashes(tmp_path: Path) -> None:
    """A CSV cell with markup is text on the page; a NaN is a dash, not 'nan'."""
    frame = pd.DataFrame({"source": ["<img src=x onerror=alert(1)>", "ok"], "revenue": [float("nan"), 1234.5]})
    table = frame_table(frame, "t", [("source", "source", "text"), ("revenue", "revenue", "money")])
    assert table.rows == [["<img src=x onerror=alert(1)>", "–"], ["ok", "1,234"]]
    context = {"title": "<i>t</i>", "question": "q", "answer": "a", "tables": [table]}
    page = write_report(tmp_path, "run", context).read_text(encoding="utf-8")
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;i&gt;t&lt;/i&gt;" in page


def test_unknown_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown report kind"):
        write_report(tmp_path, "nonsense", {"title": "t", "question": "q", "answer": "a"})
    assert not (tmp_path / "report.html").exists()


def test_short_money_keeps_three_significant_digits() -> None:
    """The answer's rounding: 5.60M, not 5.6M; 950k; 1.00M at the boundary, never 1000k."""
    assert [short_money(x) for x in (5_600_093, 18e6, 950_400, 999_600, 1_234, 420.4, float("nan"))] == [
        "5.60M",
        "18.0M",
        "950k",
        "1.00M",
        "1.23k",
        "420",
        "n/a",
    ]
    assert HtmlTable("t", ["a", "b"], []).align == ["l", "r"]


def test_subscription_run_answers_with_new_arr_and_ending_arr(tmp_path: Path) -> None:
    """A subscription run's answer names what its revenue is (new ARR at signing) and the ARR at the end,
    both summary.csv's."""
    out = tmp_path / "saas"
    _cli("run", str(ROOT / "scenarios" / "saas.toml"), "--set=horizon_days=60", "--seed", "2", "--out", str(out))
    stats = pd.read_csv(out / "summary.csv").iloc[0]
    answer = _answer(_page(out))
    assert answer.startswith(f"New ARR booked over the 60 days from 2027-01-01: {short_money(stats['revenue'])} USD")
    assert f"ARR at the end {short_money(stats['ending_arr'])} USD" in answer


def test_mix_answer_is_the_mix_tables_totals(tmp_path: Path) -> None:
    """mix: the best split's revenue a month and today's are the `total` rows of mix.csv."""
    out = tmp_path / "mix"
    _cli("mix", str(ROOT / "tests" / "scenarios" / "channels.toml"), "--budget", "30k", "--out", str(out))
    table = pd.read_csv(out / "mix.csv").set_index(["mix", "channel"])
    best, today = (table.loc[(mix, "total"), "revenue_per_month"] for mix in ("optimal", "today"))
    expected = f"Best split of 30,000 USD a month: {short_money(best)} USD of revenue a month, against "
    assert _answer(_page(out)) == expected + f"{short_money(today)} with today's spend."


def test_a_segmented_scenarios_assumptions_have_a_column_per_segment(tmp_path: Path) -> None:
    """Each segment's own teams show: the AE row holds each segment's AE count, not the top level's."""
    from funnelsim import load_scenario

    scenario = ROOT / "tests" / "scenarios" / "segmented.toml"
    out = tmp_path / "seg"
    _cli("run", str(scenario), "--set=horizon_days=60", "--seed", "2", "--out", str(out))
    sc = load_scenario(scenario)
    page = _page(out)
    rows = {row[0]: row[1:] for row in _table(page, "The scenario")}
    counts = [sc.segment_view(name).sales.ae.count for name in sc.segment_names]
    assert len(set(counts)) > 1  # the segments differ, so a column per segment shows something
    assert [cell.split(" AE")[0] for cell in rows["AEs"]] == [str(n) for n in counts]
    for name in sc.segment_names:
        assert f'<th class="l">{sc.name}: {name}</th>' in page
