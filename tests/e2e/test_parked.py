"""A parked run on its page in a real Chromium: "paused (parked)", live and after a reload."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.settings import Settings
from support.live import LiveServer, live_server
from support.waiting import wait_until

from .test_branches import created_by_the_page

CONFIG = {"dataset": "digits", "method": "dni", "epochs": 200}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    """A server that parks a run paused for half a second."""
    settings = Settings(db=str(tmp_path / "parked.sqlite3"), max_concurrent_runs=2, park_after=0.5)
    with live_server(settings) as live:
        yield live


def test_a_parked_run_says_so_and_what_resume_does(page: Any, server: LiveServer) -> None:
    run_id = created_by_the_page(page, server, CONFIG)["id"]
    page.goto(f"{server.url}/runs/{run_id}")
    wait_until(lambda: httpx.get(f"{server.url}/api/runs/{run_id}").json()["step"] > 20, 60)
    page.get_by_role("button", name="Pause").click()
    status = page.locator("#status")
    wait_until(lambda: status.inner_text() == "paused (parked)", what="the parked status")
    resume = page.get_by_role("button", name="Resume")
    assert "Resume queues it" in (resume.get_attribute("title") or "")
    page.reload()
    wait_until(lambda: status.inner_text() == "paused (parked)", what="the status after a reload")
    resume.click()
    wait_until(lambda: status.inner_text() in ("queued", "running", "finished"), what="resumed")
    api = f"{server.url}/api/runs/{run_id}"
    wait_until(lambda: httpx.get(api).json()["status"] in ("running", "finished"), 60)
    assert httpx.get(api).json()["parked"] is False  # it trains again, from its state
