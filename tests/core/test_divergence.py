"""Why a run diverged: the step, what went first, what ran away, and advice from its config."""

from __future__ import annotations

from synthgrad_core import TrainConfig, Trainer
from synthgrad_core.config import TrainConfig as Config
from synthgrad_core.divergence import Watch, advice, explain


def test_a_runaway_module_is_named_with_its_last_finite_values_and_advice() -> None:
    trainer = Trainer(
        TrainConfig(
            dataset="digits",
            method="dni",
            examples=600,
            epochs=20,
            seed=1,
            sg_learning_rate=0.08,
        )
    )
    for _ in trainer:
        pass
    why = trainer.summary()["divergence"]
    assert trainer.status == "diverged" and why["step"] == trainer.diverged_at
    assert why["first"] == "module_loss_h1" and why["non_finite"][0] == "module_loss_h1"
    ran = why["ran_away"]
    assert ran["figure"].startswith("module_loss_h") and ran["to"] > 1000 * ran["from"]
    assert why["last_finite"]["step"] == ran["to_step"] < trainer.diverged_at
    assert why["advice"][0].startswith("a lower module learning rate: sg_learning_rate 0.04")
    assert "ran away" in why["text"] and why["text"].startswith(f"At step {trainer.diverged_at}")


def test_a_loss_that_overflows_first_says_so() -> None:
    record = {"step": 7, "loss": float("inf")}
    config = Config(dataset="digits", learning_rate=100.0).resolve()
    why = explain(record, Watch(), config, [], [])
    assert why["first"] == "loss" and why["ran_away"] is None
    assert why["text"].startswith("At step 7 the loss became non-finite.")


def test_advice_follows_the_config() -> None:
    pipelined = Config(dataset="digits", method="dni", execution="pipelined", workers=2)
    tips = " | ".join(advice(pipelined.resolve(), None))
    assert (
        "learning_rate 0.05 (half of 0.1)" in tips
        and "sg_learning_rate 0.015 (half of 0.03)" in tips
    )
    assert "optimizer adam" in tips and "batch_norm on" in tips and "workers 1" in tips
    settled = Config(dataset="digits", optimizer="adam", batch_norm="on", learning_rate=0.01)
    tips = " | ".join(advice(settled.resolve(), None))
    assert "adam" not in tips and "batch_norm" not in tips and "sg_learning_rate" not in tips
