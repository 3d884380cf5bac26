"""What unlocking buys: sequential backprop and DNI against layer-pipelined DNI.

Part 1, speed: the wide net of bench.engine (784-1024-1024-10 ReLU, batch 256,
random data), the same with a third hidden layer (two stages of two layers
each balance better), and the digits net, diagnostics every 10 steps. Steps/s of
sequential backprop, sequential DNI, pipelined DNI with 1 and 2 workers,
measured in alternating rounds in this one process (the machine is shared:
medians and ratios to sequential DNI of the same round), and the share of the
time each pipelined worker was busy (not waiting for input).

Part 2, learning: digits held-out accuracy of pipelined (2 workers) against
sequential DNI at the same epochs, seeds 1-3 (`synthgrad train` defaults).

Usage: python -m bench.pipeline [--seconds 4] [--rounds 5] [--epochs 50] [--parts speed accuracy]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # parallelism across stages, not in BLAS

import argparse
import dataclasses
import statistics
import time
from collections.abc import Callable

from bench.engine import WIDE, wide_data
from synthgrad_core import TrainConfig, Trainer
from synthgrad_core.data import Dataset
from synthgrad_core.pipeline import PipelinedTrainer

DIGITS = TrainConfig(dataset="digits", epochs=1000)


def variants(base: TrainConfig) -> dict[str, TrainConfig]:
    common = {"diagnostics_every": 10, "histogram_every": 0}
    return {
        "backprop": dataclasses.replace(base, method="backprop", **common),
        "dni": dataclasses.replace(base, method="dni", **common),
        "pipelined 1": dataclasses.replace(
            base, method="dni", execution="pipelined", workers=1, **common
        ),
        "pipelined 2": dataclasses.replace(
            base, method="dni", execution="pipelined", workers=2, **common
        ),
    }


def rate(cfg: TrainConfig, data: Dataset | None, seconds: float) -> tuple[float, list[float]]:
    """Steps per second over `seconds` after a warm-up; each worker's busy share."""
    pipelined = cfg.execution == "pipelined"
    trainer: Trainer = PipelinedTrainer(cfg, data) if pipelined else Trainer(cfg, data)
    for _ in range(5):
        trainer.step()
    start_busy = list(getattr(trainer, "busy", []))
    steps = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        trainer.step()
        steps += 1
    took = time.perf_counter() - started
    busy = [(b - a) / took for a, b in zip(start_busy, getattr(trainer, "busy", []), strict=True)]
    trainer.close()
    return steps / took, busy


def speed(
    name: str, base: TrainConfig, data: Callable[[], Dataset] | None, args: argparse.Namespace
) -> None:
    cases = variants(base)
    dataset = data() if data else None
    rates: dict[str, list[float]] = {k: [] for k in cases}
    ratios: dict[str, list[float]] = {k: [] for k in cases}
    busy: list[list[float]] = []
    stages = ""
    for _ in range(args.rounds):
        row = {}
        for label, cfg in cases.items():
            row[label], shares = rate(cfg, dataset, args.seconds)
            if label == "pipelined 2":
                busy.append(shares)
        for label in cases:
            rates[label].append(row[label])
            ratios[label].append(row[label] / row["dni"])
    probe = PipelinedTrainer(cases["pipelined 2"], dataset)
    stages = ", ".join(f"layers {s.lo + 1}-{s.hi}" for s in probe.stages)
    print(f"\n{name} ({args.rounds} rounds of {args.seconds:g} s; pipelined stages: {stages})")
    print(f"{'':14} {'steps/s (median)':>17} {'/ sequential dni':>17}   rounds")
    for label in cases:
        print(
            f"{label:14} {statistics.median(rates[label]):17.1f} "
            f"{statistics.median(ratios[label]):17.2f}   "
            + " ".join(f"{r:.2f}" for r in ratios[label])
        )
    shares = [statistics.median(b[i] for b in busy) for i in range(len(busy[0]))]
    print("pipelined 2 busy share per worker (median): " + ", ".join(f"{s:.0%}" for s in shares))


def accuracy(args: argparse.Namespace) -> None:
    print(f"\ndigits held-out accuracy after {args.epochs} epochs (dni)")
    gaps = []
    for seed in (1, 2, 3):
        results = {}
        for label, execution in (("sequential", "sequential"), ("pipelined 2", "pipelined")):
            cfg = TrainConfig(
                dataset="digits",
                method="dni",
                epochs=args.epochs,
                seed=seed,
                execution=execution,
                workers=2,
            )
            trainer = PipelinedTrainer(cfg) if execution == "pipelined" else Trainer(cfg)
            while not trainer.done:
                trainer.step()
            trainer.close()
            results[label] = trainer.summary()["test_accuracy"]
        gap = results["pipelined 2"] - results["sequential"]
        gaps.append(gap)
        print(
            f"seed {seed}: sequential {results['sequential']:.4f}, "
            f"pipelined {results['pipelined 2']:.4f} ({100 * gap:+.2f} points)"
        )
    print(f"largest gap: {100 * max(abs(g) for g in gaps):.2f} points (target: within 1.5)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--parts", nargs="+", default=["speed", "accuracy"])
    args = parser.parse_args(argv)
    print(f"pipeline benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores")
    if "speed" in args.parts:
        speed("wide 784-1024-1024-10 relu, batch 256", WIDE, wide_data, args)
        deeper = dataclasses.replace(WIDE, hidden=(1024, 1024, 1024))
        speed("deeper 784-1024-1024-1024-10 relu, batch 256", deeper, wide_data, args)
        speed("digits (synthgrad defaults)", DIGITS, None, args)
    if "accuracy" in args.parts:
        accuracy(args)


if __name__ == "__main__":
    main()
