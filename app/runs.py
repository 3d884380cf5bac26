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
from collections import deque
from collections.abc import Callable
from typing import Any

from synthgrad_core import ConfigError, TrainConfig
from synthgrad_core.config import planned_steps

from .access import Access, new_run_id, token_hash
from .events import Broadcaster, DeletedEvent, StatusEvent
from .executors import Executor, Session, TrainingFailed, make_executor
from .recorder import Recorder
from .run import SUMMARY_KEYS, Run
from .settings import Settings
from .status import ACTIVE, TRANSITIONS, Conflict, Control, RunNotFound, RunStatus, TooManyRuns
from .store import Store

log = logging.getLogger("synthgrad.runs")

#: Run columns a status change writes.
MUTABLE_COLUMNS = ("status", "step", "summary", "started_at", "finished_at", "error")
#: Seconds a control call waits for the training thread to act on it.
CONTROL_WAIT = 10.0


class RunManager(Broadcaster):
    """Creates, schedules, controls and records runs.

    >>> manager = RunManager(Settings(db=":memory:"))
    >>> run, token = manager.create({"dataset": "addition", "bits": 4, "epochs": 1})
    >>> manager.wait(run.id, timeout=30).status in ("finished", "running")
    True
    >>> manager.close()
    """

    def __init__(
        self, settings: Settings, store: Store | None = None, executor: Executor | None = None
    ) -> None:
        super().__init__()
        self.settings = settings
        self.store = store or Store(settings.db)
        self.executor = executor or make_executor(settings.executor, settings.pipe_slice)
        self.access = Access(settings.admin_token, settings.read_only)
        self.runs: dict[str, Run] = {}
        self._lock = threading.RLock()
        self._active: set[str] = set()
        self._queue: deque[str] = deque()
        self._closing = threading.Event()
        interrupted = self.store.mark_interrupted([s.value for s in ACTIVE])
        if interrupted:
            log.info(
                "%d run(s) left unfinished by the last server are now interrupted", interrupted
            )
        for row in self.store.load_runs():
            run = Run.from_row(row)
            self.runs[run.id] = run
        self.recorder = Recorder(
            self.store,
            lambda: list(self.runs.values()),
            self._emit,
            flush_interval=settings.flush_interval,
            stream_rate=settings.stream_rate,
        )
        self.recorder.start()
        log.info(
            "run manager ready: %s executor, %d stored run(s)", self.executor.name, len(self.runs)
        )

    # -- queries -----------------------------------------------------------
    def get(self, run_id: str) -> Run:
        run = self.runs.get(run_id)
        if run is None:
            raise RunNotFound(run_id)
        return run

    def all_runs(self) -> list[Run]:
        return sorted(self.runs.values(), key=lambda r: r.created_at, reverse=True)

    def records(
        self, run_id: str, *, after: int = 0, streamed_only: bool = False, limit: int | None = None
    ) -> list[str]:
        """Stored records (JSON text) of a run; flushes first so nothing recorded is missed."""
        self.get(run_id)
        self.flush()
        return self.store.read_records(
            run_id, after=after, streamed_only=streamed_only, limit=limit
        )

    def can_control(self, run_id: str, token: str | None) -> bool:
        """Whether `token` may pause, resume, stop or delete the run."""
        return self.access.can_control(self.get(run_id).owner_hash, token)

    def flush(self) -> None:
        self.recorder.flush()

    # -- lifecycle ---------------------------------------------------------
    def create(
        self, config: dict[str, Any], name: str | None = None, token: str | None = None
    ) -> tuple[Run, str]:
        """Validate `config`, store the run and start or queue it; returns it and its owner token.

        Raises ConfigError, Forbidden (read-only server) or TooManyRuns.
        """
        self.access.may_create(token)
        cfg = TrainConfig.from_dict(config).resolve()
        steps = planned_steps(cfg)
        if steps > self.settings.max_total_steps:
            raise ConfigError(
                "epochs",
                f"this config trains {steps} steps; the server allows at "
                f"most {self.settings.max_total_steps} (fewer epochs or examples, "
                "or a larger batch_size)",
            )
        with self._lock:
            if len(self.runs) >= self.settings.max_stored_runs:
                raise TooManyRuns(
                    f"the server keeps at most {self.settings.max_stored_runs} "
                    "runs; delete some first"
                )
            owner_hashes = {r.owner_hash for r in self.runs.values()}
            owner_token = self.access.owner_token_for(token, owner_hashes)
            run = Run(
                id=new_run_id(),
                name=name or f"{cfg.method} on {cfg.dataset}",
                config=cfg.as_dict(),
                owner_hash=token_hash(owner_token),
                total_steps=steps,
                created_at=time.time(),
            )
            self.store.insert_run(run.row())
            self.runs[run.id] = run
            self._queue.append(run.id)
            log.info("run %s created: %s on %s, %d steps", run.id, cfg.method, cfg.dataset, steps)
            self._start_queued()
        return run, owner_token

    def _start_queued(self) -> None:
        with self._lock:
            while self._queue and len(self._active) < self.settings.concurrency:
                if self._closing.is_set():
                    return
                run = self.runs.get(self._queue.popleft())
                if run is None or run.status is not RunStatus.QUEUED:
                    continue
                self._active.add(run.id)
                run.thread = threading.Thread(
                    target=self._train, args=(run,), name=f"synthgrad-run-{run.id}", daemon=True
                )
                run.thread.start()

    def _transition(self, run: Run, new: RunStatus, **changes: Any) -> None:
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
            self.store.update_run(run.id, **{key: row[key] for key in MUTABLE_COLUMNS})
            run.cond.notify_all()
        level = logging.WARNING if new in (RunStatus.FAILED, RunStatus.DIVERGED) else logging.INFO
        log.log(
            level,
            "run %s %s at step %d%s",
            run.id,
            new,
            run.step,
            f": {run.error}" * bool(run.error),
        )
        if run.control is Control.DELETE:
            return
        diverged_at = run.session.diverged_at if run.session and new is RunStatus.DIVERGED else None
        self._emit(StatusEvent(run.id, new.value, run.step, run.error, diverged_at))

    def _train(self, run: Run) -> None:
        session: Session | None = None
        try:
            try:
                session = self.executor.open(run.config)
            except (ConfigError, OSError, ValueError) as exc:
                self._transition(run, RunStatus.FAILED, error=str(exc))
                return
            run.session = session
            run.total_steps = session.total_steps
            self._transition(run, RunStatus.RUNNING, started_at=time.time())
            if self._train_until_done(run, session):
                self._finish(run, session)
        except Exception as exc:  # a bug must not kill the server; the run says what happened
            if isinstance(exc, TrainingFailed):
                error = str(exc)
                if exc.details:
                    log.error("run %s: the training process failed:\n%s", run.id, exc.details)
            else:
                error = f"{type(exc).__name__}: {exc}"
                log.exception("run %s failed", run.id)
            if not run.status.terminal:
                self._transition(run, RunStatus.FAILED, error=error)
        finally:
            if session is not None:
                session.close()
            with self._lock:
                self._active.discard(run.id)
            self._start_queued()

    def _train_until_done(self, run: Run, session: Session) -> bool:
        """Advance slice by slice, obeying controls between slices; False if told to end."""
        outbox = run.outbox
        while not session.done:
            if run.control is not None and not self._obey(run):
                return False
            entries = session.advance()
            run.step = entries[-1].step
            outbox.extend(entries)
        return True

    def _finish(self, run: Run, session: Session) -> None:
        summary = session.summary()
        run.summary.update({k: summary[k] for k in SUMMARY_KEYS})
        if session.diverged_at is not None:
            run.summary["diverged_at"] = session.diverged_at
        final = RunStatus.FINISHED if session.status == "finished" else RunStatus.DIVERGED
        self._transition(run, final)

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

    def _request(self, run: Run, control: Control, until: Callable[[], bool]) -> None:
        with run.cond:
            run.control = control
            run.cond.notify_all()
            run.cond.wait_for(lambda: until() or run.status.terminal, timeout=CONTROL_WAIT)

    def _controlled(self, run_id: str, token: str | None) -> Run:
        run = self.get(run_id)
        self.access.authorize(run.owner_hash, token)
        return run

    def pause(self, run_id: str, token: str | None) -> Run:
        run = self._controlled(run_id, token)
        with run.cond:
            if run.status is RunStatus.QUEUED and run.thread is not None:  # starting right now
                run.cond.wait_for(lambda: run.status is not RunStatus.QUEUED, timeout=30)
            if run.status is not RunStatus.RUNNING:
                raise Conflict(f"only a running run can be paused; this one is {run.status.value}")
            self._request(run, Control.PAUSE, lambda: run.status is RunStatus.PAUSED)
        return run

    def resume(self, run_id: str, token: str | None) -> Run:
        run = self._controlled(run_id, token)
        with run.cond:
            if run.status is not RunStatus.PAUSED:
                raise Conflict(f"only a paused run can be resumed; this one is {run.status.value}")
            self._request(run, Control.RESUME, lambda: run.status is RunStatus.RUNNING)
        return run

    def stop(self, run_id: str, token: str | None) -> Run:
        run = self._controlled(run_id, token)
        self._end(run, Control.STOP)
        return run

    def _end(self, run: Run, control: Control) -> None:
        with run.cond:
            if run.status.terminal:
                raise Conflict(f"the run is already {run.status.value}")
            with self._lock:
                queued = run.status is RunStatus.QUEUED and run.thread is None
                if queued and run.id in self._queue:
                    self._queue.remove(run.id)
            if queued:
                run.control = control
                self._transition(run, control.final_status)
                return
            self._request(run, control, lambda: run.status.terminal)

    def rename(self, run_id: str, name: str, token: str | None) -> Run:
        """Give the run a new name (owner or admin)."""
        run = self._controlled(run_id, token)
        with run.cond:
            run.name = name
            self.store.update_run(run.id, name=name)
        return run

    def delete(self, run_id: str, token: str | None) -> None:
        run = self._controlled(run_id, token)
        if not run.status.terminal:
            with contextlib.suppress(Conflict):
                self._end(run, Control.DELETE)
        if run.thread is not None:
            run.thread.join(timeout=10)
        with self._lock:
            self.runs.pop(run.id, None)
        self.store.delete_run(run.id)
        log.info("run %s deleted", run.id)
        self._emit(DeletedEvent(run.id))

    def wait(self, run_id: str, timeout: float | None = None) -> Run:
        """Block until the run is terminal (or `timeout` passes); for scripts and tests."""
        run = self.get(run_id)
        with run.cond:
            run.cond.wait_for(lambda: run.status.terminal, timeout=timeout)
        return run

    def close(self) -> None:
        """Stop training threads (their runs become `interrupted`), flush, stop the writer."""
        self._closing.set()
        for run in list(self.runs.values()):
            if not run.status.terminal:
                with contextlib.suppress(Conflict):
                    self._end(run, Control.SHUTDOWN)
        for run in list(self.runs.values()):
            if run.thread is not None:
                run.thread.join(timeout=10)
        self.recorder.close()
        self.store.close()
        self.executor.shutdown()
        log.info("run manager closed")
