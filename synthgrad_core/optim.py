"""Optimisers that update parameter arrays in place: SGD, SGD with momentum, Adam."""

from __future__ import annotations

import numpy as np


class Optimizer:
    """Updates a fixed list of parameters in place from gradients of the same shapes."""

    def __init__(self, params: list[np.ndarray], learning_rate: float) -> None:
        self.params = params
        self.learning_rate = learning_rate

    def step(self, index: int, grad: np.ndarray) -> None:
        """Apply one update to `params[index]`."""
        raise NotImplementedError


class SGD(Optimizer):
    def step(self, index: int, grad: np.ndarray) -> None:
        self.params[index] -= self.learning_rate * grad


class Momentum(Optimizer):
    def __init__(self, params: list[np.ndarray], learning_rate: float, beta: float = 0.9) -> None:
        super().__init__(params, learning_rate)
        self.beta = beta
        self.velocity = [np.zeros_like(p) for p in params]

    def step(self, index: int, grad: np.ndarray) -> None:
        v = self.velocity[index]
        v *= self.beta
        v += grad
        self.params[index] -= self.learning_rate * v


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

    def step(self, index: int, grad: np.ndarray) -> None:
        self.t[index] += 1
        t = self.t[index]
        m, v = self.m[index], self.v[index]
        m *= self.beta1
        m += (1 - self.beta1) * grad
        v *= self.beta2
        v += (1 - self.beta2) * grad * grad
        m_hat = m / (1 - self.beta1**t)
        v_hat = v / (1 - self.beta2**t)
        self.params[index] -= self.learning_rate * m_hat / (np.sqrt(v_hat) + self.eps)


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
