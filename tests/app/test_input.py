"""Hostile input gets a 4xx that quotes little of it, never a 500."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from .test_api import SHORT, create

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_422_naming_the_field(client: TestClient, number: str) -> None:
    body = '{"config": {"dataset": "digits", "learning_rate": NUMBER}}'.replace("NUMBER", number)
    response = client.post("/api/runs", content=body, headers=JSON)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "config", "learning_rate"]


@pytest.mark.parametrize("value", ["false", "true", "2.5"])
def test_booleans_and_fractions_are_not_integers(client: TestClient, value: str) -> None:
    body = '{"config": {"dataset": "digits", "seed": VALUE}}'.replace("VALUE", value)
    response = client.post("/api/runs", content=body, headers=JSON)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][-1] == "seed"


def test_a_lone_surrogate_in_a_name_is_422_on_create_and_rename(client: TestClient) -> None:
    body = '{"name": "bad \\ud800 name", "config": {"dataset": "digits", "epochs": 1}}'
    assert client.post("/api/runs", content=body, headers=JSON).status_code == 422
    run = create(client, SHORT)
    rename = client.patch(f"/api/runs/{run['id']}", content='{"name": "\\udfff"}', headers=JSON)
    assert rename.status_code == 422
    assert client.get(f"/api/runs/{run['id']}").json()["name"] == run["name"]


@pytest.mark.parametrize(
    ("route", "body", "loc"),
    [
        ("/api/runs", {"config": {"data_path": "\u0000"}}, ["body", "config", "data_path"]),
        ("/api/sweeps", {"config": {"data_path": "\u0000"}, "grid": {"seed": [1, 2]}}, None),
        ("/api/sweeps", {"grid": {"data_path": ["a", "b\u0000"]}}, None),
        ("/api/runs", {"name": "a\u0000b", "config": {}}, ["body", "name"]),
        ("/api/runs", {"name": "two\nlines", "config": {}}, ["body", "name"]),
    ],
)
def test_control_characters_in_text_are_422_naming_the_field(
    client: TestClient, route: str, body: dict, loc: list | None
) -> None:
    response = client.post(route, content=json.dumps(body), headers=JSON)  # NUL as \u0000
    assert response.status_code == 422, response.text
    error = response.json()["detail"][0]
    if loc is None:  # a sweep's field: in its config or its grid
        assert "data_path" in error["loc"], error
    else:
        assert error["loc"] == loc
    assert "control characters" in error["msg"]


def test_a_422_quotes_only_a_short_excerpt_of_the_input(client: TestClient) -> None:
    huge = "x" * 60_000  # under the body limit: a 422 that quotes 80 characters of it
    response = client.post("/api/runs", json={"name": huge, "config": {}})
    assert response.status_code == 422 and len(response.content) < 1_000


def test_non_ascii_tokens_are_refused_not_crashed_on(client: TestClient) -> None:
    run = create(client, SHORT)
    for header in ("authorization", "cookie"):
        value = "Bearer \xe9\xe9\xe9" if header == "authorization" else "synthgrad_owner=\xe9t\xe9"
        raw = [(header.encode(), value.encode("latin-1"))]
        assert client.get(f"/api/runs/{run['id']}", headers=raw).json()["can_control"] is False
        assert client.post(f"/api/runs/{run['id']}/stop", headers=raw).status_code == 403


def test_a_client_cannot_choose_its_owner_token(client: TestClient) -> None:
    chosen = "a-token-i-made-up-myself-0123456789"
    created = client.post(
        "/api/runs",
        json={"config": SHORT},
        headers={"Authorization": f"Bearer {chosen}"},
    ).json()
    assert created["owner_token"] != chosen
    again = client.post("/api/runs", json={"config": SHORT}).json()  # the cookie it was given
    assert again["owner_token"] == created["owner_token"]


def test_a_huge_after_on_the_stream_is_not_a_dropped_connection(client: TestClient) -> None:
    run = create(client, SHORT)
    with client.websocket_connect(f"/ws/runs/{run['id']}?after={2**63}") as ws:
        assert ws.receive_json()["type"] == "status"


def test_a_500_closes_its_connection(tmp_path: Path) -> None:
    """A kept-alive client learns that the connection ends with the failed request."""
    import socket

    from app.settings import Settings
    from support.live import live_server

    def fail() -> None:
        raise RuntimeError("a bug in a route")

    with live_server(Settings(db=str(tmp_path / "runs.sqlite3"), executor="thread")) as server:
        server.app.add_api_route("/api/fail", fail)
        request = b"GET /api/fail HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(request)
            answer = b""
            while chunk := sock.recv(65536):  # b"": the server closed the connection
                answer += chunk
        head = answer.split(b"\r\n\r\n")[0].lower()
        assert head.startswith(b"http/1.1 500") and b"connection: close" in head
        assert b"Traceback" not in answer
