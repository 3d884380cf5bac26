"""The JSON messages the server sends: one way to splice already-encoded records into them.

Records are encoded once, where they are made (`synthgrad_core.records.dumps`:
no NaN tokens); messages that carry them splice that text in rather than
decoding and encoding it again.
"""

from __future__ import annotations

import enum
import json
from typing import Any


class CloseCode(enum.IntEnum):
    """Websocket close codes of the run stream."""

    NORMAL = 1000  # the run ended, or was deleted
    POLICY = 1008  # a cross-origin websocket was refused
    NO_SUCH_RUN = 4404


def envelope(fields: dict[str, Any], **encoded: list[str] | str) -> str:
    """`fields` as a JSON object, plus each `encoded` key as an array of JSON texts.

    >>> envelope({"type": "metrics", "seq": 2}, records=['{"step":1}', '{"step":2}'])
    '{"type": "metrics", "seq": 2, "records": [{"step":1},{"step":2}]}'
    """
    text = json.dumps(fields)
    if not encoded:
        return text
    parts = [text[:-1]] if fields else ["{"]
    for i, (key, items) in enumerate(encoded.items()):
        joined = items if isinstance(items, str) else ",".join(items)
        separator = ", " if fields or i else ""
        parts.append(f"{separator}{json.dumps(key)}: [{joined}]")
    parts.append("}")
    return "".join(parts)


def metrics_message(seq: int, record_texts: list[str], gap: bool = False) -> str:
    """A `metrics` message: records after the client's last `seq`, oldest first."""
    fields: dict[str, Any] = {"type": "metrics", "seq": seq}
    if gap:
        fields["gap"] = True
    return envelope(fields, records=record_texts)


def status_message(status: str, step: int | None, **extra: Any) -> str:
    """A `status` message; `extra` keys (error, diverged_at) only where they have a value."""
    body = {"type": "status", "status": status, "step": step}
    body.update({k: v for k, v in extra.items() if v is not None})
    return json.dumps(body)
