"""Load for tests and benchmarks: long stored runs, peak memory of servers and trainers."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.storage.store import Store
from synthgrad_core import TrainConfig, Trainer, dumps

from .live import rss_bytes

#: A child that builds a trainer, trains `steps` steps, evaluates, and prints its peak RSS.
#: VmHWM, not ru_maxrss: that one carries the forking parent's peak over exec.
_TRAIN_CHILD = """
import json, sys
from synthgrad_core import TrainConfig, Trainer
trainer = Trainer(TrainConfig.from_dict(json.loads(sys.argv[1])))
for _ in range(int(sys.argv[2])):
    trainer.step()
trainer.evaluate(trainer.data.x_test, trainer.data.y_test)
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(int(peak.split()[1]) * 1024)
"""


#: The same for a batch of seeds 1..n (synthgrad_core.seeds), with each seed's summary.
_BATCH_CHILD = """
import json, sys
from synthgrad_core import TrainConfig
from synthgrad_core.seeds import SeedBatch
batch = SeedBatch(TrainConfig.from_dict(json.loads(sys.argv[1])), range(1, int(sys.argv[3]) + 1))
for _ in range(int(sys.argv[2])):
    batch.step()
batch.summaries()
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(int(peak.split()[1]) * 1024)
"""


def training_peak_rss(config: dict[str, Any], steps: int = 3, seeds: int = 0) -> int:
    """Peak resident bytes of a fresh process that trains `config` for `steps` steps
    (with `seeds`, as a batch of that many seeds)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    child = [_BATCH_CHILD, json.dumps(config), str(steps), str(seeds)] if seeds else None
    out = subprocess.run(
        [sys.executable, "-c", *(child or [_TRAIN_CHILD, json.dumps(config), str(steps)])],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=300,
    )
    return int(out.stdout)


@contextlib.contextmanager
def peak_rss(pid: int) -> Iterator[list[int]]:
    """Sample a process's RSS every 20 ms while the block runs: yields [peak], updated."""
    peak = [rss_bytes(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()


def stored_run(path: Path, records: int, run_id: str = "big", **config: Any) -> None:
    """A finished run of `records` real records (the first steps of `config`, cycled)."""
    cfg = TrainConfig(**{"dataset": "addition", "epochs": 5, **config}).resolve()
    store = Store(str(path))
    store.insert_run(
        {
            "id": run_id,
            "name": "long run",
            "status": "finished",
            "config": cfg.as_dict(),
            "owner_hash": "h",
            "created_at": 1.0,
            "total_steps": records,
            "step": records,
            "summary": {},
        }
    )
    trainer = Trainer(cfg)
    samples = [trainer.step() for _ in range(min(200, trainer.total_steps))]
    for start in range(1, records + 1, 5000):
        batch = []
        for step in range(start, min(start + 5000, records + 1)):
            record = dict(samples[step % len(samples)], step=step)
            batch.append((run_id, step, int(step % 50 == 0), dumps(record)))
        store.write_batch(batch, [])
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
