"""The run manager: scheduling and lifecycle of runs (create, queue, train, control, delete).

Plain Python with threads; it knows nothing of HTTP or asyncio. Statuses and
their allowed changes live in `status`, token checks in `access`, storing and
choosing live records in `recorder`. Listeners get typed events (`events`) from
the manager's threads and must hand them off themselves.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from app.execution import make_executor
from app.execution.session import Executor
from app.runs.access import Access, new_run_id, token_hash
from app.runs.batches import waiting_partners
from app.runs.checkpoints import RunCheckpoints
from app.runs.commands import Desk
from app.runs.controls import Controls
from app.runs.events import Broadcaster, DeletedEvent, StatusEvent
from app.runs.history import History
from app.runs.loop import Training
from app.runs.quotas import Admission, FairQueue
from app.runs.recorder import Recorder
from app.runs.run import Run
from app.runs.status import TRANSITIONS, Conflict, Control, RunNotFound, RunStatus
from app.settings import Settings
from app.storage.purger import Purger
from app.storage.store import Store, StoreError
from synthgrad_core import TrainConfig
from synthgrad_core.config import planned_steps

log = logging.getLogger("synthgrad.runs")

#: Run columns a status change writes.
MUTABLE_COLUMNS = ("status", "step", "summary", "started_at", "finished_at", "error")


class RunManager:
    """Creates, schedules, controls and records runs.

    Made of parts it owns: `controls` (pause, resume, stop), `history` (stored
    records and exports), `events` (listeners), the recorder and the purger.
    Building one touches nothing; `start()` loads the stored runs and starts the
    threads, `close()` ends them.

    >>> manager = RunManager(Settings(db=":memory:")).start()
    >>> run, token = manager.create({"dataset": "addition", "bits": 4, "epochs": 1})
    >>> manager.controls.wait(run.id, timeout=30).status in ("finished", "running")
    True
    >>> manager.close()
    """

    def __init__(
        self, settings: Settings, store: Store | None = None, executor: Executor | None = None
    ) -> None:
        self.settings = settings
        self.store = store or Store(settings.db)
        self.executor = executor or make_executor(
            settings.executor,
            settings.ray_slice if settings.executor == "ray" else settings.pipe_slice,
            settings.ray_address,
            settings.answer_timeout,
        )
        self.slots = settings.max_concurrent_runs or self.executor.capacity()
        self.access = Access(settings.admin, settings.read_only)
        self.admission = Admission(settings, self.store)
        self.runs: dict[str, Run] = {}
        self._lock = threading.RLock()
        self._active: set[str] = set()
        self._queue = FairQueue()
        self._closing = threading.Event()
        self.events = Broadcaster()
        self.controls = Controls(settings, self.access, self.admission, self)
        self.history = History(self.store, self.get, self.flush)
        self.recorder = Recorder(
            self.store,
            lambda: list(self.runs.values()),
            self.events.emit,
            on_failure=self.controls.store_failed,
            flush_interval=settings.flush_interval,
            stream_rate=settings.stream_rate,
        )
        self.purger = Purger(self.store)
        self.checkpoints = RunCheckpoints(settings, self.store)

    def start(self) -> RunManager:
        """Load the stored runs, start the recorder, the purger and the queued runs."""
        # Queued runs wait on; a run that was training when the last server died cannot
        # go on from where it was (its trainer's state lived in that process).
        unfinished = [RunStatus.RUNNING.value, RunStatus.PAUSED.value]
        if interrupted := self.store.mark_interrupted(unfinished):
            log.info("%d run(s) training when the last server ended are interrupted", interrupted)
        for row in self.store.load_runs():
            run = Run.from_row(row)
            self.runs[run.id] = run
            queued = run.status is RunStatus.QUEUED
            if queued and run.fork_of and (lost := self.checkpoints.restart_branch(run, self.runs)):
                self.transition(run, RunStatus.FAILED, error=lost)  # its state: from the store
            elif queued and run.step and not run.fork_of:  # a resumed parked run's state
                self.transition(run, RunStatus.INTERRUPTED)  # was in memory
            elif queued:
                self._queue.push(run.owner_hash, run.id)
        self.recorder.start()
        self.purger.start()
        self._start_queued()
        stored = len(self.runs)
        log.info("run manager ready: %s executor, %d stored run(s)", self.executor.name, stored)
        return self

    # -- queries -----------------------------------------------------------
    def get(self, run_id: str) -> Run:
        run = self.runs.get(run_id)
        if run is None:
            raise RunNotFound(run_id)
        return run

    def all_runs(self) -> list[Run]:
        return sorted(self.runs.values(), key=lambda r: r.created_at, reverse=True)

    def can_control(self, run_id: str, token: str | None) -> bool:
        """Whether `token` may pause, resume, stop or delete the run."""
        return self.access.can_control(self.get(run_id).owner_hash, token)

    def flush(self) -> None:
        self.recorder.flush()

    # -- lifecycle ---------------------------------------------------------
    def create(
        self,
        config: dict[str, Any],
        name: str | None = None,
        token: str | None = None,
        client: str | None = None,
    ) -> tuple[Run, str]:
        """Validate `config`, store the run and start or queue it; returns it and its owner token.

        `client` names the caller's address for the creation pace. Raises ConfigError
        (also for a config over the cost budget), Forbidden (read-only server),
        TooManyRuns (a limit on runs) or Unavailable (the store cannot take it).
        """
        runs, owner_token = self.create_many([(config, name)], token, client)
        return runs[0], owner_token

    def create_many(
        self,
        configs: list[tuple[dict[str, Any], str | None]],
        token: str | None = None,
        client: str | None = None,
        group: Callable[[str, list[Run]], Any] | None = None,
    ) -> tuple[list[Run], str]:
        """Create runs (config, name) all or none, as one creation for the owner's limits.

        With `group`, the runs form a sweep: `group(owner_hash, runs)` stores them (and
        the sweep) in one transaction, and the sweep counts as one unfinished item.
        """
        self.access.may_create(token)
        cfgs = [TrainConfig.from_dict(self.admission.with_data(c)).resolve() for c, _ in configs]
        with self._lock:
            owner_hashes = {r.owner_hash for r in self.runs.values()}
            owner_token = self.access.owner_token_for(token, owner_hashes)
            owner_hash = token_hash(owner_token)
            self.admission.admit_all(
                cfgs,
                admin=self.access.is_admin(token),
                client=client,
                runs=self.runs,
                owner_hash=owner_hash,
            )
            runs = [
                Run(
                    id=new_run_id(),
                    name=name or f"{cfg.method} on {cfg.dataset}",
                    config=cfg,
                    owner_hash=owner_hash,
                    total_steps=planned_steps(cfg),
                    created_at=time.time(),
                )
                for cfg, (_, name) in zip(cfgs, configs, strict=True)
            ]
            if group is not None:
                group(owner_hash, runs)
            else:
                self.store.insert_run(runs[0].row())
            self.admission.shares.charge(runs, client, self.access.is_admin(token))
            for run, cfg in zip(runs, cfgs, strict=True):
                self.runs[run.id] = run
                self._queue.push(owner_hash, run.id)
                what = (cfg.method, cfg.dataset, run.total_steps)
                log.info("run %s created: %s on %s, %d steps", run.id, *what)
            self._start_queued()
        return runs, owner_token

    def _start_queued(self) -> None:
        with self._lock:
            held: list[Run] = []  # runs of paused sweeps: back in the queue afterwards
            while self._queue and not self._closing.is_set():
                # The next run with a slot free to its visitor (a share) or to the admin.
                if (run_id := self._queue.pop(self._may_start)) is None:
                    break
                run = self.runs.get(run_id)
                if run is None or run.status is not RunStatus.QUEUED:
                    continue
                if run.held:
                    held.append(run)
                    continue
                self._active.add(run.id)  # a batch of seeds takes one slot
                group = waiting_partners(run, self.runs)
                for partner in group[1:]:
                    self._queue.remove(partner.id)
                self._start_session(group)
            for run in held:
                self._queue.push(run.owner_hash, run.id)

    def _start_session(self, group: list[Run]) -> None:
        """Start the thread that trains `group` (one run, or a batch of seeds) in one
        session, with the desk that takes its commands; every member holds both."""
        desk = Desk()
        thread = threading.Thread(
            target=Training(self, group, desk), name=f"synthgrad-run-{group[0].id}", daemon=True
        )
        for run in group:
            run.thread, run.desk = thread, desk
        thread.start()

    def requeue(self, run: Run) -> None:
        """Queue a parked run again: it goes on from its state when a slot is free."""
        assert run.parked is not None
        run.start_state, run.thread, run.desk = run.parked.state, None, None
        self.transition(run, RunStatus.QUEUED)  # not under the manager's lock: it takes run.cond
        with self._lock:
            self._queue.push(run.owner_hash, run.id)
        self._start_queued()

    def closing(self) -> bool:
        return self._closing.is_set()

    def _may_start(self, run_id: str) -> bool:
        return self.admission.shares.may_start(run_id, self.runs, self._active, self.slots)

    def dequeue(self, run: Run) -> bool:
        """Take a run that has not started out of the queue; False if it has started."""
        with self._lock:
            queued = run.status is RunStatus.QUEUED and run.thread is None
            if queued:
                self._queue.remove(run.id)
        return queued

    def transition(self, run: Run, new: RunStatus, **changes: Any) -> None:
        """Change status: check the move, flush the records, store it, then tell listeners.

        A run stopped on its way to deletion tells listeners nothing: they hear "deleted".
        """
        with run.cond:
            if new not in TRANSITIONS[run.status]:
                raise Conflict(f"run {run.id} is {run.status.value}; it cannot become {new.value}")
            self.flush()
            run.status = new
            for key, value in changes.items():
                setattr(run, key, value)
            if new.terminal:
                run.finished_at = time.time()
            row = run.row()
            try:
                self.store.update_run(run.id, **{key: row[key] for key in MUTABLE_COLUMNS})
            except StoreError as exc:  # said in the log and by health; listeners still hear it
                log.error("run %s: storing its status %s failed: %s", run.id, new, exc)
            run.cond.notify_all()
        level = logging.WARNING if new in (RunStatus.FAILED, RunStatus.DIVERGED) else logging.INFO
        error = f": {run.error}" * bool(run.error)
        log.log(level, "run %s %s at step %d%s", run.id, new, run.step, error)
        if run.control is Control.DELETE:
            return
        diverged_at = run.summary.get("diverged_at") if new is RunStatus.DIVERGED else None
        self.events.emit(
            StatusEvent(run.id, new.value, run.step, run.error, diverged_at, run.parked is not None)
        )

    def parked(self, run: Run) -> None:
        """Tell listeners a paused run is parked (its status stays `paused`)."""
        self.events.emit(StatusEvent(run.id, run.status.value, run.step, parked=True))

    def release(self, run: Run) -> None:
        """The run's (or its batch's) slot is free: start what waits."""
        with self._lock:
            self._active.discard(run.id)
        self._start_queued()

    def finish(self, run: Run, status: str, summary: dict[str, Any]) -> None:
        """The run's training ended ("finished" or "diverged") with `summary`."""
        # The last records first: storing them sets the summary to the last batch's numbers,
        # which the final ones (the whole training split) must replace, not the other way.
        self.flush()  # and if the store cannot take them, the run failed
        run.keep_summary(summary)
        final = RunStatus.FINISHED if status == "finished" else RunStatus.DIVERGED
        final = RunStatus.FAILED if run.control is Control.FAIL else final
        self.transition(run, final)

    def delete(self, run_id: str, token: str | None) -> None:
        """Forget the run at once; its training ends and its records go in the background."""
        run = self.controls.controlled(run_id, token)
        self.store.delete_run(run.id)  # first: if the store cannot, nothing changes
        if not run.status.terminal:
            with contextlib.suppress(Conflict):
                self.controls.end(run, Control.DELETE)
        with self._lock:
            self.runs.pop(run.id, None)
        self.purger.wake()
        log.info("run %s deleted", run.id)
        self.events.emit(DeletedEvent(run.id))

    def close(self, grace: float = 1.0) -> None:
        """End training runs (they become `interrupted`; queued ones stay queued), flush, stop.

        A run that has not ended within `grace` seconds has its training killed.
        """
        self._closing.set()
        self.purger.stop()
        training = [r for r in self.runs.values() if r.thread is not None and not r.status.terminal]
        for run in training:
            with contextlib.suppress(Conflict):
                self.controls.end(run, Control.SHUTDOWN)
        deadline = time.monotonic() + grace
        for run in training:
            assert run.thread is not None
            run.thread.join(max(0.0, deadline - time.monotonic()))
            if run.thread.is_alive() and run.session is not None:
                run.killed = "the server shut down"
                run.session.kill()
                run.thread.join(1.0)
        self.executor.shutdown()  # before the store: a run still opening (a full cluster) ends
        for run in training:
            assert run.thread is not None
            run.thread.join(1.0)
        self._interrupt(training)
        self.recorder.close()
        self.store.close()
        log.info("run manager closed")

    def _interrupt(self, training: list[Run]) -> None:
        """Runs busy past the grace (a long capture): `interrupted` while the store is open."""
        for run in training:
            if run.status is not RunStatus.QUEUED and not run.status.terminal:
                with contextlib.suppress(Conflict):
                    self.transition(run, RunStatus.INTERRUPTED)
