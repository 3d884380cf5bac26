"""Optimisers that update named parameters in place: SGD, SGD with momentum, Adam.

An optimiser owns the list of parameters it updates (synthgrad_core.nn.Parameter) and
keeps what it carries between steps (moments, step counts) by each parameter's name, so
its state is named after the parameters. Updates write into buffers the optimiser keeps
per parameter (`out=` forms, no temporaries the size of a weight matrix), in the
parameters' own dtype; the change an update returns is one of those buffers, valid until
that parameter's next update.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .nn import Dense, Parameter, batch_sum

Array = np.ndarray

#: Elements per chunk of a large parameter's Adam update: its arrays' chunks (parameter,
#: gradient, two moments, two buffers) fit in a core's L2 cache together.
CHUNK = 32768


class Optimizer:
    """Updates its parameters in place from gradients of the same shapes."""

    #: the per-parameter arrays the optimiser carries between steps (named in its state)
    MOMENTS: tuple[str, ...] = ()

    def __init__(self, params: Sequence[Parameter], learning_rate: float) -> None:
        self.params = list(params)
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError("an optimiser's parameters need distinct names")
        self.learning_rate = learning_rate
        self.slots: dict[str, dict[str, Array]] = {
            moment: {p.name: np.zeros_like(p.value) for p in self.params} for moment in self.MOMENTS
        }
        self._change: dict[str, Array] = {}
        self._grad: dict[str, Array] = {}

    def update(self, param: Parameter, grad: Array) -> Array:
        """Apply one update to `param`; returns the change subtracted from it."""
        raise NotImplementedError

    def step(self, grads: Sequence[Array]) -> list[Array]:
        """One update of every parameter, `grads` in the order of `params`."""
        return [self.update(p, g) for p, g in zip(self.params, grads, strict=True)]

    def update_dense(self, layer: Dense, inputs: Array, deltas: Array) -> Array:
        """Update a dense layer's weights and bias from per-example deltas.

        The gradients are the batch means inputs^T deltas / n and sum(deltas) / n.
        Returns the change subtracted from the weights.
        """
        n = deltas.shape[-2]
        grad = np.matmul(inputs.mT, deltas, out=self._buffer(self._grad, layer.weight))
        grad /= n
        update = self.update(layer.weight, grad)
        self.update(layer.bias, batch_sum(deltas) / n)
        return update

    def _buffer(self, buffers: dict[str, Array], param: Parameter) -> Array:
        """The optimiser's scratch array of `param`'s shape and dtype under `buffers`."""
        buffer = buffers.get(param.name)
        if buffer is None or buffer.shape != param.value.shape:
            buffer = buffers[param.name] = np.empty_like(param.value)
        return buffer

    def named_arrays(self) -> dict[str, Array]:
        """What the optimiser carries from step to step, as `<moment>.<parameter>` (live)."""
        return {
            f"{moment}.{name}": value
            for moment, values in self.slots.items()
            for name, value in values.items()
        }

    def state(self) -> dict[str, Array]:
        """`named_arrays()`, copied."""
        return {name: value.copy() for name, value in self.named_arrays().items()}

    def load_state(self, state: dict[str, Array]) -> None:
        """Take up `state()` of an optimiser of the same kind over parameters of the same
        names and shapes."""
        for moment, values in self.slots.items():
            for name, value in values.items():
                value[...] = state[f"{moment}.{name}"].reshape(value.shape)


class SGD(Optimizer):
    def update(self, param: Parameter, grad: Array) -> Array:
        change = np.multiply(grad, self.learning_rate, out=self._buffer(self._change, param))
        param.value -= change
        return change

    def update_dense(self, layer: Dense, inputs: Array, deltas: Array) -> Array:
        # Scale the (batch x width) deltas once by lr / n instead of scaling the
        # (fan-in x width) gradient twice: one weight-sized pass instead of three.
        scaled = deltas * (self.learning_rate / deltas.shape[-2])
        change = np.matmul(inputs.mT, scaled, out=self._buffer(self._change, layer.weight))
        layer.weight.value -= change
        layer.bias.value -= batch_sum(scaled)
        return change


class Momentum(Optimizer):
    MOMENTS = ("velocity",)

    def __init__(
        self, params: Sequence[Parameter], learning_rate: float, beta: float = 0.9
    ) -> None:
        super().__init__(params, learning_rate)
        self.beta = beta

    def update(self, param: Parameter, grad: Array) -> Array:
        v = self.slots["velocity"][param.name]
        v *= self.beta
        v += grad
        change = np.multiply(v, self.learning_rate, out=self._buffer(self._change, param))
        param.value -= change
        return change


class Adam(Optimizer):
    MOMENTS = ("m", "v")  # and "t", each parameter's step count

    def __init__(
        self,
        params: Sequence[Parameter],
        learning_rate: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, learning_rate)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        # each parameter's own step count (a layer that skips an update does not count it)
        self.slots["t"] = {p.name: np.zeros((), dtype=np.int64) for p in self.params}
        self._scratch: dict[str, Array] = {}

    def update(self, param: Parameter, grad: Array) -> Array:
        name = param.name
        count = self.slots["t"][name]
        count += 1
        t = int(count)
        arrays = (
            param.value,
            grad,
            self.slots["m"][name],
            self.slots["v"][name],
            self._buffer(self._scratch, param),
            self._buffer(self._change, param),
        )
        corrections = (1 - self.beta1**t, 1 - self.beta2**t)
        if param.value.size > CHUNK and all(a.flags.c_contiguous for a in arrays):
            # A chunk at a time, so the update's dozen passes over the arrays run in the
            # cache instead of streaming each whole array from memory a dozen times
            # (element by element the same arithmetic).
            flat = [a.reshape(-1) for a in arrays]
            for lo in range(0, param.value.size, CHUNK):
                self._adam([a[lo : lo + CHUNK] for a in flat], *corrections)
        else:
            self._adam(list(arrays), *corrections)
        return arrays[-1]

    def _adam(self, arrays: list[Array], c1: float, c2: float) -> None:
        """The update on (parameter, gradient, m, v, scratch, change); c = 1 - beta^t."""
        p, grad, m, v, scratch, change = arrays
        # m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        m *= self.beta1
        m += np.multiply(grad, 1 - self.beta1, out=scratch)
        v *= self.beta2
        np.multiply(grad, 1 - self.beta2, out=scratch)
        scratch *= grad
        v += scratch
        # change = lr * (m / c1) / (sqrt(v / c2) + eps), c = 1 - beta^t, written as
        # (lr sqrt(c2) / c1) * m / (sqrt(v) + eps sqrt(c2)): two passes fewer
        root = math.sqrt(c2)
        np.sqrt(v, out=scratch)
        scratch += self.eps * root
        np.divide(m, scratch, out=change)
        change *= self.learning_rate * root / c1
        p -= change


def make_optimizer(
    name: str, params: Sequence[Parameter], learning_rate: float, momentum: float
) -> Optimizer:
    if name == "sgd":
        return SGD(params, learning_rate)
    if name == "momentum":
        return Momentum(params, learning_rate, momentum)
    if name == "adam":
        return Adam(params, learning_rate, beta1=momentum)
    raise ValueError(f"unknown optimizer {name!r}")
