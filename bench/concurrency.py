"""Total training throughput of 1, 2 and 4 concurrent runs: thread executor vs process executor.

Each run is the article's net (24-128-64-12 sigmoid, 12-bit addition, 1000
examples, batch 10, the server's defaults otherwise: diagnostics every step),
trained through the run manager, so the store writer and the record flushes are
included. After `--warmup` seconds, steps are counted over `--seconds`.

Usage: python -m bench.concurrency [--seconds 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from app.runs.manager import RunManager
from app.runs.status import RunStatus
from app.settings import Settings
from support.waiting import wait_until

ARTICLE = {
    "dataset": "addition",
    "bits": 12,
    "examples": 1000,
    "hidden": [128, 64],
    "activation": "sigmoid",
    "batch_size": 10,
    "epochs": 10_000,
}


def throughput(executor: str, runs: int, warmup: float, seconds: float) -> float:
    """Total steps/s of `runs` runs training at once."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(db=str(Path(tmp) / "c.db"), executor=executor, max_concurrent_runs=runs)
        manager = RunManager(settings).start()
        try:
            created = [manager.create(ARTICLE)[0] for _ in range(runs)]
            wait_until(
                lambda: all(r.status is RunStatus.RUNNING for r in created),
                60,
                "the runs to start",
                every=0.01,
            )
            time.sleep(warmup)
            start_steps, start = sum(r.step for r in created), time.monotonic()
            time.sleep(seconds)
            steps = sum(r.step for r in created) - start_steps
            return steps / (time.monotonic() - start)
        finally:
            manager.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print(
        f"concurrent runs of the article's net, {os.cpu_count()} cores, "
        f"median of {args.rounds} rounds of {args.seconds:.0f} s"
    )
    print(f"{'executor':<9} {'runs':>4} {'total steps/s':>14} {'vs 1 run':>9} {'vs thread':>10}")
    results: dict[tuple[str, int], float] = {}
    for runs in (1, 2, 4):
        for executor in ("thread", "process"):  # interleaved: drift hits both
            rates = [
                throughput(executor, runs, args.warmup, args.seconds) for _ in range(args.rounds)
            ]
            results[executor, runs] = statistics.median(rates)
    for executor in ("thread", "process"):
        for runs in (1, 2, 4):
            rate = results[executor, runs]
            print(
                f"{executor:<9} {runs:>4} {rate:>14,.0f} {rate / results[executor, 1]:>9.2f} "
                f"{rate / results['thread', runs]:>10.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
