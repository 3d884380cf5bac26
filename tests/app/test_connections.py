"""Connections a real server meets: slow headers, one address's flood, a websocket that never
reads, and a 100k-record download in constant memory."""

from __future__ import annotations

import base64
import os
import socket
from pathlib import Path

import httpx

from app.settings import Settings
from support.live import live_server, rss_bytes, server_process
from support.load import peak_rss, stored_run
from support.waiting import wait_until


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes `sock` within `within` seconds (recv sees EOF or a reset)."""
    sock.settimeout(within)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_a_client_sending_headers_slowly_is_cut_off(tmp_path: Path) -> None:
    settings = Settings(db=str(tmp_path / "h.sqlite3"), header_timeout=1.0)
    with live_server(settings) as server:
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")  # and never the end
        assert _closed_by_server(slow, within=10)
        slow.close()
        # A client that finishes its headers is served, and may keep its connection.
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/api/health").status_code == 200
            assert client.get("/api/runs").status_code == 200


def test_one_address_may_hold_only_so_many_connections(tmp_path: Path) -> None:
    settings = Settings(db=str(tmp_path / "c.sqlite3"), max_connections_per_address=5)
    with live_server(settings) as server:
        held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(5)]
        extra = socket.create_connection(("127.0.0.1", server.port))
        assert _closed_by_server(extra, within=10)
        extra.close()
        for sock in held:
            sock.close()
        # The places come back when the connections close.
        wait_until(
            lambda: httpx.get(f"{server.url}/api/health").status_code == 200,
            30,
            "health to answer after the held connections close",
            every=0.01,
        )


def test_a_websocket_client_that_never_reads_is_dropped(tmp_path: Path) -> None:
    settings = Settings(
        db=str(tmp_path / "w.sqlite3"), ws_send_timeout=1.0, stream_rate=1000, executor="thread"
    )
    with live_server(settings) as server:
        config = {"dataset": "digits", "epochs": 400, "histogram_every": 1}
        created = httpx.post(f"{server.url}/api/runs", json={"config": config})
        run_id = created.json()["id"]
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET /ws/runs/{run_id} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        hub = server.app.state.hub
        wait_until(lambda: hub.stats()["clients"] == 1, 30, "the client to join", every=0.01)
        # It never reads: its buffers fill, a send waits past ws_send_timeout, it is dropped.
        wait_until(
            lambda: hub.stats()["clients"] == 0, 60, "the silent client to be dropped", every=0.01
        )
        sock.close()


def test_a_100k_record_csv_streams_in_bounded_memory(tmp_path: Path) -> None:
    db = tmp_path / "big.sqlite3"
    stored_run(db, 100_000)
    with server_process(str(db)) as (url, process):
        httpx.get(f"{url}/api/runs/big/metrics?max_points=100", timeout=120)  # warm up
        before = rss_bytes(process.pid)
        csv_url = f"{url}/api/runs/big/metrics?format=csv"
        with peak_rss(process.pid) as peak, httpx.stream("GET", csv_url, timeout=120) as r:
            assert r.status_code == 200
            lines = sum(1 for _ in r.iter_lines())
        assert lines == 100_001  # the header and every record
        grew = peak[0] - before
        assert grew <= 50 * 2**20, f"server memory grew by {grew / 2**20:.0f} MB"
        # Downsampling reads the same history and keeps only the current bucket.
        small = httpx.get(f"{url}/api/runs/big/metrics?max_points=200&fields=loss", timeout=120)
        assert small.status_code == 200 and len(small.json()["records"]) <= 200
