"""Sweeps in a real Chromium: the form's sweep mode, the live page's groups and bands, controls."""

from __future__ import annotations

from typing import Any

import httpx

from support.live import LiveServer
from support.waiting import wait_until


def chart_groups(page: Any, chart: str = "accuracy") -> list[dict[str, Any]]:
    """Per group on a sweep chart: its name, mean points, band points (min and max traces)."""
    return list(
        page.evaluate(
            """(id) => {
              const data = document.getElementById(`sweep-chart-${id}`).data || [];
              const out = [];
              for (let i = 0; i + 2 < data.length; i += 3) {
                const [lo, hi, mean] = data.slice(i, i + 3);
                out.push({ name: mean.name, points: mean.x.length, fill: hi.fill,
                           band: lo.y.every((v, k) =>
                             v <= mean.y[k] + 1e-12 && mean.y[k] <= hi.y[k] + 1e-12) });
              }
              return out;
            }""",
            chart,
        )
    )


def test_the_form_starts_a_sweep_whose_page_shows_each_group_with_a_band(
    page: Any, server: LiveServer
) -> None:
    page.goto(server.url + "/")
    page.check("input[value=sweep]")
    assert page.is_hidden("select[name=method]")  # the sweep's rules replace the single rule
    page.uncheck("[data-sweep=method][value=dni]")
    page.check("[data-sweep=method][value=cdni]")
    page.fill("#sweep-seeds", "1,2,3")
    page.select_option("select[name=dataset]", "digits")
    page.fill("input[name=epochs]", "4")
    page.fill("input[name=hidden]", "32")
    page.click("#start-button")
    page.wait_for_url("**/sweeps/*")
    wait_until(lambda: page.inner_text("#status") == "finished", timeout=90, what="the sweep")
    wait_until(
        lambda: [g["points"] > 1 for g in chart_groups(page)] == [True, True],
        what="two groups drawn",
    )
    groups = chart_groups(page)
    assert [g["name"] for g in groups] == ["backprop", "cdni"]
    assert all(g["fill"] == "tonexty" and g["band"] for g in groups)  # min <= mean <= max
    rows = page.locator("#results-table tbody tr")
    assert rows.count() == 2
    assert "3 of 3 done" in rows.nth(0).inner_text()
    assert page.locator("#sweep-runs tbody tr").count() == 6
    csv = httpx.get(page.url.replace("/sweeps/", "/api/sweeps/") + "/results?format=csv").text
    assert csv.splitlines()[0].startswith("method,runs,train accuracy mean")
    # each group's seeds trained as one batch: the sweep page and each seed's page say so
    assert "acts on the whole group" in page.inner_text("#batch-note")
    first = httpx.get(page.url.replace("/sweeps/", "/api/sweeps/")).json()["runs"][0]
    page.goto(f"{server.url}/runs/{first['id']}")
    note = page.inner_text("#batch-note")
    others = [f"seed {s}" for s in (1, 2, 3) if s != first["point"]["seed"]]
    assert all(seed in note for seed in others) and "act on all of them" in note


def test_owner_stops_a_sweep_from_its_page_and_a_viewer_sees_no_controls(
    page: Any, server: LiveServer, chromium: Any
) -> None:
    page.goto(server.url + "/")
    page.check("input[value=sweep]")
    page.fill("#sweep-seeds", "1,2")
    page.fill("input[name=epochs]", "3000")
    page.click("#start-button")
    page.wait_for_url("**/sweeps/*")
    page.wait_for_selector("#controls:not([hidden])")
    viewer = chromium.new_context().new_page()
    viewer.goto(page.url)
    viewer.wait_for_timeout(1500)
    assert viewer.is_hidden("#controls")
    viewer.context.close()
    page.click("#controls [data-action=stop]")
    wait_until(lambda: page.inner_text("#status") == "ended", timeout=30, what="stopped runs")
    statuses = page.locator("#sweep-runs tbody tr td.status").all_inner_texts()
    assert len(statuses) == 4 and set(statuses) == {"stopped"}
