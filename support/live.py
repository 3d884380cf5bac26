"""Live servers for tests, benchmarks and scripts: uvicorn in a thread or a process; strict JSON."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from app.main import create_app
from app.server import uvicorn_config
from app.settings import Settings
from support.waiting import wait_until


@dataclass
class LiveServer:
    app: FastAPI
    url: str
    port: int


@contextlib.contextmanager
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """Serve a fresh app on 127.0.0.1 (a socket bound to port 0 first) until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(settings)
    config = uvicorn_config(app, settings, log_level="warning", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()

    def started() -> bool:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start: its thread ended")
        return bool(server.started)

    wait_until(started, 15, "uvicorn to start", every=0.02)
    try:
        yield LiveServer(app, f"http://127.0.0.1:{port}", port)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@contextlib.contextmanager
def server_process(
    db: str,
    *extra: str,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    log: Path | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`synthgrad serve` as a real subprocess on a free port; yields its URL and the process.

    `cwd` outside the source tree (with the package on PYTHONPATH) serves an installed copy;
    `log` is a file that gets the server's output (else it is discarded).
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    output = log.open("wb") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--db", db, *extra],
        stdout=output,
        stderr=output,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"synthgrad serve exited with {process.returncode}")
            try:
                return httpx.get(f"{url}/api/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 30, "synthgrad serve to answer /api/health")
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if log is not None:
            output.close()  # type: ignore[union-attr]


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children, their children, ...), from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    family: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        family |= frontier
    return family


def rss_bytes(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def strict_json(text: str) -> Any:
    """json.loads that refuses NaN / Infinity tokens, as a browser's JSON.parse does."""

    def refuse(token: str) -> Any:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)
