"""``funnelsim serve``: a local what-if page. A small HTTP server on 127.0.0.1 (the standard
library's :class:`~http.server.ThreadingHTTPServer`) serves one self-contained page
(``whatif.html``, package data: its charts are inline SVG drawn from JSON, nothing is fetched
from the network) and a JSON API:

- ``GET /api/levers``: the scenario, its levers (:func:`funnelsim.studies.whatif.levers_of`) with
  today's values, the seed, the goal and the run counts;
- ``POST /api/run`` ``{"levers": {id: value}, "runs": n, "goal": "6M", "client": id, "seq": n}``:
  the replications of the scenario with the levers applied (:func:`funnelsim.studies.whatif.evaluate`)
  and the ``--set`` overrides that reproduce them with ``funnelsim run``; a bad value is a 400 whose
  ``field`` names it; a run given up for a newer one answers ``{"superseded": true}``;
- ``POST /api/save`` ``{"levers": ...}``: the scenario with the levers applied, as a TOML download
  (:func:`funnelsim.report.scenario_file.whatif_toml`).

Every lever setting is simulated on the same seed (common random numbers: moving a slider
moves the result, not the noise), and with the same warm start: the burn-in is chosen once,
for the scenario as served, and pinned (``burn_in_days`` among the overrides), so that settings
are compared over the same window and no request waits for a pilot. The replications of the
last settings are kept, so more runs of a setting simulate only the ones it lacks (a replication
depends only on the scenario, the seed and its index). Runs take turns (one at a time, on
``--jobs`` worker processes); a newer run request of the same page (``client``, in the
order of its ``seq``) makes an older one stop at its next finished task.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from funnelsim.engine import warm_start
from funnelsim.files import read_text
from funnelsim.model.loading import MAX_SCENARIO_BYTES, load_scenario
from funnelsim.model.scenario import Scenario, ScenarioError
from funnelsim.randomness import resolve_seed
from funnelsim.studies.executors import executor
from funnelsim.studies.replications import Replications
from funnelsim.studies.whatif import Superseded, WhatIfError, changes_for, evaluate, first, levers_of, replicate
from funnelsim.studies.workload import WorkloadTooLarge
from funnelsim.units import UnitError, parse_amount

__all__ = ["HOST", "MAX_BODY_BYTES", "MAX_RUNS", "WhatIf", "make_server", "serve"]

HOST = "127.0.0.1"
"""The only address served: the page is for the planner at this machine."""
MAX_BODY_BYTES = 64 * 1024
MAX_RUNS = 1000
"""The most replications one request may ask for."""
PAGE = "whatif.html"
KEPT = 64
"""Settings whose replications are kept (the oldest dropped first): a setting asked again is answered at
once, another goal too, and more runs of it simulate only the replications it does not have yet."""


@dataclass
class WhatIf:
    """A scenario being explored: the file, its ``--set`` overrides (and the pinned burn-in), the seed,
    the goal, the run counts, and the turn-taking of run requests."""

    path: Path
    overrides: tuple[str, ...]
    seed: int
    goal: float | None
    runs: int
    drag_runs: int
    pool: Executor | None = None
    base: Scenario = field(init=False)
    source_text: str = field(init=False)
    _latest: dict[str, int] = field(default_factory=dict, init=False)
    _done: dict[tuple[str, ...], Replications] = field(default_factory=dict, init=False)
    _tickets: threading.Lock = field(default_factory=threading.Lock, init=False)
    _turn: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.source_text = read_text(self.path, field="scenario file", max_bytes=MAX_SCENARIO_BYTES)
        self.base = load_scenario(self.path, self.overrides)

    @classmethod
    def open(
        cls,
        path: Path,
        overrides: tuple[str, ...] = (),
        seed: int | None = None,
        goal: float | None = None,
        runs: int = 50,
        drag_runs: int = 5,
        pool: Executor | None = None,
        say: Callable[[str], None] | None = None,
    ) -> WhatIf:
        """The scenario at ``path`` with ``overrides``, its warm start chosen once (a pilot) and pinned."""
        first = load_scenario(path, overrides)
        chosen = resolve_seed(first, seed)
        if first.burns_in and first.burn_in_days is None:
            if say is not None:
                say(f"{first.name}: choosing the warm start's burn-in once, for every what-if")
            _, burn_in = warm_start(first, chosen)
            if burn_in is not None:
                overrides = (*overrides, f"burn_in_days={burn_in.days:g}")
                if say is not None:
                    say(f"warm start: {burn_in.days:g} days of burn-in ({burn_in.chosen_by})")
        return cls(path, tuple(overrides), chosen, goal, runs, drag_runs, pool)

    def describe(self) -> dict[str, Any]:
        """``GET /api/levers``."""
        sc = self.base
        return {
            "scenario": sc.name,
            "file": str(self.path),
            "description": sc.description,
            "currency": sc.currency,
            "start_date": sc.start_date.isoformat(),
            "horizon_days": sc.horizon_days,
            "seed": self.seed,
            "goal": self.goal,
            "runs": self.runs,
            "drag_runs": self.drag_runs,
            "overrides": list(self.overrides),
            "levers": [lever.to_json() for lever in levers_of(sc)],
        }

    def applied(self, values: Any) -> tuple[Scenario, list[str]]:
        """The scenario with the lever ``values`` applied, and the overrides that did it."""
        if not isinstance(values, dict):
            raise WhatIfError("levers", "expected an object of lever id to number")
        changes = changes_for(self.base, values)
        try:
            scenario = load_scenario(self.path, (*self.overrides, *(c.override for c in changes)))
        except ScenarioError as exc:  # a setting the scenario refuses: name the lever that made it
            where, message = exc.problems[0]
            lever = next((c.lever for c in changes if c.override.split("=")[0] == where), where or "levers")
            raise WhatIfError(lever, f"{where}: {message}" if where else message) from None
        return scenario, [c.override for c in changes]

    def run(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/run``: simulate the levers' scenario, unless a newer request comes first."""
        runs = body.get("runs", self.runs)
        if isinstance(runs, bool) or not isinstance(runs, int) or not 1 <= runs <= MAX_RUNS:
            raise WhatIfError("runs", f"must be a whole number from 1 to {MAX_RUNS}, got {runs!r}")
        goal = self._goal(body.get("goal", self.goal))
        scenario, changes = self.applied(body.get("levers", {}))
        newer = self._ticket(body.get("client", ""), body.get("seq"))
        key = tuple(changes)
        with self._tickets:
            done = self._done.get(key)
        started = time.perf_counter()
        if done is None or done.completed < runs:
            with self._turn:
                if newer():
                    raise Superseded
                with self._tickets:  # made by another request meanwhile?
                    done = self._done.get(key)
                reps = replicate(scenario, runs, self.seed, self.pool, stop=newer, done=done)
            self._keep(key, reps)
        else:  # a setting seen before (a slider moved back, Reset, another goal): no need to simulate
            reps = first(done, runs)
        doc = evaluate(reps, goal)
        doc["elapsed_seconds"] = round(time.perf_counter() - started, 3)
        doc["changes"] = changes
        doc["overrides"] = [*self.overrides, *changes]
        return doc

    def _keep(self, key: tuple[str, ...], reps: Replications) -> None:
        """Keep the replications of a setting (the most of them), dropping the oldest setting beyond :data:`KEPT`."""
        with self._tickets:
            known = self._done.pop(key, None)
            self._done[key] = reps if known is None or known.completed < reps.completed else known
            while len(self._done) > KEPT:
                self._done.pop(next(iter(self._done)))

    def _ticket(self, client: Any, seq: Any) -> Callable[[], bool]:
        """Whether a newer request of the same client has come, as a function to ask while running.

        A page numbers its requests (``client``, ``seq``): the order it sent them in decides, not the
        order they arrive in (a browser sends on several connections). A request without ``seq`` is
        numbered on arrival.
        """
        if not isinstance(client, str) or len(client) > 64:
            raise WhatIfError("client", "expected a short text naming the page")
        if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or seq < 0):
            raise WhatIfError("seq", f"expected a whole number >= 0, got {seq!r}")
        with self._tickets:
            latest = self._latest.get(client, -1)
            mine = latest + 1 if seq is None else seq
            self._latest[client] = max(latest, mine)
        return lambda: self._latest[client] != mine

    @staticmethod
    def _goal(value: Any) -> float | None:
        if value is None or value == "":
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = repr(value)
        if not isinstance(value, str):
            raise WhatIfError("goal", f"expected an amount such as 6M, got {value!r}")
        try:
            return parse_amount(value, "goal")
        except UnitError as exc:
            raise WhatIfError("goal", str(exc).removeprefix("goal: ")) from None

    def save(self, body: dict[str, Any]) -> tuple[str, str]:
        """``POST /api/save``: the file name and text of the scenario with the levers applied."""
        from funnelsim import __version__
        from funnelsim.report.scenario_file import whatif_toml

        scenario, changes = self.applied(body.get("levers", {}))
        header = [
            f"What-if of {self.path.name}, saved from funnelsim serve {__version__} on {dt.date.today()}.",
            "Run it as it was explored: funnelsim run THIS_FILE --runs N"
            + ("" if self.base.seed == self.seed else f" --seed {self.seed}"),
            "Keys the page changed say what they were."
            + (" burn_in_days is the warm start chosen for the scenario as served." if self._pinned() else ""),
        ]
        text = whatif_toml(scenario, self.source_text, self.overrides, tuple(changes), header)
        return f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', self.base.name)}-whatif.toml", text

    def _pinned(self) -> bool:
        return any(o.startswith("burn_in_days=") for o in self.overrides)


class _Handler(BaseHTTPRequestHandler):
    """One request: the page, or one call of the JSON API."""

    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the terminal shows the serving line, not every request."""

    def do_GET(self) -> None:
        if not self._local():
            return
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            page = resources.files("funnelsim.report").joinpath(PAGE).read_text(encoding="utf-8")
            self._send(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8")
        elif path == "/api/levers":
            self._json(HTTPStatus.OK, self.server.whatif.describe())
        elif path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no page {path}"})

    def do_POST(self) -> None:
        if not self._local():
            return
        path = self.path.split("?", 1)[0]
        if path not in ("/api/run", "/api/save"):
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no API {path}"})
            return
        try:
            body = self._body()
            if path == "/api/run":
                self._json(HTTPStatus.OK, self.server.whatif.run(body))
            else:
                name, text = self.server.whatif.save(body)
                extra = {"Content-Disposition": f'attachment; filename="{name}"'}
                self._send(HTTPStatus.OK, text.encode(), "application/toml; charset=utf-8", extra)
        except WhatIfError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc), "field": exc.field})
        except WorkloadTooLarge as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc), "field": "runs"})
        except Superseded:
            # Not an error (a browser logs every 4xx in its console): an answer nobody waits for any more.
            self._json(HTTPStatus.OK, {"superseded": True})
        except Exception as exc:  # a bug or the environment: say it to the page, keep serving
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(exc).__name__}: {exc}"})

    def _local(self) -> bool:
        """Refuse a request whose Host is not this server (a web page elsewhere rebinding a name to 127.0.0.1)."""
        port = self.server.server_address[1]
        if self.headers.get("Host", "") in (f"{HOST}:{port}", f"localhost:{port}"):
            return True
        self._json(HTTPStatus.FORBIDDEN, {"error": f"serving {HOST}:{port} only"})
        return False

    def _body(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise WhatIfError("body", "no valid Content-Length") from None
        if not 0 < length <= MAX_BODY_BYTES:
            raise WhatIfError("body", f"expected a JSON object of at most {MAX_BODY_BYTES:,} bytes")
        try:
            body = json.loads(self.rfile.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise WhatIfError("body", f"not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise WhatIfError("body", "expected a JSON object")
        return body

    def _json(self, status: HTTPStatus, doc: Any) -> None:
        self._send(status, json.dumps(doc, allow_nan=False).encode(), "application/json")

    def _send(self, status: HTTPStatus, data: bytes, kind: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        # The page may talk to this server only: no script, style or image from anywhere else.
        self.send_header(
            "Content-Security-Policy",
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
            "img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'",
        )
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a request still simulating does not hold up Ctrl-C
    whatif: WhatIf

    def __init__(self, port: int) -> None:
        super().__init__((HOST, port), _Handler)


def make_server(whatif: WhatIf, port: int = 0) -> ThreadingHTTPServer:
    """A server of ``whatif`` on 127.0.0.1:``port`` (0: any free port; read ``server_address``), not yet serving."""
    server = _listen(port)
    server.whatif = whatif
    return server


def _listen(port: int) -> _Server:
    try:
        return _Server(port)
    except OSError as exc:
        raise WhatIfError("--port", f"cannot listen on {HOST}:{port} ({exc.strerror or exc})") from None


@contextmanager
def _pool(jobs: int, warn: Callable[[str], None]) -> Iterator[Executor]:
    with executor(jobs, warn=warn) as pool:
        yield pool


def serve(
    path: Path,
    overrides: tuple[str, ...] = (),
    *,
    seed: int | None = None,
    goal: float | None = None,
    runs: int = 50,
    drag_runs: int = 5,
    jobs: int = 1,
    port: int = 8765,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> None:
    """Serve the what-if page of the scenario at ``path`` until Ctrl-C (or SIGTERM), then stop cleanly:
    the port closed and the worker processes ended.

    A scenario that does not validate and a port that is taken are refused before the warm start's pilot.
    """
    load_scenario(path, overrides)
    server = _listen(port)
    try:
        with _pool(jobs, warn=lambda message: say(f"warning: {message}")) as pool:
            server.whatif = WhatIf.open(path, overrides, seed, goal, runs, drag_runs, pool, say)
            say(f"serving {server.whatif.base.name} at http://{HOST}:{server.server_address[1]}/  (Ctrl-C stops)")
            server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:  # the way to stop a server: the pool's workers are ended on the way out
        say("stopped")
    finally:
        server.server_close()
