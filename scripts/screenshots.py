"""Take the README's screenshots, desktop (1366x900) and phone (390x844, a touch screen): the
runs page, a live DNI run on the article's task, four rules on digits compared,
presentation mode, a sweep of the four rules over three seeds on digits and one of its
seeds' page (the seeds of a group train as one batch), a fork: DNI on the article's task
paused, branched to backprop, both compared, and the branch's own page; a finished DNI run
on digits replayed (scrubbed to 45%), a run that diverged, and /results.

Usage: python scripts/screenshots.py [--dark] [--out DIR] [NAME ...]  (only those: runs,
run-dni-addition, compare-digits, present, sweep, sweep-run, fork-compare, fork-branch,
replay, diverged, results; --dark: the dark colour scheme, files named *-dark.png; needs Debian's
chromium and the playwright package)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.settings import Settings  # noqa: E402
from support.browser import ARGS, CHROMIUM  # noqa: E402
from support.live import live_server  # noqa: E402
from support.waiting import wait_until  # noqa: E402

#: Each view: its file name suffix and the browser context's settings.
VIEWS: dict[str, dict[str, Any]] = {
    "": {"viewport": {"width": 1366, "height": 900}},
    "-phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}
PAGES = (
    "runs",
    "run-dni-addition",
    "compare-digits",
    "present",
    "sweep",
    "sweep-run",
    "fork-compare",
    "fork-branch",
    "replay",
    "diverged",
    "results",
)
#: DNI on the article's task with a learning rate of 100: its numbers overflow at once.
DIVERGES = {"dataset": "addition", "method": "dni", "activation": "relu", "learning_rate": 100}


def fork(url: str) -> tuple[str, str]:
    """DNI on the article's task, paused at step ~3000 and forked to backprop; both go on."""
    body = {
        "name": "The article's task: DNI",
        "config": {"dataset": "addition", "method": "dni", "epochs": 120},
    }
    made = httpx.post(f"{url}/api/runs", json=body).json()
    parent, owner = made["id"], {"Authorization": f"Bearer {made['owner_token']}"}
    wait_until(
        lambda: httpx.get(f"{url}/api/runs/{parent}").json()["step"] >= 3000,
        600,
        "the DNI run to pass step 3000",
        every=0.2,
    )
    httpx.post(f"{url}/api/runs/{parent}/pause", headers=owner)
    wait_until(
        lambda: httpx.get(f"{url}/api/runs/{parent}").json()["status"] == "paused",
        60,
        "the DNI run to pause",
        every=0.1,
    )
    branch_body = {"name": "From here with backprop", "config": {"method": "backprop"}}
    branch = httpx.post(f"{url}/api/runs/{parent}/fork", json=branch_body, headers=owner).json()
    httpx.post(f"{url}/api/runs/{parent}/resume", headers=owner)
    time.sleep(12)
    return parent, str(branch["id"])


def first_run(url: str, sweep: str) -> str:
    """A sweep's first run: one seed of a group that trained as one batch."""
    return str(httpx.get(f"{url}/api/sweeps/{sweep}").json()["runs"][0]["id"])


def draw_everything(page: Any) -> None:
    """Scroll through the page: charts draw only once they have been on screen."""
    height = page.evaluate("document.documentElement.scrollHeight")
    for y in range(0, height, 400):
        page.evaluate(f"window.scrollTo(0, {y})")
        time.sleep(0.3)
    page.evaluate("window.scrollTo(0, 0)")
    time.sleep(1.5)


def scrub(page: Any, fraction: float) -> None:
    """Move a replay's slider to `fraction` of the run (which pauses it)."""
    page.evaluate(
        """(fraction) => { const s = document.getElementById('replay-slider');
        s.value = String(Math.round(s.max * fraction));
        s.dispatchEvent(new Event('input')); }""",
        fraction,
    )


def main() -> None:
    args = sys.argv[1:]
    dark = "--dark" in args
    out = ROOT / "docs" / "screenshots"
    if "--out" in args:
        out = Path(args[args.index("--out") + 1])
        del args[args.index("--out") : args.index("--out") + 2]
    names = [a for a in args if a != "--dark"]
    out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        live_server(
            Settings(db=f"{tmp}/shots.sqlite3", max_concurrent_runs=4, executor="thread")
        ) as server,
        sync_playwright() as playwright,
    ):

        def create(name: str, config: dict[str, Any]) -> str:
            body = {"name": name, "config": config}
            return str(httpx.post(f"{server.url}/api/runs", json=body).json()["id"])

        wanted = set(names) or set(PAGES)
        diverged = create("Learning rate 100", DIVERGES) if "diverged" in wanted else ""
        digits = (
            [
                create(f"Digits: {m}", {"dataset": "digits", "method": m, "epochs": 50})
                for m in ("backprop", "dni", "cdni", "feedback_alignment")
            ]
            if "compare-digits" in wanted
            else []
        )
        sweep = ""
        if wanted & {"sweep", "sweep-run"}:
            sweep = httpx.post(
                f"{server.url}/api/sweeps",
                json={
                    "name": "Digits: four rules, three seeds",
                    "config": {"dataset": "digits", "epochs": 20},
                    "grid": {
                        "method": ["backprop", "dni", "cdni", "feedback_alignment"],
                        "seed": [1, 2, 3],
                    },
                },
            ).json()["id"]
        parent, branch = fork(server.url) if wanted & {"fork-compare", "fork-branch"} else ("", "")
        replayed = ""
        if "replay" in wanted:
            replayed = create(
                "Digits: DNI, replayed",
                {"dataset": "digits", "method": "dni", "epochs": 15, "hidden": [64, 32]},
            )
            wait_until(
                lambda: (
                    httpx.get(f"{server.url}/api/runs/{replayed}").json()["status"] == "finished"
                ),
                600,
                "the replayed run to finish",
                every=0.5,
            )
        dni = create(
            "The article's task: DNI", {"dataset": "addition", "method": "dni", "epochs": 3000}
        )
        time.sleep(4)
        if sweep:
            wait_until(
                lambda: (
                    httpx.get(f"{server.url}/api/sweeps/{sweep}").json()["status"] == "finished"
                ),
                1200,
                "the sweep to finish",
                every=1,
            )
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        paths = {
            "runs": "/",
            "run-dni-addition": f"/runs/{dni}",
            "compare-digits": f"/compare?runs={','.join(digits)}",
            "present": f"/runs/{dni}?present=1&chart=fidelity",
            "sweep": f"/sweeps/{sweep}",
            "sweep-run": f"/runs/{first_run(server.url, sweep)}" if sweep else "",
            "fork-compare": f"/compare?runs={parent},{branch}",
            "fork-branch": f"/runs/{branch}",
            "replay": f"/runs/{replayed}?replay=1&speed=60s",
            "diverged": f"/runs/{diverged}",
            "results": "/results",
        }
        pages = {k: v for k, v in paths.items() if k in wanted}
        scheme = "dark" if dark else "light"
        for suffix, view in VIEWS.items():
            context = browser.new_context(**view, color_scheme=scheme)
            page = context.new_page()
            for name, path in pages.items():
                if name == "present" and suffix:
                    continue
                page.goto(server.url + path)
                time.sleep(2)
                if name == "replay":
                    scrub(page, 0.45)
                draw_everything(page)
                full = name != "present"
                file = f"{name}{suffix}{'-dark' if dark else ''}.png"
                page.screenshot(path=str(out / file), full_page=full)
            context.close()
        browser.close()  # leaving the block stops the server, which interrupts the live run
    print(f"wrote screenshots to {out}")


if __name__ == "__main__":
    main()
