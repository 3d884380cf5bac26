"""What the run manager tells its listeners (from its own threads), as typed events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricsEvent:
    """Records of one run chosen for the live stream, already JSON-encoded once."""

    run_id: str
    records: list[str]
    steps: list[int]


@dataclass(frozen=True)
class StatusEvent:
    run_id: str
    status: str
    step: int
    error: str | None = None
    diverged_at: int | None = None
    #: a paused run that gave its training slot back (app.runs.loop)
    parked: bool = False


@dataclass(frozen=True)
class DeletedEvent:
    run_id: str


Event = MetricsEvent | StatusEvent | DeletedEvent

Listener = Callable[[Event], None]


class Broadcaster:
    """Listeners and the telling of them; called from whatever thread the event starts in."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def emit(self, event: Event) -> None:
        for listener in list(self._listeners):
            listener(event)
