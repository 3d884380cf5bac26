"""The pages in a lecture, as a person uses them: recipes, phones, presentation mode,
shortcuts, run management, loading and error states, and an accessibility audit."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from support.live import LiveServer
from support.waiting import wait_until

RECIPE = {"dataset": "addition", "method": "cdni", "bits": "8", "epochs": "600"}
LABELS = {"dataset": "Dataset", "method": "Learning rule", "bits": "Bits", "epochs": "Epochs"}


def start(server: LiveServer, config: dict[str, Any], name: str = "run") -> dict[str, Any]:
    response = httpx.post(f"{server.url}/api/runs", json={"name": name, "config": config})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_recipe_link_fills_the_form_and_starts_only_when_asked(
    page: Any, server: LiveServer
) -> None:
    query = "&".join(f"{k}={v}" for k, v in RECIPE.items())
    page.goto(f"{server.url}/?{query}")
    for key, label in LABELS.items():
        assert page.get_by_label(label, exact=True).input_value() == RECIPE[key]
    for label in ("Hidden layers", "Activation", "Batch size", "Learning rate", "Seed", "Name"):
        assert page.get_by_label(label, exact=True).is_visible()
    assert httpx.get(f"{server.url}/api/runs").json() == []  # a recipe never starts a run
    # The query follows the form, and the recipe link says the same.
    page.get_by_label("Seed", exact=True).fill("7")
    wait_until(lambda: "seed=7" in href(page), what="the query to follow the form")
    page.get_by_role("button", name="Start", exact=True).click()
    page.wait_for_url(re.compile(r"/runs/"))
    (run,) = httpx.get(f"{server.url}/api/runs").json()
    config = run["config"]
    assert (config["dataset"], config["method"], config["bits"], config["epochs"]) == (
        "addition",
        "cdni",
        8,
        600,
    )
    assert config["seed"] == 7
    httpx.post(f"{server.url}/api/runs/{run['id']}/stop", headers=admin())


def href(page: Any) -> str:
    """The address bar (history.replaceState does not update Playwright's page.url)."""
    return str(page.evaluate("location.href"))


def admin() -> dict[str, str]:
    return {"Authorization": "Bearer e2e-admin-token-0123"}


def test_the_form_shows_the_datasets_defaults_and_lists_errors_by_start(
    page: Any, server: LiveServer
) -> None:
    page.goto(server.url + "/")
    epochs = page.get_by_label("Epochs", exact=True)
    assert "300" in (epochs.get_attribute("placeholder") or "")  # addition's default
    page.get_by_label("Dataset", exact=True).select_option("digits")
    assert "50" in (epochs.get_attribute("placeholder") or "")  # digits' default
    assert page.get_by_text("default for digits: 50").count() == 1
    epochs.fill("0")
    page.get_by_role("button", name="Start", exact=True).click()
    errors = page.get_by_role("alert")
    wait_until(lambda: errors.is_visible(), what="the error list")
    assert re.search(r"Epochs: .*1", errors.inner_text())
    assert page.evaluate("document.activeElement.name") == "epochs"
    assert epochs.get_attribute("aria-invalid") == "true"
    # The four-rules preset says what it will start.
    page.get_by_role("button", name="Digits: all four rules").click()
    assert page.get_by_role("button", name="Start 4 runs").is_visible()
    assert "4 runs" in page.locator("#preset-note").inner_text()
    # The preset buttons are the engine's list (`synthgrad presets`), in its order: those
    # whose datasets this server has (no MNIST in its data folder here).
    from synthgrad_core.data import BUILT_IN
    from synthgrad_core.presets import offered

    buttons = page.locator("[data-preset]")
    shown = [buttons.nth(i).inner_text() for i in range(buttons.count())]
    assert shown == [preset["label"] for preset in offered(BUILT_IN).values()]


@pytest.mark.parametrize("path", ["/", "run", "compare"])
def test_phones_never_scroll_sideways_and_start_can_be_tapped(
    chromium: Any, server: LiveServer, path: str
) -> None:
    first = start(
        server,
        {"dataset": "digits", "method": "dni", "epochs": 2},
        "a run with a rather long name to wrap",
    )
    second = start(server, {"dataset": "digits", "epochs": 2}, "b")
    url = {
        "/": f"{server.url}/",
        "run": f"{server.url}/runs/{first['id']}",
        "compare": f"{server.url}/compare?runs={first['id']},{second['id']}",
    }[path]
    context = chromium.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.goto(url)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1500)  # charts drawn
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    if path == "/":
        page.get_by_label("Epochs", exact=True).fill("1")
        page.get_by_label("Dataset", exact=True).select_option("digits")
        page.get_by_role("button", name="Start", exact=True).tap()
        page.wait_for_url(re.compile(r"/runs/"))
    context.close()


def test_view_settings_live_in_the_link(page: Any, server: LiveServer) -> None:
    run = start(server, {"dataset": "digits", "method": "dni", "epochs": 2, "hidden": [32, 16, 8]})
    page.goto(f"{server.url}/runs/{run['id']}")
    page.get_by_label("x axis", exact=True).select_option("epoch")
    page.get_by_label(re.compile("log y")).check()
    page.get_by_label("Layer", exact=True).select_option("3")
    wait_until(
        lambda: "layer=3" in page.url and "x=epoch" in page.url and "log=1" in page.url,
        what="the view in the URL",
    )
    link = page.url
    fresh = page.context.browser.new_context().new_page()
    fresh.goto(link)
    assert fresh.get_by_label("x axis", exact=True).input_value() == "epoch"
    assert fresh.get_by_label(re.compile("log y")).is_checked()
    assert fresh.get_by_label("Layer", exact=True).input_value() == "3"
    fresh.locator("#charts").wait_for()  # shown with the first records
    fresh.locator("#chart-fidelity").scroll_into_view_if_needed()
    title = "document.querySelector('#chart-fidelity .gtitle')?.textContent || ''"
    wait_until(lambda: "hidden layer 3" in fresh.evaluate(title), what="the charts on layer 3")
    fresh.context.close()


def test_presentation_mode_and_keyboard_shortcuts(page: Any, server: LiveServer) -> None:
    page.goto(server.url + "/")
    page.get_by_label("Epochs", exact=True).fill("3000")
    page.get_by_role("button", name="Start", exact=True).click()
    page.wait_for_url(re.compile(r"/runs/"))
    page.wait_for_selector("#controls:not([hidden])")
    wait_until(lambda: page.locator("#status").inner_text() == "running", what="running")
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    assert dialog.is_visible() and "Space" in dialog.inner_text()
    page.keyboard.press("Escape")
    assert not dialog.is_visible()
    page.locator("body").focus()
    page.keyboard.press(" ")  # the owner pauses with Space
    wait_until(lambda: page.locator("#status").inner_text() == "paused", what="paused by Space")
    page.keyboard.press(" ")
    wait_until(lambda: page.locator("#status").inner_text() == "running", what="resumed by Space")
    page.keyboard.press("p")
    assert "present=1" in href(page)
    assert (
        page.locator("header").is_hidden()
        and page.locator(".chart-controls select").first.is_hidden()
    )
    assert page.locator("#run-name").is_visible() and page.locator("#status").is_visible()
    size = page.evaluate("getComputedStyle(document.body).fontSize")
    assert float(size.rstrip("px")) >= 20
    page.get_by_role("button", name="Show large").first.click()
    assert "chart=" in href(page)
    assert page.locator(".chart-card.expanded").bounding_box()["width"] >= 1200
    reopened = page.context.new_page()
    reopened.goto(href(page))  # the link opens in presentation mode with the chart shown large
    assert (
        reopened.locator("header").is_hidden()
        and reopened.locator(".chart-card.expanded").count() == 1
    )
    reopened.close()
    # Escape puts the chart back; stop asks first; cancelling keeps the run going.
    page.keyboard.press("Escape")
    assert page.locator(".chart-card.expanded").count() == 0
    page.keyboard.press("p")
    page.get_by_role("button", name="Stop", exact=True).click()
    confirm = page.get_by_role("dialog", name="Are you sure?")
    assert "cannot be resumed" in confirm.inner_text()
    confirm.get_by_role("button", name="Cancel").click()
    assert page.locator("#status").inner_text() == "running"
    page.get_by_role("button", name="Stop", exact=True).click()
    confirm.get_by_role("button", name="Stop run").click()
    wait_until(lambda: page.locator("#status").inner_text() == "stopped", what="stopped")
    assert page.locator("#connection").inner_text() == ""  # a stopped run never says "live"


def test_owner_renames_and_deletes_from_the_page_viewers_cannot(
    page: Any, chromium: Any, server: LiveServer
) -> None:
    page.goto(server.url + "/")
    page.get_by_label("Dataset", exact=True).select_option("digits")
    page.get_by_label("Epochs", exact=True).fill("3000")  # still training when deleted
    page.get_by_role("button", name="Start", exact=True).click()
    page.wait_for_url(re.compile(r"/runs/"))
    run_id = page.url.rsplit("/", 1)[1].split("?")[0]
    viewer = chromium.new_context().new_page()
    viewer.goto(href(page))
    assert viewer.get_by_role("button", name="Delete").is_hidden()
    assert httpx.delete(f"{server.url}/api/runs/{run_id}").status_code == 403
    page.get_by_role("button", name="Rename").click()
    page.get_by_label("New name").fill("Digits, renamed in class")
    page.get_by_role("button", name="Save name").click()
    wait_until(
        lambda: page.locator("#run-name").inner_text() == "Digits, renamed in class", what="renamed"
    )
    assert httpx.get(f"{server.url}/api/runs/{run_id}").json()["name"] == "Digits, renamed in class"
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog", name="Are you sure?").get_by_role(
        "button", name="Delete run"
    ).click()
    page.wait_for_url(server.url + "/")
    wait_until(lambda: page.get_by_text("No runs yet").is_visible(), what="the empty list")
    assert httpx.get(f"{server.url}/api/runs/{run_id}").status_code == 404
    manager = server.app.state.manager
    assert manager.store.count_records(run_id) == 0
    wait_until(lambda: "deleted" in viewer.locator("#banner").inner_text(), what="the viewer told")
    viewer.context.close()


def test_unknown_links_get_pages_that_say_so(page: Any, server: LiveServer) -> None:
    response = page.goto(f"{server.url}/runs/not-a-run")
    assert response.status == 404
    assert page.get_by_role("heading", name="No such run").is_visible()
    page.get_by_role("link", name=re.compile("See all runs")).click()
    page.wait_for_url(server.url + "/")
    response = page.goto(f"{server.url}/compare?runs=gone-1,gone-2")
    assert response.status == 404 and "gone-1" in page.inner_text("main")


def test_pages_pass_an_accessibility_audit(page: Any, server: LiveServer) -> None:
    from axe_playwright_python.sync_playwright import Axe

    first = start(server, {"dataset": "digits", "method": "cdni", "epochs": 2}, "first")
    second = start(server, {"dataset": "digits", "epochs": 2}, "second")
    sweep = httpx.post(
        f"{server.url}/api/sweeps",
        json={"config": {"dataset": "digits", "epochs": 2}, "grid": {"seed": [1, 2]}},
    ).json()
    axe = Axe()
    found = {}
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for path in (
            "/",
            f"/runs/{first['id']}",
            f"/compare?runs={first['id']},{second['id']}",
            f"/sweeps/{sweep['id']}",
        ):
            page.goto(server.url + path)
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(1500)
            violations = axe.run(page).response["violations"]
            serious = [
                f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
                for v in violations
                if v["impact"] in ("serious", "critical")
            ]
            if serious:
                found[f"{scheme} {path}"] = serious
    assert found == {}


def test_the_recipe_preset_starts_its_config_from_the_form(page: Any, server: LiveServer) -> None:
    from synthgrad_core.presets import preset_config

    page.goto(server.url + "/")
    page.get_by_role("button", name="The article's task: DNI, a recipe that learns").click()
    page.get_by_role("button", name="Start", exact=True).click()
    page.wait_for_url(lambda url: "/runs/" in url, timeout=20_000)
    run = httpx.get(f"{server.url}/api/runs/{page.url.rsplit('/', 1)[-1]}").json()
    wanted = preset_config("dni-addition")
    got = {key: run["config"][key] for key in wanted}
    assert got == {k: list(v) if isinstance(v, tuple) else v for k, v in wanted.items()}
    assert run["name"] == "The article's task: DNI, a recipe that learns"
