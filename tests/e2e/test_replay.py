"""A lecture's replay and presenter: a finished run plays back from step 0 and scrubs; a
viewer's page follows the owner's presented view, lets go and comes back."""

from __future__ import annotations

import time
from typing import Any

import httpx

from support.live import LiveServer
from support.waiting import wait_until

SMALL = {"dataset": "digits", "method": "dni", "epochs": 3, "hidden": [32, 16]}

#: The newest step the loss chart holds, and how many points (drawn, or waiting for the chart
#: to come on screen: the page draws only what is visible).
LOSS_EXTENT = """(() => {
  const chart = (window.synthgradCharts || []).find((c) => c.spec.id === "loss");
  if (!chart) return [0, 0];
  const t = chart.traces[0];
  const steps = [...t.step, ...t.pending.map((r) => r.step)];
  return [steps.length ? Math.max(...steps) : 0, steps.length];
})()"""


#: What the timeline says in place of bars (empty when it draws them), and its bars.
TIMELINE_NOTE = """(() => (document.getElementById('chart-timeline').layout?.annotations || [])
  .map((a) => a.text).join(' '))()"""
TIMELINE_BARS = """(() => (document.getElementById('chart-timeline').data || [])
  .slice(1).reduce((n, t) => n + t.x.length, 0))()"""


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical findings on the page as it is."""
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


def finished_run(server: LiveServer) -> dict[str, Any]:
    run = httpx.post(f"{server.url}/api/runs", json={"config": SMALL}).json()
    wait_until(
        lambda: httpx.get(f"{server.url}/api/runs/{run['id']}").json()["status"] == "finished",
        60,
        what="the run to finish",
    )
    return {**httpx.get(f"{server.url}/api/runs/{run['id']}").json(), "token": run["owner_token"]}


def test_a_finished_run_replays_from_step_zero_and_the_slider_scrubs(
    page: Any, server: LiveServer
) -> None:
    run = finished_run(server)
    last = run["step"]
    page.goto(f"{server.url}/runs/{run['id']}?replay=1&speed=60s")
    page.locator("#replay").wait_for()
    wait_until(lambda: page.evaluate(LOSS_EXTENT)[1] > 0, what="the first replayed points")
    early_step, early_points = page.evaluate(LOSS_EXTENT)
    assert 0 < early_step < last / 2  # it starts again near step 0, not at the end
    wait_until(lambda: page.evaluate(LOSS_EXTENT)[1] > early_points, what="points to grow")
    assert page.locator("#replay-play").inner_text() == "Pause"
    # Scrub: pause at a third of the run; the charts hold exactly the steps up to it.
    third = last // 3
    page.evaluate(
        """(step) => { const s = document.getElementById('replay-slider');
        s.value = String(step); s.dispatchEvent(new Event('input', {bubbles: true})); }""",
        third,
    )
    wait_until(lambda: page.locator("#replay-play").inner_text() == "Play", what="paused by scrub")
    wait_until(
        lambda: third * 0.8 < page.evaluate(LOSS_EXTENT)[0] <= third,
        what="the charts to hold the steps up to the slider",
    )
    page.wait_for_timeout(500)  # paused: nothing more arrives
    assert third * 0.8 < page.evaluate(LOSS_EXTENT)[0] <= third
    assert f"step {third:,}" in page.locator("#replay-step").inner_text()
    # The history keeps only the last steps' timelines: at a third, the timeline says so.
    page.locator("#chart-timeline").scroll_into_view_if_needed()
    wait_until(
        lambda: "steps' timelines" in page.evaluate(TIMELINE_NOTE), what="the empty timeline"
    )
    # Then forward to the end: every point is back.
    page.evaluate(
        """(step) => { const s = document.getElementById('replay-slider');
        s.value = String(step); s.dispatchEvent(new Event('input', {bubbles: true})); }""",
        last,
    )
    wait_until(lambda: page.evaluate(LOSS_EXTENT)[0] == last, what="the whole run after scrubbing")
    page.locator("#chart-timeline").scroll_into_view_if_needed()
    wait_until(lambda: page.evaluate(TIMELINE_NOTE) == "", what="the last steps' timelines")
    assert page.evaluate(TIMELINE_BARS) > 0
    assert "replay=1" in page.evaluate("location.href")
    assert serious_violations(page) == []
    # A finished run's page without ?replay offers it.
    page.goto(f"{server.url}/runs/{run['id']}")
    page.get_by_role("button", name="Replay this run").click()
    page.locator("#replay").wait_for()


def test_a_viewer_follows_the_presenters_layer_and_show_large_and_lets_go(
    chromium: Any, server: LiveServer
) -> None:
    run = finished_run(server)
    owner_context = chromium.new_context()
    cookie = {"name": "synthgrad_owner", "value": run["token"], "url": server.url}
    owner_context.add_cookies([cookie])  # the browser that created the run
    link = f"{server.url}/runs/{run['id']}?present=1"
    presenter = owner_context.new_page()
    presenter.goto(link)
    presenter.wait_for_selector("#controls:not([hidden])")  # it knows it is the owner
    viewer_context = chromium.new_context()
    viewer = viewer_context.new_page()
    errors: list[str] = []
    viewer.on("pageerror", lambda error: errors.append(str(error)))
    viewer.goto(link)
    viewer.locator("#charts").wait_for()
    follow = viewer.locator("#follow-box")
    layer = "document.getElementById('layer').value"
    large = "document.querySelector('.chart-card.expanded #chart-fidelity') !== null"

    # In presentation mode the layer is chosen on the network diagram.
    presenter.get_by_role("button", name="hidden layer 2").click()
    presenter.locator("#chart-fidelity").scroll_into_view_if_needed()
    presenter.locator("#chart-fidelity").locator("xpath=..").get_by_role(
        "button", name="Show large"
    ).click()
    started = time.monotonic()
    wait_until(
        lambda: viewer.evaluate(layer) == "2" and viewer.evaluate(large),
        timeout=10,
        what="the viewer to mirror the presenter's layer and Show large",
    )
    print(f"viewer mirrored the presenter after {time.monotonic() - started:.2f} s")
    assert follow.is_checked() and viewer.locator("#follow-presenter").is_visible()
    assert serious_violations(viewer) == []
    # Let go: the presenter moves on, the viewer stays where it is.
    follow.uncheck()
    # (under the chart shown large, the diagram still takes a click from the keyboard)
    presenter.get_by_role("button", name="hidden layer 1").dispatch_event("click")
    presenter.wait_for_timeout(1500)
    assert viewer.evaluate(layer) == "2"
    # Come back: the viewer catches up at once.
    follow.check()
    wait_until(lambda: viewer.evaluate(layer) == "1", timeout=10, what="following again")
    # A viewer never steers: its own change goes nowhere.
    follow.uncheck()
    viewer.get_by_role("button", name="hidden layer 2").dispatch_event("click")
    presenter.wait_for_timeout(1000)
    assert presenter.evaluate(layer) == "1"
    assert errors == []
    viewer_context.close()
    owner_context.close()
