"""The learning rules one by one: what each hidden layer receives, and what the modules learn."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from synthgrad_core import TrainConfig, Trainer
from synthgrad_core.rules import Backprop, FeedbackAlignment, SyntheticGradients, TrueGradient

DEEP = TrainConfig(
    dataset="addition", bits=4, examples=60, hidden=(12, 10, 8), epochs=1, batch_size=5, seed=3
)


def first_batch(trainer: Trainer) -> tuple[dict[int, np.ndarray], np.ndarray, np.ndarray]:
    x, y, _ = trainer.next_batch()
    hs, logits, out = trainer.net.forward(x)
    assert logits is not None and out is not None
    return hs, trainer.net.out.delta(logits, out, y), y


@pytest.mark.parametrize("method", ["dni", "cdni"])
def test_sg_scale_multiplies_each_layer_once_and_never_compounds(method: str) -> None:
    results = {}
    for scale in (1.0, 3.0):
        trainer = Trainer(dataclasses.replace(DEEP, method=method, sg_scale=scale))
        # Modules that predict something non-zero, so targets below the top depend on them.
        for module in trainer.rule.modules:  # type: ignore[attr-defined]
            out = module.params[-2]
            out[...] = np.random.default_rng(0).standard_normal(out.shape)
        hs, top_delta, y = first_batch(trainer)
        results[scale] = trainer.rule.backward(trainer.net, hs, top_delta, y, None)
    one, three = results[1.0], results[3.0]
    for k in range(len(DEEP.hidden or ())):
        np.testing.assert_allclose(three.signals[k], 3.0 * one.signals[k], rtol=1e-12)
        np.testing.assert_allclose(three.deltas[k], 3.0 * one.deltas[k], rtol=1e-12)
        # The modules learn unscaled estimates: their targets do not depend on the scale.
        np.testing.assert_array_equal(three.targets[k], one.targets[k])


def test_feedback_alignment_sends_the_error_through_fixed_matrices() -> None:
    trainer = Trainer(dataclasses.replace(DEEP, method="feedback_alignment"))
    rule = trainer.rule
    assert isinstance(rule, FeedbackAlignment)
    hs, top_delta, y = first_batch(trainer)
    backward = rule.backward(trainer.net, hs, top_delta, y, None)
    expected = top_delta @ rule.feedback[-1]
    np.testing.assert_array_equal(backward.signals[len(backward.signals) - 1], expected)
    assert not np.allclose(expected, top_delta @ trainer.net.weights[-1].T)


def test_backprop_passes_the_true_gradient_through() -> None:
    trainer = Trainer(DEEP)
    hs, top_delta, y = first_batch(trainer)
    truth = TrueGradient(*trainer.net.true_backward(hs, top_delta))
    backward = Backprop().backward(trainer.net, hs, top_delta, y, truth)
    assert backward.signals is truth.gradients and backward.deltas is truth.deltas


def test_cdni_modules_see_the_labels_and_dni_modules_do_not() -> None:
    cdni_trainer = Trainer(dataclasses.replace(DEEP, method="cdni"))
    cdni = cdni_trainer.rule
    dni = Trainer(dataclasses.replace(DEEP, method="dni")).rule
    assert isinstance(cdni, SyntheticGradients) and isinstance(dni, SyntheticGradients)
    assert cdni.name == "cdni" and dni.name == "dni"
    widths = DEEP.hidden or ()
    n_outputs = cdni_trainer.data.n_outputs
    assert [m.params[0].shape[0] for m in cdni.modules] == [w + n_outputs for w in widths]
    assert [m.params[0].shape[0] for m in dni.modules] == list(widths)
