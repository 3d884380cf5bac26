"""Downsampling keeps spikes and non-finite points; CSV export."""

from __future__ import annotations

from app.storage.metrics import downsample, numeric_keys, to_csv


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
