"""Persistence across a crash: SIGKILL mid-run, restart on the same database."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest

from support.live import descendants, server_process, strict_json
from support.waiting import wait_until


@pytest.mark.timeout(180)
def test_killed_server_restarts_with_run_interrupted_and_metrics_kept(tmp_path: Path) -> None:
    db = str(tmp_path / "crash.sqlite3")
    config = {"dataset": "addition", "bits": 8, "examples": 1000, "epochs": 2000}
    with server_process(db) as (url, process):
        run = httpx.post(f"{url}/api/runs", json={"name": "doomed", "config": config}).json()
        run_id = run["id"]

        # Training, with records already stored: a kill now has something to keep.
        wait_until(
            lambda: httpx.get(f"{url}/api/runs/{run_id}/metrics").json()["count"] > 0,
            60,
            "the run's first records to be stored",
        )
        before = httpx.get(f"{url}/api/runs/{run_id}").json()
        assert before["status"] == "running"
        trainers = descendants(process.pid)  # the fork server and the run's process
        assert trainers
        process.send_signal(signal.SIGKILL)
        killed_at_step = before["step"]
        rate = before["steps_per_second"]
        process.wait(timeout=10)
        # They notice the closed pipe and exit: no orphans.
        wait_until(
            lambda: not any(Path(f"/proc/{pid}").exists() for pid in trainers),
            15,
            "the training processes to exit after the server",
        )

    with server_process(db) as (url, _):
        after = httpx.get(f"{url}/api/runs/{run_id}").json()
        assert after["status"] == "interrupted" and after["name"] == "doomed"
        metrics = strict_json(httpx.get(f"{url}/api/runs/{run_id}/metrics").text)
        steps = [r["step"] for r in metrics["records"]]
        assert steps == list(range(1, len(steps) + 1))  # no hole in what was kept
        # At most one second of training lost (plus the moment between our GET and the kill).
        assert steps[-1] >= killed_at_step - rate * 1.0
        csv_rows = httpx.get(f"{url}/api/runs/{run_id}/metrics?format=csv").text.splitlines()
        assert len(csv_rows) == len(steps) + 1
        # An interrupted run can be neither paused nor resumed, but it can be deleted.
        token = {"Authorization": f"Bearer {run['owner_token']}"}
        assert httpx.post(f"{url}/api/runs/{run_id}/resume", headers=token).status_code == 409
        print(
            json.dumps(
                {"killed_at_step": killed_at_step, "stored_to": steps[-1], "steps_per_second": rate}
            )
        )
