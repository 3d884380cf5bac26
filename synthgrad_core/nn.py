"""Dense networks: activations, output losses, initialisation, forward and true backward pass.

Conventions (spec/core.md): h_0 = x, a_i = h_{i-1} W_i + b_i, h_i = f_i(a_i).
The loss is the mean over the batch of a per-example loss. Gradients with
respect to activations are kept *per example* (the batch size times
dLoss/dh), so a synthetic-gradient module predicts the same quantity at every
batch size; weight gradients divide by the batch size.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

Array = np.ndarray
#: Arrays of a pass by layer index: activations h_k, gradients or deltas.
Activations = dict[int, Array]


# Each hidden activation next to its derivative, written in terms of the output h.
def sigmoid(a: Array) -> Array:
    # 1 / (1 + e^-a) in one buffer: the fastest form measured (bench/engine.py). For
    # a < -709, e^-a overflows to inf and the result is exactly 0 with a numpy
    # overflow warning; the Trainer runs every step under np.errstate(all="ignore").
    e = np.exp(-a)
    e += 1.0
    return np.reciprocal(e, out=e)


def sigmoid_grad(h: Array) -> Array:
    return h * (1.0 - h)


def tanh(a: Array) -> Array:
    return np.tanh(a)


def tanh_grad(h: Array) -> Array:
    return 1.0 - h * h


def relu(a: Array) -> Array:
    return np.maximum(a, 0.0)


def relu_grad(h: Array) -> Array:
    return (h > 0.0).astype(h.dtype)


ACTIVATIONS: dict[str, tuple[Callable[[Array], Array], Callable[[Array], Array]]] = {
    "sigmoid": (sigmoid, sigmoid_grad),
    "tanh": (tanh, tanh_grad),
    "relu": (relu, relu_grad),
}


# Output layers: the output nonlinearity, the mean loss, and the per-example dLoss/da_L.
def softmax(a: Array) -> Array:
    z = a - a.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def bce_loss(a: Array, p: Array, y: Array) -> float:
    # log(1 + e^a) - y a, the stable form of binary cross-entropy on logits.
    return float(np.sum(np.logaddexp(0.0, a) - y * a) / len(a))


def bce_delta(a: Array, p: Array, y: Array) -> Array:
    return p - y


def mse_loss(a: Array, p: Array, y: Array) -> float:
    d = p - y
    return float(0.5 * np.sum(d * d) / len(a))


def mse_delta(a: Array, p: Array, y: Array) -> Array:
    return (p - y) * p * (1.0 - p)


def cross_entropy_loss(a: Array, p: Array, y: Array) -> float:
    z = a - a.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.sum(log_norm - np.sum(z * y, axis=1)) / len(a))


def cross_entropy_delta(a: Array, p: Array, y: Array) -> Array:
    return p - y


@dataclass(frozen=True)
class OutputLoss:
    name: str
    output: Callable[[Array], Array]
    loss: Callable[[Array, Array, Array], float]
    delta: Callable[[Array, Array, Array], Array]


OUTPUT_LOSSES = {
    "bce": OutputLoss("bce", sigmoid, bce_loss, bce_delta),
    "mse": OutputLoss("mse", sigmoid, mse_loss, mse_delta),
    "cross_entropy": OutputLoss("cross_entropy", softmax, cross_entropy_loss, cross_entropy_delta),
}


def init_weights(
    sizes: list[int], scheme: str, activation: str, rng: np.random.Generator
) -> tuple[list[Array], list[Array]]:
    """Zero-mean weights scaled to the fan (Glorot or He), zero biases; `article`: randn*0.2-0.1."""
    if scheme == "auto":
        scheme = "he" if activation == "relu" else "glorot"
    weights, biases = [], []
    for fan_in, fan_out in itertools.pairwise(sizes):
        if scheme == "glorot":
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-limit, limit, size=(fan_in, fan_out))
        elif scheme == "he":
            w = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
        elif scheme == "article":
            w = rng.standard_normal((fan_in, fan_out)) * 0.2 - 0.1
        else:
            raise ValueError(f"unknown init scheme {scheme!r}")
        weights.append(w)
        biases.append(np.zeros(fan_out))
    return weights, biases


class Network:
    """A stack of dense layers: the last one is the output layer of `loss`."""

    def __init__(
        self, sizes: list[int], activation: str, loss: str, init: str, rng: np.random.Generator
    ) -> None:
        self.sizes = sizes
        self.activation_name = activation
        self.f, self.f_grad = ACTIVATIONS[activation]
        self.out = OUTPUT_LOSSES[loss]
        weights, self.biases = init_weights(sizes, init, activation, rng)
        # Every weight matrix is a view into one flat buffer, so statistics over all
        # layers take one reduction each (diagnostics.layer_stats). Updates are in place.
        self.weight_starts = np.cumsum([0] + [w.size for w in weights[:-1]])
        self.flat_weights = np.empty(sum(w.size for w in weights))
        self.weights = []
        for start, w in zip(self.weight_starts, weights, strict=True):
            view = self.flat_weights[start : start + w.size].reshape(w.shape)
            view[...] = w
            self.weights.append(view)

    @property
    def depth(self) -> int:
        return len(self.weights)

    def weight_segment(self, lo: int, hi: int) -> tuple[Array, Array]:
        """The flat weights of layers lo..hi-1 and each layer's start within that slice."""
        starts = self.weight_starts
        begin = int(starts[lo])
        end = int(starts[hi]) if hi < len(starts) else self.flat_weights.size
        return self.flat_weights[begin:end], starts[lo:hi] - begin

    def forward(
        self,
        h: Array,
        lo: int = 0,
        hi: int | None = None,
        layer_times: list[float] | None = None,
    ) -> tuple[Activations, Array | None, Array | None]:
        """Layers lo..hi-1 on their input h = h_lo (the whole net by default).

        Returns the activations by layer index, {lo: h_lo, ..., h_hi} (h_hi only when
        layer hi-1 is hidden), and the output logits a_L and output p when the range
        ends at the output layer (else None, None). With `layer_times`, appends each
        layer's forward time in seconds to it.
        """
        depth = self.depth
        hi = depth if hi is None else hi
        hs: Activations = {lo: h}
        f, weights, biases = self.f, self.weights, self.biases
        if layer_times is None:  # the every-step path: no timing
            for k in range(lo, min(hi, depth - 1)):
                h = f(h @ weights[k] + biases[k])
                hs[k + 1] = h
            if hi < depth:
                return hs, None, None
            a = h @ weights[-1] + biases[-1]
            return hs, a, self.out.output(a)
        logits = out = None
        for k in range(lo, hi):
            t0 = time.perf_counter()
            a = h @ weights[k] + biases[k]
            if k == depth - 1:
                logits, out = a, self.out.output(a)
            else:
                h = f(a)
                hs[k + 1] = h
            layer_times.append(time.perf_counter() - t0)
        return hs, logits, out

    def logits(self, x: Array) -> Array:
        """The output layer's pre-activations a_L, nothing kept (for evaluation)."""
        h, f = x, self.f
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            h = f(h @ w + b)
        return h @ self.weights[-1] + self.biases[-1]

    def loss(self, x: Array, y: Array) -> float:
        _, a, p = self.forward(x)
        assert a is not None and p is not None
        return self.out.loss(a, p, y)

    def true_backward(
        self,
        hs: Activations,
        top_delta: Array | None,
        lo: int = 0,
        hi: int | None = None,
        top_gradient: Array | None = None,
        weights: Mapping[int, Array] | None = None,
    ) -> tuple[Activations, Activations]:
        """Backprop through layers lo..hi-1 (the whole net by default).

        Starts from the per-example output delta `top_delta` when the range ends at the
        output layer, else from `top_gradient` = B dLoss/dh_hi arriving from above.
        Returns the per-example gradients G_k = B dLoss/dh_{k+1} by hidden index k
        (down to the range's input h_lo, when it is hidden) and the per-example
        pre-activation deltas by layer index k (layer k+1 in spec terms).
        `weights` replaces the network's weights of the range (pre-update copies).
        """
        hi = self.depth if hi is None else hi
        w = self.weights if weights is None else weights
        f_grad = self.f_grad
        grads_h: Activations = {}
        if top_delta is not None:
            delta = top_delta
        else:
            assert top_gradient is not None, "a range below the top needs top_gradient"
            grads_h[hi - 1] = top_gradient
            delta = top_gradient * f_grad(hs[hi])
        deltas: Activations = {hi - 1: delta}
        for i in range(hi - 1, max(lo, 1) - 1, -1):
            g = delta @ w[i].T
            grads_h[i - 1] = g
            if i > lo:
                delta = g * f_grad(hs[i])
                deltas[i - 1] = delta
        return grads_h, deltas

    def parameter_gradients(
        self, hs: Activations, deltas: Activations
    ) -> list[tuple[Array, Array]]:
        """dLoss/dW_k, dLoss/db_k from per-example deltas (mean over the batch), by layer."""
        n = len(hs[0])
        return [(hs[k].T @ deltas[k] / n, deltas[k].sum(axis=0) / n) for k in sorted(deltas)]
