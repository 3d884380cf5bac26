"""Lecture-hall stream load: hundreds of lean viewers on one training run.

The server runs as its own process (`synthgrad serve`, default settings, a free
loopback port) and trains one run. The viewers live in a separate process (this
module with `--child`), one asyncio loop that only counts bytes and messages,
checks that each viewer's `seq` only grows, and notes how old the newest record
of each message is; it never builds a chart. Viewers are spread over loopback
addresses (127.0.0.2, .3, ...; at most 100 each), as phones on a lecture
hall's network have addresses of their own.

1. Bytes per viewer at the default view (the run page's first view: layer 1):
   one lean viewer beside one full-stream viewer, over one window.
2. For each number of viewers (default 100, 300, 500), `--rounds` times: a
   window with no viewer, then the viewers join (all at once), `--settle`
   seconds pass, and a window with them. The row is the round with the median
   steps/s ratio: training steps/s with viewers over without, the server
   process's CPU (cores) in both windows, the event-loop lag p99 (its
   /api/health monitor), delivery p50/p99 (from the end of a training step to a
   viewer reading the newest record of a message), the time from the first
   connect until every viewer had its snapshot, and the load generator's own
   CPU (on 2 cores it competes with what it measures, so the ratio is a lower
   bound).

Usage: python -m bench.stream [--seconds 5] [--settle 3] [--rounds 2] [--viewers 100 300 500]
       [--detail lean|full]  (full: the viewers take the full stream, as every viewer did
       before the lean one)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from bench.concurrency import ARTICLE
from support.live import descendants, server_process
from support.waiting import wait_until

#: What a viewer asks for: the run page's default view, or every record (as before the lean
#: stream, and as scripts still can).
QUERIES = {"lean": "?detail=lean&layer=1", "full": "?detail=full"}
#: Viewers per loopback address (the server caps connections per address at 256).
PER_ADDRESS = 100
TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (/proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def seq_of(text: str) -> int | None:
    at = text.find('"seq": ', 0, 80)
    if at < 0:
        return None
    digits = text[at + 7 : at + 27].split(",", 1)[0].strip("} ")
    return int(digits) if digits.isdigit() else None


# -- the viewers' process ------------------------------------------------------------------


class Tally:
    def __init__(self) -> None:
        self.counting = False
        self.messages = self.bytes = self.disorder = self.lost = 0
        self.arrivals: list[tuple[int, float]] = []  # (newest step of a message, unix time read)
        self.joins: list[float] = []
        self.snapshot_bytes: list[int] = []
        self.by_kind: dict[str, int] = {}


async def one_viewer(url: str, index: int, query: str, tally: Tally) -> None:
    address = f"127.0.0.{2 + index // PER_ADDRESS}"
    opened = time.time()
    last_seq = -1
    kind = "lean" if "detail=lean" in query else "full"
    try:
        async with connect(
            url + query,
            max_size=None,
            ping_interval=None,
            open_timeout=120,
            local_addr=(address, 0),
        ) as ws:
            async for raw in ws:
                now = time.time()
                text = raw if isinstance(raw, str) else raw.decode()
                if opened:
                    tally.joins.append(now - opened)  # the snapshot: joined
                    tally.snapshot_bytes.append(len(text))
                    opened = 0.0
                seq = seq_of(text)
                if seq is not None:
                    if seq < last_seq:
                        tally.disorder += 1
                    last_seq = max(last_seq, seq)
                if not tally.counting:
                    continue
                tally.messages += 1
                tally.bytes += len(text)
                tally.by_kind[kind] = tally.by_kind.get(kind, 0) + len(text)
                if seq is not None and not text.startswith('{"type": "snapshot"'):
                    tally.arrivals.append((seq, now))
    except Exception:  # a refused or dropped viewer is counted, not fatal
        tally.lost += 1


async def child(url: str, run_id: str, viewers: int, queries: list[str]) -> None:
    ws_url = url.replace("http://", "ws://") + f"/ws/runs/{run_id}"
    tally = Tally()
    started = time.time()
    tasks = [
        asyncio.create_task(one_viewer(ws_url, i, queries[i % len(queries)], tally))
        for i in range(viewers)
    ]
    while len(tally.joins) + tally.lost < viewers and time.time() - started < 120:
        await asyncio.sleep(0.05)
    report(
        {
            "joined": len(tally.joins),
            "lost": tally.lost,
            "all_joined_s": time.time() - started,
            "join_p50": percentile(tally.joins, 0.5),
            "snapshot_kb": percentile(tally.snapshot_bytes, 0.5) / 1000,
            "join_max": max(tally.joins, default=0),
        }
    )
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # "start"
    tally.counting, cpu0, t0 = True, os.times(), time.monotonic()
    await loop.run_in_executor(None, sys.stdin.readline)  # "stop"
    tally.counting, cpu, elapsed = False, os.times(), time.monotonic() - t0
    report(
        {
            "messages": tally.messages,
            "bytes": tally.bytes,
            "by_kind": tally.by_kind,
            "disorder": tally.disorder,
            "lost": tally.lost,
            "seconds": elapsed,
            "arrivals": tally.arrivals[:: max(1, len(tally.arrivals) // 20000)],
            "cpu": (cpu.user + cpu.system - cpu0.user - cpu0.system) / elapsed,
        }
    )
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def report(body: dict[str, Any]) -> None:
    print(json.dumps(body), flush=True)


# -- the measuring process -----------------------------------------------------------------


class Viewers:
    """The viewers' process: started, told when the window starts and stops, read."""

    def __init__(self, url: str, run_id: str, viewers: int, queries: list[str]):
        args = [
            sys.executable,
            "-m",
            "bench.stream",
            "--child",
            url,
            run_id,
            str(viewers),
            *queries,
        ]
        self.process = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit("the viewers' process ended early")
        return dict(json.loads(line))

    def tell(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def close(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)
        if self.process.poll() is None:
            self.process.kill()


def window(
    url: str, run_id: str, pid: int, seconds: float, viewers: Viewers | None
) -> dict[str, Any]:
    """One measured window: training steps/s, server CPU, loop lag, and the viewers' tally."""
    step = lambda: httpx.get(f"{url}/api/runs/{run_id}").json()["step"]  # noqa: E731
    if viewers:
        viewers.tell("start")
    steps0, t0, cpu0, train0 = step(), time.monotonic(), cpu_seconds(pid), training_cpu(pid)
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    rate, cpu = (step() - steps0) / elapsed, (cpu_seconds(pid) - cpu0) / elapsed
    train = (training_cpu(pid) - train0) / elapsed
    if viewers:
        viewers.tell("stop")
    lag = httpx.get(f"{url}/api/health", params={"lag_window": seconds}).json()["loop_lag_ms"]
    seen = viewers.read() if viewers else {}
    return {"rate": rate, "server_cpu": cpu, "train_cpu": train, "lag": lag, "seen": seen}


def training_cpu(pid: int) -> float:
    """CPU seconds so far of the server's descendants (the fork server and its training)."""
    total = 0.0
    for child in descendants(pid):
        with contextlib.suppress(OSError):
            total += cpu_seconds(child)
    return total


def start_run(url: str) -> str:
    """A long training run, running: its id."""
    run = httpx.post(f"{url}/api/runs", json={"config": ARTICLE}, timeout=30).json()
    wait_until(
        lambda: httpx.get(f"{url}/api/runs/{run['id']}").json()["status"] == "running",
        60,
        "the run to start",
    )
    time.sleep(1.0)  # past start-up
    return str(run["id"])


def delivery(url: str, run_id: str, arrivals: list[list[float]]) -> tuple[float, float]:
    """p50 and p99 (s) from a step's end (its stored unix_time) to a viewer reading it."""
    made: dict[int, float] = {}
    params = {"fields": "unix_time", "format": "csv"}
    with httpx.stream("GET", f"{url}/api/runs/{run_id}/metrics", params=params) as response:
        for line in response.iter_lines():
            step, _, unix_time = line.partition(",")
            if step.isdigit() and unix_time:
                made[int(step)] = float(unix_time)
    delays = [read - made[int(step)] for step, read in arrivals if int(step) in made]
    return percentile(delays, 0.5), percentile(delays, 0.99)


def per_viewer_bytes(url: str, run_id: str, pid: int, seconds: float) -> None:
    lean_query, full_query = "?detail=lean&layer=1", "?detail=full"
    viewers = Viewers(url, run_id, 2, [lean_query, full_query])
    viewers.read()
    time.sleep(1.0)
    row = window(url, run_id, pid, seconds, viewers)
    viewers.close()
    kinds, elapsed = row["seen"]["by_kind"], row["seen"]["seconds"]
    lean, full = kinds.get("lean", 0) / elapsed / 1000, kinds.get("full", 0) / elapsed / 1000
    print(
        f"bytes per viewer at the default view (layer 1), over {seconds:.0f} s: lean "
        f"{lean:.1f} KB/s, full stream {full:.1f} KB/s ({full / max(lean, 1e-9):.0f}x)"
    )


def viewer_rows(url: str, run_id: str, pid: int, args: argparse.Namespace) -> None:
    print(f"\nviewers taking the {args.detail} stream ({QUERIES[args.detail]})")
    print(
        f"{'viewers':>7} {'steps/s':>8} {'none':>7} {'ratio':>6} {'srv CPU':>8} {'none':>5} "
        f"{'train CPU':>9} {'none':>5} "
        f"{'lag p99':>8} {'none':>5} {'deliv p50':>9} {'p99':>5} {'KB/s/viewer':>11} "
        f"{'msgs/s/v':>8} "
        f"{'joined':>7} {'all in s':>8} {'join p50':>8} {'snap KB':>7} {'lost':>5} {'disorder':>8} "
        f"{'loadgen CPU':>11}"
    )
    for count in args.viewers:
        rounds = []
        for _ in range(args.rounds):
            base = window(url, run_id, pid, args.seconds, None)
            viewers = Viewers(url, run_id, count, [QUERIES[args.detail]])
            joined = viewers.read()
            time.sleep(args.settle)
            loaded = window(url, run_id, pid, args.seconds, viewers)
            viewers.close()
            rounds.append((loaded["rate"] / base["rate"], base, loaded, joined))
        ratio, base, loaded, joined = sorted(rounds, key=lambda r: r[0])[len(rounds) // 2]
        seen = loaded["seen"]
        per = max(count - seen["lost"], 1) * seen["seconds"]
        p50, p99 = delivery(url, run_id, seen["arrivals"])
        print(
            f"{count:>7} {loaded['rate']:>8,.0f} {base['rate']:>7,.0f} {ratio:>6.2f} "
            f"{loaded['server_cpu']:>8.2f} {base['server_cpu']:>5.2f} "
            f"{loaded['train_cpu']:>9.2f} {base['train_cpu']:>5.2f} "
            f"{loaded['lag']['p99']:>8.1f} {base['lag']['p99']:>5.0f} {p50 * 1000:>9.0f} "
            f"{p99 * 1000:>5.0f} {seen['bytes'] / 1000 / per:>11.1f} "
            f"{seen['messages'] / per:>8.1f} {joined['joined']:>7} "
            f"{joined['all_joined_s']:>8.1f} {joined['join_p50'] * 1000:>8.0f} "
            f"{joined['snapshot_kb']:>7.0f} "
            f"{seen['lost']:>5} {seen['disorder']:>8} {seen['cpu']:>11.2f}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each window")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after all joined")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of windows per row")
    parser.add_argument("--viewers", type=int, nargs="+", default=[100, 300, 500])
    parser.add_argument(
        "--detail", choices=tuple(QUERIES), default="lean", help="what the viewers ask for"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        url, run_id, viewers, *queries = args.child
        asyncio.run(child(url, run_id, int(viewers), queries))
        return
    with (
        tempfile.TemporaryDirectory() as tmp,
        server_process(str(Path(tmp) / "stream.db")) as (url, process),
    ):
        run_id = start_run(url)
        executor = httpx.get(f"{url}/api/health").json()["executor"]
        print(
            f"stream load: one run ({ARTICLE['hidden']} hidden, batch {ARTICLE['batch_size']}), "
            f"server process, executor {executor}, {os.cpu_count()} cores; viewers in a "
            f"separate process; load average {os.getloadavg()[0]:.2f} at the start"
        )
        per_viewer_bytes(url, run_id, process.pid, args.seconds)
        viewer_rows(url, run_id, process.pid, args)
        print(
            f"\nload average {os.getloadavg()[0]:.2f} at the end. ratio = steps/s with the "
            f"viewers / without (the window just before); srv CPU = the server process "
            f"(cores); train CPU = its training processes (cores); deliv = end of a step to a "
            f"viewer reading the newest record of a "
            f"message; all in = first connect to the last viewer's snapshot. Per row the "
            f"round of median ratio of {args.rounds}, each window {args.seconds:.0f} s."
        )
    print(
        "targets: lean <= 10 KB/s per viewer; 500 viewers at ratio >= 0.90, loop lag p99 "
        "< 50 ms, all joined within 10 s"
    )


if __name__ == "__main__":
    main()
