"""The four learning rules, side by side: what each hidden layer learns from.

Every rule answers one question for every hidden layer h_i: what stands in for
the true gradient dLoss/dh_i? Its answer is a `Backward`: the signal per hidden
layer and the per-example pre-activation delta per weight layer that the
optimiser turns into weight updates. A rule that learns something of its own
(the synthetic-gradient modules) does so in `learn`, after the network's update.

- `Backprop`: the true gradient, by the full backward pass (locked: every layer
  waits for the layers above).
- `SyntheticGradients` (dni, and cdni with the labels as the modules' extra
  input): each layer's own module predicts its gradient from h_i at once; the
  module then learns from what the layer above sends back through its
  pre-update weights (bootstrapping); the top module learns from the true loss.
- `FeedbackAlignment`: the error travels down through fixed random matrices B_k
  in place of W_k^T.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .nn import Network

Array = np.ndarray


class GradientModule(Protocol):
    """What a rule needs of a synthetic-gradient module (lets tests plug in an oracle)."""

    def predict(self, h: Array, y: Array) -> Array: ...

    def update(self, prediction: Array, target: Array) -> Array: ...


@dataclass
class TrueGradient:
    """The backprop pass at the pre-step weights: per-example dLoss/dh_i and deltas."""

    gradients: list[Array]
    deltas: list[Array]


@dataclass
class Backward:
    """A rule's answer for one batch.

    `signals[i]` stands where dLoss/dh_{i+1} stands in backprop; `deltas[k]` is the
    per-example dLoss/da_{k+1} the optimiser uses for layer k+1. Synthetic-gradient
    rules also keep each module's prediction and the target it will learn from.
    """

    signals: list[Array]
    deltas: list[Array]
    predictions: list[Array] = field(default_factory=list)
    targets: list[Array] = field(default_factory=list)


class Rule(Protocol):
    name: str
    #: True when the rule itself needs the full backward pass every step.
    needs_true_gradient: bool

    def backward(
        self, net: Network, hs: list[Array], top_delta: Array, y: Array, truth: TrueGradient | None
    ) -> Backward: ...

    def learn(self, backward: Backward, applies: list[bool] | None) -> list[Array]:
        """Train whatever the rule learns itself; returns each module's error (or nothing)."""
        ...


class Backprop:
    name = "backprop"
    needs_true_gradient = True

    def backward(
        self, net: Network, hs: list[Array], top_delta: Array, y: Array, truth: TrueGradient | None
    ) -> Backward:
        assert truth is not None
        return Backward(truth.gradients, truth.deltas)

    def learn(self, backward: Backward, applies: list[bool] | None) -> list[Array]:
        return []


class FeedbackAlignment:
    """Lillicrap et al. (2016): the error goes down through fixed random B_k, not W_k^T."""

    name = "feedback_alignment"
    needs_true_gradient = False

    def __init__(self, feedback: list[Array]) -> None:
        self.feedback = feedback  # feedback[k] stands where weights[k].T stands

    def backward(
        self, net: Network, hs: list[Array], top_delta: Array, y: Array, truth: TrueGradient | None
    ) -> Backward:
        depth = net.depth
        signals, deltas = [top_delta] * (depth - 1), [top_delta] * depth
        delta = top_delta
        for k in range(depth - 1, 0, -1):
            signal = delta @ self.feedback[k]
            signals[k - 1] = signal
            delta = signal * net.f_grad(hs[k])
            deltas[k - 1] = delta
        return Backward(signals, deltas)

    def learn(self, backward: Backward, applies: list[bool] | None) -> list[Array]:
        return []


class SyntheticGradients:
    """Jaderberg et al. (2017): each hidden layer updates at once from its module's prediction.

    `scale` multiplies each prediction where the layer uses it, and only there: the
    modules regress unscaled gradient estimates, and the target a layer sends down
    is built from its unscaled delta. So every hidden layer uses exactly
    `scale` x (its module's estimate), at any depth; building the targets from the
    scaled signal would compound to scale^(L-i) at hidden layer i.
    """

    needs_true_gradient = False

    def __init__(self, modules: list[GradientModule], scale: float, conditioned: bool) -> None:
        self.modules = modules
        self.scale = scale
        self.name = "cdni" if conditioned else "dni"

    def backward(
        self, net: Network, hs: list[Array], top_delta: Array, y: Array, truth: TrueGradient | None
    ) -> Backward:
        depth = net.depth
        scale = self.scale
        signals, deltas = [top_delta] * (depth - 1), [top_delta] * depth
        targets = [top_delta] * (depth - 1)
        predictions = []
        for k, module in enumerate(self.modules):
            prediction = module.predict(hs[k + 1], y)
            predictions.append(prediction)
            estimate = prediction * net.f_grad(hs[k + 1])
            if scale != 1.0:
                signals[k], deltas[k] = prediction * scale, estimate * scale
            else:
                signals[k], deltas[k] = prediction, estimate
            if k > 0:  # what layer k+1 sends back to module k-1 through its pre-update weights
                targets[k - 1] = estimate @ net.weights[k].T
        targets[depth - 2] = top_delta @ net.weights[depth - 1].T  # the top module: true loss
        return Backward(signals, deltas, predictions, targets)

    def learn(self, backward: Backward, applies: list[bool] | None) -> list[Array]:
        """Each module regresses its target; a layer that skipped its update skips it too."""
        return [
            module.update(prediction, target)
            if applies is None or applies[k]
            else prediction - target
            for k, (module, prediction, target) in enumerate(
                zip(self.modules, backward.predictions, backward.targets, strict=True)
            )
        ]
