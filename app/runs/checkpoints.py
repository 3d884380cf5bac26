"""Checkpoints of runs as they train, and where a fork at any step starts from.

The training thread of a run calls `tick` after each slice: every
`Settings.checkpoint_seconds` of training it asks the session for the trainer's
state (a round trip between two slices, wherever the trainer lives) and stores it
(app.storage.checkpoints); also when a control waits to be obeyed (a pause, a
stop, a server shutting down) and when the run has ended. The manager also calls
`take` at a run's start and right after each live knob change, so the config of
the newest checkpoint at or before a step is the config the run trained with
then. A diverged run's last stored checkpoint is its last finite state: a state
with a non-finite array, or captured after the divergence, is never stored.

A fork at step n restores the newest checkpoint at or before n and replays the
parent's steps to n (app.execution.checkpoints.Replay, where the branch trains).
That needs a state between two steps: a pipelined dni/cdni run with more than
one worker has batches in flight there, so it forks only from step 0.

Plain Python, no HTTP.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from app.execution.checkpoints import Replay
from app.execution.session import Session, TrainingFailed
from app.runs.run import Run
from app.runs.status import Control, RunStatus
from app.settings import Settings
from app.storage.checkpoints import Checkpoints
from app.storage.store import Store, StoreError
from synthgrad_core import ConfigError
from synthgrad_core.config import ResolvedConfig
from synthgrad_core.state import CaptureError, TrainerState

log = logging.getLogger("synthgrad.runs")


def not_replayable(config: ResolvedConfig) -> str | None:
    """Why a run of `config` cannot be replayed step for step, or None if it can."""
    if config.execution == "pipelined" and config.method in ("dni", "cdni") and config.workers > 1:
        return (
            f"it trained pipelined with {config.workers} workers: between two of its steps "
            "batches are in flight (the modules at stage boundaries hold targets they have "
            "not learned from yet), so no state there can start a branch (train with "
            "workers 1 or sequentially to fork at any step)"
        )
    return None


def step_error(message: str) -> ConfigError:
    """A 422 naming the fork body's `step` (not a config field)."""
    error = ConfigError("step", message)
    error.part = ""  # type: ignore[attr-defined]  # read by the app's ConfigError handler
    return error


def finite(state: TrainerState) -> bool:
    return all(
        np.isfinite(a).all() for a in state.arrays.values() if np.issubdtype(a.dtype, np.floating)
    )


class RunCheckpoints:
    """Stores runs' checkpoints at a cadence; finds where a fork starts."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.every = settings.checkpoint_seconds
        self.table = Checkpoints(store)
        #: per run: the training time of its last checkpoint (None: it cannot be captured)
        self._last: dict[str, float | None] = {}
        #: seconds each capture and store took, for the benchmark (the latest few)
        self.costs: list[float] = []

    def tick(
        self,
        run: Run,
        session: Session,
        control: Control | None = None,
        seed_index: int | None = None,
    ) -> None:
        """After a slice: a checkpoint if `checkpoint_seconds` of training passed, if
        `control` is about to be obeyed (a pause, a stop, a shutdown: not a delete, whose
        checkpoints go with it), or if the run has ended (finished; a diverged run keeps
        its last finite one). `seed_index`: the run's seed in a batch of seeds."""
        last = self._last.get(run.id, 0.0)
        if last is None or (control is Control.DELETE):
            return
        due = session.elapsed - last >= self.every
        if due or control is not None or session.done:
            self.take(run, session, seed_index)
        if session.done or (control is not None and control.ends):
            self.forget(run)

    def forget(self, run: Run) -> None:
        """The run trains no more here (ended, or its seed of a batch did)."""
        self._last.pop(run.id, None)

    def take(self, run: Run, session: Session, seed_index: int | None = None) -> None:
        """Store the trainer's state now (of the seed at `seed_index`, in a batch of seeds),
        if it has one worth keeping."""
        if self._last.get(run.id, 0.0) is None or not_replayable(run.config):
            self._last[run.id] = None
            return
        started = time.perf_counter()
        try:
            state = session.capture(seed_index)
        except (CaptureError, TrainingFailed) as exc:
            log.info("run %s: no checkpoints (%s)", run.id, exc)
            self._last[run.id] = None
            return
        self._last[run.id] = session.elapsed
        if state.meta.get("status") == "diverged" or not finite(state):
            return  # the last finite one stays the newest
        try:
            size = self.table.add(run.id, state)
        except StoreError as exc:  # the run trains on; a fork finds an older checkpoint
            log.warning(
                "run %s: storing a checkpoint at step %d failed: %s", run.id, state.step, exc
            )
            return
        self.costs = [*self.costs[-99:], time.perf_counter() - started]
        log.debug("run %s: checkpoint at step %d (%d bytes)", run.id, state.step, size)

    def stored(self, run: Run) -> dict[str, Any]:
        """The run's stored checkpoints (steps, bytes) and its owner's checkpoint bytes."""
        return {
            "steps": self.table.steps(run.id),
            "bytes": self.table.bytes_of(run.id),
            "owner_bytes": self.table.bytes_of_owner(run.owner_hash),
        }

    def restart_branch(self, run: Run, runs: dict[str, Run]) -> str | None:
        """A branch still queued when the server stopped starts from its parent's stored
        checkpoints (run.start_state); why it cannot, if it cannot."""
        assert run.fork_of is not None
        parent, step = runs.get(run.fork_of["run"]), run.fork_of["step"]
        lost = f"its starting state (step {step} of its parent) was lost when the server restarted"
        if parent is None:
            return f"{lost} (the parent was deleted)"
        try:
            run.start_state = self.start_of_fork(parent, step)
        except ConfigError as exc:
            return f"{lost} ({exc.message})"
        return None

    def start_of_fork(self, parent: Run, step: int | None) -> Replay:
        """Where a branch of `parent` at `step` starts (default: its last good step).

        Raises ConfigError (field "step") for a step it never trained, one after it
        diverged, or one a run that cannot be replayed passed.
        """
        trained = parent.step - (parent.status is RunStatus.DIVERGED)
        if step is None:
            step = trained
        if step < 0 or step > trained:
            last = "its last good step" if parent.status is RunStatus.DIVERGED else "its last"
            raise step_error(f"must be between 0 and {trained}, {last} step trained")
        reason = not_replayable(parent.config)
        if reason is not None and step > 0:
            raise step_error(f"cannot fork run {parent.id} at step {step}: {reason}")
        start = self.table.at_or_before(parent.id, step)
        if start is None and parent.fork_of is not None:
            first = self.table.steps(parent.id)
            after = f"; its first is at step {first[0]}" if first else ""
            raise step_error(
                f"run {parent.id} is a branch with no stored state at or before step {step}"
                f"{after} (fork its parent at that step instead)",
            )
        return Replay(parent.config, start, step)
