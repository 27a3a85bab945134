"""Headless Debian Chromium driven by playwright, for the real-browser test of the what-if page
(`funnelsim serve`). The report piece has the same launcher in ``tests/browser.py``; the two are
one helper once merged.

Chromium is the system's (``/usr/bin/chromium``; ``apt-get install chromium``): playwright never
downloads a browser here. Without either, the test fails and says how to install it; no test is
skipped in silence.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """The Chromium to drive, or an AssertionError saying how to install what is missing."""
    found = str(CHROMIUM) if CHROMIUM.is_file() else shutil.which("chromium")
    assert found, "the browser tests need Debian's Chromium: apt-get install chromium"
    return found


@contextmanager
def browser() -> Iterator[Any]:
    """A headless Chromium (playwright ``Browser``), closed on exit."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        raise AssertionError("the browser tests need playwright: pip install 'funnelsim[browser]'") from exc
    path = chromium_path()
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=path, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()
