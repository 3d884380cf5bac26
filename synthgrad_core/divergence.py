"""Why a run diverged, in words: the step, what went non-finite first, what ran away, what to try.

A `Watch` keeps the last finite diagnosed figures of a run (its loss, each
layer's update ratio and weight norm, each module's loss) and the same figures
from some steps before, so that when a step goes non-finite `explain` can say
which figure grew fastest on the way there (the update ratio or module loss that
ran away) and, from the run's own config, what to change: a lower learning rate
or module learning rate, Adam, batch normalisation, one worker.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .config import ResolvedConfig

#: Record keys (stems) a Watch keeps: what a diagnosed step says about each part.
WATCHED = ("loss", "update_ratio_l", "module_loss_h", "w_norm_l")
#: Steps between the two snapshots a Watch compares (the trend before a divergence).
TREND_STEPS = 50


def _watched(record: dict[str, Any]) -> dict[str, float]:
    return {
        k: v
        for k, v in record.items()
        if k.startswith(WATCHED) and isinstance(v, float | int) and not isinstance(v, bool)
    }


class Watch:
    """The last diagnosed step's record, and one from about TREND_STEPS before.

    `seen` runs on every diagnosed step, so it only keeps references; the figures
    are read out (finite ones only) when a run diverges.
    """

    def __init__(self) -> None:
        self._last: dict[str, Any] | None = None
        self._earlier: dict[str, Any] | None = None
        self._pending: dict[str, Any] | None = None

    def seen(self, record: dict[str, Any]) -> None:
        """A finite step's record (diagnosed steps carry the per-layer figures)."""
        if "w_norm_l1" not in record:
            return
        if self._pending is None or record["step"] - self._pending["step"] >= TREND_STEPS:
            self._earlier, self._pending = self._pending, record
        self._last = record

    @property
    def last(self) -> dict[str, float]:
        """The watched figures of the last diagnosed step (finite ones), with its step."""
        return _finite_figures(self._last)

    @property
    def earlier(self) -> dict[str, float]:
        return _finite_figures(self._earlier)


def _finite_figures(record: dict[str, Any] | None) -> dict[str, float]:
    if record is None:
        return {}
    figures = {k: v for k, v in _watched(record).items() if math.isfinite(v)}
    return figures | {"step": record["step"]}


def _ran_away(watch: Watch) -> tuple[str, float] | None:
    """The update ratio, module loss or loss that grew most between the two snapshots."""
    before, after = watch.earlier or watch.last, watch.last
    best: tuple[str, float] | None = None
    for key, value in after.items():
        if not key.startswith(("update_ratio_l", "module_loss_h", "loss")) or key not in before:
            continue
        growth = value / before[key] if before[key] > 0 else math.inf if value > 0 else 1.0
        if best is None or growth > best[1]:
            best = (key, growth)
    return best


def describe_figure(key: str) -> str:
    """A record key as words: 'the loss', "layer 2's update ratio", "hidden layer 1's module"."""
    if key.startswith("update_ratio_l"):
        return f"layer {key[len('update_ratio_l') :]}'s update ratio"
    if key.startswith("module_loss_h"):
        return f"the loss of hidden layer {key[len('module_loss_h') :]}'s synthetic-gradient module"
    if key.startswith("w_norm_l"):
        return f"layer {key[len('w_norm_l') :]}'s weights"
    return "the loss"


def non_finite_parts(
    record: dict[str, Any], weights: list[np.ndarray], modules: list[list[np.ndarray]]
) -> list[str]:
    """What is non-finite at the diverging step, in the order a step computes it: the
    loss, each module (its loss or parameters), each layer's weights."""
    parts = []
    loss = record.get("loss")
    if loss is None or not math.isfinite(loss):
        parts.append("loss")
    for k, params in enumerate(modules):
        figure = record.get(f"module_loss_h{k + 1}", 0.0)
        bad_figure = figure is None or not math.isfinite(figure)
        if bad_figure or not all(np.isfinite(p).all() for p in params):
            parts.append(f"module_loss_h{k + 1}")
    for k, w in enumerate(weights):
        if not np.isfinite(w).all():
            parts.append(f"w_norm_l{k + 1}")
    return parts


def advice(config: ResolvedConfig, ran_away: str | None) -> list[str]:
    """What to try, from the run's own config (most likely to help first)."""
    tips = []
    modules = config.method in ("dni", "cdni")
    half_lr = f"learning_rate {config.learning_rate / 2:g} (half of {config.learning_rate:g})"
    half_sg = (
        f"sg_learning_rate {config.sg_learning_rate / 2:g} (half of {config.sg_learning_rate:g})"
    )
    if modules and ran_away is not None and ran_away.startswith("module_loss_h"):
        tips += [f"a lower module learning rate: {half_sg}", f"a lower learning rate: {half_lr}"]
    else:
        tips.append(f"a lower learning rate: {half_lr}")
        if modules:
            tips.append(f"a lower module learning rate: {half_sg}")
    if config.optimizer != "adam":
        tips.append("optimizer adam (with a learning rate near 0.001)")
    if config.batch_norm == "off" and config.batch_size > 1:
        tips.append("batch_norm on")
    if config.execution == "pipelined" and modules and config.workers > 1:
        tips.append(
            "workers 1: with more, each stage's top module learns from its targets "
            f"{config.workers - 1} batch(es) late"
        )
    return tips


def explain(
    record: dict[str, Any],
    watch: Watch,
    config: ResolvedConfig,
    weights: list[np.ndarray],
    modules: list[list[np.ndarray]],
) -> dict[str, Any]:
    """A diverged run's explanation (JSON-ready): step, first, non_finite, last_finite
    (the figures of the last finite diagnosed step), ran_away, advice, and a sentence."""
    parts = non_finite_parts(record, weights, modules)
    first = parts[0] if parts else "loss"
    grown = _ran_away(watch)
    out: dict[str, Any] = {
        "step": record["step"],
        "first": first,
        "non_finite": parts,
        "last_finite": dict(watch.last),
        "ran_away": None,
        "advice": [],
    }
    sentence = f"At step {record['step']} {describe_figure(first)} became non-finite"
    others = [describe_figure(p) for p in parts[1:]]
    if others:
        sentence += f" (and {', '.join(others)})"
    sentence += "."
    if grown is not None and watch.last:
        key, growth = grown
        before = watch.earlier.get(key, watch.last[key])
        out["ran_away"] = {
            "figure": key,
            "from": before,
            "to": watch.last[key],
            "from_step": watch.earlier.get("step", watch.last["step"]),
            "to_step": watch.last["step"],
        }
        if growth > 1.0:
            sentence += (
                f" Before it, {describe_figure(key)} ran away: {before:.3g} at step "
                f"{out['ran_away']['from_step']}, {watch.last[key]:.3g} at step "
                f"{watch.last['step']}, the last finite values."
            )
    out["advice"] = advice(config, out["ran_away"] and out["ran_away"]["figure"])
    out["text"] = sentence + " Try " + "; or ".join(out["advice"]) + "."
    return out
