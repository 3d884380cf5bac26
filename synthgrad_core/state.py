"""A trainer's complete state between two steps: captured, saved as a versioned .npz, restored.

One layout for every trainer (a trainer over several seeds captures one of these
per seed): `arrays` by name and JSON `meta`. The names come from the parameters that
hold the arrays (synthgrad_core.nn.Parameter), so the layout follows the network:

arrays                                   meta
  net.<layer>.weight, net.<layer>.bias     format, config (resolved, as_dict), step,
  net.<norm>.scale, net.<norm>.shift       status, diverged_at, exploded_at, first_loss,
  net.<norm>.running_mean, .running_var    epoch_loss, elapsed, rng {order, async} (bit
  opt.<moment>.<parameter>                 generator states), fidelity {epoch, sums}
  module.<k>.param.<parameter>
  module.<k>.opt.<moment>.<parameter>
  feedback.<k>
  order  (this epoch's order)

(<layer> is layer0, layer1, ... from the input; <norm> norm0, ... for each normalised
hidden layer; an optimiser's moments are m, v and t (Adam) or velocity (momentum).)

A branch (a fork, a resumed run) is a trainer built from a config that may differ
from the captured one only in `CHANGEABLE` fields; it takes up every part of the
state its config can use: moments only for the same optimiser, modules only for
the same rule and module optimiser, feedback matrices for feedback alignment.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import BRANCHABLE_FIELDS, ConfigError, ResolvedConfig, planned_steps

#: Version of the layout above; a file of another version is refused with a clear error.
#: (Format 1 kept the weights as one flat array and counted parameters by position.)
FORMAT = 2

#: What a branch may change: the rule, its learning rates and optimisers, its knobs,
#: how long it trains and what it reports (the fields marked branchable in config.py).
#: Everything else shapes the state itself.
CHANGEABLE = BRANCHABLE_FIELDS


class CaptureError(ValueError):
    """The trainer has no state between two steps to capture (batches in flight)."""


class StateError(ValueError):
    """A state file that cannot be read: missing, not a synthgrad state, or another version."""


@dataclass
class TrainerState:
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def step(self) -> int:
        """Steps trained when it was captured."""
        return int(self.meta["step"])

    @property
    def config(self) -> ResolvedConfig:
        return ResolvedConfig.from_stored(self.meta["config"])

    def part(self, prefix: str) -> dict[str, np.ndarray]:
        """The arrays under `prefix.`, with the prefix taken off their names."""
        cut = len(prefix) + 1
        return {k[cut:]: v for k, v in self.arrays.items() if k.startswith(prefix + ".")}


def check_branch(captured: ResolvedConfig, branch: ResolvedConfig, step: int) -> None:
    """Raise ConfigError naming the first field `branch` may not change, or `epochs` if it
    would end before the `step` already trained."""
    check_changes(captured, {f.name: getattr(branch, f.name) for f in dataclasses.fields(branch)})
    if planned_steps(branch) <= step:
        raise ConfigError(
            "epochs",
            f"must leave steps to train: {branch.epochs} epochs end at step "
            f"{planned_steps(branch)}, and {step} steps are trained already",
        )


def check_changes(captured: ResolvedConfig, changes: dict[str, Any]) -> None:
    """Raise ConfigError naming the first of `changes` a branch of `captured` may not make."""
    for name, after in changes.items():
        before = getattr(captured, name, None)
        if isinstance(after, list):
            after = tuple(after)
        if name not in CHANGEABLE and before != after:
            raise ConfigError(
                name,
                f"cannot change from {before!r} to {after!r} when branching from a trained "
                f"state (it shapes the weights or the data); a branch may change "
                f"{', '.join(CHANGEABLE)}",
            )


def save(state: TrainerState, path: str | os.PathLike[str]) -> None:
    """Write `state` to `path` (.npz), atomically: a crash leaves the old file or the new."""
    target = Path(path)
    buffer = io.BytesIO()
    meta = json.dumps({**state.meta, "format": FORMAT})
    arrays: dict[str, Any] = {"__meta__": np.array(meta), **state.arrays}
    np.savez(buffer, **arrays)
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(buffer.getvalue())
    partial.replace(target)


def load(path: str | os.PathLike[str]) -> TrainerState:
    """Read a state file; StateError says plainly what is wrong with it."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise StateError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise StateError(f"{path}: not a synthgrad state file ({exc})") from None
    if "__meta__" not in arrays:
        raise StateError(f"{path}: not a synthgrad state file (no metadata)")
    try:
        meta = json.loads(str(arrays.pop("__meta__")))
    except json.JSONDecodeError as exc:
        raise StateError(f"{path}: its metadata is damaged ({exc})") from None
    version = meta.get("format")
    if version != FORMAT:
        raise StateError(
            f"{path}: state format {version!r}; this synthgrad reads format {FORMAT} only "
            "(train again, or read it with the synthgrad that saved it)"
        )
    return TrainerState(meta, arrays)
