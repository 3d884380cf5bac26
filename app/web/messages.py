"""The websocket messages of the run stream, typed, and the close codes the page shares.

Records are encoded once, where they are made (`synthgrad_core.records.dumps`:
no NaN tokens); messages that carry them splice that text in rather than
decoding and encoding it again. Each message type is a dataclass whose
`encode()` gives the text sent; the protocol is in docs/api.md ("Live stream").
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any

from synthgrad_core.records import json_safe


class CloseCode(enum.IntEnum):
    """Websocket close codes of the run stream (the page reads them from the vocabulary)."""

    NORMAL = 1000  # the run ended, or was deleted
    POLICY = 1008  # a cross-origin websocket was refused
    NO_SUCH_RUN = 4404
    INVALID_VIEW = 4422  # a lean view named a layer or field the run does not have


def envelope(fields: dict[str, Any], **encoded: list[str] | str) -> str:
    """`fields` as a JSON object, plus each `encoded` key as an array of JSON texts.

    >>> envelope({"type": "metrics", "seq": 2}, records=['{"step":1}', '{"step":2}'])
    '{"type": "metrics", "seq": 2, "records": [{"step":1},{"step":2}]}'
    """
    text = json.dumps(json_safe(fields), allow_nan=False)  # a diverged run's summary: null
    if not encoded:
        return text
    parts = [text[:-1]] if fields else ["{"]
    for i, (key, items) in enumerate(encoded.items()):
        joined = items if isinstance(items, str) else ",".join(items)
        separator = ", " if fields or i else ""
        parts.append(f"{separator}{json.dumps(key)}: [{joined}]")
    parts.append("}")
    return "".join(parts)


@dataclass(frozen=True)
class Snapshot:
    """The first message: the run object and its (downsampled) history, pre-encoded."""

    status: str
    run: dict[str, Any]
    seq: int
    downsampled: bool
    history: str  # comma-joined record texts

    def encode(self) -> str:
        fields = {
            "type": "snapshot",
            "status": self.status,
            "run": self.run,
            "seq": self.seq,
            "downsampled": self.downsampled,
        }
        return envelope(fields, history=self.history)


@dataclass(frozen=True)
class Metrics:
    """Records after the client's last `seq`, oldest first; `gap`: some were thinned out."""

    seq: int
    records: list[str]
    gap: bool = False

    def encode(self) -> str:
        fields: dict[str, Any] = {"type": "metrics", "seq": self.seq}
        if self.gap:
            fields["gap"] = True
        return envelope(fields, records=self.records)


@dataclass(frozen=True)
class Status:
    """A status change; `extra` keys (error, diverged_at) only where they have a value."""

    status: str
    step: int | None
    extra: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> str:
        body = {"type": "status", "status": self.status, "step": self.step}
        body.update({k: v for k, v in self.extra.items() if v is not None})
        return json.dumps(json_safe(body), allow_nan=False)


@dataclass(frozen=True)
class LeanSnapshot:
    """The lean stream's first message: the run object and its history as one columnar frame."""

    status: str
    run: dict[str, Any]
    seq: int
    fields: tuple[str, ...]
    columns: str  # the JSON of lean.columns(...)

    def encode(self) -> str:
        fields = {
            "type": "snapshot",
            "detail": "lean",
            "status": self.status,
            "run": self.run,
            "seq": self.seq,
            "fields": list(self.fields),
        }
        head = json.dumps(json_safe(fields), allow_nan=False)  # a diverged run's summary: null
        return head[:-1] + f', "columns": {self.columns}}}'


@dataclass(frozen=True)
class Frame:
    """A lean update: the records of one tick after `seq`-so-far, thinned, as columns."""

    seq: int
    columns: str  # the JSON of lean.columns(...)

    def encode(self) -> str:
        return f'{{"type": "frame", "seq": {self.seq}, "columns": {self.columns}}}'


@dataclass(frozen=True)
class Gap:
    """Told to a lean viewer that could not keep up: `dropped` frames were not sent to it."""

    dropped: int

    def encode(self) -> str:
        return json.dumps({"type": "gap", "dropped": self.dropped})


Message = Snapshot | Metrics | Status | LeanSnapshot | Frame | Gap
