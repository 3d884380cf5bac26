"""The SQLite store: runs, records, the streamed subset, deletes."""

from __future__ import annotations

from pathlib import Path

from app.storage.store import Store


def row(run_id: str) -> dict[str, object]:
    return {
        "id": run_id,
        "name": "n",
        "status": "running",
        "config": {"dataset": "digits"},
        "owner_hash": "h",
        "created_at": 1.0,
        "total_steps": 10,
        "step": 0,
        "summary": {},
    }


def test_records_round_trip_in_step_order_with_the_streamed_subset(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s.sqlite3"))
    store.insert_run(row("a"))
    store.write_batch(
        [("a", step, step % 2, f'{{"step":{step}}}') for step in (3, 1, 2, 4)],
        [("a", {"step": 4, "summary": {"loss": 0.5}})],
    )
    assert store.read_records("a") == ['{"step":1}', '{"step":2}', '{"step":3}', '{"step":4}']
    assert store.read_records("a", streamed_only=True) == ['{"step":1}', '{"step":3}']
    assert store.read_records("a", after=2, limit=1) == ['{"step":3}']
    assert store.count_records("a", streamed_only=True) == 2
    (loaded,) = store.load_runs()
    assert loaded["step"] == 4 and loaded["summary"] == {"loss": 0.5}
    store.close()


def test_unfinished_runs_become_interrupted_and_deletes_remove_records(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s.sqlite3"))
    store.insert_run(row("a"))
    store.insert_run({**row("b"), "status": "finished"})
    store.write_batch([("a", 1, 1, '{"step":1}')], [])
    assert store.mark_interrupted(["queued", "running", "paused"]) == 1
    assert {r["id"]: r["status"] for r in store.load_runs()} == {
        "a": "interrupted",
        "b": "finished",
    }
    store.delete_run("a")
    assert [r["id"] for r in store.load_runs()] == ["b"]  # the row goes at once
    assert store.read_records("a") == ['{"step":1}']  # the records in the background
    while store.purge():
        pass
    assert store.read_records("a") == [] and [r["id"] for r in store.load_runs()] == ["b"]
    store.close()


def _records(steps: int, **config: object) -> list[str]:
    from synthgrad_core import TrainConfig, Trainer, dumps

    trainer = Trainer(TrainConfig(**config))  # type: ignore[arg-type]
    return [dumps(trainer.step()) for _ in range(steps)]


def _settle(store: Store) -> int:
    """The file's size once the WAL is folded in."""
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return Path(store.path).stat().st_size


def test_a_record_of_the_article_net_takes_under_1_2_kb_on_disk(tmp_path: Path) -> None:
    # The article's net (addition, 8 bits, DNI) with the default diagnostics: every step
    # carries fidelity and weight statistics, every 100th a histogram per layer.
    texts = _records(600, dataset="addition", method="dni")
    store = Store(str(tmp_path / "s.sqlite3"))
    store.insert_run(row("a"))
    empty = _settle(store)
    for start in range(0, len(texts), 100):
        store.write_batch(
            [("a", i + 1, 1, t) for i, t in enumerate(texts[start : start + 100], start)], []
        )
    per_record = (_settle(store) - empty) / len(texts)
    assert per_record <= 1200, per_record  # the first schema's JSON text took 4.7 KB
    assert store.read_records("a") == texts  # and every byte comes back
    store.close()


def test_deleting_a_run_gives_its_space_back_in_chunks(tmp_path: Path) -> None:
    from app.storage.store import CHUNK

    store = Store(str(tmp_path / "s.sqlite3"))
    store.insert_run(row("a"))
    store.insert_run(row("b"))
    text = _records(1)[0]
    n = 3 * CHUNK + 10
    store.write_batch([("a", s, 0, text) for s in range(1, n + 1)], [])
    store.write_batch([("b", 1, 1, text)], [])
    full = _settle(store)
    store.delete_run("a")
    chunks = []
    while (done := store.purge()) > 0:
        chunks.append(done)
    # Records went CHUNK at a time (other writers get the lock between chunks), then pages.
    assert chunks[:4] == [CHUNK, CHUNK, CHUNK, 10]
    assert _settle(store) < full / 3
    assert store.read_records("b") == [text]
    store.close()


def test_files_of_the_first_schema_are_migrated_without_losing_a_record(tmp_path: Path) -> None:
    import sqlite3

    path = str(tmp_path / "old.sqlite3")
    conn = sqlite3.connect(path)
    conn.executescript(
        """CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL,
        config TEXT NOT NULL, owner_hash TEXT NOT NULL, created_at REAL NOT NULL,
        started_at REAL, finished_at REAL, step INTEGER NOT NULL DEFAULT 0,
        total_steps INTEGER NOT NULL, summary TEXT NOT NULL DEFAULT '{}', error TEXT);
        CREATE TABLE metrics (run_id TEXT NOT NULL, step INTEGER NOT NULL,
        streamed INTEGER NOT NULL, record TEXT NOT NULL, PRIMARY KEY (run_id, step))
        WITHOUT ROWID;"""
    )
    conn.execute(
        "INSERT INTO runs VALUES ('a','n','finished','{}','h',1,NULL,NULL,4500,4500,'{}',NULL)"
    )
    conn.executemany(
        "INSERT INTO metrics VALUES ('a', ?, ?, ?)",
        [(s, int(s % 7 == 0), f'{{"step":{s},"loss":0.5}}') for s in range(1, 4501)],
    )
    conn.commit()
    conn.close()
    store = Store(path)
    assert store.read_records("a") == [f'{{"step":{s},"loss":0.5}}' for s in range(1, 4501)]
    assert store.count_records("a", streamed_only=True) == 4500 // 7
    assert store._conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    store.close()
