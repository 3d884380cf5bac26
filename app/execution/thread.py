"""The thread executor: the trainer runs in the manager's thread for the run."""

from __future__ import annotations

import os
from typing import Any

from app.execution.checkpoints import StartState
from app.execution.session import (
    Job,
    Session,
    Trainable,
    branched,
    build,
    capture,
    step_entry,
)
from synthgrad_core.state import TrainerState


# -- threads -------------------------------------------------------------------
class ThreadSession:
    """The trainer in the calling thread; a slice is one step, so controls act at once."""

    def __init__(self, trainer: Trainable) -> None:
        self.trainer = trainer
        self.total_steps = trainer.total_steps

    @property
    def elapsed(self) -> float:
        return self.trainer.elapsed

    @property
    def diverged_at(self) -> int | None:
        return getattr(self.trainer, "diverged_at", None)

    @property
    def status(self) -> str:
        return self.trainer.status

    @property
    def done(self) -> bool:
        return self.trainer.done

    def advance(self) -> list[Any]:
        return [step_entry(self.trainer)]

    def summary(self) -> dict[str, Any]:
        return self.trainer.summary()

    def capture(self, seed_index: int | None = None) -> TrainerState:
        return capture(self.trainer, seed_index)

    def configure(self, changes: dict[str, Any]) -> None:
        self.trainer.configure(**changes)

    def check(self) -> None:
        pass  # it lives in the calling thread

    def close(self) -> None:
        self.trainer.close()

    def kill(self) -> None:
        pass  # a thread cannot be killed: its one-step slices end soon on their own


class ThreadExecutor:
    name = "thread"

    def open(self, config: Job, state: StartState | None = None) -> Session:
        return ThreadSession(branched(build(config), state))

    def capacity(self) -> int:
        return os.cpu_count() or 1

    def shutdown(self) -> None:
        pass
