"""Metric history: min/max-bucket downsampling and CSV export of stored records."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from collections.abc import Sequence
from typing import Any

#: Series whose spikes a downsampled history must keep.
HEADLINE_KEYS = ("loss", "accuracy", "test_loss", "test_accuracy")


def downsample(
    records: Sequence[dict[str, Any]], max_points: int, keys: Sequence[str]
) -> list[int]:
    """Indices of at most `max_points` records that keep each key's min and max per bucket.

    Buckets split the step range evenly; each key contributes the record of its
    smallest and of its largest value in every bucket (among records that hold
    the key), so spikes survive. Non-finite values (null) are always kept. The
    first and last records are always kept.
    """
    n = len(records)
    if n <= max_points:
        return list(range(n))
    keys = list(keys) or ["loss"]
    buckets = (max_points - 2) // (2 * len(keys))
    if buckets < 1:  # too many series for the budget: evenly spaced records
        return sorted({round(i * (n - 1) / (max_points - 1)) for i in range(max_points)})
    keep = {0, n - 1}
    edges = [round(b * n / buckets) for b in range(buckets + 1)]
    for lo, hi in itertools.pairwise(edges):
        for key in keys:
            keep.update(_extremes(records, lo, hi, key))
    return sorted(keep)


def _extremes(records: Sequence[dict[str, Any]], lo: int, hi: int, key: str) -> set[int]:
    """Indices in [lo, hi) of the smallest and largest finite `key`, and of every null `key`."""
    found: set[int] = set()
    best_lo = best_hi = None
    for i in range(lo, hi):
        value = records[i].get(key)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            if value is None and key in records[i]:
                found.add(i)  # a non-finite value is news: never drop it
            continue
        if best_lo is None or value < records[best_lo][key]:
            best_lo = i
        if best_hi is None or value > records[best_hi][key]:
            best_hi = i
    if best_lo is not None and best_hi is not None:
        found.update((best_lo, best_hi))
    return found


def numeric_keys(records: Sequence[dict[str, Any]]) -> list[str]:
    """Every numeric field of `records` but `step`, sorted."""
    return sorted(
        {
            k
            for r in records
            for k, v in r.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "step"
        }
    )


def select_fields(record: dict[str, Any], fields: Sequence[str] | None) -> dict[str, Any]:
    if not fields:
        return record
    return {"step": record["step"], **{f: record[f] for f in fields if f in record and f != "step"}}


def to_csv(records: Sequence[dict[str, Any]], fields: Sequence[str] | None = None) -> str:
    """CSV with a header row, `step` first, one row per record; lists as JSON text."""
    if fields:
        columns = ["step", *[f for f in fields if f != "step"]]
    else:
        seen: dict[str, None] = {"step": None}
        for record in records:
            for key in record:
                seen.setdefault(key, None)
        columns = list(seen)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        row = []
        for column in columns:
            value = record.get(column)
            row.append(
                "" if value is None else json.dumps(value) if isinstance(value, list) else value
            )
        writer.writerow(row)
    return out.getvalue()
