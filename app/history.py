"""Reading a run's stored history: records for replays, exports for downloads.

A mixin of RunManager: both flush the recorder first, so nothing recorded is missed.
"""

from __future__ import annotations

from synthgrad_core.trainer import record_keys

from .metrics import Export, export, parse_fields
from .run import Run
from .store import Store


class History:
    """The reading half of RunManager (it shares the manager's store and recorder)."""

    store: Store

    def get(self, run_id: str) -> Run:
        raise NotImplementedError  # RunManager's

    def flush(self) -> None:
        raise NotImplementedError  # RunManager's

    def records(
        self, run_id: str, *, after: int = 0, streamed_only: bool = False, limit: int | None = None
    ) -> list[str]:
        """Stored records (JSON text) of a run; flushes first so nothing recorded is missed."""
        self.get(run_id)
        self.flush()
        return self.store.read_records(
            run_id, after=after, streamed_only=streamed_only, limit=limit
        )

    def export(self, run_id: str, fields: str | None, max_points: int | None, fmt: str) -> Export:
        """The run's stored history as JSON or CSV text chunks, read as they are sent."""
        run = self.get(run_id)
        self.flush()
        columns = record_keys(run.config)
        wanted = parse_fields(fields, columns)  # InvalidQuery for a field the run lacks
        count = self.store.count_records(run_id)
        texts = (text for _, text in self.store.iter_records(run_id, limit=count))
        return export(run_id, texts, count, columns, fields=wanted, max_points=max_points, fmt=fmt)
