"""Pause, resume, stop, end, knob changes and captures: how requests reach a run's training.

The one writer of a run's control state. Calls return within CONTROL_WAIT seconds
whatever a step costs: they record what was asked (`Run.requested` shows it) and
post a typed command (app.runs.commands) on the desk of the session the run trains
in; the session's loop (app.runs.loop) carries it out at its next slice boundary.
A run with no session (queued, parked, ended) is acted on here at once. A run told
to end that does not (a step of minutes, a stopped process) has its training
killed after `Settings.kill_grace`; a capture waits `Settings.answer_timeout`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from app.execution.session import TrainingFailed
from app.runs.access import Access
from app.runs.commands import Capture, Command, Configure, Desk, End, Pause, Resume
from app.runs.quotas import Admission
from app.runs.run import Run
from app.runs.status import Conflict, Control, RunStatus
from app.settings import Settings
from app.storage.store import Store
from synthgrad_core.state import TrainerState

log = logging.getLogger("synthgrad.runs")

#: Seconds a control call waits for the training thread to act on it; the call then
#: answers with what it accepted (`requested`) and the status follows.
CONTROL_WAIT = 0.5


class Book(Protocol):
    """What controls need of the run manager: its runs and store, and the one way statuses
    change."""

    runs: dict[str, Run]
    store: Store

    def get(self, run_id: str) -> Run: ...

    def transition(self, run: Run, new: RunStatus, **changes: Any) -> None: ...

    def dequeue(self, run: Run) -> bool:
        """Take a run that has not started out of the queue; False if it has started."""
        ...

    def requeue(self, run: Run) -> None:
        """Queue a parked run again, to go on from its state."""
        ...


class Controls:
    """Pause, resume, stop for callers; obeying them for the training threads."""

    def __init__(
        self, settings: Settings, access: Access, admission: Admission, book: Book
    ) -> None:
        self.settings = settings
        self.access = access
        self.admission = admission
        self.book = book

    def training_failed(self, run: Run, exc: Exception) -> None:
        """A training thread's error: the run fails saying why (or ends as it was told)."""
        if isinstance(exc, TrainingFailed):
            error = str(exc)
            if exc.details:
                log.error("run %s: the training process failed:\n%s", run.id, exc.details)
        else:
            error = f"{type(exc).__name__}: {exc}"
            log.exception("run %s failed", run.id)
        if run.status.terminal:
            return
        ending = run.control if run.control is not None and run.control.ends else None
        if ending is not None and run.killed:  # told to end, did not, and was killed
            self.book.transition(run, ending.final_status, error=run.error or run.killed)
        else:
            self.book.transition(run, RunStatus.FAILED, error=self.admission.scrub(error))

    def _post(self, runs: list[Run], command: Command) -> None:
        """Hand `command` to the session the runs train in (one post per session); to the
        runs as they are, if that session has ended or parked meanwhile."""
        desks: list[Desk] = []
        for run in runs:
            if run.desk is not None and any(run.desk is d for d in desks):
                continue
            if run.desk is not None and run.desk.post(command):
                desks.append(run.desk)
            else:
                self.offline(run, command)

    def offline(self, run: Run, command: Command) -> None:
        """A command for a run with no session to take it: parked, ended or not started."""
        parked = run.parked
        match command:
            case Resume() if parked is not None and run.status is RunStatus.PAUSED:
                self.book.requeue(run)
            case End(run_id, control) if run_id == run.id and not run.status.terminal:
                run.parked = None
                self.book.transition(run, control.final_status)
            case Capture(run_id, answer) if run_id == run.id:
                if parked is not None:
                    answer.give(parked.state)
                else:
                    status = run.status.value
                    answer.give(error=Conflict(f"only a paused run can be forked; it is {status}"))

    def _arm_kill(self, run: Run) -> None:
        """A training process that has not obeyed an ending control within `kill_grace`
        (a step taking minutes, a stopped process) is killed."""
        timer = threading.Timer(self.settings.kill_grace, self._kill_if_stuck, (run,))
        timer.daemon = True
        timer.start()

    def _kill_if_stuck(self, run: Run) -> None:
        session = run.session
        if run.status.terminal or session is None:
            return
        grace = self.settings.kill_grace
        log.warning("run %s did not stop within %g s: killing its training", run.id, grace)
        run.killed = f"the training did not stop within {grace:g} s and was killed"
        session.kill()

    def settled(self, run: Run, until: Callable[[Run], bool], timeout: float | None) -> Run:
        """Wait up to `timeout` for `until(run)` (or for the run to end); for scripts and tests."""
        with run.cond:
            run.cond.wait_for(lambda: until(run) or run.status.terminal, timeout=timeout)
        return run

    def wait(self, run_id: str, timeout: float | None = None) -> Run:
        """Block until the run is terminal (or `timeout` passes); for scripts and tests."""
        return self.settled(self.book.get(run_id), lambda r: r.status.terminal, timeout)

    def rename(self, run_id: str, name: str, token: str | None) -> Run:
        """Give the run a new name (owner or admin)."""
        run = self.controlled(run_id, token)
        with run.cond:
            self.book.store.update_run(run.id, name=name)
            run.name = name
        return run

    def controlled(self, run_id: str, token: str | None) -> Run:
        """The run, if `token` may control it (Forbidden otherwise)."""
        run = self.book.get(run_id)
        self.access.authorize(run.owner_hash, token)
        return run

    def pause(self, run_id: str, token: str | None, wait: float = CONTROL_WAIT) -> Run:
        """Ask a running run to pause; returns within `wait` s, paused or with `requested` set.
        A batch of seeds pauses as one."""
        run = self.controlled(run_id, token)
        with run.cond:
            starting = run.status is RunStatus.QUEUED and run.thread is not None
            if run.status is not RunStatus.RUNNING and not starting:
                raise Conflict(f"only a running run can be paused; this one is {run.status.value}")
            if run.control is not None and run.control.ends:
                raise Conflict("the run is stopping")
            run.control = Control.PAUSE
        others = self.partners(run, RunStatus.RUNNING)
        for other in others:
            other.control = Control.PAUSE
        self._post([run, *others], Pause())
        return self.settled(run, lambda r: r.status is RunStatus.PAUSED, wait)

    def resume(self, run_id: str, token: str | None, wait: float = CONTROL_WAIT) -> Run:
        """Resume a paused run (a parked one is queued again, to go on from its state)."""
        run = self.controlled(run_id, token)
        with run.cond:
            if run.status is not RunStatus.PAUSED:
                raise Conflict(f"only a paused run can be resumed; this one is {run.status.value}")
            run.control = Control.RESUME
        others = self.partners(run, RunStatus.PAUSED)
        for other in others:
            other.control = Control.RESUME
        self._post([run, *others], Resume())
        return self.settled(run, lambda r: r.status is not RunStatus.PAUSED, wait)

    def stop(self, run_id: str, token: str | None, wait: float = CONTROL_WAIT) -> Run:
        run = self.controlled(run_id, token)
        self.end(run, Control.STOP)
        for other in self.partners(run, RunStatus.RUNNING, RunStatus.PAUSED):
            with contextlib.suppress(Conflict):
                self.end(other, Control.STOP)
        return self.settled(run, lambda r: r.status.terminal, wait)

    def configure(self, runs: list[Run], changes: dict[str, Any]) -> None:
        """Hand changed knobs to the trainer of `runs` (their configs already say them)."""
        self._post(runs, Configure(changes))

    def capture(self, run: Run) -> TrainerState:
        """A paused run's exact state (for a fork). Conflict if it is not paused or its
        trainer has none between two steps; Unavailable if its training does not answer
        within `answer_timeout` (the run then fails, saying so)."""
        with run.cond:
            if run.status is not RunStatus.PAUSED:
                raise Conflict(f"only a paused run can be forked; this one is {run.status.value}")
            if run.parked is not None:
                return run.parked.state
        command = Capture(run.id)
        self._post([run], command)
        state: TrainerState = command.answer.wait(
            self.settings.answer_timeout + CONTROL_WAIT, f"run {run.id}'s state"
        )
        return state

    def partners(self, run: Run, *statuses: RunStatus) -> list[Run]:
        """The other runs of `run`'s batch of seeds (app.runs.batches) in one of `statuses`,
        training with it and not told to end."""
        others = (self.book.runs.get(i) for i in run.batch or [] if i != run.id)
        return [
            other
            for other in others
            if other is not None
            and other.thread is run.thread
            and other.status in statuses
            and not (other.control is not None and other.control.ends)
        ]

    def end(self, run: Run, control: Control) -> None:
        """End a run for `control` (stop, delete, shutdown, fail): at once if it is queued
        or parked, else at its session's next slice boundary."""
        with run.cond:
            if run.status.terminal:
                raise Conflict(f"the run is already {run.status.value}")
            run.control = control
            if self.book.dequeue(run) or run.parked is not None:
                run.parked = None
                self.book.transition(run, control.final_status)
                return
        self._post([run], End(run.id, control))
        if run.thread is not None:
            self._arm_kill(run)

    def store_failed(self, reason: str, lost: dict[str, int]) -> None:
        """The store could not write: every unfinished run ends `failed`, saying what is missing."""
        log.error("the store cannot write (%s): ending unfinished runs", reason)
        for run in list(self.book.runs.values()):
            if run.status.terminal or run.control is Control.FAIL:
                continue
            first = lost.get(run.id)
            missing = f"; its records from step {first} on were not stored" if first else ""
            run.error = f"{reason}: the store could not write{missing}"
            with contextlib.suppress(Conflict):
                self.end(run, Control.FAIL)
