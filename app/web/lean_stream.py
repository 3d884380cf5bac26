"""The lean viewer stream: one frame per view per tick, the same text sent to every viewer.

Viewers of a run who draw the same view (the same fields) share a channel. The
hub parses each live record once per run, a ticker builds each channel's frame
(`lean.columns`) every LEAN_INTERVAL seconds and hands the one text to every
client of the channel; each client has a bounded queue and its own sender, so a
slow phone drops its own oldest frames (and is told with a `gap` message) and
never slows anyone else. A channel's snapshot (the history as one columnar
frame) is built once and shared by viewers who join within SNAPSHOT_TTL seconds;
the records after it are kept by the channel, so a joiner's catch-up frame
comes from memory, not from the store.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from app.runs.events import DeletedEvent, Event, MetricsEvent, StatusEvent
from app.runs.manager import RunManager
from app.runs.status import RunStatus
from app.web.lean import InvalidView, columns, named_fields, view_fields
from app.web.messages import CloseCode, Frame, Gap, LeanSnapshot, Status

Record = dict[str, Any]
#: A frame (its seq and text, shared with the channel's other viewers) or a status event.
Item = tuple[int, str] | StatusEvent | DeletedEvent

#: Seconds between lean frames: a few updates a second is what a screen shows.
LEAN_INTERVAL = 0.25
#: Seconds a built snapshot is shared by viewers who join meanwhile (a live run's).
SNAPSHOT_TTL = 5.0
#: Per field min/max buckets of a snapshot's history (a chart is ~1000 px wide).
SNAPSHOT_BUCKETS = 250
#: Newest timelines a snapshot carries (the timeline shows the last seconds).
SNAPSHOT_TIMELINES = 30
#: Most stored records an ended run's snapshot reads (all of them, not only the streamed
#: ones, so a replay of a fast run has every step); a longer run gives its streamed ones.
ENDED_READ_LIMIT = 20_000
#: Per field buckets of a joiner's catch-up frame (at most SNAPSHOT_TTL seconds of records).
CATCH_UP_BUCKETS = 8
#: Live records a channel keeps after its snapshot before it drops the snapshot instead.
RECENT_LIMIT = 5000
#: Different views one run streams at once: each has its own snapshot (a read of the run's
#: history), so a crowd asking for made-up field sets cannot multiply that cost.
MAX_VIEWS = 64
#: Frames waiting for a viewer before its oldest are dropped (~5 s of frames).
BACKLOG = 20

log = logging.getLogger("synthgrad.stream")


def encode_columns(body: dict[str, Any]) -> str:
    # lean.columns maps non-finite numbers to None: a NaN token here is a bug, so refuse it.
    return json.dumps(body, separators=(",", ":"), allow_nan=False)


class LeanClient:
    """One lean websocket's queue: frame texts (shared with its channel) and status events."""

    def __init__(self) -> None:
        self.queue: deque[Item] = deque()
        self.dropped = 0  # frames dropped since the last `gap` message
        self.last_seq = -1  # the newest step sent: older frames are skipped, seq only grows
        self.wake = asyncio.Event()

    def offer(self, item: Item) -> None:
        self.queue.append(item)
        if len(self.queue) > BACKLOG:
            for old in self.queue:
                if isinstance(old, tuple):
                    self.queue.remove(old)
                    self.dropped += 1
                    break
        self.wake.set()


class Channel:
    """The viewers of one run who draw the same fields, and what they share."""

    def __init__(self, run_id: str, fields: tuple[str, ...]) -> None:
        self.run_id = run_id
        self.fields = fields
        self.clients: set[LeanClient] = set()
        self.pending: list[Record] = []  # live records since the last frame
        self.recent: list[Record] = []  # live records after the snapshot's seq
        #: built at, seq, columns JSON, whether the run had ended (then it never goes stale)
        self.snapshot: tuple[float, int, str, bool] | None = None
        #: (snapshot seq, len(recent)) -> the catch-up frame's seq and text
        self.catch_up: tuple[tuple[int, int], tuple[int, str]] | None = None
        self.building = asyncio.Lock()

    def take(self, records: list[Record]) -> None:
        self.pending.extend(records)
        self.recent.extend(records)
        if len(self.recent) > RECENT_LIMIT:  # nobody joined for a long time: rebuild on the next
            self.snapshot, self.recent = None, []

    def emit(self) -> None:
        """Build this tick's frame once and queue the same text for every viewer."""
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        seq = int(pending[-1]["step"])
        frame = seq, Frame(seq, encode_columns(columns(pending, self.fields))).encode()
        for client in self.clients:
            client.offer(frame)


def _emit(channel: Channel) -> None:
    try:
        channel.emit()
    except Exception:  # a bug: this view loses one frame; the ticker and the others go on
        log.exception("building a lean frame of run %s failed", channel.run_id)
        channel.pending = []


class LeanHub:
    """Lean channels of every run, fed by the stream hub's dispatch (on the event loop)."""

    def __init__(
        self, manager: RunManager, send: Callable[[WebSocket, str], Awaitable[None]]
    ) -> None:
        self.manager = manager
        self.send = send
        self.channels: dict[str, dict[tuple[str, ...], Channel]] = {}
        self._ticker: asyncio.Task[None] | None = None
        self.frames_dropped = 0

    def clients(self) -> int:
        return sum(len(c.clients) for group in self.channels.values() for c in group.values())

    def dispatch(self, event: Event) -> None:
        group = self.channels.get(event.run_id)
        if not group:
            return
        if isinstance(event, MetricsEvent):
            records = [json.loads(t) for t in event.records]  # once per run, not per viewer
            for channel in group.values():
                channel.take(records)
            return
        for channel in group.values():
            _emit(channel)  # what came before the status goes first
            for client in channel.clients:
                client.offer(event)

    async def _tick(self) -> None:
        while self.channels:
            await asyncio.sleep(LEAN_INTERVAL)
            for group in list(self.channels.values()):
                for channel in list(group.values()):
                    _emit(channel)
        self._ticker = None

    def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()

    def resolve(self, run_id: str, layer: int | None, fields: str | None) -> tuple[str, ...]:
        """The fields of the view asked for (InvalidView when the run has no such layer/field)."""
        config = self.manager.get(run_id).config
        if fields:
            wanted = named_fields(config, fields)
        else:
            wanted = view_fields(config, 1 if layer is None else layer)
        views = self.channels.get(run_id, {})
        if wanted not in views and len(views) >= MAX_VIEWS:
            raise InvalidView(f"fields: this run streams {MAX_VIEWS} different views already")
        return wanted

    async def serve(
        self,
        websocket: WebSocket,
        run_id: str,
        fields: tuple[str, ...],
        watcher: asyncio.Task[None],
    ) -> None:
        """Stream one run's lean view to an accepted websocket until the run ends or it leaves."""
        channel = self.channels.setdefault(run_id, {}).setdefault(fields, Channel(run_id, fields))
        client = LeanClient()
        channel.clients.add(client)
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick())
        sender: asyncio.Task[None] | None = None
        try:
            if await self._start(websocket, channel, client):
                return
            # One sender task for the connection's life (not a task per frame: with hundreds
            # of viewers at four frames a second, those were a measurable share of the loop).
            sender = asyncio.create_task(self._send_loop(websocket, client))
            await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
            sender.cancel()
            if sender.done() and not sender.cancelled():
                sender.result()  # its error, if it ended with one
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away
        except TimeoutError:
            log.info("dropping a lean websocket client of run %s that stopped reading", run_id)
        finally:
            if sender is not None:
                sender.cancel()
            self.frames_dropped += client.dropped
            channel.clients.discard(client)
            group = self.channels.get(run_id, {})
            if not channel.clients and group.get(fields) is channel:
                del group[fields]
                if not group:
                    self.channels.pop(run_id, None)

    async def _send_loop(self, websocket: WebSocket, client: LeanClient) -> None:
        while True:
            await client.wake.wait()
            client.wake.clear()
            if await self._drain(websocket, client):
                return

    async def _drain(self, websocket: WebSocket, client: LeanClient) -> bool:
        """Send what the client has queued; True when the stream has ended."""
        if client.dropped:
            self.frames_dropped += client.dropped
            await self.send(websocket, Gap(client.dropped).encode())
            client.dropped = 0
        while client.queue:
            item = client.queue.popleft()
            if isinstance(item, tuple):
                if item[0] > client.last_seq:  # a joiner's catch-up may have covered it
                    await self.send(websocket, item[1])
                    client.last_seq = item[0]
            elif isinstance(item, DeletedEvent):
                await self.send(websocket, Status("deleted", None).encode())
                await websocket.close(code=CloseCode.NORMAL, reason="run deleted")
                return True
            else:
                extra = {"error": item.error, "diverged_at": item.diverged_at}
                extra["parked"] = item.parked or None  # a paused run that gave its slot back
                await self.send(websocket, Status(item.status, item.step, extra).encode())
                if RunStatus(item.status).terminal:
                    await websocket.close(code=CloseCode.NORMAL)
                    return True
        return False

    async def _start(self, websocket: WebSocket, channel: Channel, client: LeanClient) -> bool:
        """Send the snapshot and a catch-up frame; True (and closed) when the run has ended."""
        seq, history = await self._snapshot(channel)
        run = self.manager.get(channel.run_id)
        snapshot = LeanSnapshot(run.status.value, run.public(), seq, channel.fields, history)
        await self.send(websocket, snapshot.encode())
        client.last_seq = seq
        catch_up = self._catch_up(channel, seq)
        if catch_up:
            await self.send(websocket, catch_up[1])
            client.last_seq = catch_up[0]
        if run.status.terminal:
            extra = {"error": run.error}
            await self.send(websocket, Status(run.status.value, run.step, extra).encode())
            await websocket.close(code=CloseCode.NORMAL)
            return True
        return False

    async def _snapshot(self, channel: Channel) -> tuple[int, str]:
        """The channel's shared snapshot, built (in a worker thread) when missing or stale."""
        async with channel.building:
            built = channel.snapshot
            if built is None or not (built[3] or time.monotonic() - built[0] < SNAPSHOT_TTL):
                ended = self.manager.get(channel.run_id).status.terminal
                seq, text = await asyncio.to_thread(
                    self._build, channel.run_id, channel.fields, ended
                )
                channel.snapshot = built = (time.monotonic(), seq, text, ended)
                channel.recent = [r for r in channel.recent if r["step"] > seq]
                channel.catch_up = None
        return built[1], built[2]

    def _build(self, run_id: str, fields: tuple[str, ...], ended: bool) -> tuple[int, str]:
        """The run's history as one columnar frame (reads and parses the store)."""
        texts: list[str] = []
        if ended:
            texts = self.manager.history.records(run_id, limit=ENDED_READ_LIMIT + 1)
        if not ended or len(texts) > ENDED_READ_LIMIT:
            texts = self.manager.history.records(run_id, streamed_only=True)
        records = [json.loads(t) for t in texts]
        body = columns(records, fields, SNAPSHOT_BUCKETS, SNAPSHOT_TIMELINES)
        return (int(records[-1]["step"]) if records else 0), encode_columns(body)

    def _catch_up(self, channel: Channel, seq: int) -> tuple[int, str] | None:
        """The live records after the snapshot, as one frame shared by viewers joining together."""
        recent = [r for r in channel.recent if r["step"] > seq]
        if not recent:
            return None
        key = (seq, len(channel.recent))
        if channel.catch_up is None or channel.catch_up[0] != key:
            body = columns(recent, channel.fields, CATCH_UP_BUCKETS)
            last = int(recent[-1]["step"])
            channel.catch_up = (key, (last, Frame(last, encode_columns(body)).encode()))
        return channel.catch_up[1]
