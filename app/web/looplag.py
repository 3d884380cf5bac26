"""Event-loop lag: how late the server's asyncio loop wakes a task that asked to sleep.

A loop blocked by CPU work (or by the GIL held in another thread) delays every
websocket send and every request; /api/health reports this lag over the last
`window` seconds for operators and for bench/stream.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections import deque


class LoopLagMonitor:
    def __init__(self, interval: float = 0.02, window: float = 10.0) -> None:
        self.interval = interval
        self.window = window
        self._samples: deque[tuple[float, float]] = deque(maxlen=int(window / interval) * 2)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            now = time.perf_counter()
            self._samples.append((now, now - before - self.interval))

    def stats(self, window: float | None = None) -> dict[str, float | int | None]:
        """p50, p99 and max lag in ms over the last `window` seconds (default: all kept)."""
        since = time.perf_counter() - min(window or self.window, self.window)
        lags = sorted(lag for at, lag in list(self._samples) if at >= since)
        if not lags:
            return {"samples": 0, "p50": None, "p99": None, "max": None}
        p99 = lags[min(len(lags) - 1, round(0.99 * (len(lags) - 1)))]
        return {
            "samples": len(lags),
            "p50": round(statistics.median(lags) * 1000, 2),
            "p99": round(p99 * 1000, 2),
            "max": round(lags[-1] * 1000, 2),
        }
