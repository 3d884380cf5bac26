"""Diagnostics: how a rule's gradient compares with the true one, and weight statistics."""

from __future__ import annotations

import math

import numpy as np

#: Fixed edges of the weight histograms; weights outside [-1, 1] count in the end bins.
HISTOGRAM_EDGES = np.linspace(-1.0, 1.0, 21)

# An activation counts as saturated where its derivative is below ~2% of its peak.
_SATURATION = {"sigmoid": 0.02, "tanh": 0.99}


def fidelity(signal: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """Cosine similarity, relative error |s - t|/|t| and norm ratio |s|/|t| over the batch.

    Undefined values (a zero vector) come back as NaN, which records encode as null.
    """
    s, t = signal.ravel(), truth.ravel()
    dot = float(s @ t)
    s_norm, t_norm = math.sqrt(float(s @ s)), math.sqrt(float(t @ t))
    diff = s - t
    diff_norm = math.sqrt(float(diff @ diff))
    nan = math.nan
    cos = dot / (s_norm * t_norm) if s_norm > 0 and t_norm > 0 else nan
    rel_err = diff_norm / t_norm if t_norm > 0 else nan
    norm_ratio = s_norm / t_norm if t_norm > 0 else nan
    return cos, rel_err, norm_ratio


def saturation(h: np.ndarray, activation: str) -> float:
    """Share of saturated units (sigmoid, tanh) or dead units (relu: zero on the whole batch)."""
    if activation == "relu":
        return float(np.mean(~(h > 0).any(axis=0)))
    if activation == "sigmoid":
        edge = _SATURATION["sigmoid"]
        return float(np.mean((h < edge) | (h > 1 - edge)))
    return float(np.mean(np.abs(h) > _SATURATION["tanh"]))


def weight_stats(w: np.ndarray, before: np.ndarray) -> dict[str, float]:
    """Mean, std, Frobenius norm, max |w| and update ratio |w - before| / |before|."""
    norm = float(np.linalg.norm(w))
    before_norm = float(np.linalg.norm(before))
    update = float(np.linalg.norm(w - before))
    return {
        "w_mean": float(w.mean()),
        "w_std": float(w.std()),
        "w_norm": norm,
        "w_max": float(np.abs(w).max()),
        "update_ratio": update / before_norm if before_norm > 0 else math.nan,
    }


def histogram(w: np.ndarray) -> list[int]:
    """Counts of the weights in HISTOGRAM_EDGES' bins, outliers folded into the end bins."""
    clipped = np.clip(w.ravel(), HISTOGRAM_EDGES[0], HISTOGRAM_EDGES[-1])
    counts, _ = np.histogram(clipped, bins=HISTOGRAM_EDGES)
    return [int(c) for c in counts]
