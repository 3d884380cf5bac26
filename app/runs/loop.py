"""The run loop: one training session from admission to its end, for one run or a batch.

A single run is a batch of one. `Training` opens the session (one config, from a
branch's or a parked run's state; or a SeedsJob of a sweep group's seeds), then
trains slice by slice. Between slices, and at once while paused, it takes the
session's commands (app.runs.commands) in order: pause, resume, end one run,
change knobs, capture a run's state. It hands each step's records to each member
run, ends each member as its seed finishes or diverges, and at the end frees the
slot. A session paused longer than `Settings.park_after` is parked: each member's
exact state is kept on the run, the session ends and the slot is freed; resume
queues the run again (app.runs.controls).

Plain Python on top of the run manager; it knows nothing of HTTP.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Protocol

from app.execution.session import BatchEntry, Entry, Executor, NoAnswer, SeedsJob, Session
from app.runs.checkpoints import RunCheckpoints
from app.runs.commands import Capture, Command, Configure, Desk, End, Pause, Resume
from app.runs.controls import Controls
from app.runs.quotas import Admission
from app.runs.run import Parked, Run
from app.runs.status import Conflict, Control, RunStatus, Unavailable
from app.settings import Settings
from synthgrad_core import ConfigError
from synthgrad_core.state import CaptureError

log = logging.getLogger("synthgrad.runs")

#: Seconds between looks at a paused session's training process (is it alive, is it
#: time to park) while no command comes.
PAUSE_POLL = 0.25


class Lifecycle(Protocol):
    """What the run loop needs of the run manager."""

    settings: Settings
    executor: Executor
    admission: Admission
    controls: Controls
    checkpoints: RunCheckpoints

    def transition(self, run: Run, new: RunStatus, **changes: Any) -> None: ...

    def finish(self, run: Run, status: str, summary: dict[str, Any]) -> None:
        """The run's training ended ("finished" or "diverged") with `summary`."""
        ...

    def release(self, run: Run) -> None:
        """The session's slot is free: start what waits."""
        ...

    def closing(self) -> bool: ...

    def parked(self, run: Run) -> None:
        """Tell listeners the paused run is parked."""
        ...


def changed(before: Any, after: Any) -> dict[str, Any]:
    """The fields of config `after` that differ from `before`, with their new values."""
    return {
        f.name: getattr(after, f.name)
        for f in dataclasses.fields(before)
        if getattr(after, f.name) != getattr(before, f.name)
    }


class Training:
    """One session's life; calling it (the session's thread) trains until every member ends."""

    def __init__(self, book: Lifecycle, runs: list[Run], desk: Desk) -> None:
        self.book, self.runs, self.desk = book, runs, desk
        self.live = list(runs)  # members still training (not ended, not parked)
        self.index = {run.id: i for i, run in enumerate(runs)}  # each one's seed in the batch
        self.session: Session | None = None
        self.paused_since: float | None = None
        self.parkable = True

    def __call__(self) -> None:
        try:
            if self._open():
                self._until_done()
        except Exception as exc:  # a bug must not kill the server; the runs say what happened
            for run in self.live:  # (one still opening at shutdown stays queued)
                if not (self.book.closing() and run.status is RunStatus.QUEUED):
                    self.book.controls.training_failed(run, exc)
        finally:
            self._hand_back(self.desk.close())
            if self.session is not None:
                self.session.close()
            self.book.release(self.runs[0])

    def _hand_back(self, late: list[Command]) -> None:
        """Commands that came too late for the loop, for the runs as they are now (at
        shutdown none: a run that did not open stays queued, for the restart)."""
        if self.book.closing():
            return
        for command in late:
            for run in self.runs:
                self.book.controls.offline(run, command)

    # -- opening -----------------------------------------------------------------
    def _open(self) -> bool:
        book, first = self.book, self.runs[0]
        batched = len(self.runs) > 1
        base = first.parked.config if first.parked is not None else first.config
        try:
            config = book.admission.runnable(base)
            job = SeedsJob(config, [run.config.seed for run in self.runs]) if batched else config
            self.session = session = book.executor.open(job, first.start_state)
        except (ConfigError, OSError, ValueError) as exc:
            for run in self.runs:
                book.transition(run, RunStatus.FAILED, error=book.admission.scrub(str(exc)))
            self.live = []
            return False
        changes = changed(base, first.config)  # while parked: the next record says so
        for run in self.runs:
            run.session, run.start_state, run.parked = session, None, None
            run.total_steps = session.total_steps
            book.transition(run, RunStatus.RUNNING, started_at=run.started_at or time.time())
        if changes:
            session.configure(changes)
        self._checkpoint()  # its start: a fork replays from here on
        if batched:
            log.info("runs %s train as one batch", ", ".join(run.id for run in self.runs))
        return True

    # -- training ----------------------------------------------------------------
    def _until_done(self) -> None:
        session = self.session
        assert session is not None
        while self.live and not session.done:
            self._obey()
            if not self.live:
                return
            entries = session.advance()
            self._hand_out(entries)
            self._checkpoint(tick=True)
            self._end_the_ended(entries[-1])

    def _hand_out(self, entries: list[Any]) -> None:
        """Each step's record to its run (a batch's: each seed's to that seed's run)."""
        for entry in entries:
            records = entry.members if isinstance(entry, BatchEntry) else [entry]
            for run in self.live:
                record: Entry | None = records[self.index[run.id]]
                if record is not None:
                    run.step = record.step
                    run.outbox.append(record)

    def _end_the_ended(self, last: Any) -> None:
        session = self.session
        assert session is not None
        # A seed of a batch ends with its step; a run when its session is done (a pipelined
        # trainer says "finished" while records made ahead are still to be read).
        statuses = last.statuses if isinstance(last, BatchEntry) else [session.status]
        ended = [
            r
            for r in self.live
            if session.done
            or (isinstance(last, BatchEntry) and statuses[self.index[r.id]] != "running")
        ]
        if not ended:
            return
        summary = session.summary()  # a batch's costs an evaluation per seed: taken once
        summaries = summary["seeds"] if isinstance(last, BatchEntry) else [summary]
        for run in ended:
            index = self.index[run.id]
            self.live.remove(run)
            self.book.checkpoints.forget(run)
            self.book.finish(run, statuses[index], summaries[index])

    # -- commands ----------------------------------------------------------------
    def _obey(self) -> None:
        """The commands that came during the slice; while paused, every one as it comes,
        looking after the paused process meanwhile."""
        while (command := self.desk.take()) is not None:
            self._act(command)
        while self.paused_since is not None and self.live:
            command = self.desk.take(PAUSE_POLL)
            if command is not None:
                self._act(command)
                continue
            assert self.session is not None
            self.session.check()  # a dead training process fails its runs now
            waited = time.monotonic() - self.paused_since
            if self.parkable and waited >= self.book.settings.park_after:
                self._park()

    def _act(self, command: Command) -> None:
        match command:
            case Pause():
                self._pause()
            case Resume():
                self._resume()
            case End(run_id, control):
                for run in [r for r in self.live if r.id == run_id]:
                    self._checkpoint(tick=True, control=control, runs=[run])
                    self.live.remove(run)
                    self.book.transition(run, control.final_status)
            case Configure(changes):
                assert self.session is not None
                self.session.configure(changes)
                self._checkpoint()  # a fork after it starts with its knobs
            case Capture():
                self._capture(command)

    def _pause(self) -> None:
        if self.paused_since is None:
            self._checkpoint(tick=True, control=Control.PAUSE)
        for run in self.live:
            if run.status is RunStatus.RUNNING:
                self.book.transition(run, RunStatus.PAUSED)
        if self.paused_since is None:
            self.paused_since = time.monotonic()

    def _resume(self) -> None:
        for run in self.live:
            if run.status is RunStatus.PAUSED:
                self.book.transition(run, RunStatus.RUNNING)
        self.paused_since = None

    def _capture(self, command: Capture) -> None:
        """A paused member's state for a fork; a training process that cannot give it
        (dead, or silent past its deadline) fails the session after answering."""
        found = [r for r in self.live if r.id == command.run_id]
        if not found or found[0].status is not RunStatus.PAUSED:
            status = found[0].status.value if found else "no longer training"
            command.answer.give(error=Conflict(f"only a paused run can be forked; it is {status}"))
            return
        assert self.session is not None
        try:
            state = self.session.capture(self._seed_index(found[0]))
        except CaptureError as exc:
            command.answer.give(error=Conflict(str(exc)))
        except NoAnswer as exc:
            command.answer.give(error=Unavailable(f"{exc}; the run is ended"))
            raise
        except Exception as exc:
            command.answer.give(error=Conflict(f"the run's training failed: {exc}"))
            raise
        else:
            command.answer.give(state)

    def _checkpoint(
        self, tick: bool = False, control: Control | None = None, runs: list[Run] | None = None
    ) -> None:
        """Each member's checkpoint (`runs`: those only), each seed of a batch its own: now,
        or (`tick`) if one is due (app.runs.checkpoints)."""
        if self.session is None:
            return
        checkpoints = self.book.checkpoints
        for run in self.live if runs is None else runs:
            if tick:
                checkpoints.tick(run, self.session, control, self._seed_index(run))
            else:
                checkpoints.take(run, self.session, self._seed_index(run))

    def _seed_index(self, run: Run) -> int | None:
        return self.index[run.id] if len(self.runs) > 1 else None

    def _park(self) -> None:
        """Keep each paused member's exact state on its run and end the session (its
        slot is freed); a trainer that has no state between steps stays as it is."""
        assert self.session is not None
        try:
            states = [self.session.capture(self._seed_index(run)) for run in self.live]
        except CaptureError as exc:
            log.info("runs %s stay unparked: %s", ", ".join(r.id for r in self.live), exc)
            self.parkable = False
            return
        for run, state in zip(self.live, states, strict=True):
            run.parked, run.session, run.batch = Parked(state, run.config), None, None
            log.info("run %s parked at step %d: its slot is free", run.id, state.step)
            self.book.parked(run)
        self.live = []
