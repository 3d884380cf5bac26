"""A sweep and its runs named in words, for lists and legends: "digits: backprop, dni × 3
seeds" and "digits: dni, seed 2"."""

from __future__ import annotations

from typing import Any

from synthgrad_core import TrainConfig
from synthgrad_core.config import FIELD_SPECS


def point_label(point: dict[str, Any]) -> str:
    """'dni, seed 1, learning rate 0.1': a grid point in words, for run names."""
    return ", ".join(
        _shown(value) if key == "method" else f"{FIELD_SPECS[key].label.lower()} {_shown(value)}"
        for key, value in point.items()
    )


def sweep_name(config: dict[str, Any], grid: dict[str, list[Any]]) -> str:
    """'digits: backprop, dni × 3 seeds': a sweep without a name, in words."""
    parts = []
    for key, values in grid.items():
        shown = ", ".join(_shown(v) for v in values)
        if key == "method":
            parts.append(shown)
        elif key == "seed":
            parts.append(f"{len(values)} seed{'s' if len(values) != 1 else ''}")
        else:
            parts.append(f"{FIELD_SPECS[key].label.lower()} {shown}")
    return f"{dataset_of(config)}: {' × '.join(parts) or 'one run'}"


def dataset_of(config: dict[str, Any]) -> str:
    return str(config.get("dataset") or TrainConfig().dataset)


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)
