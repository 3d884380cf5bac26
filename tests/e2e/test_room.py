"""A room's experience of the pages: a diverged run's share link, phones, "Show large", the
presenter's keys, presets that say what will happen, sweeps, /results, a branch's history."""

from __future__ import annotations

import re
from typing import Any

import httpx

from support.live import LiveServer, strict_json
from support.waiting import wait_until

#: DNI on the article's task with a learning rate of 100: its numbers overflow within a few
#: steps; the final evaluation's loss is NaN (checked: it diverges at about step 11).
DIVERGES = {"dataset": "addition", "method": "dni", "activation": "relu", "learning_rate": 100}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def start(server: LiveServer, config: dict[str, Any], name: str = "run") -> dict[str, Any]:
    response = httpx.post(f"{server.url}/api/runs", json={"name": name, "config": config})
    assert response.status_code == 201, response.text
    return dict(response.json())


def ended(server: LiveServer, run: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    def body_once_ended() -> dict[str, Any] | None:
        body = httpx.get(f"{server.url}/api/runs/{run['id']}").json()
        return None if body["status"] in ("queued", "running", "paused") else dict(body)

    return wait_until(body_once_ended, timeout, what=f"run {run['id']} to end", every=0.2)


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
    wait_until(lambda: drawn(page), what="the loss chart")
    assert page.locator("#loading").is_hidden()
    banner = page.locator("#banner").inner_text()
    assert "diverged" in banner and f"step {step}" in banner
    wait_until(lambda: f"diverged at step {step}" in marker_texts(page), what="the divergence line")
    # The axis shows what it learned before the blow-up, not the 1e60 it overflowed to.
    first = httpx.get(f"{server.url}/api/runs/{run['id']}/metrics").json()["records"][0]["loss"]
    assert y_range(page)[1] < 1000 * first
    assert y_range(page)[1] > 10 * first  # alone, its climb (825 on the way) stays in view
    assert "blew up" in page.locator("#chart-loss").locator("xpath=..").inner_text()
    # The share link in a fresh browser (no owner cookie): the same page, no script error.
    context = chromium.new_context()
    errors: list[str] = []
    fresh = context.new_page()
    fresh.on("pageerror", lambda error: errors.append(str(error)))
    fresh.goto(f"{server.url}/runs/{run['id']}")
    wait_until(lambda: drawn(fresh), what="the share link's charts")
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
    wait_until(lambda: drawn(page), what="the compare charts")
    wait_until(
        lambda: page.evaluate("document.getElementById('chart-loss').data.length") >= 2,
        what="a trace per run",
    )
    assert any("diverged at step" in text for text in marker_texts(page))
    # Its steps on the way up (825 on the way to 1e54) do not set the axis: the other
    # run's loss stays readable (the first loss of both is about 6).
    records = httpx.get(f"{server.url}/api/runs/{bad['id']}/metrics").json()["records"]
    first = records[0]["loss"]
    assert any(10 * first < (r["loss"] or 0) < 1000 * first for r in records)  # that case
    assert y_range(page)[1] < 10 * first
    page.locator("#timelines").scroll_into_view_if_needed()  # charts draw once on screen
    wait_until(lambda: page.locator("#timelines .main-svg").count() >= 2, what="both timelines")


#: Chart titles with a toolbar or a legend drawn over them (boxes that intersect).
TITLES_COVERED = """() => [...document.querySelectorAll('.js-plotly-plot')].flatMap((plot) => {
    const boxes = [...plot.querySelectorAll('.modebar, .legend')]
        .map((e) => e.getBoundingClientRect());
    return [...plot.querySelectorAll('.gtitle')].filter((t) => {
        const r = t.getBoundingClientRect();
        return boxes.some((b) => b.width && r.left < b.right && b.left < r.right
                                 && r.top < b.bottom && b.top < r.bottom);
    }).map((t) => t.textContent);
})"""


def plot_width(page: Any, chart: str) -> float:
    return float(page.evaluate(f"document.querySelector('#chart-{chart} .main-svg').clientWidth"))


def test_a_phone_sees_every_chart_title_and_can_show_one_large(
    chromium: Any, server: LiveServer
) -> None:
    run = start(server, {"dataset": "addition", "method": "dni", "epochs": 3}, "phone")
    ended(server, run)
    context = chromium.new_context(**PHONE)
    phone = context.new_page()
    errors: list[str] = []
    phone.on("pageerror", lambda error: errors.append(str(error)))
    phone.goto(f"{server.url}/runs/{run['id']}")
    wait_until(lambda: drawn(phone), what="the charts")
    for chart in ("heatmap", "loss", "accuracy", "fidelity", "weights", "module"):
        phone.locator(f"#chart-{chart}").scroll_into_view_if_needed()
        wait_until(lambda c=chart: phone.locator(f"#chart-{c} .gtitle").count() > 0, what=chart)
    assert phone.locator(".modebar").count() == 0  # no toolbar on a touch screen
    wait_until(lambda: phone.evaluate(TITLES_COVERED) == [], timeout=5, what="titles clear")
    # The heatmap card is as tall as its heatmap, not a screen of empty panel.
    card = phone.locator(".heatmap-card").bounding_box()
    plot = phone.locator("#chart-heatmap .main-svg").first.bounding_box()
    assert card["height"] - plot["height"] < 70
    # "Show large" exists on a phone and the chart takes the screen's width.
    phone.locator("#chart-loss").scroll_into_view_if_needed()
    phone.locator("#chart-loss").locator("xpath=..").get_by_role("button", name="Show large").tap()
    card = phone.locator(".chart-card.expanded").bounding_box()
    height = "document.querySelector('#chart-loss .main-svg').clientHeight"
    wait_until(
        lambda: (
            plot_width(phone, "loss") >= card["width"] - 40
            and phone.evaluate(height) >= card["height"] - 160
        ),
        timeout=3,
        what="the chart filling the screen",
    )
    assert errors == []
    context.close()


def test_show_large_and_f_widen_the_plot_and_a_lone_card_fills_its_row(
    page: Any, server: LiveServer
) -> None:
    run = ended(server, start(server, {"dataset": "addition", "method": "dni", "epochs": 2}))
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{server.url}/runs/{run['id']}")
    wait_until(lambda: drawn(page), what="the charts")
    # Five charts in two columns: module loss, alone on its row, takes the row.
    page.locator("#chart-module").scroll_into_view_if_needed()
    wait_until(lambda: page.locator("#chart-module .main-svg").count() > 0, what="module loss")
    row = page.locator("#charts").bounding_box()["width"]
    assert page.locator("#chart-module").bounding_box()["width"] >= row - 40
    assert plot_width(page, "module") >= row - 40
    narrow = plot_width(page, "loss")
    assert narrow < 800
    page.locator("#chart-loss").locator("xpath=..").get_by_role("button", name="Show large").click()
    card = page.locator(".chart-card.expanded").bounding_box()["width"]
    wait_until(lambda: plot_width(page, "loss") >= card - 80, timeout=3, what="a wide plot")
    page.keyboard.press("Escape")
    wait_until(lambda: plot_width(page, "loss") <= narrow + 2, timeout=3, what="back in its column")
    # `f` shows the focused chart full screen (or large, where full screen is refused).
    page.locator("#chart-accuracy").locator("xpath=..").get_by_role("button", name="?").focus()
    page.keyboard.press("f")
    wait_until(lambda: plot_width(page, "accuracy") >= 1200, timeout=3, what="f: a wide plot")


def test_space_pauses_in_presentation_mode_whatever_has_focus(
    page: Any, server: LiveServer
) -> None:
    page.goto(server.url + "/")
    page.get_by_label("Epochs", exact=True).fill("3000")
    page.get_by_role("button", name="Start", exact=True).click()
    page.wait_for_selector("#controls:not([hidden])")
    wait_until(lambda: page.locator("#status").inner_text() == "running", what="running")
    page.get_by_role("button", name="Presentation mode").click()  # focus stays on it
    page.keyboard.press(" ")
    wait_until(lambda: page.locator("#status").inner_text() == "paused", what="paused by Space")
    assert "present=1" in page.evaluate("location.href")  # still presenting
    page.get_by_role("button", name="Show large").first.click()
    page.keyboard.press(" ")
    wait_until(lambda: page.locator("#status").inner_text() == "running", what="resumed by Space")
    assert page.locator(".chart-card.expanded").count() == 1
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Stop").click()


def test_presets_say_what_to_expect_on_the_form_and_the_runs_page(
    page: Any, server: LiveServer
) -> None:
    from synthgrad_core.presets import PRESETS

    page.goto(server.url + "/")
    page.get_by_role("button", name=PRESETS["lecture-dni"]["label"]).click()
    expect = page.locator("#preset-expect")
    assert "meant to fail; watch the bottom layer's cosine" in expect.inner_text()
    page.get_by_role("button", name="Start", exact=True).click()
    page.wait_for_selector("#expect")  # the run's page says it too, for the room
    assert PRESETS["lecture-dni"]["expect"] in page.locator("#expect").inner_text()
    page.get_by_role("button", name="Presentation mode").click()
    assert page.locator("#expect").is_visible()
    page.keyboard.press("p")
    page.get_by_role("button", name="Stop").click()
    page.get_by_role("dialog").get_by_role("button", name="Stop run").click()
    # Changed settings: the preset's promise is not made for a run it did not start.
    other = start(server, {"dataset": "addition", "method": "dni", "epochs": 2}, "mine")
    page.goto(f"{server.url}/runs/{other['id']}")
    assert page.locator("#expect").count() == 0


def test_charts_that_would_look_empty_say_something(page: Any, server: LiveServer) -> None:
    runs = [
        ended(server, start(server, {"dataset": "addition", "method": m, "epochs": 2}, m))
        for m in ("dni", "cdni", "backprop", "feedback_alignment")
    ]
    page.goto(f"{server.url}/runs/{runs[0]['id']}")
    wait_until(lambda: drawn(page), what="the charts")
    for chart in ("module", "fidelity"):
        page.locator(f"#chart-{chart}").scroll_into_view_if_needed()
        wait_until(lambda c=chart: drawn(page, c), what=chart)
    assert page.evaluate("document.getElementById('chart-module')._fullLayout.yaxis.type") == "log"
    note = page.locator("#chart-fidelity").locator("xpath=..").locator(".chart-note")
    assert "relative error stays at 1" in note.inner_text()
    # Four runs compared: the weights legend (12 entries) leaves the plot its height.
    page.goto(f"{server.url}/compare?runs={','.join(r['id'] for r in runs)}")
    page.locator("#chart-weights").scroll_into_view_if_needed()
    wait_until(lambda: drawn(page, "weights"), what="the weights chart")
    assert page.evaluate("document.getElementById('chart-weights')._fullLayout._size.h") >= 200
    for chart in ("loss", "accuracy", "fidelity", "weights", "module"):
        page.locator(f"#chart-{chart}").scroll_into_view_if_needed()
        wait_until(lambda c=chart: drawn(page, c), what=chart)
    wait_until(lambda: page.evaluate(TITLES_COVERED) == [], timeout=5, what="titles clear")


def test_labels_say_one_thing_each(page: Any, server: LiveServer) -> None:
    page.goto(server.url + "/")
    hints = page.locator(".field .hint").all_inner_texts()
    assert not [h for h in hints if "4294967295" in h or "(bits)" in h or "(examples)" in h]
    page.get_by_label("Dataset", exact=True).select_option("digits")
    assert page.get_by_label("Bits", exact=True).is_hidden()
    assert page.locator('[data-field="data_path"]').is_hidden()
    page.get_by_label("a sweep: several rules", exact=False).check()
    values = page.locator("#sweep-extra-values")
    assert values.evaluate("(e) => e.scrollWidth <= e.clientWidth")  # the placeholder fits
    # A paused run is not "live"; the smoothing label sits beside its slider.
    run = start(server, {"dataset": "addition", "epochs": 3000})
    httpx.post(f"{server.url}/api/runs/{run['id']}/pause", headers=owner(run))
    page.goto(f"{server.url}/runs/{run['id']}")
    wait_until(lambda: page.locator("#status").inner_text() == "paused", what="paused")
    page.wait_for_timeout(500)
    assert "live" not in page.locator("#connection").inner_text()
    label, slider = (
        page.locator(s).bounding_box() for s in ('label[for="smoothing"]', "#smoothing")
    )
    assert abs((label["y"] + label["height"] / 2) - (slider["y"] + slider["height"] / 2)) < 12
    # The downloads look like the button beside them.
    share = [page.locator(s) for s in ("#csv-link", "#json-link", "#share-button")]
    heights = {round(e.bounding_box()["height"]) for e in share}
    assert max(heights) - min(heights) <= 2
    httpx.post(f"{server.url}/api/runs/{run['id']}/stop", headers=owner(run))


def owner(run: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {run['owner_token']}"}


def test_a_sweeps_runs_fold_under_it_and_its_charts_follow_the_dark_scheme(
    chromium: Any, server: LiveServer
) -> None:
    body = {
        "config": {"dataset": "digits", "epochs": 1},
        "grid": {"method": ["backprop", "dni"], "seed": [1, 2, 3, 4, 5, 6]},
    }
    made = httpx.post(f"{server.url}/api/sweeps", json=body)
    assert made.status_code == 201, made.text
    sweep = made.json()
    context = chromium.new_context(color_scheme="dark")
    page = context.new_page()
    page.goto(server.url + "/")
    toggle = page.get_by_role("button", name=re.compile(r"Show the 12 runs of"))
    toggle.wait_for()
    assert sweep["name"] == "digits: backprop, dni × 6 seeds"
    assert page.locator("#runs-table tbody tr").count() == 1  # folded
    assert "12 runs" in toggle.inner_text()
    toggle.click()
    wait_until(lambda: page.locator("#runs-table tbody tr").count() == 13, what="the sweep's runs")
    names = page.locator("#runs-table .sweep-member .run-name a").all_inner_texts()
    assert "digits: dni, seed 4" in names
    page.goto(f"{server.url}/sweeps/{sweep['id']}")
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for()
    fill = page.evaluate("getComputedStyle(document.querySelector('.gtitle')).fill")
    assert fill != "rgb(68, 68, 68)"  # Plotly's default dark grey: unreadable on dark
    grid = page.evaluate("document.querySelector('.js-plotly-plot')._fullLayout.xaxis.gridcolor")
    assert grid.lower() not in ("#eee", "#eeeeee", "white", "#fff", "#ffffff")
    context.close()


def test_results_are_html_tables_readable_on_a_phone(chromium: Any, server: LiveServer) -> None:
    context = chromium.new_context(**PHONE)
    page = context.new_page()
    page.goto(server.url + "/results")
    assert page.locator("table").count() >= 3 and page.locator("pre.doc-text").count() == 0
    text = page.locator("main").inner_text()
    assert "|---|" not in text and "**" not in text
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    cell = page.locator("table td[data-label]").nth(2)
    assert cell.evaluate("(e) => getComputedStyle(e, '::before').content").strip('"')
    assert "python scripts/results.py`" not in text  # a pip user has no scripts/
    context.close()
