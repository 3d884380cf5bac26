"""Synthetic-gradient modules: predict a layer's per-example gradient from its activation."""

from __future__ import annotations

import numpy as np

from .nn import relu
from .optim import Optimizer, make_optimizer


class SyntheticGradientModule:
    """M_i: predicts G_i = B dLoss/dh_i from h_i (and, for cDNI, the targets).

    Linear by default, or one hidden ReLU layer of `hidden` units. The output
    layer starts at zero, so every synthetic gradient is zero at step 0. It
    learns by one optimiser step per training step on
    0.5 * mean_n |prediction_n - target_n|^2.
    """

    def __init__(
        self,
        width: int,
        condition_width: int,
        hidden: int,
        optimizer: str,
        learning_rate: float,
        momentum: float,
        rng: np.random.Generator,
    ) -> None:
        n_in = width + condition_width
        self.conditioned = condition_width > 0
        self.hidden = hidden
        params: list[np.ndarray] = []
        if hidden:
            params += [rng.standard_normal((n_in, hidden)) * np.sqrt(2.0 / n_in), np.zeros(hidden)]
            n_in = hidden
        params += [np.zeros((n_in, width)), np.zeros(width)]
        self.params = params
        self.optimizer: Optimizer = make_optimizer(optimizer, params, learning_rate, momentum)
        self._inputs: np.ndarray | None = None
        self._hidden_out: np.ndarray | None = None

    def state(self) -> dict[str, np.ndarray]:
        """The module's parameters and its optimiser's moments, by name; copies."""
        out = {f"param.{i}": p.copy() for i, p in enumerate(self.params)}
        return out | {f"opt.{k}": v for k, v in self.optimizer.state().items()}

    def load_state(self, state: dict[str, np.ndarray], with_optimizer: bool) -> None:
        """Take up `state()` of a module of the same shape (and its optimiser's moments)."""
        for i, p in enumerate(self.params):
            p[...] = state[f"param.{i}"]
        if with_optimizer:
            moments = {k[4:]: v for k, v in state.items() if k.startswith("opt.")}
            self.optimizer.load_state(moments)

    def predict(self, h: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The synthetic gradient for activations `h` (targets `y` used only if conditioned)."""
        x = np.concatenate([h, y], axis=1) if self.conditioned else h
        self._inputs = x
        if self.hidden:
            z = relu(x @ self.params[0] + self.params[1])
            self._hidden_out = z
            return z @ self.params[2] + self.params[3]
        return x @ self.params[0] + self.params[1]

    def context(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """What `update` needs of the last `predict`: kept by a pipelined stage, whose target
        for a batch arrives after it has predicted for the next ones."""
        return self._inputs, self._hidden_out

    def update(
        self,
        prediction: np.ndarray,
        target: np.ndarray,
        context: tuple[np.ndarray | None, np.ndarray | None] | None = None,
    ) -> np.ndarray:
        """One step towards `target` for the inputs of the last `predict` (or of `context`);
        returns the error."""
        x, z = context if context is not None else (self._inputs, self._hidden_out)
        assert x is not None, "predict() must come before update()"
        error = prediction - target
        if self.hidden:
            assert z is not None
            back = (error @ self.params[2].T) * (z > 0)
            self.optimizer.step_dense(2, z, error)
            self.optimizer.step_dense(0, x, back)
        else:
            self.optimizer.step_dense(0, x, error)
        return error


def module_loss(error: np.ndarray) -> float:
    """0.5 * mean over the batch of the squared prediction error."""
    return float(0.5 * np.sum(error * error) / len(error))
