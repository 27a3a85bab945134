"""Scenario files: a good file loads, a broken one is refused with one readable message.

The corpus in ``tests/bad_scenarios/`` holds copies of ``scenarios/baseline.toml``, each
with one small edit; its header lists the lines the user must see::

    # expect: sales.win_rate: must be <= 1, got 1.4

To add a case, copy baseline.toml there, break it, and add ``# expect:`` lines.

Every corpus file goes through ``funnelsim validate`` and ``funnelsim run``. A fresh
``python -m funnelsim`` costs about a second of imports, so by default the whole matrix
runs through the CLI in-process (same typer app, same exit codes, separate stderr) and a
sample of it as real subprocesses; ``pytest -m slow`` runs every case as a subprocess.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from funnelsim.cli import app
from funnelsim.model.distributions import Fixed, Gamma
from funnelsim.model.loading import load_scenario
from funnelsim.model.scenario import DAYS_PER_MONTH, Scenario, ScenarioError, Source

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.toml"
CORPUS = sorted((Path(__file__).parent / "bad_scenarios").glob("*.toml"))
EXPECT = "# expect: "
# Real subprocesses in the default run; the rest of the corpus is marked slow.
SUBPROCESS_SAMPLE = {"several_problems", "toml_syntax_error"}
EXIT_BAD_INPUT = 2


def _expectations(path: Path) -> list[str]:
    return [line.removeprefix(EXPECT) for line in path.read_text().splitlines() if line.startswith(EXPECT)]


def _flat(text: str) -> str:
    # Compare words, not line breaks: test_error_lines_are_not_wrapped checks layout.
    return " ".join(text.split())


def _subprocess(*args: str) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "funnelsim", *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    return done.returncode, done.stdout, done.stderr


def _in_process(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    # Anything but a clean exit would have been a traceback in a terminal.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


def _corpus_params() -> list:
    params = []
    for path in CORPUS:
        for command in ("validate", "run"):
            real = path.stem in SUBPROCESS_SAMPLE
            params.append(pytest.param(path, command, False, id=f"{path.stem}-{command}-in-process"))
            params.append(
                pytest.param(
                    path,
                    command,
                    True,
                    id=f"{path.stem}-{command}-subprocess",
                    marks=() if real else pytest.mark.slow,
                )
            )
    return params


def test_corpus_is_there() -> None:
    """The corpus of broken files exists and every file says what it expects."""
    assert len(CORPUS) >= 20
    for path in CORPUS:
        assert _expectations(path), f"{path.name} has no '{EXPECT}' lines"


@pytest.mark.parametrize(("path", "command", "real"), _corpus_params())
def test_broken_scenario_is_refused_with_its_message(path: Path, command: str, real: bool) -> None:
    """A broken scenario exits 2 with every expected line in stderr and no traceback."""
    code, stdout, stderr = (_subprocess if real else _in_process)(command, str(path))
    assert code == EXIT_BAD_INPUT, stderr
    assert "Traceback" not in stdout + stderr
    for expected in _expectations(path):
        assert _flat(expected) in _flat(stderr), f"missing {expected!r} in:\n{stderr}"


def test_several_problems_come_in_one_message() -> None:
    """All problems of a file are listed at once, each on its own line with its dotted path."""
    with pytest.raises(ScenarioError) as info:
        load_scenario(ROOT / "tests" / "bad_scenarios" / "several_problems.toml")
    paths = [path for path, _ in info.value.problems]
    assert len(paths) == len(set(paths)) == 6
    assert {"horizon_days", "sales.win_rate", "sales.ae.cuont", "nurture.touch_lift"} <= set(paths)
    lines = str(info.value).splitlines()
    assert lines[0].endswith(f"{len(paths)} problems")
    assert len(lines) == 1 + len(paths)


def test_error_lines_are_not_wrapped() -> None:
    """Each problem stays on one line of stderr, even on an 80-column terminal, so logs can be grepped."""
    path = ROOT / "tests" / "bad_scenarios" / "several_problems.toml"
    result = CliRunner().invoke(app, ["validate", str(path)], env={"COLUMNS": "80"})
    lines = result.stderr.splitlines()
    for expected in _expectations(path):
        assert any(expected in line for line in lines), f"{expected!r} is not on one line of:\n{result.stderr}"


def test_baseline_validates() -> None:
    """`funnelsim validate scenarios/baseline.toml` exits 0 and says ok."""
    code, stdout, stderr = _subprocess("validate", str(BASELINE))
    assert code == 0, stderr
    assert "ok" in stdout


def test_missing_file_is_bad_input() -> None:
    """A scenario path that does not exist exits 2 and names the path, without a traceback."""
    code, stdout, stderr = _subprocess("run", "scenarios/no_such_file.toml")
    assert code == EXIT_BAD_INPUT
    assert "scenarios/no_such_file.toml" in stderr
    assert "cannot read" in stderr and "No such file or directory" in stderr
    assert "Traceback" not in stdout + stderr


def test_malformed_set_is_bad_input() -> None:
    """`--set` without `=` exits 2 and quotes what was given."""
    code, stdout, stderr = _subprocess("validate", str(BASELINE), "--set", "sales.win_rate")
    assert code == EXIT_BAD_INPUT
    assert "expected dotted.path=value, got 'sales.win_rate'" in stderr
    assert "Traceback" not in stdout + stderr


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("sales.win_rate=1.4", "sales.win_rate: must be <= 1, got 1.4"),
        ("horizon_days=nan", "horizon_days: must be a finite number, got nan"),
        ("sales.ae.cuont=3", "sales.ae.cuont: unknown key 'cuont' (did you mean 'count'?)"),
        ("sales.cycle_days={dist = 'lognormal', mean = 60}", "sales.cycle_days.sd: required, but missing"),
        ("prospecting.persona=ceo", "prospecting.persona: unknown persona 'ceo'"),
        ("horizon_days.weeks=3", "horizon_days.weeks: cannot set a key inside horizon_days"),
    ],
)
def test_set_is_validated_like_the_file(command: str, override: str, expected: str) -> None:
    """A bad `--set` value is refused with exit 2 and its dotted path, as if it were in the file."""
    code, stdout, stderr = _in_process(command, str(BASELINE), "--set", override)
    assert code == EXIT_BAD_INPUT
    assert _flat(expected) in _flat(stderr)
    assert "Traceback" not in stdout + stderr


def test_set_echoes_bracketed_values_verbatim() -> None:
    """A `--set` value with brackets (an unquoted list, say) is quoted back as typed, not eaten as markup."""
    code, _, stderr = _in_process("validate", str(BASELINE), "--set", "sales.queue=[fifo]")
    assert code == EXIT_BAD_INPUT
    assert "sales.queue: input should be 'fifo' or 'score', got '[fifo]'" in stderr


def test_set_values_are_parsed_as_toml() -> None:
    """`--set` reads numbers, strings, dates, lists and inline tables as TOML; other text as a string."""
    sc = load_scenario(
        BASELINE,
        [
            "sales.win_rate=0.3",
            "sales.ae.count=12",
            'sales.queue="score"',
            "currency=EUR",
            "start_date=2027-03-01",
            "sales.ae.hires=[{date = 2027-05-01, count = 3}]",
            'sales.cycle_days={dist = "gamma", mean = 45, sd = 20}',
            "sales.deal_size=30000",
            "sources.web.leads_per_day=5",
            "sources.web.persona_mix={buyer = 1.0}",
            "sources.web.fit=0.5",
        ],
    )
    assert sc.sales.win_rate == 0.3
    assert sc.sales.ae.count == 12 and isinstance(sc.sales.ae.count, int)
    assert sc.sales.queue == "score"
    assert sc.currency == "EUR"
    assert sc.start_date == dt.date(2027, 3, 1)
    assert [(h.date, h.count) for h in sc.sales.ae.hires] == [(dt.date(2027, 5, 1), 3)]
    assert sc.sales.cycle_days == Gamma(mean=45, sd=20)
    assert sc.sales.deal_size == Fixed(value=30000)
    assert sc.sources["web"].leads_per_day_mean == 5
    assert sc.sources["inbound"].leads_per_month == 2500  # untouched


def test_loaded_scenario_is_frozen() -> None:
    """A loaded scenario cannot be changed by accident: assignment raises, at any depth."""
    sc = load_scenario(BASELINE)
    with pytest.raises(ValidationError):
        sc.horizon_days = 30  # type: ignore[misc]
    with pytest.raises(ValidationError):
        sc.sales.win_rate = 0.9  # type: ignore[misc]
    with pytest.raises(ValidationError):
        sc.sales.cycle_days.sd = 1  # type: ignore[union-attr]


def _source(**volume: float) -> Source:
    return Source.model_validate({**volume, "persona_mix": {"buyer": 1.0}, "fit": 0.5})


@pytest.mark.parametrize(
    ("volume", "per_day"),
    [
        ({"leads_per_day": 3.0}, 3.0),
        ({"leads_per_week": 70.0}, 10.0),
        ({"leads_per_month": 365.25}, 12.0),
        ({"leads_per_month": 2500.0}, 2500 * 12 / 365.25),
    ],
    ids=["day", "week", "month-exact", "month"],
)
def test_source_volume_is_converted_to_leads_per_day(volume: dict[str, float], per_day: float) -> None:
    """Volumes per week and per month become per day (a month is 365.25 / 12 days)."""
    assert _source(**volume).leads_per_day_mean == pytest.approx(per_day, rel=1e-12)
    assert pytest.approx(365.25 / 12, rel=1e-15) == DAYS_PER_MONTH


def test_source_needs_exactly_one_volume() -> None:
    """A source with no volume is refused and the message says which keys to give."""
    with pytest.raises(ValidationError, match="give exactly one of leads_per_month, leads_per_week, leads_per_day"):
        _source()


def test_schema_is_json_schema_of_the_scenario_file() -> None:
    """`funnelsim schema` prints a JSON Schema that names the top-level keys and accepts the baseline."""
    code, stdout, stderr = _subprocess("schema")
    assert code == 0, stderr
    schema = json.loads(stdout)
    assert {"start_date", "horizon_days", "personas", "sources", "nurture", "sales"} <= set(schema["properties"])
    assert {"start_date", "horizon_days", "sales"} <= set(schema["required"])
    assert schema["additionalProperties"] is False
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(load_scenario(BASELINE).to_dict(), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**load_scenario(BASELINE).to_dict(), "horizon_dayz": 3}, schema)


def test_datetime_start_date_still_checks_hire_dates() -> None:
    """A start date written as a TOML datetime gives the hire-date message, not a crash."""
    with pytest.raises(ScenarioError, match=re.escape("sales.ae.hires.0.date: 2026-04-01 is before start_date")):
        load_scenario(BASELINE, ["start_date=2027-01-01T00:00:00", "sales.ae.hires=[{date = 2026-04-01, count = 1}]"])


def test_non_utf8_file_is_bad_input(tmp_path: Path) -> None:
    """A file that is not UTF-8 text is refused with exit 2, not a decoding traceback."""
    path = tmp_path / "latin1.toml"
    path.write_bytes(BASELINE.read_text().replace("Baseline", "Baseline caf\u00e9").encode("latin-1"))
    code, stdout, stderr = _in_process("validate", str(path))
    assert code == EXIT_BAD_INPUT
    assert "not UTF-8" in stderr
    assert "Traceback" not in stdout + stderr


def test_scenario_round_trips_through_to_dict() -> None:
    """The resolved scenario (defaults filled in) loads back to an equal scenario."""
    sc = load_scenario(BASELINE)
    assert Scenario.model_validate(sc.to_dict()) == sc
