"""The rules against each other: oracle DNI equals backprop; determinism; divergence; fidelity."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from synthgrad_core import TrainConfig, Trainer, dumps, without_timing

SMALL = TrainConfig(
    dataset="addition", bits=4, examples=60, hidden=(12, 8), epochs=3, batch_size=5, seed=11
)


class OracleModule:
    """Returns the true gradient the trainer computed at the pre-step weights."""

    def __init__(self, trainer: Trainer, layer: int) -> None:
        self.trainer, self.layer = trainer, layer

    def predict(self, h: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.trainer.true_gradients[self.layer]

    def context(self) -> None:
        return None

    def update(self, prediction: np.ndarray, target: np.ndarray, context: object) -> np.ndarray:
        return prediction - target


@pytest.mark.parametrize(
    ("activation", "batch_norm"), [("sigmoid", "off"), ("tanh", "off"), ("sigmoid", "on")]
)
def test_dni_with_oracle_module_equals_backprop_step_for_step(
    activation: str, batch_norm: str
) -> None:
    cfg = dataclasses.replace(
        SMALL, activation=activation, diagnostics_every=1, batch_norm=batch_norm
    )
    backprop = Trainer(dataclasses.replace(cfg, method="backprop"))
    dni = Trainer(dataclasses.replace(cfg, method="dni"))
    dni.rule.modules = [OracleModule(dni, k) for k in range(len(cfg.hidden or ()))]  # type: ignore[attr-defined]
    steps = 0
    while not backprop.done:
        backprop.step()
        record = dni.step()
        steps += 1
        for w_bp, w_dni in zip(
            backprop.net.weights + backprop.net.biases,
            dni.net.weights + dni.net.biases,
            strict=True,
        ):
            assert np.max(np.abs(w_bp - w_dni)) <= 1e-12
        assert record["cos_h1"] == pytest.approx(1.0)
    assert steps == backprop.total_steps and dni.done


@pytest.mark.parametrize("method", ["backprop", "dni", "cdni", "feedback_alignment"])
def test_same_config_and_seed_give_identical_records(method: str) -> None:
    cfg = dataclasses.replace(SMALL, method=method, histogram_every=7, test_every=5)
    first = [dumps(without_timing(r)) for r in Trainer(cfg)]
    second = [dumps(without_timing(r)) for r in Trainer(cfg)]
    assert first == second
    other_seed = [dumps(without_timing(r)) for r in Trainer(dataclasses.replace(cfg, seed=12))]
    assert other_seed != first


@pytest.mark.parametrize(
    "cfg",
    [
        TrainConfig(dataset="digits", hidden=(128, 128, 64), learning_rate=1e4, epochs=3),
        TrainConfig(dataset="digits", method="dni", sg_learning_rate=1e4, epochs=3),
    ],
    ids=["network", "module"],
)
def test_absurd_learning_rate_ends_diverged_without_nan_text(cfg: TrainConfig) -> None:
    trainer = Trainer(cfg)
    lines = [dumps(record) for record in trainer]
    assert trainer.status == "diverged"
    assert trainer.diverged_at is not None and trainer.diverged_at < trainer.total_steps
    assert len(lines) == trainer.diverged_at
    assert not any("NaN" in line or "Infinity" in line for line in lines)
    assert '":null' in lines[-1]
    with pytest.raises(RuntimeError, match="diverged"):
        trainer.step()
    assert "NaN" not in dumps(trainer.summary())


def test_backprop_fidelity_is_exact_and_records_have_every_layer() -> None:
    records = list(Trainer(dataclasses.replace(SMALL, histogram_every=10)))
    first = records[0]
    for layer in (1, 2):
        assert first[f"cos_h{layer}"] == pytest.approx(1.0)
        assert first[f"rel_err_h{layer}"] == pytest.approx(0.0, abs=1e-12)
        assert first[f"norm_ratio_h{layer}"] == pytest.approx(1.0)
    for layer in (1, 2, 3):
        assert first[f"w_norm_l{layer}"] > 0
        assert 0 < first[f"update_ratio_l{layer}"] < 1
        assert first[f"t_forward_l{layer}"] >= 0
    assert sum(records[9]["hist_l1"]) == 8 * 12
    epoch_ends = [r for r in records if "test_loss" in r]
    assert len(epoch_ends) == SMALL.epochs


def test_dni_starts_with_zero_synthetic_gradient_and_its_module_learns() -> None:
    cfg = TrainConfig(dataset="digits", method="dni", epochs=3, seed=2)
    records = list(Trainer(cfg))
    assert np.isnan(records[0]["cos_h1"])  # zero prediction: cosine undefined, encoded null
    assert records[0]["norm_ratio_h1"] == 0.0
    late = [r["cos_h2"] for r in records[-20:]]
    assert np.mean(late) > 0.2  # the top module tracks the true gradient's direction
    assert "module_loss_h1" in records[-1]


def test_feedback_alignment_signal_aligns_with_true_gradient() -> None:
    cfg = TrainConfig(dataset="digits", method="feedback_alignment", epochs=4, seed=1)
    records = list(Trainer(cfg))
    for layer in (1, 2):  # starts near orthogonal, then the forward weights align with B
        early = np.mean([r[f"cos_h{layer}"] for r in records[:5]])
        late = np.mean([r[f"cos_h{layer}"] for r in records[-20:]])
        assert abs(early) < 0.1 and late > 0.1


def test_diagnostics_every_thins_out_diagnostics() -> None:
    records = list(Trainer(dataclasses.replace(SMALL, diagnostics_every=4)))
    with_fidelity = [r["step"] for r in records if "cos_h1" in r]
    assert with_fidelity == [s for s in range(1, len(records) + 1) if s % 4 == 0]
    none = list(Trainer(dataclasses.replace(SMALL, diagnostics_every=0)))
    assert not any("cos_h1" in r for r in none)


def test_update_probability_skips_updates_deterministically() -> None:
    cfg = dataclasses.replace(SMALL, method="dni", update_probability=0.5)
    a, b = Trainer(cfg), Trainer(cfg)
    ra, rb = list(a), list(b)
    assert [dumps(without_timing(r)) for r in ra] == [dumps(without_timing(r)) for r in rb]
    full = Trainer(dataclasses.replace(cfg, update_probability=1.0))
    list(full)
    assert not np.allclose(full.net.weights[0], a.net.weights[0])


@pytest.mark.parametrize(("optimizer", "learning_rate"), [("momentum", 0.05), ("adam", 0.001)])
def test_momentum_and_adam_train(optimizer: str, learning_rate: float) -> None:
    cfg = TrainConfig(
        dataset="digits", optimizer=optimizer, learning_rate=learning_rate, epochs=5, seed=3
    )
    trainer = Trainer(cfg)
    list(trainer)
    assert trainer.status == "finished"
    assert trainer.summary()["test_accuracy"] > 0.9


def test_mlp_modules_train() -> None:
    trainer = Trainer(TrainConfig(dataset="digits", method="cdni", sg_hidden=16, epochs=5, seed=3))
    list(trainer)
    assert trainer.summary()["test_accuracy"] > 0.75


def test_article_init_saturates_the_sigmoid_net() -> None:
    cfg = dataclasses.replace(SMALL, init="article", diagnostics_every=1)
    first = Trainer(cfg).step()
    glorot = Trainer(SMALL).step()
    assert first["w_mean_l1"] < -0.05 < glorot["w_mean_l1"]


@pytest.mark.parametrize("every", [1, 7])
def test_summary_fidelity_is_the_mean_over_the_last_epochs_diagnosed_steps(every: int) -> None:
    trainer = Trainer(
        TrainConfig(dataset="digits", method="dni", epochs=3, diagnostics_every=every)
    )
    records = list(trainer)
    # Epoch 3 is the records whose (fractional) epoch is in (2, 3]: many, not the last alone.
    last = [r for r in records if 2 < r["epoch"] <= 3 and "cos_h1" in r]
    assert len(last) == len(range(0, trainer.steps_per_epoch, every)) > 1
    fidelity = trainer.summary()["fidelity"]
    assert set(fidelity) == {"cos_h1", "cos_h2", "rel_err_h1", "rel_err_h2"}
    for key in fidelity:
        assert fidelity[key] == pytest.approx(sum(r[key] for r in last) / len(last), rel=1e-12)
