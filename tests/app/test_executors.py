"""Every executor behind the run manager: same records, same controls, same failures.

The Ray executor runs on a real local Ray instance (one per test session).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from app.execution.process import ProcessSession
from app.execution.session import RAY_MISSING
from app.runs.events import Event, MetricsEvent
from app.runs.manager import RunManager
from app.runs.status import RunStatus
from app.settings import Settings
from app.storage.store import Store
from support.live import strict_json
from support.waiting import wait_until
from synthgrad_core import TrainConfig, Trainer, without_timing
from synthgrad_core.data import MNIST_FILES

CONFIG = {"dataset": "addition", "bits": 6, "examples": 300, "epochs": 40, "seed": 5}


@pytest.fixture(params=["thread", "process", "ray"])
def manager(request: pytest.FixtureRequest, tmp_path: Path) -> RunManager:
    if request.param == "ray":
        request.getfixturevalue("ray_instance")
    settings = Settings(
        db=str(tmp_path / "x.sqlite3"), executor=request.param, data_root=str(tmp_path)
    )
    manager = RunManager(settings).start()
    request.addfinalizer(manager.close)
    return manager


def test_records_equal_the_engine_with_a_pause_in_the_middle(manager: RunManager) -> None:
    run, token = manager.create(CONFIG)
    wait_until(lambda: run.step > 200)
    manager.controls.pause(run.id, token)
    held = run.step
    time.sleep(0.3)
    assert run.status is RunStatus.PAUSED and run.step == held  # nothing trains while paused
    manager.controls.resume(run.id, token)
    assert manager.controls.wait(run.id, timeout=60).status is RunStatus.FINISHED
    stored = [strict_json(text) for text in manager.history.records(run.id)]
    trainer = Trainer(TrainConfig.from_dict(CONFIG))
    engine = [strict_json(__import__("synthgrad_core").dumps(r)) for r in trainer]
    assert [without_timing(r) for r in stored] == [without_timing(r) for r in engine]
    assert run.public()["steps_per_second"] > 0
    assert run.summary["test_accuracy"] == engine[-1]["test_accuracy"]
    # the final numbers on the whole training split, not the last batch's
    assert run.summary["accuracy"] == trainer.summary()["accuracy"]
    assert manager.store.load_runs()[-1]["summary"]["accuracy"] == run.summary["accuracy"]


def test_stop_and_shutdown_end_at_a_step_boundary(manager: RunManager) -> None:
    long = {**CONFIG, "epochs": 5000}
    stopped, token = manager.create(long)
    cut, _ = manager.create(long)
    wait_until(lambda: stopped.step > 0 and cut.step > 0)
    manager.controls.stop(stopped.id, token)
    assert stopped.status is RunStatus.STOPPED
    assert manager.store.count_records(stopped.id) == stopped.step
    manager.close()
    assert cut.status is RunStatus.INTERRUPTED
    reopened = Store(manager.settings.db)
    assert reopened.count_records(cut.id) == cut.step > 0
    reopened.close()


def write_broken_mnist(folder: Path) -> None:
    """MNIST's four file names holding no IDX data."""
    folder.mkdir()
    for stem in MNIST_FILES.values():
        (folder / stem).write_bytes(b"not an IDX file")


def test_a_config_the_trainer_refuses_fails_the_run_with_its_reason(
    manager: RunManager, tmp_path: Path
) -> None:
    # The files are there (admission looks for them), but they are not IDX files: only the
    # trainer, reading them, can refuse the config.
    write_broken_mnist(tmp_path / "broken-mnist")
    run, _ = manager.create({"dataset": "mnist", "data_path": "broken-mnist", "epochs": 1})
    assert manager.controls.wait(run.id, timeout=30).status is RunStatus.FAILED
    assert run.error and "broken-mnist" in run.error
    assert str(tmp_path) not in run.error  # the server's own paths stay its own


def test_diverged_run_reports_its_step(manager: RunManager) -> None:
    config = {"dataset": "digits", "hidden": [128, 128, 64], "learning_rate": 1e4, "epochs": 2}
    run, _ = manager.create(config)
    assert manager.controls.wait(run.id, timeout=60).status is RunStatus.DIVERGED
    assert run.summary["diverged_at"] == run.step


def test_a_killed_training_process_fails_its_run_and_not_the_server(tmp_path: Path) -> None:
    manager = RunManager(Settings(db=str(tmp_path / "k.sqlite3"), executor="process")).start()
    try:
        run, _ = manager.create({**CONFIG, "epochs": 5000})
        wait_until(lambda: run.step > 0)
        session = run.session
        assert isinstance(session, ProcessSession)
        os.kill(session._process.pid, signal.SIGKILL)
        assert manager.controls.wait(run.id, timeout=30).status is RunStatus.FAILED
        assert run.error == "the training process was killed by SIGKILL"  # not "exit code None"
        assert manager.store.count_records(run.id) == run.step > 0  # what it recorded is kept
        again, _ = manager.create(CONFIG)  # the server still trains
        assert manager.controls.wait(again.id, timeout=60).status is RunStatus.FINISHED
    finally:
        manager.close()


def test_settings_refuse_an_unknown_executor(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="executor: must be one of thread, process, ray"):
        dataclasses.replace(Settings(db=str(tmp_path / "s.db")), executor="cluster")


def test_a_read_right_after_a_live_event_sees_its_records(tmp_path: Path) -> None:
    """Events go out before the store write; a replay issued at once must still see them."""
    import threading

    manager = RunManager(Settings(db=str(tmp_path / "o.sqlite3"), executor="thread")).start()
    misses: list[int] = []
    checked: list[int] = []
    readers: list[threading.Thread] = []

    def check(steps: list[int], run_id: str) -> None:
        stored = {
            strict_json(t)["step"] for t in manager.history.records(run_id, streamed_only=True)
        }
        checked.append(len(steps))
        misses.extend(s for s in steps if s not in stored)

    def listener(event: Event) -> None:
        if isinstance(event, MetricsEvent) and event.steps:
            reader = threading.Thread(target=check, args=(event.steps, event.run_id))
            readers.append(reader)
            reader.start()

    manager.events.add_listener(listener)
    try:
        # Long enough for many of the writer's ticks however fast or loaded the machine is.
        run, _ = manager.create({**CONFIG, "epochs": 80})
        assert manager.controls.wait(run.id, timeout=120).status is RunStatus.FINISHED
        for reader in readers:
            reader.join(timeout=30)
    finally:
        manager.close()
    assert len(checked) > 5 and misses == []


def test_a_pipelined_run_pauses_resumes_and_finishes(manager: RunManager) -> None:
    config = {
        "dataset": "digits",
        "method": "dni",
        "hidden": [64, 64],
        "epochs": 30,
        "execution": "pipelined",
        "workers": 2,
    }
    run, token = manager.create(config)
    wait_until(lambda: run.step > 20)
    paused = manager.controls.settled(
        manager.controls.pause(run.id, token), lambda r: r.status is RunStatus.PAUSED, 30
    )
    assert paused.status is RunStatus.PAUSED
    held = run.step
    time.sleep(0.5)
    assert run.step == held  # the workers stop within a window of batches, nothing recorded
    manager.controls.resume(run.id, token)
    assert manager.controls.wait(run.id, timeout=120).status is RunStatus.FINISHED
    stored = [strict_json(t) for t in manager.history.records(run.id)]
    assert [r["step"] for r in stored] == list(range(1, run.total_steps + 1))
    assert all("timeline" in r for r in stored)
    assert run.summary["execution"] == "pipelined, 2 stages"


def test_a_dead_ray_worker_fails_its_run_with_the_reason_and_others_go_on(
    tmp_path: Path, ray_instance: None
) -> None:
    from app.execution.ray_executor import RaySession

    settings = Settings(db=str(tmp_path / "r.sqlite3"), executor="ray", max_concurrent_runs=2)
    manager = RunManager(settings).start()
    try:
        doomed, _ = manager.create({**CONFIG, "epochs": 5000})
        other, _ = manager.create(CONFIG)
        wait_until(lambda: doomed.step > 0)
        session = doomed.session
        assert isinstance(session, RaySession)
        os.kill(session.pid(), signal.SIGKILL)  # the worker process, as the OOM killer would
        assert manager.controls.wait(doomed.id, timeout=60).status is RunStatus.FAILED
        assert doomed.error and doomed.error.startswith("the Ray worker died:")
        assert manager.store.count_records(doomed.id) == doomed.step > 0  # kept what it had
        assert manager.controls.wait(other.id, timeout=120).status is RunStatus.FINISHED
        assert manager.store.count_records(other.id) == other.total_steps
    finally:
        manager.close()


def test_without_ray_the_ray_executor_says_how_to_install_it() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['ray'] = None\n"  # as if the package were not installed
        "from app.cli import main; sys.exit(main(['serve', '--executor', 'ray']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [f"synthgrad serve: error: executor: {RAY_MISSING}"]


def test_a_ray_actor_trains_the_next_run_once_its_run_ends(
    tmp_path: Path, ray_instance: None
) -> None:
    """A new actor costs a worker process; a finished run's actor takes the next run."""
    from app.execution.ray_executor import RaySession

    settings = Settings(db=str(tmp_path / "p.sqlite3"), executor="ray", max_concurrent_runs=1)
    manager = RunManager(settings).start()
    try:
        first, _ = manager.create(CONFIG)
        second, _ = manager.create({**CONFIG, "seed": 6})
        assert manager.controls.wait(first.id, timeout=60).status is RunStatus.FINISHED
        assert isinstance(first.session, RaySession)
        worker = first.session.pid()
        assert manager.controls.wait(second.id, timeout=60).status is RunStatus.FINISHED
        assert isinstance(second.session, RaySession) and second.session.pid() == worker
        assert manager.store.count_records(second.id) == second.total_steps
    finally:
        manager.close()


HEAD_OPTIONS = ("--include-dashboard=false", "--block")


def test_a_server_joins_a_ray_cluster_by_address_and_shuts_down_gracefully(
    tmp_path: Path, ray_instance: None
) -> None:
    """SYNTHGRAD_RAY_ADDRESS: a real second Ray cluster (`ray start --head`), token auth on.

    SIGTERM must still reach the server's graceful shutdown: `ray.init` installs a handler
    that exits at once, leaving the training run `running` in the store.
    """
    import secrets
    import socket
    import subprocess
    import sys

    from support.live import server_process

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    ray_cli = str(Path(sys.executable).parent / "ray")
    head = subprocess.Popen(
        [ray_cli, "start", "--head", f"--port={port}", "--num-cpus=1", *HEAD_OPTIONS],
        env={**os.environ, **auth},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening, timeout=60)
        env = {**auth, "SYNTHGRAD_EXECUTOR": "ray", "SYNTHGRAD_RAY_ADDRESS": f"127.0.0.1:{port}"}
        db = str(tmp_path / "cluster.sqlite3")
        log = tmp_path / "server.log"
        with server_process(db, env=env, log=log) as (url, process):
            assert httpx.get(f"{url}/api/health").json()["executor"] == "ray"
            done = httpx.post(f"{url}/api/runs", json={"config": CONFIG}).json()
            wait_until(
                lambda: httpx.get(f"{url}/api/runs/{done['id']}").json()["status"] == "finished",
                timeout=60,
            )
            long = httpx.post(f"{url}/api/runs", json={"config": {**CONFIG, "epochs": 5000}})
            run_id = long.json()["id"]
            wait_until(lambda: httpx.get(f"{url}/api/runs/{run_id}").json()["step"] > 0)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        store = Store(db)
        rows = {row["id"]: row for row in store.load_runs()}
        store.close()
        assert rows[done["id"]]["status"] == "finished"
        assert rows[run_id]["status"] == "interrupted"  # by the server's own shutdown
        assert "Traceback" not in log.read_text()  # Ray's handler: SystemExit mid-loop
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=60)


def test_a_fork_goes_on_exactly_as_its_parent(manager: RunManager) -> None:
    from app.runs.branches import Branches

    run, token = manager.create(CONFIG)
    wait_until(lambda: run.step > 100)
    manager.controls.pause(run.id, token)
    wait_until(lambda: run.status is RunStatus.PAUSED)
    branch, _ = Branches(manager).fork(run.id, token)
    assert branch.fork_of == {"run": run.id, "step": run.step} and run.status is RunStatus.PAUSED
    assert manager.controls.wait(branch.id, timeout=60).status is RunStatus.FINISHED
    manager.controls.resume(run.id, token)
    assert manager.controls.wait(run.id, timeout=60).status is RunStatus.FINISHED
    parent = [without_timing(strict_json(t)) for t in manager.history.records(run.id)]
    forked = [without_timing(strict_json(t)) for t in manager.history.records(branch.id)]
    assert forked[0]["step"] == branch.fork_of["step"] + 1
    assert forked == parent[branch.fork_of["step"] :]
    assert branch.summary["accuracy"] == run.summary["accuracy"]


def test_knobs_change_in_place_and_say_so_in_the_next_record(manager: RunManager) -> None:
    from app.runs.branches import Branches

    run, token = manager.create({**CONFIG, "method": "dni"})
    wait_until(lambda: run.step > 50)
    Branches(manager).configure(run.id, token, {"learning_rate": 0.5, "sg_scale": 2.0})
    assert run.config.learning_rate == 0.5
    assert manager.controls.wait(run.id, timeout=60).status is RunStatus.FINISHED
    marked = [
        r for t in manager.history.records(run.id) if "config_change" in (r := strict_json(t))
    ]
    assert len(marked) == 1 and marked[0]["step"] > 50
    assert marked[0]["config_change"] == "learning_rate 2 → 0.5, sg_scale 1 → 2"
    assert manager.store.load_runs()[-1]["config"]["learning_rate"] == 0.5


def test_a_batch_of_seeds_trains_in_one_session_with_each_seeds_records(
    manager: RunManager,
) -> None:
    from app.runs.sweeps import Sweeps

    config = {**CONFIG, "epochs": 5, "method": "cdni"}
    sweep, _ = Sweeps(manager).create("seeds", config, {"seed": [3, 4]})
    runs = [manager.get(run_id) for run_id in sweep.run_ids]
    assert runs[0].batch == runs[1].batch == sweep.run_ids
    wait_until(lambda: all(run.thread is not None for run in runs))
    assert runs[0].thread is runs[1].thread  # one thread drives the one session
    for run in runs:
        assert manager.controls.wait(run.id, timeout=60).status is RunStatus.FINISHED
        stored = [without_timing(strict_json(t)) for t in manager.history.records(run.id)]
        trainer = Trainer(TrainConfig.from_dict({**config, "seed": run.config.seed}))
        engine = [
            without_timing(strict_json(__import__("synthgrad_core").dumps(r))) for r in trainer
        ]
        assert len(stored) == len(engine)
        for mine, theirs in zip(stored, engine, strict=True):
            assert mine.keys() == theirs.keys()
            for key, value in theirs.items():
                if isinstance(value, float):
                    assert mine[key] == pytest.approx(value, rel=1e-9, nan_ok=True), key
        assert run.summary["accuracy"] == pytest.approx(trainer.summary()["accuracy"], rel=1e-9)
