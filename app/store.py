"""SQLite store of runs and their step records (WAL; one writer thread, short-lived readers)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    owner_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    step INTEGER NOT NULL DEFAULT 0,
    total_steps INTEGER NOT NULL,
    summary TEXT NOT NULL DEFAULT '{}',
    error TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    streamed INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;
-- The live subset, read by every snapshot and reconnect: without this index each
-- read scans (and loads) every stored record of the run.
CREATE INDEX IF NOT EXISTS metrics_streamed ON metrics (run_id, step) WHERE streamed = 1;
"""

RUN_COLUMNS = (
    "id",
    "name",
    "status",
    "config",
    "owner_hash",
    "created_at",
    "started_at",
    "finished_at",
    "step",
    "total_steps",
    "summary",
    "error",
)
JSON_COLUMNS = ("config", "summary")


class Store:
    """Runs and metrics in one SQLite file. Thread-safe: writes share one locked connection."""

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = self._connect()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- runs --------------------------------------------------------------
    def insert_run(self, row: dict[str, Any]) -> None:
        values = [_encode(col, row.get(col)) for col in RUN_COLUMNS]
        with self._lock:
            self._conn.execute(
                f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(RUN_COLUMNS))})",
                values,
            )

    def update_run(self, run_id: str, **fields: Any) -> None:
        assert fields and set(fields) <= set(RUN_COLUMNS)
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._lock:
            self._conn.execute(
                f"UPDATE runs SET {sets} WHERE id = ?",
                [*(_encode(k, v) for k, v in fields.items()), run_id],
            )

    def delete_run(self, run_id: str) -> None:
        with self._lock:
            self._conn.execute("BEGIN")
            self._conn.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
            self._conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            self._conn.execute("COMMIT")

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
        with self._lock:
            cur = self._conn.execute(
                f"UPDATE runs SET status = 'interrupted' WHERE status IN "
                f"({', '.join('?' * len(marks))})",
                marks,
            )
        return cur.rowcount

    # -- metrics -----------------------------------------------------------
    def write_batch(
        self,
        metrics: list[tuple[str, int, int, str]],
        run_updates: list[tuple[str, dict[str, Any]]],
    ) -> None:
        """Insert records (run_id, step, streamed, json) and update run rows in one transaction."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                if metrics:
                    self._conn.executemany(
                        "INSERT OR REPLACE INTO metrics (run_id, step, streamed, record) "
                        "VALUES (?, ?, ?, ?)",
                        metrics,
                    )
                for run_id, fields in run_updates:
                    sets = ", ".join(f"{k} = ?" for k in fields)
                    self._conn.execute(
                        f"UPDATE runs SET {sets} WHERE id = ?",
                        [*(_encode(k, v) for k, v in fields.items()), run_id],
                    )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def read_records(
        self, run_id: str, *, after: int = 0, streamed_only: bool = False, limit: int | None = None
    ) -> list[str]:
        """Stored records (JSON text) of a run with step > `after`, in step order."""
        if streamed_only:  # the planner, without statistics, would scan the run's every row
            sql = (
                "SELECT record FROM metrics INDEXED BY metrics_streamed "
                "WHERE run_id = ? AND step > ? AND streamed = 1"
            )
        else:
            sql = "SELECT record FROM metrics WHERE run_id = ? AND step > ?"
        sql += " ORDER BY step"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        conn = self._connect()  # readers do not queue behind the writer (WAL)
        try:
            return [row[0] for row in conn.execute(sql, (run_id, after))]
        finally:
            conn.close()

    def count_records(self, run_id: str, *, after: int = 0, streamed_only: bool = False) -> int:
        sql = "SELECT COUNT(*) FROM metrics WHERE run_id = ? AND step > ?"
        if streamed_only:
            sql += " AND streamed = 1"
        conn = self._connect()
        try:
            return int(conn.execute(sql, (run_id, after)).fetchone()[0])
        finally:
            conn.close()


def _encode(column: str, value: Any) -> Any:
    return json.dumps(value) if column in JSON_COLUMNS else value


def _decode(column: str, value: Any) -> Any:
    return json.loads(value) if column in JSON_COLUMNS else value
