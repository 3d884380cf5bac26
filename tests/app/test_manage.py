"""Run management: rename, delete, and the pages for unknown runs."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from support.waiting import wait_until

from .conftest import ADMIN, SAME_ORIGIN
from .test_api import LONG, SHORT, create, wait_status


def test_owner_and_admin_rename_viewers_get_403(settings: Settings) -> None:
    app = create_app(settings)
    with (
        TestClient(app, headers=SAME_ORIGIN) as owner,
        TestClient(app, headers=SAME_ORIGIN) as viewer,
    ):
        run = create(owner, SHORT, name="first name")
        url = f"/api/runs/{run['id']}"
        assert viewer.patch(url, json={"name": "hijacked"}).status_code == 403
        assert viewer.delete(url).status_code == 403
        assert owner.get(url).json()["name"] == "first name"
        renamed = owner.patch(url, json={"name": "a better name"})
        assert renamed.status_code == 200 and renamed.json()["name"] == "a better name"
        admin = {"Authorization": f"Bearer {ADMIN}"}
        assert viewer.patch(url, json={"name": "by the admin"}, headers=admin).status_code == 200
        assert [r["name"] for r in viewer.get("/api/runs").json()] == ["by the admin"]
        for bad in ({"name": ""}, {"name": "x" * 101}, {}, {"name": "ok", "extra": 1}):
            response = owner.patch(url, json=bad)
            assert response.status_code == 422, bad
        assert owner.patch("/api/runs/nope", json={"name": "x"}).status_code == 404


def test_renames_survive_a_restart(settings: Settings) -> None:
    with TestClient(create_app(settings), headers=SAME_ORIGIN) as client:
        run = create(client, SHORT)
        client.patch(f"/api/runs/{run['id']}", json={"name": "kept"})
    with TestClient(create_app(settings), headers=SAME_ORIGIN) as client:
        assert client.get(f"/api/runs/{run['id']}").json()["name"] == "kept"


def test_deleting_a_watched_run_ends_its_stream_with_a_final_status(client: TestClient) -> None:
    run = create(client, LONG)
    wait_status(client, run["id"], {"running"})
    with client.websocket_connect(f"/ws/runs/{run['id']}") as ws:
        assert ws.receive_json()["type"] == "snapshot"
        assert client.delete(f"/api/runs/{run['id']}").status_code == 204
        last = None
        for _ in range(200):
            message = ws.receive_json()
            if message["type"] == "status" and message["status"] == "deleted":
                last = message
                break
        assert last is not None
    manager = client.app.state.manager  # type: ignore[attr-defined]
    # The run's records go in the background, a chunk at a time, right after the delete.
    wait_until(
        lambda: manager.store.count_records(run["id"]) == 0, 30, "the deleted run's records to go"
    )
    assert run["id"] not in [r["id"] for r in client.get("/api/runs").json()]


def test_unknown_run_and_compare_pages_are_html_404s(client: TestClient) -> None:
    page = client.get("/runs/no-such-run")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "No such run" in page.text and "no-such-run" in page.text and 'href="/"' in page.text
    compare = client.get("/compare?runs=gone1,gone2")
    assert compare.status_code == 404 and "gone1" in compare.text and "gone2" in compare.text
    run = create(client, SHORT)
    partly = client.get(f"/compare?runs={run['id']},gone3")
    assert partly.status_code == 200 and "gone3" in partly.text and "does not have" in partly.text
    assert client.get("/api/runs/no-such-run").json()["detail"]  # the API keeps JSON errors
