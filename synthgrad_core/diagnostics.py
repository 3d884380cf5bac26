"""Diagnostics: how a rule's gradient compares with the true one, and weight statistics."""

from __future__ import annotations

import itertools
import math
from typing import Any

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
    if signal is truth:  # backprop: the signal *is* the true gradient
        return fidelity_figures(None, 0.0, float(t @ t), 0.0)
    s = signal.ravel()
    diff = s - t
    return fidelity_figures(float(s @ t), float(s @ s), float(t @ t), float(diff @ diff))


def fidelity_figures(
    dot: float | None, s_square: float, t_square: float, diff_square: float
) -> tuple[float, float, float]:
    """fidelity's three numbers from the sums it needs (dot None: the signal is the truth)."""
    nan = math.nan
    t_norm = math.sqrt(t_square)
    if dot is None:
        return (1.0, 0.0, 1.0) if t_norm > 0 else (nan, nan, nan)
    s_norm = math.sqrt(s_square)
    cos = dot / (s_norm * t_norm) if s_norm > 0 and t_norm > 0 else nan
    rel_err = math.sqrt(diff_square) / t_norm if t_norm > 0 else nan
    norm_ratio = s_norm / t_norm if t_norm > 0 else nan
    return cos, rel_err, norm_ratio


def stacked_fidelity(signal: np.ndarray, truth: np.ndarray) -> list[tuple[float, float, float]]:
    """fidelity of each seed of stacked (seeds, batch, width) arrays, one reduction each."""
    t = truth.reshape(len(truth), -1)
    t_square = _row_squares(t)
    if signal is truth:
        return [fidelity_figures(None, 0.0, ts, 0.0) for ts in t_square]
    s = signal.reshape(len(signal), -1)
    dots = np.vecdot(s, t).tolist()
    sums = zip(dots, _row_squares(s), t_square, _row_squares(s - t), strict=True)
    return [fidelity_figures(*four) for four in sums]


def _row_squares(rows: np.ndarray) -> list[float]:
    result: list[float] = np.vecdot(rows, rows).tolist()  # one dot product per seed
    return result


def saturation(h: np.ndarray, activation: str) -> Any:
    """Share of saturated units (sigmoid, tanh) or dead units (relu: zero on the whole batch):
    a float, or one per seed of stacked (seeds, batch, width) activations."""
    stacked = h.ndim > 2
    axes = (-2, -1) if stacked else None
    if activation == "relu":
        alive = np.count_nonzero((h > 0).any(axis=-2), axis=-1 if stacked else None)
        return (1.0 - alive / h.shape[-1]).tolist() if stacked else 1.0 - int(alive) / h.shape[1]
    if activation == "sigmoid":
        edge = _SATURATION["sigmoid"]
        saturated = np.count_nonzero(np.abs(h - 0.5) > 0.5 - edge, axis=axes)
    else:
        saturated = np.count_nonzero(np.abs(h) > _SATURATION["tanh"], axis=axes)
    return (saturated / h[0].size).tolist() if stacked else int(saturated) / h.size


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
        u = None if update is None else update.ravel()
        update_square = 0.0 if u is None else float(u @ u)
        figures = (sums[k], square[k], highs[k], lows[k], update_square, before_square_sums[k])
        stats.append(layer_figures(bounds[k + 1] - bounds[k], *figures))
    return stats


def layer_figures(
    size: int,
    total: float,
    square_sum: float,
    high: float,
    low: float,
    update_square: float,
    before_square: float,
) -> tuple[float, float, float, float, float]:
    """layer_stats' five numbers of one layer from its sums."""
    mean = total / size
    before = math.sqrt(before_square)
    return (
        mean,
        math.sqrt(max(square_sum / size - mean * mean, 0.0)),
        math.sqrt(square_sum),
        max(high, -low),
        math.sqrt(update_square) / before if before > 0 else math.nan,
    )


def stacked_square_sums(flat: np.ndarray, starts: np.ndarray) -> list[list[float]]:
    """square_sums of each seed's row of stacked flat weights (seeds, total), by seed."""
    bounds = [*starts.tolist(), flat.shape[1]]
    layers = [_row_squares(flat[:, a:b]) for a, b in itertools.pairwise(bounds)]
    return [list(per_seed) for per_seed in zip(*layers, strict=True)]


def stacked_layer_stats(
    flat: np.ndarray,
    starts: np.ndarray,
    updates: list[np.ndarray | None],
    before_square_sums: list[list[float]],
) -> list[list[tuple[float, float, float, float, float]]]:
    """layer_stats of each seed of stacked flat weights (seeds, total), by seed: one
    reduction per statistic and layer for every seed together."""
    seeds = len(flat)
    bounds = [*starts.tolist(), flat.shape[1]]
    by_layer = []
    for k, (a, b) in enumerate(itertools.pairwise(bounds)):
        layer = flat[:, a:b]
        update = updates[k]
        update_squares = (
            [0.0] * seeds if update is None else _row_squares(update.reshape(seeds, -1))
        )
        by_layer.append(
            zip(
                layer.sum(axis=1).tolist(),
                _row_squares(layer),
                layer.max(axis=1).tolist(),
                layer.min(axis=1).tolist(),
                update_squares,
                strict=True,
            )
        )
    sizes = [b - a for a, b in itertools.pairwise(bounds)]
    return [
        [
            layer_figures(sizes[k], total, square, high, low, moved, before_square_sums[s][k])
            for k, (total, square, high, low, moved) in enumerate(per_layer)
        ]
        for s, per_layer in enumerate(zip(*by_layer, strict=True))
    ]


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
