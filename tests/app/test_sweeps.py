"""Sweeps through the API: a grid of runs created at once, its groups, its controls, its limits."""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from support.waiting import wait_until

from .conftest import SAME_ORIGIN
from .test_api import create, wait_status

FAST = {"dataset": "digits", "hidden": [32], "epochs": 2}
GRID = {"method": ["backprop", "cdni"], "seed": [1, 2, 3]}


def create_sweep(
    client: TestClient, config: dict[str, Any], grid: dict[str, Any], batch_seeds: bool = True
) -> Any:
    body = {"name": "s", "config": config, "grid": grid, "batch_seeds": batch_seeds}
    response = client.post("/api/sweeps", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def sweep_when(
    client: TestClient, sweep_id: str, ok: Callable[[Any], bool], what: str, timeout: float = 30
) -> Any:
    """The sweep once `ok(sweep)` holds."""

    def check() -> Any:
        sweep = client.get(f"/api/sweeps/{sweep_id}").json()
        return sweep if ok(sweep) else None

    return wait_until(check, timeout, f"sweep {sweep_id}: {what}")


def wait_sweep(client: TestClient, sweep_id: str, status: str, timeout: float = 60) -> Any:
    return sweep_when(client, sweep_id, lambda s: s["status"] == status, status, timeout)


def no_run_running(sweep: Any) -> bool:
    return all(r["status"] != "running" for r in sweep["runs"])


def test_a_2x3_grid_makes_6_runs_and_2_groups_of_their_numbers(client: TestClient) -> None:
    created = create_sweep(client, FAST, GRID)
    assert created["owner_token"] and len(created["runs"]) == 6
    points = [(r["point"]["method"], r["point"]["seed"]) for r in created["runs"]]
    assert sorted(points) == sorted((m, s) for m in GRID["method"] for s in GRID["seed"])
    for run in created["runs"]:
        assert run["sweep_id"] == created["id"]
        assert run["config"]["method"] == run["point"]["method"]
        assert run["config"]["seed"] == run["point"]["seed"]
        assert run["config"]["hidden"] == [32]
    sweep = wait_sweep(client, created["id"], "finished")
    runs = {r["id"]: client.get(f"/api/runs/{r['id']}").json() for r in sweep["runs"]}
    assert {r["status"] for r in runs.values()} == {"finished"}
    assert len(sweep["groups"]) == 2
    for group in sweep["groups"]:
        members = [r for r in runs.values() if r["config"]["method"] == group["method"]]
        held_out = [r["summary"]["test_accuracy"] for r in members]
        assert group["n"] == group["done"] == 3
        assert group["test_accuracy_mean"] == statistics.fmean(held_out)
        assert (group["test_accuracy_min"], group["test_accuracy_max"]) == (
            min(held_out),
            max(held_out),
        )
        assert group["accuracy_max"] == max(r["summary"]["accuracy"] for r in members)
        cosines = [r["summary"]["fidelity"]["cos_h1"] for r in members]
        assert group["fidelity"]["cos_h1"] == statistics.fmean(cosines)
    backprop = next(g for g in sweep["groups"] if g["method"] == "backprop")
    assert backprop["fidelity"]["cos_h1"] == 1.0  # backprop's signal is the true gradient


def test_viewers_cannot_control_a_sweep_or_its_runs(client: TestClient) -> None:
    created = create_sweep(client, {**FAST, "epochs": 200}, GRID)
    viewer = TestClient(client.app, headers=SAME_ORIGIN)  # no owner cookie
    assert viewer.get(f"/api/sweeps/{created['id']}").json()["can_control"] is False
    for action in ("pause", "resume", "stop"):
        assert viewer.post(f"/api/sweeps/{created['id']}/{action}").status_code == 403
    assert viewer.delete(f"/api/sweeps/{created['id']}").status_code == 403
    for run in created["runs"]:
        assert viewer.post(f"/api/runs/{run['id']}/stop").status_code == 403
    owner = {"authorization": f"Bearer {created['owner_token']}"}
    stopped = client.post(f"/api/sweeps/{created['id']}/stop", headers=owner)
    assert stopped.status_code == 200
    sweep = wait_sweep(client, created["id"], "ended")  # not "finished": some were stopped
    assert {r["status"] for r in sweep["runs"]} <= {"stopped", "finished"}
    assert "stopped" in {r["status"] for r in sweep["runs"]}
    for group in sweep["groups"]:  # a stopped run's numbers are partial: not in the means
        members = [r for r in sweep["runs"] if r["point"]["method"] == group["method"]]
        assert group["done"] == sum(r["status"] == "finished" for r in members)
        assert group["n"] == 3


def test_pause_holds_every_run_and_resume_finishes_them(client: TestClient) -> None:
    created = create_sweep(client, {**FAST, "epochs": 100}, {"seed": [1, 2]})
    wait_sweep(client, created["id"], "running", timeout=30)
    client.post(f"/api/sweeps/{created['id']}/pause")
    wait_sweep(client, created["id"], "paused")
    # Each run pauses at its own step.
    sweep = sweep_when(client, created["id"], no_run_running, "every run paused")
    held = {r["id"]: r["step"] for r in sweep["runs"]}
    time.sleep(0.3)
    again = client.get(f"/api/sweeps/{created['id']}").json()
    assert {r["id"]: r["step"] for r in again["runs"]} == held
    assert {r["status"] for r in again["runs"]} == {"paused"}
    client.post(f"/api/sweeps/{created['id']}/resume")
    done = wait_sweep(client, created["id"], "finished")
    assert all(r["step"] == r["total_steps"] for r in done["runs"])


def test_a_bad_grid_is_a_422_naming_the_field_and_creates_nothing(client: TestClient) -> None:
    before = len(client.get("/api/runs").json())
    bad = [
        ({"learning_rate": [0.1, -1.0]}, ["body", "grid", "learning_rate", 1]),
        ({"methods": ["dni"]}, ["body", "grid", "methods"]),
        ({"seed": list(range(97))}, ["body", "grid", "seed"]),
        (
            {"seed": list(range(40)), "method": ["dni", "cdni", "backprop"]},
            ["body", "grid", "method"],
        ),
        (
            {"hidden": [[32], [64]], "batch_size": [8, 16], "learning_rate": [0.1, 0.2]},
            ["body", "grid", "hidden"],
        ),
        # one point over the cost budget: the whole sweep is refused
        ({"hidden": [[32], [4096, 4096, 4096, 4096]], "batch_size": [4096]}, None),
    ]
    for grid, loc in bad:
        response = client.post("/api/sweeps", json={"config": {"dataset": "digits"}, "grid": grid})
        assert response.status_code == 422, (grid, response.text)
        if loc is not None:
            assert response.json()["detail"][0]["loc"] == loc
        else:
            assert "memory" in response.text
    assert len(client.get("/api/runs").json()) == before
    assert client.get("/api/sweeps").json() == []


def test_a_sweep_is_one_item_for_the_owners_limits(settings: Settings) -> None:
    limited = dataclasses.replace(settings, max_active_per_owner=2, max_concurrent_runs=1)
    with TestClient(create_app(limited), headers=SAME_ORIGIN) as client:
        long = {**FAST, "epochs": 500}
        create(client, long)  # one unfinished run
        created = create_sweep(client, long, {"seed": [1, 2, 3, 4, 5, 6]})  # one more item
        assert len(created["runs"]) == 6
        third = client.post("/api/runs", json={"config": long})
        assert third.status_code == 429 and "2 unfinished" in third.json()["detail"]
        client.post(f"/api/sweeps/{created['id']}/stop")


def test_the_stored_runs_cap_counts_every_run_of_a_sweep(settings: Settings) -> None:
    capped = dataclasses.replace(settings, max_stored_runs=5)
    with TestClient(create_app(capped), headers=SAME_ORIGIN) as client:
        response = client.post("/api/sweeps", json={"config": FAST, "grid": GRID})
        assert response.status_code == 429 and "at most 5 runs" in response.text
        assert client.get("/api/runs").json() == []


def test_a_sweep_and_its_runs_survive_a_restart_and_delete_together(settings: Settings) -> None:
    with TestClient(create_app(settings), headers=SAME_ORIGIN) as client:
        created = create_sweep(client, FAST, {"seed": [1, 2]})
        wait_sweep(client, created["id"], "finished")
        token = created["owner_token"]
    with TestClient(create_app(settings), headers=SAME_ORIGIN) as client:
        sweep = client.get(f"/api/sweeps/{created['id']}").json()
        assert [r["id"] for r in sweep["runs"]] == [r["id"] for r in created["runs"]]
        assert sweep["groups"][0]["done"] == 2 and sweep["status"] == "finished"
        owner = {"authorization": f"Bearer {token}"}
        assert client.delete(f"/api/sweeps/{created['id']}", headers=owner).status_code == 204
        assert client.get(f"/api/sweeps/{created['id']}").status_code == 404
        for run in created["runs"]:
            assert client.get(f"/api/runs/{run['id']}").status_code == 404


def test_a_paused_sweep_holds_its_queued_runs_until_it_resumes(settings: Settings) -> None:
    one_at_a_time = dataclasses.replace(settings, max_concurrent_runs=1)
    with TestClient(create_app(one_at_a_time), headers=SAME_ORIGIN) as client:
        # seeds alone: a batch of them would take the one slot together
        created = create_sweep(client, {**FAST, "epochs": 100}, {"seed": [1, 2, 3]}, False)
        sweep_id = created["id"]
        wait_sweep(client, sweep_id, "running")
        client.post(f"/api/sweeps/{sweep_id}/pause")
        wait_sweep(client, sweep_id, "paused")
        sweep = sweep_when(client, sweep_id, no_run_running, "no run running")
        # Someone else's run ends meanwhile and frees the only slot: the sweep's queued
        # runs must not take it while the sweep is paused.
        other = create(client, {**FAST, "epochs": 1})
        paused = next(r for r in sweep["runs"] if r["status"] == "paused")
        owner = {"authorization": f"Bearer {created['owner_token']}"}
        client.post(f"/api/runs/{paused['id']}/stop", headers=owner)  # frees the slot
        wait_status(client, other["id"], {"finished"})
        time.sleep(0.5)
        statuses = [r["status"] for r in client.get(f"/api/sweeps/{sweep_id}").json()["runs"]]
        assert sorted(statuses) == ["queued", "queued", "stopped"]
        client.post(f"/api/sweeps/{sweep_id}/resume")
        done = wait_sweep(client, sweep_id, "ended")
        assert sorted(r["status"] for r in done["runs"]) == ["finished", "finished", "stopped"]


def numbers(run: dict[str, Any]) -> dict[str, Any]:
    summary = run["summary"]
    return {k: summary[k] for k in ("loss", "accuracy", "test_accuracy")} | summary["fidelity"]


def test_a_groups_seeds_train_as_one_batch_with_the_numbers_of_seeds_alone(
    client: TestClient,
) -> None:
    grid = {"method": ["backprop", "dni"], "seed": [1, 2, 3]}
    swept = {}
    for batch_seeds in (True, False):
        created = create_sweep(client, FAST, grid, batch_seeds)
        swept[batch_seeds] = wait_sweep(client, created["id"], "finished")
    batched, alone = swept[True], swept[False]
    for run in batched["runs"]:  # each group is one batch of its three seeds
        partners = [r for r in batched["runs"] if r["point"]["method"] == run["point"]["method"]]
        assert sorted(run["batch"]) == sorted(r["id"] for r in partners)
    assert all(run["batch"] is None for run in alone["runs"])
    for mine, theirs in zip(batched["runs"], alone["runs"], strict=True):
        assert mine["point"] == theirs["point"]
        assert mine["step"] == mine["total_steps"] == theirs["step"]
        for key, value in numbers(theirs).items():
            assert numbers(mine)[key] == pytest.approx(value, rel=1e-9), key
        records = client.get(f"/api/runs/{mine['id']}/metrics").json()["records"]
        own = client.get(f"/api/runs/{theirs['id']}/metrics").json()["records"]
        assert len(records) == len(own) == mine["total_steps"]
        assert records[-1]["test_accuracy"] == pytest.approx(own[-1]["test_accuracy"], rel=1e-9)
    for mine, theirs in zip(batched["groups"], alone["groups"], strict=True):
        assert mine["test_accuracy_mean"] == pytest.approx(theirs["test_accuracy_mean"], rel=1e-9)


def test_pause_resume_and_stop_of_one_seed_act_on_its_whole_batch(client: TestClient) -> None:
    created = create_sweep(client, {**FAST, "epochs": 300}, {"seed": [1, 2, 3]})
    first, *others = created["runs"]
    wait_sweep(client, created["id"], "running")
    wait_status(client, first["id"], {"running"})
    assert client.post(f"/api/runs/{first['id']}/pause").status_code == 200
    wait_sweep(client, created["id"], "paused")
    sweep = sweep_when(
        client,
        created["id"],
        lambda s: {r["status"] for r in s["runs"]} == {"paused"},
        "every seed paused",
    )
    steps = {r["id"]: r["step"] for r in sweep["runs"]}
    assert len(set(steps.values())) == 1  # one computation: every seed at the same step
    client.post(f"/api/runs/{others[0]['id']}/resume")
    for run in created["runs"]:
        wait_status(client, run["id"], {"running"})
    client.post(f"/api/runs/{others[1]['id']}/stop")
    ended = wait_sweep(client, created["id"], "ended")
    assert {r["status"] for r in ended["runs"]} == {"stopped"}
