"""The lean viewer stream: its columnar format, thinning, min/max, nulls, one shared encoding."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.web.lean import InvalidView, columns, named_fields, rounded, view_fields
from app.web.lean_stream import Channel, LeanClient
from support.live import strict_json
from synthgrad_core import TrainConfig

from .test_api import create, wait_status

MEDIUM = {"dataset": "addition", "bits": 8, "examples": 1000, "epochs": 40}


def receive(ws: Any) -> dict[str, Any]:
    return strict_json(ws.receive_text())


def rows(frame: dict[str, Any], field: str) -> list[tuple[int, Any]]:
    """(step, value) of one field of a frame's columns."""
    indices, values = frame["series"][field]
    return [(frame["step"][i], v) for i, v in zip(indices, values, strict=True)]


def test_a_frame_keeps_each_fields_min_max_last_and_first_null() -> None:
    losses = [0.5, 0.4, 9.0, 0.3, None, 0.2, None, 0.25, 0.1, 0.15]
    records = [
        {"step": s, "epoch": s / 7, "wall_time": s / 3, "loss": v} for s, v in enumerate(losses, 1)
    ]
    records[5]["test_loss"] = 0.123456789  # a held-out evaluation: only in some records
    body = columns(records, ["loss", "test_loss"])
    assert rows(body, "loss") == [(3, 9.0), (5, None), (9, 0.1), (10, 0.15)]
    assert rows(body, "test_loss") == [(6, 0.1235)]  # rounded to four significant digits
    assert body["step"] == [3, 5, 6, 9, 10]  # only the rows some field keeps
    assert body["epoch"] == [0.4286, 0.7143, 0.8571, 1.286, 1.429]
    assert body["wall_time"] == [1.0, 1.667, 2.0, 3.0, 3.333]
    json.dumps(body, allow_nan=False)  # nothing non-finite left


def test_few_records_are_kept_whole_and_more_buckets_keep_more() -> None:
    records = [{"step": s, "loss": float(s % 5)} for s in range(1, 4)]
    assert [s for s, _ in rows(columns(records, ["loss"]), "loss")] == [1, 2, 3]
    many = [{"step": s, "loss": float((s * 7) % 11)} for s in range(1, 1001)]
    one = rows(columns(many, ["loss"]), "loss")
    fifty = rows(columns(many, ["loss"], buckets=50), "loss")
    assert len(one) <= 3 < len(fifty) <= 150
    assert {v for _, v in one} >= {0.0, 10.0} and one[-1] == (1000, float((1000 * 7) % 11))


def test_timelines_only_the_newest_and_every_config_change() -> None:
    records = [{"step": s, "loss": 1.0, "timeline": [[0, "f", s, s + 0.5]]} for s in range(1, 6)]
    records[1]["config_change"] = "learning_rate 0.1 -> 0.01"
    body = columns(records, ["config_change", "loss", "timeline"], extras_kept=2)
    assert rows(body, "timeline") == [(4, [[0, "f", 4, 4.5]]), (5, [[0, "f", 5, 5.5]])]
    assert rows(body, "config_change") == [(2, "learning_rate 0.1 -> 0.01")]


def test_rounding_keeps_four_significant_digits_and_maps_non_finite_to_none() -> None:
    assert rounded(0.000123456) == 0.0001235 and rounded(123456.7) == 123500.0
    assert rounded(float("nan")) is None and rounded(float("inf")) is None
    assert rounded(7) == 7 and rounded(None) is None


def test_a_view_names_what_the_run_page_draws() -> None:
    config = TrainConfig(dataset="addition", bits=8, method="dni", hidden=[16, 8]).resolve()
    fields = view_fields(config, 2)
    assert {"loss", "accuracy", "test_loss", "test_accuracy", "timeline", "config_change"} <= set(
        fields
    )
    assert {
        "cos_h2",
        "rel_err_h2",
        "norm_ratio_h2",
        "module_loss_h2",
        "w_norm_l2",
        "w_std_l2",
    } <= set(fields)
    assert {"cos_h1", "update_ratio_l1", "module_loss_h1"} <= set(fields)  # diagram, heatmap
    assert "w_norm_l1" not in fields and "w_mean_l2" not in fields and "unix_time" not in fields
    assert list(fields) == sorted(fields)
    with pytest.raises(InvalidView, match="layer: must be between 1 and 2"):
        view_fields(config, 3)
    assert named_fields(config, "loss, cos_h1,loss") == ("cos_h1", "loss")
    with pytest.raises(InvalidView, match="no field 'nope'"):
        named_fields(config, "loss,nope")


def test_every_viewer_of_a_view_gets_the_same_text_built_once() -> None:
    async def scenario() -> tuple[list[Any], list[Any]]:
        channel = Channel("run", ("loss",))
        first, second = LeanClient(), LeanClient()
        channel.clients |= {first, second}
        channel.take([{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.4}])
        channel.emit()
        channel.emit()  # nothing new: no frame
        return list(first.queue), list(second.queue)

    first, second = asyncio.run(scenario())
    assert len(first) == 1 and first[0] is second[0]  # one object: encoded once
    frame = json.loads(first[0][1])
    assert frame["type"] == "frame" and frame["seq"] == 2


def test_lean_stream_of_a_live_run(client: TestClient) -> None:
    run = create(client, {**MEDIUM, "epochs": 600})  # long enough to outlast the reading
    wait_status(client, run["id"], {"running"})
    url = f"/ws/runs/{run['id']}?detail=lean&layer=1"
    texts: list[list[str]] = [[], []]
    with client.websocket_connect(url) as one, client.websocket_connect(url) as two:
        snapshots = [receive(one), receive(two)]
        for snapshot in snapshots:
            assert snapshot["type"] == "snapshot" and snapshot["detail"] == "lean"
            assert "loss" in snapshot["fields"] and "history" not in snapshot
            assert set(snapshot["columns"]["series"]) <= set(snapshot["fields"])
        seqs = [snapshots[0]["seq"]]
        while len(texts[0]) < 6:
            message = receive(one)
            if message["type"] != "frame":
                continue
            texts[0].append(json.dumps(message))
            assert message["seq"] == message["columns"]["step"][-1]
            steps = message["columns"]["step"]
            assert steps == sorted(set(steps))
            assert message["seq"] > seqs[-1]
            seqs.append(message["seq"])
            assert set(message["columns"]["series"]) <= set(snapshots[0]["fields"])
            assert "w_mean_l1" not in message["columns"]["series"]
        while len(texts[1]) < 6:
            message = receive(two)
            if message["type"] == "frame":
                texts[1].append(json.dumps(message))
    # Two viewers of one view got the same frames (whichever they joined at).
    assert set(texts[0]) & set(texts[1])
    client.post(f"/api/runs/{run['id']}/stop")


def test_lean_stream_of_a_diverged_run_shows_null(client: TestClient) -> None:
    run = create(
        client, {"dataset": "digits", "method": "dni", "sg_learning_rate": 10000, "epochs": 3}
    )
    wait_status(client, run["id"], {"diverged"})
    with client.websocket_connect(f"/ws/runs/{run['id']}?detail=lean") as ws:
        snapshot = receive(ws)  # strict: a NaN token would raise here
        series = snapshot["columns"]["series"]
        assert any(None in values for _, values in series.values())  # non-finite shows as null
        assert max(v for v in series["loss"][1] if v is not None) > 1e20  # the spike shows
        assert receive(ws)["status"] == "diverged"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 1000


def test_lean_view_the_run_lacks_is_refused_with_the_bound(client: TestClient) -> None:
    run = create(client, {**MEDIUM, "epochs": 1})
    for query, reason in (("layer=9", "layer: must be between 1 and"), ("fields=nope", "no field")):
        with client.websocket_connect(f"/ws/runs/{run['id']}?detail=lean&{query}") as ws:
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
            assert closed.value.code == 4422 and reason in closed.value.reason


def test_full_stream_is_unchanged_when_asked_for(client: TestClient) -> None:
    run = create(client, {**MEDIUM, "epochs": 1})
    wait_status(client, run["id"], {"finished"})
    with client.websocket_connect(f"/ws/runs/{run['id']}?detail=full") as ws:
        snapshot = receive(ws)
        assert snapshot["type"] == "snapshot" and "w_mean_l1" in snapshot["history"][-1]


def test_a_run_streams_a_bounded_number_of_different_views(client: TestClient) -> None:
    from app.web import lean_stream

    run = create(client, {**MEDIUM, "epochs": 1})
    hub = client.app.state.hub.lean  # type: ignore[attr-defined]
    for i in range(lean_stream.MAX_VIEWS):
        hub.channels.setdefault(run["id"], {})[(f"view{i}",)] = lean_stream.Channel(run["id"], ())
    url = f"/ws/runs/{run['id']}?detail=lean&fields=loss"
    with client.websocket_connect(url) as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text()
    assert closed.value.code == 4422 and "64 different views" in closed.value.reason
    hub.channels.pop(run["id"])
