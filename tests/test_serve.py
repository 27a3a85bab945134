"""`funnelsim serve`: the what-if page's JSON API gives what `funnelsim run` gives for the same
overrides and seed, refuses bad lever values naming the field, saves a scenario file that loads as
the scenario it simulated, serves 127.0.0.1 only, lets a newer request stop an older one, and stops
cleanly on Ctrl-C."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from funnelsim.cli import app
from funnelsim.model.loading import load_scenario
from funnelsim.report.serve import WhatIf, make_server
from funnelsim.studies.whatif import WhatIfError, levers_of, overrides_for
from scaled import TENTH_VOLUME

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.toml"
# A third of a year of the baseline at a tenth of its volume, its burn-in fixed: a run takes a blink.
SMALL = ("horizon_days=120", "burn_in_days=60", *TENTH_VOLUME)
GOAL = 300_000.0


class Client:
    """JSON calls to a what-if server on 127.0.0.1."""

    def __init__(self, port: int) -> None:
        self.port = port

    def call(self, method: str, path: str, doc: Any = None, host: str | None = None) -> tuple[int, Any, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        body = None if doc is None else (doc if isinstance(doc, bytes) else json.dumps(doc).encode())
        headers = {"Content-Type": "application/json"} | ({"Host": host} if host else {})
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        kind = response.getheader("Content-Type", "")
        conn.close()
        return (
            response.status,
            json.loads(data) if kind == "application/json" else data.decode(),
            dict(response.getheaders()),
        )

    def run(self, levers: dict[str, Any], runs: int = 4, **extra: Any) -> tuple[int, Any]:
        status, doc, _ = self.call("POST", "/api/run", {"levers": levers, "runs": runs, **extra})
        return status, doc


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Client, WhatIf]]:
    whatif = WhatIf.open(BASELINE, SMALL, goal=GOAL, runs=8, drag_runs=2)
    httpd = make_server(whatif, 0)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield Client(httpd.server_address[1]), whatif
    httpd.shutdown()
    httpd.server_close()


def _cli_json(overrides: list[str], runs: int, seed: int, goal: float) -> dict[str, Any]:
    args = ["run", str(BASELINE), "--runs", str(runs), "--seed", str(seed), "--goal", f"{goal:.0f}", "--json"]
    result = CliRunner().invoke(app, [*args, *(f"--set={o}" for o in overrides)])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_the_page_gets_what_funnelsim_run_gets_with_the_same_overrides_and_seed(server: tuple[Client, WhatIf]) -> None:
    """Same overrides, same seed, same runs: the very same numbers (revenue, each stage, P(goal))."""
    client, whatif = server
    levers = {"aes": 3, "mql_threshold": 0.5, "leads": 1.3, "source.events": 2.0, "response_hours": 2.0}
    status, few = client.run(levers, runs=2)  # as while dragging; the 4 runs below add 2 more to these
    assert status == 200, few
    cli_few = _cli_json(few["overrides"], 2, whatif.seed, GOAL)["summary"]
    assert all(few["summary"][m][k] == cli_few[m][k] for m in few["summary"] for k in few["summary"][m])
    status, doc = client.run(levers, runs=4)
    assert status == 200, doc
    assert doc["overrides"][: len(SMALL)] == list(SMALL)
    assert "sales.ae.count=3" in doc["changes"] and "qualification.mql.threshold=0.5" in doc["changes"]
    assert "sources.inbound.leads_per_month=325.0" in doc["changes"]  # 250 × 1.3
    assert "sources.events.leads_per_month=104.0" in doc["changes"]  # 40 × 1.3 × 2
    cli = _cli_json(doc["overrides"], 4, whatif.seed, GOAL)
    for metric in ("revenue", "leads", "mqls", "sqls", "opportunities", "wins"):
        for key in ("mean", "p10", "p50", "p90", "ci_low", "ci_high", "n"):
            assert doc["summary"][metric][key] == cli["summary"][metric][key], (metric, key)
    assert doc["p_goal"] == cli["p_goal"]
    assert doc["runs"] == 4 and doc["seed"] == whatif.seed == 2027
    # The fan ends where the horizon's revenue is: 120 days from 2027-01-01 are January to April.
    assert doc["fan"]["months"] == ["2027-01", "2027-02", "2027-03", "2027-04"]
    assert doc["fan"]["p50"][-1] == pytest.approx(doc["summary"]["revenue"]["p50"])
    assert all(a <= b <= c for a, b, c in zip(doc["fan"]["p10"], doc["fan"]["p50"], doc["fan"]["p90"], strict=True))


def test_a_lever_moves_the_result_and_levers_at_their_value_change_nothing(server: tuple[Client, WhatIf]) -> None:
    """Levers at the scenario's values make no override; more AEs on a short-staffed team book more."""
    client, whatif = server
    today = {lever.id: lever.value for lever in levers_of(whatif.base)}
    assert overrides_for(whatif.base, today) == []
    _, base = client.run(today, runs=4)
    _, more = client.run({**today, "aes": today["aes"] + 6}, runs=4)
    assert base["changes"] == [] and more["changes"] == [f"sales.ae.count={int(today['aes']) + 6}"]
    assert more["summary"]["wins"]["mean"] > base["summary"]["wins"]["mean"]
    status, again = client.run(today, runs=4)  # asked again: the same answer
    assert status == 200 and again["summary"] == base["summary"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"levers": {"aes": -1}}, "aes", "between 0 and"),
        ({"levers": {"aes": 2.5}}, "aes", "whole number"),
        ({"levers": {"mql_threshold": 1.5}}, "mql_threshold", "between 0 and 1"),
        ({"levers": {"leads": "lots"}}, "leads", "must be a number"),
        ({"levers": {"aez": 3}}, "aez", "the levers are"),
        ({"levers": [1, 2]}, "levers", "object"),
        ({"levers": {}, "runs": 0}, "runs", "from 1 to"),
        ({"levers": {}, "goal": "lots"}, "goal", "amount"),
    ],
)
def test_a_bad_value_is_refused_naming_the_field(
    server: tuple[Client, WhatIf], body: dict[str, Any], field: str, words: str
) -> None:
    client, _ = server
    status, doc, _ = client.call("POST", "/api/run", body)
    assert status == 400
    assert doc["field"] == field and words in doc["error"] and doc["error"].startswith(f"{field}:")
    status, doc, _ = client.call("POST", "/api/run", b"{not json")
    assert status == 400 and doc["field"] == "body"


def test_the_saved_toml_loads_as_the_scenario_simulated(server: tuple[Client, WhatIf], tmp_path: Path) -> None:
    """The download is a scenario file `funnelsim run` reads with no --set: the same scenario, comments kept."""
    client, _ = server
    levers = {"aes": 4, "sdrs": 2, "sql_threshold": 0.5, "leads": 0.8, "response_hours": 3.0}
    status, text, headers = client.call("POST", "/api/save", {"levers": levers})
    assert status == 200
    assert headers["Content-Disposition"] == 'attachment; filename="baseline-whatif.toml"'
    _, doc = client.run(levers, runs=1)
    saved = tmp_path / "baseline-whatif.toml"
    saved.write_text(text)
    assert load_scenario(saved).to_dict() == load_scenario(BASELINE, doc["overrides"]).to_dict()
    assert "count = 4 # what-if (was 10)" in text
    assert "# trade shows: bursts in March" in text  # the file's own comments
    status, doc, _ = client.call("POST", "/api/save", {"levers": {"sdrs": 0}})
    assert status == 400 and doc["field"] == "sdrs"


@pytest.mark.parametrize(
    ("path", "levers", "comment"),
    [
        ("scenarios/saas.toml", {"aes.smb": 5, "sdrs.enterprise": 4}, "count = 5 # what-if (was 3)"),
        ("scenarios/baseline-with-pipeline.toml", {"leads": 1.5}, "leads_per_month = 3750.0 # what-if (was 2500)"),
        ("tests/scenarios/channels.toml", {"budget": 38_000}, "spend_per_month = 18000.0 # what-if (was 9000.0)"),
    ],
)
def test_a_saved_segmented_pipeline_or_channel_scenario_loads_too(
    path: str, levers: dict[str, float], comment: str, tmp_path: Path
) -> None:
    """New segment tables, an initial pipeline read from a file (written inline), spend curves."""
    whatif = WhatIf.open(ROOT / path, ("burn_in_days=30",))
    name, text = whatif.save({"levers": levers})
    saved = tmp_path / name
    saved.write_text(text)
    assert load_scenario(saved).to_dict() == whatif.applied(levers)[0].to_dict()
    assert comment in text


def test_more_runs_of_a_setting_simulate_only_the_replications_it_lacks(
    server: tuple[Client, WhatIf], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Letting go of a slider after dragging adds to the drag's runs; fewer runs or another goal simulate nothing."""
    from funnelsim.studies import whatif as module

    client, _ = server
    asked: list[list[int]] = []
    real = module.mc_run

    def recording(*args: Any, **kwargs: Any) -> Any:
        asked.append(list(kwargs["replications"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "mc_run", recording)
    levers = {"sql_threshold": 0.37}
    assert client.run(levers, runs=2)[0] == 200
    assert client.run(levers, runs=5)[0] == 200
    status, doc = client.run(levers, runs=3, goal="1M")
    assert status == 200 and doc["runs"] == 3 and doc["p_goal"]["n"] == 3 and doc["goal"] == 1e6
    assert asked == [[0, 1], [2, 3, 4]]


def test_a_newer_request_stops_an_older_one(server: tuple[Client, WhatIf]) -> None:
    """A long run is given up (``superseded``) when a newer request comes; the newer one is answered."""
    client, _ = server
    answers: dict[str, tuple[int, Any]] = {}
    slow = threading.Thread(target=lambda: answers.update(old=client.run({"aes": 5}, runs=400)))
    started = time.monotonic()
    slow.start()
    time.sleep(1.0)
    answers["new"] = client.run({"aes": 6}, runs=2)
    slow.join(60)
    assert answers["old"] == (200, {"superseded": True})
    assert answers["new"][0] == 200 and answers["new"][1]["runs"] == 2
    assert time.monotonic() - started < 30  # 400 runs would take far longer


def test_the_order_a_page_sent_its_requests_in_decides(server: tuple[Client, WhatIf]) -> None:
    """A page's request that arrives after a newer one of the same page (several connections) is given up
    at once; another page's requests are not."""
    client, _ = server
    assert client.run({"aes": 5}, runs=1, client="page-a", seq=7)[0] == 200
    assert client.run({"aes": 4}, runs=1, client="page-a", seq=6) == (200, {"superseded": True})
    status, doc = client.run({"aes": 4}, runs=1, client="page-b", seq=1)
    assert status == 200 and doc["runs"] == 1
    status, doc = client.run({}, runs=1, client="page-a", seq=-1)
    assert status == 400 and doc["field"] == "seq"


def test_only_this_machine_is_served(server: tuple[Client, WhatIf]) -> None:
    """Bound to 127.0.0.1, and a request naming another host (DNS rebinding) is refused."""
    client, _ = server
    status, doc, _ = client.call("GET", "/api/levers", host="attacker.example:80")
    assert status == 403
    status, doc, headers = client.call("GET", "/api/levers")
    assert status == 200 and doc["scenario"] == "baseline" and doc["goal"] == GOAL
    status, page, headers = client.call("GET", "/")
    assert status == 200 and "<svg" in page and "default-src 'none'" in headers["Content-Security-Policy"]
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page


def test_the_burn_in_is_chosen_once_and_pinned() -> None:
    """Every what-if runs on the warm start chosen for the scenario as served (no pilot per request)."""
    whatif = WhatIf.open(BASELINE, ("horizon_days=120", *TENTH_VOLUME))
    pinned = [o for o in whatif.overrides if o.startswith("burn_in_days=")]
    assert len(pinned) == 1 and whatif.base.burn_in_days == float(pinned[0].split("=")[1]) > 0
    cold = WhatIf.open(BASELINE, ("horizon_days=120", 'start="cold"', *TENTH_VOLUME))
    assert not any(o.startswith("burn_in_days=") for o in cold.overrides)


def test_segment_and_budget_levers() -> None:
    """A segmented scenario has a headcount lever per segment; spend curves give a budget lever split in today's mix."""
    saas = load_scenario(ROOT / "scenarios" / "saas.toml")
    ids = [lever.id for lever in levers_of(saas)]
    assert {"aes.smb", "aes.enterprise", "sdrs.smb"} <= set(ids) and "aes" not in ids
    changes = overrides_for(saas, {"aes.enterprise": 5, "sdrs.smb": 3})
    assert changes == ["segments.enterprise.sales.ae.count=5"]  # sdrs.smb is already 3
    moved = load_scenario(ROOT / "scenarios" / "saas.toml", changes)
    assert moved.segments["enterprise"].sales["ae"]["count"] == 5  # type: ignore[index]

    channels = load_scenario(ROOT / "tests" / "scenarios" / "channels.toml")
    budget = next(lever for lever in levers_of(channels) if lever.id == "budget")
    assert budget.value == 19_000
    overrides = overrides_for(channels, {"budget": 38_000})
    moved = load_scenario(ROOT / "tests" / "scenarios" / "channels.toml", overrides)
    for name in ("paid_search", "events", "demo_requests"):
        assert moved.sources[name].spend_per_month == pytest.approx(2 * channels.sources[name].spend_per_month)
    with pytest.raises(WhatIfError, match=r"^leads: must be between 0 and 5"):
        overrides_for(channels, {"leads": 6})


def test_the_response_time_lever_scales_the_delay_keeping_its_shape() -> None:
    base = load_scenario(BASELINE)
    delay = base.handoff.response_delay_days
    moved = load_scenario(BASELINE, overrides_for(base, {"response_hours": 6.0}))
    scaled = moved.handoff.response_delay_days
    assert scaled.mean * 24 == pytest.approx(6.0)
    assert scaled.variance**0.5 / scaled.mean == pytest.approx(delay.variance**0.5 / delay.mean)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_ctrl_c_stops_the_server_and_its_workers() -> None:
    """Ctrl-C while a run computes on 2 worker processes: exit 0, 'stopped', the port closed, no process left."""
    command = [sys.executable, "-m", "funnelsim", "serve", str(BASELINE), "--port", "0", "--jobs", "2"]
    command += [f"--set={o}" for o in SMALL]
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True, env=env)
    try:
        assert proc.stderr is not None
        line = ""
        deadline = time.monotonic() + 60
        while "serving" not in line:
            assert time.monotonic() < deadline and proc.poll() is None, line
            line = proc.stderr.readline()
        port = int(line.split("127.0.0.1:")[1].split("/")[0])

        def busy_run() -> None:
            with contextlib.suppress(ConnectionError):  # the server stops before it answers
                Client(port).call("POST", "/api/run", {"runs": 400})

        busy = threading.Thread(target=busy_run, daemon=True)
        busy.start()
        while len(workers := _children(proc.pid)) < 2:
            assert time.monotonic() < deadline, "no workers"
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
        assert "stopped" in proc.stderr.read()
        assert not any(_alive(pid) for pid in workers)
        with pytest.raises(ConnectionRefusedError):
            Client(port).call("GET", "/api/levers")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_bad_command_line_is_exit_2_naming_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", str(tmp_path / "missing.toml"), "--port", "0"])
    assert result.exit_code == 2 and "missing.toml" in result.stderr
    result = CliRunner().invoke(app, ["serve", str(BASELINE), "--goal", "lots"])
    assert result.exit_code == 2 and "--goal" in result.stderr
    with make_server(WhatIf.open(BASELINE, SMALL), 0) as taken:
        port = taken.server_address[1]
        result = CliRunner().invoke(app, ["serve", str(BASELINE), "--port", str(port), *(f"--set={o}" for o in SMALL)])
    assert result.exit_code == 2 and "--port" in result.stderr and "Traceback" not in result.output
