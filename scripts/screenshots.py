"""Take the README's screenshots: runs page, a live DNI run on addition, four rules on digits.

Usage: python scripts/screenshots.py  (needs Debian's chromium and the playwright package)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.settings import Settings  # noqa: E402
from support.browser import ARGS, CHROMIUM  # noqa: E402
from support.live import live_server  # noqa: E402


def main() -> None:
    out = ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        live_server(Settings(db=f"{tmp}/shots.sqlite3", max_concurrent_runs=4)) as server,
        sync_playwright() as playwright,
    ):

        def create(name: str, config: dict) -> str:
            body = {"name": name, "config": config}
            return str(httpx.post(f"{server.url}/api/runs", json=body).json()["id"])

        digits = [
            create(f"Digits: {m}", {"dataset": "digits", "method": m, "epochs": 50})
            for m in ("backprop", "dni", "cdni", "feedback_alignment")
        ]
        time.sleep(4)
        dni = create(
            "The article's task: DNI", {"dataset": "addition", "method": "dni", "epochs": 3000}
        )
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server.url + "/")
        page.wait_for_selector("#runs-table tbody tr")
        page.screenshot(path=str(out / "runs.png"), full_page=False)
        page.goto(f"{server.url}/runs/{dni}")
        time.sleep(4)
        page.screenshot(path=str(out / "run-dni-addition.png"), full_page=True)
        page.goto(f"{server.url}/compare?runs={','.join(digits)}")
        time.sleep(3)
        page.screenshot(path=str(out / "compare-digits.png"), full_page=True)
        browser.close()
        httpx.post(f"{server.url}/api/runs/{dni}/stop")
    print(f"wrote screenshots to {out}")


if __name__ == "__main__":
    main()
