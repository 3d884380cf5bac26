"""The lean viewer stream's content: which fields a page's view draws, and columnar frames.

A page draws a handful of series at a few hundred pixels wide, a few times a
second. A lean frame carries only those series, thinned per field to its
smallest, largest and last value (and its first null) over the records it
covers, with numbers rounded to what a chart can show. Frames are columnar:
the rows (records) they keep once, as `step`, `epoch` and `wall_time` arrays,
and each field as `[row indices, values]`. Sans-I/O: plain dicts in, JSON-ready
dicts out; the stream hub builds one per view per tick and sends the same text
to every viewer of that view. The format is in docs/api.md ("Lean stream").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from synthgrad_core.config import ResolvedConfig
from synthgrad_core.trainer import record_keys

Record = dict[str, Any]

#: Fields every run page draws, whatever its layer.
HEADLINE = ("loss", "accuracy", "test_loss", "test_accuracy")
#: Per hidden layer, for the layer's charts and for the diagram and heatmap (every layer).
CHART_HIDDEN = ("cos", "rel_err", "norm_ratio", "module_loss")
DIAGRAM_HIDDEN = ("cos", "rel_err", "norm_ratio", "module_loss")
CHART_LAYER = ("w_norm", "w_std", "update_ratio")
DIAGRAM_LAYER = ("update_ratio",)
#: Fields that are not numbers: sent as they are, never thinned by value.
EXTRAS = ("timeline", "timeline_window", "config_change")
#: Extras a frame keeps only for its newest record (the timeline shows the last seconds).
LATEST_ONLY = ("timeline", "timeline_window")
#: Most fields a view may name (a 16-layer net's default view is ~90).
MAX_FIELDS = 256
#: Significant digits kept: a chart a thousand pixels tall resolves about three.
DIGITS = 4


class InvalidView(ValueError):
    """A lean view names a layer or field the run does not have."""


def view_fields(config: ResolvedConfig, layer: int) -> tuple[str, ...]:
    """The fields the run page draws with hidden layer `layer` selected, sorted."""
    depth = len(config.hidden)
    if not 1 <= layer <= max(depth, 1):
        raise InvalidView(
            f"layer: must be between 1 and {max(depth, 1)} (this run's hidden layers)"
        )
    wanted = set(HEADLINE) | set(EXTRAS)
    wanted |= {f"{f}_h{layer}" for f in CHART_HIDDEN} | {f"{f}_l{layer}" for f in CHART_LAYER}
    for i in range(1, depth + 1):
        wanted |= {f"{f}_h{i}" for f in DIAGRAM_HIDDEN} | {f"{f}_l{i}" for f in DIAGRAM_LAYER}
    known = set(record_keys(config))
    return tuple(sorted(wanted & known))


def named_fields(config: ResolvedConfig, fields: str) -> tuple[str, ...]:
    """The fields a client names (comma-separated), each checked against the run's records."""
    names = sorted({f.strip() for f in fields.split(",") if f.strip()} - {"step"})
    if not names or len(names) > MAX_FIELDS:
        raise InvalidView(f"fields: name between 1 and {MAX_FIELDS} of the run's record fields")
    known = set(record_keys(config))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InvalidView(f"fields: this run's records have no field {unknown[0][:40]!r}")
    return tuple(names)


def rounded(value: Any) -> Any:
    """A number to DIGITS significant digits (non-finite: None); anything else as it is."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return float(f"{value:.{DIGITS}g}")
    return value


def _x_columns(rows: list[Record]) -> dict[str, list[Any]]:
    return {
        "step": [r["step"] for r in rows],
        "epoch": [rounded(r.get("epoch")) for r in rows],
        # Wall time to the millisecond: the x axis "training time" never needs finer.
        "wall_time": [
            None if r.get("wall_time") is None else round(r["wall_time"], 3) for r in rows
        ],
    }


def _kept(records: Sequence[Record], field: str, buckets: int) -> list[int]:
    """Indices of the records kept for `field`: per bucket its first null, smallest, largest
    and last value; every record when there are no more than that."""
    holding = [i for i, r in enumerate(records) if field in r]
    if len(holding) <= 3 * buckets:
        return holding
    kept: set[int] = set()
    for b in range(buckets):
        part = holding[b * len(holding) // buckets : (b + 1) * len(holding) // buckets]
        finite = [i for i in part if records[i][field] is not None]
        nulls = [i for i in part if records[i][field] is None]
        kept.update(nulls[:1])
        if finite:
            kept.add(min(finite, key=lambda i: records[i][field]))
            kept.add(max(finite, key=lambda i: records[i][field]))
        kept.add(part[-1])
    return sorted(kept)


def _chosen(records: Sequence[Record], field: str, buckets: int, extras_kept: int) -> list[int]:
    """Indices of the records whose value of `field` a frame keeps."""
    if field in LATEST_ONLY or field.startswith("hist_"):
        return [i for i, r in enumerate(records) if field in r][-extras_kept:]
    if field in EXTRAS:
        return [i for i, r in enumerate(records) if field in r]
    return _kept(records, field, buckets)


def columns(
    records: Sequence[Record], fields: Sequence[str], buckets: int = 1, extras_kept: int = 1
) -> dict[str, Any]:
    """Records (oldest first) as a columnar frame body: x columns of the rows kept, and per
    field `[row indices, values]`.

    Numeric fields keep per bucket their first null (a non-finite value is news), their
    smallest and largest value (spikes show) and their last one. Extras keep every
    `config_change` and the newest `extras_kept` records' timelines.
    """
    chosen = {field: _chosen(records, field, buckets, extras_kept) for field in fields}
    used = sorted({i for kept in chosen.values() for i in kept})
    row_of = {i: k for k, i in enumerate(used)}
    series = {}
    for field, kept in chosen.items():
        if kept:
            values = [records[i][field] for i in kept]
            if not isinstance(values[0], (list, str)):
                values = [rounded(v) for v in values]
            series[field] = [[row_of[i] for i in kept], values]
    return {**_x_columns([records[i] for i in used]), "series": series}
