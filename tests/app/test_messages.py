"""The JSON envelopes the server sends."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from app.web.messages import CloseCode, LeanSnapshot, Metrics, Snapshot, Status, envelope

STATIC = Path(__file__).resolve().parents[2] / "static"


def test_envelope_splices_encoded_records_into_valid_json() -> None:
    texts = ['{"step":1,"loss":null}', '{"step":2,"loss":0.5}']
    message = json.loads(envelope({"type": "snapshot", "seq": 2}, history=",".join(texts)))
    assert message == {
        "type": "snapshot",
        "seq": 2,
        "history": [{"step": 1, "loss": None}, {"step": 2, "loss": 0.5}],
    }
    assert json.loads(envelope({}, records=[])) == {"records": []}
    assert json.loads(Metrics(2, texts, gap=True).encode())["gap"] is True
    assert "gap" not in json.loads(Metrics(2, texts).encode())


def test_status_message_leaves_out_empty_extras() -> None:
    extra = {"error": "disk", "diverged_at": None}
    assert json.loads(Status("failed", 3, extra).encode()) == {
        "type": "status",
        "status": "failed",
        "step": 3,
        "error": "disk",
    }


def test_pages_share_the_close_codes_the_stream_uses(tmp_path: Path) -> None:
    # The page's reconnect logic reads the codes from the vocabulary the server embeds:
    # a code added to CloseCode reaches the page without a second copy in JS.
    with TestClient(create_app(Settings(db=str(tmp_path / "v.sqlite3")))) as client:
        html = client.get("/").text
    vocabulary = re.search(r'<script[^>]*id="vocabulary"[^>]*>(.*?)</script>', html, re.S)
    assert vocabulary is not None
    assert json.loads(vocabulary.group(1))["close_codes"] == {c.name: int(c) for c in CloseCode}
    assert "4404" not in (STATIC / "js" / "run-stream.js").read_text()


def test_typed_messages_encode_as_the_protocol_says() -> None:
    snapshot = Snapshot("running", {"id": "r"}, 2, False, '{"step":1},{"step":2}').encode()
    assert json.loads(snapshot) == {
        "type": "snapshot",
        "status": "running",
        "run": {"id": "r"},
        "seq": 2,
        "downsampled": False,
        "history": [{"step": 1}, {"step": 2}],
    }
    assert json.loads(Metrics(3, ['{"step":3}']).encode()) == {
        "type": "metrics",
        "seq": 3,
        "records": [{"step": 3}],
    }
    assert json.loads(Status("finished", 9).encode())["status"] == "finished"


def test_snapshots_of_a_diverged_run_carry_null_not_nan() -> None:
    """A diverged run's summary holds NaN (its final evaluation overflowed): every message
    that carries the run object must still parse with a browser's JSON.parse."""
    from support.live import strict_json

    run = {"id": "r", "summary": {"loss": float("nan"), "test_loss": float("inf")}}
    full = Snapshot(status="diverged", run=run, seq=1, downsampled=False, history="")
    lean = LeanSnapshot(status="diverged", run=run, seq=1, fields=("loss",), columns="{}")
    for message in (full, lean):
        assert strict_json(message.encode())["run"]["summary"]["loss"] is None
