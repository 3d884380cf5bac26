"""The paper's MNIST preset in a real Chromium: offered with MNIST in the data folder, it starts
backprop, DNI and cDNI and opens them side by side."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.settings import Settings
from support.live import LiveServer, live_server
from tests.test_bench_paper import fake_mnist


@pytest.fixture
def mnist_server(tmp_path: Path) -> Iterator[LiveServer]:
    (tmp_path / "data" / "mnist").mkdir(parents=True)
    fake_mnist(tmp_path / "data" / "mnist", train=64, test=16)
    settings = Settings(
        db=str(tmp_path / "e2e.sqlite3"),
        max_concurrent_runs=3,
        admin_token="e2e-admin-token-0123",
        data_root=str(tmp_path / "data"),
    )
    with live_server(settings) as live:
        yield live


def test_the_paper_preset_starts_its_three_runs_side_by_side(
    chromium: Any, mnist_server: LiveServer
) -> None:
    context = chromium.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(mnist_server.url + "/")
    assert page.locator('#new-run select[name="dataset"] option[value="mnist"]').count() == 1
    page.click('[data-preset="paper-mnist"]')
    assert page.locator("#start-button").inner_text() == "Start 3 runs"
    assert page.locator('select[name="dataset"]').input_value() == "mnist"
    page.click("#start-button")
    page.wait_for_url("**/compare?runs=*", timeout=60_000)  # Playwright's own wait
    ids = page.url.split("runs=")[1].split(",")
    runs = [httpx.get(f"{mnist_server.url}/api/runs/{run_id}").json() for run_id in ids]
    assert [run["config"]["method"] for run in runs] == ["backprop", "dni", "cdni"]
    for run in runs:
        config = run["config"]
        assert config["dataset"] == "mnist" and config["data_path"] == "mnist"
        assert config["hidden"] == [256, 256] and config["sg_hidden"] == [1024, 1024]
        assert run["name"].startswith("The paper's MNIST net")
    assert errors == []
    context.close()
