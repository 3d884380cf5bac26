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


def dumps(value: Any) -> str:
    """Compact JSON with NaN and infinities as null; never emits the bare `NaN` token."""
    return json.dumps(json_safe(value), allow_nan=False, separators=(",", ":"))
