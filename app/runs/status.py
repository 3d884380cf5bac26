"""Run statuses with every allowed change in one table, the controls an owner sends, and errors."""

from __future__ import annotations

import enum


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    STOPPED = "stopped"
    DIVERGED = "diverged"
    FAILED = "failed"
    INTERRUPTED = "interrupted"

    @property
    def terminal(self) -> bool:
        return not TRANSITIONS[self]


#: Every allowed status change, in one place.
TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset(
        {RunStatus.RUNNING, RunStatus.STOPPED, RunStatus.FAILED, RunStatus.INTERRUPTED}
    ),
    RunStatus.RUNNING: frozenset(
        {
            RunStatus.PAUSED,
            RunStatus.FINISHED,
            RunStatus.STOPPED,
            RunStatus.DIVERGED,
            RunStatus.FAILED,
            RunStatus.INTERRUPTED,
        }
    ),
    # a parked run (its slot freed) is queued again when it resumes
    RunStatus.PAUSED: frozenset(
        {
            RunStatus.RUNNING,
            RunStatus.QUEUED,
            RunStatus.STOPPED,
            RunStatus.FAILED,
            RunStatus.INTERRUPTED,
        }
    ),
    RunStatus.FINISHED: frozenset(),
    RunStatus.STOPPED: frozenset(),
    RunStatus.DIVERGED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.INTERRUPTED: frozenset(),
}
ACTIVE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PAUSED})
TERMINAL = frozenset(s for s in RunStatus if s.terminal)


class Control(enum.StrEnum):
    """What the manager asks of a training thread, obeyed at the next step boundary."""

    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"
    SHUTDOWN = "shutdown"  # the server is closing: the run becomes `interrupted`
    DELETE = "delete"  # stopped on the way to being deleted: viewers hear only "deleted"
    FAIL = "fail"  # the server cannot go on with it (the store cannot write)

    @property
    def final_status(self) -> RunStatus:
        if self is Control.FAIL:
            return RunStatus.FAILED
        return RunStatus.INTERRUPTED if self is Control.SHUTDOWN else RunStatus.STOPPED

    @property
    def ends(self) -> bool:
        return self in (Control.STOP, Control.SHUTDOWN, Control.DELETE, Control.FAIL)


class RunNotFound(KeyError):
    """No run has this id."""


class Conflict(RuntimeError):
    """The action does not fit the run's status."""


class Forbidden(PermissionError):
    """The caller holds neither the run's owner token nor the admin token."""


class TooManyRuns(RuntimeError):
    """A limit on runs is reached (stored, per owner, per minute); `retry_after` in seconds."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(RuntimeError):
    """The server cannot take runs now: the store cannot write or the disk is nearly full."""
