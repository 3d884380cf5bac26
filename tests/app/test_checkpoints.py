"""Checkpoints in the store and forks from any step, on every executor and after a restart."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.runs.branches import Branches
from app.runs.manager import RunManager
from app.runs.run import Run
from app.runs.status import RunStatus
from app.runs.sweeps import Sweeps
from app.settings import Settings
from app.storage.checkpoints import Checkpoints, kept, pack, unpack
from app.storage.store import Store
from support.live import strict_json
from support.waiting import wait_until
from synthgrad_core import TrainConfig, Trainer, without_timing

FINISHING = {"dataset": "addition", "bits": 6, "examples": 300, "epochs": 40, "seed": 5}
#: dni on digits with a module learning rate that runs away at step 224 (seed 1)
DIVERGING = {
    "dataset": "digits",
    "method": "dni",
    "examples": 600,
    "epochs": 20,
    "seed": 1,
    "sg_learning_rate": 0.08,
}


@pytest.fixture(params=["thread", "process", "ray"])
def executor(request: pytest.FixtureRequest) -> str:
    if request.param == "ray":
        request.getfixturevalue("ray_instance")
    return str(request.param)


def ended(manager: RunManager, run: Run) -> Run:
    return manager.controls.wait(run.id, timeout=120)


def stored(manager: RunManager, run_id: str) -> list[dict[str, object]]:
    return [without_timing(strict_json(t)) for t in manager.history.records(run_id)]


def status(client: TestClient, run_id: str) -> str:
    return str(client.get(f"/api/runs/{run_id}").json()["status"])


def test_finished_and_diverged_runs_fork_at_an_earlier_step_after_a_restart(
    executor: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = Settings(
        db=str(tmp_path / "x.sqlite3"),
        executor=executor,
        data_root=str(tmp_path),
        checkpoint_seconds=0.02,
    )
    manager = RunManager(settings).start()
    finished, token = manager.create(FINISHING)
    diverged, _ = manager.create(DIVERGING, token=token)
    assert ended(manager, finished).status is RunStatus.FINISHED
    assert ended(manager, diverged).status is RunStatus.DIVERGED
    steps = manager.checkpoints.table.steps(finished.id)
    assert steps[0] == 0 and steps[-1] == finished.step  # its start, its end
    assert len(steps) >= 3  # and at the cadence
    kept = manager.checkpoints.table.steps(diverged.id)
    assert kept and kept[-1] < diverged.step  # the last finite state, before the divergence
    manager.close()

    manager = RunManager(settings).start()  # a restart: only the store remains
    request.addfinalizer(manager.close)
    branches = Branches(manager)
    for parent, step in ((finished, steps[1] + 7), (diverged, diverged.step - 1)):
        start = manager.checkpoints.table.at_or_before(parent.id, step)
        assert start is not None and 0 < start.step <= step  # restored, then replayed
        branch, _ = branches.fork(parent.id, token, step=step)
        assert branch.fork_of == {"run": parent.id, "step": step}
        assert ended(manager, branch).status is manager.get(parent.id).status
        assert stored(manager, branch.id) == stored(manager, parent.id)[step:]


def test_a_branch_still_queued_at_a_restart_starts_from_its_parents_checkpoints(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = Settings(
        db=str(tmp_path / "x.sqlite3"),
        executor="thread",
        max_concurrent_runs=1,
        checkpoint_seconds=0.02,
    )
    manager = RunManager(settings).start()
    parent, token = manager.create(FINISHING)
    assert ended(manager, parent).status is RunStatus.FINISHED
    step = manager.checkpoints.table.steps(parent.id)[1] + 3
    blocker, _ = manager.create({**FINISHING, "epochs": 2000}, token=token)  # holds the slot
    branch, _ = Branches(manager).fork(parent.id, token, step=step)
    assert branch.status is RunStatus.QUEUED
    manager.close()
    manager = RunManager(settings).start()
    request.addfinalizer(manager.close)
    assert manager.get(blocker.id).status is RunStatus.INTERRUPTED
    assert ended(manager, manager.get(branch.id)).status is RunStatus.FINISHED
    assert stored(manager, branch.id) == stored(manager, parent.id)[step:]


def test_forks_around_a_live_knob_change_start_with_the_knobs_of_their_step(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = Settings(db=str(tmp_path / "x.sqlite3"), executor="thread", checkpoint_seconds=60)
    manager = RunManager(settings).start()
    request.addfinalizer(manager.close)
    run, token = manager.create(FINISHING)
    wait_until(lambda: run.step >= 300, 30, "the run to pass step 300", every=0.005)
    manager.controls.pause(run.id, token)
    changed_after = manager.controls.wait(run.id, timeout=30).step
    Branches(manager).configure(run.id, token, {"learning_rate": 1.0})
    manager.controls.resume(run.id, token)
    assert ended(manager, run).status is RunStatus.FINISHED
    parent = stored(manager, run.id)
    assert "config_change" in parent[changed_after]  # the first step with the new rate
    # No checkpoint at the cadence (60 s): only the start, the change, the end.
    assert manager.checkpoints.table.steps(run.id) == [0, changed_after, run.step]
    # After the change the branch trains with the new rate, as its parent did.
    after, _ = Branches(manager).fork(run.id, token, step=changed_after + 100)
    assert after.config.learning_rate == 1.0
    assert ended(manager, after).status is RunStatus.FINISHED
    assert stored(manager, after.id) == parent[changed_after + 100 :]
    # Before it, with the rate of then (replayed from step 0), up to the parent's change;
    # the parent's change is not the branch's.
    before, _ = Branches(manager).fork(run.id, token, step=changed_after - 100)
    assert before.config.learning_rate == TrainConfig(**FINISHING).resolve().learning_rate
    assert ended(manager, before).status is RunStatus.FINISHED
    branch = stored(manager, before.id)
    assert branch[:100] == parent[changed_after - 100 : changed_after]
    assert branch[100]["loss"] == parent[changed_after]["loss"]  # the step before it applies
    assert branch[101] != parent[changed_after + 1]


def test_a_fork_from_step_zero_of_a_run_equals_the_run(tmp_path: Path) -> None:
    settings = Settings(db=str(tmp_path / "x.sqlite3"), executor="thread")
    with_manager = RunManager(settings).start()
    try:
        run, token = with_manager.create(FINISHING)
        assert ended(with_manager, run).status is RunStatus.FINISHED
        branch, _ = Branches(with_manager).fork(run.id, token, step=0)
        assert ended(with_manager, branch).status is RunStatus.FINISHED
        assert stored(with_manager, branch.id) == stored(with_manager, run.id)
    finally:
        with_manager.close()


def test_forks_from_a_step_it_cannot_start_from_are_refused_naming_why(
    client: TestClient,
) -> None:
    run = client.post("/api/runs", json={"config": FINISHING}).json()
    wait_until(lambda: status(client, run["id"]) == "finished", 60, "the run to finish")
    stored = client.get(f"/api/runs/{run['id']}").json()["checkpoints"]
    assert stored["steps"][-1] == 960 and 0 < stored["bytes"] <= stored["owner_bytes"]
    beyond = client.post(f"/api/runs/{run['id']}/fork", json={"step": 10**6})
    assert beyond.status_code == 422 and "960" in beyond.text
    assert beyond.json()["detail"][0]["loc"] == ["body", "step"]
    pipelined = {**FINISHING, "method": "dni", "execution": "pipelined", "workers": 2}
    two = client.post("/api/runs", json={"config": pipelined}).json()
    wait_until(lambda: status(client, two["id"]) == "finished", 60, "the pipelined run to finish")
    refused = client.post(f"/api/runs/{two['id']}/fork", json={"step": 100})
    assert refused.status_code == 422
    assert "2 workers" in refused.text and "in flight" in refused.text
    negative = client.post(f"/api/runs/{run['id']}/fork", json={"step": -1})
    assert negative.status_code == 422 and "step" in negative.text


def test_a_checkpoint_unpacks_to_the_exact_state_it_packed() -> None:
    trainer = Trainer(TrainConfig(dataset="addition", bits=4, examples=50, epochs=2))
    for _ in range(7):
        trainer.step()
    state = trainer.capture()
    back = unpack(pack(state))
    assert back.meta == state.meta and back.arrays.keys() == state.arrays.keys()
    for name, array in state.arrays.items():
        assert back.arrays[name].dtype == array.dtype and np.array_equal(back.arrays[name], array)


def test_thinning_keeps_the_newest_and_ever_fewer_older_ones_and_never_needs_a_dropped_one() -> (
    None
):
    stored: list[int] = []
    for seq in range(1000):  # as a run adds them: each addition thins the rest
        stored = kept([*stored, seq])
    assert stored[:4] == [999, 998, 997, 996] and 0 in stored
    assert len(stored) < 4 + 2 * 10 + 2  # RECENT + RECENT / 2 per doubling of age
    gaps = [a - b for a, b in itertools.pairwise(stored)]
    assert gaps == sorted(gaps)  # never closer further back
    assert stored == kept(list(range(1000)))  # thinning as it goes = thinning at once


def test_checkpoints_go_with_their_deleted_run(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "x.sqlite3"))
    table = Checkpoints(store)
    trainer = Trainer(TrainConfig(dataset="addition", bits=4, examples=50, epochs=2))
    trainer.step()
    store.insert_run(
        {
            "id": "r1",
            "name": "n",
            "status": "finished",
            "config": trainer.config.as_dict(),
            "owner_hash": "h",
            "created_at": 0.0,
            "total_steps": 10,
            "step": 1,
            "summary": {},
        }
    )
    size = table.add("r1", trainer.capture())
    assert table.bytes_of("r1") == size == table.bytes_of_owner("h") > 0
    store.delete_run("r1")
    while store.purge():
        pass
    assert table.steps("r1") == [] and table.bytes_of_owner("h") == 0
    store.close()


def test_each_seed_of_a_batch_keeps_checkpoints_and_forks_from_them(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A sweep's seeds train as one batch; each keeps its own checkpoints (the state that
    seed alone would hold), so a fork at a late step restores one and replays only the
    steps after it, to the parent's records."""
    settings = Settings(db=str(tmp_path / "b.sqlite3"), executor="process", checkpoint_seconds=0.02)
    manager = RunManager(settings).start()
    request.addfinalizer(manager.close)
    sweep, token = Sweeps(manager).create("seeds", FINISHING, {"seed": [3, 4]})
    runs = [manager.get(run_id) for run_id in sweep.run_ids]
    assert runs[0].batch is not None and runs[0].batch == runs[1].batch  # one batch
    for run in runs:
        assert ended(manager, run).status is RunStatus.FINISHED
    branches = Branches(manager)
    for run in runs:
        steps = manager.checkpoints.table.steps(run.id)
        assert steps[0] == 0 and steps[-1] == run.step and len(steps) >= 3
        alone = Trainer(TrainConfig.from_dict({**FINISHING, "seed": run.config.seed}))
        start = manager.checkpoints.table.at_or_before(run.id, steps[1])
        assert start is not None and start.step == steps[1]
        for _ in range(steps[1]):
            alone.step()
        for name, array in alone.capture().arrays.items():  # the seed's own state
            np.testing.assert_allclose(start.arrays[name], array, rtol=0, atol=1e-9)
        step = steps[1] + 5
        branch, _ = branches.fork(run.id, token, step=step)
        assert ended(manager, branch).status is RunStatus.FINISHED
        mine, parents = stored(manager, branch.id), stored(manager, run.id)[step:]
        assert len(mine) == len(parents)
        for got, want in zip(mine, parents, strict=True):
            assert got["step"] == want["step"]
            assert got["loss"] == pytest.approx(want["loss"], rel=1e-9)
