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


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "batch-norm"])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("loss", ["bce", "mse", "cross_entropy"])
def test_backward_matches_finite_differences(activation: str, loss: str, batch_norm: bool) -> None:
    rng = np.random.default_rng(7)
    net = Network([5, 6, 4, 3], activation, loss, "auto", rng, batch_norm)
    for gamma, beta in zip(net.gamma, net.beta, strict=True):  # away from 1 and 0
        gamma += rng.normal(0, 0.3, size=gamma.shape)
        beta += rng.normal(0, 0.3, size=beta.shape)
    # Non-zero biases so ReLU units sit away from their kink at the probe points.
    for b in net.biases:
        b += rng.normal(0, 0.3, size=b.shape)
    x = rng.normal(size=(7, 5))
    if loss == "cross_entropy":
        y = np.eye(3)[rng.integers(0, 3, size=7)]
    else:
        y = rng.integers(0, 2, size=(7, 3)).astype(float)

    hs, logits, out = net.forward(x)
    assert logits is not None and out is not None
    _, deltas, norm_deltas = net.true_backward(hs, net.out.delta(logits, out, y))
    analytic = net.parameter_gradients(hs, deltas)
    pairs = [((net.weights[k], net.biases[k]), analytic[k]) for k in range(net.depth)]
    if batch_norm:  # the normalisation's scale and shift too
        norm = net.norm_gradients(hs, norm_deltas)
        pairs += [((net.gamma[k], net.beta[k]), norm[k]) for k in range(len(net.gamma))]
    assert len(pairs) == (5 if batch_norm else 3)
    for params, grads in pairs:
        for param, grad in zip(params, grads, strict=True):
            numeric = numeric_gradient(lambda: net.loss(x, y), param)
            # A bias before batch normalisation has no effect: both are zero.
            assert (
                relative_error(grad, numeric) < 1e-6
                or max(abs(grad).max(), abs(numeric).max()) < 1e-9
            )


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "batch-norm"])
def test_true_gradient_of_hidden_activation_is_batch_times_dloss_dh(batch_norm: bool) -> None:
    rng = np.random.default_rng(3)
    net = Network([4, 5, 2], "tanh", "bce", "auto", rng, batch_norm)
    x = rng.normal(size=(6, 4))
    y = rng.integers(0, 2, size=(6, 2)).astype(float)
    hs, logits, out = net.forward(x)
    assert logits is not None and out is not None
    grads_h, _, _ = net.true_backward(hs, net.out.delta(logits, out, y))
    h1 = hs[1].copy()

    def loss_from_h1() -> float:
        a = h1 @ net.weights[1] + net.biases[1]
        return net.out.loss(a, net.out.output(a), y)

    numeric = numeric_gradient(loss_from_h1, h1)
    assert relative_error(grads_h[0], len(x) * numeric) < 1e-6


@pytest.mark.parametrize(
    ("hidden", "batch_norm"),
    [((), False), ((5,), False), ((6, 4), False), ((6, 4), True)],
    ids=["linear", "one", "two", "two-batch-norm"],
)
def test_module_update_descends_its_own_loss(hidden: tuple[int, ...], batch_norm: bool) -> None:
    rng = np.random.default_rng(5)
    module = SyntheticGradientModule(4, 2, hidden, "sgd", 1.0, 0.9, rng, batch_norm)
    assert len(module.params) == 2 * (len(hidden) + 1) + 2 * len(hidden) * batch_norm
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
        vanishing = max(abs(p0 - p).max(), abs(grad).max()) < 1e-9  # a bias before a norm
        assert relative_error(p0 - p, grad) < 1e-6 or vanishing  # lr 1: the step is the gradient


def test_module_output_starts_at_zero() -> None:
    module = SyntheticGradientModule(6, 0, (8, 8), "adam", 0.01, 0.9, np.random.default_rng(0))
    prediction = module.predict(np.ones((3, 6)), np.zeros((3, 0)))
    assert np.all(prediction == 0.0)


def test_batch_norm_evaluates_with_its_running_statistics() -> None:
    rng = np.random.default_rng(2)
    net = Network([3, 4, 2], "relu", "cross_entropy", "auto", rng, batch_norm=True)
    x = rng.normal(loc=3.0, scale=2.0, size=(500, 3))
    for _ in range(200):  # the running statistics converge to the data's
        net.forward(x)
    a = x @ net.weights[0] + net.biases[0]
    np.testing.assert_allclose(net.running_mean[0], a.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(net.running_var[0], a.var(axis=0) * 500 / 499, rtol=1e-6)
    # Evaluation normalises with them, so one example alone gets the batch's answer.
    _, batch_logits, _ = net.forward(x)
    assert batch_logits is not None
    np.testing.assert_allclose(net.logits(x[:1]), batch_logits[:1], rtol=1e-3, atol=1e-6)
