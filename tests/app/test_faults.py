"""Faults: slow and stopped training, a full disk, a corrupt file, restarts, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.execution.process import ProcessExecutor, ProcessSession
from app.runs.events import Event, StatusEvent
from app.runs.manager import RunManager
from app.runs.status import RunStatus, Unavailable
from app.settings import Settings
from app.storage.store import Store, StoreCorrupt, StoreError
from support.live import server_process
from support.load import stored_run
from support.waiting import wait_until
from synthgrad_core import Trainer
from synthgrad_core.config import ResolvedConfig

CONFIG = {"dataset": "addition", "bits": 4, "examples": 40, "hidden": [8], "epochs": 5000}
#: Seconds one step of the slow trainer takes: far beyond any answer the tests wait for.
SLOW_STEP = 60.0


class SlowTrainer(Trainer):
    """A real trainer whose every step after the third takes SLOW_STEP seconds."""

    def step(self) -> dict[str, Any]:
        if self.step_count >= 3:
            time.sleep(SLOW_STEP)
        return super().step()


def build_slow(config: ResolvedConfig) -> Trainer:
    return SlowTrainer(config)


@pytest.fixture
def slow_manager(tmp_path: Path) -> Iterator[RunManager]:
    settings = Settings(db=str(tmp_path / "slow.sqlite3"), kill_grace=1.0)
    manager = RunManager(settings, executor=ProcessExecutor(build=build_slow)).start()
    yield manager
    manager.close()


def _alive(pid: int) -> bool:
    """Whether `pid` is a live (not zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_controls_answer_at_once_and_a_stuck_training_is_killed(slow_manager: RunManager) -> None:
    run, token = slow_manager.create(CONFIG)
    wait_until(lambda: run.status is RunStatus.RUNNING)
    time.sleep(0.3)  # inside its fourth step now, which sleeps for a minute
    session = run.session
    assert isinstance(session, ProcessSession)
    pid = session._process.pid
    in_step = run.step
    paused = slow_manager.controls.pause(run.id, token)
    # Answered at once, not after the step: the step in progress has not ended.
    assert run.step == in_step
    assert paused.status is RunStatus.RUNNING and paused.public()["requested"] == "pause"
    stopped = slow_manager.controls.stop(run.id, token)
    assert stopped.public()["requested"] == "stop"
    # The training does not obey within the grace period (1 s): it is killed, the run
    # ends `stopped`, saying so, and its records so far are kept.
    done = slow_manager.controls.wait(run.id, timeout=SLOW_STEP / 2)
    assert done.status is RunStatus.STOPPED and "killed" in (done.error or "")
    assert run.step == in_step  # killed inside that step, not after it
    wait_until(lambda: not _alive(pid), timeout=10)
    assert slow_manager.store.count_records(run.id) == run.step  # what it recorded is kept


def test_a_sigstopped_training_is_killed_when_its_run_is_deleted(tmp_path: Path) -> None:
    manager = RunManager(Settings(db=str(tmp_path / "s.sqlite3"), kill_grace=1.0)).start()
    try:
        run, token = manager.create(CONFIG)
        wait_until(lambda: run.step > 0)
        session = run.session
        assert isinstance(session, ProcessSession)
        pid = session._process.pid
        os.kill(pid, signal.SIGSTOP)
        # The delete returns (it once hung on the stopped process, which then lived on);
        # the join's deadline is only a backstop against that hang.
        deleting = threading.Thread(target=manager.delete, args=(run.id, token), daemon=True)
        deleting.start()
        deleting.join(timeout=30)
        assert not deleting.is_alive()
        assert run.id not in manager.runs
        wait_until(lambda: not _alive(pid), timeout=15)
        wait_until(lambda: manager.store.count_records(run.id) == 0, timeout=15)
    finally:
        manager.close()


def test_queued_runs_stay_queued_across_a_restart(tmp_path: Path) -> None:
    settings = Settings(db=str(tmp_path / "q.sqlite3"), max_concurrent_runs=1, executor="thread")
    manager = RunManager(settings).start()
    first, _ = manager.create(CONFIG)
    waiting, _ = manager.create({**CONFIG, "epochs": 2})
    wait_until(lambda: first.status is RunStatus.RUNNING)
    assert waiting.status is RunStatus.QUEUED
    manager.close()
    again = RunManager(settings).start()
    try:
        assert again.get(first.id).status is RunStatus.INTERRUPTED
        # The queued run was not lost: it trains now, as it would have.
        assert again.controls.wait(waiting.id, timeout=60).status is RunStatus.FINISHED
    finally:
        again.close()


def _fill(store: Store, pages: int) -> None:
    """Let the store's file grow by at most `pages` more pages (SQLite's own full-disk error)."""
    with store._lock:
        count = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {count + pages}")


def _full_disk_outcome(manager: RunManager) -> None:
    """A run on a store that fills up: it fails saying so, nothing missing is unannounced."""
    events: list[Event] = []
    manager.events.add_listener(events.append)
    config = {**CONFIG, "histogram_every": 1}  # ~2 KB a record: the disk fills fast
    run, _ = manager.create(config)
    done = manager.controls.wait(run.id, timeout=120)
    assert done.status is RunStatus.FAILED
    assert done.error and done.error.startswith("disk full: the store could not write")
    first_missing = int(done.error.split("from step ")[1].split()[0])
    # Everything before the first lost batch is stored; the run names where loss began.
    stored = manager.store.steps(run.id)
    assert stored[: first_missing - 1] == list(range(1, first_missing))
    assert first_missing not in stored
    # Viewers heard it; health says the store fails; new runs are refused.
    wait_until(lambda: any(isinstance(e, StatusEvent) and e.status == "failed" for e in events))
    health = manager.admission.store_health()
    assert not health["ok"] and "disk" in health["error"]
    with pytest.raises(Unavailable):
        manager.create(CONFIG)


def test_a_full_database_fails_the_run_saying_so(tmp_path: Path) -> None:
    manager = RunManager(Settings(db=str(tmp_path / "full.sqlite3"), executor="thread")).start()
    try:
        _fill(manager.store, 40)
        _full_disk_outcome(manager)
    finally:
        manager.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs, where this machine lets the tests mount one."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip() or 'not permitted'}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_file_system_fails_the_run_saying_so(small_disk: Path) -> None:
    settings = Settings(db=str(small_disk / "runs.sqlite3"), executor="thread", min_free_disk=0)
    manager = RunManager(settings).start()
    try:
        _full_disk_outcome(manager)
    finally:
        manager.close()


def test_runs_are_refused_when_the_disk_is_nearly_full(tmp_path: Path) -> None:
    settings = Settings(db=str(tmp_path / "g.sqlite3"), min_free_disk=2**62)
    manager = RunManager(settings).start()
    try:
        with pytest.raises(Unavailable, match="free; new runs need at least"):
            manager.create(CONFIG)
        assert not manager.admission.store_health()["ok"]
    finally:
        manager.close()


def _corrupt(path: Path, fraction: float = 0.5) -> None:
    """Overwrite the page at `fraction` of the file with garbage."""
    size = path.stat().st_size
    page = 4096
    offset = int(size * fraction) // page * page
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(b"\xde\xad\xbe\xef" * (page // 4))


def test_a_corrupt_file_refuses_to_open_and_says_how_to_recover(tmp_path: Path) -> None:
    path = tmp_path / "bad.sqlite3"
    stored_run(path, 3000, run_id="r1", bits=4, examples=40, hidden=(8,))
    _corrupt(path)
    with pytest.raises(StoreCorrupt) as refused:
        Store(str(path))
    message = str(refused.value)
    assert str(path) in message and ".recover" in message and "backup" in message


def test_a_page_corrupted_while_serving_is_503_and_health_says_so(tmp_path: Path) -> None:
    path = tmp_path / "live.sqlite3"
    stored_run(path, 3000, run_id="r1", bits=4, examples=40, hidden=(8,))
    with server_process(str(path)) as (url, _):
        _corrupt(path, 0.6)
        try:
            response = httpx.get(f"{url}/api/runs/r1/metrics", timeout=30)
        except httpx.RemoteProtocolError:
            pass  # the stream had begun before the bad page: it is cut short, not completed
        else:
            assert response.status_code == 503 and "corrupt" in response.text
        health = httpx.get(f"{url}/api/health", timeout=10)
        assert health.status_code == 503 and health.json()["store"]["error"]


def test_sigterm_ends_the_server_promptly_with_a_run_in_a_long_step(tmp_path: Path) -> None:
    # One step of this net takes seconds (batch 2048 through 2 x 4096 units); the slice
    # the server waits on never comes back before SIGTERM.
    config = {"dataset": "digits", "hidden": [4096, 4096], "batch_size": 1024, "epochs": 100}
    env = {"SYNTHGRAD_MAX_RUN_MEMORY": str(8 * 2**30), "SYNTHGRAD_SHUTDOWN_TIMEOUT": "3"}
    with server_process(str(tmp_path / "t.sqlite3"), env=env) as (url, process):
        created = httpx.post(f"{url}/api/runs", json={"config": config}, timeout=30)
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        wait_until(lambda: httpx.get(f"{url}/api/runs/{run_id}").json()["status"] == "running")
        process.send_signal(signal.SIGTERM)
        # The server drains for its shutdown timeout (3 s), then ends without waiting for
        # the step; waiting for the run instead took 40 s and more. The deadline is a
        # backstop far above the drain, not a speed bound.
        process.wait(timeout=30)
    store = Store(str(tmp_path / "t.sqlite3"))
    (row,) = store.load_runs()
    assert row["status"] == "interrupted"
    store.close()


def test_an_exploding_loss_is_flagged_though_it_stays_finite(tmp_path: Path) -> None:
    manager = RunManager(Settings(db=str(tmp_path / "x.sqlite3"), executor="thread")).start()
    try:
        config = {"dataset": "addition", "learning_rate": 10_000, "epochs": 5}
        run, _ = manager.create(config)
        done = manager.controls.wait(run.id, timeout=60)
        assert done.status is RunStatus.FINISHED and done.summary["exploded_at"] > 0
        calm, _ = manager.create({"dataset": "addition", "epochs": 5})
        assert "exploded_at" not in manager.controls.wait(calm.id, timeout=60).summary
    finally:
        manager.close()


def test_store_errors_name_their_cause(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "e.sqlite3"))
    _fill(store, 0)
    with pytest.raises(StoreError, match="disk full"):
        big = [("r", s, 1, json.dumps({"step": s, "pad": "x" * 3000})) for s in range(1, 200)]
        store.write_batch(big, [])
    assert store.failure == "disk full"
    with store._lock:
        store._conn.execute("PRAGMA max_page_count = 1000000")
    assert store.probe() and store.failure is None
    store.close()
    assert isinstance(sqlite3.sqlite_version, str)
