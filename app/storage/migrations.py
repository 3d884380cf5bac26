"""Store migrations: files of earlier versions brought up to date when opened."""

from __future__ import annotations

import logging
import sqlite3

from app.storage.codec import encode_record

log = logging.getLogger("synthgrad.store")


#: Rows moved per transaction by the migration.
MIGRATE_CHUNK = 2000


#: Columns of the runs table added after its first schema (for sweeps and branches), and
#: their SQL: an older file gets them (null: no sweep, not a branch).
ADDED_COLUMNS = {"sweep_id": "TEXT", "fork_of": "TEXT"}


def add_columns(conn: sqlite3.Connection) -> None:
    """Runs of a file from before sweeps or branches get the columns they lack."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
    for name, sql in ADDED_COLUMNS.items():
        if columns and name not in columns:
            conn.execute(f"ALTER TABLE runs ADD COLUMN {name} {sql}")


def migrate_metrics_table(conn: sqlite3.Connection, path: str) -> None:
    """Move records from the first schema's `metrics` table (plain JSON text) into `records`."""
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


#: A run's exact trainer states at some of its steps (app.storage.checkpoints).
CHECKPOINTS_TABLE = """
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (run_id, step)
);
"""


def add_checkpoints(conn: sqlite3.Connection) -> None:
    """Files from before checkpoints get their table (empty: their runs have none)."""
    conn.executescript(CHECKPOINTS_TABLE)
