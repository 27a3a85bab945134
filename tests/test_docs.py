"""The documentation stays true to the code: generated reference, documented keys, events and columns."""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from funnelsim import load_scenario, simulate
from funnelsim import vocabulary as records
from funnelsim.model.mechanisms import contact_probability
from funnelsim.model.scenario import SPEED_TO_LEAD_PRESETS, SpeedToLead
from funnelsim.report import tables as output
from funnelsim.run import metrics

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BASELINE = ROOT / "scenarios" / "baseline.toml"


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen() -> Any:
    return _load_generator()


@pytest.fixture(scope="module")
def reference() -> str:
    return (DOCS / "scenario-reference.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def outputs() -> str:
    return (DOCS / "outputs.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def small_run() -> Any:
    """Two months of the baseline company at a tenth of its inbound volume (fast)."""
    scenario = load_scenario(BASELINE, ["horizon_days=60", "sources.inbound.leads_per_month=250"])
    return simulate(scenario, seed=3)


def _sections(reference: str) -> dict[str, set[str]]:
    """Keys per section of the reference: ``{"sources.<name>": {"leads_per_month", ...}, "": {...}}``."""
    out: dict[str, set[str]] = {}
    current: list[str] = []
    for line in reference.splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            current = [""] if title == "Top level" else re.findall(r"`([^`]+)`", title)
            for path in current:
                out.setdefault(path, set())
            if title.startswith("Distribution specs"):
                break
        elif line.startswith("| `") and current:
            key = re.match(r"\| `([^`]+)` \|", line)
            if key:
                for path in current:
                    out[path].add(key.group(1))
    return out


def _dist_rows(reference: str) -> dict[str, str]:
    """The row of each family in the distribution table, by its ``dist`` tag."""
    part = reference.split("## Distribution specs", 1)[1]
    return {m.group(1): line for line in part.splitlines() if (m := re.match(r"\| `(\w+)` \| `", line))}


def test_scenario_reference_is_in_sync_with_the_models(gen: Any, reference: str) -> None:
    """docs/scenario-reference.md is exactly what docs/gen_reference.py generates from the models."""
    assert reference == gen.render(), "docs/scenario-reference.md is stale; run: python docs/gen_reference.py"


def test_generator_check_flag_reports_a_stale_file(gen: Any, tmp_path: Path, monkeypatch: Any) -> None:
    """`gen_reference.py --check` exits 0 on the generated text and 1 on anything else."""
    target = tmp_path / "scenario-reference.md"
    monkeypatch.setattr(gen, "TARGET", target)
    target.write_text(gen.render(), encoding="utf-8")
    assert gen.main(["--check"]) == 0
    target.write_text("# hand-edited\n", encoding="utf-8")
    assert gen.main(["--check"]) == 1


def test_every_baseline_key_is_in_the_reference(reference: str) -> None:
    """Each key a user finds in scenarios/baseline.toml has a row in the reference section it belongs to."""
    sections = _sections(reference)
    dists = _dist_rows(reference)
    raw = tomllib.loads(BASELINE.read_text(encoding="utf-8"))
    missing: list[str] = []

    def walk(table: dict[str, Any], section: str, shown: str) -> None:
        for key, value in table.items():
            where = f"{shown}.{key}" if shown else key
            if key not in sections[section]:
                missing.append(f"{where} (section {section or 'top level'})")
                continue
            child = f"{section}.{key}" if section else key
            if isinstance(value, dict) and "dist" in value:
                row = dists.get(value["dist"], "")
                missing.extend(f"{where}.{k} ({value['dist']})" for k in value if k != "dist" and f"`{k}`" not in row)
            elif isinstance(value, dict) and child in sections:
                walk(value, child, where)
            elif isinstance(value, dict) and f"{child}.<name>" in sections:
                for name, entry in value.items():
                    walk(entry, f"{child}.<name>", f"{where}.{name}")
            elif isinstance(value, list) and f"{child}[]" in sections:
                for i, entry in enumerate(value):
                    walk(entry, f"{child}[]", f"{where}.{i}")

    walk(raw, "", "")
    assert not missing, "baseline keys missing from docs/scenario-reference.md: " + ", ".join(missing)


def test_every_event_type_and_state_is_documented(outputs: str) -> None:
    """outputs.md names every event of the closed set in records.EVENTS, and every state a lead can end in."""
    missing = [name for name in (*records.EVENTS, *records.STATES) if f"`{name}`" not in outputs]
    assert not missing, f"not in docs/outputs.md: {missing}"


def test_every_result_column_is_documented(outputs: str, small_run: Any) -> None:
    """Every column of the event log, level log, roster and per-lead table has an entry in outputs.md."""
    tables = {
        "events": small_run.events,
        "levels": small_run.levels,
        "roster": small_run.roster,
        "leads": small_run.leads,
    }
    missing = [f"{name}.{col}" for name, df in tables.items() for col in df.columns if f"`{col}`" not in outputs]
    assert not missing, f"columns not in docs/outputs.md: {missing}"


def _summary(result: Any) -> dict[str, Any]:
    """Call metrics.summary with whatever of the run's tables its signature asks for."""
    available = {
        "events": result.events,
        "levels": result.levels,
        "roster": result.roster,
        "leads": result.leads,
        "scenario": result.scenario,
        "result": result,
        "run": result,
    }
    params = inspect.signature(metrics.summary).parameters
    unknown = [
        name
        for name, p in params.items()
        if name not in available and p.default is inspect.Parameter.empty and p.kind is not p.VAR_KEYWORD
    ]
    if unknown:
        pytest.fail(f"test_docs does not know how to pass {unknown} to metrics.summary; teach _summary()")
    return metrics.summary(**{name: available[name] for name in params if name in available})


def _documented(name: str, outputs: str) -> bool:
    """``name`` appears as a code span, or is a per-source cost key covered by its pattern."""
    if name.startswith("marketing_cost_") and "`marketing_cost_<source>`" in outputs:
        return True
    return f"`{name}`" in outputs


def test_every_summary_key_is_documented(outputs: str, small_run: Any) -> None:
    """Each key of summary() and summarize_run() (`run --json`, summary.csv) is explained in outputs.md."""
    keys = list(_summary(small_run))
    if hasattr(metrics, "summarize_run"):
        keys += list(metrics.summarize_run(small_run))
    missing = [key for key in dict.fromkeys(keys) if not _documented(key, outputs)]
    assert not missing, f"summary keys not in docs/outputs.md: {missing}"


def test_every_output_file_and_column_is_documented(outputs: str, small_run: Any) -> None:
    """Every table `funnelsim run --out` writes, every column and every leakage reason and stage, is in outputs.md."""
    missing = []
    for name, frame in output._tables(small_run).items():
        missing += [name] if f"`{name}`" not in outputs else []
        missing += [f"{name}:{col}" for col in frame.columns if not _documented(str(col), outputs)]
    missing += [f"figures/{f}" for f in output.FIGURES if f"`{f}.png`" not in outputs]
    labels = [r[0] for r in records.LEAKAGE_REASONS] + [r[0] for r in metrics.SPANS]
    missing += [label for label in labels if f"`{label}`" not in outputs]
    assert not missing, f"not in docs/outputs.md: {missing}"


def test_model_doc_quotes_the_speed_to_lead_presets_as_defined() -> None:
    """The preset table in docs/model.md section 7 gives each preset's multipliers and P(contact)."""
    text = (DOCS / "model.md").read_text(encoding="utf-8")
    for name in ("published", "conservative"):
        speed = SpeedToLead(**SPEED_TO_LEAD_PRESETS[name])
        multipliers = " | ".join(f"{m:g}" for m in speed.odds_multiplier)
        contact = " | ".join(f"{float(contact_probability(speed, h / 24)):.3f}" for h in speed.knots_hours)
        assert f"`{name}`: odds multiplier `m` | {multipliers} |" in text, name
        assert f"`{name}`: `P(contact)`, `p0 = {speed.contact_rate_immediate:g}` | {contact} |" in text, name
