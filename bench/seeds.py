"""Batched seeds against one seed alone and against K separate processes at once.

For K = 2, 4, 8 seeds: aggregate seed-steps per second of `SeedBatch` (the seeds as one
computation, one process), of one seed alone (`Trainer`), and of K processes each
training one seed at the same time (how sweeps ran before batching; on this 2-core
machine they share 2 cores). Rounds interleave the three so drift on a shared machine
hits all of them; figures are medians over rounds. Also: the bytes of state (weights,
modules, optimiser moments) a seed adds to a batch, and where batching stops paying:
the wide net, whose matrix products already keep a core busy.

Every run uses the engine's defaults (diagnostics every 10 steps, held-out evaluation
each epoch, a weight histogram every 100 steps), as a sweep's runs do.

Usage: python -m bench.seeds [--steps N] [--rounds R] [--seeds 2,4,8] [--cases article digits wide]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import multiprocessing
import os
import statistics
import time
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from bench.engine import ARTICLE, WIDE, wide_data
from synthgrad_core import TrainConfig, Trainer
from synthgrad_core.seeds import SeedBatch

CASES: dict[str, tuple[str, TrainConfig]] = {
    "article": ("article 24-128-64-12 sigmoid, batch 10", ARTICLE),
    "digits": ("digits (the dataset's defaults)", TrainConfig(dataset="digits", epochs=1000)),
    "wide": ("wide 784-1024-1024-10 relu, batch 256, random data", WIDE),
}


def alone(name: str, steps: int, seed: int = 1) -> float:
    """Steps/s of one seed trained by itself."""
    config = CASES[name][1]
    trainer = Trainer(dataclasses.replace(config, seed=seed), _data(name))
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    return steps / (time.perf_counter() - start)


def batched(name: str, steps: int, k: int) -> float:
    """Seed-steps/s of k seeds as one SeedBatch."""
    batch = SeedBatch(CASES[name][1], list(range(1, k + 1)), _data(name))
    start = time.perf_counter()
    for _ in range(steps):
        batch.step()
    return k * steps / (time.perf_counter() - start)


def _timed_alone(args: tuple[str, int, int]) -> tuple[float, float]:
    name, steps, seed = args
    trainer = Trainer(dataclasses.replace(CASES[name][1], seed=seed), _data(name))
    start = time.perf_counter()  # CLOCK_MONOTONIC: comparable across processes
    for _ in range(steps):
        trainer.step()
    return start, time.perf_counter()


def processes(pool: Any, name: str, steps: int, k: int) -> float:
    """Seed-steps/s of k processes, one seed each, training at the same time."""
    jobs = [(name, steps, seed) for seed in range(1, k + 1)]
    spans = pool.map(_timed_alone, jobs, chunksize=1)
    return k * steps / (max(end for _, end in spans) - min(start for start, _ in spans))


def products(name: str, k: int, budget: float = 0.5) -> float:
    """Seconds per step of only a step's matrix products (forward, backward, weight
    gradients) for k stacked seeds: the arithmetic no batching removes."""
    config = CASES[name][1].resolve()
    trainer = Trainer(config, _data(name))
    sizes = [trainer.data.n_inputs, *config.hidden, trainer.data.n_outputs]
    rng = np.random.default_rng(0)
    batch = config.batch_size
    hs = [rng.random((k, batch, n)) for n in sizes]
    ws = [rng.random((k, a, b)) for a, b in itertools.pairwise(sizes)]
    repeats, start = 0, time.perf_counter()
    while repeats < 3 or time.perf_counter() - start < budget:  # about `budget` seconds
        for i, w in enumerate(ws):
            hs[i] @ w  # forward
            hs[i + 1] @ w.mT  # backward (the top layer's is not needed: close enough)
            hs[i].mT @ hs[i + 1]  # weight gradient
        repeats += 1
    return (time.perf_counter() - start) / repeats


def _data(name: str) -> Any:
    """The wide case's random data (the same for every seed, as MNIST would be)."""
    return wide_data() if name == "wide" else None


def state_bytes(name: str, k: int) -> tuple[int, int]:
    """Bytes of trainable state of one seed alone, and per seed in a batch of k."""
    config = CASES[name][1]
    single = Trainer(config, _data(name))._state_arrays()
    batch = SeedBatch(config, list(range(1, k + 1)), _data(name))._state_arrays()
    return sum(a.nbytes for a in single.values()), sum(a.nbytes for a in batch.values()) // k


def measure(name: str, steps: int, rounds: int, seeds: list[int], pool: Any) -> None:
    title = CASES[name][0]
    print(f"\n{title}: {steps} steps per run, {rounds} rounds, interleaved")
    print(
        f"{'seeds':>5} {'alone steps/s':>14} {'batched seed-steps/s':>21} {'x alone':>8} "
        f"{'K processes seed-steps/s':>25} {'x alone':>8} {'batched/processes':>18}"
    )
    alone(name, max(steps // 5, 2))  # warm up: imports, caches, the allocator
    batched(name, max(steps // 5, 2), max(seeds))
    for k in seeds:
        one, together, apart = [], [], []
        for _ in range(rounds):
            one.append(alone(name, steps))
            together.append(batched(name, steps, k))
            apart.append(processes(pool, name, steps, k))
        a, b, p = (statistics.median(v) for v in (one, together, apart))
        batch_ratio = statistics.median(t / o for t, o in zip(together, one, strict=True))
        process_ratio = statistics.median(q / o for q, o in zip(apart, one, strict=True))
        print(
            f"{k:>5} {a:>14,.0f} {b:>21,.0f} {batch_ratio:>8.2f} {p:>25,.0f} "
            f"{process_ratio:>8.2f} {b / p:>18.2f}",
            flush=True,
        )
    alone_step, single = 1 / statistics.median(one), products(name, 1)
    print(
        f"one seed: whole step {alone_step * 1e6:,.0f} us, "
        f"its matrix products {single * 1e6:,.0f} us"
    )
    for k in seeds:
        floor = products(name, k)
        bound = k * alone_step / (alone_step - single + floor)
        print(
            f"  {k} seeds stacked: products {floor * 1e6:,.0f} us ({floor / single:.2f}x); "
            f"batching can reach at most {bound:.2f}x alone (if only the products grew)"
        )
    single, per_seed = state_bytes(name, max(seeds))
    print(f"state per seed: alone {single / 1024:,.0f} KiB, in a batch {per_seed / 1024:,.0f} KiB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000, help="steps per run (wide: /50)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seeds", default="2,4,8", help="batch sizes K")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(
        f"numpy {np.__version__}, OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, "
        f"{os.cpu_count()} cores"
    )
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(max(seeds)) as pool:
        for name in args.cases:
            steps = max(args.steps // 50, 4) if name == "wide" else args.steps
            measure(name, steps, args.rounds, seeds, pool)


if __name__ == "__main__":
    main()
