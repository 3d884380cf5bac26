"""The engine's fast diagnostics against plain numpy recomputations of the same quantities."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from synthgrad_core import TrainConfig, Trainer
from synthgrad_core.diagnostics import saturation
from synthgrad_core.nn import Dense
from synthgrad_core.optim import Adam, Momentum, Optimizer, make_optimizer

SMALL = TrainConfig(
    dataset="addition", bits=4, examples=60, hidden=(12, 8), epochs=3, batch_size=5, seed=11
)


def reference_signals(trainer: Trainer, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Each hidden layer's true per-example gradient at the current weights, by hand."""
    net = trainer.net
    hs = [x]
    for w, b in zip(net.weights[:-1], net.biases[:-1], strict=True):
        hs.append(net.f(hs[-1] @ w + b))
    a = hs[-1] @ net.weights[-1] + net.biases[-1]
    delta = net.out.delta(a, net.out.output(a), y)
    grads = []
    for k in range(net.depth - 1, 0, -1):
        g = delta @ net.weights[k].T
        grads.insert(0, g)
        delta = g * net.f_grad(hs[k])
    return grads


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("method", ["backprop", "dni", "feedback_alignment"])
def test_diagnostics_match_a_plain_numpy_recomputation(method: str, optimizer: str) -> None:
    cfg = dataclasses.replace(
        SMALL, method=method, optimizer=optimizer, learning_rate=0.5, diagnostics_every=1
    )
    trainer = Trainer(cfg)
    for _ in range(7):  # a few steps in, so modules and momentum are non-trivial
        trainer.step()
    before = [w.copy() for w in trainer.net.weights]
    position = trainer.step_count % trainer.steps_per_epoch
    batch = trainer.order[position * cfg.batch_size : (position + 1) * cfg.batch_size]
    x, y = trainer.data.x_train[batch], trainer.data.y_train[batch]
    truths = reference_signals(trainer, x, y)
    hs = [x]
    for w, b in zip(trainer.net.weights[:-1], trainer.net.biases[:-1], strict=True):
        hs.append(trainer.net.f(hs[-1] @ w + b))
    signals = rule_signals(trainer, method, hs, y) if method != "backprop" else truths

    record = trainer.step()

    for k, w in enumerate(trainer.net.weights):
        layer = k + 1
        assert record[f"w_mean_l{layer}"] == pytest.approx(float(np.mean(w)), abs=1e-12)
        assert record[f"w_std_l{layer}"] == pytest.approx(float(np.std(w)), rel=1e-9)
        assert record[f"w_norm_l{layer}"] == pytest.approx(float(np.linalg.norm(w)), rel=1e-12)
        assert record[f"w_max_l{layer}"] == float(np.abs(w).max())
        ratio = np.linalg.norm(w - before[k]) / np.linalg.norm(before[k])
        assert record[f"update_ratio_l{layer}"] == pytest.approx(ratio, rel=1e-6)
    for k, truth in enumerate(truths):
        layer = k + 1
        assert record[f"saturated_h{layer}"] == pytest.approx(
            float(np.mean((hs[layer] < 0.02) | (hs[layer] > 0.98)))
        )
        if method == "backprop":
            assert record[f"cos_h{layer}"] == 1.0
            assert record[f"rel_err_h{layer}"] == 0.0
            continue
        signal = signals[k]
        assert np.linalg.norm(signal) > 0
        cos = float(np.sum(signal * truth) / (np.linalg.norm(signal) * np.linalg.norm(truth)))
        if math.isfinite(cos):
            assert record[f"cos_h{layer}"] == pytest.approx(cos, abs=1e-9)
        assert record[f"norm_ratio_h{layer}"] == pytest.approx(
            np.linalg.norm(signal) / np.linalg.norm(truth), rel=1e-9
        )


def rule_signals(
    trainer: Trainer, method: str, hs: list[np.ndarray], y: np.ndarray
) -> list[np.ndarray]:
    """What the rule sends each hidden layer, recomputed by hand from the pre-step state."""
    net = trainer.net
    if method == "dni":
        modules = trainer.rule.modules  # type: ignore[attr-defined]
        return [module.predict(h, y) for module, h in zip(modules, hs[1:], strict=True)]
    a = hs[-1] @ net.weights[-1] + net.biases[-1]
    delta = net.out.delta(a, net.out.output(a), y)
    signals = []
    for k in range(net.depth - 1, 0, -1):
        g = delta @ trainer.rule.feedback[k]  # type: ignore[attr-defined]
        signals.insert(0, g)
        delta = g * net.f_grad(hs[k])
    return signals


def test_backprop_fidelity_is_exactly_one_even_when_recomputed() -> None:
    # the `signal is truth` shortcut must agree with the general formula
    from synthgrad_core.diagnostics import fidelity

    t = np.random.default_rng(0).standard_normal((5, 7))
    assert fidelity(t, t) == (1.0, 0.0, 1.0)
    cos, rel, ratio = fidelity(t.copy(), t)
    assert cos == pytest.approx(1.0) and rel == 0.0 and ratio == pytest.approx(1.0)
    zero = np.zeros((2, 3))
    assert all(math.isnan(v) for v in fidelity(zero, zero))


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_saturation_matches_its_definition(activation: str) -> None:
    h = np.random.default_rng(1).uniform(-1.2, 1.2, (9, 11))
    if activation == "sigmoid":
        h = (h + 1.2) / 2.4
        expected = np.mean((h < 0.02) | (h > 0.98))
    elif activation == "tanh":
        expected = np.mean(np.abs(h) > 0.99)
    else:
        h = np.maximum(h, 0.0)
        h[:, 3] = 0.0
        expected = np.mean(~(h > 0).any(axis=0))
    assert saturation(h, activation) == pytest.approx(float(expected))


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_step_dense_equals_two_gradient_steps(name: str) -> None:
    rng = np.random.default_rng(2)
    inputs, deltas = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    fast = Dense.named("layer0", rng.standard_normal((4, 3)), rng.standard_normal(3))
    slow = Dense.named("layer0", fast.weight.value.copy(), fast.bias.value.copy())
    a = make_optimizer(name, [fast.weight, fast.bias], 0.1, 0.9)
    b = make_optimizer(name, [slow.weight, slow.bias], 0.1, 0.9)
    for _ in range(3):
        update = a.update_dense(fast, inputs, deltas)
        before = slow.weight.value.copy()
        Optimizer.update_dense(b, slow, inputs, deltas)  # the generic path
        np.testing.assert_allclose(fast.weight.value, slow.weight.value, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(fast.bias.value, slow.bias.value, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(update, before - slow.weight.value, rtol=1e-9, atol=1e-15)
    assert isinstance(make_optimizer("momentum", [fast.weight], 0.1, 0.9), Momentum)
    assert isinstance(make_optimizer("adam", [fast.weight], 0.1, 0.9), Adam)


@pytest.mark.parametrize("dataset", ["addition", "digits"])
def test_chunked_evaluation_equals_one_pass(dataset: str) -> None:
    trainer = Trainer(TrainConfig(dataset=dataset, epochs=1, examples=300, seed=4))
    for _ in range(5):
        trainer.step()
    x, y = trainer.data.x_test, trainer.data.y_test
    assert len(x) % 32 != 0  # a partial last chunk
    _, logits, out = trainer.net.forward(x)
    result = trainer.evaluate(x, y)
    assert result["loss"] == pytest.approx(trainer.net.out.loss(logits, out, y), rel=1e-12)
    if trainer.data.bit_targets:
        correct = (logits > 0) == (y > 0.5)
        assert result["accuracy"] == pytest.approx(float(correct.mean()))
        assert result["exact_accuracy"] == pytest.approx(float(correct.all(axis=1).mean()))
    else:
        hits = logits.argmax(axis=1) == y.argmax(axis=1)
        assert result["accuracy"] == pytest.approx(float(hits.mean()))


def test_saturation_thresholds_are_the_documented_share_of_the_derivative_peak() -> None:
    from synthgrad_core.diagnostics import _SATURATION
    from synthgrad_core.nn import sigmoid_grad, tanh_grad

    edge = _SATURATION["sigmoid"]
    assert float(sigmoid_grad(np.array(edge))) / 0.25 == pytest.approx(0.08, abs=0.005)
    assert float(tanh_grad(np.array(_SATURATION["tanh"]))) / 1.0 == pytest.approx(0.02, abs=0.001)


def test_histogram_counts_as_numpy_does_on_and_beside_every_edge() -> None:
    import numpy as np

    from synthgrad_core.diagnostics import HISTOGRAM_EDGES, histogram

    rng = np.random.default_rng(0)
    for scale in (0.05, 0.5, 3.0):
        w = rng.standard_normal(4000) * scale
        w[:50] = rng.choice(HISTOGRAM_EDGES, 50)  # exactly on an edge
        w[50:100] = np.nextafter(rng.choice(HISTOGRAM_EDGES, 50), -np.inf)  # just below
        w[100:150] = np.nextafter(rng.choice(HISTOGRAM_EDGES, 50), np.inf)  # just above
        expected, _ = np.histogram(np.clip(w, -1.0, 1.0), bins=HISTOGRAM_EDGES)
        assert histogram(w) == expected.tolist()
        assert sum(histogram(w)) == w.size
