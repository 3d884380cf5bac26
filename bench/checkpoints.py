"""What checkpoints cost: bytes per checkpoint and per run, time per checkpoint against a step.

    python -m bench.checkpoints [--rounds N]

For the article's task (addition, the dataset's defaults) and digits (its defaults, dni):
- a checkpoint's bytes packed (byte-shuffled, zlib) against the raw arrays (np.savez);
- the time of one checkpoint (capture, pack, store in a real SQLite file) and of one
  step, medians of interleaved rounds, and their ratio: the checkpoint's cost in steps,
  and its share of training at the default cadence (Settings.checkpoint_seconds);
- a whole run through a RunManager (thread executor, default cadence): its checkpoints
  kept after thinning and their bytes.
Prints; never asserts.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time

import numpy as np

from app.runs.manager import RunManager
from app.settings import Settings
from app.storage.checkpoints import Checkpoints, pack
from app.storage.store import Store
from synthgrad_core import TrainConfig
from synthgrad_core.factory import make_trainer

CASES = {
    "article (addition)": {"dataset": "addition", "method": "dni"},
    "digits": {"dataset": "digits", "method": "dni"},
}


def raw_bytes(arrays: dict[str, np.ndarray]) -> int:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return len(buffer.getvalue())


def one_case(name: str, config: dict[str, object], rounds: int, folder: str) -> None:
    trainer = make_trainer(TrainConfig.from_dict(config))
    for _ in range(50):
        trainer.step()
    store = Store(os.path.join(folder, f"{name[:7]}.sqlite3"))
    store.insert_run(
        {
            "id": "bench",
            "name": name,
            "status": "running",
            "config": trainer.config.as_dict(),
            "owner_hash": "h",
            "created_at": 0.0,
            "total_steps": trainer.total_steps,
            "step": 0,
            "summary": {},
        }
    )
    table = Checkpoints(store)
    steps: list[float] = []
    checkpoints: list[float] = []
    packs: list[float] = []
    for _ in range(rounds):  # interleaved: 20 steps, then one checkpoint
        for _ in range(20):
            t0 = time.perf_counter()
            trainer.step()
            steps.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        size = table.add("bench", trainer.capture())
        checkpoints.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pack(trainer.capture())
        packs.append(time.perf_counter() - t0)
    state = trainer.capture()
    packed = len(pack(state))
    step, checkpoint = statistics.median(steps), statistics.median(checkpoints)
    every = Settings().checkpoint_seconds
    print(f"{name}: {sum(a.size for a in state.arrays.values()):,} numbers in the state")
    print(f"  checkpoint: {packed:,} bytes packed, {raw_bytes(state.arrays):,} raw (np.savez)")
    print(f"  one step (median): {step * 1e6:,.0f} us; one checkpoint (capture, pack, store):")
    print(f"  {checkpoint * 1e3:,.2f} ms = {checkpoint / step:,.1f} steps; at one per {every:g} s")
    print(f"  of training: {checkpoint / every:.3%} of the training time ({size:,} bytes each);")
    print(f"  of which capture and pack {statistics.median(packs) * 1e3:,.2f} ms, the rest SQLite")
    trainer.close()
    store.close()


def whole_run(name: str, config: dict[str, object], folder: str) -> None:
    settings = Settings(db=os.path.join(folder, f"run-{name[:7]}.sqlite3"), executor="thread")
    manager = RunManager(settings).start()
    try:
        run, _ = manager.create(config)
        t0 = time.perf_counter()
        manager.controls.wait(run.id, timeout=3600)
        took = time.perf_counter() - t0
        table = manager.checkpoints.table
        kept = table.steps(run.id)
        print(
            f"{name}, a whole run ({run.total_steps:,} steps, {took:.1f} s, {run.status.value}): "
            f"{len(kept)} checkpoints kept, {table.bytes_of(run.id):,} bytes; steps {kept}"
        )
    finally:
        manager.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)
    print(f"load: {os.getloadavg()[0]:.2f} (1-minute average)")
    with tempfile.TemporaryDirectory() as folder:
        for name, config in CASES.items():
            one_case(name, config, args.rounds, folder)
        for name, config in CASES.items():
            whole_run(name, config, folder)
    print(f"load: {os.getloadavg()[0]:.2f} (1-minute average)")


if __name__ == "__main__":
    main()
