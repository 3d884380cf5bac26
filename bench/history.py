"""A long run's downsampled history: `GET /api/runs/{id}/metrics?max_points=2000` of a
240,000-step run (what a branch's page fetches of its parent), against the full scan
that decodes every stored record.

The run is a real one of the Lecture DNI preset (created and stopped on a live server);
its stored history is then replaced with 240,000 records made from the first 2,400
records that config trains (steps and epochs renumbered), written through the store's
own `write_batch` in batches of 170, as the recorder writes them (one 0.1 s tick's
records). The server is started again on that file and each round times the HTTP
request (headline blocks: only the kept records are decoded) and, in this process, the
full scan the route used before (`metrics.export` over every stored record, min/max over
every numeric key); rounds are interleaved.

It also prints what the blocks cost a write: `headlines.blocks` per record against the
record's compression (`encode_record`), the work a write did before.

Usage: python -m bench.history [--steps 240000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from app.settings import Settings
from app.storage import headlines
from app.storage.codec import encode_record
from app.storage.metrics import export
from app.storage.store import Store
from support.live import live_server
from synthgrad_core.config import TrainConfig
from synthgrad_core.records import dumps
from synthgrad_core.trainer import Trainer, record_keys

CONFIG = {"dataset": "addition", "method": "dni", "epochs": 3000}
ADMIN = "bench-admin-token-0123456789"
#: Records per write: what the recorder stores per 0.1 s tick at ~1,700 steps/s.
BATCH = 170


def stored_run(db: str) -> str:
    """A real run row (the Lecture DNI config), stopped at once; its id."""
    with live_server(Settings(db=db, admin_token=ADMIN)) as live:
        run = httpx.post(f"{live.url}/api/runs", json={"name": "long", "config": CONFIG}).json()
        auth = {"Authorization": f"Bearer {ADMIN}"}
        httpx.post(f"{live.url}/api/runs/{run['id']}/stop", headers=auth)
        while httpx.get(f"{live.url}/api/runs/{run['id']}").json()["status"] != "stopped":
            time.sleep(0.1)
    return str(run["id"])


def fill(db: str, run_id: str, steps: int) -> None:
    """Replace the run's records with `steps` records made from real ones."""
    trainer = Trainer(TrainConfig(**CONFIG).resolve())
    base = []
    for record in trainer:
        base.append(record)
        if len(base) == 2400:
            break
    per_epoch = base[0]["step"] / base[0]["epoch"]
    store = Store(db)
    store._write(lambda conn: conn.execute("DELETE FROM records WHERE run_id = ?", (run_id,)))
    batch = []
    for step in range(1, steps + 1):
        record = {**base[(step - 1) % len(base)], "step": step, "epoch": step / per_epoch}
        batch.append((run_id, step, int(step % 10 == 0), dumps(record)))
        if len(batch) == BATCH:
            store.write_batch(batch, [])
            batch = []
    store.write_batch(batch, [(run_id, {"step": steps})])
    store.close()


def full_scan(db: str, run_id: str, max_points: int) -> tuple[float, int]:
    """The route's path before the headlines table: decode and parse every record."""
    store = Store(db, check=False)
    t0 = time.perf_counter()
    count = store.count_records(run_id)
    texts = (text for _, text in store.iter_records(run_id, limit=count))
    columns = record_keys(TrainConfig(**CONFIG).resolve())
    out = export(run_id, texts, count, columns, fields=None, max_points=max_points, fmt="json")
    body = "".join(out.chunks)
    seconds = time.perf_counter() - t0
    store.close()
    return seconds, int(json.loads(body)["count"])


def write_cost(rounds: int) -> None:
    """What the headline blocks add to a write: `headlines.blocks` of a tick's 170 records
    against `encode_record` of the same records (what a write did before), interleaved."""
    trainer = Trainer(TrainConfig(**CONFIG).resolve())
    texts = [
        ("r", r["step"], 0, dumps(r)) for r, _ in zip(trainer, range(BATCH * 20), strict=False)
    ]
    blocks, encoded = [], []
    for _ in range(rounds):
        for start in range(0, len(texts), BATCH):
            batch = texts[start : start + BATCH]
            t0 = time.perf_counter()
            [encode_record(text) for _, _, _, text in batch]
            t1 = time.perf_counter()
            headlines.blocks(batch)
            t2 = time.perf_counter()
            encoded.append((t1 - t0) / len(batch))
            blocks.append((t2 - t1) / len(batch))
    print(
        f"write path per record: compress {statistics.median(encoded) * 1e6:.1f} us,"
        f" headline block {statistics.median(blocks) * 1e6:.1f} us"
        f" ({statistics.median(blocks) / statistics.median(encoded):.2f}x the compression)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=240_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-points", type=int, default=2000)
    args = parser.parse_args(argv)
    write_cost(args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "history.sqlite3")
        run_id = stored_run(db)
        t0 = time.perf_counter()
        fill(db, run_id, args.steps)
        print(f"{args.steps:,} records written in {time.perf_counter() - t0:.1f} s")
        fast, slow = [], []
        with live_server(Settings(db=db)) as live:
            url = f"{live.url}/api/runs/{run_id}/metrics?max_points={args.max_points}"
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                body = httpx.get(url, timeout=120).json()
                fast.append(time.perf_counter() - t0)
                seconds, kept = full_scan(db, run_id, args.max_points)
                slow.append(seconds)
                print(
                    f"round: headlines (HTTP) {fast[-1]:.3f} s, {body['count']} records;"
                    f" full scan (in process) {seconds:.2f} s, {kept} records",
                    flush=True,
                )
    print(
        f"median of {args.rounds}: headlines {statistics.median(fast):.3f} s,"
        f" full scan {statistics.median(slow):.2f} s,"
        f" ratio {statistics.median(slow) / statistics.median(fast):.0f}x"
    )


if __name__ == "__main__":
    main()
