"""Limits a visitor meets: cost budget, quotas, pace, body size, origins, headers, fields, paths."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.runs.quotas import FairQueue, RateLimiter
from app.settings import Settings
from app.storage.metrics import csv_cell
from app.web.guards import CSP, OncePerSecond
from synthgrad_core.data import MNIST_FILES

from .conftest import ADMIN, SAME_ORIGIN
from .test_api import LONG, SHORT, create, wait_status

BEARER = {"Authorization": f"Bearer {ADMIN}"}
#: The largest config the field bounds allow: 8 GB after setup in the adversarial test.
HUGE = {
    "dataset": "digits",
    "method": "cdni",
    "hidden": [4096] * 8,
    "batch_size": 4096,
    "sg_hidden": 4096,
    "optimizer": "adam",
    "epochs": 1,
}


@pytest.fixture
def make_client(settings: Settings) -> Iterator[object]:
    clients: list[TestClient] = []

    def make(**changes: object) -> TestClient:
        app = create_app(dataclasses.replace(settings, **changes))  # type: ignore[arg-type]
        client = TestClient(app, headers=SAME_ORIGIN)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_a_config_over_the_memory_budget_is_422_naming_estimate_and_limit(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    for headers in ({}, BEARER):  # the budget holds for the admin too; settings raise it
        response = client.post("/api/runs", json={"config": HUGE}, headers=headers)
        assert response.status_code == 422
        (error,) = response.json()["detail"]
        assert error["loc"] == ["body", "config", "hidden"]
        assert "GiB of memory" in error["msg"] and "allows 1.0 GiB per run" in error["msg"]
    roomy = make_client(max_run_memory=2**40, max_run_seconds=1e9)
    accepted = roomy.post("/api/runs", json={"config": {**HUGE, "hidden": [64]}})
    assert accepted.status_code == 201


def test_a_config_over_the_time_budget_is_422(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(max_run_seconds=60, max_total_steps=10**9)
    config = {"dataset": "digits", "hidden": [2048, 2048], "epochs": 2000}
    response = client.post("/api/runs", json={"config": config})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "epochs"
    assert "allows 1 min per run" in response.json()["detail"][0]["msg"]


def test_an_owner_has_at_most_n_unfinished_runs(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(max_active_per_owner=2, max_concurrent_runs=1)
    first = create(client, LONG)
    create(client, LONG)
    refused = client.post("/api/runs", json={"config": LONG})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "at most 2" in refused.json()["detail"]
    other = TestClient(client.app, headers=SAME_ORIGIN)  # another visitor is not held back
    assert other.post("/api/runs", json={"config": SHORT}).status_code == 201
    assert client.post("/api/runs", json={"config": SHORT}, headers=BEARER).status_code == 201
    owner = {"Authorization": f"Bearer {first['owner_token']}"}
    client.post(f"/api/runs/{first['id']}/stop", headers=owner)  # an ended run frees a place
    wait_status(client, first["id"], {"stopped"})
    assert client.post("/api/runs", json={"config": SHORT}).status_code == 201


def test_creation_is_paced_per_address_with_retry_after(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(create_rate=3, max_active_per_owner=0)
    for _ in range(3):
        # Three visitors behind one address (a classroom's NAT): each a fresh cookie jar.
        visitor = TestClient(client.app, headers=SAME_ORIGIN)
        assert visitor.post("/api/runs", json={"config": SHORT}).status_code == 201
    refused = client.post("/api/runs", json={"config": SHORT})
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 20  # one token comes back in 20 s
    assert client.post("/api/runs", json={"config": SHORT}, headers=BEARER).status_code == 201
    # A refused request for a bad config spends nothing: it is a 422, not a 429.
    assert client.post("/api/runs", json={"config": {"epochs": 0}}).status_code == 422


def test_the_rate_limiter_refills_and_forgets() -> None:
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    limiter.take("a")
    limiter.take("a")
    with pytest.raises(Exception, match="try again in 30 s") as refused:
        limiter.take("a")
    assert refused.value.retry_after == 30  # type: ignore[attr-defined]
    limiter.take("b")  # other addresses are not affected
    now[0] = 30.0
    limiter.take("a")
    now[0] = 1000.0
    limiter.take("c")
    assert "a" not in limiter._buckets and "b" not in limiter._buckets  # full again: forgotten


def test_the_queue_is_served_round_robin_across_owners() -> None:
    queue = FairQueue()
    for i in range(4):
        queue.push("busy", f"busy-{i}")
    queue.push("other", "other-0")
    queue.push("third", "third-0")
    assert queue.remove("busy-3") and "busy-3" not in queue
    order = [queue.pop() for _ in range(len(queue))]
    assert order == ["busy-0", "other-0", "third-0", "busy-1", "busy-2"]
    assert queue.pop() is None


def test_a_body_over_the_limit_is_413_unread(client: TestClient) -> None:
    big = json.dumps({"config": SHORT, "name": "x" * 100_000})
    response = client.post("/api/runs", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and len(response.content) < 200
    # Without a Content-Length (chunked), the body is counted as it arrives.
    chunks = (big[i : i + 8192].encode() for i in range(0, len(big), 8192))
    streamed = client.post(
        "/api/runs", content=chunks, headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert client.get("/api/runs").json() == []  # nothing was created


def test_pages_and_the_api_send_security_headers(client: TestClient) -> None:
    for path in ("/", "/api/runs"):
        headers = client.get(path).headers
        assert headers["content-security-policy"] == CSP
        assert "script-src 'self'" in CSP and "frame-ancestors 'none'" in CSP
        assert "unsafe-eval" not in CSP and "'unsafe-inline'" not in CSP.split("style-src")[0]
        assert headers["referrer-policy"] == "same-origin"
        assert headers["x-frame-options"] == "DENY"


def test_cookie_controls_need_a_same_origin_request(settings: Settings) -> None:
    with TestClient(create_app(settings)) as browser:
        run = create(browser, LONG)  # the owner cookie is now in this jar
        url = f"/api/runs/{run['id']}/pause"
        evil = browser.post(url, headers={"Origin": "http://evil.example"})
        assert evil.status_code == 403
        bare = browser.post(url)  # no Origin and no Sec-Fetch-Site: not this site's page
        assert bare.status_code == 403
        fetch_meta = browser.post(url, headers={"Sec-Fetch-Site": "same-origin"})
        assert fetch_meta.status_code == 200
        browser.post(f"/api/runs/{run['id']}/resume", headers=SAME_ORIGIN)
        # A Bearer token is not ambient: it works from anywhere.
        token = {"Authorization": f"Bearer {run['owner_token']}", "Origin": "http://x.example"}
        assert browser.post(url, headers=token).status_code == 200


def test_the_owner_cookie_is_secure_over_https(settings: Settings) -> None:
    with TestClient(create_app(settings), base_url="https://testserver") as secure:
        cookie = secure.post("/api/runs", json={"config": SHORT}).headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    with TestClient(create_app(settings)) as plain:
        assert "Secure" not in plain.post("/api/runs", json={"config": SHORT}).headers["set-cookie"]


def test_unknown_fields_are_422_and_csv_cells_cannot_be_formulas(client: TestClient) -> None:
    run = create(client, SHORT)
    wait_status(client, run["id"], {"finished"})
    url = f"/api/runs/{run['id']}/metrics"
    for fields in ('=HYPERLINK("http://evil.example")', "loss,nope"):
        response = client.get(url, params={"fields": fields, "format": "csv"})
        assert response.status_code == 422 and response.json()["detail"][0]["loc"] == [
            "query",
            "fields",
        ]
    assert client.get(url, params={"fields": "loss,cos_h1"}).status_code == 200
    assert csv_cell("=1+1") == "'=1+1" and csv_cell("@SUM(A1)") == "'@SUM(A1)"
    assert csv_cell("-cmd") == "'-cmd" and csv_cell(-0.5) == -0.5 and csv_cell("plain") == "plain"


def test_data_path_stays_inside_the_data_root(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "datasets"
    (root / "mnist").mkdir(parents=True)
    confined = dataclasses.replace(settings, data_root=str(root))
    with TestClient(create_app(confined), headers=SAME_ORIGIN) as client:
        answers = []
        for path in ("/etc", "/nonexistent-folder", "../../", str(Path.home())):
            config = {"dataset": "mnist", "data_path": path, "epochs": 1}
            response = client.post("/api/runs", json={"config": config})
            assert response.status_code == 422
            answers.append(response.json()["detail"][0]["msg"])
        assert len(set(answers)) == 1  # the same words whether or not the folder exists
        assert str(tmp_path) not in answers[0] and str(Path.home()) not in answers[0]
        inside = {"dataset": "mnist", "data_path": "mnist", "epochs": 1}
        missing = client.post("/api/runs", json={"config": inside})  # inside, without files
        assert missing.status_code == 422
        said = missing.json()["detail"][0]
        assert said["loc"][-1] == "data_path" and "train-images-idx3-ubyte" in said["msg"]
        assert str(root) not in said["msg"]  # the API never shows the full path
        for stem in MNIST_FILES.values():  # files that are no IDX data: only the trainer knows
            (root / "mnist" / stem).write_bytes(b"not an IDX file")
        run = create(client, inside)
        failed = wait_status(client, run["id"], {"failed"})
        assert "mnist" in failed["error"] and str(root) not in failed["error"]
        assert failed["config"]["data_path"] == "mnist"


def test_the_admin_token_can_come_from_a_file(tmp_path: Path) -> None:
    token_file = tmp_path / "admin-token"
    token_file.write_text("from-a-file-0123456789\n")
    assert Settings(admin_token_file=str(token_file)).admin == "from-a-file-0123456789"
    with pytest.raises(ValueError, match="admin_token_file: cannot read it"):
        Settings(admin_token_file=str(tmp_path / "missing"))
    (tmp_path / "empty").write_text("")
    with pytest.raises(ValueError, match="admin_token_file: the file is empty"):
        Settings(admin_token_file=str(tmp_path / "empty"))


def test_the_same_log_message_passes_at_most_once_a_second() -> None:
    import logging

    guard = OncePerSecond()
    record = logging.LogRecord(
        "asyncio", logging.ERROR, "", 0, "socket.accept() out of %s", ("fd",), None
    )
    assert guard.filter(record)
    assert not any(guard.filter(record) for _ in range(1000))
    assert guard.suppressed == 1000
    other = logging.LogRecord("asyncio", logging.ERROR, "", 0, "another message", (), None)
    assert guard.filter(other)
