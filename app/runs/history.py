"""Reading a run's stored history: records for replays, exports for downloads.

Both flush the recorder first, so nothing recorded is missed.
"""

from __future__ import annotations

from collections.abc import Callable

from app.runs.run import Run
from app.storage.metrics import Export, export, export_chosen, parse_fields
from app.storage.store import Store
from synthgrad_core.trainer import record_keys


class History:
    """Reads runs' stored records: `get` finds a run (RunNotFound), `flush` stores pending ones."""

    def __init__(self, store: Store, get: Callable[[str], Run], flush: Callable[[], None]) -> None:
        self.store = store
        self.get = get
        self.flush = flush

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
        if max_points is not None and count > max_points and wanted is None:
            # A long history: chosen from the headlines table, only those records decoded.
            chosen = self.store.downsampled(run_id, count, max_points)
            if chosen is not None:
                return export_chosen(run_id, chosen, columns, fmt=fmt)
        texts = (text for _, text in self.store.iter_records(run_id, limit=count))
        return export(run_id, texts, count, columns, fields=wanted, max_points=max_points, fmt=fmt)
