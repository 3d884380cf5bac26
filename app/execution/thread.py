"""The thread executor: the trainer runs in the manager's thread for the run."""

from __future__ import annotations

import os
from typing import Any

from app.execution.session import Entry, Session, branched, entry
from synthgrad_core import Trainer
from synthgrad_core.config import ResolvedConfig
from synthgrad_core.pipeline import make_trainer
from synthgrad_core.state import TrainerState


# -- threads -------------------------------------------------------------------
class ThreadSession:
    """The trainer in the calling thread; a slice is one step, so controls act at once."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.total_steps = trainer.total_steps

    @property
    def elapsed(self) -> float:
        return self.trainer.elapsed

    @property
    def diverged_at(self) -> int | None:
        return self.trainer.diverged_at

    @property
    def status(self) -> str:
        return self.trainer.status

    @property
    def done(self) -> bool:
        return self.trainer.done

    def advance(self) -> list[Entry]:
        return [entry(self.trainer.step())]

    def summary(self) -> dict[str, Any]:
        return self.trainer.summary()

    def capture(self) -> TrainerState:
        return self.trainer.capture()

    def configure(self, changes: dict[str, Any]) -> None:
        self.trainer.configure(**changes)

    def close(self) -> None:
        self.trainer.close()

    def kill(self) -> None:
        pass  # a thread cannot be killed: its one-step slices end soon on their own


class ThreadExecutor:
    name = "thread"

    def open(self, config: ResolvedConfig, state: TrainerState | None = None) -> Session:
        return ThreadSession(branched(make_trainer(config), state))

    def capacity(self) -> int:
        return os.cpu_count() or 1

    def shutdown(self) -> None:
        pass
