"""What crosses between a session and its trainer elsewhere (a child process's pipe, a Ray
actor's calls): typed requests one way, typed replies the other, each matched by its type.

An error the trainer raises for a request (a refused config, state or change) crosses
as itself (`Refused.error`, pickled), so the server raises the same type.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, NamedTuple

from app.execution.session import Trainable, capture, step_entry
from synthgrad_core import ConfigError
from synthgrad_core.state import CaptureError, TrainerState


@dataclass(frozen=True)
class Advance:
    """Train one slice."""


@dataclass(frozen=True)
class Summarize:
    """The trainer's summary (Trainer.summary)."""


@dataclass(frozen=True)
class TakeState:
    """The trainer's state between two steps; of a batch of seeds, that of `seed_index`."""

    seed_index: int | None = None


@dataclass(frozen=True)
class ChangeKnobs:
    """Change live knobs in place (Trainer.configure)."""

    changes: dict[str, Any]


@dataclass(frozen=True)
class Close:
    """Release the trainer and end."""


Request = Advance | Summarize | TakeState | ChangeKnobs | Close


class Ready(NamedTuple):
    total_steps: int


class Refused(NamedTuple):
    """The trainer refused a config, a state or a change: the exception it raised, itself
    (ConfigError, CaptureError, ValueError, OSError), pickled across."""

    error: Exception


class Slice(NamedTuple):
    records: list[Any]  # Entry, or BatchEntry for a SeedsJob
    elapsed: float
    status: str
    diverged_at: int | None
    #: every record is out (a pipelined trainer says "finished" while records it made
    #: ahead are still to be read)
    done: bool


class Summary(NamedTuple):
    summary: dict[str, Any]


class Captured(NamedTuple):
    state: TrainerState


class Configured(NamedTuple):
    pass


class Failed(NamedTuple):
    message: str
    traceback: str


Reply = Ready | Refused | Slice | Summary | Captured | Configured | Failed


def answer(trainer: Trainable, request: Request, slice_seconds: float) -> Reply:
    """A remote session's request, answered where the trainer lives (a child process, a
    Ray actor)."""
    try:
        match request:
            case Advance():
                return train_slice(trainer, slice_seconds)
            case Summarize():
                return Summary(trainer.summary())
            case TakeState(seed_index):
                return Captured(capture(trainer, seed_index))
            case ChangeKnobs(changes):
                trainer.configure(**changes)
                return Configured()
    except (ConfigError, CaptureError) as exc:
        return Refused(exc)
    raise TypeError(f"not a request: {request!r}")


def replied(reply: Reply) -> Any:
    """What a capture or configure request's reply carries; its refusal raised."""
    if isinstance(reply, Refused):
        raise reply.error
    return reply.state if isinstance(reply, Captured) else None


def train_slice(trainer: Trainable, slice_seconds: float) -> Slice:
    """One step, then more until `slice_seconds` pass or the run ends.

    Records are encoded here, where the trainer lives, in parallel with the server.
    """
    records = [step_entry(trainer)]
    deadline = time.perf_counter() + slice_seconds
    while not trainer.done and time.perf_counter() < deadline:
        records.append(step_entry(trainer))
    diverged_at = getattr(trainer, "diverged_at", None)
    return Slice(records, trainer.elapsed, trainer.status, diverged_at, trainer.done)
