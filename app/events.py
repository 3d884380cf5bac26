"""What the run manager tells its listeners (from its own threads), as typed events."""

from __future__ import annotations

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


@dataclass(frozen=True)
class DeletedEvent:
    run_id: str


Event = MetricsEvent | StatusEvent | DeletedEvent
