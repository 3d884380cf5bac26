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
from typing import Any, Protocol

import numpy as np

from .nn import Activations, Network, Pass

Array = np.ndarray
#: Which layers apply their update this step (None: all of them).
Applies = list[bool] | None


class GradientModule(Protocol):
    """What a rule needs of a synthetic-gradient module (lets tests plug in an oracle)."""

    def predict(self, h: Array, y: Array) -> Array: ...

    def context(self) -> Any:
        """What `update` needs of the last `predict` (kept for a late target)."""
        ...

    def update(self, prediction: Array, target: Array, context: Any = None) -> Array: ...


@dataclass(slots=True)
class TrueGradient:
    """The backprop pass at the pre-step weights: per-example dLoss/dh by hidden index,
    deltas by layer index (Network.true_backward)."""

    gradients: Activations
    deltas: Activations
    norm_deltas: Activations = field(default_factory=dict)


@dataclass(slots=True)
class Backward:
    """A rule's answer for one batch over a range of layers, by index.

    `signals[k]` stands where dLoss/dh_{k+1} stands in backprop; `deltas[k]` is the
    per-example dLoss/da_{k+1} the optimiser uses for layer k+1. Synthetic-gradient
    rules also keep each module's prediction, what its update needs of the
    prediction (`contexts`), and the target it will learn from: `targets[k]` for
    module k is sent by layer k+1, so the top module of a range gets its target
    from above, later.
    """

    signals: Activations
    deltas: Activations
    #: with batch normalisation, the gradient at each normalisation's output (its scale
    #: and shift learn from it; Network.local_delta)
    norm_deltas: Activations = field(default_factory=dict)
    predictions: Activations = field(default_factory=dict)
    contexts: dict[int, Any] = field(default_factory=dict)
    targets: Activations = field(default_factory=dict)


class Rule(Protocol):
    name: str
    #: True when the rule itself needs the full backward pass every step.
    needs_true_gradient: bool

    def backward(
        self,
        net: Network,
        hs: Pass,
        top_delta: Array | None,
        y: Array,
        truth: TrueGradient | None,
        lo: int = 0,
        hi: int | None = None,
    ) -> Backward:
        """The signals and deltas of layers lo..hi-1 (the whole net by default)."""
        ...

    def learn(
        self, backward: Backward, applies: Applies, layers: range | None = None
    ) -> Activations:
        """Train what the rule learns itself (for the modules of `layers`, default all);
        returns each module's error by index (or nothing)."""
        ...


class Backprop:
    name = "backprop"
    needs_true_gradient = True

    def backward(
        self,
        net: Network,
        hs: Pass,
        top_delta: Array | None,
        y: Array,
        truth: TrueGradient | None,
        lo: int = 0,
        hi: int | None = None,
    ) -> Backward:
        assert truth is not None
        return Backward(truth.gradients, truth.deltas, truth.norm_deltas)

    def learn(
        self, backward: Backward, applies: Applies, layers: range | None = None
    ) -> Activations:
        return {}


class FeedbackAlignment:
    """Lillicrap et al. (2016): the error goes down through fixed random B_k, not W_k^T."""

    name = "feedback_alignment"
    needs_true_gradient = False

    def __init__(self, feedback: list[Array]) -> None:
        self.feedback = feedback  # feedback[k] stands where weights[k].T stands

    def backward(
        self,
        net: Network,
        hs: Pass,
        top_delta: Array | None,
        y: Array,
        truth: TrueGradient | None,
        lo: int = 0,
        hi: int | None = None,
    ) -> Backward:
        # Only the whole net: the error comes from the top (a locked rule).
        assert top_delta is not None and lo == 0 and hi in (None, net.depth)
        depth = net.depth
        out = Backward({}, {depth - 1: top_delta})
        delta = top_delta
        for k in range(depth - 1, 0, -1):
            signal = delta @ self.feedback[k]
            out.signals[k - 1] = signal
            delta, out.norm_deltas[k - 1] = net.local_delta(k - 1, signal, hs)
            out.deltas[k - 1] = delta
        return out

    def learn(
        self, backward: Backward, applies: Applies, layers: range | None = None
    ) -> Activations:
        return {}


class SyntheticGradients:
    """Jaderberg et al. (2017): each hidden layer updates at once from its module's prediction.

    `scale` multiplies each prediction where the layer uses it, and only there: the
    modules regress unscaled gradient estimates, and the target a layer sends down
    is built from its unscaled delta. So every hidden layer uses exactly
    `scale` x (its module's estimate), at any depth; building the targets from the
    scaled signal would compound to scale^(L-i) at hidden layer i.

    The step works on any range of layers lo..hi-1, so a pipelined stage runs exactly
    this code on its own layers (synthgrad_core.pipeline).
    """

    needs_true_gradient = False

    def __init__(self, modules: list[GradientModule], scale: float, conditioned: bool) -> None:
        self.modules = modules
        self.scale = scale
        self.name = "cdni" if conditioned else "dni"

    def backward(
        self,
        net: Network,
        hs: Pass,
        top_delta: Array | None,
        y: Array,
        truth: TrueGradient | None,
        lo: int = 0,
        hi: int | None = None,
    ) -> Backward:
        """Each hidden layer's module predicts its gradient; the deltas; and the targets
        layers lo+1..hi-1 send down through their pre-update weights (the output layer's,
        from the true loss: `top_delta`, when the range ends at the top)."""
        depth = net.depth
        hi = depth if hi is None else hi
        scale, weights = self.scale, net.weights
        out = Backward({}, {})
        for k in range(lo, min(hi, depth - 1)):
            module = self.modules[k]
            prediction = module.predict(hs[k + 1], y)
            out.predictions[k] = prediction
            out.contexts[k] = module.context()
            estimate, norm_delta = net.local_delta(k, prediction, hs)
            if k > 0:  # what layer k+1 sends back to module k-1 through its pre-update weights
                out.targets[k - 1] = estimate @ weights[k].mT
            if scale != 1.0:
                out.signals[k], out.deltas[k] = prediction * scale, estimate * scale
                if net.batch_norm:
                    out.norm_deltas[k] = norm_delta * scale
            else:
                out.signals[k], out.deltas[k] = prediction, estimate
                out.norm_deltas[k] = norm_delta
        if hi == depth:  # the top module learns from the true loss
            assert top_delta is not None
            out.deltas[depth - 1] = top_delta
            out.targets[depth - 2] = top_delta @ weights[depth - 1].mT
        return out

    def learn(
        self, backward: Backward, applies: Applies, layers: range | None = None
    ) -> Activations:
        """Each module of `layers` with its target in `backward` regresses it."""
        targets, predictions, contexts = backward.targets, backward.predictions, backward.contexts
        if layers is None and applies is None:  # the every-step path: every module learns
            modules = self.modules
            return {
                k: modules[k].update(predictions[k], target, contexts[k])
                for k, target in targets.items()
            }
        keys = targets if layers is None else [k for k in layers if k in targets]
        return {
            k: self.learn_one(k, predictions[k], targets[k], applies, contexts[k]) for k in keys
        }

    def learn_one(
        self, k: int, prediction: Array, target: Array, applies: Applies | bool, context: Any
    ) -> Array:
        """Module k regresses `target` from the inputs of its prediction; a layer that
        skipped its update skips it too. Returns the prediction's error."""
        applied = applies if isinstance(applies, bool) else applies is None or applies[k]
        if not applied:
            return prediction - target
        return self.modules[k].update(prediction, target, context)
