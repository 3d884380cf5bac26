"""The reference sweep through the server's run manager: process executor against local Ray.

The 24 runs of docs/results.md (4 rules x 2 tasks x 3 seeds, at the reference
epochs: addition 300, digits 50), created as one sweep-sized batch and trained
with as many at once as the machine has cores, first through the process
executor, then through a local Ray instance started by the Ray executor (order
alternates over rounds; the machine is shared: medians and the ratio Ray/process
of the same round). Reported per executor:

- total wall time, from creating the 24 runs to the last one ending;
- peak resident memory of this process and all its descendants (the fork server
  and its training processes; Ray's raylet, GCS, and worker processes), summed;
- one run alone (addition, dni, 60 epochs), steps/s through each executor, three
  alternations: what an executor costs without contention;
- per-run overhead, start to first record: `open` plus the first slice, timed
  for 6 runs one after another (the process executor starts a process for each;
  the Ray executor starts an actor for the first and reuses it for the next).

Usage: python -m bench.sweep [--rounds 1] [--quick] [--parts sweep alone first]
(--quick: 2 epochs per run, a smoke test)
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from app.execution import make_executor
from app.runs.manager import RunManager
from app.settings import Settings
from synthgrad_core import TrainConfig

TASKS = {"addition": 300, "digits": 50}
METHODS = ("backprop", "dni", "cdni", "feedback_alignment")
SEEDS = (1, 2, 3)
ADMIN = "bench-admin-token"


def reference(quick: bool) -> list[dict[str, Any]]:
    return [
        {"dataset": d, "method": m, "seed": s, "epochs": 2 if quick else epochs}
        for d, epochs in TASKS.items()
        for m in METHODS
        for s in SEEDS
    ]


def tree_rss(root: int) -> int:
    """Resident bytes of `root` and every descendant (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            pages = int((entry / "statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = pages * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


class PeakTree:
    """Samples the process tree's RSS every 100 ms while open."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, tree_rss(os.getpid()))

    def __enter__(self) -> PeakTree:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def sweep_once(executor: str, configs: list[dict[str, Any]]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder, PeakTree() as peak:
        settings = Settings(
            db=str(Path(folder) / "bench.sqlite3"),
            executor=executor,
            admin_token=ADMIN,
            max_stored_runs=1000,
        )
        manager = RunManager(settings).start()
        try:
            start = time.perf_counter()
            runs, _ = manager.create_many([(c, None) for c in configs], token=ADMIN)
            for run in runs:
                manager.controls.wait(run.id)
            wall = time.perf_counter() - start
            failed = [r.id for r in runs if r.status.value != "finished"]
            if failed:
                raise SystemExit(f"{executor}: runs did not finish: {failed}")
        finally:
            manager.close()
    return {"wall": wall, "peak": peak.peak}


def first_record(executor: str, samples: int = 6) -> list[float]:
    """Seconds from asking for a run's session to holding its first record, run after run."""
    made = make_executor(executor, 0.05 if executor == "ray" else 0.01)
    try:
        times = []
        for seed in range(samples):
            start = time.perf_counter()
            session = made.open(TrainConfig(dataset="digits", method="dni", seed=seed).resolve())
            session.advance()
            times.append(time.perf_counter() - start)
            session.close()
        return times
    finally:
        made.shutdown()


def alone(executor: str) -> float:
    """Steps per second of one run trained alone through `executor` (after its first slice)."""
    made = make_executor(executor, 0.05 if executor == "ray" else 0.01)
    try:
        session = made.open(
            TrainConfig(dataset="addition", method="dni", epochs=60, seed=1).resolve()
        )
        session.advance()
        start, steps = time.perf_counter(), 0
        while not session.done:
            steps += len(session.advance())
        rate = steps / (time.perf_counter() - start)
        session.close()
        return rate
    finally:
        made.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="2 epochs per run (smoke test)")
    parser.add_argument("--parts", nargs="+", default=["sweep", "alone", "first"])
    args = parser.parse_args(argv)
    if "sweep" in args.parts:
        compare_sweeps(args)
    if "alone" in args.parts:
        rates: dict[str, list[float]] = {"process": [], "ray": []}
        for _ in range(3):  # alternating
            for executor in rates:
                rates[executor].append(alone(executor))
        for executor, values in rates.items():
            print(
                f"{executor:>7}: one run alone: median {statistics.median(values):,.0f} steps/s "
                f"({', '.join(f'{v:,.0f}' for v in values)})"
            )
    if "first" in args.parts:
        for executor in ("process", "ray"):
            times = first_record(executor)
            print(
                f"{executor:>7}: start to first record: first run {times[0]:.3f} s, "
                f"next 5 median {statistics.median(times[1:]):.3f} s (one after another)"
            )


def compare_sweeps(args: argparse.Namespace) -> None:
    configs = reference(args.quick)
    print(f"{len(configs)} runs, {os.cpu_count()} cores, {'quick' if args.quick else 'reference'}")
    results: dict[str, list[dict[str, float]]] = {"process": [], "ray": []}
    for round_ in range(args.rounds):
        order = ("process", "ray") if round_ % 2 == 0 else ("ray", "process")
        for executor in order:
            result = sweep_once(executor, configs)
            results[executor].append(result)
            print(
                f"round {round_ + 1} {executor:>7}: wall {result['wall']:.1f} s, "
                f"peak memory {result['peak'] / 2**20:.0f} MiB",
                flush=True,
            )
    ratios = [
        r["wall"] / p["wall"] for p, r in zip(results["process"], results["ray"], strict=True)
    ]
    for executor, rows in results.items():
        wall = statistics.median(r["wall"] for r in rows)
        peak = statistics.median(r["peak"] for r in rows)
        print(f"{executor:>7}: median wall {wall:.1f} s, peak memory {peak / 2**20:.0f} MiB")
    print(f"Ray / process wall time: median {statistics.median(ratios):.2f} (target <= 1.25)")


if __name__ == "__main__":
    main()
