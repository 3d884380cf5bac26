"""SQLite store of runs and their step records (WAL; one writer thread, short-lived readers).

Records are stored compressed (zlib with a preset dictionary of the record keys)
in a rowid table, so a record of the article's net takes ~0.5 KB on disk rather
than spilling into overflow pages. The file reclaims deleted runs' space
incrementally (`auto_vacuum = INCREMENTAL`), a few pages at a time.

Every SQLite error leaves this module as a `StoreError` naming its cause
("disk full", "database corrupt", ...), and the store remembers the last
write failure (`failure`) until a probe finds room to write again (`probe`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from app.storage import headlines
from app.storage.codec import decode_record, encode_record
from app.storage.errors import PROBE_BYTES, StoreCorrupt, StoreError, describe, recovery_hint
from app.storage.migrations import add_checkpoints, add_columns, migrate_metrics_table

__all__ = ["CHUNK", "Store", "StoreCorrupt", "StoreError"]

log = logging.getLogger("synthgrad.store")

#: The runs table: each column and its SQL (the schema and RUN_COLUMNS come from it).
RUN_TABLE = {
    "id": "TEXT PRIMARY KEY",
    "name": "TEXT NOT NULL",
    "status": "TEXT NOT NULL",
    "config": "TEXT NOT NULL",
    "owner_hash": "TEXT NOT NULL",
    "created_at": "REAL NOT NULL",
    "started_at": "REAL",
    "finished_at": "REAL",
    "step": "INTEGER NOT NULL DEFAULT 0",
    "total_steps": "INTEGER NOT NULL",
    "summary": "TEXT NOT NULL DEFAULT '{}'",
    "error": "TEXT",
    "sweep_id": "TEXT",  # added with sweeps: older files get it by migration
    "fork_of": "TEXT",  # JSON {"run", "step"} of a branch; older files get it by migration
}
RUN_COLUMNS = tuple(RUN_TABLE)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs ({", ".join(f"{k} {v}" for k, v in RUN_TABLE.items())});
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    config TEXT NOT NULL,
    grid TEXT NOT NULL
);
-- A rowid table: a record (~0.5 KB compressed) stays on its b-tree page. The old
-- WITHOUT ROWID table spilled ~1 KB rows into overflow pages: 4.7 KB per record.
CREATE TABLE IF NOT EXISTS records (
    run_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    streamed INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS records_step ON records (run_id, step);
-- The live subset, read by every snapshot and reconnect: without this index each
-- read scans (and loads) every stored record of the run.
CREATE INDEX IF NOT EXISTS records_streamed ON records (run_id, step) WHERE streamed = 1;
"""

JSON_COLUMNS = ("config", "summary", "fork_of")

#: Rows a read or a background delete handles per statement: a delete holds the
#: write lock for one chunk only, so live streams never wait long behind it.
CHUNK = 2000
#: Free pages given back to the file system per incremental-vacuum call.
VACUUM_PAGES = 512


class Store(headlines.Downsampling):
    """Runs and records in one SQLite file. Thread-safe: writes share one locked connection."""

    def __init__(self, path: str, *, check: bool = True) -> None:
        if path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        #: why the last write failed ("disk full", ...), None while writes succeed
        self.failure: str | None = None
        try:
            self._conn = self._connect()
            if check:
                self._check()
            # Must precede the first table; an older file gets it with its migration.
            self._conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(SCHEMA + headlines.SCHEMA)
            self._migrate()
        except sqlite3.DatabaseError as exc:
            if describe(exc) == "database corrupt":
                raise StoreCorrupt(recovery_hint(path)) from None
            raise StoreError(f"cannot open the database {path}: {describe(exc)}") from None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _check(self) -> None:
        """SQLite's quick check of every page; a damaged file refuses to open, with a way out."""
        rows = self._conn.execute("PRAGMA quick_check").fetchall()
        if rows != [("ok",)]:
            log.error("integrity check of %s: %s", self.path, "; ".join(r[0] for r in rows[:5]))
            raise StoreCorrupt(recovery_hint(self.path))

    def _migrate(self) -> None:
        migrate_metrics_table(self._conn, self.path)
        add_columns(self._conn)
        add_checkpoints(self._conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- health ------------------------------------------------------------
    def free_bytes(self) -> int:
        """Bytes free on the file system that holds the database."""
        if self.path == ":memory:":
            return 2**62
        return shutil.disk_usage(Path(self.path).expanduser().resolve().parent).free

    def file_bytes(self) -> int:
        if self.path == ":memory:":
            return 0
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += os.path.getsize(self.path + suffix)
        return total

    def probe(self) -> bool:
        """Try a write that needs a fresh page; clears `failure` when it succeeds.

        A corrupt file stays failed: only a restart after recovery clears that.
        """
        if self.failure == "database corrupt":
            return False

        def work(conn: sqlite3.Connection) -> None:
            # Room for a few seconds of records, not just one row: 1 MiB, then gone again.
            conn.execute("CREATE TABLE IF NOT EXISTS probe (data BLOB)")
            conn.execute(f"INSERT INTO probe VALUES (zeroblob({PROBE_BYTES}))")
            conn.execute("DELETE FROM probe")

        try:
            self._write(work)
        except StoreError:
            return False
        self.failure = None
        return True

    # -- writing -----------------------------------------------------------
    def _write(self, work: Any) -> None:
        """Run `work(conn)` in one write transaction; SQLite errors become StoreError."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                work(self._conn)
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                # SQLite may have rolled back already (a full disk does): roll back only
                # what is still open, or the rollback itself fails and hides the cause.
                if self._conn.in_transaction:
                    try:
                        self._conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        log.exception("rollback failed")
                self.failure = describe(exc)
                raise StoreError(self.failure) from exc

    def insert_run(self, row: dict[str, Any]) -> None:
        values = [encode_column(col, row.get(col)) for col in RUN_COLUMNS]
        self._write(
            lambda conn: conn.execute(
                f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(RUN_COLUMNS))})",
                values,
            )
        )

    def update_run(self, run_id: str, **fields: Any) -> None:
        assert fields and set(fields) <= set(RUN_COLUMNS)
        sets = ", ".join(f"{k} = ?" for k in fields)
        values = [*(encode_column(k, v) for k, v in fields.items()), run_id]
        self._write(lambda conn: conn.execute(f"UPDATE runs SET {sets} WHERE id = ?", values))

    def delete_run(self, run_id: str) -> None:
        """Remove the run's row at once; its records go in chunks (`purge`)."""
        self._write(lambda conn: conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)))

    def purge(self) -> int:
        """Delete one chunk of records whose run is gone, or reclaim free pages; 0 when done.

        Call it until it returns 0; between calls other writers get the lock.
        """
        deleted = 0

        def work(conn: sqlite3.Connection) -> None:
            nonlocal deleted
            deleted = conn.execute(
                "DELETE FROM records WHERE rowid IN (SELECT rowid FROM records "
                "WHERE run_id NOT IN (SELECT id FROM runs) "
                f"LIMIT {CHUNK})"
            ).rowcount
            deleted = deleted or conn.execute(headlines.PURGE).rowcount
            # A run's checkpoints are few (thinned): one statement takes them all.
            deleted += conn.execute(
                "DELETE FROM checkpoints WHERE run_id NOT IN (SELECT id FROM runs)"
            ).rowcount

        self._write(work)
        if deleted:
            return deleted
        with self._lock:
            free = self._conn.execute("PRAGMA freelist_count").fetchone()[0]
            if free:
                # Through executescript: stepped by execute(), the pragma frees one page.
                self._conn.executescript(f"PRAGMA incremental_vacuum({VACUUM_PAGES});")
        return min(free, VACUUM_PAGES)

    def load_runs(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {', '.join(RUN_COLUMNS)} FROM runs ORDER BY created_at"
            ).fetchall()
        return [
            {col: _decode(col, value) for col, value in zip(RUN_COLUMNS, row, strict=True)}
            for row in rows
        ]

    def mark_interrupted(self, statuses: Iterable[str]) -> int:
        """Runs left in one of `statuses` by a process that died become `interrupted`."""
        marks = list(statuses)
        count = 0

        def work(conn: sqlite3.Connection) -> None:
            nonlocal count
            count = conn.execute(
                f"UPDATE runs SET status = 'interrupted' WHERE status IN "
                f"({', '.join('?' * len(marks))})",
                marks,
            ).rowcount

        self._write(work)
        return count

    def write_batch(
        self,
        records: list[tuple[str, int, int, str]],
        run_updates: list[tuple[str, dict[str, Any]]],
    ) -> None:
        """Insert records (run_id, step, streamed, json) and update run rows in one transaction."""
        rows = [(run_id, step, live, encode_record(text)) for run_id, step, live, text in records]
        heads = headlines.blocks(records)

        def work(conn: sqlite3.Connection) -> None:
            if rows:
                conn.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)", rows)
                conn.executemany(headlines.INSERT, heads)
            for run_id, fields in run_updates:
                sets = ", ".join(f"{k} = ?" for k in fields)
                conn.execute(
                    f"UPDATE runs SET {sets} WHERE id = ?",
                    [*(encode_column(k, v) for k, v in fields.items()), run_id],
                )

        self._write(work)  # a success does not clear `failure`: only a probe does

    # -- reading -----------------------------------------------------------
    def iter_records(
        self, run_id: str, *, after: int = 0, streamed_only: bool = False, limit: int | None = None
    ) -> Iterator[tuple[int, str]]:
        """(step, JSON text) of the run's records with step > `after`, in step order.

        Reads CHUNK rows per query (no read transaction held between chunks), so a
        long history streams in constant memory without holding back checkpoints.
        """
        if streamed_only:  # the planner, without statistics, would scan the run's every row
            sql = (
                "SELECT step, data FROM records INDEXED BY records_streamed "
                "WHERE run_id = ? AND step > ? AND streamed = 1"
            )
        else:
            sql = "SELECT step, data FROM records WHERE run_id = ? AND step > ?"
        left = limit if limit is not None else 2**62
        while left > 0:
            rows = self._read(f"{sql} ORDER BY step LIMIT {min(CHUNK, left)}", (run_id, after))
            for step, data in rows:
                yield step, decode_record(data)
            if len(rows) < min(CHUNK, left):
                return
            left -= len(rows)
            after = rows[-1][0]

    def read_records(
        self, run_id: str, *, after: int = 0, streamed_only: bool = False, limit: int | None = None
    ) -> list[str]:
        """Stored records (JSON text) of a run with step > `after`, in step order."""
        texts = self.iter_records(run_id, after=after, streamed_only=streamed_only, limit=limit)
        return [text for _, text in texts]

    def count_records(self, run_id: str, *, after: int = 0, streamed_only: bool = False) -> int:
        sql = "SELECT COUNT(*) FROM records WHERE run_id = ? AND step > ?"
        if streamed_only:
            sql += " AND streamed = 1"
        return int(self._read(sql, (run_id, after))[0][0])

    def steps(self, run_id: str) -> list[int]:
        """Every stored step of the run (8 bytes each: cheap beside the records)."""
        rows = self._read("SELECT step FROM records WHERE run_id = ? ORDER BY step", (run_id,))
        return [row[0] for row in rows]

    def _read(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        try:
            conn = self._connect()  # readers do not queue behind the writer (WAL)
            try:
                return conn.execute(sql, args).fetchall()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            cause = describe(exc)
            if cause == "database corrupt":
                self.failure = cause
            raise StoreError(cause) from exc


def encode_column(column: str, value: Any) -> Any:
    """A run column's value as the table holds it (JSON text for config and summary)."""
    return json.dumps(value) if column in JSON_COLUMNS else value


def _decode(column: str, value: Any) -> Any:
    return json.loads(value) if column in JSON_COLUMNS else value
