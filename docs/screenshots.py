"""Regenerate docs/img/report.png: the top of a baseline run's report.html, as the README shows it.

    python docs/screenshots.py            # runs `funnelsim run scenarios/baseline.toml` into a temp folder

Needs Chromium (`apt-get install chromium`) and playwright (`pip install -e '.[browser]'`); uses the
tests' browser launcher (tests/browser.py).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from browser import launch  # noqa: E402

WIDTH, HEIGHT = 1200, 1440  # the answer, the key numbers and the four figures


def main() -> None:
    out = ROOT / "docs" / "img" / "report.png"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "r"
        command = [sys.executable, "-m", "funnelsim", "run", str(ROOT / "scenarios" / "baseline.toml")]
        subprocess.run([*command, "--out", str(folder), "-q"], check=True, stdout=subprocess.DEVNULL)
        with launch() as browser:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT}, device_scale_factor=1)
            page.goto((folder / "report.html").as_uri())
            page.screenshot(path=str(out), full_page=False)
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
