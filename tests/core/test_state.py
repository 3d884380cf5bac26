"""A trainer's state: captured, saved, restored; a branch goes on exactly or changes what it may."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from synthgrad_core import ConfigError, TrainConfig, Trainer, dumps, without_timing
from synthgrad_core.pipeline import PipelinedTrainer
from synthgrad_core.state import FORMAT, CaptureError, StateError, TrainerState, load, save

BASE = {"dataset": "digits", "epochs": 2, "histogram_every": 5, "test_every": 7}
CASES = [
    {"method": "backprop", "optimizer": "momentum"},
    {"method": "dni", "optimizer": "adam", "sg_optimizer": "momentum", "update_probability": 0.7},
    {"method": "cdni", "sg_hidden": 16, "sg_optimizer": "adam", "diagnostics_every": 3},
    {"method": "feedback_alignment", "optimizer": "adam"},
    {"method": "dni", "batch_norm": "on", "optimizer": "adam"},
]


def rest(trainer: Trainer) -> list[str]:
    out = [dumps(dict(sorted(without_timing(r).items()))) for r in trainer]
    trainer.close()
    return out


def trained(cfg: TrainConfig, steps: int, cls: type[Trainer] = Trainer) -> Trainer:
    trainer = cls(cfg)
    for _ in range(steps):
        trainer.step()
    return trainer


@pytest.mark.parametrize("extra", CASES, ids=[*(c["method"] for c in CASES[:4]), "batch-norm"])
def test_a_restored_trainer_continues_exactly(extra: dict[str, Any], tmp_path: Path) -> None:
    cfg = TrainConfig(**BASE, **extra)
    original = trained(cfg, 40)
    save(original.capture(), tmp_path / "state.npz")
    state = load(tmp_path / "state.npz")
    assert state.step == 40
    restored = Trainer(cfg)
    restored.restore(state)
    assert rest(restored) == rest(original)
    assert restored.summary()["accuracy"] == original.summary()["accuracy"]


@pytest.mark.parametrize("extra", CASES[1:3], ids=["dni", "cdni"])
def test_a_pipelined_trainer_with_one_worker_continues_exactly(extra: dict[str, Any]) -> None:
    cfg = TrainConfig(**BASE, **extra, execution="pipelined", workers=1)
    original = trained(cfg, 40, PipelinedTrainer)
    state = original.capture()
    restored = PipelinedTrainer(cfg)
    restored.restore(state)
    assert rest(restored) == rest(original)
    # The same state goes on sequentially too: one worker equals the sequential engine.
    sequential = Trainer(dataclasses.replace(cfg, execution="sequential"))
    sequential.restore(state)
    assert rest(sequential) == rest(trained(cfg, 40, PipelinedTrainer))


def test_batches_in_flight_cannot_be_captured() -> None:
    cfg = TrainConfig(**BASE, method="dni", hidden=(32, 32), execution="pipelined", workers=2)
    trainer = trained(cfg, 3, PipelinedTrainer)
    with pytest.raises(CaptureError, match="one worker"):
        trainer.capture()
    trainer.close()


def test_a_branch_to_backprop_trains_with_backprop_from_the_same_weights() -> None:
    dni = trained(TrainConfig(**BASE, method="dni"), 30)
    state = dni.capture()
    branch = Trainer(TrainConfig(**BASE, method="backprop"))
    branch.restore(state)
    for got, want in zip(branch.net.weights, dni.net.weights, strict=True):
        np.testing.assert_array_equal(got, want)
    record = branch.step()
    assert record["step"] == 31 and record["cos_h1"] == 1.0  # the true gradient
    assert "branched from dni at step 30" in branch.notes[0]


def test_changed_learning_rate_and_optimizer_take_effect() -> None:
    cfg = TrainConfig(**BASE, method="dni", optimizer="adam")
    state = trained(cfg, 20).capture()
    branch = Trainer(dataclasses.replace(cfg, optimizer="sgd", learning_rate=0.01))
    branch.restore(state)  # another optimiser: its moments start fresh
    assert branch.optimizer.learning_rate == 0.01
    same = Trainer(cfg)
    same.restore(state)
    assert rest(branch) != rest(same)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"dataset": "addition"}, "dataset"),
        ({"hidden": (64, 64)}, "hidden"),
        ({"activation": "tanh"}, "activation"),
        ({"seed": 5}, "seed"),
        ({"epochs": 1}, "epochs"),
    ],
)
def test_a_branch_that_does_not_fit_the_state_names_the_field(
    change: dict[str, Any], field: str
) -> None:
    state = trained(TrainConfig(**BASE, method="dni"), 60).capture()  # 60 steps > 1 epoch
    with pytest.raises(ConfigError) as raised:
        Trainer(TrainConfig(**{**BASE, "method": "dni", **change})).restore(state)
    assert raised.value.field == field


def test_state_files_that_are_not_one_say_so(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="no such file"):
        load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(StateError, match="not a synthgrad state file"):
        load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(StateError, match="no metadata"):
        load(tmp_path / "other.npz")
    state = trained(TrainConfig(**BASE), 2).capture()
    save(TrainerState({**state.meta}, state.arrays), tmp_path / "ok.npz")
    with np.load(tmp_path / "ok.npz") as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    np.savez(tmp_path / "future.npz", __meta__=np.array(json.dumps({**meta, "format": 99})))
    with pytest.raises(StateError, match=f"state format 99; this synthgrad reads format {FORMAT}"):
        load(tmp_path / "future.npz")
    # a file of the previous layout (weights as one flat array) is refused in one line
    np.savez(tmp_path / "old.npz", __meta__=np.array(json.dumps({**meta, "format": 1})))
    with pytest.raises(StateError, match="state format 1; this synthgrad reads format 2") as err:
        load(tmp_path / "old.npz")
    assert "\n" not in str(err.value)


def test_the_state_is_named_after_the_parameters() -> None:
    """Every parameter, buffer and optimiser moment of the net, and every module parameter,
    is in the state under its own name (nothing found by position)."""
    cfg = TrainConfig(
        **BASE, method="dni", hidden=(16,), batch_norm="on", optimizer="adam", sg_hidden=(8,)
    )
    trainer = trained(cfg, 3)
    state = trainer.capture()
    params = trainer.net.parameters()
    names = {p.name for p in params}
    assert names == {f"layer{k}.{part}" for k in range(2) for part in ("weight", "bias")} | {
        "norm0.scale",
        "norm0.shift",
    }
    for p in params:
        np.testing.assert_array_equal(state.arrays[f"net.{p.name}"], p.value)
        for moment in ("m", "v", "t"):
            assert f"opt.{moment}.{p.name}" in state.arrays
    assert int(state.arrays["opt.t.layer0.weight"]) == 3
    module = trainer.rule.modules[0]  # type: ignore[attr-defined]
    for p in module.parameters():
        np.testing.assert_array_equal(state.arrays[f"module.0.param.{p.name}"], p.value)
    assert {"net.norm0.running_mean", "net.norm0.running_var", "order"} <= set(state.arrays)
