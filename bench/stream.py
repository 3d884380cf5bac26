"""Live-stream load: 1, 2 and 4 training runs watched by 1, 20 and 50 websocket viewers.

The server runs as its own process (`synthgrad serve`, default settings, a free
loopback port). The load generator opens the viewers in one asyncio loop of this
process (bounded: at most `max(--viewers)` sockets, each scenario `--seconds`
long, loopback only), spread round-robin over the runs, and reads every message.

Per scenario it reports:
- training steps/s (all runs together) as a ratio of the same runs with no viewer;
- the server's event-loop lag p50 / p99 / max (its /api/health monitor);
- delivery latency from the end of a training step (`unix_time` of the record)
  to a viewer parsing it, p50 / p99 over every streamed record every viewer got;
- records streamed, messages, and records thinned for slow clients;
- server memory (RSS of the server process and of its training processes);
- the load generator's own CPU (cores): on this 2-core machine it competes with
  the training it measures, so the steps/s ratio is a lower bound.

Usage: python -m bench.stream [--seconds 6] [--runs 1 2 4] [--viewers 1 20 50]
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
from tests.helpers import rss_bytes, server_process


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def family_rss(pid: int) -> tuple[int, int]:
    """RSS of the server process and the sum over its descendants (fork server, training)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    family, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        family |= frontier
    total = 0
    for child in family:
        with contextlib.suppress(OSError, RuntimeError):
            total += rss_bytes(child)
    return rss_bytes(pid), total


async def viewer(url: str, run_id: str, stop: float, out: dict[str, Any]) -> None:
    ws_url = url.replace("http://", "ws://") + f"/ws/runs/{run_id}"
    async with connect(ws_url, max_size=None) as ws:
        while (left := stop - time.time()) > 0:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=left)
            except TimeoutError:
                break
            now = time.time()
            message = json.loads(raw)
            out["messages"] += 1
            out["bytes"] += len(raw)
            if message["type"] == "metrics":
                for record in message["records"]:
                    out["latency"].append(now - record["unix_time"])


async def watch(url: str, run_ids: list[str], viewers: int, seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {"messages": 0, "bytes": 0, "latency": []}
    stop = time.time() + seconds
    tasks = [viewer(url, run_ids[i % len(run_ids)], stop, out) for i in range(viewers)]
    await asyncio.gather(*tasks)
    return out


def total_steps(url: str, run_ids: list[str]) -> int:
    return sum(httpx.get(f"{url}/api/runs/{r}", timeout=10).json()["step"] for r in run_ids)


def scenario(url: str, pid: int, runs: int, viewers: int, seconds: float) -> dict[str, Any]:
    created = [
        httpx.post(f"{url}/api/runs", json={"config": ARTICLE}, timeout=30).json()
        for _ in range(runs)
    ]
    ids = [r["id"] for r in created]
    deadline = time.monotonic() + 60
    while any(httpx.get(f"{url}/api/runs/{r}").json()["status"] != "running" for r in ids):
        if time.monotonic() > deadline:
            raise SystemExit("runs did not start")
        time.sleep(0.05)
    time.sleep(1.0)  # past start-up
    before_health = httpx.get(f"{url}/api/health").json()
    steps0, t0 = total_steps(url, ids), time.monotonic()
    cpu0 = os.times()
    if viewers:
        seen = asyncio.run(watch(url, ids, viewers, seconds))
    else:
        time.sleep(seconds)
        seen = {"messages": 0, "bytes": 0, "latency": []}
    elapsed = time.monotonic() - t0
    cpu1 = os.times()
    rate = (total_steps(url, ids) - steps0) / elapsed
    client_cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / elapsed
    health = httpx.get(f"{url}/api/health").json()
    server_rss, workers_rss = family_rss(pid)
    for r in created:
        httpx.post(
            f"{url}/api/runs/{r['id']}/stop",
            headers={"Authorization": f"Bearer {r['owner_token']}"},
            timeout=30,
        )
    lat = seen["latency"]
    return {
        "rate": rate,
        "lag": health["loop_lag_ms"],
        "lat50": percentile(lat, 0.5) * 1000 if lat else None,
        "lat99": percentile(lat, 0.99) * 1000 if lat else None,
        "records": len(lat),
        "messages": seen["messages"],
        "client_cpu": client_cpu,
        "kb_per_viewer_s": seen["bytes"] / 1000 / max(viewers, 1) / seconds,
        "dropped": health["stream"]["dropped"] - before_health["stream"]["dropped"],
        "rss": server_rss / 1e6,
        "workers_rss": workers_rss / 1e6,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0)
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
            f"stream load: server process, executor {executor}, {os.cpu_count()} cores, "
            f"{args.seconds:.0f} s per scenario; viewers spread over the runs"
        )
        print(
            f"{'runs':>4} {'viewers':>7} {'steps/s':>8} {'ratio':>6} {'lag p50':>8} "
            f"{'p99':>6} {'max':>6} {'deliv p50':>9} {'p99':>6} {'records':>8} {'msgs':>6} "
            f"{'thinned':>7} {'KB/s/viewer':>11} {'RSS MB':>7} {'+runs':>6} {'loadgen CPU':>11}"
        )
        for runs in args.runs:
            base = scenario(url, process.pid, runs, 0, args.seconds)
            for viewers in [0, *args.viewers]:
                row = (
                    base
                    if viewers == 0
                    else scenario(url, process.pid, runs, viewers, args.seconds)
                )
                lag, ratio = row["lag"], row["rate"] / base["rate"]
                fmt = lambda v, w: f"{v:>{w}.1f}" if v is not None else f"{'-':>{w}}"  # noqa: E731
                print(
                    f"{runs:>4} {viewers:>7} {row['rate']:>8,.0f} {ratio:>6.2f} "
                    f"{fmt(lag['p50'], 8)} {fmt(lag['p99'], 6)} {fmt(lag['max'], 6)} "
                    f"{fmt(row['lat50'], 9)} {fmt(row['lat99'], 6)} {row['records']:>8,} "
                    f"{row['messages']:>6,} {row['dropped']:>7,} {row['kb_per_viewer_s']:>11.0f} "
                    f"{row['rss']:>7.0f} "
                    f"{row['workers_rss']:>6.0f} {row['client_cpu']:>11.2f}",
                    flush=True,
                )
    print(
        "\ntargets: 20 viewers cost <= 10% of training speed (ratio >= 0.90); loop lag p99 "
        "< 20 ms with 2 runs; delivery p99 < 150 ms"
    )


if __name__ == "__main__":
    main()
