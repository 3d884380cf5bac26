"""Synthetic-gradient modules: predict a layer's per-example gradient from its activation."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np

from .nn import (
    NORM_EPS,
    Dense,
    Norm,
    Parameter,
    batch_mean,
    batch_sum,
    batch_var,
    relu,
    walk,
)
from .optim import Optimizer, make_optimizer


class SyntheticGradientModule:
    """M_i: predicts G_i = B dLoss/dh_i from h_i (and, for cDNI, the targets).

    Linear by default, or an MLP with hidden ReLU layers of the widths in `hidden` (the
    paper's FC modules: two of 1024), optionally batch-normalised before each ReLU (over
    the batch it predicts for; a module only ever trains, so no running statistics). The
    output layer starts at zero, so every synthetic gradient is zero at step 0. It
    learns by one optimiser step per training step on 0.5 * mean_n |prediction_n -
    target_n|^2.
    """

    def __init__(
        self,
        width: int,
        condition_width: int,
        hidden: Sequence[int],
        optimizer: str,
        learning_rate: float,
        momentum: float,
        rng: np.random.Generator,
        batch_norm: bool = False,
        dtype: str = "float64",
    ) -> None:
        n_in = width + condition_width
        self.conditioned = condition_width > 0
        self.hidden = tuple(hidden)
        #: the dense layers, hidden ones first; the output layer starts at zero
        self.layers: list[Dense] = []
        for i, units in enumerate(self.hidden):
            w = (rng.standard_normal((n_in, units)) * np.sqrt(2.0 / n_in)).astype(dtype)
            self.layers.append(Dense.named(f"layer{i}", w, np.zeros(units, dtype)))
            n_in = units
        out = Dense.named(
            f"layer{len(self.hidden)}", np.zeros((n_in, width), dtype), np.zeros(width, dtype)
        )
        self.layers.append(out)
        self.batch_norm = batch_norm and bool(self.hidden)
        #: each hidden layer's normalisation scale and shift (with batch norm)
        self.norms = [
            Norm.named(f"norm{i}", np.ones(units, dtype), np.zeros(units, dtype))
            for i, units in enumerate(self.hidden)
            if self.batch_norm
        ]
        self._optimizer_kind = (optimizer, momentum)
        self.optimizer: Optimizer = make_optimizer(
            optimizer, self.parameters(), learning_rate, momentum
        )
        self._layers: list[np.ndarray] = []
        self._norms: list[tuple[np.ndarray, np.ndarray]] = []

    def parameters(self) -> list[Parameter]:
        """What the module's optimiser updates: each layer's weights and bias, then each
        normalisation's scale and shift."""
        return walk(self.layers, self.norms)

    @property
    def params(self) -> list[np.ndarray]:
        """The parameters' arrays, in the order of `parameters()`."""
        return [p.value for p in self.parameters()]

    @classmethod
    def stacked(cls, modules: Sequence[SyntheticGradientModule]) -> SyntheticGradientModule:
        """One module holding fresh same-shaped modules on a leading seed axis (copies)."""
        module = copy.copy(modules[0])
        layers = zip(*(m.layers for m in modules), strict=True)
        module.layers = [Dense.stacked(parts) for parts in layers]
        norms = zip(*(m.norms for m in modules), strict=True)
        module.norms = [Norm.stacked(parts) for parts in norms]
        kind, momentum = module._optimizer_kind
        rate = module.optimizer.learning_rate
        module.optimizer = make_optimizer(kind, module.parameters(), rate, momentum)
        module._layers, module._norms = [], []
        return module

    def named_arrays(self) -> dict[str, np.ndarray]:
        """The module's parameters and its optimiser's moments by name (live arrays)."""
        out = {f"param.{p.name}": p.value for p in self.parameters()}
        return out | {f"opt.{k}": v for k, v in self.optimizer.named_arrays().items()}

    def state(self) -> dict[str, np.ndarray]:
        """`named_arrays()`, copied."""
        return {name: value.copy() for name, value in self.named_arrays().items()}

    def load_state(self, state: dict[str, np.ndarray], with_optimizer: bool) -> None:
        """Take up `state()` of a module of the same shape (and its optimiser's moments)."""
        for p in self.parameters():
            p.value[...] = state[f"param.{p.name}"].reshape(p.value.shape)
        if with_optimizer:
            moments = {k[4:]: v for k, v in state.items() if k.startswith("opt.")}
            self.optimizer.load_state(moments)

    def predict(self, h: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The synthetic gradient for activations `h` (targets `y` used only if conditioned)."""
        x = np.concatenate([h, y], axis=-1) if self.conditioned else h
        layers = [x]
        norms = []
        for i, layer in enumerate(self.layers[:-1]):
            a = x @ layer.weight.value + layer.bias.value
            if self.batch_norm:
                inv_std = 1.0 / np.sqrt(batch_var(a) + NORM_EPS)
                normalised = (a - batch_mean(a)) * inv_std
                norms.append((normalised, inv_std))
                a = normalised * self.norms[i].scale.value + self.norms[i].shift.value
            x = relu(a)
            layers.append(x)
        self._layers, self._norms = layers, norms
        out = self.layers[-1]
        return x @ out.weight.value + out.bias.value

    def context(self) -> tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
        """What `update` needs of the last `predict` (each layer's input, normalisation
        caches): kept by a pipelined stage, whose target for a batch arrives after it has
        predicted for the next ones."""
        return self._layers, self._norms

    def update(
        self,
        prediction: np.ndarray,
        target: np.ndarray,
        context: tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray]]] | None = None,
    ) -> np.ndarray:
        """One step towards `target` for the inputs of the last `predict` (or of `context`);
        returns the error."""
        layers, norms = context if context is not None else (self._layers, self._norms)
        assert layers, "predict() must come before update()"
        error = prediction - target
        if not self.hidden:  # linear: one dense step
            self.optimizer.update_dense(self.layers[0], layers[0], error)
            return error
        back = error
        for i in range(len(self.hidden), -1, -1):
            layer = self.layers[i]
            # The signal for the layer below goes through this layer's pre-update weights.
            below = (back @ layer.weight.value.mT) * (layers[i] > 0) if i else None
            self.optimizer.update_dense(layer, layers[i], back)
            if below is not None:
                back = self._normalisation_step(i - 1, below, norms) if norms else below
        return error

    def _normalisation_step(
        self, i: int, dz: np.ndarray, norms: list[tuple[np.ndarray, np.ndarray]]
    ) -> np.ndarray:
        """Hidden layer i's normalisation: its scale and shift learn, and the signal goes on
        to the layer's pre-activations (through the pre-update scale)."""
        normalised, inv_std = norms[i]
        norm = self.norms[i]
        gamma = norm.scale.value.copy()
        n = dz.shape[-2]
        self.optimizer.update(norm.scale, batch_sum(dz * normalised) / n)
        self.optimizer.update(norm.shift, batch_sum(dz) / n)
        dn = dz * gamma
        return inv_std * (dn - batch_mean(dn) - normalised * batch_mean(dn * normalised))


def stacked_module_loss(error: np.ndarray) -> list[float]:
    """module_loss of each seed of a stacked (seeds, batch, width) error."""
    rows = error.reshape(len(error), -1)
    losses: list[float] = (0.5 * np.vecdot(rows, rows) / error.shape[-2]).tolist()
    return losses


def module_loss(error: np.ndarray) -> float:
    """0.5 * mean over the batch of the squared prediction error (one seed's).

    A numpy sum, not a BLAS dot product: a dot's last bits depend on where the array
    sits in memory (its kernel's alignment peel), and a run's records must not differ
    between the server's training process and a trainer built anywhere else."""
    return 0.5 * float(np.add.reduce(error * error, axis=None)) / len(error)
