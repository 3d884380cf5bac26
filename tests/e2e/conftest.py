"""Browser tests: Debian's Chromium driven by Playwright against a real uvicorn on a free port.

They skip only where no Chromium exists and SYNTHGRAD_REQUIRE_BROWSER is unset; CI sets it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.settings import Settings
from support.browser import ARGS, CHROMIUM
from support.live import LiveServer, live_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("SYNTHGRAD_REQUIRE_BROWSER"):
            pytest.fail(f"Chromium is required here but {CHROMIUM} does not exist")
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    settings = Settings(
        db=str(tmp_path / "e2e.sqlite3"), max_concurrent_runs=4, admin_token="e2e-admin-token-0123"
    )
    with live_server(settings) as live:
        yield live
