"""Run-page redraw cost in Debian's Chromium: a finished 100,000-step run and a live run.

The server runs as its own process (`synthgrad serve` on a free local port);
Playwright drives headless Chromium. The page records how long every redraw
takes (`window.synthgradRedraws`: from the start of a chart's batched update to
the end of Plotly's `react` or `extendTraces`) and when data first reached a
chart (`window.synthgradFirstChart`, ms after navigation start; the last
redraw's end is `window.synthgradLastDraw`).

- finished run: load the page (5 charts from the downsampled snapshot), then
  redraw everything through the controls: log y, x by epoch, x by time,
  smoothing 0.6, the other hidden layer;
- live run: load the page of a run that is training and watch it for
  `--watch` seconds (batched live updates), counting every animation frame's
  gap and every long task (> 50 ms on the main thread, PerformanceObserver).

Usage: python -m bench.page [--steps 100000] [--watch 10] [--tree DIR]
`--tree` serves another checkout (e.g. a `git worktree` of an older commit) with
the same measurement, for before/after figures.
Targets: median redraw <= 50 ms; on the live run, 95th-percentile frame gap
<= 100 ms and long tasks <= 25% of wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from support.browser import ARGS, CHROMIUM
from support.live import server_process
from support.waiting import wait_until

ADDITION_STEPS_PER_EPOCH = 80  # 8-bit addition defaults: 800 training examples, batch 10


def create_run(url: str, name: str, epochs: int) -> dict[str, Any]:
    body = {"name": name, "config": {"dataset": "addition", "method": "dni", "epochs": epochs}}
    response = httpx.post(f"{url}/api/runs", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def wait_finished(url: str, run_id: str, limit: float) -> float:
    """Seconds until the run finished (a run that ends otherwise stops the benchmark)."""

    def finished() -> bool:
        status = httpx.get(f"{url}/api/runs/{run_id}", timeout=10).json()["status"]
        if status not in ("queued", "running", "finished"):
            raise SystemExit(f"the benchmark run ended {status}")
        return status == "finished"

    start = time.monotonic()
    wait_until(finished, limit, "the benchmark run to finish", every=0.5)
    return time.monotonic() - start


def summarize(label: str, times: list[float]) -> dict[str, float]:
    if not times:
        print(f"{label:<44} no redraws")
        return {}
    median, worst = statistics.median(times), max(times)
    print(f"{label:<44} {len(times):>5} {median:>9.1f} {worst:>9.1f}")
    return {"count": len(times), "median": median, "worst": worst}


def settle(page: Any, quiet_ms: int = 600, limit_s: float = 20.0) -> None:
    """Wait until no redraw has happened for `quiet_ms`; after `limit_s`, go on regardless."""
    last = {"count": -1, "since": time.monotonic()}

    def quiet() -> bool:
        count = page.evaluate("(window.synthgradRedraws || []).length")
        if count != last["count"]:
            last.update(count=count, since=time.monotonic())
            return False
        return time.monotonic() - last["since"] > quiet_ms / 1000

    with contextlib.suppress(AssertionError):  # charts that never settle: measure anyway
        wait_until(quiet, limit_s, "the charts to stop redrawing")


def load(page: Any, url: str) -> tuple[float, float]:
    """Open a run page; returns (time to first chart with data, time until all charts drew)."""
    page.goto(url)
    page.wait_for_function("window.synthgradFirstChart !== undefined", timeout=60_000)
    first = page.evaluate("window.synthgradFirstChart")
    settle(page)
    return first, page.evaluate("window.synthgradLastDraw")


#: Injected before any page script: frame gaps and long tasks, from when `start()` is called.
FRAME_PROBE = """
window.synthgradFrames = { gaps: [], long: [], running: false };
window.synthgradFrames.start = () => {
  const f = window.synthgradFrames;
  f.gaps = []; f.long = []; f.running = true; f.started = performance.now();
  let last = performance.now();
  const tick = (now) => {
    if (!f.running) return;
    f.gaps.push(now - last); last = now; requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
};
new PerformanceObserver((list) => {
  const f = window.synthgradFrames;
  if (f.running) for (const e of list.getEntries()) f.long.push(e.duration);
}).observe({ type: "longtask", buffered: false });
"""


def frames(page: Any, seconds: float) -> dict[str, float]:
    """Watch the page for `seconds`: frame-gap median and p95, long tasks and their share."""
    page.evaluate("window.synthgradFrames.start()")
    page.wait_for_timeout(int(seconds * 1000))
    data = page.evaluate(
        "(() => { const f = window.synthgradFrames; f.running = false;"
        " return { gaps: f.gaps, long: f.long, wall: performance.now() - f.started }; })()"
    )
    gaps = sorted(data["gaps"]) or [0.0]
    p95 = gaps[min(len(gaps) - 1, int(0.95 * len(gaps)))]
    share = sum(data["long"]) / data["wall"]
    result = {
        "frames_per_s": len(data["gaps"]) / (data["wall"] / 1000),
        "gap_median": statistics.median(gaps),
        "gap_p95": p95,
        "long_tasks": len(data["long"]),
        "long_share": share,
    }
    print(
        f"live run, {seconds:.0f} s: {result['frames_per_s']:.0f} frames/s, frame gap median "
        f"{result['gap_median']:.1f} ms, p95 {p95:.1f} ms (target <= 100); "
        f"{result['long_tasks']} long tasks, {100 * share:.0f}% of wall time (target <= 25%)"
    )
    return result


def redraws(page: Any, since: int = 0) -> list[float]:
    return page.evaluate(f"(window.synthgradRedraws || []).slice({since})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=100_000, help="steps of the finished run")
    parser.add_argument("--watch", type=float, default=10.0, help="seconds to watch the live run")
    parser.add_argument("--tree", help="serve this checkout instead (before/after figures)")
    parser.add_argument("--live-only", action="store_true", help="only the live run's frames")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    epochs = max(1, args.steps // ADDITION_STEPS_PER_EPOCH)
    with (
        tempfile.TemporaryDirectory() as tmp,
        server_process(str(Path(tmp) / "bench.db"), cwd=args.tree) as (
            url,
            _process,
        ),
    ):
        if args.live_only:
            live_frames(url, args.watch)
            return
        done = create_run(url, "finished", epochs)
        took = wait_finished(url, done["id"], limit=600)
        print(f"finished run: {done['total_steps']:,} steps of DNI on addition in {took:.0f} s")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            print(f"\n{'redraws (ms)':<44} {'count':>5} {'median':>9} {'worst':>9}")
            first, drawn = load(page, f"{url}/runs/{done['id']}")
            results = {"finished: page load": summarize("finished run, page load", redraws(page))}
            mark = len(redraws(page))
            page.check("#log-scale")
            settle(page)
            page.select_option("#x-axis", "epoch")
            settle(page)
            page.select_option("#x-axis", "wall_time")
            settle(page)
            page.eval_on_selector(
                "#smoothing",
                "el => { el.value = '0.6'; el.dispatchEvent(new Event('input')); }",
            )
            settle(page)
            page.select_option("#layer", "2")
            settle(page)
            results["finished: controls"] = summarize(
                "finished run, 5 control changes (full redraws)", redraws(page, mark)
            )
            page.reload()  # a second visit: plotly.js from the browser's cache
            page.wait_for_function("window.synthgradFirstChart !== undefined", timeout=60_000)
            warm = page.evaluate("window.synthgradFirstChart")
            settle(page)
            points = page.evaluate("window.synthgradCharts.reduce((n, c) => n + c.pointCount(), 0)")
            print(
                f"finished run: first chart {first:.0f} ms after navigation (all five drawn: "
                f"{drawn:.0f} ms), {warm:.0f} ms on a second visit; {points:,} points in the charts"
            )

            live = create_run(url, "live", 5_000)
            time.sleep(2.0)  # some history first, as a viewer joining a running demo
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.add_init_script(FRAME_PROBE)
            first_live, _ = load(page, f"{url}/runs/{live['id']}")
            frames(page, args.watch)
            mark = len(redraws(page))
            before = page.evaluate("window.synthgradCharts[0].pointCount()")
            page.wait_for_timeout(int(args.watch * 1000))
            after = page.evaluate("window.synthgradCharts[0].pointCount()")
            live_times = redraws(page, mark)
            results["live"] = summarize(f"live run, {args.watch:.0f} s of updates", live_times)
            per_second = len(live_times) / args.watch
            print(
                f"live run: first chart {first_live:.0f} ms after navigation; "
                f"{per_second:.1f} redraws/s over 5 charts; loss chart {before:,} -> {after:,} "
                "points"
            )
            browser.close()
        httpx.post(
            f"{url}/api/runs/{live['id']}/stop",
            headers={"Authorization": f"Bearer {live['owner_token']}"},
            timeout=10,
        )
    medians = [r["median"] for r in results.values() if r]
    print(f"\nworst median {max(medians):.1f} ms per redraw (target <= 50 ms)")


def live_frames(url: str, seconds: float) -> None:
    """Only the live run's frame gaps and long tasks (works against older checkouts too)."""
    from playwright.sync_api import sync_playwright

    live = create_run(url, "live", 5_000)
    time.sleep(2.0)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.add_init_script(FRAME_PROBE)
        page.goto(f"{url}/runs/{live['id']}")
        page.wait_for_timeout(3000)
        frames(page, seconds)
        browser.close()
    httpx.post(
        f"{url}/api/runs/{live['id']}/stop",
        headers={"Authorization": f"Bearer {live['owner_token']}"},
        timeout=10,
    )


if __name__ == "__main__":
    main()
