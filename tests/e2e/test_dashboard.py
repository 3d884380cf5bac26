"""The dashboard in a real Chromium: start, watch, pause, share, compare, escape, stay local."""

from __future__ import annotations

import time
from typing import Any

import httpx

from support.live import LiveServer
from support.waiting import wait_until

LONG = {"dataset": "addition", "bits": 8, "epochs": 3000}


def points(page: Any, chart: int = 0) -> int:
    return int(
        page.evaluate(f"window.synthgradCharts ? window.synthgradCharts[{chart}].pointCount() : 0")
    )


def settled(page: Any, quiet: float = 1.0, timeout: float = 15.0) -> int:
    """The chart's point count once it has not changed for `quiet` seconds."""
    seen = {"count": points(page), "since": time.monotonic()}

    def quiet_count() -> tuple[int] | None:  # a tuple: a settled count of 0 is an answer too
        now = points(page)
        if now != seen["count"]:
            seen.update(count=now, since=time.monotonic())
            return None
        return (now,) if time.monotonic() - seen["since"] >= quiet else None

    return wait_until(quiet_count, timeout, what="the chart to settle", every=0.1)[0]


def test_form_starts_a_run_whose_chart_grows_then_pause_and_resume(
    page: Any, server: LiveServer
) -> None:
    page.goto(server.url + "/")
    page.click("text=The article's task: DNI")
    assert page.input_value("select[name=method]") == "dni"
    page.fill("input[name=epochs]", "3000")
    page.click("#start-button")
    page.wait_for_url("**/runs/*")
    page.locator("#charts").scroll_into_view_if_needed()  # charts draw once on screen
    wait_until(lambda: points(page) > 0, what="loss points")
    first = points(page)
    wait_until(lambda: points(page) > first, what="more loss points")
    page.click("#pause-button")
    page.wait_for_selector("#status:text('paused')")
    # Records that arrived before the pause may still be drawing (redraws are budgeted):
    # once the count settles it must stay put.
    held = settled(page)
    time.sleep(1.5)
    assert points(page) == held  # paused: the count stops growing
    page.click("#resume-button")
    page.wait_for_selector("#status:text('running')")
    wait_until(lambda: points(page) > held, what="points after resume")
    assert page.is_visible("#chart-fidelity") and page.is_visible("#chart-module")
    page.click("#stop-button")
    page.get_by_role("dialog").get_by_role("button", name="Stop run").click()
    page.wait_for_selector("#status:text('stopped')")


def test_form_shows_server_validation_next_to_the_field(page: Any, server: LiveServer) -> None:
    page.goto(server.url + "/")
    page.fill("input[name=bits]", "40")
    page.click("#start-button")
    error = page.locator("[data-error-for=bits]")
    error.wait_for()
    wait_until(lambda: "32" in error.inner_text(), what="the bits error")
    assert page.evaluate("location.pathname") == "/"  # no run started, still the form
    assert "Bits" in page.get_by_role("alert").inner_text()  # listed next to Start too


def test_share_link_in_fresh_context_is_live_without_controls(
    chromium: Any, page: Any, server: LiveServer
) -> None:
    page.goto(server.url + "/")
    page.click("text=The article's task: cDNI")
    page.fill("input[name=epochs]", "3000")
    page.click("#start-button")
    page.wait_for_url("**/runs/*")
    page.wait_for_selector("#controls:not([hidden])")
    share_url = page.url
    viewer_context = chromium.new_context()
    viewer = viewer_context.new_page()
    viewer.goto(share_url)
    wait_until(lambda: points(viewer) > 0, what="viewer points")
    seen = points(viewer)
    wait_until(lambda: points(viewer) > seen, what="viewer live points")
    assert viewer.locator("#controls").is_hidden()
    run_id = share_url.rsplit("/", 1)[1]
    for action in ("pause", "stop"):
        assert viewer.request.post(f"{server.url}/api/runs/{run_id}/{action}").status == 403
    viewer_context.close()
    page.click("#stop-button")
    page.get_by_role("dialog").get_by_role("button", name="Stop run").click()
    page.wait_for_selector("#status:text('stopped')")


def test_compare_page_shows_one_trace_per_run_and_differing_fields(
    page: Any, server: LiveServer
) -> None:
    ids = []
    for method in ("backprop", "dni"):
        body = {
            "name": f"digits {method}",
            "config": {"dataset": "digits", "method": method, "epochs": 3},
        }
        ids.append(httpx.post(f"{server.url}/api/runs", json=body).json()["id"])
    page.goto(f"{server.url}/compare?runs={','.join(ids)}")
    wait_until(lambda: points(page) > 0, what="compare points")
    traces = {}
    for chart in page.locator("#charts .chart").all():  # charts draw once they are on screen
        chart.scroll_into_view_if_needed()
        wait_until(lambda c=chart: c.evaluate("(d) => Boolean(d.data)"), what="a drawn chart")
        traces[chart.get_attribute("id")] = chart.evaluate(
            "(d) => d.data.filter((t) => t.showlegend !== false && !t.name.startsWith('no value'))"
            ".map((t) => t.name)"
        )
    assert len(traces) == 5  # loss, accuracy, fidelity, weights, module loss
    runs = ["digits backprop", "digits dni"]
    for chart_id, names in traces.items():
        if chart_id == "chart-weights":  # every weight statistic, per run
            assert sorted(names) == [
                f"{r}: {s}" for r in runs for s in ("norm", "std", "update ratio")
            ]
        else:
            assert sorted(names) == runs
    diff = page.locator("#diff-table .diff-row").all_inner_texts()
    assert any(row.startswith("method") for row in diff)
    assert not any(row.startswith("dataset") for row in diff)


def test_run_name_is_shown_as_text(page: Any, server: LiveServer) -> None:
    name = "<img src=x onerror=alert(1)>"
    body = {"name": name, "config": {"dataset": "digits", "epochs": 1}}
    run_id = httpx.post(f"{server.url}/api/runs", json=body).json()["id"]
    page.goto(server.url + "/")
    page.wait_for_selector(f"tr[data-run-id='{run_id}']")
    assert page.locator(f"tr[data-run-id='{run_id}'] a").inner_text() == name
    page.goto(f"{server.url}/runs/{run_id}")
    assert page.locator("#run-name").inner_text() == name
    page.goto(f"{server.url}/compare?runs={run_id}")
    time.sleep(0.5)
    assert page.locator("img").count() == 0 and page.dialogs == []


def test_a_run_name_with_a_link_is_inert_text_in_chart_legends(
    page: Any, server: LiveServer
) -> None:
    # Plotly reads trace names as pseudo-HTML: unescaped, this became a clickable link.
    name = '<a href="https://evil.example/">click me</a>'
    ids = [
        httpx.post(f"{server.url}/api/runs", json={"name": n, "config": config}).json()["id"]
        for n, config in ((name, {"dataset": "digits", "epochs": 2}), ("plain", {"epochs": 1}))
    ]
    page.goto(f"{server.url}/compare?runs={','.join(ids)}")
    legend = page.locator("#chart-loss .legendtext")
    wait_until(lambda: legend.count() == 2, what="the legend")
    assert name in legend.all_text_contents()  # reads as written, tags and all
    assert page.locator("a[href^='https://evil.example']").count() == 0
