"""Dense networks: activations, output losses, initialisation, forward and true backward pass.

Conventions (docs/engine.md): h_0 = x, a_i = h_{i-1} W_i + b_i, h_i = f_i(a_i).
Every array is (batch, width), or (seeds, batch, width) when several seeds train as one
computation (synthgrad_core.seeds): the math reads the batch axis as -2 and the features
as -1, weights are (..., fan_in, fan_out) and a stacked bias or scale is (seeds, 1,
width), so one matmul over the stack does every seed's product.
The loss is the mean over the batch of a per-example loss. Gradients with
respect to activations are kept *per example* (the batch size times
dLoss/dh), so a synthetic-gradient module predicts the same quantity at every
batch size; weight gradients divide by the batch size.
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Array = np.ndarray
#: Arrays of a pass by layer index: activations h_k, gradients or deltas.
Activations = dict[int, Array]

#: Batch normalisation: the batch's share of the running mean and variance per step, and
#: the epsilon added to the variance (the usual values of Ioffe and Szegedy, 2015).
NORM_MOMENTUM = 0.1
NORM_EPS = 1e-5


class Pass(dict[int, Array]):
    """A forward pass's activations by layer index, and with batch normalisation each hidden
    layer k's cache `norm[k]` = (normalised pre-activations, 1 / std): the backward pass
    of the same batch needs them, and a pipelined stage may get it a few batches later.
    (`norm` exists only on a normalised net's passes: the every-step path stays a dict.)"""

    norm: dict[int, tuple[Array, Array]]


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


def batch_sum(x: Array) -> Array:
    """Sum over the batch axis: (width,) for one seed, (seeds, 1, width) for a stack."""
    # np.add.reduce: what x.sum() calls, without its Python wrapper (~1 us a call)
    if x.ndim > 2:
        return np.add.reduce(x, axis=-2, keepdims=True)
    return np.add.reduce(x, axis=-2)


def batch_mean(x: Array) -> Array:
    return x.mean(axis=-2, keepdims=x.ndim > 2)


def batch_var(x: Array) -> Array:
    return x.var(axis=-2, keepdims=x.ndim > 2)


def example_mean(per_element: Array) -> Any:
    """The batch mean of a per-example sum over features: a float for one seed, one per
    seed for a stack."""
    if per_element.ndim == 2:
        return float(np.add.reduce(per_element, axis=None) / len(per_element))
    return np.add.reduce(per_element, axis=(-2, -1)) / per_element.shape[-2]


# Output layers: the output nonlinearity, the mean loss (example_mean), and the
# per-example dLoss/da_L.
def softmax(a: Array) -> Array:
    z = a - np.maximum.reduce(a, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / np.add.reduce(e, axis=-1, keepdims=True)


def bce_loss(a: Array, p: Array, y: Array) -> Any:
    # log(1 + e^a) - y a, the stable form of binary cross-entropy on logits.
    return example_mean(np.logaddexp(0.0, a) - y * a)


def bce_delta(a: Array, p: Array, y: Array) -> Array:
    return p - y


def mse_loss(a: Array, p: Array, y: Array) -> Any:
    d = p - y
    return example_mean(0.5 * (d * d))


def mse_delta(a: Array, p: Array, y: Array) -> Array:
    return (p - y) * p * (1.0 - p)


def cross_entropy_loss(a: Array, p: Array, y: Array) -> Any:
    z = a - np.maximum.reduce(a, axis=-1, keepdims=True)
    per_example = np.log(np.add.reduce(np.exp(z), axis=-1)) - np.add.reduce(z * y, axis=-1)
    if a.ndim == 2:
        return float(np.add.reduce(per_example) / len(a))
    return np.add.reduce(per_example, axis=-1) / a.shape[-2]


def cross_entropy_delta(a: Array, p: Array, y: Array) -> Array:
    return p - y


@dataclass(frozen=True)
class OutputLoss:
    name: str
    output: Callable[[Array], Array]
    loss: Callable[[Array, Array, Array], Any]
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


#: A network's lists of per-layer vectors (biases, and batch norm's scales, shifts and
#: running statistics): stacked as (seeds, 1, width), a seed's view is (width,).
VECTORS = ("biases", "gamma", "beta", "running_mean", "running_var")


@dataclass(eq=False, slots=True)
class Parameter:
    """A named array an optimiser updates in place (`value` may be a view into a larger
    buffer, as a network's weights are into its flat weights). The name is unique within
    what owns it and names the array in a captured state."""

    name: str
    value: Array


@dataclass(eq=False, slots=True)
class Dense:
    """Layer k's learned arrays: its weights (fan_in, fan_out) and bias (width,)."""

    weight: Parameter
    bias: Parameter

    @classmethod
    def named(cls, prefix: str, weight: Array, bias: Array) -> Dense:
        return cls(Parameter(f"{prefix}.weight", weight), Parameter(f"{prefix}.bias", bias))

    @classmethod
    def stacked(cls, layers: Sequence[Dense]) -> Dense:
        """Same-named layers of several seeds as one, on a leading seed axis (copies)."""
        return cls(
            Parameter(layers[0].weight.name, stack([layer.weight.value for layer in layers])),
            Parameter(layers[0].bias.name, stack([layer.bias.value for layer in layers])),
        )


@dataclass(eq=False, slots=True)
class Norm:
    """A batch normalisation's learned scale and shift."""

    scale: Parameter
    shift: Parameter

    @classmethod
    def named(cls, prefix: str, scale: Array, shift: Array) -> Norm:
        return cls(Parameter(f"{prefix}.scale", scale), Parameter(f"{prefix}.shift", shift))

    @classmethod
    def stacked(cls, norms: Sequence[Norm]) -> Norm:
        """Same-named normalisations of several seeds as one (copies)."""
        return cls(
            Parameter(norms[0].scale.name, stack([norm.scale.value for norm in norms])),
            Parameter(norms[0].shift.name, stack([norm.shift.value for norm in norms])),
        )


def walk(layers: Sequence[Dense], norms: Sequence[Norm]) -> list[Parameter]:
    """Every parameter of the layers then of the normalisations, in that order."""
    params = [p for layer in layers for p in (layer.weight, layer.bias)]
    return params + [p for norm in norms for p in (norm.scale, norm.shift)]


def stack(arrays: Sequence[Array]) -> Array:
    """Same-shaped per-seed arrays on a leading seed axis (a copy); vectors (a bias, a scale)
    become (seeds, 1, width), so they broadcast over a stacked batch."""
    out = np.stack(arrays)
    return out[:, None, :] if out.ndim == 2 else out


class Network:
    """A stack of dense layers: the last one is the output layer of `loss`."""

    def __init__(
        self,
        sizes: list[int],
        activation: str,
        loss: str,
        init: str,
        rng: np.random.Generator,
        batch_norm: bool = False,
        dtype: str = "float64",
    ) -> None:
        self.sizes = sizes
        self.activation_name = activation
        self.f, self.f_grad = ACTIVATIONS[activation]
        self.out = OUTPUT_LOSSES[loss]
        weights, biases = init_weights(sizes, init, activation, rng)
        self.biases = [b.astype(dtype) for b in biases]
        # Every weight matrix is a view into one flat buffer, so statistics over all
        # layers take one reduction each (diagnostics.layer_stats). Updates are in place.
        self.weight_starts = np.cumsum([0] + [w.size for w in weights[:-1]])
        self.flat_weights = np.empty(sum(w.size for w in weights), dtype=dtype)
        self.weights = []
        for start, w in zip(self.weight_starts, weights, strict=True):
            view = self.flat_weights[start : start + w.size].reshape(w.shape)
            view[...] = w
            self.weights.append(view)
        #: layers (weight matrices); an attribute, read several times a step
        self.depth = len(self.weights)
        # Batch normalisation of each hidden layer's pre-activations, before the activation:
        # a learned scale (gamma) and shift (beta), running statistics for evaluation.
        self.batch_norm = batch_norm
        hidden = sizes[1:-1] if batch_norm else []
        self.gamma = [np.ones(width, dtype) for width in hidden]
        self.beta = [np.zeros(width, dtype) for width in hidden]
        self.running_mean = [np.zeros(width, dtype) for width in hidden]
        self.running_var = [np.ones(width, dtype) for width in hidden]
        self._name_parts()

    def _name_parts(self) -> None:
        """The layers and normalisations as named parameters over the arrays the lists
        hold (the same arrays: an update through either is seen by both)."""
        self.layers = [
            Dense.named(f"layer{k}", w, b)
            for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True))
        ]
        self.norms = [
            Norm.named(f"norm{k}", g, b)
            for k, (g, b) in enumerate(zip(self.gamma, self.beta, strict=True))
        ]

    def parameters(self) -> list[Parameter]:
        """What the network's optimiser updates: each layer's weights and bias, then each
        normalised hidden layer's scale and shift."""
        return walk(self.layers, self.norms)

    def buffers(self) -> dict[str, Array]:
        """The rest of the network's state, by name: batch normalisation's running
        statistics (what evaluation uses)."""
        out = {f"norm{k}.running_mean": m for k, m in enumerate(self.running_mean)}
        return out | {f"norm{k}.running_var": v for k, v in enumerate(self.running_var)}

    def named_arrays(self) -> dict[str, Array]:
        """Every array of the network's state by name (parameters and buffers; live)."""
        return {p.name: p.value for p in self.parameters()} | self.buffers()

    @classmethod
    def stacked(cls, nets: Sequence[Network]) -> Network:
        """One network holding the given same-shaped networks on a leading seed axis (their
        arrays copied): its forward and backward passes are every net's at once."""
        net = copy.copy(nets[0])
        seeds = len(nets)
        net.flat_weights = np.stack([n.flat_weights for n in nets])
        net.weights = [
            net.flat_weights[:, start : start + w.size].reshape((seeds, *w.shape))
            for start, w in zip(net.weight_starts, nets[0].weights, strict=True)
        ]
        for name in VECTORS:
            parts = zip(*(getattr(n, name) for n in nets), strict=True)
            setattr(net, name, [stack(arrays) for arrays in parts])
        net._name_parts()
        return net

    def seed(self, s: int) -> Network:
        """Seed s of a stacked network: a network of views into its arrays (what it reads,
        evaluation and statistics, is seed s's as the stack trains)."""
        net = copy.copy(self)
        net.flat_weights = self.flat_weights[s]
        net.weights = [w[s] for w in self.weights]
        for name in VECTORS:
            setattr(net, name, [v[s, 0] for v in getattr(self, name)])
        net._name_parts()
        return net

    def weight_segment(self, lo: int, hi: int) -> tuple[Array, Array]:
        """The flat weights of layers lo..hi-1 and each layer's start within that slice."""
        starts = self.weight_starts
        if lo == 0 and hi == self.depth:  # the whole net (every diagnosed sequential step)
            return self.flat_weights, starts
        begin = int(starts[lo])
        end = int(starts[hi]) if hi < len(starts) else self.flat_weights.size
        return self.flat_weights[begin:end], starts[lo:hi] - begin

    def forward(
        self,
        h: Array,
        lo: int = 0,
        hi: int | None = None,
        layer_times: list[float] | None = None,
    ) -> tuple[Pass, Array | None, Array | None]:
        """Layers lo..hi-1 on their input h = h_lo (the whole net by default).

        Returns the activations by layer index, {lo: h_lo, ..., h_hi} (h_hi only when
        layer hi-1 is hidden), and the output logits a_L and output p when the range
        ends at the output layer (else None, None). With `layer_times`, appends each
        layer's forward time in seconds to it.
        """
        depth = self.depth
        hi = depth if hi is None else hi
        hs = Pass()
        hs[lo] = h
        f, weights, biases, norm = self.f, self.weights, self.biases, self.batch_norm
        if norm:
            hs.norm = {}
        if layer_times is None:  # the every-step path: no timing
            for k in range(lo, min(hi, depth - 1)):
                a = h @ weights[k] + biases[k]
                h = f(self._normalise(k, a, hs) if norm else a)
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
                h = f(self._normalise(k, a, hs) if norm else a)
                hs[k + 1] = h
            layer_times.append(time.perf_counter() - t0)
        return hs, logits, out

    def _normalise(self, k: int, a: Array, hs: Pass) -> Array:
        """Hidden layer k's pre-activations normalised over the batch, scaled and shifted;
        its cache goes into `hs`, the batch's statistics into the running ones."""
        mean, var = batch_mean(a), batch_var(a)
        inv_std = 1.0 / np.sqrt(var + NORM_EPS)
        normalised = (a - mean) * inv_std
        hs.norm[k] = (normalised, inv_std)
        n = a.shape[-2]
        running_mean, running_var = self.running_mean[k], self.running_var[k]
        running_mean *= 1.0 - NORM_MOMENTUM
        running_mean += NORM_MOMENTUM * mean
        running_var *= 1.0 - NORM_MOMENTUM
        running_var += NORM_MOMENTUM * var * (n / max(n - 1, 1))  # unbiased
        return normalised * self.gamma[k] + self.beta[k]

    def logits(self, x: Array) -> Array:
        """The output layer's pre-activations a_L, nothing kept (for evaluation: batch
        normalisation uses its running statistics)."""
        h, f = x, self.f
        for k, (w, b) in enumerate(zip(self.weights[:-1], self.biases[:-1], strict=True)):
            a = h @ w + b
            if self.batch_norm:
                a = (a - self.running_mean[k]) / np.sqrt(self.running_var[k] + NORM_EPS)
                a = a * self.gamma[k] + self.beta[k]
            h = f(a)
        return h @ self.weights[-1] + self.biases[-1]

    def local_delta(
        self, k: int, gradient: Array, hs: Pass, gamma: Array | None = None
    ) -> tuple[Array, Array]:
        """From B dLoss/dh_{k+1} (true or not) to hidden layer k's per-example delta
        dLoss/da_k: through the activation, and the batch normalisation if there is one.
        Also returns the gradient at the normalisation's output (scale and shift learn from
        it; the same as the delta without normalisation). `gamma`: a pre-update copy."""
        dz = gradient * self.f_grad(hs[k + 1])
        if not self.batch_norm:
            return dz, dz
        normalised, inv_std = hs.norm[k]
        dn = dz * (self.gamma[k] if gamma is None else gamma)
        mean_dn = batch_mean(dn)
        mean_dn_n = batch_mean(dn * normalised)
        return inv_std * (dn - mean_dn - normalised * mean_dn_n), dz

    def loss(self, x: Array, y: Array) -> float:
        _, a, p = self.forward(x)
        assert a is not None and p is not None
        return self.out.loss(a, p, y)

    def true_backward(
        self,
        hs: Pass,
        top_delta: Array | None,
        lo: int = 0,
        hi: int | None = None,
        top_gradient: Array | None = None,
        kept: tuple[Mapping[int, Array], Mapping[int, Array]] | None = None,
    ) -> tuple[Activations, Activations, Activations]:
        """Backprop through layers lo..hi-1 (the whole net by default).

        Starts from the per-example output delta `top_delta` when the range ends at the
        output layer, else from `top_gradient` = B dLoss/dh_hi arriving from above.
        Returns the per-example gradients G_k = B dLoss/dh_{k+1} by hidden index k
        (down to the range's input h_lo, when it is hidden), the per-example
        pre-activation deltas by layer index k (layer k+1 in spec terms), and for batch
        normalisation the gradients at each normalisation's output (local_delta).
        `kept`: pre-update copies of the range's weights and normalisation scales.
        """
        hi = self.depth if hi is None else hi
        w, gammas = kept if kept is not None else (self.weights, {})
        grads_h: Activations = {}
        norm_deltas: Activations = {}
        if top_delta is not None:
            delta = top_delta
        else:
            assert top_gradient is not None, "a range below the top needs top_gradient"
            grads_h[hi - 1] = top_gradient
            delta, norm_deltas[hi - 1] = self.local_delta(
                hi - 1, top_gradient, hs, gammas.get(hi - 1)
            )
        deltas: Activations = {hi - 1: delta}
        plain, f_grad = not self.batch_norm, self.f_grad
        for i in range(hi - 1, max(lo, 1) - 1, -1):
            g = delta @ w[i].mT
            grads_h[i - 1] = g
            if i > lo:
                if plain:  # the every-step path of backprop: local_delta, inlined
                    delta = g * f_grad(hs[i])
                else:
                    delta, norm_deltas[i - 1] = self.local_delta(i - 1, g, hs, gammas.get(i - 1))
                deltas[i - 1] = delta
        return grads_h, deltas, norm_deltas

    def parameter_gradients(
        self, hs: Activations, deltas: Activations
    ) -> list[tuple[Array, Array]]:
        """dLoss/dW_k, dLoss/db_k from per-example deltas (mean over the batch), by layer."""
        n = hs[0].shape[-2]
        return [(hs[k].mT @ deltas[k] / n, batch_sum(deltas[k]) / n) for k in sorted(deltas)]

    def norm_gradients(self, hs: Pass, norm_deltas: Activations) -> list[tuple[Array, Array]]:
        """dLoss/dgamma_k, dLoss/dbeta_k of each normalised hidden layer (batch means)."""
        n = hs[0].shape[-2]
        return [
            (batch_sum(norm_deltas[k] * hs.norm[k][0]) / n, batch_sum(norm_deltas[k]) / n)
            for k in sorted(norm_deltas)
        ]
