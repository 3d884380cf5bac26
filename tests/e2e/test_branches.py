"""Forking from the run page in a real Chromium: the dialog, the branch's page with its
parent's history and the fork marker, and knob changes drawn as markers."""

from __future__ import annotations

import time
from typing import Any

import httpx

from support.live import LiveServer
from support.waiting import wait_until
from tests.app.test_checkpoints import DIVERGING

CONFIG = {"dataset": "digits", "method": "dni", "epochs": 200}


def created_by_the_page(page: Any, server: LiveServer, config: dict[str, Any]) -> Any:
    """A run the browser creates, so that it holds the owner cookie."""
    page.goto(server.url + "/")
    return page.evaluate(
        "async (config) => (await (await fetch('/api/runs', {method: 'POST',"
        " headers: {'Content-Type': 'application/json'}, body: JSON.stringify({config})})).json())",
        config,
    )


def loss_markers(page: Any) -> list[str]:
    """The texts of the loss chart's markers (its layout's annotations)."""
    return list(
        page.evaluate(
            "() => { const d = document.getElementById('chart-loss');"
            " return d && d.layout ? (d.layout.annotations || []).map((a) => a.text) : []; }"
        )
    )


def test_forking_a_paused_run_from_its_page(page: Any, server: LiveServer) -> None:
    page.set_viewport_size({"width": 1366, "height": 1000})
    run_id = created_by_the_page(page, server, CONFIG)["id"]
    page.goto(f"{server.url}/runs/{run_id}")
    wait_until(lambda: httpx.get(f"{server.url}/api/runs/{run_id}").json()["step"] > 200, 60)
    fork = page.get_by_role("button", name="Fork from here")
    assert fork.is_disabled()  # only a paused run forks
    page.get_by_role("button", name="Pause").click()
    wait_until(lambda: fork.is_enabled(), what="the fork button")
    step = httpx.get(f"{server.url}/api/runs/{run_id}").json()["step"]
    fork.click()
    dialog = page.get_by_role("dialog", name=f"Fork from step {step}")
    dialog.wait_for()
    # A change that cannot be: shown under its field, nothing created.
    dialog.get_by_label("Learning rate", exact=True).fill("-1")
    dialog.get_by_role("button", name=f"Fork from step {step}").click()
    error = dialog.locator('[data-error-for="learning_rate"]')
    wait_until(lambda: error.inner_text() != "", what="the field's error")
    assert len(httpx.get(f"{server.url}/api/runs").json()) == 1
    dialog.get_by_label("Learning rate", exact=True).fill("0.1")
    dialog.get_by_label("Learning rule").select_option("backprop")
    dialog.get_by_label("Name of the branch").fill("what would backprop do?")
    dialog.get_by_role("button", name=f"Fork from step {step}").click()
    page.wait_for_url(lambda url: f"/runs/{run_id}" not in url, timeout=20_000)
    branch_id = page.url.rsplit("/", 1)[-1]
    branch = httpx.get(f"{server.url}/api/runs/{branch_id}").json()
    assert branch["fork_of"] == {"run": run_id, "step": step}
    assert branch["config"]["method"] == "backprop" and branch["name"] == "what would backprop do?"
    assert page.get_by_text("Fork of").is_visible()
    assert page.get_by_role("link", name="Compare with parent").get_attribute("href") == (
        f"/compare?runs={run_id},{branch_id}"
    )
    wait_until(lambda: f"fork at step {step}" in loss_markers(page), 30, "the fork marker")
    # The parent's history before the fork, dimmed, under the branch's own.
    traces = page.evaluate(
        "() => document.getElementById('chart-loss').data.map((t) => [t.opacity, t.x.length ?"
        " Math.max(...t.x) : 0])"
    )
    dimmed = [end for opacity, end in traces if opacity < 1]
    assert dimmed and max(dimmed) <= step
    # The parent's page links to its branch.
    page.goto(f"{server.url}/runs/{run_id}")
    assert page.get_by_role("link", name="what would backprop do?").is_visible()


def test_a_knob_turned_on_the_page_is_a_marker_on_the_charts(page: Any, server: LiveServer) -> None:
    page.set_viewport_size({"width": 1366, "height": 1000})
    made = created_by_the_page(page, server, {**CONFIG, "epochs": 400})
    page.goto(f"{server.url}/runs/{made['id']}")
    wait_until(lambda: httpx.get(f"{server.url}/api/runs/{made['id']}").json()["step"] > 50, 60)
    knobs = page.locator("#knobs")
    wait_until(lambda: knobs.is_visible(), what="the knobs (owner, live run)")
    knobs.locator("summary").click()
    knobs.get_by_label("Synthetic-gradient scale").fill("0.5")
    knobs.get_by_role("button", name="Apply at the next step").click()
    wait_until(lambda: "Applied" in page.locator("#knobs-status").inner_text(), what="applied")
    assert httpx.get(f"{server.url}/api/runs/{made['id']}").json()["config"]["sg_scale"] == 0.5
    page.locator("#chart-loss").scroll_into_view_if_needed()  # charts draw only on screen
    wait_until(lambda: "sg_scale 1 → 0.5" in loss_markers(page), 30, "the knob's marker")
    # A viewer (no owner cookie) sees no knobs.
    other = page.context.browser.new_page()
    other.goto(f"{server.url}/runs/{made['id']}")
    time.sleep(1)
    assert not other.locator("#knobs").is_visible()
    other.close()
    page.evaluate(f"fetch('/api/runs/{made['id']}/stop', {{method: 'POST'}})")


def test_a_diverged_run_says_why_and_forks_from_a_chosen_step_with_lower_rates(
    page: Any, server: LiveServer
) -> None:
    page.set_viewport_size({"width": 1366, "height": 1000})
    run_id = created_by_the_page(page, server, DIVERGING)["id"]
    url = f"{server.url}/api/runs/{run_id}"
    wait_until(lambda: httpx.get(url).json()["status"] == "diverged", 60, "the divergence")
    diverged_at = httpx.get(url).json()["summary"]["diverged_at"]
    page.goto(f"{server.url}/runs/{run_id}")
    banner = page.locator("#banner")
    wait_until(lambda: "ran away" in banner.inner_text(), what="the explanation")
    assert f"At step {diverged_at}" in banner.inner_text() and "Try " in banner.inner_text()
    # A click on a point of a chart opens the dialog at that step (Plotly's click event).
    page.locator("#chart-loss").hover()
    page.evaluate(
        "() => document.getElementById('chart-loss').emit('plotly_click', {points: [{x: 120}]})"
    )
    page.get_by_role("dialog", name="Fork from step 120").wait_for()
    page.locator("#fork-dialog").get_by_role("button", name="Cancel").click()
    rescue = "Fork from the last good step with a lower learning rate"
    page.get_by_role("button", name=rescue).click()
    page.get_by_role("dialog", name=f"Fork from step {diverged_at - 1}").wait_for()
    dialog = page.locator("#fork-dialog")  # its name follows the step field
    assert dialog.get_by_label("Learning rate", exact=True).input_value() == "0.05"
    assert dialog.get_by_label("Step", exact=True).input_value() == str(diverged_at - 1)
    # A step beyond the run: refused under the field, nothing created.
    dialog.get_by_label("Step", exact=True).fill(str(diverged_at + 5))
    dialog.get_by_role("button", name=f"Fork from step {diverged_at + 5}").click()
    error = dialog.locator('[data-error-for="step"]')
    wait_until(lambda: "must be between 0 and" in error.inner_text(), what="the step's error")
    assert len(httpx.get(f"{server.url}/api/runs").json()) == 1
    dialog.get_by_label("Step", exact=True).fill("150")
    dialog.get_by_role("button", name="Fork from step 150").click()
    page.wait_for_url(lambda u: f"/runs/{run_id}" not in u, timeout=20_000)
    branch = httpx.get(f"{server.url}/api/runs/{page.url.rsplit('/', 1)[-1]}").json()
    assert branch["fork_of"] == {"run": run_id, "step": 150}
    assert branch["config"]["learning_rate"] == 0.05
    assert branch["config"]["sg_learning_rate"] == 0.04  # a module's loss ran away
