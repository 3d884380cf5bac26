"""Engine speed against a bare numpy loop of the same network, data and rule.

The network of the issue: 24-128-64-12 sigmoid, 12-bit addition, 1000 examples,
batch 10, SGD. Both sides compute the batch loss and accuracy every step (what
the engine reports); the engine adds its records and, every `diagnostics_every`
steps, the true-gradient pass and weight statistics.

Usage: python -m bench.engine [--steps N] [--rounds R]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from synthgrad_core import TrainConfig, Trainer

CONFIG = TrainConfig(
    dataset="addition",
    bits=12,
    examples=1000,
    hidden=(128, 64),
    activation="sigmoid",
    batch_size=10,
    epochs=1000,
)


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def bare_loop(method: str, steps: int) -> float:
    """Steps/s of a hand-written numpy loop: backprop or DNI with linear modules."""
    cfg = CONFIG.resolve()
    trainer = Trainer(cfg)  # only for identical data and initial weights
    x_all, y_all = trainer.data.x_train, trainer.data.y_train
    w = [p.copy() for p in trainer.net.weights]
    b = [p.copy() for p in trainer.net.biases]
    m = [np.zeros((h, h)) for h in cfg.hidden or ()]
    c = [np.zeros(h) for h in cfg.hidden or ()]
    lr, mlr, bs = cfg.learning_rate or 0.0, cfg.sg_learning_rate or 0.0, cfg.batch_size or 1
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x_all))
    per_epoch = int(np.ceil(len(x_all) / bs))
    start = time.perf_counter()
    for step in range(steps):
        pos = step % per_epoch
        if pos == 0:
            order = rng.permutation(len(x_all))
        idx = order[pos * bs : (pos + 1) * bs]
        x, y = x_all[idx], y_all[idx]
        h1 = sigmoid(x @ w[0] + b[0])
        h2 = sigmoid(h1 @ w[1] + b[1])
        a3 = h2 @ w[2] + b[2]
        p = sigmoid(a3)
        _loss = float(np.sum(np.logaddexp(0.0, a3) - y * a3) / len(x))
        _acc = float(((a3 > 0) == (y > 0.5)).mean())
        d3 = p - y
        n = len(x)
        if method == "backprop":
            g2 = d3 @ w[2].T
            d2 = g2 * h2 * (1 - h2)
            g1 = d2 @ w[1].T
            d1 = g1 * h1 * (1 - h1)
        else:
            s1 = h1 @ m[0] + c[0]
            s2 = h2 @ m[1] + c[1]
            d1 = s1 * h1 * (1 - h1)
            d2 = s2 * h2 * (1 - h2)
            t1 = d2 @ w[1].T
            t2 = d3 @ w[2].T
        for k, (h, d) in enumerate(((x, d1), (h1, d2), (h2, d3))):
            w[k] -= lr * (h.T @ d / n)
            b[k] -= lr * (d.sum(axis=0) / n)
        if method == "dni":
            for k, (h, s, t) in enumerate(((h1, s1, t1), (h2, s2, t2))):
                e = s - t
                m[k] -= mlr * (h.T @ e / n)
                c[k] -= mlr * (e.sum(axis=0) / n)
    return steps / (time.perf_counter() - start)


def engine_loop(method: str, steps: int, diagnostics_every: int) -> float:
    trainer = Trainer(
        dataclasses.replace(CONFIG, method=method, diagnostics_every=diagnostics_every)
    )
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(
        f"engine vs bare numpy loop: 24-128-64-12 sigmoid, batch 10, {args.steps} steps, "
        f"median of {args.rounds} interleaved rounds"
    )
    print(
        f"{'rule':<10} {'diagnostics':>12} {'bare steps/s':>13} {'engine steps/s':>15} {'ratio':>6}"
    )
    for method in ("backprop", "dni"):
        for every in (1, 10):
            bare, eng = [], []
            for _ in range(args.rounds):  # interleaved, so drift on a shared machine hits both
                bare.append(bare_loop(method, args.steps))
                eng.append(engine_loop(method, args.steps, every))
            b, e = statistics.median(bare), statistics.median(eng)
            print(
                f"{method:<10} {'every ' + str(every):>12} {b:>13,.0f} {e:>15,.0f} {e / b:>6.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
