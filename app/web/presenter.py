"""Follow the presenter: the owner's page broadcasts its view; every follower mirrors it.

One websocket per page (`/ws/runs/{id}/presenter`). A connection that holds
the run's owner (or admin) token may send its view; anything a viewer sends is
ignored, so viewers never steer anyone. The hub keeps each run's latest view,
sends it to a page as it connects, and hands every change to all followers of
the run as one encoded text. A follower keeps only the newest text (a view
replaces the last one), so a slow phone skips views and never slows the others.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from app.runs.manager import RunManager

#: Largest message a presenter may send (a view is ~150 bytes).
MAX_MESSAGE = 2048
X_AXES = ("step", "epoch", "wall_time")
SPEEDS = ("1", "2", "10", "60s")
#: Chart ids are short words of the page's vocabulary.
MAX_CHART = 32

log = logging.getLogger("synthgrad.presenter")


class InvalidPresenterView(ValueError):
    pass


def _number(value: Any, low: float, high: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidPresenterView(f"{name}: must be a number")
    if not low <= value <= high:
        raise InvalidPresenterView(f"{name}: must be between {low} and {high}")
    return value


def _replay(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or str(value.get("speed")) not in SPEEDS:
        raise InvalidPresenterView(f"replay: speed must be one of {', '.join(SPEEDS)}")
    return {
        "step": int(_number(value.get("step"), 0, 2**53, "replay.step")),
        "playing": bool(value.get("playing")),
        "speed": str(value["speed"]),
    }


def checked_view(raw: Any) -> dict[str, Any]:
    """A presenter's view with only the known keys, each checked (InvalidPresenterView)."""
    if not isinstance(raw, dict):
        raise InvalidPresenterView("view: must be an object")
    chart = raw.get("chart") or ""
    if not isinstance(chart, str) or len(chart) > MAX_CHART:
        raise InvalidPresenterView(f"chart: a chart id of at most {MAX_CHART} letters")
    if chart and not chart.replace("_", "").isalnum():
        raise InvalidPresenterView(f"chart: a chart id of at most {MAX_CHART} letters")
    if raw.get("x", "step") not in X_AXES:
        raise InvalidPresenterView(f"x: one of {', '.join(X_AXES)}")
    return {
        "chart": chart,
        "layer": int(_number(raw.get("layer", 1), 1, 1000, "layer")),
        "x": raw.get("x", "step"),
        "smoothing": _number(raw.get("smoothing", 0), 0, 0.999, "smoothing"),
        "log": bool(raw.get("log", False)),
        "replay": _replay(raw.get("replay")),
    }


@dataclass(eq=False)
class Follower:
    """A page's connection: the newest presenter text not yet sent to it."""

    latest: str | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, text: str) -> None:
        self.latest = text
        self.wake.set()


class PresenterHub:
    """Each run's latest presented view and the pages that listen for it."""

    def __init__(self, manager: RunManager, send_timeout: float = 30.0) -> None:
        self.manager = manager
        self.send_timeout = send_timeout
        self.states: dict[str, str] = {}  # run id -> the latest presenter message
        self.presenters: dict[str, object] = {}  # run id -> the connection presenting
        self.followers: dict[str, set[Follower]] = {}

    def message(self, run_id: str) -> str:
        return self.states.get(run_id, json.dumps({"type": "presenter", "presenting": False}))

    def publish(self, run_id: str, presenting: bool, view: dict[str, Any] | None) -> None:
        """Encode the state once and hand the same text to every page of the run."""
        text = json.dumps({"type": "presenter", "presenting": presenting, "view": view})
        self.states[run_id] = text
        for follower in self.followers.get(run_id, ()):
            follower.offer(text)

    async def serve(self, websocket: WebSocket, run_id: str, owner: bool) -> None:
        """Send the run's presenter state as it changes; take views from its owner."""
        follower = Follower(self.message(run_id))
        follower.wake.set()
        self.followers.setdefault(run_id, set()).add(follower)
        sender = asyncio.create_task(self._send_loop(websocket, follower))
        try:
            await self._receive_loop(websocket, run_id, owner)
        finally:
            sender.cancel()
            self.followers.get(run_id, set()).discard(follower)
            if not self.followers.get(run_id):
                self.followers.pop(run_id, None)
            if self.presenters.get(run_id) is websocket:
                del self.presenters[run_id]
                self.publish(run_id, False, None)  # the presenter left: followers let go
            if not self.followers.get(run_id):
                self.states.pop(run_id, None)  # nobody left to tell

    async def _send_loop(self, websocket: WebSocket, follower: Follower) -> None:
        try:
            while True:
                await follower.wake.wait()
                follower.wake.clear()
                text, follower.latest = follower.latest, None
                if text is not None:
                    await asyncio.wait_for(websocket.send_text(text), self.send_timeout)
        except (WebSocketDisconnect, RuntimeError, OSError, TimeoutError):
            return

    async def _receive_loop(self, websocket: WebSocket, run_id: str, owner: bool) -> None:
        while websocket.application_state == WebSocketState.CONNECTED:
            try:
                message = await websocket.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if not owner or not text or len(text) > MAX_MESSAGE:
                continue  # only the owner presents; a viewer's words go nowhere
            try:
                body = json.loads(text)
                presenting = bool(body.get("presenting"))
                view = checked_view(body.get("view")) if presenting else None
            except (ValueError, AttributeError) as exc:
                log.info("ignoring a presenter message of run %s: %s", run_id, str(exc)[:80])
                continue
            self.presenters[run_id] = websocket
            self.publish(run_id, presenting, view)
