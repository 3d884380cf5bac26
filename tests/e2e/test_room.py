"""A room's experience of the pages: a diverged run's share link, phones, "Show large", the
presenter's keys, presets that say what will happen, sweeps, /results, a branch's history."""

from __future__ import annotations

import time
from typing import Any

import httpx

from support.live import LiveServer, strict_json

from .conftest import wait_for

#: DNI on the article's task with a learning rate of 100: its numbers overflow within a few
#: steps; the final evaluation's loss is NaN (checked: it diverges at about step 11).
DIVERGES = {"dataset": "addition", "method": "dni", "activation": "relu", "learning_rate": 100}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def start(server: LiveServer, config: dict[str, Any], name: str = "run") -> dict[str, Any]:
    response = httpx.post(f"{server.url}/api/runs", json={"name": name, "config": config})
    assert response.status_code == 201, response.text
    return dict(response.json())


def ended(server: LiveServer, run: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = httpx.get(f"{server.url}/api/runs/{run['id']}").json()
        if body["status"] not in ("queued", "running", "paused"):
            return dict(body)
        time.sleep(0.2)
    raise AssertionError(f"run {run['id']} did not end")


DRAWN = """(id) => { const d = document.getElementById(id);
    return !!(d && d.data && d.data.some((t) => (t.y || []).some((v) => v !== null))); }"""
MARKERS = "(id) => (document.getElementById(id).layout.annotations || []).map((a) => a.text)"


def drawn(page: Any, chart: str = "loss") -> bool:
    return bool(page.evaluate(DRAWN, f"chart-{chart}"))


def y_range(page: Any, chart: str = "loss") -> list[float]:
    return list(page.evaluate(f"document.getElementById('chart-{chart}')._fullLayout.yaxis.range"))


def marker_texts(page: Any, chart: str = "loss") -> list[str]:
    return list(page.evaluate(MARKERS, f"chart-{chart}"))


def diverged_run(server: LiveServer) -> dict[str, Any]:
    run = ended(server, start(server, DIVERGES, "learning rate 100"))
    assert run["status"] == "diverged"
    return run


def test_a_diverged_runs_share_link_loads_with_its_finite_history_and_the_divergence_marked(
    page: Any, chromium: Any, server: LiveServer
) -> None:
    run = diverged_run(server)
    step = run["summary"]["diverged_at"]
    page.goto(f"{server.url}/runs/{run['id']}")
    wait_for(lambda: drawn(page), what="the loss chart")
    assert page.locator("#loading").is_hidden()
    assert f"diverged at step {step}" in page.locator("#banner").inner_text()
    wait_for(lambda: f"diverged at step {step}" in marker_texts(page), what="the divergence line")
    # The axis shows what it learned before the blow-up, not the 1e60 it overflowed to.
    first = httpx.get(f"{server.url}/api/runs/{run['id']}/metrics").json()["records"][0]["loss"]
    assert y_range(page)[1] < 1000 * first
    assert "blew up" in page.locator("#chart-loss").locator("xpath=..").inner_text()
    # The share link in a fresh browser (no owner cookie): the same page, no script error.
    context = chromium.new_context()
    errors: list[str] = []
    fresh = context.new_page()
    fresh.on("pageerror", lambda error: errors.append(str(error)))
    fresh.goto(f"{server.url}/runs/{run['id']}")
    wait_for(lambda: drawn(fresh), what="the share link's charts")
    assert fresh.locator("#banner").is_visible() and errors == []
    context.close()
    # Its downloads are standard JSON and CSV.
    for link in ("#json-link", "#csv-link"):
        text = httpx.get(server.url + str(page.locator(link).get_attribute("href"))).text
        assert "NaN" not in text and "Infinity" not in text
    strict_json(httpx.get(f"{server.url}/api/runs/{run['id']}/metrics").text)


def test_compare_with_a_diverged_run_draws_both(page: Any, server: LiveServer) -> None:
    bad = diverged_run(server)
    good = ended(server, start(server, {"dataset": "addition", "epochs": 1}, "backprop"))
    page.goto(f"{server.url}/compare?runs={bad['id']},{good['id']}")
    wait_for(lambda: drawn(page), what="the compare charts")
    wait_for(
        lambda: page.evaluate("document.getElementById('chart-loss').data.length") >= 2,
        what="a trace per run",
    )
    assert any("diverged at step" in text for text in marker_texts(page))
    page.locator("#timelines").scroll_into_view_if_needed()  # charts draw once on screen
    wait_for(lambda: page.locator("#timelines .main-svg").count() >= 2, what="both timelines")
