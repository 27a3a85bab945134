"""report.html in a real browser: headless Chromium (Debian's) opens a run's and a comparison's page
from file:// and finds no console error, no page error, no request off the machine, and every figure
drawn (a box with an area; a PNG decoded to a non-zero natural width).

The run's figures are PNG (data URIs), the comparison's SVG (inline), so both embeddings are loaded.
Without Chromium or playwright the test fails and says how to install them (tests/browser.py).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from funnelsim.cli import app

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from browser import BrowserMissing, launch  # noqa: E402
from scaled import TENTH  # noqa: E402

SMALL = [f"--set={o}" for o in ("horizon_days=90", *TENTH)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        with launch() as b:
            yield b
    except BrowserMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("browser")
    scenarios = [str(ROOT / "scenarios" / f"{name}.toml") for name in ("misaligned", "aligned")]
    commands = {
        "run": ["run", str(ROOT / "scenarios" / "baseline.toml"), *SMALL, "--seed", "3"],
        "compare": ["compare", *scenarios, *SMALL, "--runs", "3", "--seed", "3", "--format", "svg"],
    }
    for name, args in commands.items():
        result = CliRunner().invoke(app, [*args, "--out", str(tmp / name), "-q"])
        assert result.exit_code == 0, result.output
    return {name: tmp / name for name in commands}


@pytest.mark.parametrize("name", ["run", "compare"])
def test_report_loads_cleanly_and_every_figure_is_visible(browser: Any, reports: dict[str, Path], name: str) -> None:
    """No console error or page error; nothing requested but the file itself and its data URIs; each figure
    of figures/ is on screen with an area, and each <img> has decoded (naturalWidth > 0)."""
    folder = reports[name]
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    try:
        page.goto((folder / "report.html").as_uri(), wait_until="load")
        figures = page.locator("figure img, figure > svg")
        files = sorted((folder / "figures").iterdir())
        assert figures.count() == len(files) > 0
        for i in range(figures.count()):
            figure = figures.nth(i)
            figure.scroll_into_view_if_needed()
            box = figure.bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 50, (files[i].name, box)
            assert figure.is_visible()
            if figure.evaluate("e => e.tagName.toLowerCase()") == "img":
                assert figure.evaluate("e => e.complete && e.naturalWidth > 0"), files[i].name
        assert page.locator(".answer").inner_text().strip()
    finally:
        page.close()
    assert problems == []
    off_machine = [u for u in requested if not u.startswith(("file://", "data:"))]
    assert off_machine == []
