"""Forks and live knobs over HTTP: who may, when, what may change, and what the CSV keeps."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from fastapi.testclient import TestClient

from support.live import strict_json
from support.waiting import wait_until

CONFIG = {"dataset": "addition", "bits": 6, "examples": 300, "epochs": 30, "seed": 3}


def pause_past(client: TestClient, run_id: str, step: int) -> dict[str, Any]:
    """Let the run train past `step`, pause it, and return it once paused."""
    wait_until(
        lambda: client.get(f"/api/runs/{run_id}").json()["step"] >= step,
        30,
        f"run {run_id} to pass step {step}",
    )
    client.post(f"/api/runs/{run_id}/pause")
    wait_until(
        lambda: client.get(f"/api/runs/{run_id}").json()["status"] == "paused",
        30,
        f"run {run_id} to pause",
    )
    return client.get(f"/api/runs/{run_id}").json()


def paused_run(client: TestClient, **extra: Any) -> dict[str, Any]:
    run = client.post("/api/runs", json={"config": {**CONFIG, **extra}}).json()
    return pause_past(client, run["id"], 40)


def finished(client: TestClient, run_id: str) -> dict[str, Any]:
    """The run once it has ended, whichever way."""

    def ended() -> dict[str, Any] | None:
        run = client.get(f"/api/runs/{run_id}").json()
        return None if run["status"] in ("queued", "running") else run

    return wait_until(ended, 60, f"run {run_id} to end")


def records(client: TestClient, run_id: str) -> list[dict[str, Any]]:
    out = client.get(f"/api/runs/{run_id}/metrics").json()["records"]
    return [
        {k: v for k, v in r.items() if not k.startswith(("wall", "unix", "t_", "time"))}
        for r in out
    ]


def test_a_fork_without_changes_repeats_its_parent_from_the_fork_step(client: TestClient) -> None:
    parent = paused_run(client)
    answer = client.post(f"/api/runs/{parent['id']}/fork")
    assert answer.status_code == 201, answer.text
    branch = answer.json()
    assert branch["fork_of"] == {"run": parent["id"], "step": parent["step"]}
    assert branch["owner_token"] and branch["id"] != parent["id"]
    assert client.get(f"/api/runs/{parent['id']}").json()["status"] == "paused"
    assert finished(client, branch["id"])["status"] == "finished"
    client.post(f"/api/runs/{parent['id']}/resume")
    assert finished(client, parent["id"])["status"] == "finished"
    mine, theirs = records(client, branch["id"]), records(client, parent["id"])
    assert mine[0]["step"] == parent["step"] + 1
    assert len(mine) == len(theirs) - parent["step"]
    for got, want in zip(mine, theirs[parent["step"] :], strict=True):
        assert got.keys() == want.keys()
        for key, value in want.items():
            if isinstance(value, float):
                assert abs(got[key] - value) <= 1e-12 * max(1.0, abs(value)), key
            else:
                assert got[key] == value, key
    listed = {r["id"]: r for r in client.get("/api/runs").json()}
    assert listed[branch["id"]]["fork_of"]["run"] == parent["id"]


def test_a_fork_to_backprop_trains_with_backprop_from_the_parents_weights(
    client: TestClient,
) -> None:
    parent = paused_run(client, method="dni")
    body = {"name": "what would backprop do?", "config": {"method": "backprop"}}
    branch = client.post(f"/api/runs/{parent['id']}/fork", json=body).json()
    assert branch["name"] == "what would backprop do?"
    assert branch["config"]["method"] == "backprop" and branch["config"]["hidden"] == [128, 64]
    finished(client, branch["id"])
    first = records(client, branch["id"])[0]
    assert first["step"] == parent["step"] + 1 and first["cos_h1"] == 1.0  # the true gradient


def test_who_may_fork_and_when(client: TestClient, settings: Any) -> None:
    running = client.post("/api/runs", json={"config": {**CONFIG, "epochs": 500}}).json()
    assert client.post(f"/api/runs/{running['id']}/fork").status_code == 409
    parent = paused_run(client)
    viewer = {"Authorization": "Bearer not-the-owner"}  # a token that owns nothing
    assert client.post(f"/api/runs/{parent['id']}/fork", headers=viewer).status_code == 403
    knob = client.patch(f"/api/runs/{parent['id']}/config", json={"sg_scale": 2}, headers=viewer)
    assert knob.status_code == 403
    assert client.post("/api/runs/nope/fork").status_code == 404
    bad = client.post(f"/api/runs/{parent['id']}/fork", json={"config": {"hidden": [32]}})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "hidden"
    assert "cannot change" in bad.json()["detail"][0]["msg"]
    for field, value in (("dataset", "digits"), ("activation", "relu"), ("seed", 9)):
        bad = client.post(f"/api/runs/{parent['id']}/fork", json={"config": {field: value}})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == field
    out = client.post(f"/api/runs/{parent['id']}/fork", json={"config": {"learning_rate": -1}})
    assert out.status_code == 422
    client.post(f"/api/runs/{running['id']}/stop")


def test_knobs_of_a_run_change_in_place_and_reach_its_csv(client: TestClient) -> None:
    parent = paused_run(client, method="dni")
    changed = client.patch(f"/api/runs/{parent['id']}/config", json={"sg_learning_rate": 0.01})
    assert changed.status_code == 200, changed.text
    assert changed.json()["config"]["sg_learning_rate"] == 0.01
    bad = client.patch(f"/api/runs/{parent['id']}/config", json={"hidden": [3]})
    assert bad.status_code == 422
    client.post(f"/api/runs/{parent['id']}/resume")
    assert finished(client, parent["id"])["status"] == "finished"
    text = client.get(f"/api/runs/{parent['id']}/metrics?format=csv").text
    rows = list(csv.DictReader(io.StringIO(text)))
    marked = [row for row in rows if row["config_change"]]
    assert [row["config_change"] for row in marked] == ["sg_learning_rate 0.003 → 0.01"]
    assert int(marked[0]["step"]) == parent["step"] + 1
    late = client.patch(f"/api/runs/{parent['id']}/config", json={"sg_scale": 2})
    assert late.status_code == 409
    stored = [strict_json(t) for t in client.app.state.manager.history.records(parent["id"])]
    assert sum("config_change" in r for r in stored) == 1


def test_the_run_page_shows_each_form_field_once_by_id(client: TestClient) -> None:
    # The fork dialog and the knobs form render some fields twice: their ids must differ,
    # or labels (and assistive technology) reach the wrong input.
    run = client.post("/api/runs", json={"config": {**CONFIG, "epochs": 1}}).json()
    html = client.get(f"/runs/{run['id']}").text
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert "knob-field-sg_scale" in ids and "field-sg_scale" in ids
    assert sorted({i for i in ids if ids.count(i) > 1}) == []


def test_a_pipelined_run_forks_with_one_worker_and_says_why_not_with_two(
    client: TestClient,
) -> None:
    two = paused_run(client, method="dni", execution="pipelined", workers=2)
    refused = client.post(f"/api/runs/{two['id']}/fork")
    assert refused.status_code == 409 and "one worker" in refused.json()["detail"]
    client.post(f"/api/runs/{two['id']}/stop")  # paused runs hold training slots (2 here)
    one = paused_run(client, method="dni", execution="pipelined", workers=1)
    branch = client.post(f"/api/runs/{one['id']}/fork", json={"config": {"method": "backprop"}})
    assert branch.status_code == 201, branch.text
    assert finished(client, branch.json()["id"])["status"] == "finished"
    assert records(client, branch.json()["id"])[0]["step"] == one["step"] + 1


def test_a_branch_outlives_its_deleted_parent(client: TestClient) -> None:
    parent = paused_run(client)
    branch = client.post(f"/api/runs/{parent['id']}/fork").json()
    page = client.get(f"/runs/{parent['id']}").text
    assert f'href="/runs/{branch["id"]}"' in page  # the parent links its branch
    assert client.delete(f"/api/runs/{parent['id']}").status_code == 204
    kept = client.get(f"/api/runs/{branch['id']}").json()
    assert kept["fork_of"] == {"run": parent["id"], "step": parent["step"]}
    page = client.get(f"/runs/{branch['id']}").text
    assert "Fork of a deleted run at step" in page and "Compare with parent" not in page
    client.post(f"/api/runs/{branch['id']}/stop")


def test_a_seed_of_a_batch_forks_into_a_run_of_its_own_that_repeats_it(
    client: TestClient,
) -> None:
    # A batch's capture is a capture per seed: the fork takes this seed's state alone.
    body = {"config": {**CONFIG, "epochs": 60}, "grid": {"seed": [4, 5]}}
    sweep = client.post("/api/sweeps", json=body).json()
    first, second = sweep["runs"]
    parent = pause_past(client, second["id"], 30)  # pauses the batch
    assert parent["batch"] == [first["id"], second["id"]]
    branch = client.post(f"/api/runs/{second['id']}/fork").json()
    assert branch["batch"] is None and branch["config"]["seed"] == 5
    assert finished(client, branch["id"])["status"] == "finished"
    client.post(f"/api/runs/{first['id']}/resume")  # resumes the batch
    assert finished(client, second["id"])["status"] == "finished"
    mine, theirs = records(client, branch["id"]), records(client, second["id"])
    assert mine[0]["step"] == parent["step"] + 1
    assert len(mine) == len(theirs) - parent["step"]
    for got, want in zip(mine, theirs[parent["step"] :], strict=True):
        for key, value in want.items():
            if isinstance(value, float):
                assert abs(got[key] - value) <= 1e-9 * max(1.0, abs(value)), key
