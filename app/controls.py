"""Pause, resume, stop and end: how the manager asks a training thread, and how it obeys.

Calls return within CONTROL_WAIT seconds whatever a step costs: they record the
request (`Run.requested` shows it) and the training thread carries it out at its
next slice boundary. A run told to end that does not (a step of minutes, a
stopped process) has its training killed after `Settings.kill_grace`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from .access import Access
from .executors import TrainingFailed
from .quotas import Admission, FairQueue
from .run import Run
from .settings import Settings
from .status import Conflict, Control, RunStatus

log = logging.getLogger("synthgrad.runs")

#: Seconds a control call waits for the training thread to act on it; the call then
#: answers with what it accepted (`requested`) and the status follows.
CONTROL_WAIT = 0.5


class Controls:
    """The control half of RunManager (a mixin: it shares the manager's state)."""

    settings: Settings
    access: Access
    admission: Admission
    runs: dict[str, Run]
    _lock: threading.RLock
    _queue: FairQueue

    def get(self, run_id: str) -> Run:
        raise NotImplementedError  # RunManager's

    def _training_failed(self, run: Run, exc: Exception) -> None:
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
            self._transition(run, ending.final_status, error=run.error or run.killed)
        else:
            self._transition(run, RunStatus.FAILED, error=self.admission.scrub(error))

    def _transition(self, run: Run, new: RunStatus, **changes: Any) -> None:
        raise NotImplementedError  # RunManager's

    def _obey(self, run: Run) -> bool:
        """Handle pause/resume/stop at a step boundary; False means the thread should end."""
        with run.cond:
            while run.control is Control.PAUSE:
                if run.status is RunStatus.RUNNING:
                    self._transition(run, RunStatus.PAUSED)
                run.cond.wait()
            if run.control is not None and run.control.ends:
                self._transition(run, run.control.final_status)
                return False
            if run.status is RunStatus.PAUSED:
                self._transition(run, RunStatus.RUNNING)
            run.control = None
            return True

    def _ask(self, run: Run, control: Control) -> None:
        """Tell the training thread what to do at its next slice boundary.

        A control that ends the run also arms a timer: a training process that has not
        obeyed within `kill_grace` (a step taking minutes, a stopped process) is killed.
        """
        with run.cond:
            run.control = control
            run.cond.notify_all()
        if control.ends and run.thread is not None:
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

    def settled(self, run: Run, until: Callable[[Run], bool], timeout: float) -> Run:
        """Wait up to `timeout` for `until(run)` (or for the run to end); for scripts and tests."""
        with run.cond:
            run.cond.wait_for(lambda: until(run) or run.status.terminal, timeout=timeout)
        return run

    def _controlled(self, run_id: str, token: str | None) -> Run:
        run = self.get(run_id)
        self.access.authorize(run.owner_hash, token)
        return run

    def pause(self, run_id: str, token: str | None, wait: float = CONTROL_WAIT) -> Run:
        """Ask a running run to pause; returns within `wait` s, paused or with `requested` set."""
        run = self._controlled(run_id, token)
        with run.cond:
            starting = run.status is RunStatus.QUEUED and run.thread is not None
            if run.status is not RunStatus.RUNNING and not starting:
                raise Conflict(f"only a running run can be paused; this one is {run.status.value}")
            if run.control is not None and run.control.ends:
                raise Conflict("the run is stopping")
            self._ask(run, Control.PAUSE)
        return self.settled(run, lambda r: r.status is RunStatus.PAUSED, wait)

    def resume(self, run_id: str, token: str | None, wait: float = CONTROL_WAIT) -> Run:
        run = self._controlled(run_id, token)
        with run.cond:
            if run.status is not RunStatus.PAUSED:
                raise Conflict(f"only a paused run can be resumed; this one is {run.status.value}")
            self._ask(run, Control.RESUME)
        return self.settled(run, lambda r: r.status is RunStatus.RUNNING, wait)

    def stop(self, run_id: str, token: str | None, wait: float = CONTROL_WAIT) -> Run:
        run = self._controlled(run_id, token)
        self._end(run, Control.STOP)
        return self.settled(run, lambda r: r.status.terminal, wait)

    def _end(self, run: Run, control: Control) -> None:
        with run.cond:
            if run.status.terminal:
                raise Conflict(f"the run is already {run.status.value}")
            with self._lock:
                queued = run.status is RunStatus.QUEUED and run.thread is None
                if queued:
                    self._queue.remove(run.id)
            if queued:
                run.control = control
                self._transition(run, control.final_status)
                return
            self._ask(run, control)

    def _store_failed(self, reason: str, lost: dict[str, int]) -> None:
        """The store could not write: every unfinished run ends `failed`, saying what is missing."""
        log.error("the store cannot write (%s): ending unfinished runs", reason)
        for run in list(self.runs.values()):
            if run.status.terminal or run.control is Control.FAIL:
                continue
            first = lost.get(run.id)
            missing = f"; its records from step {first} on were not stored" if first else ""
            run.error = f"{reason}: the store could not write{missing}"
            with contextlib.suppress(Conflict):
                self._end(run, Control.FAIL)
