"""Downsampling keeps spikes and non-finite points; CSV export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.storage.metrics import HEADLINE_KEYS, downsample, export_chosen, numeric_keys, to_csv
from app.storage.store import Store
from support.live import strict_json
from synthgrad_core.records import dumps


def test_downsample_keeps_every_spike_and_every_null() -> None:
    records = [{"step": i, "loss": 1.0, "cos_h1": 0.5} for i in range(1, 10_001)]
    records[1234]["loss"] = 500.0  # a spike up
    records[7777]["loss"] = -3.0  # and one down
    records[4242]["cos_h1"] = None  # a non-finite value, encoded as null
    keep = downsample(records, 200, ["loss", "cos_h1"])
    assert len(keep) <= 200 + 1  # the null is kept on top of the budget
    assert {1234, 7777, 4242, 0, 9999} <= set(keep)
    assert keep == sorted(keep)


def test_downsample_returns_everything_under_the_budget() -> None:
    records = [{"step": i, "loss": float(i)} for i in range(50)]
    assert downsample(records, 50, ["loss"]) == list(range(50))


def test_numeric_keys_and_csv() -> None:
    records = [{"step": 1, "loss": 0.5, "hist_l1": [1, 2]}, {"step": 2, "loss": None}]
    assert numeric_keys(records) == ["loss"]
    assert to_csv(records).splitlines() == ["step,loss,hist_l1", '1,0.5,"[1, 2]"', "2,,"]


def test_a_long_history_downsampled_from_the_headlines_keeps_what_the_full_scan_keeps(
    tmp_path: Path,
) -> None:
    """The store's headlines path picks exactly the records `select` picks over
    HEADLINE_KEYS, spikes and non-finite values included, and serves them verbatim."""
    records = []
    for step in range(1, 30_001):
        record: dict[str, Any] = {"step": step, "epoch": step / 80, "loss": 5.0 - step * 1e-4}
        record["accuracy"] = 0.5 + (step % 7) * 1e-3
        if step % 80 == 0:
            record["test_loss"], record["test_accuracy"] = 5.0 - step * 1e-4, 0.5
        records.append(record)
    records[12_345]["loss"] = 900.0  # a spike
    records[20_000]["test_loss"] = -1.0  # a dip on an epoch's record
    records[29_998]["loss"] = None  # diverged: non-finite, stored as null
    store = Store(str(tmp_path / "s.sqlite3"))
    texts = [("r", r["step"], 0, dumps(r)) for r in records]
    for start in range(0, len(texts), 170):  # a batch per recorder tick
        store.write_batch(texts[start : start + 170], [])
    store.write_batch(texts[100:120], [])  # steps written again: their last values count
    chosen = store.downsampled("r", len(records), 2000)
    assert chosen is not None
    out = export_chosen("r", chosen, ["step", "loss"], fmt="json")
    body = strict_json("".join(out.chunks))
    steps = [r["step"] for r in body["records"]]
    assert steps == [records[i]["step"] for i in downsample(records, 2000, HEADLINE_KEYS)]
    assert {12_346, 20_001, 29_999, 1, 30_000} <= set(steps)
    assert body["downsampled"] and body["count"] == len(steps) <= 2000
    assert body["records"][-2]["loss"] is None
    assert body["records"][-2] == records[29_998]  # verbatim
    # A budget too small for a min and a max per key: evenly spaced, as the full scan does.
    tiny = strict_json(
        "".join(
            export_chosen("r", store.downsampled("r", 30_000, 5) or iter(()), [], fmt="json").chunks
        )
    )
    assert [r["step"] for r in tiny["records"]] == [
        records[i]["step"] for i in downsample(records, 5, HEADLINE_KEYS)
    ]
    # Records stored before the headlines table: no answer, the full scan serves them.
    store._write(lambda conn: conn.execute("DELETE FROM headline_blocks WHERE rowid < 3"))
    assert store.downsampled("r", len(records), 2000) is None
