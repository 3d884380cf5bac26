"""Typed commands to a training session, on the one queue (`Desk`) its run loop owns.

Request threads post commands and return; the session's loop (app.runs.loop) takes
them at slice boundaries, and at once while paused, in the order they came. A
command that needs an answer (a capture for a fork) carries an `Answer`, which the
request waits on with a deadline.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any

from app.runs.status import Control, Unavailable


@dataclass(frozen=True)
class Pause:
    """Pause every seed of the session at the next slice boundary."""


@dataclass(frozen=True)
class Resume:
    """Go on training (a paused session)."""


@dataclass(frozen=True)
class End:
    """End one run of the session (a stop reaches each seed as an End of its own)."""

    run_id: str
    control: Control  # one that ends: stop, delete, shutdown, fail


@dataclass(frozen=True)
class Configure:
    """Change live knobs of the session's trainer (already checked against the config)."""

    changes: dict[str, Any]


class Answer:
    """One reply to a command, waited for with a deadline."""

    def __init__(self) -> None:
        self._given = threading.Event()
        self._value: Any = None
        self._error: Exception | None = None

    def give(self, value: Any = None, error: Exception | None = None) -> None:
        if not self._given.is_set():
            self._value, self._error = value, error
            self._given.set()

    def wait(self, timeout: float, what: str) -> Any:
        """The reply's value (its error raised); Unavailable if none came within `timeout`."""
        if not self._given.wait(timeout):
            raise Unavailable(f"{what}: no answer from the training within {timeout:g} s")
        if self._error is not None:
            raise self._error
        return self._value


@dataclass(frozen=True)
class Capture:
    """The state of one paused run of the session (for a fork), given to `answer`."""

    run_id: str
    answer: Answer = field(default_factory=Answer)


Command = Pause | Resume | End | Configure | Capture


class Desk:
    """The command queue of one training session: requests post, the session's loop takes.

    Once closed (the session ended or parked) it takes nothing more: `post` says
    False and the caller acts on the run as it now is.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False

    def post(self, command: Command) -> bool:
        with self._lock:
            if not self._closed:
                self._queue.put(command)
            return not self._closed

    def take(self, timeout: float | None = None) -> Command | None:
        """The next command, waiting up to `timeout` s (None: do not wait)."""
        try:
            if timeout is None:
                return self._queue.get_nowait()
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> list[Command]:
        """Take no more; returns the commands that came too late for the loop."""
        with self._lock:
            self._closed = True
            left = []
            while (command := self.take()) is not None:
                left.append(command)
            return left
