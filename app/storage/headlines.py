"""Each stored record's headline numbers, uncompressed beside it: a long run's history is
downsampled from these in milliseconds and only the records it keeps are decoded.

The choice equals `metrics.select` over HEADLINE_KEYS (each bucket's smallest and largest
value of each key, every non-finite value, the first and last record), made with numpy
over one narrow table instead of decompressing and parsing every record.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from app.storage.codec import decode_record
from app.storage.metrics import HEADLINE_KEYS

SCHEMA = """
CREATE TABLE IF NOT EXISTS headlines (
    run_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    loss REAL, accuracy REAL, test_loss REAL, test_accuracy REAL,
    nonfinite INTEGER NOT NULL,
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;
"""
#: One chunk of the headlines of deleted runs (the purger's work after their records).
PURGE = (
    "DELETE FROM headlines WHERE (run_id, step) IN (SELECT run_id, step FROM headlines "
    "WHERE run_id NOT IN (SELECT id FROM runs) LIMIT 2000)"
)
INSERT = "INSERT OR REPLACE INTO headlines VALUES (?, ?, ?, ?, ?, ?, ?)"
#: Steps per query of `records_at` (SQLite bounds a statement's parameters).
STEPS_PER_QUERY = 500

Read = Callable[[str, tuple[Any, ...]], list[Any]]


def row(run_id: str, step: int, text: str) -> tuple[Any, ...]:
    """A record's row of the store's headlines table: its HEADLINE_KEYS values (None where
    absent or not finite) and whether one of them is present but not finite."""
    record = json.loads(text)
    values = [record.get(key) for key in HEADLINE_KEYS]
    nonfinite = any(key in record and record[key] is None for key in HEADLINE_KEYS)
    return (run_id, step, *values, int(nonfinite))


def bucket_extremes(rows: Sequence[Sequence[Any]], max_points: int) -> list[int]:
    """The steps `select` keeps with HEADLINE_KEYS, from rows of (step, *headline values,
    nonfinite): each bucket's smallest and largest value of each key, every non-finite
    record, the first and the last. Vectorised: a long run's rows take milliseconds."""
    n = len(rows)
    table = np.array(rows, dtype=np.float64)  # None becomes nan
    steps = table[:, 0].astype(np.int64)
    if n <= max_points:
        return steps.tolist()
    keys = len(HEADLINE_KEYS)
    buckets = max(1, (max_points - 2) // (2 * keys))
    edges = np.array([round(b * n / buckets) for b in range(buckets + 1)])
    kept = {0, n - 1, *np.flatnonzero(table[:, -1] > 0).tolist()}
    # Row indices of each bucket, one bucket a row, padded with the bucket's first row.
    index = edges[:-1, None] + np.arange(int(np.diff(edges).max()))[None, :]
    index = np.where(index < edges[1:, None], index, edges[:-1, None])
    for column in range(1, keys + 1):
        values = table[index, column]
        present = ~np.isnan(values)
        for sign in (1.0, -1.0):  # smallest, then largest
            best = np.where(present, sign * values, np.inf).argmin(axis=1)
            rows_of = np.arange(buckets)
            chosen = index[rows_of, best][present[rows_of, best]]
            kept.update(chosen.tolist())
    return steps[sorted(kept)].tolist()


def steps(read: Read, run_id: str, count: int, max_points: int) -> list[int] | None:
    """Steps of at most ~`max_points` of the run's `count` records (`bucket_extremes`),
    read from the headlines table alone; None where some of the run's records predate it."""
    rows = read(
        "SELECT step, loss, accuracy, test_loss, test_accuracy, nonfinite FROM headlines "
        "WHERE run_id = ? ORDER BY step",
        (run_id,),
    )
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
