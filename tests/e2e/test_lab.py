"""The lab page in a real Chromium: the network diagram, the fidelity heatmap, honest axes,
explanations, and a toolbar that never offers to upload a run."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from support.live import LiveServer
from support.waiting import wait_until

ARTICLE_DNI = {"dataset": "addition", "method": "dni", "epochs": 3000}


def start(server: LiveServer, config: dict[str, Any], name: str = "lab") -> str:
    response = httpx.post(f"{server.url}/api/runs", json={"name": name, "config": config})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def cosines(page: Any) -> list[str]:
    return [
        page.locator(".hidden-layer .layer-box").nth(i).get_attribute("data-cos") or ""
        for i in range(page.locator(".hidden-layer").count())
    ]


def heatmap_steps(page: Any) -> list[float]:
    return list(
        page.evaluate(
            "() => { const d = document.getElementById('chart-heatmap');"
            " return d && d.data ? [d.data[0].x[0], d.data[0].x[d.data[0].x.length - 1]] : []; }"
        )
    )


def test_live_dni_run_shows_its_network_heatmap_and_no_cloud_button(
    page: Any, server: LiveServer
) -> None:
    run_id = start(server, ARTICLE_DNI)
    page.set_viewport_size({"width": 1366, "height": 1000})
    page.goto(f"{server.url}/runs/{run_id}")
    diagram = page.get_by_role("group", name=re.compile("Network diagram"))
    diagram.wait_for()  # shown with the run's first records
    assert diagram.is_visible()
    layers = diagram.get_by_role("button", name=re.compile(r"^hidden layer \d"))
    wait_until(lambda: layers.count() > 0, what="the diagram")
    assert layers.count() == 2  # the article's net: two hidden layers, each with a module
    assert diagram.locator(".module-box").count() == 2
    wait_until(lambda: all(cosines(page)), what="a cosine on every hidden layer")
    first = cosines(page)
    wait_until(lambda: cosines(page) != first, what="the cosines to change as the run trains")
    # Hover shows the live numbers; the text alternative holds the same numbers.
    layers.first.hover()
    tip = page.locator(".diagram-tip")
    assert re.search(r"cosine -?\d", tip.inner_text()) and "relative error" in tip.inner_text()
    assert page.locator(".diagram-table tbody tr").count() == 2
    # Clicking a layer selects it in the charts.
    layers.nth(1).click()
    assert page.locator("#layer").input_value() == "2"
    page.locator("#chart-fidelity").scroll_into_view_if_needed()
    title = "document.querySelector('#chart-fidelity .gtitle')?.textContent || ''"
    wait_until(lambda: "hidden layer 2" in page.evaluate(title), what="the charts on layer 2")
    page.evaluate("window.scrollTo(0, 0)")
    # The heatmap's step range grows while the run trains.
    wait_until(lambda: len(heatmap_steps(page)) == 2, what="the heatmap")
    before = heatmap_steps(page)[1]
    wait_until(lambda: heatmap_steps(page)[1] > before, what="the heatmap to grow")
    # No toolbar button anywhere mentions the cloud or Chart Studio; PNG download stays.
    page.locator("#chart-loss").hover()
    titles = page.evaluate(
        "() => Array.from(document.querySelectorAll('.modebar-btn'))"
        ".map((b) => b.getAttribute('data-title') || '')"
    )
    assert titles and any("png" in t.lower() for t in titles)
    assert not [t for t in titles if re.search("cloud|chart studio|share|edit", t, re.I)]
    httpx.post(f"{server.url}/api/runs/{run_id}/stop", headers=admin())


def admin() -> dict[str, str]:
    return {"Authorization": "Bearer e2e-admin-token-0123"}


def axis_range(page: Any, chart: str, axis: str = "yaxis") -> list[float]:
    return list(
        page.evaluate(f"() => document.getElementById('chart-{chart}')._fullLayout.{axis}.range")
    )


def test_axes_are_honest_on_run_and_compare_pages(page: Any, server: LiveServer) -> None:
    dni = start(server, ARTICLE_DNI, "dni")
    backprop = start(server, {**ARTICLE_DNI, "method": "backprop"}, "backprop")
    page.set_viewport_size({"width": 1366, "height": 3000})  # every chart on screen
    page.goto(f"{server.url}/runs/{dni}")
    # Past the first epoch (80 steps of the article's task), by the server's count: the
    # page streams at most 50 records a second, so its own count would take far longer.
    wait_until(
        lambda: httpx.get(f"{server.url}/api/runs/{dni}").json()["step"] > 240,
        what="three epochs of records",
        timeout=60,
    )
    page.reload()  # the snapshot: the whole run so far, step 1 included
    wait_until(
        lambda: page.evaluate("() => Boolean(document.getElementById('chart-loss').data)"),
        what="the loss chart",
    )
    wait_until(
        lambda: page.evaluate("() => Boolean(document.getElementById('chart-fidelity').data)"),
        what="the fidelity chart",
    )
    low, high = axis_range(page, "fidelity")
    assert -1.1 <= low <= -1 and 1 <= high <= 1.1
    records = httpx.get(f"{server.url}/api/runs/{dni}/metrics?fields=loss,epoch").json()["records"]
    after_first = max(r["loss"] for r in records if r["epoch"] > 1)
    # The page holds the streamed records only (at most 50 a second): the run's very
    # highest loss may not be among them, so the spike is the highest the chart holds.
    spike = page.evaluate(
        "() => Math.max(...document.getElementById('chart-loss').data[0].y.filter(Number.isFinite))"
    )
    assert spike > 3 * after_first  # the article's DNI run: a spike in its first steps
    assert axis_range(page, "loss")[1] <= 3 * after_first
    page.get_by_label("show early spikes").check()
    wait_until(lambda: axis_range(page, "loss")[1] >= spike, what="the full range")
    # Log y applies only to positive quantities: the cosine axis stays linear.
    page.get_by_label(re.compile("log y")).check()
    wait_until(
        lambda: (
            page.evaluate("() => document.getElementById('chart-loss')._fullLayout.yaxis.type")
            == "log"
        ),
        what="log loss axis",
    )
    assert (
        page.evaluate("() => document.getElementById('chart-fidelity')._fullLayout.yaxis.type")
        == "linear"
    )
    page.goto(f"{server.url}/compare?runs={dni},{backprop}")
    wait_until(
        lambda: page.evaluate("() => Boolean(document.getElementById('chart-fidelity').data)"),
        what="compare fidelity",
    )
    low, high = axis_range(page, "fidelity")
    assert -1.1 <= low <= -1 and 1 <= high <= 1.1
    for run_id in (dni, backprop):
        httpx.post(f"{server.url}/api/runs/{run_id}/stop", headers=admin())


def test_every_chart_explains_itself_and_the_runs_page_introduces_the_rules(
    page: Any, server: LiveServer
) -> None:
    run_id = start(server, {"dataset": "digits", "method": "cdni", "epochs": 2})
    page.goto(f"{server.url}/runs/{run_id}")
    helps = page.get_by_role("button", name=re.compile("^What is this"))
    # diagram, heatmap, timeline, loss, accuracy, fidelity, weights, module
    wait_until(lambda: helps.count() == 8, what="every chart's help")
    for i in range(helps.count()):
        button = helps.nth(i)
        button.scroll_into_view_if_needed()
        button.click()
        assert button.get_attribute("aria-expanded") == "true"
        text = page.locator(f"#{button.get_attribute('aria-controls')}").inner_text()
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s]
        assert 2 <= len(sentences) <= 5, text
    page.goto(server.url + "/")
    intro = page.get_by_role("region", name=re.compile("Learning without"))
    terms = intro.locator("dt").all_inner_texts()
    assert [t.split(" ")[0] for t in terms] == ["Backprop", "DNI", "cDNI", "Feedback"]
    links = json.dumps([a.get_attribute("href") for a in intro.get_by_role("link").all()])
    assert "1608.05343" in links and "1411.0247" in links


def timeline_state(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => {
          const d = document.getElementById('chart-timeline');
          if (!d || !d.data) return {lanes: [], end: 0, bars: 0};
          const work = d.data.filter((t) => !t.name.startsWith('recorded'));
          const lanes = [...new Set(work.flatMap((t) => t.y))].sort();
          const ends = work.flatMap((t) => t.x.map((x, i) => t.base[i] + x));
          return {lanes, end: Math.max(0, ...ends), bars: ends.length,
                  kinds: work.map((t) => t.name)};
        }"""
    )


def test_a_pipelined_run_shows_its_workers_on_a_live_timeline(
    page: Any, server: LiveServer
) -> None:
    config = {
        "dataset": "digits",
        "method": "dni",
        "hidden": [256, 256],
        "epochs": 400,
        "execution": "pipelined",
        "workers": 2,
    }
    run_id = start(server, config, name="pipelined")
    page.goto(f"{server.url}/runs/{run_id}")
    card = page.locator(".timeline-card")
    card.scroll_into_view_if_needed()
    wait_until(lambda: timeline_state(page)["bars"] > 10, what="timeline bars")
    first = timeline_state(page)
    assert first["lanes"] == ["worker 1", "worker 2"]  # one lane per stage
    assert {"forward", "synthetic gradient", "update"} <= set(first["kinds"])
    # The bars move as the run trains: later work appears on the right.
    wait_until(
        lambda: timeline_state(page)["end"] > first["end"] + 0.2, what="the timeline to move"
    )
    httpx.post(f"{server.url}/api/runs/{run_id}/stop", headers=admin())
