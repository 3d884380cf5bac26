"""Follow the presenter: the owner's view reaches every page; viewers never steer."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from app.web.presenter import InvalidPresenterView, checked_view
from support.live import strict_json

from .test_api import create

VIEW = {"chart": "fidelity", "layer": 2, "x": "epoch", "smoothing": 0.6, "log": True}


def test_the_owners_view_reaches_followers_and_a_viewers_is_ignored(client: TestClient) -> None:
    run = create(client, {"dataset": "addition", "bits": 8, "examples": 1000, "epochs": 1})
    client.cookies.clear()  # the owner is known by the token below only
    owner = {"Authorization": f"Bearer {run['owner_token']}"}
    url = f"/ws/runs/{run['id']}/presenter"
    with (
        client.websocket_connect(url) as follower,
        client.websocket_connect(url) as viewer,
    ):
        assert strict_json(follower.receive_text()) == {"type": "presenter", "presenting": False}
        viewer.receive_text()
        viewer.send_text(json.dumps({"presenting": True, "view": {**VIEW, "layer": 1}}))
        with client.websocket_connect(url, headers=owner) as presenter:
            # What the page of a newcomer is told: the viewer's message changed nothing.
            assert strict_json(presenter.receive_text())["presenting"] is False
            presenter.send_text(json.dumps({"presenting": True, "view": {**VIEW, "x": "nope"}}))
            presenter.send_text(json.dumps({"presenting": True, "view": VIEW}))
            got = strict_json(follower.receive_text())
            # The viewer's message and the invalid one went nowhere: the first is the owner's.
            assert got == {
                "type": "presenter",
                "presenting": True,
                "view": {**VIEW, "replay": None},
            }
            assert strict_json(viewer.receive_text()) == got
        # The presenter left: followers are told to let go.
        assert strict_json(follower.receive_text())["presenting"] is False


def test_a_view_is_checked_field_by_field() -> None:
    view = checked_view(
        {**VIEW, "extra": "dropped", "replay": {"step": 5, "playing": 1, "speed": "10"}}
    )
    assert view["replay"] == {"step": 5, "playing": True, "speed": "10"} and "extra" not in view
    for bad, message in (
        ({"layer": 0}, "layer: must be between 1 and 1000"),
        ({"smoothing": float("nan")}, "smoothing: must be a number"),
        ({"chart": "<img>"}, "chart"),
        ({"replay": {"step": 1, "speed": "3"}}, "replay: speed must be one of"),
    ):
        with pytest.raises(InvalidPresenterView, match=message):
            checked_view({**VIEW, **bad})
