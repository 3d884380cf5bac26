"""The one run loop: knobs on a batch, parked runs, and a paused run's training stopped or killed.

Real processes, a real store and a live server; the 1 s deadline on health and the
run list is a behavioural bound (they must never wait on a run's training).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.execution.process import ProcessSession
from app.runs.branches import Branches
from app.runs.events import StatusEvent
from app.runs.manager import RunManager
from app.runs.status import Conflict, RunStatus
from app.runs.sweeps import Sweeps
from app.settings import Settings
from support.live import live_server, strict_json
from support.waiting import wait_until
from synthgrad_core import TrainConfig, Trainer, dumps, without_timing

CONFIG = {"dataset": "addition", "bits": 6, "examples": 300, "epochs": 40, "seed": 5}
ADMIN = "admin-secret-token-123"


def records(manager: RunManager, run_id: str) -> list[dict[str, Any]]:
    return [without_timing(strict_json(t)) for t in manager.history.records(run_id)]


def engine_records(config: dict[str, Any], changes_at: dict[int, dict[str, Any]]) -> list[Any]:
    """The engine's records of `config`, with knobs changed before the given steps."""
    trainer = Trainer(TrainConfig.from_dict(config))
    out = []
    while not trainer.done:
        if (changes := changes_at.get(trainer.step_count + 1)) is not None:
            trainer.configure(**changes)
        out.append(without_timing(strict_json(dumps(trainer.step()))))
    return out


def assert_same(mine: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> None:
    assert len(mine) == len(theirs)
    for got, want in zip(mine, theirs, strict=True):
        assert got.keys() == want.keys()
        for key, value in want.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, rel=1e-9, nan_ok=True), key
            else:
                assert got[key] == value, key


@pytest.fixture
def thread_manager(tmp_path: Path) -> Iterator[RunManager]:
    settings = Settings(db=str(tmp_path / "t.sqlite3"), executor="thread")
    manager = RunManager(settings).start()
    yield manager
    manager.close()


def test_each_knob_of_a_batched_seed_applies_to_every_seed_or_is_409(
    thread_manager: RunManager,
) -> None:
    manager = thread_manager
    config = {**CONFIG, "epochs": 8, "method": "cdni"}
    sweep, token = Sweeps(manager).create("seeds", config, {"seed": [3, 4]})
    runs = [manager.get(run_id) for run_id in sweep.run_ids]
    wait_until(lambda: all(run.step > 20 for run in runs))
    manager.controls.pause(runs[0].id, token)
    wait_until(lambda: all(run.status is RunStatus.PAUSED for run in runs))
    branches = Branches(manager)
    knobs = {"learning_rate": 0.5, "sg_learning_rate": 0.02, "sg_scale": 0.5}
    branches.configure(runs[1].id, token, knobs)  # any seed's change is every seed's
    with pytest.raises(Conflict, match="update_probability: the run trains in a batch"):
        branches.configure(runs[0].id, token, {"update_probability": 0.5})
    assert all(run.config.update_probability == 1.0 for run in runs)  # nothing half-done
    manager.controls.resume(runs[0].id, token)
    for run in runs:
        assert manager.controls.wait(run.id, timeout=60).status is RunStatus.FINISHED
        assert run.config.learning_rate == 0.5 and run.config.sg_scale == 0.5
        mine = records(manager, run.id)
        (changed,) = [r for r in mine if "config_change" in r]
        assert "learning_rate 2 → 0.5" in changed["config_change"]
        seed = {**config, "seed": run.config.seed}
        assert_same(mine, engine_records(seed, {changed["step"]: knobs}))


def test_a_run_paused_past_park_after_frees_its_slot_and_goes_on_exactly(
    tmp_path: Path,
) -> None:
    settings = Settings(
        db=str(tmp_path / "p.sqlite3"), executor="process", park_after=0.3, max_concurrent_runs=1
    )
    manager = RunManager(settings).start()
    heard: list[Any] = []
    manager.events.add_listener(heard.append)
    try:
        run, token = manager.create(CONFIG)
        wait_until(lambda: run.step > 50)
        session = run.session
        assert isinstance(session, ProcessSession)
        pid = session._process.pid
        manager.controls.pause(run.id, token)
        wait_until(lambda: run.public()["parked"])
        assert run.status is RunStatus.PAUSED
        told = StatusEvent(run.id, "paused", run.step, parked=True)
        wait_until(lambda: told in heard)  # watchers' pages say "paused (parked)"
        wait_until(lambda: not os.path.exists(f"/proc/{pid}"))  # its process ended (reaped)
        other, _ = manager.create({**CONFIG, "epochs": 2})  # takes the one slot
        assert manager.controls.wait(other.id, timeout=60).status is RunStatus.FINISHED
        branch, _ = Branches(manager).fork(run.id, token)  # a parked run forks as well
        assert branch.fork_of == {"run": run.id, "step": run.step}
        resumed = manager.controls.resume(run.id, token)
        assert resumed.status in (RunStatus.QUEUED, RunStatus.RUNNING)
        assert manager.controls.wait(run.id, timeout=60).status is RunStatus.FINISHED
        assert manager.controls.wait(branch.id, timeout=60).status is RunStatus.FINISHED
        assert not run.public()["parked"]
        assert_same(records(manager, run.id), engine_records(CONFIG, {}))
        assert_same(
            records(manager, branch.id), engine_records(CONFIG, {})[branch.fork_of["step"] :]
        )
    finally:
        manager.close()


def test_a_parked_run_can_be_stopped_and_its_knobs_reach_it_on_resume(tmp_path: Path) -> None:
    settings = Settings(db=str(tmp_path / "k.sqlite3"), executor="thread", park_after=0.2)
    manager = RunManager(settings).start()
    try:
        _stop_one_and_change_the_other(manager)
    finally:
        manager.close()


def _stop_one_and_change_the_other(manager: RunManager) -> None:
    first, token = manager.create(CONFIG)
    second, token2 = manager.create(CONFIG)
    for run, owner in ((first, token), (second, token2)):
        wait_until(lambda run=run: run.step > 10)
        manager.controls.pause(run.id, owner)
    wait_until(lambda: first.parked is not None and second.parked is not None)
    manager.controls.stop(first.id, token)
    assert first.status is RunStatus.STOPPED and first.parked is None
    Branches(manager).configure(second.id, token2, {"learning_rate": 0.5})
    at = second.step + 1
    manager.controls.resume(second.id, token2)
    assert manager.controls.wait(second.id, timeout=60).status is RunStatus.FINISHED
    assert_same(records(manager, second.id), engine_records(CONFIG, {at: {"learning_rate": 0.5}}))


def _watch(url: str, stop: threading.Event, slow: list[str]) -> None:
    """Ask for health and the run list until `stop`; note any answer that took over 1 s."""
    with httpx.Client(base_url=url, timeout=1.0) as client:
        while not stop.is_set():
            for path in ("/api/health", "/api/runs"):
                try:
                    client.get(path).raise_for_status()
                except httpx.HTTPError as exc:
                    slow.append(f"{path}: {type(exc).__name__}")
            time.sleep(0.05)


def _training_pid(session: Any) -> int:
    """The pid of the process a session's trainer lives in (a child, a Ray worker)."""
    if isinstance(session, ProcessSession):
        return session._process.pid
    pid: int = session.pid()  # a RaySession
    return pid


@pytest.mark.parametrize("executor", ["process", "ray"])
@pytest.mark.parametrize("signum", [signal.SIGSTOP, signal.SIGKILL], ids=["SIGSTOP", "SIGKILL"])
def test_a_paused_runs_stopped_or_killed_training_holds_no_request(
    tmp_path: Path, signum: int, executor: str, request: pytest.FixtureRequest
) -> None:
    if executor == "ray":
        request.getfixturevalue("ray_instance")
    settings = Settings(
        db=str(tmp_path / "f.sqlite3"),
        executor=executor,
        admin_token=ADMIN,
        answer_timeout=1.0,
        kill_grace=1.0,
        max_concurrent_runs=2,
    )
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with (
        live_server(settings) as live,
        httpx.Client(base_url=live.url, headers=admin, timeout=10.0) as api,
    ):
        manager: RunManager = live.app.state.manager
        run_id = api.post("/api/runs", json={"config": CONFIG}).json()["id"]
        run = manager.get(run_id)
        wait_until(lambda: run.step > 20)
        assert api.post(f"/api/runs/{run_id}/pause").status_code == 200
        wait_until(lambda: run.status is RunStatus.PAUSED)
        paused_at = run.step
        pid = _training_pid(run.session)
        stop, slow = threading.Event(), []
        watcher = threading.Thread(target=_watch, args=(live.url, stop, slow))
        watcher.start()
        try:
            os.kill(pid, signum)
            if signum == signal.SIGSTOP:  # no answer within answer_timeout: 503, saying so
                fork = api.post(f"/api/runs/{run_id}/fork")
                assert fork.status_code == 503 and "answer" in fork.json()["detail"], fork.text
            # SIGSTOP: failed by that fork; SIGKILL: seen while paused, with no command
            wait_until(lambda: run.status is RunStatus.FAILED, timeout=15)
            assert run.error and ("training process" in run.error or "Ray" in run.error)
            # A failed run forks from its stored checkpoint (taken as it paused), never
            # from its dead or silent process.
            branch = api.post(f"/api/runs/{run_id}/fork")
            assert branch.status_code == 201, branch.text
            assert branch.json()["fork_of"] == {"run": run_id, "step": paused_at}
            assert api.post(f"/api/runs/{run_id}/stop").status_code == 409  # already ended
            assert api.delete(f"/api/runs/{run_id}").status_code == 204
            wait_until(lambda: not os.path.exists(f"/proc/{pid}"), timeout=15)
            other = api.post("/api/runs", json={"config": {**CONFIG, "epochs": 2}}).json()
            assert manager.controls.wait(other["id"], timeout=60).status is RunStatus.FINISHED
        finally:
            stop.set()
            watcher.join()
        assert slow == []


#: A server process under `ulimit -n 256` that trains 300 runs in training processes,
#: then prints its open file descriptors and threads before and after, and whether it
#: still starts a run.
FD_CHILD = """
import json, os, resource, sys, threading
from app.runs.manager import RunManager
from app.settings import Settings

resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
config = {"dataset": "addition", "bits": 4, "examples": 40, "epochs": 1}
admin = "fd-test-admin-token-0123"
settings = Settings(
    db=sys.argv[1], executor="process", max_stored_runs=1000, max_active_per_owner=0,
    create_rate=0, max_concurrent_runs=2, admin_token=admin,
)
manager = RunManager(settings).start()
first, _ = manager.create(config, token=admin)
manager.controls.wait(first.id, timeout=60)
fds, threads = len(os.listdir("/proc/self/fd")), threading.active_count()
runs = [manager.create(config, token=admin)[0] for _ in range(300)]
ended = [manager.controls.wait(run.id, timeout=300).status.value for run in runs]
for run in runs:  # a session closes (its process, pipe, thread) right after its run ends
    run.thread.join(timeout=30)
after_fds, after_threads = len(os.listdir("/proc/self/fd")), threading.active_count()
last, _ = manager.create(config, token=admin)
print(json.dumps({
    "ended": sorted(set(ended)), "fds": [fds, after_fds], "threads": [threads, after_threads],
    "last": manager.controls.wait(last.id, timeout=60).status.value,
}))
manager.close()
"""


def test_300_runs_under_ulimit_256_release_their_pipes_processes_and_threads(
    tmp_path: Path,
) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", FD_CHILD, str(tmp_path / "fd.sqlite3")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["ended"] == ["finished"] and seen["last"] == "finished"
    before, after = seen["fds"]
    assert after <= before, seen  # each finished run's pipe and process sentinel are closed
    assert seen["threads"][1] <= seen["threads"][0], seen
