"""The run manager: training threads, a concurrency cap, pause/resume/stop, persistence, events.

Plain Python with threads; it knows nothing of HTTP or asyncio. Listeners get
events (dicts) from the manager's threads and must hand them off themselves.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from synthgrad_core import ConfigError, TrainConfig

from .executors import Entry, Executor, Session, TrainingFailed, make_executor
from .settings import Settings
from .store import Store


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
    RunStatus.PAUSED: frozenset(
        {RunStatus.RUNNING, RunStatus.STOPPED, RunStatus.FAILED, RunStatus.INTERRUPTED}
    ),
    RunStatus.FINISHED: frozenset(),
    RunStatus.STOPPED: frozenset(),
    RunStatus.DIVERGED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.INTERRUPTED: frozenset(),
}
ACTIVE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PAUSED})


class RunNotFound(KeyError):
    """No run has this id."""


class Conflict(RuntimeError):
    """The action does not fit the run's status."""


class Forbidden(PermissionError):
    """The caller holds neither the run's owner token nor the admin token."""


class TooManyRuns(RuntimeError):
    """The store holds the most runs it may; delete some first."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_run_id() -> str:
    return secrets.token_urlsafe(9)  # 12 URL-safe characters, 72 random bits


@dataclass(eq=False)
class Run:
    id: str
    name: str
    config: dict[str, Any]
    owner_hash: str
    total_steps: int
    created_at: float
    status: RunStatus = RunStatus.QUEUED
    started_at: float | None = None
    finished_at: float | None = None
    step: int = 0
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    #: records the training thread made and the writer has not stored yet
    outbox: deque[Entry] = field(default_factory=deque, repr=False)
    #: what the owner asked for, read by the training thread at each step boundary
    control: str | None = None
    cond: threading.Condition = field(
        default_factory=lambda: threading.Condition(threading.RLock()), repr=False
    )
    session: Session | None = field(default=None, repr=False)
    thread: threading.Thread | None = field(default=None, repr=False)
    last_streamed_at: float = 0.0

    def public(self) -> dict[str, Any]:
        """The run object of the API (no secrets)."""
        elapsed = self.session.elapsed if self.session is not None else None
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status.value,
            "config": self.config,
            "step": self.step,
            "total_steps": self.total_steps,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "summary": {key: self.summary.get(key) for key in SUMMARY_KEYS}
            | {k: v for k, v in self.summary.items() if k not in SUMMARY_KEYS},
            "steps_per_second": self.step / elapsed if elapsed else None,
        }


SUMMARY_KEYS = ("loss", "accuracy", "test_accuracy")
Listener = Callable[[dict[str, Any]], None]


def planned_steps(cfg: TrainConfig) -> int:
    """Steps a resolved config will train for (MNIST: an upper bound before the files are read)."""
    assert cfg.examples is not None and cfg.batch_size is not None and cfg.epochs is not None
    if cfg.dataset == "mnist":
        n_train = round(cfg.examples * 6 / 7)
    else:
        n_train = cfg.examples - max(1, round(cfg.examples * cfg.test_fraction))
    return math.ceil(n_train / cfg.batch_size) * cfg.epochs


class RunManager:
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
        self.settings = settings
        self.store = store or Store(settings.db)
        self.executor = executor or make_executor(settings.executor)
        self.runs: dict[str, Run] = {}
        self._lock = threading.RLock()
        self._active: set[str] = set()
        self._queue: deque[str] = deque()
        self._listeners: list[Listener] = []
        self._flush_lock = threading.Lock()
        self._closing = threading.Event()
        self.store.mark_interrupted([s.value for s in ACTIVE])
        for row in self.store.load_runs():
            run = Run(
                id=row["id"],
                name=row["name"],
                config=row["config"],
                owner_hash=row["owner_hash"],
                total_steps=row["total_steps"],
                created_at=row["created_at"],
                status=RunStatus(row["status"]),
                started_at=row["started_at"],
                finished_at=row["finished_at"],
                step=row["step"],
                summary=row["summary"],
                error=row["error"],
            )
            self.runs[run.id] = run
        self._writer = threading.Thread(
            target=self._write_loop, name="synthgrad-writer", daemon=True
        )
        self._writer.start()

    # -- events ------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, event: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            listener(event)

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

    # -- access ------------------------------------------------------------
    def is_admin(self, token: str | None) -> bool:
        admin = self.settings.admin_token
        return bool(admin and token and hmac.compare_digest(token, admin))

    def authorize(self, run: Run, token: str | None) -> None:
        if self.is_admin(token):
            return
        if not token or not hmac.compare_digest(token_hash(token), run.owner_hash):
            raise Forbidden("controlling this run needs its owner token or the admin token")

    # -- lifecycle ---------------------------------------------------------
    def create(
        self, config: dict[str, Any], name: str | None = None, token: str | None = None
    ) -> tuple[Run, str]:
        """Validate `config`, store the run and start or queue it; returns it and its owner token.

        A caller's own token is reused as the owner token (a browser owning several
        runs holds one cookie); the admin token is never handed out as an owner token.
        Raises ConfigError, Forbidden (read-only server) or TooManyRuns.
        """
        if self.settings.read_only and not self.is_admin(token):
            raise Forbidden("this server is read-only: creating runs needs the admin token")
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
            reuse = token and not self.is_admin(token) and len(token) >= 16
            owner_token = token if reuse and token else secrets.token_urlsafe(24)
            run = Run(
                id=new_run_id(),
                name=name or f"{cfg.method} on {cfg.dataset}",
                config=cfg.as_dict(),
                owner_hash=token_hash(owner_token),
                total_steps=steps,
                created_at=time.time(),
            )
            self.store.insert_run(self._row(run))
            self.runs[run.id] = run
            self._queue.append(run.id)
            self._start_queued()
        return run, owner_token

    def _row(self, run: Run) -> dict[str, Any]:
        return {
            "id": run.id,
            "name": run.name,
            "status": run.status.value,
            "config": run.config,
            "owner_hash": run.owner_hash,
            "created_at": run.created_at,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "step": run.step,
            "total_steps": run.total_steps,
            "summary": run.summary,
            "error": run.error,
        }

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
        """Change status: check the move, flush the records, store it, then tell listeners."""
        with run.cond:
            if new not in TRANSITIONS[run.status]:
                raise Conflict(f"run {run.id} is {run.status.value}; it cannot become {new.value}")
            self.flush()
            run.status = new
            for key, value in changes.items():
                setattr(run, key, value)
            if new.terminal:
                run.finished_at = time.time()
            self.store.update_run(
                run.id,
                status=new.value,
                step=run.step,
                summary=run.summary,
                started_at=run.started_at,
                finished_at=run.finished_at,
                error=run.error,
            )
            run.cond.notify_all()
        event: dict[str, Any] = {
            "kind": "status",
            "run_id": run.id,
            "status": new.value,
            "step": run.step,
        }
        if run.error:
            event["error"] = run.error
        if new is RunStatus.DIVERGED and run.session is not None:
            event["diverged_at"] = run.session.diverged_at
        self._emit(event)

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
            outbox = run.outbox
            while not session.done:
                if run.control is not None and not self._obey(run):
                    return
                entries = session.advance()
                run.step = entries[-1].step
                outbox.extend(entries)
            summary = session.summary()
            run.summary.update({k: summary[k] for k in SUMMARY_KEYS})
            if session.diverged_at is not None:
                run.summary["diverged_at"] = session.diverged_at
            final = RunStatus.FINISHED if session.status == "finished" else RunStatus.DIVERGED
            self._transition(run, final)
        except Exception as exc:  # a bug must not kill the server; the run says what happened
            if not run.status.terminal:
                error = (
                    str(exc) if isinstance(exc, TrainingFailed) else f"{type(exc).__name__}: {exc}"
                )
                self._transition(run, RunStatus.FAILED, error=error)
        finally:
            if session is not None:
                session.close()
            with self._lock:
                self._active.discard(run.id)
            self._start_queued()

    def _obey(self, run: Run) -> bool:
        """Handle pause/resume/stop at a step boundary; False means the thread should end."""
        with run.cond:
            while run.control == "pause":
                if run.status is RunStatus.RUNNING:
                    self._transition(run, RunStatus.PAUSED)
                run.cond.wait()
            if run.control in ("stop", "shutdown"):
                final = RunStatus.STOPPED if run.control == "stop" else RunStatus.INTERRUPTED
                self._transition(run, final)
                return False
            if run.status is RunStatus.PAUSED:
                self._transition(run, RunStatus.RUNNING)
            run.control = None
            return True

    def _request(self, run: Run, control: str, until: Callable[[], bool]) -> None:
        with run.cond:
            run.control = control
            run.cond.notify_all()
            run.cond.wait_for(lambda: until() or run.status.terminal, timeout=10)

    def pause(self, run_id: str, token: str | None) -> Run:
        run = self.get(run_id)
        self.authorize(run, token)
        with run.cond:
            if run.status is RunStatus.QUEUED and run.thread is not None:  # starting right now
                run.cond.wait_for(lambda: run.status is not RunStatus.QUEUED, timeout=30)
            if run.status is not RunStatus.RUNNING:
                raise Conflict(f"only a running run can be paused; this one is {run.status.value}")
            self._request(run, "pause", lambda: run.status is RunStatus.PAUSED)
        return run

    def resume(self, run_id: str, token: str | None) -> Run:
        run = self.get(run_id)
        self.authorize(run, token)
        with run.cond:
            if run.status is not RunStatus.PAUSED:
                raise Conflict(f"only a paused run can be resumed; this one is {run.status.value}")
            self._request(run, "resume", lambda: run.status is RunStatus.RUNNING)
        return run

    def stop(self, run_id: str, token: str | None) -> Run:
        run = self.get(run_id)
        self.authorize(run, token)
        self._end(run, "stop")
        return run

    def _end(self, run: Run, control: str) -> None:
        final = RunStatus.STOPPED if control == "stop" else RunStatus.INTERRUPTED
        with run.cond:
            if run.status.terminal:
                raise Conflict(f"the run is already {run.status.value}")
            with self._lock:
                queued = run.status is RunStatus.QUEUED and run.thread is None
                if queued and run.id in self._queue:
                    self._queue.remove(run.id)
            if queued:
                self._transition(run, final)
                return
            self._request(run, control, lambda: run.status.terminal)

    def delete(self, run_id: str, token: str | None) -> None:
        run = self.get(run_id)
        self.authorize(run, token)
        if not run.status.terminal:
            with contextlib.suppress(Conflict):
                self._end(run, "stop")
        if run.thread is not None:
            run.thread.join(timeout=10)
        with self._lock:
            self.runs.pop(run.id, None)
        self.store.delete_run(run.id)
        self._emit({"kind": "deleted", "run_id": run.id})

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
                    self._end(run, "shutdown")
        for run in list(self.runs.values()):
            if run.thread is not None:
                run.thread.join(timeout=10)
        self._writer.join(timeout=5)
        self.flush()
        self.store.close()
        self.executor.shutdown()

    # -- persistence and the live stream -------------------------------------
    def _write_loop(self) -> None:
        # Fixed-rate ticks (not "sleep after each flush"): live batches stay ~flush_interval
        # apart however long a flush takes, which bounds how late a record reaches viewers.
        interval = self.settings.flush_interval
        next_tick = time.monotonic() + interval
        while not self._closing.wait(max(0.0, next_tick - time.monotonic())):
            next_tick = max(next_tick + interval, time.monotonic())
            try:
                self.flush()
            except Exception:  # keep the writer alive; the next flush retries
                time.sleep(interval)

    def flush(self) -> None:
        """Emit one metrics event per run, then store every pending record and update run rows."""
        with self._flush_lock:
            rows: list[tuple[str, int, int, str]] = []
            updates: list[tuple[str, dict[str, Any]]] = []
            events: list[dict[str, Any]] = []
            now = time.monotonic()
            for run in list(self.runs.values()):
                pending = len(run.outbox)
                if not pending:
                    continue
                batch = [run.outbox.popleft() for _ in range(pending)]
                chosen = self._choose_streamed(run, batch, now)
                rows.extend((run.id, e.step, int(i in chosen), e.text) for i, e in enumerate(batch))
                last = batch[-1]
                run.summary["loss"] = last.loss
                run.summary["accuracy"] = last.accuracy
                for e in reversed(batch):
                    if e.test_accuracy is not None:
                        run.summary["test_accuracy"] = e.test_accuracy
                        break
                updates.append((run.id, {"step": last.step, "summary": run.summary}))
                streamed = sorted(chosen)
                events.append(
                    {
                        "kind": "metrics",
                        "run_id": run.id,
                        "records": [batch[i].text for i in streamed],
                        "steps": [batch[i].step for i in streamed],
                    }
                )
            # Viewers first, then the store: the write (~20 ms for ~1,000 records under
            # load) no longer delays the live stream. Replays stay exact: they read
            # through records(), which flushes first and so waits for this lock, i.e.
            # for the write. A crash between the two loses at most this batch.
            for event in events:
                self._emit(event)
            if rows or updates:
                self.store.write_batch(rows, updates)

    def _choose_streamed(self, run: Run, batch: list[Entry], now: float) -> set[int]:
        """Which records go live: all of them unless the run is faster than anyone can watch.

        Then evenly spaced ones at `stream_rate` per second, plus every held-out
        evaluation and the last record. The choice is stored, so a reconnecting
        client gets exactly the live records it missed.
        """
        since = now - run.last_streamed_at if run.last_streamed_at else 1.0
        run.last_streamed_at = now
        allowed = max(1, int(self.settings.stream_rate * min(since, 1.0)))
        n = len(batch)
        if n <= allowed:
            return set(range(n))
        stride = n / allowed
        chosen = {int(i * stride) for i in range(allowed)} | {n - 1}
        chosen |= {i for i, e in enumerate(batch) if e.evaluated}
        return chosen
