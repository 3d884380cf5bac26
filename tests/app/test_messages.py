"""The JSON envelopes the server sends."""

from __future__ import annotations

import json

from app.messages import envelope, metrics_message, status_message


def test_envelope_splices_encoded_records_into_valid_json() -> None:
    texts = ['{"step":1,"loss":null}', '{"step":2,"loss":0.5}']
    message = json.loads(envelope({"type": "snapshot", "seq": 2}, history=",".join(texts)))
    assert message == {
        "type": "snapshot",
        "seq": 2,
        "history": [{"step": 1, "loss": None}, {"step": 2, "loss": 0.5}],
    }
    assert json.loads(envelope({}, records=[])) == {"records": []}
    assert json.loads(metrics_message(2, texts, gap=True))["gap"] is True
    assert "gap" not in json.loads(metrics_message(2, texts))


def test_status_message_leaves_out_empty_extras() -> None:
    assert json.loads(status_message("failed", 3, error="disk", diverged_at=None)) == {
        "type": "status",
        "status": "failed",
        "step": 3,
        "error": "disk",
    }
