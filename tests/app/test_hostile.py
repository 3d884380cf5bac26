"""One anonymous visitor doing the worst the API allows, against a real server and store.

Each test attacks one limit from 127.0.0.1, asserts the limit held, then checks that
a second visitor (another address, 127.0.0.2) is still served: a creation answers
201 and health 200 within a one-second request timeout; and that the admin is never
locked out. The visitor drops its cookie whenever that helps it (each request a new
owner): the shares hold per client address too.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from app.runs.quotas import seeds_per_batch
from app.settings import Settings
from support.live import LiveServer, live_server
from support.waiting import wait_until
from synthgrad_core import TrainConfig
from synthgrad_core.cost import estimate, estimate_batch

from .conftest import ADMIN

TINY = {"dataset": "addition", "bits": 4, "examples": 40, "hidden": [8], "epochs": 1}
#: Trains for minutes: holds its slot for the whole test.
LONG = {"dataset": "digits", "epochs": 2000}
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def room(tmp_path: Path) -> Settings:
    """Default limits but for the store's place, an admin token and two training slots."""
    return Settings(db=str(tmp_path / "room.sqlite3"), admin_token=ADMIN, max_concurrent_runs=2)


@pytest.fixture
def server(room: Settings) -> Iterator[LiveServer]:
    with live_server(room) as live:
        yield live


def visitor(address: str = "127.0.0.1", timeout: float = 30.0) -> httpx.Client:
    """A client whose connections come from `address` (any of 127/8 reaches the server)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(transport=transport, timeout=timeout)


def second_visitor_is_served(url: str) -> str:
    """Another address creates a run (201) and reads health (200), each within 1 s."""
    with visitor("127.0.0.2", timeout=1.0) as other:
        created = other.post(f"{url}/api/runs", json={"config": TINY})
        assert created.status_code == 201, created.text
        assert other.get(f"{url}/api/health").status_code == 200
    run_id: str = created.json()["id"]
    return run_id


def admin_is_served(url: str) -> None:
    with httpx.Client(timeout=5.0) as admin:
        created = admin.post(f"{url}/api/runs", json={"config": TINY}, headers=ADMIN_AUTH)
        assert created.status_code == 201, created.text


def sweep(client: httpx.Client, url: str, grid: dict[str, Any], **config: Any) -> httpx.Response:
    client.cookies.clear()  # a new owner each time
    return client.post(f"{url}/api/sweeps", json={"config": {**TINY, **config}, "grid": grid})


def runs_from(client: httpx.Client, url: str, ids: set[str]) -> list[dict[str, Any]]:
    return [r for r in client.get(f"{url}/api/runs").json() if r["id"] in ids]


def test_a_flood_of_anonymous_sweeps_holds_one_address_to_its_share(
    server: LiveServer, room: Settings
) -> None:
    # The attack that filled the 500-run cap: 64-run sweeps, each as a new owner.
    url = server.url
    stored_share = int((room.max_stored_runs * (1 - room.admin_reserve)) * room.address_share)
    unfinished_share = int(
        (room.max_unfinished_runs * (1 - room.admin_reserve)) * room.address_share
    )
    mine: set[str] = set()
    refusals = []
    with visitor() as hostile:
        for _ in range(10):
            answer = sweep(hostile, url, {"seed": list(range(1, 65))})
            if answer.status_code == 201:
                mine |= {run["id"] for run in answer.json()["runs"]}
            else:
                refusals.append(answer)
        held = runs_from(hostile, url, mine)
    assert len(held) <= stored_share
    assert sum(1 for r in held if r["status"] in ("queued", "running", "paused")) <= (
        unfinished_share
    )
    assert refusals, "the flood was never refused"
    for refused in refusals:
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) > 0
        detail = refused.json()["detail"]
        assert "one visitor may have at most" in detail or "runs a minute" in detail
    second_visitor_is_served(url)
    admin_is_served(url)


def test_visitors_never_fill_the_admins_reserve(tmp_path: Path) -> None:
    # Many addresses, many owners: together they fill the visitors' room, not the cap.
    settings = Settings(
        db=str(tmp_path / "small.sqlite3"),
        admin_token=ADMIN,
        max_stored_runs=20,
        max_concurrent_runs=1,
    )
    with live_server(settings) as live:
        codes = []
        for host in range(2, 10):
            with visitor(f"127.0.0.{host}") as someone:
                for _ in range(3):
                    someone.cookies.clear()
                    answer = someone.post(f"{live.url}/api/runs", json={"config": TINY})
                    codes.append(answer.status_code)
        assert codes.count(201) == 18  # 20 less the admin's reserve of 2
        assert set(codes) == {201, 429}
        for _ in range(2):
            admin_is_served(live.url)


def test_the_message_says_which_limit_and_how_to_free_it(tmp_path: Path) -> None:
    settings = Settings(db=str(tmp_path / "one.sqlite3"), admin_token=ADMIN, max_stored_runs=10)
    with live_server(settings) as live, visitor() as me:
        created = [me.post(f"{live.url}/api/runs", json={"config": TINY})]
        token = created[0].json()["owner_token"]
        auth = {"Authorization": f"Bearer {token}"}
        for _ in range(2):  # the same owner
            created.append(me.post(f"{live.url}/api/runs", json={"config": TINY}, headers=auth))
        assert [c.status_code for c in created] == [201, 201, 429]  # a share of 9: 2
        detail = created[-1].json()["detail"]
        assert "at most 2" in detail and "SYNTHGRAD_MAX_STORED_RUNS" in detail
        assert "delete finished runs" in detail
        wait_until(
            lambda: (
                me.get(f"{live.url}/api/runs/{created[0].json()['id']}").json()["status"]
                == "finished"
            ),
            what="the first run to finish",
        )
        assert me.delete(f"{live.url}/api/runs/{created[0].json()['id']}", headers=auth).is_success
        again = me.post(f"{live.url}/api/runs", json={"config": TINY}, headers=auth)
        assert again.status_code == 201


def test_one_visitor_holds_one_slot_and_the_admin_always_starts(
    server: LiveServer, room: Settings
) -> None:
    url = server.url
    ids = []
    with visitor() as hostile:
        for _ in range(3):  # three owners from one address
            hostile.cookies.clear()
            answer = hostile.post(f"{url}/api/runs", json={"config": LONG})
            assert answer.status_code == 201
            ids.append(answer.json()["id"])

        def statuses() -> list[str]:
            return [hostile.get(f"{url}/api/runs/{i}").json()["status"] for i in ids]

        wait_until(lambda: "running" in statuses(), timeout=60, what="the visitor's first run")
        other = second_visitor_is_served(url)
        wait_until(
            lambda: hostile.get(f"{url}/api/runs/{other}").json()["status"] != "queued",
            timeout=60,
            what="the second visitor's run to start beside the first's",
        )
        assert statuses().count("running") == 1  # one of two slots, however many owners
        with httpx.Client(timeout=5.0) as admin:
            mine = admin.post(f"{url}/api/runs", json={"config": LONG}, headers=ADMIN_AUTH)
            wait_until(
                lambda: (
                    admin.get(f"{url}/api/runs/{mine.json()['id']}").json()["status"] == "running"
                ),
                timeout=60,
                what="the admin's run to start while visitors hold every slot",
            )
        assert statuses().count("running") == 1


def test_a_big_group_of_seeds_is_split_into_batches_that_fit(tmp_path: Path) -> None:
    # One run of this net fits 1 GiB; 64 of them in one process would need ~5 GiB.
    wide = {"dataset": "digits", "hidden": [512, 512], "batch_size": 256, "method": "cdni"}
    wide |= {"optimizer": "adam", "epochs": 1}
    settings = Settings(db=str(tmp_path / "wide.sqlite3"), admin_token=ADMIN)
    cfg = TrainConfig.from_dict({**TINY, **wide}).resolve()
    most = seeds_per_batch(cfg, settings)
    assert 1 < most < 64 and estimate_batch(cfg, 64).memory_bytes > settings.max_run_memory
    with live_server(settings) as live, visitor() as hostile:
        answer = sweep(hostile, live.url, {"seed": list(range(1, 65))}, **wide)
        assert answer.status_code == 201, answer.text
        runs = answer.json()["runs"]
        batches = {tuple(run["batch"] or [run["id"]]) for run in runs}
        assert sum(len(b) for b in batches) == 64
        for batch in batches:
            assert len(batch) <= most
            assert estimate_batch(cfg, len(batch)).memory_bytes <= settings.max_run_memory
        second_visitor_is_served(live.url)


def test_a_group_past_what_a_batch_takes_is_split_and_trains(server: LiveServer) -> None:
    # 96 seeds in one group (the most a sweep holds): 201 then every run failed, before.
    with visitor() as hostile:
        answer = sweep(hostile, server.url, {"seed": list(range(1, 97))})
        assert answer.status_code == 201, answer.text
        sweep_id = answer.json()["id"]
        sizes = sorted(len(run["batch"]) for run in answer.json()["runs"])
        assert sizes == [48] * 96  # two even batches within MAX_SEEDS (64)

        def ended() -> dict[str, Any] | None:
            described: dict[str, Any] = hostile.get(f"{server.url}/api/sweeps/{sweep_id}").json()
            return described if described["status"] in ("finished", "ended") else None

        done = wait_until(ended, timeout=240, what="the 96-run sweep to end")
        assert {run["status"] for run in done["runs"]} == {"finished"}


@pytest.mark.parametrize(
    "grid",
    [
        {"seed": [1, 1]},
        {"method": ["dni", "dni"], "seed": [1, 2]},
        {"hidden": [[16], [16]]},
        {"learning_rate": [0.1, 0.10]},
    ],
    ids=["seed", "method", "hidden", "same-number"],
)
def test_a_grid_listing_a_run_twice_is_422_naming_the_field(
    server: LiveServer, grid: dict[str, Any]
) -> None:
    field = next(f for f, values in grid.items() if len(values) != len(set(map(str, values))))
    with visitor() as hostile:
        answer = sweep(hostile, server.url, grid)
        assert answer.status_code == 422, answer.text
        (error,) = answer.json()["detail"]
        assert error["loc"][-1] == field and "twice" in error["msg"]
        assert hostile.get(f"{server.url}/api/runs").json() == []
    second_visitor_is_served(server.url)


def test_websocket_refusals_arrive_as_their_documented_close_codes(server: LiveServer) -> None:
    # After the handshake (101), so a browser's page sees the code, not a bare 1006.
    run_id = second_visitor_is_served(server.url)
    ws_url = server.url.replace("http", "ws")

    async def close_code(path: str, **headers: str) -> int:
        async with websockets.connect(ws_url + path, additional_headers=headers) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code is not None
            return ws.close_code

    assert asyncio.run(close_code("/ws/runs/no-such-run")) == 4404
    foreign = asyncio.run(close_code(f"/ws/runs/{run_id}", Origin="http://evil.example"))
    assert foreign == 1008


def test_a_single_run_over_the_budget_is_still_422(server: LiveServer) -> None:
    huge = {"dataset": "digits", "hidden": [4096] * 4, "batch_size": 4096, "method": "cdni"}
    assert estimate(TrainConfig.from_dict(huge).resolve()).memory_bytes > 2**30
    with visitor() as hostile:
        answer = sweep(hostile, server.url, {"seed": [1, 2, 3]}, **huge)
        assert answer.status_code == 422
        assert "per run" in answer.json()["detail"][0]["msg"]
    second_visitor_is_served(server.url)


def test_settings_refuse_shares_out_of_range(tmp_path: Path) -> None:
    base = Settings(db=str(tmp_path / "s.sqlite3"))
    for field, value in [("owner_share", 0), ("address_share", 1.5), ("admin_reserve", 1)]:
        with pytest.raises(ValueError, match=field):
            dataclasses.replace(base, **{field: value})


def test_control_characters_are_422_naming_the_field_never_a_500(server: LiveServer) -> None:
    # A NUL in data_path was a 500 (an embedded null byte reached the file system).
    attempts = [
        ("/api/runs", {"config": {"data_path": "\u0000"}}, ["config", "data_path"]),
        ("/api/runs", {"name": "a\u0007b", "config": TINY}, ["name"]),
        (
            "/api/sweeps",
            {"config": {"data_path": "\u0000"}, "grid": {"seed": [1, 2]}},
            ["config", "data_path"],
        ),
        (
            "/api/sweeps",
            {"config": TINY, "grid": {"data_path": ["a", "\u0000"]}},
            ["grid", "data_path", 1],
        ),
    ]
    with visitor() as hostile:  # one kept-alive connection for all of them
        for path, body, where in attempts:
            answer = hostile.post(f"{server.url}{path}", json=body)
            assert answer.status_code == 422, answer.text
            assert answer.json()["detail"][0]["loc"][1:] == where
        assert hostile.get(f"{server.url}/api/health").status_code == 200
    second_visitor_is_served(server.url)
