"""Websocket streaming: a bounded buffer and a sender per client, fed by the manager's threads.

The manager's threads hand events to the event loop through one
`call_soon_threadsafe` per flush (not per record). Each client keeps its own
pending records; a client that cannot keep up has its backlog thinned (the
next message says `gap: true`) and never slows the training, the loop or
other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from app.runs.events import DeletedEvent, Event, MetricsEvent, StatusEvent
from app.runs.manager import RunManager
from app.runs.status import RunNotFound, RunStatus
from app.storage.metrics import HEADLINE_KEYS, downsample
from app.web.lean import InvalidView
from app.web.lean_stream import LeanHub
from app.web.messages import CloseCode, Metrics, Snapshot, Status

#: Most records a snapshot carries (older history is min/max downsampled to this).
SNAPSHOT_POINTS = 1000
#: Most missed records a reconnect replays before it gets a fresh snapshot instead.
REPLAY_LIMIT = 5000
#: Seconds a built snapshot history is shared by clients that join meanwhile.
SNAPSHOT_TTL = 5.0

log = logging.getLogger("synthgrad.stream")


class Client:
    """One websocket's pending records and status events."""

    def __init__(self, max_pending: int) -> None:
        self.records: list[str] = []
        self.steps: list[int] = []
        self.statuses: list[StatusEvent | DeletedEvent] = []
        self.gap = False
        self.max_pending = max_pending
        self.wake = asyncio.Event()
        self.dropped = 0

    def offer(self, event: Event) -> None:
        if isinstance(event, MetricsEvent):
            self.records.extend(event.records)
            self.steps.extend(event.steps)
            if len(self.records) > self.max_pending:
                # Thin the backlog to half, evenly: this client loses intermediate points only.
                keep = range(0, len(self.records), 2)
                self.dropped += len(self.records) - len(keep)
                self.records = [self.records[i] for i in keep]
                self.steps = [self.steps[i] for i in keep]
                self.gap = True
        else:
            self.statuses.append(event)
        self.wake.set()


class StreamHub:
    """Routes manager events to the websocket clients following each run."""

    def __init__(
        self,
        manager: RunManager,
        loop: asyncio.AbstractEventLoop,
        interval: float,
        max_pending: int,
        send_timeout: float = 30.0,
    ) -> None:
        """`interval` is the recorder's flush interval, which paces live batches."""
        self.manager = manager
        self.loop = loop
        self.interval = interval
        self.max_pending = max_pending
        self.send_timeout = send_timeout
        self.clients: dict[str, set[Client]] = {}
        self.dropped_by_departed = 0
        #: run id -> (built at, seq, downsampled, history JSON): see _snapshot
        self._histories: dict[str, tuple[float, int, bool, str]] = {}
        self._snapshot_lock = threading.Lock()
        self.lean = LeanHub(manager, self._send)
        manager.events.add_listener(self._from_thread)

    def close(self) -> None:
        self.manager.events.remove_listener(self._from_thread)
        self.lean.close()

    def stats(self) -> dict[str, int]:
        """Clients connected, the largest backlog any holds, and records thinned so far."""
        clients = [c for group in self.clients.values() for c in group]
        return {
            "clients": len(clients),
            "largest_backlog": max((len(c.records) for c in clients), default=0),
            "backlog_limit": self.max_pending,
            "dropped": sum(c.dropped for c in clients) + self.dropped_by_departed,
            "lean_clients": self.lean.clients(),
            "lean_frames_dropped": self.lean.frames_dropped,
        }

    async def _send(self, websocket: WebSocket, text: str) -> None:
        """Send, or raise TimeoutError when the client has not read for send_timeout seconds."""
        await asyncio.wait_for(websocket.send_text(text), self.send_timeout)

    def _from_thread(self, event: Event) -> None:
        # A closed loop means shutting down: nobody is left to tell.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._dispatch, event)

    def _dispatch(self, event: Event) -> None:
        for client in self.clients.get(event.run_id, ()):
            client.offer(event)
        self.lean.dispatch(event)

    async def serve_lean(
        self, websocket: WebSocket, run_id: str, layer: int | None, fields: str | None
    ) -> None:
        """Stream one run's lean view (docs/api.md, "Lean stream") to an accepted websocket."""
        try:
            wanted = self.lean.resolve(run_id, layer, fields)
        except RunNotFound:
            await websocket.close(code=CloseCode.NO_SUCH_RUN, reason="no such run")
            return
        except InvalidView as exc:
            await websocket.close(code=CloseCode.INVALID_VIEW, reason=str(exc)[:120])
            return
        watcher = asyncio.create_task(_watch_disconnect(websocket))
        try:
            await self.lean.serve(websocket, run_id, wanted, watcher)
        finally:
            watcher.cancel()

    async def serve(self, websocket: WebSocket, run_id: str, after: int | None) -> None:
        """Stream one run to an accepted websocket until the run ends or the client leaves."""
        try:
            run = self.manager.get(run_id)
        except RunNotFound:
            await websocket.close(code=CloseCode.NO_SUCH_RUN, reason="no such run")
            return
        client = Client(self.max_pending)
        self.clients.setdefault(run_id, set()).add(client)
        watcher = asyncio.create_task(_watch_disconnect(websocket))
        try:
            last_step = await self._send_start(websocket, run_id, after)
            if run.status.terminal:
                await self._finish(websocket, run_id)
                return
            last_send = 0.0
            while True:
                woken = asyncio.create_task(client.wake.wait())
                await asyncio.wait({woken, watcher}, return_when=asyncio.FIRST_COMPLETED)
                if watcher.done():
                    woken.cancel()
                    return
                client.wake.clear()
                # The writer's ticks pace messages (~10 a second). This guard only merges
                # bursts: it is half the interval, because a full-interval wait measured
                # from the end of the last send locks onto the ticks' phase and delays
                # every later message by the same amount (measured: +43 ms per record).
                wait = self.interval / 2 - (time.monotonic() - last_send)
                if wait > 0:
                    await asyncio.sleep(wait)
                sent, last_step = await self._send_fresh(websocket, client, last_step)
                if sent:
                    last_send = time.monotonic()
                if await self._send_statuses(websocket, client):
                    return
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away; nothing to clean but our own registration
        except TimeoutError:
            # It does not read: its backlog has been full for send_timeout seconds.
            log.info("dropping a websocket client of run %s that stopped reading", run_id)
        finally:
            watcher.cancel()
            self.clients.get(run_id, set()).discard(client)
            self.dropped_by_departed += client.dropped

    async def _send_fresh(
        self, websocket: WebSocket, client: Client, last_step: int
    ) -> tuple[bool, int]:
        """Send the client's pending records after `last_step`: whether any were sent, and
        the last step sent."""
        fresh = [(s, r) for s, r in zip(client.steps, client.records, strict=True) if s > last_step]
        client.records, client.steps = [], []
        if not fresh:
            return False, last_step
        last_step = fresh[-1][0]
        message = Metrics(last_step, [r for _, r in fresh], gap=client.gap)
        await self._send(websocket, message.encode())
        client.gap = False
        return True, last_step

    async def _send_statuses(self, websocket: WebSocket, client: Client) -> bool:
        """Send the client's pending status events; True when the stream has ended."""
        statuses, client.statuses = client.statuses, []
        for event in statuses:
            if isinstance(event, DeletedEvent):
                await self._send(websocket, Status("deleted", None).encode())
                await websocket.close(code=CloseCode.NORMAL, reason="run deleted")
                return True
            extra = {"error": event.error, "diverged_at": event.diverged_at}
            extra["parked"] = event.parked or None
            await self._send(websocket, Status(event.status, event.step, extra).encode())
            if RunStatus(event.status).terminal:
                await websocket.close(code=CloseCode.NORMAL)
                return True
        return False

    async def _send_start(self, websocket: WebSocket, run_id: str, after: int | None) -> int:
        """Send the snapshot (or, with `after`, the missed records); returns the last step sent."""
        run = self.manager.get(run_id)
        if after is not None:
            texts = await asyncio.to_thread(
                self.manager.history.records,
                run_id,
                after=after,
                streamed_only=True,
                limit=REPLAY_LIMIT + 1,
            )
            if len(texts) <= REPLAY_LIMIT:
                await self._send(websocket, Status(run.status.value, run.step).encode())
                if texts:
                    last = json.loads(texts[-1])["step"]
                    await self._send(websocket, Metrics(last, texts).encode())
                    return int(last)
                return after
        seq, text = await asyncio.to_thread(self._snapshot, run_id)
        await self._send(websocket, text)
        # A shared history may end before this client registered: replay what came since.
        texts = await asyncio.to_thread(
            self.manager.history.records, run_id, after=seq, streamed_only=True, limit=REPLAY_LIMIT
        )
        if texts:
            last = int(json.loads(texts[-1])["step"])
            await self._send(websocket, Metrics(last, texts).encode())
            return last
        return seq

    def _snapshot(self, run_id: str) -> tuple[int, str]:
        """The snapshot message and its seq; in a worker thread (it parses the history).

        The downsampled history is built once and shared for SNAPSHOT_TTL seconds, so
        a class opening the same link at once costs one build, not one per viewer
        (measured: 50 viewers joining at once cut training to 0.31x without it). A build
        parses every streamed record of the run (~10 us each), so the period bounds its
        cost on long runs; the replay after seq is at most ~5 s of live records. Status and
        run fields are always fresh; the caller replays records after the seq.
        """
        with self._snapshot_lock:
            run = self.manager.get(run_id)
            status, public = run.status.value, run.public()
            now = time.monotonic()
            for stale in [k for k, v in self._histories.items() if now - v[0] > SNAPSHOT_TTL]:
                del self._histories[stale]
            cached = self._histories.get(run_id)
            if cached is None:
                texts = self.manager.history.records(run_id, streamed_only=True)
                records = [json.loads(t) for t in texts]
                keep = downsample(records, SNAPSHOT_POINTS, HEADLINE_KEYS)
                cached = (
                    now,
                    int(records[-1]["step"]) if records else 0,
                    len(keep) < len(records),
                    ",".join(texts[i] for i in keep),
                )
                self._histories[run_id] = cached
        _, seq, downsampled, history = cached
        return seq, Snapshot(status, public, seq, downsampled, history).encode()

    async def _finish(self, websocket: WebSocket, run_id: str) -> None:
        run = self.manager.get(run_id)
        await self._send(
            websocket, Status(run.status.value, run.step, {"error": run.error}).encode()
        )
        await websocket.close(code=CloseCode.NORMAL)


async def _watch_disconnect(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends until it disconnects."""
    try:
        while websocket.application_state == WebSocketState.CONNECTED:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
    except (WebSocketDisconnect, RuntimeError):
        return
