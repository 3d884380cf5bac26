"""Each stored record's headline numbers, packed beside it: a long run's history is
downsampled from these and only the records it keeps are decoded.

Every batch the store writes adds one block per run: a float64 array of (step, loss,
accuracy, test_loss, test_accuracy, non-finite) rows, NaN where a record lacks a value.
A 240,000-step run is ~1,400 blocks (one per recorder tick), read in one query. The
choice equals `metrics.select` over HEADLINE_KEYS (each bucket's smallest and largest
value of each key, every non-finite value, the first and last record).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from app.storage.codec import decode_record
from app.storage.metrics import HEADLINE_KEYS

SCHEMA = """
CREATE TABLE IF NOT EXISTS headline_blocks (run_id TEXT NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS headline_blocks_run ON headline_blocks (run_id);
"""
#: One chunk of the blocks of deleted runs (the purger's work after their records).
PURGE = (
    "DELETE FROM headline_blocks WHERE rowid IN (SELECT rowid FROM headline_blocks "
    "WHERE run_id NOT IN (SELECT id FROM runs) LIMIT 200)"
)
INSERT = "INSERT INTO headline_blocks VALUES (?, ?)"
#: Columns of a block: the step, each headline key, whether one of them is not finite.
COLUMNS = 2 + len(HEADLINE_KEYS)
#: Steps per query of `records_at` (SQLite bounds a statement's parameters).
STEPS_PER_QUERY = 500

Read = Callable[[str, tuple[Any, ...]], list[Any]]


def blocks(records: list[tuple[str, int, int, str]]) -> list[tuple[str, bytes]]:
    """One (run_id, packed rows) per run of a batch of (run_id, step, streamed, json) records."""
    rows: dict[str, list[list[float]]] = {}
    for run_id, step, _, text in records:
        record = json.loads(text)
        values = [record.get(key) for key in HEADLINE_KEYS]
        nonfinite = any(key in record and record[key] is None for key in HEADLINE_KEYS)
        numbers = [float(v) if isinstance(v, (int, float)) else np.nan for v in values]
        rows.setdefault(run_id, []).append([step, *numbers, float(nonfinite)])
    return [(run_id, np.array(r, dtype=np.float64).tobytes()) for run_id, r in rows.items()]


def table(read: Read, run_id: str) -> np.ndarray:
    """The run's headline rows, one per stored step (a step written again: its last row)."""
    data = read("SELECT data FROM headline_blocks WHERE run_id = ? ORDER BY rowid", (run_id,))
    if not data:
        return np.empty((0, COLUMNS))
    rows = np.frombuffer(b"".join(d for (d,) in data), dtype=np.float64).reshape(-1, COLUMNS)
    steps = rows[:, 0]
    if np.all(steps[1:] > steps[:-1]):
        return rows
    _, last = np.unique(steps[::-1], return_index=True)  # sorted steps, the last written
    return rows[len(rows) - 1 - last]


def bucket_extremes(rows: np.ndarray, max_points: int) -> list[int]:
    """The steps `select` keeps with HEADLINE_KEYS, from a `table`: each bucket's smallest
    and largest value of each key, every non-finite record, the first and the last."""
    n = len(rows)
    steps = rows[:, 0].astype(np.int64)
    if n <= max_points:
        return steps.tolist()
    keys = len(HEADLINE_KEYS)
    buckets = (max_points - 2) // (2 * keys)
    if buckets < 1:  # too small a budget for the keys: evenly spaced records, as `select`
        wanted = sorted({round(i * (n - 1) / (max_points - 1)) for i in range(max_points)})
        return steps[wanted].tolist()
    edges = np.array([round(b * n / buckets) for b in range(buckets + 1)])
    kept = {0, n - 1, *np.flatnonzero(rows[:, -1] > 0).tolist()}
    # Row indices of each bucket, one bucket a row, padded with the bucket's first row.
    index = edges[:-1, None] + np.arange(int(np.diff(edges).max()))[None, :]
    index = np.where(index < edges[1:, None], index, edges[:-1, None])
    for column in range(1, keys + 1):
        values = rows[index, column]
        present = ~np.isnan(values)
        for sign in (1.0, -1.0):  # smallest, then largest
            best = np.where(present, sign * values, np.inf).argmin(axis=1)
            rows_of = np.arange(buckets)
            chosen = index[rows_of, best][present[rows_of, best]]
            kept.update(chosen.tolist())
    return steps[sorted(kept)].tolist()


def steps(read: Read, run_id: str, count: int, max_points: int) -> list[int] | None:
    """Steps of at most ~`max_points` of the run's `count` records (`bucket_extremes`),
    read from the headline blocks alone; None where they do not match the stored records
    (records stored before the blocks existed, or some deleted since)."""
    rows = table(read, run_id)
    if len(rows) != count:
        return None
    return bucket_extremes(rows, max_points)


def history(read: Read, run_id: str, count: int, max_points: int) -> Iterator[str] | None:
    """The JSON texts of the records `steps` keeps, in step order; None where some of the
    run's records predate the headlines table (the full scan serves those)."""
    kept = steps(read, run_id, count, max_points)
    return None if kept is None else records_at(read, run_id, kept)


def records_at(read: Read, run_id: str, steps: list[int]) -> Iterator[str]:
    """The JSON texts of the run's records at `steps` (sorted), in step order."""
    for start in range(0, len(steps), STEPS_PER_QUERY):
        chunk = steps[start : start + STEPS_PER_QUERY]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT data FROM records WHERE run_id = ? AND step IN ({marks}) ORDER BY step"
        for (data,) in read(sql, (run_id, *chunk)):
            yield decode_record(data)


class Downsampling:
    """The store's downsampled reading of a long history (mixed into `Store`)."""

    def _read(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        raise NotImplementedError

    def downsampled(self, run_id: str, count: int, max_points: int) -> Iterator[str] | None:
        """Texts of ~`max_points` of the run's `count` records (`history`), or None."""
        return history(self._read, run_id, count, max_points)
