"""Batched seeds against one seed alone and against K separate processes at once.

For each case and diagnostics cadence: aggregate seed-steps per second of `SeedBatch`
(K seeds as one computation, one process), of one seed alone (`Trainer`), and of K
processes each training one seed at the same time (how an unbatched sweep runs; on
this 2-core machine they share 2 cores). Rounds interleave the three so drift on a
shared machine hits all of them; figures are medians over rounds, ratios the median of
each round's ratio.

Cases are configs as the CLI sets them up (`synthgrad train --dataset addition --bits 8
--method dni --epochs 40`: every other field its default, so diagnostics every step, a
held-out evaluation each epoch, a weight histogram every 100 steps), with the
diagnostics cadence set per row: every step (the product's default: the CLI, the form
and sweeps), every 10 steps, and never. Also the state a seed adds to a batch, what the
estimate of `synthgrad_core.seeds.batch_speedup` says beside what was measured; below
each dni case, the bare numpy loop of the same step (`bench.seeds_floor`: the floor no
numpy engine of this step gets under) and whether the issue's target is within its
reach; and with `--profile`, where a diagnosed batched step spends its time (cProfile,
by part).

With `--sweep`, instead: the wall time of a whole `synthgrad sweep` (4 rules x 4 seeds on
digits at the defaults) with the sweep's own choice, all batched and none batched, and
with `--tree DIR` also an older checkout's sweep batched (its default then) and not;
rounds alternate the order.

Usage: python -m bench.seeds [--steps N] [--rounds R] [--seeds 4] [--cases addition8 ...]
       [--every 1,10,0] [--no-processes] [--no-floor] [--clock wall|cpu] [--profile]
       python -m bench.seeds --sweep [--rounds R] [--tree DIR]
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import multiprocessing
import os
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from bench.engine import WIDE, wide_data
from bench.seeds_floor import CASES as FLOOR_CASES
from bench.seeds_floor import floor
from synthgrad_core import TrainConfig, Trainer
from synthgrad_core.seeds import SeedBatch, batch_speedup

CASES: dict[str, tuple[str, TrainConfig]] = {
    "addition8": (
        "8-bit addition, dni, as the CLI sets it up (16-128-64-8 sigmoid, batch 10)",
        TrainConfig(dataset="addition", bits=8, method="dni", epochs=40),
    ),
    "addition12": (
        "12-bit addition, dni (24-128-64-12 sigmoid, batch 10)",
        TrainConfig(dataset="addition", bits=12, method="dni", epochs=40),
    ),
    "digits": (
        "digits, dni, the dataset's defaults (64-128-64-10 relu, batch 32)",
        TrainConfig(dataset="digits", method="dni", epochs=1000),
    ),
    "wide": ("wide 784-1024-1024-10 relu, batch 256, random data, backprop", WIDE),
}

CADENCE = {1: "every step (default)", 10: "every 10 steps", 0: "never"}


def config(name: str, every: int) -> TrainConfig:
    return dataclasses.replace(CASES[name][1], diagnostics_every=every)


def _data(name: str) -> Any:
    """The wide case's random data (the same for every seed, as MNIST would be)."""
    return wide_data() if name == "wide" else None


#: The clock of alone and batched runs: wall time, or with --clock cpu this process's CPU
#: time (on a loaded machine, the time the steps computed rather than waited for a core).
CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCK["wall"]


def _timed(trainer: Trainer | SeedBatch, steps: int) -> float:
    for _ in range(3):  # warm: the first steps allocate
        trainer.step()
    start = clock()
    for _ in range(steps):
        trainer.step()
    return clock() - start


def alone(name: str, every: int, steps: int, seed: int = 1) -> float:
    """Steps/s of one seed trained by itself."""
    cfg = dataclasses.replace(config(name, every), seed=seed)
    return steps / _timed(Trainer(cfg, _data(name)), steps)


def batched(name: str, every: int, steps: int, k: int) -> float:
    """Seed-steps/s of k seeds as one SeedBatch."""
    batch = SeedBatch(config(name, every), list(range(1, k + 1)), _data(name))
    return k * steps / _timed(batch, steps)


def _timed_alone(args: tuple[str, int, int, int]) -> tuple[float, float]:
    name, every, steps, seed = args
    trainer = Trainer(dataclasses.replace(config(name, every), seed=seed), _data(name))
    for _ in range(3):
        trainer.step()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    return start, time.perf_counter()


def processes(pool: Any, name: str, every: int, steps: int, k: int) -> float:
    """Seed-steps/s of k processes, one seed each, training at the same time."""
    jobs = [(name, every, steps, seed) for seed in range(1, k + 1)]
    spans = pool.map(_timed_alone, jobs, chunksize=1)
    return k * steps / (max(end for _, end in spans) - min(start for start, _ in spans))


def state_bytes(name: str, k: int) -> tuple[int, int]:
    """Bytes of trainable state of one seed alone, and per seed in a batch of k."""
    cfg = CASES[name][1]
    single = Trainer(cfg, _data(name))._state_arrays()
    batch = SeedBatch(cfg, list(range(1, k + 1)), _data(name))._state_arrays()
    return sum(a.nbytes for a in single.values()), sum(a.nbytes for a in batch.values()) // k


def measure(name: str, every: int, steps: int, rounds: int, k: int, pool: Any) -> float:
    """Print a row of the table; return one seed's steps/s."""
    one, together, apart = [], [], []
    for _ in range(rounds):
        one.append(alone(name, every, steps))
        together.append(batched(name, every, steps, k))
        if pool is not None:
            apart.append(processes(pool, name, every, steps, k))
    a, b = statistics.median(one), statistics.median(together)
    ratio = statistics.median(t / o for t, o in zip(together, one, strict=True))
    row = f"{CADENCE.get(every, str(every)):>22} {k:>3} {a:>9,.0f} {b:>11,.0f} {ratio:>9.2f}"
    if apart:
        p = statistics.median(apart)
        p_ratio = statistics.median(q / o for q, o in zip(apart, one, strict=True))
        row += f" {p:>13,.0f} {p_ratio:>9.2f}"
    estimate = batch_speedup(config(name, every).resolve(), k)
    print(f"{row} {estimate:>9.2f}", flush=True)
    return a


#: The parts of a batched step, by the functions that do them (cProfile's cumulative time).
PARTS = {
    "batches (each seed's rows, one gather)": ["_next_batches"],
    "forward": ["forward"],
    "loss, accuracy, first fields": ["_first_fields", "bce_loss", "cross_entropy_loss"],
    "true gradient (diagnosed)": ["true_backward"],
    "rule's backward (synthetic gradients)": ["backward"],
    "update (optimiser)": ["_apply"],
    "modules learn": ["learn"],
    "timeline": ["_timeline"],
    "figures (one table, every seed)": ["values", "before"],
    "records into each seed's dict": ["_fill_figures"],
    "last-epoch fidelity tally, per seed": ["add"],
    "end of step per seed (watch, histograms, evaluation)": ["periodic", "check_end"],
}


def profile(name: str, k: int, steps: int) -> None:
    """Where a diagnosed batched step spends its time: cProfile's cumulative time of each
    part's functions, per step (cProfile's own overhead inflates the many small calls)."""
    batch = SeedBatch(config(name, 1), list(range(1, k + 1)), _data(name))
    for _ in range(5):
        batch.step()
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for _ in range(steps):
        batch.step()
    profiler.disable()
    total = time.perf_counter() - start
    stats: Any = pstats.Stats(profiler).stats  # {(file, line, function): (cc, nc, tt, ct, callers)}
    cumulative: dict[str, float] = {}
    for (path, _line, function), (_cc, _nc, _tt, ct, _callers) in stats.items():
        if "synthgrad_core" in path:
            cumulative[function] = cumulative.get(function, 0.0) + ct
    print(f"\n{CASES[name][0]}, {k} seeds, diagnostics every step: {steps} steps under cProfile")
    print(f"{'part':<55} {'us/step':>8} {'share':>6}")
    for part, functions in PARTS.items():
        seconds = sum(cumulative.get(f, 0.0) for f in functions)
        print(f"{part:<55} {seconds / steps * 1e6:>8,.0f} {seconds / total:>6.0%}")
    print(f"{'whole step':<55} {total / steps * 1e6:>8,.0f} {1:>6.0%}")


SWEEP = ["sweep", "--dataset", "digits", "--method", "backprop,dni,cdni,feedback_alignment"]
SWEEP += ["--seed", "1,2,3,4", "--json"]


def sweeps(rounds: int, tree: str | None) -> None:
    """Wall time of the same sweep trained each way, rounds alternating the order."""
    here = str(Path(__file__).resolve().parent.parent)
    modes = {
        "this tree, auto (the default)": (here, []),
        "this tree, --batch-seeds always": (here, ["--batch-seeds", "always"]),
        "this tree, --batch-seeds never": (here, ["--batch-seeds", "never"]),
    }
    if tree:
        modes[f"{tree}, its default"] = (tree, [])
        modes[f"{tree}, --no-batch-seeds"] = (tree, ["--no-batch-seeds"])
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    loads = []
    for i in range(rounds):
        for mode in list(modes)[:: 1 if i % 2 == 0 else -1]:
            where, extra = modes[mode]
            env = {**os.environ, "PYTHONPATH": where}
            env.pop("OPENBLAS_NUM_THREADS", None)  # as a user runs it
            loads.append(os.getloadavg()[0])
            start = time.perf_counter()
            command = [sys.executable, "-m", "synthgrad_core.cli", *SWEEP, *extra]
            subprocess.run(command, cwd=where, env=env, capture_output=True, check=True)
            times[mode].append(time.perf_counter() - start)
    base = times["this tree, --batch-seeds never"]
    print(f"{' '.join(SWEEP)}: {rounds} rounds, load {min(loads):.1f}-{max(loads):.1f}")
    for mode, spans in times.items():
        ratio = statistics.median(b / t for b, t in zip(base, spans, strict=True))
        print(
            f"{mode:<45} median {statistics.median(spans):6.1f} s "
            f"({min(spans):.1f}-{max(spans):.1f}), x never batched {ratio:.2f}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=400, help="steps per run (wide: /50)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seeds", default="4", help="batch sizes K, comma-separated")
    parser.add_argument("--every", default="1,10,0", help="diagnostics cadences")
    parser.add_argument(
        "--cases", nargs="+", choices=sorted(CASES), default=["addition8", "addition12", "digits"]
    )
    parser.add_argument("--no-processes", dest="processes", action="store_false")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCK),
        default="wall",
        help="cpu: this process's CPU time for alone and batched (a loaded machine; "
        "K processes are then not measured: their gain is wall time)",
    )
    parser.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="skip the bare loop's rows (bench.seeds_floor: the floor under the engine)",
    )
    parser.add_argument("--profile", action="store_true", help="only the profile table")
    parser.add_argument("--sweep", action="store_true", help="only the sweep's wall times")
    parser.add_argument("--tree", default=None, help="with --sweep: an older checkout too")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    global clock
    clock = CLOCK[args.clock]
    if args.clock == "cpu":
        args.processes = False
    print(
        f"numpy {np.__version__}, OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, {args.clock} clock"
    )
    if args.sweep:
        sweeps(args.rounds, args.tree)
        return
    if args.profile:
        for name in args.cases:
            for k in seeds:
                profile(name, k, args.steps)
        return
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(max(seeds)) as pool:
        for name in args.cases:
            steps = max(args.steps // 50, 4) if name == "wide" else args.steps
            print(f"\n{CASES[name][0]}: {steps} steps per run, {args.rounds} rounds")
            heading = (
                f"{'diagnostics':>22} {'K':>3} {'alone/s':>9} {'batched/s':>11} {'x alone':>9}"
            )
            if args.processes:
                heading += f" {'K procs/s':>13} {'x alone':>9}"
            print(f"{heading} {'estimate':>9}")
            alone_diagnosed: dict[int, float] = {}
            for every in (int(e) for e in args.every.split(",")):
                for k in seeds:
                    rate = measure(
                        name, every, steps, args.rounds, k, pool if args.processes else None
                    )
                    if every == 1:
                        alone_diagnosed[k] = rate
            if args.floor and name in FLOOR_CASES:
                for k in seeds:  # what no numpy engine of this step can beat (bench.seeds_floor)
                    floor(name, k, steps, args.rounds, alone_diagnosed.get(k))
            single, per_seed = state_bytes(name, max(seeds))
            print(
                f"state per seed: alone {single / 1024:,.0f} KiB, "
                f"batched {per_seed / 1024:,.0f} KiB"
            )


if __name__ == "__main__":
    main()
