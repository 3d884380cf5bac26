"""Upkeep of the store: moving round 1's records, and reclaiming deleted runs' space."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from typing import TYPE_CHECKING

from .codec import encode_record
from .store_errors import StoreError

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger("synthgrad.store")

#: Rows moved per transaction by the migration.
MIGRATE_CHUNK = 2000


def add_sweep_column(conn: sqlite3.Connection) -> None:
    """Runs of a file from before sweeps get their `sweep_id` column (null: no sweep)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
    if columns and "sweep_id" not in columns:
        conn.execute("ALTER TABLE runs ADD COLUMN sweep_id TEXT")


def migrate_round_one(conn: sqlite3.Connection, path: str) -> None:
    """Move records from round 1's `metrics` table (plain JSON text) into `records`."""
    old = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'metrics'"
    ).fetchone()
    if not old:
        return
    log.info("compressing the stored records of %s (once)", path)
    last: tuple[str, int] = ("", -1)
    while True:
        rows = conn.execute(
            "SELECT run_id, step, streamed, record FROM metrics WHERE (run_id, step) > (?, ?) "
            f"ORDER BY run_id, step LIMIT {MIGRATE_CHUNK}",
            last,
        ).fetchall()
        if not rows:
            break
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)",
            [(r, s, st, encode_record(t)) for r, s, st, t in rows],
        )
        conn.execute("COMMIT")
        last = (rows[-1][0], rows[-1][1])
    conn.execute("DROP TABLE metrics")
    conn.execute("VACUUM")  # also turns incremental auto-vacuum on for this file


class Purger(threading.Thread):
    """Deletes records of deleted runs a chunk at a time, then gives the pages back.

    Woken after each delete and every PURGE_INTERVAL seconds (records a crash or a
    late flush left behind are swept too).
    """

    PURGE_INTERVAL = 60.0

    def __init__(self, store: Store) -> None:
        super().__init__(name="synthgrad-purger", daemon=True)
        self.store = store
        self._wanted = threading.Event()
        self._stopping = threading.Event()

    def wake(self) -> None:
        self._wanted.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wanted.set()
        self.join(timeout=5)

    def run(self) -> None:
        while not self._stopping.is_set():
            self._wanted.wait(self.PURGE_INTERVAL)
            self._wanted.clear()
            try:
                while not self._stopping.is_set() and self.store.purge():
                    time.sleep(0.01)  # let the writer in between chunks
            except StoreError as exc:
                log.warning("reclaiming deleted runs' space failed (%s); will retry", exc)
