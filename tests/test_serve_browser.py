"""The what-if page of `funnelsim serve` in a real browser (headless Debian Chromium): it loads with
no console error, moving the AE slider updates P(goal), and the save button downloads a scenario
file that loads as the scenario on the page; a goal it cannot read is named on the page."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from browser import launch as browser
from funnelsim.model.loading import load_scenario
from funnelsim.report.serve import WhatIf, make_server
from scaled import TENTH_VOLUME

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.toml"
# A third of a year at a tenth of the volume with the burn-in fixed: each update takes a fraction of a second.
SMALL = ("horizon_days=120", "burn_in_days=60", *TENTH_VOLUME)


@pytest.fixture
def url() -> Iterator[str]:
    # No --goal: the page starts from the scenario's median revenue, rounded (so P(goal) is near 50%).
    httpd = make_server(WhatIf.open(BASELINE, SMALL, runs=16, drag_runs=2), 0)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def _settled(page: Any) -> bool:
    """No run in flight (the status line is not busy)."""
    return "busy" not in (page.get_attribute("#status", "class") or "")


def _wait(page: Any, done: Callable[[], bool], timeout: float = 30) -> None:
    """Poll from Python: the page's CSP (no eval) rules out playwright's wait_for_function with an expression."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"the page did not update: {page.inner_text('body')[:400]}"
        page.wait_for_timeout(50)


def test_moving_the_ae_slider_updates_p_goal_and_save_downloads_the_scenario(url: str, tmp_path: Path) -> None:
    problems: list[str] = []
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1280, "height": 860}, accept_downloads=True)
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
        page.goto(url)
        # The first answer (8 runs), then all 16 with the goal the page chose from it: P(goal) out of 16 runs.
        _wait(page, lambda: "of 16 runs" in page.inner_text("#pgoal-ci") and _settled(page))
        assert page.input_value("#goal").endswith(("k", "M"))
        before = page.inner_text("#pgoal")
        assert before.endswith("%")
        assert page.locator("#fan path").count() >= 3 and page.locator("#funnel rect").count() == 5

        slider = page.locator("#lever-aes")
        slider.focus()
        for _ in range(8):  # 10 AEs down to 2: far fewer deals worked
            page.keyboard.press("ArrowLeft")
        assert page.inner_text("#out-aes") == "2" and "was 10" in page.inner_text("#box-aes")
        _wait(page, lambda: page.inner_text("#pgoal") != before and "of 16 runs" in page.inner_text("#pgoal-ci")
              and _settled(page))  # fmt: skip
        after = page.inner_text("#pgoal")
        assert int(after.rstrip("%")) < int(before.rstrip("%"))
        page.screenshot(path=str(tmp_path / "whatif.png"))

        with page.expect_download() as download:
            page.click("#save")
        assert download.value.suggested_filename == "baseline-whatif.toml"
        saved = tmp_path / "baseline-whatif.toml"
        download.value.save_as(saved)
        assert problems == []

        # A goal the server cannot read: the page says so, naming the field, and keeps the last answer.
        page.fill("#goal", "lots")
        page.press("#goal", "Enter")
        _wait(page, lambda: "goal:" in page.inner_text("#error"))
        assert page.inner_text("#pgoal") == after and page.inner_text("#status") == "not updated"
        assert [p for p in problems if "status of 400" not in p] == [] and len(problems) == 1
    text = saved.read_text()
    assert "count = 2 # what-if (was 10)" in text
    assert load_scenario(saved).to_dict() == load_scenario(BASELINE, [*SMALL, "sales.ae.count=2"]).to_dict()
