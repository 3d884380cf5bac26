"""Search the config fields' extremes for combinations the validator admits but that cannot train.

Usage: nice python scripts/extremes.py [--steps N] [--without-rules]
(848 configs; 6 minutes of wall time on a shared 2-core machine at load 11)

Each field is set to each of its extremes (the bounds of its FieldSpec, every choice,
the fewest and most layers), alone and crossed with the structures that change what a
step does (batch norm, modules with their own batch norm, cDNI, feedback alignment,
Adam, a pipelined run), on a bit task and a class task. A config the validator refuses
is counted and skipped. An admitted one trains N steps; it is reported when building or
training it raises, when it goes non-finite, or when its held-out loss ends far above the
untrained network's. A report is a finding to judge: a learning rate of 10,000 diverges
by choice, a batch of one under batch norm cannot train at all.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synthgrad_core import config
from synthgrad_core.config import (
    FIELD_SPECS,
    MAX_LAYERS,
    MAX_WIDTH,
    MAX_WORKERS,
    ConfigError,
    FieldSpec,
    TrainConfig,
)
from synthgrad_core.factory import make_trainer

BASES: dict[str, dict[str, Any]] = {
    "addition": {"dataset": "addition", "bits": 6, "examples": 200, "hidden": [16, 16]},
    "digits": {"dataset": "digits", "examples": 400, "hidden": [16, 16]},
}
STRUCTURES: dict[str, dict[str, Any]] = {
    "plain": {},
    "batch norm": {"batch_norm": "on"},
    "dni, module batch norm": {"method": "dni", "sg_hidden": [16], "sg_batch_norm": "on"},
    "cdni": {"method": "cdni"},
    "feedback alignment": {"method": "feedback_alignment"},
    "adam": {"optimizer": "adam", "sg_optimizer": "adam"},
    "pipelined dni": {"method": "dni", "execution": "pipelined", "workers": 2},
}
#: Corners no single field's extreme reaches: the most stages, the fewest examples per
#: batch statistic, a batch larger than the data, a net of one unit per layer.
CORNERS: dict[str, dict[str, Any]] = {
    "most workers": {
        "method": "dni",
        "execution": "pipelined",
        "workers": MAX_WORKERS,
        "hidden": [8] * (MAX_WORKERS - 1),
    },
    "two examples under batch norm": {
        "examples": 4,
        "test_fraction": 0.5,
        "batch_norm": "on",
        "batch_size": 2,
    },
    "batch larger than the data": {"examples": 20, "batch_size": 4096, "batch_norm": "on"},
    "a unit per layer": {"hidden": [1] * MAX_LAYERS, "method": "cdni", "batch_norm": "on"},
}
#: Fields the search leaves alone: what the base sets, and what only names things.
SKIPPED = ("dataset", "data_path", "seed")
#: Held-out loss this many times the untrained network's: reported as a blow-up.
BLOW_UP = 10.0


def extremes(spec: FieldSpec) -> list[Any]:
    """The values at the edges of what a field admits."""
    if spec.choices is not None:
        return list(spec.choices)
    if spec.kind == "widths":
        fewest = [] if spec.min_count == 0 else [1]
        return [fewest, [1] * MAX_LAYERS, [MAX_WIDTH]]
    low = spec.ge if spec.ge is not None else (spec.gt or 0.0) + 1e-9
    values = [low, spec.le] if spec.le is not None else [low]
    return [int(v) if spec.integer else v for v in values]


def configs() -> Iterator[tuple[str, dict[str, Any]]]:
    for base_name, base in BASES.items():
        for structure, changes in STRUCTURES.items():
            for name, spec in FIELD_SPECS.items():
                if name in SKIPPED:
                    continue
                for value in extremes(spec):
                    label = f"{base_name}, {structure}, {name}={value!r}"
                    yield label, fitted({**base, **changes, name: value}, name)


def corners() -> Iterator[tuple[str, dict[str, Any]]]:
    for base_name, base in BASES.items():
        for corner, changes in CORNERS.items():
            yield f"{base_name}, {corner}", fitted({**base, **changes}, "")


def fitted(values: dict[str, Any], varied: str) -> dict[str, Any]:
    """`values` with the examples an addition of few bits has (4 ** (bits - 1) pairs),
    unless the examples are what is varied."""
    if values["dataset"] == "addition" and varied != "examples":
        values["examples"] = min(values["examples"], 4 ** (values["bits"] - 1))
    return values


def verdict(values: dict[str, Any], steps: int) -> str | None:
    """None if the config trains (or is refused); else what went wrong."""
    try:
        cfg = TrainConfig.from_dict(values).resolve()
    except ConfigError:
        return None
    cfg = dataclasses.replace(cfg, test_every=0, histogram_every=0, diagnostics_every=1)
    try:
        trainer = make_trainer(cfg)
        try:
            data = trainer.data
            before = trainer.evaluate(data.x_test, data.y_test)["loss"]
            for _ in range(min(steps, trainer.total_steps)):
                if trainer.done:
                    break
                trainer.step()
            after = trainer.evaluate(data.x_test, data.y_test)["loss"]
            status = trainer.status
        finally:
            trainer.close()
    except Exception as exc:  # the finding: a config admitted and then failing
        return f"raises {type(exc).__name__}: {exc}"
    if status == "diverged" or not math.isfinite(after):
        return f"non-finite ({status}), held-out loss {before:.3g} -> {after:.3g}"
    if after > BLOW_UP * before:
        return f"held-out loss blows up: {before:.3g} -> {after:.3g}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="steps each config trains")
    parser.add_argument(
        "--without-rules",
        action="store_true",
        help="switch the validator's trainability rules off (to see what they catch)",
    )
    args = parser.parse_args()
    if args.without_rules:
        config.CROSS_FIELD_RULES = config.CONSISTENCY_RULES
    tried = refused = 0
    findings: list[str] = []
    for label, values in itertools.chain(configs(), corners()):
        tried += 1
        try:
            TrainConfig.from_dict(values).resolve()
        except ConfigError:
            refused += 1
            continue
        found = verdict(values, args.steps)
        if found:
            findings.append(f"{label}: {found}")
            print(findings[-1], flush=True)
    print(f"{tried} configs, {refused} refused by the validator, {len(findings)} findings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
