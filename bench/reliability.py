"""Load and fault figures of the server (docs/reliability.md), measured on this machine.

Each part starts its own `synthgrad serve` (a real process, default settings but
for what the part names) or store, on a temporary folder:

- budget: the largest config the default budget accepts among a family of wide
  nets, its estimate and its training process's measured peak RSS;
- flood: 300 anonymous creations from one address as fast as they go;
- csv: a 100k-record run's full CSV: time to first byte, total, server RSS growth;
- storage: bytes per record on disk (the article's net, default diagnostics), and
  the longest time one delete chunk holds the store's write lock (a 100k-record run);
- controls: pause and stop latency over HTTP while a step takes ~minutes;
- sigterm: time from SIGTERM to exit with that run training;
- slowloris: 400 connections that never finish their headers, then a health check;
- slow client: training steps/s with a websocket client that never reads, as a
  ratio of the same window without it (the figure a test once asserted);
- batch: a batch of seeds' measured peak RSS against its estimate (the sum of its
  seeds'), and the largest batch the default budget lets one job train;
- visitor: one anonymous visitor's worst case against the default shares: 64-seed
  sweeps from one address, each as a new owner, until refused; the runs, unfinished
  runs, training slots and server fds it holds; a second address's creation and
  health, and the admin's creation, meanwhile;
- fds: the server's open file descriptors while one address holds its share of
  finished single-seed runs, and after it deletes them.

Usage: python -m bench.reliability [--parts budget flood csv storage controls sigterm
slowloris slowclient batch visitor fds]
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from app.runs.quotas import seeds_per_batch
from app.settings import Settings
from app.storage.store import Store
from support.live import descendants, rss_bytes, server_process
from support.load import peak_rss, stored_run, training_peak_rss
from support.waiting import wait_until
from synthgrad_core import TrainConfig, Trainer, dumps
from synthgrad_core.cost import estimate, estimate_batch

PARTS = (
    "budget",
    "flood",
    "csv",
    "storage",
    "controls",
    "sigterm",
    "slowloris",
    "slowclient",
    "batch",
    "visitor",
    "fds",
)
#: A step of this net takes seconds on one core: a "slow step" for controls and SIGTERM.
SLOW = {"dataset": "digits", "hidden": [4096, 4096], "batch_size": 1024, "epochs": 100}
SLOW_ENV = {"SYNTHGRAD_MAX_RUN_MEMORY": str(8 * 2**30), "SYNTHGRAD_SHUTDOWN_TIMEOUT": "3"}


def mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def budget(_: Path) -> None:
    limit = 2**30
    accepted = None
    for width in (512, 1024, 1536, 2048, 3072, 4096):
        for method in ("backprop", "cdni"):
            config: dict[str, Any] = {
                "dataset": "digits",
                "method": method,
                "hidden": [width, width],
                "batch_size": 1024,
                "optimizer": "adam",
                "sg_hidden": width if method == "cdni" else 0,
            }
            cost = estimate(TrainConfig.from_dict(config).resolve())
            if cost.memory_bytes <= limit:
                accepted = (config, cost.memory_bytes)
    assert accepted is not None
    config, estimated = accepted
    measured = training_peak_rss(config, steps=2)
    print(
        f"budget: largest accepted of the family: {config['method']} {config['hidden']} "
        f"batch 1024 adam: estimate {mib(estimated)}, measured peak RSS {mib(measured)} "
        f"(ratio {measured / estimated:.2f}); limit {mib(limit)}"
    )


def flood(folder: Path) -> None:
    with server_process(str(folder / "flood.sqlite3")) as (url, _):
        config = {"dataset": "addition", "bits": 4, "examples": 40, "hidden": [8], "epochs": 1}
        codes: list[int] = []
        started = time.monotonic()
        with httpx.Client(timeout=30) as client:
            for _ in range(300):
                client.cookies.clear()  # each an anonymous visitor
                codes.append(client.post(f"{url}/api/runs", json={"config": config}).status_code)
        took = time.monotonic() - started
        retry = httpx.post(f"{url}/api/runs", json={"config": config}).headers.get("retry-after")
        health = httpx.get(f"{url}/api/health").status_code
    print(
        f"flood: 300 anonymous POSTs from one address in {took:.1f} s: "
        f"{codes.count(201)} created, {codes.count(429)} x 429 (Retry-After {retry} s), "
        f"other {len(codes) - codes.count(201) - codes.count(429)}; health {health}"
    )


def csv_export(folder: Path) -> None:
    db = folder / "csv.sqlite3"
    stored_run(db, 100_000)
    with server_process(str(db)) as (url, process):
        httpx.get(f"{url}/api/runs/big/metrics?max_points=100", timeout=300)
        before = rss_bytes(process.pid)
        with peak_rss(process.pid) as peak:
            started = time.monotonic()
            first = None
            size = 0
            with httpx.stream("GET", f"{url}/api/runs/big/metrics?format=csv", timeout=300) as r:
                for chunk in r.iter_bytes():
                    first = first or time.monotonic() - started
                    size += len(chunk)
            total = time.monotonic() - started
            started = time.monotonic()
            httpx.get(f"{url}/api/runs/big/metrics?max_points=2", timeout=300)
            tiny = time.monotonic() - started
            started = time.monotonic()
            httpx.get(f"{url}/api/runs/big/metrics?max_points=500&fields=loss", timeout=300)
            loss_only = time.monotonic() - started
    print(
        f"csv: 100k records, {size / 2**20:.0f} MiB of CSV: first byte {first:.2f} s, "
        f"all {total:.1f} s, server RSS +{mib(peak[0] - before)}; max_points=2 {tiny:.1f} s, "
        f"max_points=500 of loss {loss_only:.1f} s"
    )


def storage(folder: Path) -> None:
    cfg = TrainConfig(dataset="addition", method="dni", epochs=5)
    trainer = Trainer(cfg)
    texts = []
    while not trainer.done:
        texts.append(dumps(trainer.step()))
    store = Store(str(folder / "bytes.sqlite3"))
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    empty = Path(store.path).stat().st_size
    for start in range(0, len(texts), 100):
        chunk = texts[start : start + 100]
        store.write_batch([("r", start + i + 1, 1, t) for i, t in enumerate(chunk)], [])
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    per = (Path(store.path).stat().st_size - empty) / len(texts)
    json_size = statistics.mean(len(t) for t in texts)
    store.close()
    db = folder / "delete.sqlite3"
    stored_run(db, 100_000)
    store = Store(str(db))
    full = store.file_bytes()
    store.delete_run("big")
    holds = []
    while True:
        started = time.perf_counter()
        done = store.purge()
        holds.append(time.perf_counter() - started)
        if not done:
            break
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    after = Path(store.path).stat().st_size
    store.close()
    print(
        f"storage: {per:.0f} bytes per record on disk (JSON {json_size:.0f} bytes; the first "
        f"schema's JSON text: 4,720); deleting a 100k-record run: {len(holds)} chunks, "
        f"longest write-lock hold "
        f"{max(holds) * 1000:.0f} ms, median {statistics.median(holds) * 1000:.0f} ms; "
        f"file {mib(full)} -> {mib(after)}"
    )


def _slow_run(url: str) -> tuple[str, str]:
    created = httpx.post(f"{url}/api/runs", json={"config": SLOW}, timeout=60).json()
    wait_until(
        lambda: httpx.get(f"{url}/api/runs/{created['id']}").json()["status"] == "running",
        120,
        "the slow run to start",
        every=0.1,
    )
    time.sleep(1.0)  # inside a step now
    return created["id"], created["owner_token"]


def controls(folder: Path) -> None:
    with server_process(str(folder / "controls.sqlite3"), env=SLOW_ENV) as (url, _):
        run_id, token = _slow_run(url)
        auth = {"Authorization": f"Bearer {token}"}
        times = {}
        for action in ("pause", "stop"):
            started = time.monotonic()
            answer = httpx.post(f"{url}/api/runs/{run_id}/{action}", headers=auth, timeout=60)
            times[action] = (time.monotonic() - started, answer.json().get("requested"))
        started = time.monotonic()
        wait_until(
            lambda: httpx.get(f"{url}/api/runs/{run_id}").json()["status"] == "stopped",
            600,
            "the stopped run to end",
        )
        ended = time.monotonic() - started
    print(
        "controls (a step of seconds): "
        + ", ".join(
            f"{a} answered in {t * 1000:.0f} ms (requested {r})" for a, (t, r) in times.items()
        )
        + f"; stopped {ended:.1f} s after the stop answer (kill_grace 2 s)"
    )


def sigterm(folder: Path) -> None:
    with server_process(str(folder / "term.sqlite3"), env=SLOW_ENV) as (url, process):
        _slow_run(url)
        children = descendants(process.pid)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
        took = time.monotonic() - started
    time.sleep(3)
    left = [
        Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:80].decode()
        for pid in children
        if Path(f"/proc/{pid}").exists()
    ]
    print(f"sigterm: exited {took:.1f} s after SIGTERM (bound: 3 + 2 s); processes left: {left}")


def slowloris(folder: Path) -> None:
    # Bound to every address, so a health check can come from another one (127.0.0.2).
    with server_process(str(folder / "loris.sqlite3"), "--host", "0.0.0.0") as (url, _):
        port = int(url.rsplit(":", 1)[1])
        socks = []
        for _ in range(400):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
            socks.append(sock)
        time.sleep(1)
        refused = sum(1 for s in socks if _closed(s, 0.01))
        started = time.monotonic()
        try:
            # From 127.0.0.2: left to itself the kernel would send from 127.0.0.1.
            transport = httpx.HTTPTransport(local_address="127.0.0.2")
            with httpx.Client(transport=transport, timeout=5) as client:
                other = client.get(f"{url}/api/health")
            during = f"{other.status_code} in {(time.monotonic() - started) * 1000:.0f} ms"
        except httpx.HTTPError as exc:
            during = type(exc).__name__
        time.sleep(11)
        cut = sum(1 for s in socks if _closed(s, 0.01))
        for s in socks:
            s.close()
        after = httpx.get(f"{url}/api/health", timeout=5).status_code
    print(
        f"slowloris: 400 partial-header connections from one address: {refused} closed at "
        f"once (cap 256), {cut} closed after the 10 s header deadline; health from another "
        f"address meanwhile: {during}; afterwards: {after}"
    )


def _closed(sock: socket.socket, wait: float) -> bool:
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def slow_client(folder: Path) -> None:
    with server_process(str(folder / "client.sqlite3")) as (url, _):
        config = {"dataset": "digits", "epochs": 2000}
        run_id = httpx.post(f"{url}/api/runs", json={"config": config}).json()["id"]
        time.sleep(2)

        def rate(seconds: float) -> float:
            first = httpx.get(f"{url}/api/runs/{run_id}").json()["step"]
            time.sleep(seconds)
            return (httpx.get(f"{url}/api/runs/{run_id}").json()["step"] - first) / seconds

        ratios = []
        for _ in range(3):
            without = rate(4)
            port = int(url.rsplit(":", 1)[1])
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", port))
            key = base64.b64encode(os.urandom(16)).decode()
            sock.sendall(
                (
                    f"GET /ws/runs/{run_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
            )
            ratios.append(rate(4) / without)
            sock.close()
    print(
        "slow client: steps/s with a never-reading websocket / without, 3 windows of 4 s: "
        + ", ".join(f"{r:.2f}" for r in ratios)
        + f" (median {statistics.median(ratios):.2f})"
    )


#: The widest net of the batch part: one run ~87 MiB by the estimate.
WIDE = {
    "dataset": "digits",
    "method": "cdni",
    "hidden": [512, 512],
    "batch_size": 256,
    "optimizer": "adam",
}


def batch(_: Path) -> None:
    for config in ({"dataset": "digits", "method": "dni"}, WIDE):
        cfg = TrainConfig.from_dict(config).resolve()
        cells = []
        for seeds in (1, 8, 16, 32):
            estimated = estimate_batch(cfg, seeds).memory_bytes
            measured = training_peak_rss(config, steps=3, seeds=seeds)
            cells.append(
                f"{seeds} seeds {mib(measured)} (estimate {mib(estimated)}, "
                f"ratio {measured / estimated:.2f})"
            )
        print(f"batch: {config}: peak RSS " + "; ".join(cells))
    settings = Settings()
    cfg = TrainConfig.from_dict(WIDE).resolve()
    most = seeds_per_batch(cfg, settings)
    measured = training_peak_rss(WIDE, steps=3, seeds=most)
    print(
        f"batch: the default budget ({mib(settings.max_run_memory)}) trains at most {most} "
        f"seeds of the wide config in one job: estimate "
        f"{mib(estimate_batch(cfg, most).memory_bytes)}, measured peak RSS {mib(measured)}; "
        f"64 seeds would be estimated {mib(estimate_batch(cfg, 64).memory_bytes)}"
    )


def _fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def visitor(folder: Path) -> None:
    admin = "bench-admin-token"
    env = {"SYNTHGRAD_ADMIN_TOKEN": admin, "SYNTHGRAD_MAX_RUNS": "2"}
    config = {"dataset": "addition", "bits": 4, "examples": 40, "hidden": [8], "epochs": 1}
    long = {"dataset": "digits", "epochs": 2000}
    with server_process(str(folder / "visitor.sqlite3"), env=env) as (url, process):
        fds_before = _fds(process.pid)
        codes: list[int] = []
        details: set[str] = set()
        mine: set[str] = set()
        started = time.monotonic()
        with httpx.Client(timeout=60) as hostile:
            # Sweeps until the stored-run share refuses (waiting out the unfinished share).
            while len(codes) < 100 and all("unfinished" in d for d in details):
                hostile.cookies.clear()  # each request a new owner
                body = {"config": config, "grid": {"seed": list(range(1, 65))}}
                answer = hostile.post(f"{url}/api/sweeps", json=body)
                codes.append(answer.status_code)
                if answer.status_code == 201:
                    mine |= {run["id"] for run in answer.json()["runs"]}
                else:
                    details.add(answer.json()["detail"].split(";")[0])
                    time.sleep(1.0)
            for _ in range(3):  # and long runs, to hold slots
                hostile.cookies.clear()
                answer = hostile.post(f"{url}/api/runs", json={"config": long})
                codes.append(answer.status_code)
                mine |= {answer.json()["id"]} if answer.status_code == 201 else set()
            took = time.monotonic() - started
            time.sleep(2)
            held = [r for r in hostile.get(f"{url}/api/runs").json() if r["id"] in mine]
        unfinished = sum(1 for r in held if r["status"] in ("queued", "running", "paused"))
        running = sum(1 for r in held if r["status"] == "running")
        fds_during = _fds(process.pid)
        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2")) as other:
            t0 = time.monotonic()
            created = other.post(f"{url}/api/runs", json={"config": config}, timeout=1.0)
            create_ms = (time.monotonic() - t0) * 1000
            t0 = time.monotonic()
            health = other.get(f"{url}/api/health", timeout=1.0).status_code
            health_ms = (time.monotonic() - t0) * 1000
        auth = {"Authorization": f"Bearer {admin}"}
        by_admin = httpx.post(f"{url}/api/runs", json={"config": config}, headers=auth).status_code
    print(
        f"visitor: {len(codes)} requests from one address in {took:.1f} s (sweeps of 64 seeds "
        f"until refused for good, then 3 long runs, each a new owner): {codes.count(201)} x 201, "
        f"{codes.count(429)} x 429 ({' | '.join(sorted(details))}); it holds {len(held)} "
        f"stored runs, {unfinished} unfinished, {running} of 2 training slots; server fds "
        f"{fds_before} -> {fds_during}; another address meanwhile: create "
        f"{created.status_code} in {create_ms:.0f} ms, health {health} in {health_ms:.0f} ms; "
        f"the admin: {by_admin}"
    )


def fds(folder: Path) -> None:
    config = {"dataset": "addition", "bits": 4, "examples": 40, "hidden": [8], "epochs": 1}
    with server_process(str(folder / "fds.sqlite3")) as (url, process):
        before = _fds(process.pid)
        tokens: list[str] = []
        with httpx.Client(timeout=60) as hostile:
            while True:  # every seed its own run, each sweep a new owner, until refused
                hostile.cookies.clear()
                grid = {"seed": list(range(1, 65))}
                body = {"config": config, "grid": grid, "batch_seeds": False}
                answer = hostile.post(f"{url}/api/sweeps", json=body)
                if answer.status_code != 201:
                    if "unfinished" in answer.text:
                        time.sleep(1.0)
                        continue
                    break
                tokens.append(answer.json()["owner_token"])
            started = time.monotonic()
            wait_until(
                lambda: (
                    not any(
                        r["status"] in ("queued", "running")
                        for r in hostile.get(f"{url}/api/runs").json()
                    )
                ),
                3600,
                "every run to end",
                every=0.5,
            )
            stored = len(hostile.get(f"{url}/api/runs").json())
            trained = time.monotonic() - started
            finished = _fds(process.pid)
            for sweep in hostile.get(f"{url}/api/sweeps").json():
                for token in tokens:  # the sweep's owner's
                    auth = {"Authorization": f"Bearer {token}"}
                    if hostile.delete(f"{url}/api/sweeps/{sweep['id']}", headers=auth).is_success:
                        break
            time.sleep(1)
            deleted = _fds(process.pid)
    print(
        f"fds: one address's {stored} finished single-seed runs (its stored share, trained "
        f"in {trained:.0f} s): server fds {before} -> {finished}; after deleting them "
        f"{deleted}"
    )


RUNNERS = {
    "budget": budget,
    "flood": flood,
    "csv": csv_export,
    "storage": storage,
    "controls": controls,
    "sigterm": sigterm,
    "slowloris": slowloris,
    "slowclient": slow_client,
    "batch": batch,
    "visitor": visitor,
    "fds": fds,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for part in args.parts:
            RUNNERS[part](Path(tmp))


if __name__ == "__main__":
    main()
