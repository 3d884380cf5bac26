"""Operator-facing figures: event-loop lag, the executor, and the store's streamed index."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.storage.store import Store
from app.web.looplag import LoopLagMonitor


def test_loop_lag_monitor_sees_a_blocked_loop() -> None:
    async def scenario() -> dict:
        monitor = LoopLagMonitor(interval=0.01, window=5.0)
        monitor.start()
        await asyncio.sleep(0.1)
        quiet = monitor.stats()
        time.sleep(0.2)  # blocks the loop, as CPU work in a handler would
        await asyncio.sleep(0.05)
        blocked = monitor.stats()
        await monitor.stop()
        return {"quiet": quiet, "blocked": blocked}

    result = asyncio.run(scenario())
    assert result["quiet"]["samples"] > 0
    assert result["blocked"]["max"] >= 150  # ms: the 200 ms block is seen
    assert result["blocked"]["samples"] > result["quiet"]["samples"]


def test_health_reports_loop_lag_and_executor(client: TestClient) -> None:
    time.sleep(0.1)
    health = client.get("/api/health").json()
    assert health["executor"] == "process"
    lag = health["loop_lag_ms"]
    assert lag["samples"] > 0 and lag["p50"] is not None and lag["max"] >= lag["p99"] >= 0


def test_streamed_records_are_read_through_their_own_index(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "i.sqlite3"))
    rows = [("r", step, int(step % 10 == 0), f'{{"step":{step}}}') for step in range(1, 501)]
    store.write_batch(rows, [])
    plans: list[str] = []
    store_connect = store._connect

    def traced() -> Any:
        conn = store_connect()
        conn.set_trace_callback(plans.append)
        return conn

    store._connect = traced  # type: ignore[method-assign]
    assert store.read_records("r", after=100, streamed_only=True) == [
        f'{{"step":{step}}}' for step in range(110, 501, 10)
    ]
    query = next(sql for sql in plans if sql.startswith("SELECT step, data"))
    plan = store._conn.execute("EXPLAIN QUERY PLAN " + query.replace("'r'", "?"), ("r",))
    assert any("records_streamed" in str(row) for row in plan.fetchall())
    store.close()
