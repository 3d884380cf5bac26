"""The recorder: stores every record a run makes and chooses which ones go live.

Training threads append to each run's outbox; one writer thread flushes all
outboxes at fixed-rate ticks. Each flush tells listeners first (the live
stream), then writes the batch to the store in one transaction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from app.execution.session import Entry
from app.runs.events import Event, MetricsEvent
from app.runs.run import Run
from app.runs.status import Control
from app.storage.store import Store, StoreError

#: A record as the store takes it: run id, step, streamed (0/1), encoded text.
Row = tuple[str, int, int, str]
#: A run row's changed columns.
Update = tuple[str, dict[str, Any]]

log = logging.getLogger("synthgrad.recorder")


class Recorder:
    def __init__(
        self,
        store: Store,
        runs: Callable[[], Iterable[Run]],
        emit: Callable[[Event], None],
        *,
        on_failure: Callable[[str, dict[str, int]], None] = lambda reason, lost: None,
        flush_interval: float,
        stream_rate: int,
    ) -> None:
        self.store = store
        self._runs = runs
        self._emit = emit
        self._on_failure = on_failure
        self.flush_interval = flush_interval
        self.stream_rate = stream_rate
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._writer = threading.Thread(
            target=self._write_loop, name="synthgrad-writer", daemon=True
        )

    def start(self) -> None:
        self._writer.start()

    def close(self) -> None:
        """Stop the writer and flush what is left."""
        self._closing.set()
        if self._writer.is_alive():
            self._writer.join(timeout=5)
        self.flush()

    def _write_loop(self) -> None:
        # Fixed-rate ticks (not "sleep after each flush"): live batches stay ~flush_interval
        # apart however long a flush takes, which bounds how late a record reaches viewers.
        interval = self.flush_interval
        next_tick = time.monotonic() + interval
        while not self._closing.wait(max(0.0, next_tick - time.monotonic())):
            next_tick = max(next_tick + interval, time.monotonic())
            try:
                self.flush()
            except Exception:  # a bug: keep the writer alive; the next flush retries
                log.exception("storing records failed; retrying at the next flush")
                time.sleep(interval)

    def flush(self) -> None:
        """Emit one metrics event per run, then store every pending record and update run rows.

        A failed write is reported after the lock is released: the report ends runs,
        which takes their locks, and a training thread may hold one while it waits here.
        """
        failure: tuple[str, dict[str, int]] | None = None
        with self._lock:
            rows, updates, events = self._take_pending(time.monotonic())
            # Viewers first, then the store: the write (~20 ms for ~1,000 records under
            # load) no longer delays the live stream. Replays stay exact: they read
            # through flush() first and so wait for this lock, i.e. for the write.
            # A crash between the two loses at most this batch.
            for event in events:
                self._emit(event)
            if rows or updates:
                try:
                    self.store.write_batch(rows, updates)
                except StoreError as exc:
                    # Never silent: the batch is gone (viewers saw it), so each run it
                    # belonged to is told from which step its records are missing.
                    lost: dict[str, int] = {}
                    for run_id, step, _, _ in rows:
                        lost[run_id] = min(step, lost.get(run_id, step))
                    failure = (str(exc), lost)
        if failure is not None:
            self._on_failure(*failure)

    def _take_pending(
        self, now: float
    ) -> tuple[
        list[tuple[str, int, int, str]], list[tuple[str, dict[str, Any]]], list[MetricsEvent]
    ]:
        """Every run's pending records as store rows, run-row updates and live events."""
        rows: list[tuple[str, int, int, str]] = []
        updates: list[tuple[str, dict[str, Any]]] = []
        events: list[MetricsEvent] = []
        for run in list(self._runs()):
            pending = len(run.outbox)
            if not pending or run.control is Control.DELETE:  # deleted: its records go
                continue
            batch = [run.outbox.popleft() for _ in range(pending)]
            streamed = sorted(self.choose_streamed(run, batch, now))
            live = set(streamed)
            rows.extend((run.id, e.step, int(i in live), e.text) for i, e in enumerate(batch))
            _summarize(run, batch)
            updates.append((run.id, {"step": batch[-1].step, "summary": run.summary}))
            texts, steps = [batch[i].text for i in streamed], [batch[i].step for i in streamed]
            events.append(MetricsEvent(run.id, texts, steps))
        return rows, updates, events

    def choose_streamed(self, run: Run, batch: list[Entry], now: float) -> set[int]:
        """Which records go live: all of them unless the run is faster than anyone can watch.

        Then evenly spaced ones at `stream_rate` per second, plus every landmark (a
        held-out evaluation, a knob change) and the last record. The choice is stored,
        so a reconnecting client gets exactly the live records it missed.
        """
        since = now - run.last_streamed_at if run.last_streamed_at else 1.0
        run.last_streamed_at = now
        allowed = max(1, int(self.stream_rate * min(since, 1.0)))
        n = len(batch)
        if n <= allowed:
            return set(range(n))
        stride = n / allowed
        chosen = {int(i * stride) for i in range(allowed)} | {n - 1}
        chosen |= {i for i, e in enumerate(batch) if e.landmark}
        return chosen


def _summarize(run: Run, batch: list[Entry]) -> None:
    """The run's latest loss and accuracy, and its latest held-out accuracy if the batch has one."""
    last = batch[-1]
    run.summary["loss"] = last.loss
    run.summary["accuracy"] = last.accuracy
    for e in reversed(batch):
        if e.test_accuracy is not None:
            run.summary["test_accuracy"] = e.test_accuracy
            break
