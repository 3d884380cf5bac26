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


@pytest.fixture
def page(chromium: Any, server: LiveServer) -> Any:
    context = chromium.new_context()
    page = context.new_page()
    foreign: list[str] = []
    page.on(
        "request",
        lambda request: (
            foreign.append(request.url)
            if not request.url.startswith((server.url, "data:", "blob:"))
            else None
        ),
    )
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    # The pages run under a strict Content-Security-Policy: anything it blocks is a bug.
    blocked: list[str] = []
    page.on(
        "console",
        lambda message: (
            blocked.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    # An uncaught error in a page's script is a bug, even where the test's checks pass.
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.foreign_requests = foreign
    page.dialogs = dialogs
    yield page
    assert foreign == [], f"the page requested other hosts: {foreign}"
    assert blocked == [], f"the Content-Security-Policy blocked: {blocked}"
    assert errors == [], f"a page's script failed: {errors}"
    context.close()
