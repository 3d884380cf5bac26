"""float32 runs: every array in float32, records as JSON, training close to float64's."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synthgrad_core import ConfigError, TrainConfig, Trainer, dumps
from synthgrad_core.seeds import SeedBatch

PAPERISH = {
    "dataset": "digits",
    "hidden": (32, 32),
    "activation": "relu",
    "loss": "cross_entropy",
    "batch_norm": "on",
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "sg_hidden": (64, 64),
    "sg_batch_norm": "on",
    "sg_optimizer": "adam",
    "sg_learning_rate": 1e-4,
    "epochs": 4,
    "diagnostics_every": 5,
}


def trained(method: str, dtype: str) -> Trainer:
    trainer = Trainer(TrainConfig(**PAPERISH, method=method, dtype=dtype))  # type: ignore[arg-type]
    for record in trainer:
        json.loads(dumps(record))  # no numpy float32 left in a record
    return trainer


@pytest.mark.parametrize("method", ["backprop", "dni", "cdni", "feedback_alignment"])
def test_float32_trains_like_float64(method: str) -> None:
    single, double = trained(method, "float32"), trained(method, "float64")
    state = single.capture()
    floats = {name: a.dtype for name, a in state.arrays.items() if a.dtype.kind == "f"}
    assert set(floats.values()) == {np.dtype(np.float32)}, floats
    assert single.data.x_train.dtype == np.float32
    assert {h.dtype for h in single.net.forward(single.data.x_test[:8])[0].values()} == {
        np.dtype(np.float32)
    }
    a, b = single.summary(), double.summary()
    assert a["status"] == b["status"] == "finished"
    assert abs(a["test_accuracy"] - b["test_accuracy"]) < 0.03, (a, b)
    assert min(a["test_accuracy"], b["test_accuracy"]) > 0.4  # both learned
    assert a["loss"] == pytest.approx(b["loss"], rel=0.2)


def test_float64_is_the_default_and_a_branch_keeps_the_type() -> None:
    trainer = Trainer(TrainConfig(dataset="digits", epochs=1, method="dni"))
    assert trainer.config.dtype == "float64"
    assert trainer.net.flat_weights.dtype == np.float64
    trainer.step()
    other = Trainer(TrainConfig(dataset="digits", epochs=1, method="dni", dtype="float32"))
    with pytest.raises(ConfigError) as err:
        other.restore(trainer.capture())
    assert err.value.field == "dtype"
    with pytest.raises(ConfigError) as err:
        TrainConfig(dtype="float16").resolve()
    assert err.value.field == "dtype"


def test_batched_float32_seeds_train_in_float32() -> None:
    cfg = TrainConfig(**PAPERISH, method="cdni", dtype="float32")  # type: ignore[arg-type]
    batch = SeedBatch(cfg, [1, 2])
    records = batch.step()
    assert all(r is not None and np.isfinite(r["loss"]) for r in records)
    assert {a.dtype for a in batch.named_state().values() if a.dtype.kind == "f"} == {
        np.dtype(np.float32)
    }
