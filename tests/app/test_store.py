"""The SQLite store: runs, records, the streamed subset, deletes."""

from __future__ import annotations

from pathlib import Path

from app.store import Store


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
    assert store.read_records("a") == [] and [r["id"] for r in store.load_runs()] == ["b"]
    store.close()
