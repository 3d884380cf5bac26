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


def saturation_rows(h: np.ndarray, activation: str, out: np.ndarray) -> None:
    """Into `out` (seeds,): `saturation` of each seed of stacked (seeds, batch, width)
    activations, by one reduction for every seed (the same numbers)."""
    seeds, width = len(h), h.shape[-1]
    if activation == "relu":
        alive = np.add.reduce((h > 0).any(axis=-2), axis=-1)
        np.subtract(1.0, alive / width, out=out)
        return
    if activation == "sigmoid":
        saturated = np.abs(h - 0.5) > 0.5 - _SATURATION["sigmoid"]
    else:
        saturated = np.abs(h) > _SATURATION["tanh"]
    np.divide(np.add.reduce(saturated.reshape(seeds, -1), axis=1), h[0].size, out=out)


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
    square: list[float],
) -> list[tuple[float, float, float, float, float]]:
    """Per layer: mean, std, Frobenius norm, max |w| and update ratio |update| / |w before|.

    `flat` holds every layer's weights, layer k from `starts[k]`; `updates[k]` is what
    the step subtracted from layer k (None: it did not update); `square` the square sums
    of `flat`'s segments now (square_sums). One reduction per
    statistic for all layers together. std comes from E[w^2] - mean^2: weights have
    |mean| << std, so the cancellation this formula can suffer costs no visible digits.
    """
    bounds = [*starts.tolist(), flat.size]
    sums = np.add.reduceat(flat, starts).tolist()
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


class StepFigures:
    """Every per-layer figure of a diagnosed step of a stack of seeds (SeedBatch), as one
    (seeds, figures) table: each figure is one reduction per layer over every seed at
    once (a row per seed), written straight into its rows of the table, and the
    arithmetic that turns sums into figures runs once on every layer and seed together;
    so the Python of a diagnosed step does not grow with the number of seeds. (One seed
    alone keeps the per-figure functions above: on one row, numpy's per-call cost made
    this table slower; docs/benchmarks.md.)

    Sums of squares and dot products are BLAS row dot products (np.vecdot), as `fidelity`
    and the square sums of one seed are; a seed in the stack and the same seed alone
    agree to 1e-9 (tests/core/test_seeds.py).
    """

    def __init__(self, sizes: list[int], activation: str) -> None:
        """`sizes`: the net's widths, input to output."""
        self.depth = len(sizes) - 1
        self.activation = activation
        self._layouts: dict[tuple[tuple[int, ...], tuple[int, ...]], tuple[list[str], slice]] = {}
        self._last: tuple[int, np.ndarray] | None = None

    def keys(self, fidelity: tuple[int, ...], modules: tuple[int, ...]) -> tuple[list[str], slice]:
        """The record keys of the figures in the table's column order (fidelity of the hidden
        layers `fidelity`, module loss of `modules`), and the columns of the weight norms."""
        found = self._layouts.get((fidelity, modules))
        if found is None:
            keys = [f"{n}_h{k + 1}" for n in ("cos", "rel_err", "norm_ratio") for k in fidelity]
            keys += [f"saturated_h{k + 1}" for k in range(self.depth - 1)]
            keys += [f"module_loss_h{k + 1}" for k in modules]
            keys += [f"{name}_l{k + 1}" for name in LAYER_FIGURES for k in range(self.depth)]
            norm = keys.index("w_norm_l1")
            found = self._layouts[(fidelity, modules)] = (keys, slice(norm, norm + self.depth))
        return found

    def before(self, flat: np.ndarray, starts: np.ndarray, step: int) -> np.ndarray:
        """(layers, seeds): each layer's sum of squared weights before step `step`'s update:
        the norms the previous step's figures found, when that step was diagnosed (nothing
        changes the weights between two steps), else summed now."""
        if self._last is not None and self._last[0] == step - 1:
            return self._last[1]
        return square_rows(flat, starts)

    def after(self, step: int, square: np.ndarray) -> None:
        """The square sums step `step`'s figures found (after its update), for `before`."""
        self._last = (step, square)

    def values(
        self,
        hidden: list[np.ndarray],
        signals: dict[int, np.ndarray],
        truths: dict[int, np.ndarray],
        errors: dict[int, np.ndarray],
        weights: tuple[np.ndarray, np.ndarray, list[np.ndarray | None], np.ndarray],
        times: tuple[list[float], list[float]],
        step: int,
    ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """The keys, the (seeds, figures) table and whether each seed's weights are finite.

        Every array is stacked (seeds, ...): `hidden` the hidden activations h_1..h_{L-1},
        `signals` / `truths` / `errors` by hidden index, `weights` = (flat weights
        (seeds, total), each layer's start, what each layer's update subtracted (None:
        skipped), `before`'s square sums); `step` the step they are of.
        """
        fidelity = tuple(k for k in sorted(signals) if k in truths)
        modules = tuple(sorted(errors))
        keys, norms = self.keys(fidelity, modules)
        table = np.empty((len(keys), len(weights[0])))
        at = 3 * len(fidelity)
        fidelity_columns([signals[k] for k in fidelity], [truths[k] for k in fidelity], table[:at])
        for k, h in enumerate(hidden):
            saturation_rows(h, self.activation, table[at + k])
        at += len(hidden)
        module_losses([errors[k] for k in modules], table[at : at + len(modules)])
        at += len(modules)
        self.after(step, layer_columns(*weights, table[at : at + 5 * self.depth]))
        table[at + 5 * self.depth :] = np.array([*times[0], *times[1]])[:, None]
        figures = table.T
        finite = np.asarray(np.isfinite(figures[:, norms]).all(axis=1))
        return keys, figures, finite


#: A layer's figures of a diagnosed step (record keys add `_l<i>`), in table order.
LAYER_FIGURES = ("w_mean", "w_std", "w_norm", "w_max", "update_ratio", "t_forward", "t_update")


def square_rows(flat: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(layers, seeds): each layer's sum of squared weights of stacked flat weights."""
    return np.array([np.vecdot(layer, layer) for layer in _layers(flat, starts)])


def _layers(flat: np.ndarray, starts: np.ndarray) -> list[np.ndarray]:
    """Each layer's segment of stacked flat weights (seeds, total): (seeds, size) views."""
    bounds = [*starts.tolist(), flat.shape[-1]]
    return [flat[:, a:b] for a, b in itertools.pairwise(bounds)]


def table_rows(table: np.ndarray) -> list[list[float]]:
    """A (seeds, figures) table as one list of floats per seed, every undefined value the
    one `math.nan` object (as `fidelity` returns it, so records that hold the same numbers
    compare equal)."""
    rows: list[list[float]] = table.tolist()
    if np.isnan(table).any():
        rows = [[math.nan if v != v else v for v in row] for row in rows]
    return rows


def fidelity_columns(signals: list[np.ndarray], truths: list[np.ndarray], out: np.ndarray) -> None:
    """Into `out` (3 x layers, seeds): cosine, relative error, norm ratio of each stacked
    signal against its true gradient, by seed (undefined values, a zero vector, NaN):
    `fidelity`'s numbers."""
    if not signals:
        return
    seeds, layers = out.shape[1], len(signals)
    rows = []  # per layer: s.t, s.s, t.t, (s-t).(s-t), a number per seed each
    backprop = all(s is t for s, t in zip(signals, truths, strict=True))
    for signal, truth in zip(signals, truths, strict=True):
        t = truth.reshape(seeds, -1)
        t_square = np.vecdot(t, t)
        if backprop:
            rows += [t_square, t_square, t_square, t_square]
            continue
        s = signal.reshape(seeds, -1)
        diff = s - t
        rows += [np.vecdot(s, t), np.vecdot(s, s), t_square, np.vecdot(diff, diff)]
    sums = np.array(rows).reshape(layers, 4, seeds).transpose(1, 0, 2)
    figures = out.reshape(3, layers, seeds)
    if backprop:  # the signal *is* the true gradient: exactly 1, 0, 1
        figures[:] = [[[1.0]], [[0.0]], [[1.0]]]
    else:
        s_norm, t_norm, diff_norm = np.sqrt(sums[1:])
        np.divide(sums[0], s_norm * t_norm, out=figures[0])
        np.divide(diff_norm, t_norm, out=figures[1])
        np.divide(s_norm, t_norm, out=figures[2])
    undefined = ~(sums[2] > 0)
    if undefined.any():  # a zero true gradient: nothing is defined
        figures[:, undefined] = np.nan


def module_losses(errors: list[np.ndarray], out: np.ndarray) -> None:
    """Into `out` (modules, seeds): 0.5 * mean over the batch of each module's squared error."""
    seeds = out.shape[-1]
    for k, error in enumerate(errors):
        # A pairwise sum, not a dot: the same bits as synthetic.module_loss of one seed's.
        np.sum((error * error).reshape(seeds, -1), axis=1, out=out[k])
    if errors:
        out *= 0.5
        out /= errors[0].shape[-2]  # 0.5 * sum / n, rounded as module_loss rounds it


def layer_columns(
    flat: np.ndarray,
    starts: np.ndarray,
    updates: list[np.ndarray | None],
    before_square: np.ndarray,
    out: np.ndarray,
) -> np.ndarray:
    """Into `out` (5 x layers, seeds): mean, std, Frobenius norm, max |w| and update ratio
    |update| / |w before| of each layer of stacked flat weights (seeds, total), layer k from
    `starts[k]`; `updates[k]` what the step subtracted from layer k (None: not updated);
    `before_square` (layers, seeds) its square sums before. Returns the square sums now.
    std comes from E[w^2] - mean^2:
    weights have |mean| << std, so the cancellation this formula can suffer costs no
    visible digits."""
    seeds, layers = len(flat), len(starts)
    bounds = [*starts.tolist(), flat.shape[-1]]
    sizes = np.array([b - a for a, b in itertools.pairwise(bounds)])[:, None]
    mean, variance, square, extreme, ratio = out.reshape(5, layers, seeds)
    np.divide(np.add.reduceat(flat, starts, axis=1).T, sizes, out=mean)
    sums = square_rows(flat, starts)
    square[:] = sums
    high = np.maximum.reduceat(flat, starts, axis=1).T
    np.maximum(high, -np.minimum.reduceat(flat, starts, axis=1).T, out=extreme)
    for k, update in enumerate(updates):
        if update is None:
            ratio[k] = 0.0
        else:
            moved = update.reshape(seeds, -1)
            np.vecdot(moved, moved, out=ratio[k])
    ratio /= before_square
    np.subtract(square / sizes, mean * mean, out=variance)
    np.maximum(variance, 0.0, out=variance)
    rooted = out[layers : 3 * layers]  # variance and square sums to std and norm
    np.sqrt(rooted, out=rooted)
    np.sqrt(ratio, out=ratio)
    if not before_square.all():  # no weights before: no ratio
        ratio[before_square == 0] = np.nan
    return sums
