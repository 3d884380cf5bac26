"""One run's state as the manager keeps it: its row, its pending records, its control."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from app.execution.checkpoints import StartState
from app.execution.session import Entry, Session
from app.runs.commands import Desk
from app.runs.status import Control, RunStatus
from synthgrad_core.config import ResolvedConfig
from synthgrad_core.records import json_safe
from synthgrad_core.state import TrainerState

#: Summary fields every run object carries (null until known).
SUMMARY_KEYS = ("loss", "accuracy", "test_accuracy")
#: What else of a session's summary a finished run keeps.
KEPT_FLAGS = ("diverged_at", "divergence", "exploded_at", "notes", "execution", "fidelity")


@dataclass
class Parked:
    """A parked run's state (as a fork captures it) and its config then (knobs changed
    since are changed again when it goes on, so its records say so)."""

    state: TrainerState
    config: ResolvedConfig


@dataclass(eq=False)
class Run:
    id: str
    name: str
    config: ResolvedConfig
    owner_hash: str
    total_steps: int
    created_at: float
    status: RunStatus = RunStatus.QUEUED
    started_at: float | None = None
    finished_at: float | None = None
    step: int = 0
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    #: the sweep the run belongs to, if any
    sweep_id: str | None = None
    #: a branch's parent and the step it branched at: {"run": id, "step": n}
    fork_of: dict[str, Any] | None = None
    #: a branch's starting state until its session opens (not stored: a restart loses it)
    start_state: StartState | None = field(default=None, repr=False)
    #: a queued run of a paused sweep: it does not start until the sweep resumes
    held: bool = False
    #: the runs (ids, this one among them) that train with it as one batch of seeds
    #: (app.runs.batches); not stored: after a restart each trains alone
    batch: list[str] | None = None
    #: records the training thread made and the recorder has not stored yet
    outbox: deque[Entry] = field(default_factory=deque, repr=False)
    #: the control the owner asked for last (written by app.runs.controls only; the
    #: training loop gets it as a command on its session's desk)
    control: Control | None = None
    #: the command queue of the session it trains in (app.runs.commands)
    desk: Desk | None = field(default=None, repr=False)
    #: a paused run whose training process ended to free its slot: its exact state,
    #: taken up again when it resumes
    parked: Parked | None = field(default=None, repr=False)
    cond: threading.Condition = field(
        default_factory=lambda: threading.Condition(threading.RLock()), repr=False
    )
    session: Session | None = field(default=None, repr=False)
    thread: threading.Thread | None = field(default=None, repr=False)
    last_streamed_at: float = 0.0
    #: why the training was killed after not obeying an ending control, if it was
    killed: str | None = None

    def keep_summary(self, summary: dict[str, Any]) -> None:
        """Keep a finished session's final numbers and what else the run should show
        (non-finite numbers, a diverged run's loss, as None: pages embed the summary)."""
        summary = json_safe(summary)
        self.summary.update({k: summary[k] for k in SUMMARY_KEYS})
        for flag in KEPT_FLAGS:
            if summary.get(flag) is not None:
                self.summary[flag] = summary[flag]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Run:
        config = ResolvedConfig.from_stored(row["config"])
        return cls(**{**row, "config": config, "status": RunStatus(row["status"])})

    def row(self) -> dict[str, Any]:
        """The run as the store keeps it."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status.value,
            "config": self.config.as_dict(),
            "owner_hash": self.owner_hash,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "step": self.step,
            "total_steps": self.total_steps,
            "summary": self.summary,
            "error": self.error,
            "sweep_id": self.sweep_id,
            "fork_of": self.fork_of,
        }

    def public(self) -> dict[str, Any]:
        """The run object of the API (no secrets)."""
        elapsed = self.session.elapsed if self.session is not None else None
        row = self.row()
        del row["owner_hash"]
        row["summary"] = {key: self.summary.get(key) for key in SUMMARY_KEYS} | {
            k: v for k, v in self.summary.items() if k not in SUMMARY_KEYS
        }
        row["steps_per_second"] = self.step / elapsed if elapsed else None
        row["batch"] = self.batch  # the seeds it trains with as one batch, if any
        row["requested"] = self.requested
        row["parked"] = self.parked is not None
        return row

    @property
    def requested(self) -> str | None:
        """A control accepted but not yet carried out ("pause", "resume", "stop"), else None."""
        control = self.control
        if control is None or self.status.terminal:
            return None
        if control is Control.PAUSE:
            return "pause" if self.status is not RunStatus.PAUSED else None
        if control is Control.RESUME:
            return "resume" if self.status is RunStatus.PAUSED else None
        return "stop"
