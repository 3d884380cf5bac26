"""The one JSON encoding of records: non-finite numbers become null, numpy scalars plain numbers."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def json_safe(value: Any) -> Any:
    """A copy of `value` that `json.dumps(..., allow_nan=False)` accepts."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    return value


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode  # allow_nan: checked below


def _not_finite(v: Any) -> bool:
    return type(v) is float and v - v != 0.0  # NaN - NaN and inf - inf are NaN


def dumps(value: Any) -> str:
    """Compact JSON with NaN and infinities as null; never emits the bare `NaN` token.

    A record (a flat dict) has its non-finite floats set to None, then goes through
    json's C encoder as it is; only a text that still holds a non-finite token (nested
    ones, numpy scalars) or a value json cannot encode (a numpy integer or array) takes
    json_safe's copy. A step's record costs ~2/3 of copying it through json_safe first
    (`python -m bench.records`)."""
    if type(value) is dict and any(_not_finite(v) for v in value.values()):
        value = {k: None if _not_finite(v) else v for k, v in value.items()}
    try:
        text: str = _ENCODE(value)
    except TypeError:
        text = "NaN"
    if "NaN" in text or "Infinity" in text:  # (or a string holding them: still right)
        return json.dumps(json_safe(value), allow_nan=False, separators=(",", ":"))
    return text


#: Record keys whose last-epoch means summarise a run's gradient fidelity.
FIDELITY_PREFIXES = ("cos_h", "rel_err_h")


class EpochFidelity:
    """Means of each hidden layer's cosine and relative error over the latest epoch's records.

    Fed every record; a new epoch starts a new tally. A record's `epoch` is fractional
    (step / steps per epoch: the step ending epoch k says k, the next k + 1/n), so epoch
    k holds the records whose epoch is in (k - 1, k]. `means()` is what docs/results.md
    calls "cos(signal, true), last epoch" (undefined values, a zero signal, are skipped).

    >>> tally = EpochFidelity()
    >>> for r in ({"epoch": 0.5, "cos_h1": 0.0}, {"epoch": 1.0, "cos_h1": 0.2},
    ...           {"epoch": 1.5, "cos_h1": 0.5}, {"epoch": 2.0}):
    ...     tally.add(r)
    >>> tally.means()
    {'cos_h1': 0.5}
    """

    def __init__(self, keys: list[str] | None = None) -> None:
        """`keys`: the fidelity keys records can hold (the trainer knows them), else any key
        with a FIDELITY_PREFIXES prefix is looked for."""
        self._epoch: Any = None
        self._sums: dict[str, list[float]] = {}
        self._keys = None if keys is None else [k for k in keys if k.startswith(FIDELITY_PREFIXES)]

    def add(self, record: dict[str, Any]) -> None:
        epoch = math.ceil(record["epoch"] - 1e-9) if "epoch" in record else None
        if epoch != self._epoch:
            self._epoch, self._sums = epoch, {}
        if "cos_h1" not in record:  # not a diagnosed step (every net has a hidden layer)
            return
        keys = self._keys
        if keys is None:
            keys = [key for key in record if key.startswith(FIDELITY_PREFIXES)]
        sums = self._sums
        for key in keys:
            value: Any = record.get(key)
            # a float (or int) that is finite: x - x is 0.0 only then (NaN and inf give NaN)
            if type(value) not in (float, int) or value - value != 0.0:
                continue
            tally = sums.get(key)
            if tally is None:
                tally = sums[key] = [0.0, 0]
            tally[0] += value
            tally[1] += 1

    def state(self) -> dict[str, Any]:
        """The tally so far, as JSON (a captured trainer's)."""
        return {"epoch": self._epoch, "sums": {k: list(v) for k, v in self._sums.items()}}

    def load_state(self, state: dict[str, Any]) -> None:
        self._epoch = state["epoch"]
        self._sums = {k: list(v) for k, v in state["sums"].items()}

    def means(self) -> dict[str, float]:
        return {key: total / count for key, (total, count) in sorted(self._sums.items())}
