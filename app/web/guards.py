"""What stands between the network and the app: body limits, security headers, connection
guards, and a log that cannot be flooded.

- `BodyLimit` (ASGI): a request body over the limit gets 413 without being read whole.
- `SecurityHeaders` (ASGI): CSP with scripts from this site only, no framing, a
  referrer policy, no MIME sniffing.
- `guarded_protocol()`: uvicorn's h11 protocol with a deadline for each request's
  headers (slow-header clients are cut off) and a cap on connections per address.
- `OncePerSecond`: a logging filter that lets the same message through at most
  once a second (an accept loop out of descriptors logs thousands a second).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

#: Pages' Content-Security-Policy: scripts only from this site (no inline script, no
#: eval); Plotly sets inline styles; websockets to the same host ('self').
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: FastAPI's interactive docs load their scripts from a CDN: they keep only the framing rule.
DOCS_PATHS = ("/docs", "/redoc")


class BodyLimit:
    """Answer 413 to a request body over `max_bytes`: by its Content-Length, or as it streams."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        received = 0
        too_large = started = False

        async def limited() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    return {"type": "http.disconnect"}  # the app stops reading here
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if too_large and not started:
                return  # the app's answer to a cut-off body is replaced by 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracked)
        except Exception:
            if not too_large:
                raise
        if too_large and not started:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {"detail": f"the request body is larger than {self.max_bytes} bytes"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Adds CSP, framing, referrer and sniffing headers to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"].startswith(DOCS_PATHS)
        extra = [
            (b"content-security-policy", b"frame-ancestors 'none'" if docs else CSP.encode()),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (b"x-content-type-options", b"nosniff"),
        ]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def guarded_protocol(header_timeout: float, per_address: int) -> type[H11Protocol]:
    """uvicorn's h11 protocol, with a header deadline and a per-address connection cap.

    The deadline runs from when a connection opens or finishes a response until the
    next request's headers are in: a client that sends them a byte at a time is
    closed. uvicorn alone never times out partial headers (an adversarial test held
    19,975 such connections open, to the descriptor limit).
    """

    class GuardedH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._address = self.client[0] if self.client else ""
            self._counted = True
            counts = _counts(self.server_state)
            counts[self._address] += 1
            self._deadline: asyncio.TimerHandle | None = None
            if counts[self._address] > per_address:
                _storm.warning(
                    "refusing a connection: %s holds %d open", self._address, per_address
                )
                self.transport.close()
                return
            self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(header_timeout, self._headers_late)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _headers_late(self) -> None:
            idle = self.cycle is None or self.cycle.response_complete
            if idle and not self.transport.is_closing():
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.cycle is not None and not self.cycle.response_complete:
                self._disarm()  # the headers are in; the app has the request

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def handle_websocket_upgrade(self, event: Any) -> None:
            self._disarm()
            self._uncount()  # the websocket protocol owns the connection from here
            super().handle_websocket_upgrade(event)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            self._uncount()
            super().connection_lost(exc)

        def _uncount(self) -> None:
            if self._counted:
                self._counted = False
                counts = _counts(self.server_state)
                counts[self._address] -= 1
                if counts[self._address] <= 0:
                    del counts[self._address]

    return GuardedH11Protocol


def _counts(server_state: Any) -> collections.Counter[str]:
    """Open HTTP connections per client address, kept on this server's shared state."""
    counts: collections.Counter[str] | None = getattr(server_state, "synthgrad_counts", None)
    if counts is None:
        counts = collections.Counter()
        server_state.synthgrad_counts = counts
    return counts


class OncePerSecond(logging.Filter):
    """Lets each distinct message (logger and format string) through at most once a second."""

    def __init__(self, interval: float = 1.0) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[tuple[str, str], float] = {}
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        if now - self._last.get(key, -self.interval) < self.interval:
            self.suppressed += 1
            return False
        self._last[key] = now
        if len(self._last) > 10_000:  # messages with variable text must not grow this forever
            self._last.clear()
        return True


#: Refused connections are logged through a filter of their own (a flood refuses many).
_storm = logging.getLogger("synthgrad.guards")
_storm.addFilter(OncePerSecond())


def install_log_guard() -> OncePerSecond:
    """Filter every handler of the root and uvicorn loggers (after both set theirs up)."""
    guard = OncePerSecond()
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(guard)
    return guard
