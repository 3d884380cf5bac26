"""Metric history: min/max-bucket downsampling and JSON/CSV export, streamed in constant memory.

An export reads the store a chunk at a time and yields text as it goes; a
downsampled one keeps only the current bucket's candidates. Memory stays flat
however long the run (docs/reliability.md has the figures).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

#: Series whose spikes a downsampled history must keep.
HEADLINE_KEYS = ("loss", "accuracy", "test_loss", "test_accuracy")
#: Characters of output gathered before each yield.
CHUNK_CHARS = 64 * 1024
#: Records read to choose the series a downsample keeps when no fields are named.
KEY_SAMPLE = 50
#: CSV cells starting with these are formulas to a spreadsheet: they get a leading '.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Record = dict[str, Any]


class InvalidQuery(ValueError):
    """A query parameter names something the run does not have."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


def select(
    records: Iterable[Record], n: int, max_points: int, keys: Sequence[str]
) -> Iterator[tuple[int, Record]]:
    """(index, record) of at most ~`max_points` of `n` records, keeping each key's extremes.

    Buckets split the index range evenly; each key contributes the record of its
    smallest and of its largest value in every bucket (among records that hold
    the key), so spikes survive. Non-finite values (null) are always kept, as are
    the first and last records. One pass; only the current bucket's candidates
    are held.
    """
    if n <= max_points:
        yield from enumerate(records)
        return
    keys = list(keys) or ["loss"]
    buckets = (max_points - 2) // (2 * len(keys))
    if buckets < 1:  # too many series for the budget: evenly spaced records
        wanted = {round(i * (n - 1) / (max_points - 1)) for i in range(max_points)}
        yield from ((i, r) for i, r in enumerate(records) if i in wanted)
        return
    edges = [round(b * n / buckets) for b in range(buckets + 1)]
    bucket = _Bucket(keys)
    upper = 1
    for i, record in enumerate(records):
        if i >= n:
            break
        while i >= edges[upper]:
            yield from bucket.drain()
            upper += 1
        bucket.add(i, record, always=i in (0, n - 1))
    yield from bucket.drain()


class _Bucket:
    """Candidates of one bucket: per key the smallest and largest finite value, and nulls."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.kept: dict[int, Record] = {}
        self.low: dict[str, tuple[float, int, Record]] = {}
        self.high: dict[str, tuple[float, int, Record]] = {}

    def add(self, i: int, record: Record, always: bool) -> None:
        if always:
            self.kept[i] = record
        for key in self.keys:
            value = record.get(key)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                if value is None and key in record:
                    self.kept[i] = record  # a non-finite value is news: never drop it
                continue
            if key not in self.low or value < self.low[key][0]:
                self.low[key] = (value, i, record)
            if key not in self.high or value > self.high[key][0]:
                self.high[key] = (value, i, record)

    def drain(self) -> Iterator[tuple[int, Record]]:
        for _, i, record in (*self.low.values(), *self.high.values()):
            self.kept[i] = record
        yield from sorted(self.kept.items(), key=lambda item: item[0])
        self.kept, self.low, self.high = {}, {}, {}


def downsample(records: Sequence[Record], max_points: int, keys: Sequence[str]) -> list[int]:
    """Indices of the records `select` keeps (a list in memory: for small histories)."""
    return [i for i, _ in select(records, len(records), max_points, keys)]


def numeric_keys(records: Iterable[Record]) -> list[str]:
    """Every numeric field of `records` but `step`, sorted."""
    return sorted(
        {
            k
            for r in records
            for k, v in r.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "step"
        }
    )


def select_fields(record: Record, fields: Sequence[str] | None) -> Record:
    if not fields:
        return record
    return {"step": record["step"], **{f: record[f] for f in fields if f in record and f != "step"}}


def parse_fields(fields: str | None, known: Sequence[str]) -> list[str] | None:
    """The named fields, each checked against the run's record keys (InvalidQuery if not)."""
    if not fields:
        return None
    wanted = list(dict.fromkeys(f.strip() for f in fields.split(",") if f.strip()))
    allowed = set(known)
    unknown = [f for f in wanted if f not in allowed]
    if unknown:
        shown = ", ".join(repr(f[:40]) for f in unknown[:3])
        raise InvalidQuery(
            "fields", f"this run's records have no field {shown}; see /api/runs/{{id}}/metrics"
        )
    return wanted or None


@dataclass
class Export:
    """A run's history as a stream of text: what the metrics route sends."""

    media_type: str
    chunks: Iterator[str]


def export(
    run_id: str,
    texts: Iterator[str],
    count: int,
    columns: Sequence[str],
    *,
    fields: list[str] | None,
    max_points: int | None,
    fmt: str,
) -> Export:
    """The run's first `count` records (`texts`, in step order) as JSON or CSV chunks.

    `columns` are the run's possible record keys (CSV columns when no fields are named).
    """
    downsampled = max_points is not None and count > max_points
    if fmt == "json" and fields is None and not downsampled:
        return Export("application/json", _json_verbatim(run_id, texts, count))
    records: Iterable[Record] = (json.loads(t) for t in texts)
    chosen = _downsampled(texts, count, max_points, fields) if downsampled else records
    trimmed = (select_fields(r, fields) for r in chosen)
    if fmt == "csv":
        return Export("text/csv", _csv(trimmed, ["step", *(fields or columns[1:])]))
    return Export("application/json", _json(run_id, trimmed, downsampled))


def export_chosen(run_id: str, texts: Iterator[str], columns: Sequence[str], *, fmt: str) -> Export:
    """A downsampled history already chosen (`Store.downsampled`): JSON spliced verbatim,
    or CSV with every column."""
    if fmt == "csv":
        return Export("text/csv", _csv((json.loads(t) for t in texts), list(columns)))

    def pieces() -> Iterator[str]:
        yield json.dumps({"run_id": run_id, "downsampled": True})[:-1]
        yield ',"records":['
        n = 0
        for text in texts:
            yield text if n == 0 else "," + text
            n += 1
        yield f'],"count":{n}}}'

    return Export("application/json", _gather(pieces()))


def _downsampled(
    texts: Iterator[str], count: int, max_points: int | None, fields: list[str] | None
) -> Iterator[Record]:
    """At most `max_points` of the `count` records, min/max per bucket of `fields` (or of
    every numeric key of the first records)."""
    assert max_points is not None
    head = [json.loads(t) for t in _take(texts, KEY_SAMPLE)]
    keys = fields or numeric_keys(head)
    rest = (json.loads(t) for t in texts)
    return (r for _, r in select(_chain(head, rest), count, max_points, keys))


def _take(texts: Iterator[str], n: int) -> list[str]:
    out = []
    for text in texts:
        out.append(text)
        if len(out) == n:
            break
    return out


def _chain(head: list[Record], rest: Iterator[Record]) -> Iterator[Record]:
    yield from head
    yield from rest


def _gather(pieces: Iterable[str]) -> Iterator[str]:
    buffer: list[str] = []
    size = 0
    for piece in pieces:
        buffer.append(piece)
        size += len(piece)
        if size >= CHUNK_CHARS:
            yield "".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer)


def _json_verbatim(run_id: str, texts: Iterator[str], count: int) -> Iterator[str]:
    """The stored JSON texts spliced in as they are: no parse, no re-encode."""

    def pieces() -> Iterator[str]:
        yield json.dumps({"run_id": run_id, "count": count, "downsampled": False})[:-1]
        yield ',"records":['
        for i, text in enumerate(texts):
            yield text if i == 0 else "," + text
        yield "]}"

    return _gather(pieces())


def _json(run_id: str, records: Iterator[Record], downsampled: bool) -> Iterator[str]:
    def pieces() -> Iterator[str]:
        yield json.dumps({"run_id": run_id, "downsampled": downsampled})[:-1]
        yield ',"records":['
        n = 0
        for record in records:
            yield ("," if n else "") + json.dumps(record, separators=(",", ":"))
            n += 1
        yield f'],"count":{n}}}'

    return _gather(pieces())


def _csv(records: Iterator[Record], columns: list[str]) -> Iterator[str]:
    def pieces() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([csv_cell(c) for c in columns])
        for record in records:
            writer.writerow([csv_cell(record.get(c)) for c in columns])
            if out.tell() >= CHUNK_CHARS:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()

    return pieces()


def csv_cell(value: Any) -> Any:
    """A CSV cell: lists as JSON text, null empty, text that a spreadsheet runs defused."""
    if value is None:
        return ""
    if isinstance(value, list):
        return json.dumps(value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(records: Sequence[Record], fields: Sequence[str] | None = None) -> str:
    """CSV with a header row, `step` first, one row per record; lists as JSON text."""
    if fields:
        columns = ["step", *[f for f in fields if f != "step"]]
    else:
        seen: dict[str, None] = {"step": None}
        for record in records:
            for key in record:
                seen.setdefault(key, None)
        columns = list(seen)
    return "".join(_csv(iter(records), columns))
