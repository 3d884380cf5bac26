"""Batched seeds on the server: a sweep group's seeds train as one job, each seed its own run.

A sweep created with `batch_seeds` (the default) marks each group, its runs that
differ only by seed, as a batch (`Run.batch`) when a batch can train its config
(synthgrad_core.seeds.check_batchable). When the first of them leaves the queue,
all of its waiting runs start together: one SeedsJob session (one thread, process
or Ray actor; one slot), whose every step hands each seed's record to that seed's
run. Everything else stays per run: records, stream, page, CSV, status, fork.

Pause, resume and stop of any seed act on the whole batch (Controls passes them on;
the sweep page says so). A seed that diverges ends alone and the others train on;
a deleted seed ends alone too (its share of the computation goes on, unseen).

Plain Python on top of the run manager; it knows nothing of HTTP.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

from app.execution.session import BatchEntry, Executor, SeedsJob, Session
from app.runs.controls import Controls
from app.runs.quotas import Admission
from app.runs.run import Run
from app.runs.status import Control, RunStatus
from synthgrad_core import ConfigError
from synthgrad_core.config import ResolvedConfig
from synthgrad_core.seeds import check_batchable
from synthgrad_core.state import TrainerState

log = logging.getLogger("synthgrad.runs")

#: Seconds between looks at a paused batch's controls (a resume wakes the first seed's
#: condition at once; another seed's resume is seen within this).
PAUSE_POLL = 0.1


class Lifecycle(Protocol):
    """What batch training needs of the run manager."""

    runs: dict[str, Run]
    executor: Executor
    admission: Admission
    controls: Controls

    def transition(self, run: Run, new: RunStatus, **changes: Any) -> None: ...

    def finish(self, run: Run, session: Session) -> None: ...

    def release(self, run: Run) -> None:
        """The run's slot is free: start what waits."""
        ...


class MemberSession:
    """One seed's view of its batch's session: what a run's session is asked (its status,
    summary and state, a kill), answered for that seed."""

    def __init__(self, batch: Session, index: int) -> None:
        self.batch, self.index = batch, index
        self.total_steps = batch.total_steps
        self.status = "running"
        self.diverged_at: int | None = None
        #: the seed's final summary, once it has ended (the batch's summaries cost an
        #: evaluation per seed: taken once for all seeds ending together)
        self.final: dict[str, Any] | None = None

    @property
    def elapsed(self) -> float:
        return self.batch.elapsed

    @property
    def done(self) -> bool:
        return self.status != "running"

    def advance(self) -> list[Any]:
        raise RuntimeError("a seed of a batch trains with its batch")

    def summary(self) -> dict[str, Any]:
        if self.final is None:
            self.final = self.batch.summary()["seeds"][self.index]
        return self.final

    def capture(self, seed_index: int | None = None) -> TrainerState:
        return self.batch.capture(self.index)

    def configure(self, changes: dict[str, Any]) -> None:
        self.batch.configure(changes)

    def close(self) -> None:
        pass  # the batch's thread closes the batch

    def kill(self) -> None:
        self.batch.kill()


def is_batchable(config: ResolvedConfig) -> bool:
    try:
        check_batchable(config)
    except ConfigError:
        return False
    return True


def waiting_partners(run: Run, runs: dict[str, Run]) -> list[Run]:
    """`run` and the runs of its batch that wait to start with it (queued, not held)."""
    group = [run]
    for other_id in run.batch or []:
        other = runs.get(other_id)
        if other is None or other is run or other.held or other.thread is not None:
            continue
        if other.status is RunStatus.QUEUED:
            group.append(other)
    return group


class BatchTraining:
    """Trains a batch's runs in one thread (the target `_start_queued` gives a group)."""

    def __init__(self, book: Lifecycle) -> None:
        self.book = book

    def train(self, runs: list[Run]) -> None:
        book = self.book
        session: Session | None = None
        try:
            try:
                config = book.admission.runnable(runs[0].config)
                job = SeedsJob(config, [run.config.seed for run in runs])
                session = book.executor.open(job)
            except (ConfigError, OSError, ValueError) as exc:
                for run in runs:
                    book.transition(run, RunStatus.FAILED, error=book.admission.scrub(str(exc)))
                return
            views = [MemberSession(session, i) for i in range(len(runs))]
            for run, view in zip(runs, views, strict=True):
                run.session, run.total_steps = view, session.total_steps
                book.transition(run, RunStatus.RUNNING, started_at=time.time())
            log.info("runs %s train as one batch", ", ".join(run.id for run in runs))
            self._train_until_done(runs, views, session)
        except Exception as exc:  # a bug must not kill the server; the runs say what happened
            for run in runs:
                if not run.status.terminal:
                    book.controls.training_failed(run, exc)
        finally:
            if session is not None:
                session.close()
            book.release(runs[0])

    def _train_until_done(
        self, runs: list[Run], views: list[MemberSession], batch: Session
    ) -> None:
        live = list(range(len(runs)))
        while live and not batch.done:
            live = self._obey(runs, live)
            knobs: dict[str, Any] = {}
            for i in live:
                with runs[i].cond:
                    knobs |= runs[i].knobs
                    runs[i].knobs = {}
            if knobs:
                batch.configure(knobs)
            if not live:
                return
            entries = batch.advance()
            self._hand_out(runs, live, entries)
            last: BatchEntry = entries[-1]
            ended = [i for i in live if last.statuses[i] != "running" or batch.done]
            if ended:
                seeds = batch.summary()["seeds"]
            for i in ended:
                view = views[i]
                view.status, view.diverged_at, view.final = (
                    last.statuses[i],
                    last.diverged_at[i],
                    seeds[i],
                )
                self.book.finish(runs[i], view)
                live.remove(i)

    @staticmethod
    def _hand_out(runs: list[Run], live: list[int], entries: list[BatchEntry]) -> None:
        for batch_entry in entries:
            for i in live:
                record = batch_entry.members[i]
                if record is not None:
                    runs[i].step = record.step
                    runs[i].outbox.append(record)

    def _obey(self, runs: list[Run], live: list[int]) -> list[int]:
        """Controls at a slice boundary: a pause holds every seed until resumed; a seed
        told to end ends (stop reaches every seed; a delete only its own)."""
        if all(runs[i].control is None for i in live):
            return live
        book = self.book
        if any(runs[i].control is Control.PAUSE for i in live):
            for i in live:
                with runs[i].cond:
                    if runs[i].control is Control.PAUSE and runs[i].status is RunStatus.RUNNING:
                        book.transition(runs[i], RunStatus.PAUSED)
            first = runs[live[0]]
            while any(runs[i].control is Control.PAUSE for i in live):
                with first.cond:
                    first.cond.wait(PAUSE_POLL)
        return [i for i in live if book.controls.obey(runs[i])]


def start_thread(group: list[Run], alone: Any, together: Any) -> None:
    """Start the training thread of a run (`alone(run)`) or of a batch (`together(group)`);
    every member holds it."""
    target, args = (alone, (group[0],)) if len(group) == 1 else (together, (group,))
    thread = threading.Thread(
        target=target, args=args, name=f"synthgrad-run-{group[0].id}", daemon=True
    )
    for run in group:
        run.thread = thread
    thread.start()
