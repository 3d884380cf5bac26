"""Diagnostics: how a rule's gradient compares with the true one, and weight statistics."""

from __future__ import annotations

import itertools
import math

import numpy as np

#: Fixed edges of the weight histograms; weights outside [-1, 1] count in the end bins.
HISTOGRAM_EDGES = np.linspace(-1.0, 1.0, 21)

# Where an activation counts as saturated. sigmoid: h within 0.02 of 0 or 1, where
# h(1 - h) < 0.0196, i.e. below ~8% of the derivative's peak 0.25. tanh: |h| > 0.99,
# where 1 - h^2 < 0.0199, i.e. below ~2% of its peak 1. (tests/core/test_diagnostics.py)
_SATURATION = {"sigmoid": 0.02, "tanh": 0.99}


def fidelity(signal: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """Cosine similarity, relative error |s - t|/|t| and norm ratio |s|/|t| over the batch.

    Undefined values (a zero vector) come back as NaN, which records encode as null.
    """
    t = truth.ravel()
    t_norm = math.sqrt(float(t @ t))
    nan = math.nan
    if signal is truth:  # backprop: the signal *is* the true gradient
        return (1.0, 0.0, 1.0) if t_norm > 0 else (nan, nan, nan)
    s = signal.ravel()
    dot = float(s @ t)
    s_norm = math.sqrt(float(s @ s))
    diff = s - t
    diff_norm = math.sqrt(float(diff @ diff))
    cos = dot / (s_norm * t_norm) if s_norm > 0 and t_norm > 0 else nan
    rel_err = diff_norm / t_norm if t_norm > 0 else nan
    norm_ratio = s_norm / t_norm if t_norm > 0 else nan
    return cos, rel_err, norm_ratio


def saturation(h: np.ndarray, activation: str) -> float:
    """Share of saturated units (sigmoid, tanh) or dead units (relu: zero on the whole batch)."""
    if activation == "relu":
        alive = int(np.count_nonzero((h > 0).any(axis=0)))
        return 1.0 - alive / h.shape[1]
    if activation == "sigmoid":
        edge = _SATURATION["sigmoid"]
        return int(np.count_nonzero(np.abs(h - 0.5) > 0.5 - edge)) / h.size
    return int(np.count_nonzero(np.abs(h) > _SATURATION["tanh"])) / h.size


def square_sums(flat: np.ndarray, starts: np.ndarray) -> list[float]:
    """Sum of squares of each segment of `flat` that begins at `starts`.

    One BLAS dot product per segment: faster than squaring the whole buffer once.
    """
    bounds = [*starts.tolist(), flat.size]
    return [float(np.dot(flat[a:b], flat[a:b])) for a, b in itertools.pairwise(bounds)]


def layer_stats(
    flat: np.ndarray,
    starts: np.ndarray,
    updates: list[np.ndarray | None],
    before_square_sums: list[float],
) -> list[tuple[float, float, float, float, float]]:
    """Per layer: mean, std, Frobenius norm, max |w| and update ratio |update| / |w before|.

    `flat` holds every layer's weights, layer k from `starts[k]`; `updates[k]` is what
    the step subtracted from layer k (None: it did not update). One reduction per
    statistic for all layers together. std comes from E[w^2] - mean^2: weights have
    |mean| << std, so the cancellation this formula can suffer costs no visible digits.
    """
    bounds = [*starts.tolist(), flat.size]
    sums = np.add.reduceat(flat, starts).tolist()
    square = square_sums(flat, starts)
    highs = np.maximum.reduceat(flat, starts).tolist()
    lows = np.minimum.reduceat(flat, starts).tolist()
    stats = []
    for k, update in enumerate(updates):
        size = bounds[k + 1] - bounds[k]
        mean = sums[k] / size
        square_sum = square[k]
        if update is None:
            update_norm = 0.0
        else:
            u = update.ravel()
            update_norm = math.sqrt(float(u @ u))
        before = math.sqrt(float(before_square_sums[k]))
        stats.append(
            (
                mean,
                math.sqrt(max(square_sum / size - mean * mean, 0.0)),
                math.sqrt(square_sum),
                max(highs[k], -lows[k]),
                update_norm / before if before > 0 else math.nan,
            )
        )
    return stats


def histogram(w: np.ndarray) -> list[int]:
    """Counts of the weights in HISTOGRAM_EDGES' bins, outliers folded into the end bins.

    np.histogram's counts (bins [a, b), the last [a, b]), found as its uniform-bins path
    finds them: the bin by arithmetic, then corrected where rounding put a value on the
    wrong side of an edge; with explicit edges np.histogram searches them, ~6x slower.
    """
    edges, bins = HISTOGRAM_EDGES, len(HISTOGRAM_EDGES) - 1
    clipped = np.clip(w.ravel(), edges[0], edges[-1])
    index = ((clipped - edges[0]) * (bins / (edges[-1] - edges[0]))).astype(np.intp)
    np.minimum(index, bins - 1, out=index)
    index -= clipped < edges[index]
    index += (clipped >= edges[index + 1]) & (index != bins - 1)
    return np.bincount(index, minlength=bins).tolist()
