"""A branch's start from any step: restore the nearest checkpoint, replay to the step.

`Replay` travels to wherever the branch's trainer will live (a thread, a training
process, a Ray actor) in place of a captured state; `replayed` turns it into the
state at `step` there, so the replay's work runs where training runs, never in
the server's request threads.
"""

from __future__ import annotations

from typing import NamedTuple

from synthgrad_core.config import ResolvedConfig
from synthgrad_core.factory import make_trainer
from synthgrad_core.state import TrainerState


class Replay(NamedTuple):
    """The parent's state at `step`, to be made: its newest checkpoint at or before it
    (`start`; None: from the parent's untrained network, built from `config`), then the
    parent's own steps up to `step`."""

    config: ResolvedConfig
    start: TrainerState | None
    step: int


#: What a branch starts from: a captured state, or one to replay.
StartState = TrainerState | Replay


def replayed(start: StartState) -> TrainerState:
    """The state a branch starts from; a Replay's by training the parent's steps again.

    The parent's trainer is deterministic (sequential, or pipelined with one worker),
    so its state after the replay is the one it had at `step`.
    """
    if isinstance(start, TrainerState):
        return start
    checkpoint = start.start
    trainer = make_trainer(checkpoint.config if checkpoint is not None else start.config)
    try:
        if checkpoint is not None:
            trainer.restore(checkpoint)
        while trainer.step_count < start.step and not trainer.done:
            trainer.step()
        return trainer.capture()
    finally:
        trainer.close()
