"""The floor under batched seeds: a bare numpy loop of the DNI step, for one seed and stacked.

`bench.seeds` measures the engine; this measures what any numpy engine of the same
step must at least do, written by hand with nothing else: no records, no timeline, no
bookkeeping, no checks. The loop is the engine's DNI step on the engine's own data and
initial weights (linear synthetic-gradient modules, SGD, the config as the CLI sets it
up), and on diagnosed steps the least the records need: the true gradient (a backward
pass at the pre-update weights), each hidden layer's fidelity sums (s.t, s.s, t.t,
|s - t|^2), saturation, each module's loss, and each layer's weight sum, square sum,
max, min and update norm, turned into Python floats once per step for all seeds.

The same function runs one seed (2-D arrays) and K seeds stacked on a leading axis (one
matmul over the stack, one reduction per figure for every seed): K x (one seed's
steps/s) against (K seeds' steps/s) is the batching ratio of the bare step. No engine
of this step in numpy batches better than its bare loop does, so where that ratio is
below a target the target cannot be met by the engine's Python; and the bare single
step is the floor of one seed's diagnosed step.

Usage: python -m bench.seeds_floor [--steps N] [--rounds R] [--cases addition8 digits]
       [--seeds 4]   (bench.seeds prints these rows below the engine's own)
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

#: bench.seeds' cases the bare loop covers (dni, linear modules, SGD: as the CLI sets them up)
CASES = {
    "addition8": TrainConfig(dataset="addition", bits=8, method="dni", epochs=40),
    "addition12": TrainConfig(dataset="addition", bits=12, method="dni", epochs=40),
    "digits": TrainConfig(dataset="digits", method="dni", epochs=1000),
}
#: The issue's targets at diagnostics every step: K=4 batched over one seed alone.
TARGETS = {"addition8": 2.0, "addition12": 2.0, "digits": 1.6}


def _sigmoid(a: np.ndarray) -> np.ndarray:
    e = np.exp(-a)
    e += 1.0
    return np.reciprocal(e, out=e)


class Bare:
    """The bare DNI step of `seeds` (one seed: 2-D arrays; several: stacked), from the
    engine's own data, initial weights and data order (each seed its own, as SeedBook
    draws it), so its weights after n steps are the engine's (tests/test_bench_floor.py)."""

    def __init__(self, name: str, seeds: list[int]) -> None:
        trainers = [Trainer(dataclasses.replace(CASES[name], seed=s)) for s in seeds]
        self.stacked = stacked = len(seeds) > 1

        def stack(arrays: list[np.ndarray], row: bool = False) -> np.ndarray:
            if not stacked:
                return arrays[0].copy()
            return np.array([a[None] for a in arrays] if row else arrays)

        first = trainers[0]
        depth = first.net.depth
        self.w = [stack([t.net.weights[k] for t in trainers]) for k in range(depth)]
        self.b = [stack([t.net.biases[k] for t in trainers], row=True) for k in range(depth)]
        dense = [[m.layers[0] for m in t.rule.modules] for t in trainers]  # type: ignore[attr-defined]
        self.m = [stack([d[j].weight.value for d in dense]) for j in range(depth - 1)]
        self.c = [stack([d[j].bias.value for d in dense], row=True) for j in range(depth - 1)]
        self.x = stack([t.data.x_train for t in trainers])
        self.y = stack([t.data.y_train for t in trainers])
        self.orders = [np.random.default_rng([s, 2]) for s in seeds]
        self.rows = len(first.data.x_train)
        cfg = first.config
        self.relu, self.bits = cfg.activation == "relu", first.data.bit_targets
        self.lr, self.mlr, self.batch = cfg.learning_rate, cfg.sg_learning_rate, cfg.batch_size
        self.lead = (len(seeds),) if stacked else (1,)
        self.step_count = 0
        self._order = np.empty((len(seeds), self.rows), dtype=np.int64)
        self._buffers = [np.empty_like(a) for a in self.w]
        self._module_buffers = [np.empty_like(a) for a in self.m]

    def _batch(self) -> tuple[np.ndarray, np.ndarray]:
        per_epoch = -(-self.rows // self.batch)
        position = self.step_count % per_epoch
        if position == 0:
            for s, rng in enumerate(self.orders):
                self._order[s] = rng.permutation(self.rows)
        self.step_count += 1
        rows = self._order[:, position * self.batch : (position + 1) * self.batch]
        if not self.stacked:
            return self.x[rows[0]], self.y[rows[0]]
        seeds = np.arange(len(rows))[:, None]
        return self.x[seeds, rows], self.y[seeds, rows]

    def run(self, steps: int, diagnose: bool) -> None:
        w, b, m, c, lead, relu = self.w, self.b, self.m, self.c, self.lead, self.relu
        depth = len(w)
        with np.errstate(all="ignore"):
            for _ in range(steps):
                x, y = self._batch()
                n = x.shape[-2]
                hs = [x]
                for k in range(depth - 1):
                    a = hs[-1] @ w[k]
                    a += b[k]
                    hs.append(np.maximum(a, 0.0, out=a) if relu else _sigmoid(a))
                a = hs[-1] @ w[-1]
                a += b[-1]
                if self.bits:
                    p = _sigmoid(a)
                    loss = np.add.reduce(np.logaddexp(0.0, a) - y * a, axis=(-2, -1)) / n
                    acc = np.add.reduce((a > 0) == (y > 0.5), axis=(-2, -1))
                else:
                    z = a - np.maximum.reduce(a, axis=-1, keepdims=True)
                    e = np.exp(z)
                    p = e / np.add.reduce(e, axis=-1, keepdims=True)
                    per_example = np.log(np.add.reduce(e, axis=-1)) - np.add.reduce(z * y, axis=-1)
                    loss = np.add.reduce(per_example, axis=-1)
                    acc = np.add.reduce(a.argmax(axis=-1) == y.argmax(axis=-1), axis=-1)
                top = p - y
                deltas: list[np.ndarray] = [top] * depth
                predictions, targets = {}, {}
                for k in range(depth - 1, 0, -1):
                    h = hs[k]
                    g = h @ m[k - 1]
                    g += c[k - 1]
                    predictions[k - 1] = g
                    targets[k - 1] = deltas[k] @ w[k].swapaxes(-1, -2)
                    deltas[k - 1] = g * ((h > 0) if relu else h * (1 - h))
                figures: list[np.ndarray] = [np.reshape(loss, lead), np.reshape(acc, lead)]
                if diagnose:  # the true gradient at the pre-update weights, and its figures
                    true = top
                    for k in range(depth - 1, 0, -1):
                        # the top hidden layer's true gradient is its module's target
                        t = targets[k - 1] if k == depth - 1 else true @ w[k].swapaxes(-1, -2)
                        s = predictions[k - 1].reshape(*lead, -1)
                        tt = t.reshape(*lead, -1)
                        diff = s - tt
                        figures += [np.vecdot(s, tt), np.vecdot(s, s), np.vecdot(tt, tt)]
                        figures.append(np.vecdot(diff, diff))
                        h = hs[k]
                        true = t * ((h > 0) if relu else h * (1 - h))
                        sat = (h > 0).any(axis=-2) if relu else np.abs(h - 0.5) > 0.48
                        figures.append(np.add.reduce(sat.reshape(*lead, -1), axis=-1))
                changes = []
                for k in range(depth):
                    scaled = deltas[k] * (self.lr / n)
                    change = np.matmul(hs[k].swapaxes(-1, -2), scaled, out=self._buffers[k])
                    w[k] -= change
                    b[k] -= np.add.reduce(scaled, axis=-2, keepdims=self.stacked)
                    changes.append(change)
                for j in targets:
                    err = predictions[j] - targets[j]
                    scaled = err * (self.mlr / n)
                    inputs = hs[j + 1].swapaxes(-1, -2)
                    m[j] -= np.matmul(inputs, scaled, out=self._module_buffers[j])
                    c[j] -= np.add.reduce(scaled, axis=-2, keepdims=self.stacked)
                    if diagnose:
                        figures.append(np.add.reduce((err * err).reshape(*lead, -1), axis=-1))
                if diagnose:
                    for k in range(depth):
                        flat = w[k].reshape(*lead, -1)
                        moved = changes[k].reshape(*lead, -1)
                        figures += [np.add.reduce(flat, axis=-1), np.vecdot(flat, flat)]
                        figures += [
                            np.maximum.reduce(flat, axis=-1),
                            np.minimum.reduce(flat, axis=-1),
                        ]
                        figures.append(np.vecdot(moved, moved))
                np.array(figures).T.tolist()  # the figures as Python floats, a row per seed


def bare(name: str, seeds: list[int], diagnose: bool, steps: int) -> float:
    """Seed-steps/s of the bare DNI step: one seed with 2-D arrays, several stacked."""
    loop = Bare(name, seeds)
    loop.run(3, diagnose)  # warm: the first steps allocate
    start = time.perf_counter()
    loop.run(steps, diagnose)
    return len(seeds) * steps / (time.perf_counter() - start)


def floor(name: str, k: int, steps: int, rounds: int, alone: float | None = None) -> None:
    """Print the bare loop's rows for `name` (diagnosed every step, and never), and at
    diagnostics every step whether the target is within the bare loop's reach: the
    target's seed-steps/s is `TARGETS[name]` x one seed alone (the engine's `alone`, when
    given, else the bare loop's own one seed)."""
    group = list(range(1, k + 1))
    for diagnose in (True, False):
        one, many = [], []
        for _ in range(rounds):
            one.append(bare(name, [1], diagnose, steps))
            many.append(bare(name, group, diagnose, steps))
        ratio = statistics.median(b / a for a, b in zip(one, many, strict=True))
        a, b = statistics.median(one), statistics.median(many)
        cadence = "every step" if diagnose else "never"
        print(
            f"{'bare loop, ' + cadence:>22} {k:>3} {a:>9,.0f} {b:>11,.0f} {ratio:>9.2f}", flush=True
        )
        if diagnose and name in TARGETS and k == 4:
            base = alone if alone is not None else a
            need = TARGETS[name] * base
            verdict = "within reach" if b >= need else "beyond even the bare loop"
            print(
                f"{'':>22} target {TARGETS[name]}x one seed ({base:,.0f}/s) = {need:,.0f} "
                f"seed-steps/s; the bare stacked loop does {b:,.0f}: {verdict}",
                flush=True,
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=sorted(CASES))
    args = parser.parse_args(argv)
    print(
        f"numpy {np.__version__}, OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, "
        f"load {os.getloadavg()[0]:.1f}; {args.steps} steps, {args.rounds} rounds, "
        f"seed-steps/s (medians), ratios the median of each round's"
    )
    for name in args.cases:
        print(f"\n{name}: {CASES[name].dataset}, dni, as the CLI sets it up")
        print(f"{'':>22} {'K':>3} {'alone/s':>9} {'batched/s':>11} {'x alone':>9}")
        floor(name, args.seeds, args.steps, args.rounds)


if __name__ == "__main__":
    main()
