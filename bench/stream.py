"""Live-stream load: 1, 2 and 4 training runs watched by 1, 20 and 50 websocket viewers.

The server runs as its own process (`synthgrad serve`, default settings, a free
loopback port). The load generator opens the viewers in one asyncio loop of this
process (bounded: at most `max(--viewers)` sockets, each scenario `--seconds`
long, loopback only), spread round-robin over the runs, and reads every message.

For each number of runs, the runs are started once; then for each number of
viewers, a window with no viewer and a window with the viewers follow each
other on the same runs, and the row compares them. It reports:
- training steps/s (all runs together) with viewers, as a ratio of the window
  just before without them;
- the server's event-loop lag p50 / p99 / max over the viewers' window (its
  /api/health monitor);
- delivery latency from the end of a training step (`unix_time` of the record)
  to a viewer parsing it, p50 / p99 over every streamed record every viewer got,
  and the same for the newest record of each message (how fresh the chart is);
- records, messages, records thinned for slow clients, traffic per viewer;
- server memory (RSS of the server process and of its training processes);
- the load generator's own CPU (cores): on this 2-core machine it competes with
  the training it measures, so the steps/s ratio is a lower bound.

Usage: python -m bench.stream [--seconds 5] [--runs 1 2 4] [--viewers 1 20 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from bench.concurrency import ARTICLE
from support.live import descendants, rss_bytes, server_process


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def family_rss(pid: int) -> tuple[int, int]:
    """RSS of the server process and the sum over its descendants (fork server, training)."""
    total = 0
    for child in descendants(pid):
        with contextlib.suppress(OSError, RuntimeError):
            total += rss_bytes(child)
    return rss_bytes(pid), total


async def viewer(url: str, run_id: str, out: dict[str, Any]) -> None:
    ws_url = url.replace("http://", "ws://") + f"/ws/runs/{run_id}"
    opened = time.time()
    async with connect(ws_url, max_size=None) as ws:
        while True:
            stop = out.get("stop")
            left = (stop - time.time()) if stop else 60.0
            if left <= 0:
                break
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=left)
            except TimeoutError:
                continue
            now = time.time()
            message = json.loads(raw)
            if message["type"] == "snapshot":
                out["join"].append(now - opened)
            if now < out.get("start", float("inf")):
                continue  # joining: not part of the measured window
            out["messages"] += 1
            out["bytes"] += len(raw)
            if message["type"] == "metrics":
                records = message["records"]
                out["latency"].extend(now - r["unix_time"] for r in records)
                out["newest"].append(now - records[-1]["unix_time"])


async def total_steps(http: httpx.AsyncClient, url: str, run_ids: list[str]) -> int:
    runs = [(await http.get(f"{url}/api/runs/{r}")).json() for r in run_ids]
    return sum(run["step"] for run in runs)


async def measure(
    url: str, ids: list[str], viewers: int, settle: float, seconds: float
) -> dict[str, Any]:
    """Viewers join, `settle` seconds pass, then one window of `seconds` is measured."""
    out: dict[str, Any] = {"messages": 0, "bytes": 0, "latency": [], "newest": [], "join": []}
    async with httpx.AsyncClient(timeout=30) as http:
        tasks = [asyncio.create_task(viewer(url, ids[i % len(ids)], out)) for i in range(viewers)]
        await asyncio.sleep(settle if viewers else 0)
        dropped0 = (await http.get(f"{url}/api/health")).json()["stream"]["dropped"]
        steps0, t0, cpu0 = await total_steps(http, url, ids), time.monotonic(), os.times()
        out["start"] = time.time()
        await asyncio.sleep(seconds)
        out["stop"] = time.time()
        elapsed, cpu1 = time.monotonic() - t0, os.times()
        rate = (await total_steps(http, url, ids) - steps0) / elapsed
        health = (await http.get(f"{url}/api/health", params={"lag_window": seconds})).json()
        await asyncio.gather(*tasks)
    return {
        "rate": rate,
        "lag": health["loop_lag_ms"],
        "seen": out,
        "dropped": health["stream"]["dropped"] - dropped0,
        "client_cpu": (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / elapsed,
        "kb_per_viewer_s": out["bytes"] / 1000 / max(viewers, 1) / elapsed,
    }


def start_runs(url: str, runs: int) -> list[dict[str, Any]]:
    created = [
        httpx.post(f"{url}/api/runs", json={"config": ARTICLE}, timeout=30).json()
        for _ in range(runs)
    ]
    deadline = time.monotonic() + 60
    while any(
        httpx.get(f"{url}/api/runs/{r['id']}").json()["status"] != "running" for r in created
    ):
        if time.monotonic() > deadline:
            raise SystemExit("runs did not start")
        time.sleep(0.05)
    time.sleep(1.0)  # past start-up
    return created


def stop_runs(url: str, created: list[dict[str, Any]]) -> None:
    for r in created:
        httpx.post(
            f"{url}/api/runs/{r['id']}/stop",
            headers={"Authorization": f"Bearer {r['owner_token']}"},
            timeout=30,
        )


def ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.0f}" if values else "-"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each window")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds viewers join before")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of windows per row")
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--viewers", type=int, nargs="+", default=[1, 20, 50])
    parser.add_argument("--executor", choices=("process", "thread"), default=None)
    args = parser.parse_args(argv)
    extra = ["--executor", args.executor] if args.executor else []
    with (
        tempfile.TemporaryDirectory() as tmp,
        server_process(str(Path(tmp) / "stream.db"), "--max-runs", str(max(args.runs)), *extra) as (
            url,
            process,
        ),
    ):
        executor = httpx.get(f"{url}/api/health").json()["executor"]
        print(
            f"stream load: server process, executor {executor}, {os.cpu_count()} cores; per "
            f"row a {args.seconds:.0f} s window with no viewer, then the viewers join (spread "
            f"over the same runs) and after {args.settle:.0f} s a {args.seconds:.0f} s window "
            f"is measured; ratio = with / without; per row the median of {args.rounds} such "
            "pairs (that round's figures shown); join = connect to snapshot"
        )
        print(
            f"{'runs':>4} {'viewers':>7} {'steps/s':>8} {'ratio':>6} {'lag p50':>8} {'p99':>5} "
            f"{'max':>5} {'deliv p50':>9} {'p99':>5} {'newest p50':>10} {'p99':>5} "
            f"{'records':>8} {'msgs':>6} {'thinned':>7} {'KB/s/viewer':>11} {'RSS MB':>7} "
            f"{'+runs':>6} {'loadgen CPU':>11} {'join p50':>8} {'max':>5}"
        )
        for runs in args.runs:
            created = start_runs(url, runs)
            ids = [r["id"] for r in created]
            for viewers in args.viewers:
                pairs = []
                for _ in range(args.rounds):
                    base = asyncio.run(measure(url, ids, 0, 0, args.seconds))
                    with_viewers = asyncio.run(
                        measure(url, ids, viewers, args.settle, args.seconds)
                    )
                    pairs.append((with_viewers["rate"] / base["rate"], with_viewers))
                # The round with the median ratio; its figures are shown whole.
                ratio, row = sorted(pairs, key=lambda pair: pair[0])[len(pairs) // 2]
                server_rss, workers_rss = family_rss(process.pid)
                lag, seen = row["lag"], row["seen"]
                print(
                    f"{runs:>4} {viewers:>7} {row['rate']:>8,.0f} "
                    f"{ratio:>6.2f} {lag['p50']:>8.1f} {lag['p99']:>5.1f} "
                    f"{lag['max']:>5.1f} {ms(seen['latency'], 0.5):>9} "
                    f"{ms(seen['latency'], 0.99):>5} {ms(seen['newest'], 0.5):>10} "
                    f"{ms(seen['newest'], 0.99):>5} {len(seen['latency']):>8,} "
                    f"{seen['messages']:>6,} {row['dropped']:>7,} "
                    f"{row['kb_per_viewer_s']:>11.0f} {server_rss / 1e6:>7.0f} "
                    f"{workers_rss / 1e6:>6.0f} {row['client_cpu']:>11.2f} "
                    f"{ms(seen['join'], 0.5):>8} {ms(seen['join'], 1.0):>5}",
                    flush=True,
                )
            stop_runs(url, created)
    print(
        "\ntargets: 20 viewers cost <= 10% of training speed (ratio >= 0.90); loop lag p99 "
        "< 20 ms with 2 runs; delivery p99 < 150 ms"
    )


if __name__ == "__main__":
    main()
