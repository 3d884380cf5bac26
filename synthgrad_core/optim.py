"""Optimisers that update parameter arrays in place: SGD, SGD with momentum, Adam."""

from __future__ import annotations

import numpy as np


class Optimizer:
    """Updates a fixed list of parameters in place from gradients of the same shapes."""

    def __init__(self, params: list[np.ndarray], learning_rate: float) -> None:
        self.params = params
        self.learning_rate = learning_rate

    def step(self, index: int, grad: np.ndarray) -> np.ndarray:
        """Apply one update to `params[index]`; returns the change subtracted from it."""
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        """What the optimiser carries from step to step (moments), by name; copies."""
        return {}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Take up `state()` of an optimiser of the same kind over parameters of the same shapes."""
        for name, value in state.items():
            kind, _, index = name.partition(".")
            target = getattr(self, kind)
            if index:
                part = target[int(index)]
                part[...] = value.reshape(part.shape)
            else:
                target[:] = [int(v) for v in value]

    def step_dense(self, index: int, inputs: np.ndarray, deltas: np.ndarray) -> np.ndarray:
        """Update a dense layer's weights `params[index]` and bias `params[index + 1]`.

        The gradients are the batch means inputs^T deltas / n and sum(deltas) / n.
        Returns the change subtracted from the weights.
        """
        n = deltas.shape[-2]
        update = self.step(index, inputs.mT @ deltas / n)
        self.step(index + 1, deltas.sum(axis=-2, keepdims=deltas.ndim > 2) / n)
        return update


class SGD(Optimizer):
    def step(self, index: int, grad: np.ndarray) -> np.ndarray:
        update = self.learning_rate * grad
        self.params[index] -= update
        return update

    def step_dense(self, index: int, inputs: np.ndarray, deltas: np.ndarray) -> np.ndarray:
        # Scale the (batch x width) deltas once by lr / n instead of scaling the
        # (fan-in x width) gradient twice: one weight-sized pass instead of three.
        scaled = deltas * (self.learning_rate / deltas.shape[-2])
        update = inputs.mT @ scaled
        self.params[index] -= update
        self.params[index + 1] -= scaled.sum(axis=-2, keepdims=scaled.ndim > 2)
        return update


class Momentum(Optimizer):
    def __init__(self, params: list[np.ndarray], learning_rate: float, beta: float = 0.9) -> None:
        super().__init__(params, learning_rate)
        self.beta = beta
        self.velocity = [np.zeros_like(p) for p in params]

    def state(self) -> dict[str, np.ndarray]:
        return {f"velocity.{i}": v.copy() for i, v in enumerate(self.velocity)}

    def step(self, index: int, grad: np.ndarray) -> np.ndarray:
        v = self.velocity[index]
        v *= self.beta
        v += grad
        update = self.learning_rate * v
        self.params[index] -= update
        return update


class Adam(Optimizer):
    def __init__(
        self,
        params: list[np.ndarray],
        learning_rate: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, learning_rate)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = [0] * len(params)

    def state(self) -> dict[str, np.ndarray]:
        out = {f"m.{i}": m.copy() for i, m in enumerate(self.m)}
        out |= {f"v.{i}": v.copy() for i, v in enumerate(self.v)}
        out["t"] = np.array(self.t, dtype=np.int64)
        return out

    def step(self, index: int, grad: np.ndarray) -> np.ndarray:
        self.t[index] += 1
        t = self.t[index]
        m, v = self.m[index], self.v[index]
        m *= self.beta1
        m += (1 - self.beta1) * grad
        v *= self.beta2
        v += (1 - self.beta2) * grad * grad
        m_hat = m / (1 - self.beta1**t)
        v_hat = v / (1 - self.beta2**t)
        update = self.learning_rate * m_hat / (np.sqrt(v_hat) + self.eps)
        self.params[index] -= update
        return update


def make_optimizer(
    name: str, params: list[np.ndarray], learning_rate: float, momentum: float
) -> Optimizer:
    if name == "sgd":
        return SGD(params, learning_rate)
    if name == "momentum":
        return Momentum(params, learning_rate, momentum)
    if name == "adam":
        return Adam(params, learning_rate, beta1=momentum)
    raise ValueError(f"unknown optimizer {name!r}")
