"""The one way the tests start a browser: Debian's headless Chromium driven by playwright.

``launch()`` is a context manager giving a playwright ``Browser``. Playwright's own browser
downloads are never used (``playwright install`` needs the network): the executable is
``/usr/bin/chromium`` (``apt-get install chromium``), or ``$FUNNELSIM_CHROMIUM``. When it or
the playwright package is missing, :class:`BrowserMissing` says how to install it: a browser
test fails with that message, it is never skipped.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL = (
    "the browser tests need Debian's Chromium and the playwright package: "
    "`apt-get install chromium` and `pip install -e '.[browser]'` (never `playwright install`)"
)


class BrowserMissing(RuntimeError):
    """Chromium or playwright is not installed; the message says how to install them."""


def chromium_path() -> str:
    """The Chromium executable: ``$FUNNELSIM_CHROMIUM`` if set (and then only it), else ``/usr/bin/chromium``,
    else ``chromium`` on PATH."""
    given = os.environ.get("FUNNELSIM_CHROMIUM")
    candidates = [given] if given else ["/usr/bin/chromium", shutil.which("chromium")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    where = f"FUNNELSIM_CHROMIUM={given}" if given else "/usr/bin/chromium or on PATH"
    raise BrowserMissing(f"no Chromium at {where}; {INSTALL}")


@contextmanager
def launch() -> Iterator[Any]:
    """A headless Chromium (playwright ``Browser``), closed on exit."""
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise BrowserMissing(f"the playwright package is not installed; {INSTALL}") from None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
