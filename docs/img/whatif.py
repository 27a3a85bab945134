"""Take the screenshot of the what-if page in the docs (docs/img/whatif.png): `funnelsim serve
scenarios/baseline.toml --goal 6M` with two AEs more and 20% more leads, in headless Chromium.

    PYTHONPATH=src:tests python docs/img/whatif.py
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from browser import launch as browser
from funnelsim.report.serve import WhatIf, make_server

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    os.chdir(ROOT)  # the page's command line names the scenario as given: scenarios/baseline.toml
    httpd = make_server(WhatIf.open(Path("scenarios/baseline.toml"), goal=6e6, runs=50, drag_runs=5), 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1360, "height": 720}, device_scale_factor=1)
        page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/")
        settle(page)
        page.locator("#lever-aes").focus()
        for _ in range(2):
            page.keyboard.press("ArrowRight")
        page.locator("#lever-leads").focus()
        for _ in range(4):
            page.keyboard.press("ArrowRight")
        settle(page)
        page.mouse.click(1300, 700)  # on the background: no focus ring on the last slider
        page.screenshot(path=str(ROOT / "docs" / "img" / "whatif.png"), full_page=True)
    httpd.shutdown()


def settle(page: object, timeout: float = 300) -> None:
    """Wait until the page shows the answer of its last request (50 runs)."""
    deadline = time.monotonic() + timeout
    time.sleep(0.5)
    while "busy" in (page.get_attribute("#status", "class") or "") or "of 50 runs" not in page.inner_text("#pgoal-ci"):  # type: ignore[attr-defined]
        assert time.monotonic() < deadline
        time.sleep(0.2)


if __name__ == "__main__":
    main()
