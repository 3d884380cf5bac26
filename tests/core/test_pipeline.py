"""Layer-pipelined DNI: equal to sequential where nothing is late, decoupled where it may be."""

from __future__ import annotations

import time
from typing import Any

import pytest

from synthgrad_core import TrainConfig, Trainer, without_timing
from synthgrad_core.factory import make_trainer
from synthgrad_core.pipeline import PipelinedTrainer, plan_stages

CASES = [
    {},
    {"method": "cdni", "sg_hidden": 16, "optimizer": "adam", "sg_optimizer": "momentum"},
    {"update_probability": 0.6, "diagnostics_every": 3, "test_every": 7, "histogram_every": 5},
    {"batch_norm": "on", "diagnostics_every": 2, "optimizer": "adam"},
    {"method": "cdni", "sg_hidden": (16, 16), "sg_batch_norm": "on", "sg_optimizer": "adam"},
]


def records(trainer: Trainer) -> list[dict[str, Any]]:
    out = []
    while not trainer.done:
        out.append(without_timing(trainer.step()))
    trainer.close()
    return out


IDS = ["dni", "cdni-hidden-adam", "async-periodic", "batch-norm", "module-batch-norm"]


@pytest.mark.parametrize("extra", CASES, ids=IDS)
def test_one_worker_equals_sequential_record_for_record(extra: dict[str, Any]) -> None:
    config = {"dataset": "digits", "method": "dni", "epochs": 2, **extra}
    sequential = records(Trainer(TrainConfig(**config)))
    pipelined = PipelinedTrainer(TrainConfig(**config, execution="pipelined", workers=1))
    assert len(pipelined.stages) == 1
    assert records(pipelined) == sequential


@pytest.mark.parametrize("extra", CASES, ids=IDS)
def test_three_stages_in_lockstep_equal_sequential(extra: dict[str, Any]) -> None:
    # One batch in flight: every target and true gradient is back before the next batch,
    # so the stage machinery (targets down, truth down, fragments) must reproduce the
    # sequential engine exactly.
    config = {"dataset": "digits", "method": "dni", "epochs": 2, "hidden": (32, 32, 16)}
    config.update(extra)
    sequential = records(Trainer(TrainConfig(**config)))
    cfg = TrainConfig(**config, execution="pipelined", workers=3)  # type: ignore[arg-type]
    pipelined = PipelinedTrainer(cfg, window=1)
    assert len(pipelined.stages) == 3
    assert records(pipelined) == sequential


@pytest.mark.parametrize("workers", [2, 3])
def test_the_same_config_and_seed_give_the_same_records_with_batches_in_flight(
    workers: int,
) -> None:
    # Each stage's top module learns from batch t's late target right before the stage
    # starts batch t + window, whatever the threads' timing: two runs are one run. (When
    # it learned as targets arrived, 129 of these 135 records differed between two runs.)
    config = TrainConfig(
        dataset="digits",
        method="dni",
        execution="pipelined",
        workers=workers,
        epochs=3,
        hidden=(64, 64, 32),
        update_probability=0.8,
        histogram_every=7,
    )
    first, second = records(make_trainer(config)), records(make_trainer(config))
    assert len(first) == 135 and first == second


def test_two_workers_overlap_and_still_learn() -> None:
    config = {"dataset": "digits", "method": "dni", "hidden": (128, 128), "epochs": 10}
    pipelined = PipelinedTrainer(TrainConfig(**config, execution="pipelined", workers=2))
    timeline: list[list[Any]] = []
    while not pipelined.done:
        record = pipelined.step()
        timeline += record["timeline"]
        assert {"cos_h1", "cos_h2", "w_norm_l3", "module_loss_h1"} <= set(record)
    assert pipelined.status == "finished"
    assert {event[0] for event in timeline} == {0, 1}  # a lane per stage
    # Stage 0 worked on a later batch while stage 1 worked on an earlier one: some of
    # their busy intervals overlap in time.
    busy = [[(s, e) for lane, kind, s, e in timeline if lane == k and kind != "w"] for k in (0, 1)]
    overlaps = sum(1 for a in busy[0] for b in busy[1] if a[0] < b[1] and b[0] < a[1])
    assert overlaps > 0
    sequential = Trainer(TrainConfig(**config))  # type: ignore[arg-type]
    list(sequential)
    gap = sequential.summary()["test_accuracy"] - pipelined.summary()["test_accuracy"]
    assert gap < 0.05  # late module targets cost little here (the target: 1.5 points)


def test_a_reader_that_stops_reading_stops_the_pipeline() -> None:
    cfg = TrainConfig(dataset="digits", method="dni", epochs=5, execution="pipelined", workers=2)
    trainer = PipelinedTrainer(cfg)
    trainer.step()
    time.sleep(0.3)  # paused: nobody calls step()
    # Stage 0 takes at most `window` batches ahead of what was read.
    assert trainer.step_count <= 1 + trainer.window
    trainer.close()


def test_locked_rules_train_sequentially_and_say_so() -> None:
    for method in ("backprop", "feedback_alignment"):
        trainer = make_trainer(
            TrainConfig(dataset="digits", method=method, epochs=1, execution="pipelined")
        )
        assert not isinstance(trainer, PipelinedTrainer)
        assert "locked" in trainer.summary()["notes"][0]


def test_divergence_stops_every_stage() -> None:
    cfg = TrainConfig(
        dataset="digits",
        method="dni",
        hidden=(128, 128, 64),
        learning_rate=1e4,
        epochs=2,
        execution="pipelined",
        workers=3,
    )
    trainer = PipelinedTrainer(cfg)
    while not trainer.done:
        trainer.step()
    assert trainer.status == "diverged" and trainer.diverged_at is not None


def test_stages_are_balanced_by_cost() -> None:
    assert plan_stages([1.0, 1.0, 0.1], 2) == [(0, 1), (1, 3)]
    assert plan_stages([5.0, 1.0, 1.0, 1.0], 2) == [(0, 1), (1, 4)]
    assert plan_stages([1.0, 2.0, 3.0], 3) == [(0, 1), (1, 2), (2, 3)]
