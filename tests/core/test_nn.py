"""Analytic gradients against central finite differences, for every activation and loss."""

from __future__ import annotations

import numpy as np
import pytest

from synthgrad_core.nn import Network
from synthgrad_core.optim import SGD
from synthgrad_core.synthetic import SyntheticGradientModule, module_loss


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """|a - b| / (|a| + |b|) over the whole array (the usual gradient-check measure)."""
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


def numeric_gradient(loss, param: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(param)
    for index in np.ndindex(param.shape):
        old = param[index]
        param[index] = old + eps
        up = loss()
        param[index] = old - eps
        down = loss()
        param[index] = old
        grad[index] = (up - down) / (2 * eps)
    return grad


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("loss", ["bce", "mse", "cross_entropy"])
def test_backward_matches_finite_differences(activation: str, loss: str) -> None:
    rng = np.random.default_rng(7)
    net = Network([5, 6, 4, 3], activation, loss, "auto", rng)
    # Non-zero biases so ReLU units sit away from their kink at the probe points.
    for b in net.biases:
        b += rng.normal(0, 0.3, size=b.shape)
    x = rng.normal(size=(7, 5))
    if loss == "cross_entropy":
        y = np.eye(3)[rng.integers(0, 3, size=7)]
    else:
        y = rng.integers(0, 2, size=(7, 3)).astype(float)

    hs, logits, out = net.forward(x)
    _, deltas = net.true_backward(hs, net.out.delta(logits, out, y))
    analytic = net.parameter_gradients(hs, deltas)
    for k in range(net.depth):
        for param, grad in zip((net.weights[k], net.biases[k]), analytic[k], strict=True):
            numeric = numeric_gradient(lambda: net.loss(x, y), param)
            assert relative_error(grad, numeric) < 1e-6


def test_true_gradient_of_hidden_activation_is_batch_times_dloss_dh() -> None:
    rng = np.random.default_rng(3)
    net = Network([4, 5, 2], "tanh", "bce", "auto", rng)
    x = rng.normal(size=(6, 4))
    y = rng.integers(0, 2, size=(6, 2)).astype(float)
    hs, logits, out = net.forward(x)
    grads_h, _ = net.true_backward(hs, net.out.delta(logits, out, y))
    h1 = hs[1].copy()

    def loss_from_h1() -> float:
        a = h1 @ net.weights[1] + net.biases[1]
        return net.out.loss(a, net.out.output(a), y)

    numeric = numeric_gradient(loss_from_h1, h1)
    assert relative_error(grads_h[0], len(x) * numeric) < 1e-6


@pytest.mark.parametrize("hidden", [0, 5])
def test_module_update_descends_its_own_loss(hidden: int) -> None:
    rng = np.random.default_rng(5)
    module = SyntheticGradientModule(4, 2, hidden, "sgd", 1.0, 0.9, rng)
    for p in module.params:  # leave the zero init so the gradient is not trivial
        p += rng.normal(0, 0.1, size=p.shape)
    h, y, target = rng.normal(size=(8, 4)), rng.normal(size=(8, 2)), rng.normal(size=(8, 4))

    def loss() -> float:
        return module_loss(module.predict(h, y) - target)

    expected = [numeric_gradient(loss, p) for p in module.params]
    before = [p.copy() for p in module.params]
    assert isinstance(module.optimizer, SGD)
    module.update(module.predict(h, y), target)
    for p, p0, grad in zip(module.params, before, expected, strict=True):
        assert relative_error(p0 - p, grad) < 1e-6  # lr 1: the step is the gradient


def test_module_output_starts_at_zero() -> None:
    module = SyntheticGradientModule(6, 0, 8, "adam", 0.01, 0.9, np.random.default_rng(0))
    prediction = module.predict(np.ones((3, 6)), np.zeros((3, 0)))
    assert np.all(prediction == 0.0)
