"""The process executor: each run's trainer in a child process, driven over a pipe.

The child starts from a fork server (a clean process with the engine preloaded,
not a fork of the threaded server) at lower priority; slices of up to
`slice_seconds` of records come back as typed messages. As with any
multiprocessing code, a script that builds a RunManager with this executor must
guard its entry point with `if __name__ == "__main__":`; `synthgrad serve` does.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

from app.execution.checkpoints import StartState
from app.execution.session import (
    TRAINING_NICENESS,
    Job,
    Session,
    Trainable,
    TrainingFailed,
    branched,
    build,
    capture,
    step_entry,
)
from synthgrad_core import ConfigError
from synthgrad_core.state import CaptureError, TrainerState


# What crosses the pipe. Parent -> child: "advance", "summary", ("capture", seed index),
# ("configure", changes) or "close".
class Ready(NamedTuple):
    total_steps: int


class Invalid(NamedTuple):
    """The config was refused while building the trainer."""

    kind: str  # "ConfigError", "CaptureError", "ValueError" or "OSError"
    field: str  # the ConfigError's field, else ""
    message: str

    def error(self) -> Exception:
        """The refusal as the exception the trainer raised (its kind, by name)."""
        if self.kind == "ConfigError":
            return ConfigError(self.field, self.message)
        if self.kind == "CaptureError":
            return CaptureError(self.message)
        return ValueError(self.message) if self.kind == "ValueError" else OSError(self.message)


class Slice(NamedTuple):
    records: list[Any]  # Entry, or BatchEntry for a SeedsJob
    elapsed: float
    status: str
    diverged_at: int | None


class Summary(NamedTuple):
    summary: dict[str, Any]


class Captured(NamedTuple):
    state: TrainerState


class Configured(NamedTuple):
    pass


class Failed(NamedTuple):
    message: str
    traceback: str


Reply = Ready | Invalid | Slice | Summary | Captured | Configured | Failed


def _refusal(exc: Exception) -> Invalid:
    if isinstance(exc, ConfigError):
        return Invalid("ConfigError", exc.field, exc.message)
    if isinstance(exc, CaptureError):  # a ValueError too: named first
        return Invalid("CaptureError", "", str(exc))
    return Invalid("ValueError" if isinstance(exc, ValueError) else "OSError", "", str(exc))


def answer(trainer: Trainable, request: Any, slice_seconds: float) -> Reply:
    """A remote session's request ("advance", "summary", ("capture",), ("configure",
    changes)), answered where the trainer lives (a child process, a Ray actor)."""
    if request == "advance":
        return train_slice(trainer, slice_seconds)
    if request == "summary":
        return Summary(trainer.summary())
    try:
        if request[0] == "capture":
            return Captured(capture(trainer, request[1]))
        trainer.configure(**request[1])
        return Configured()
    except (ConfigError, CaptureError) as exc:
        return _refusal(exc)


def replied(reply: Reply) -> Any:
    """What a capture or configure request's reply carries; its refusal raised."""
    if isinstance(reply, Invalid):
        raise reply.error()
    return reply.state if isinstance(reply, Captured) else None


def train_slice(trainer: Trainable, slice_seconds: float) -> Slice:
    """One step, then more until `slice_seconds` pass or the run ends.

    Records are encoded here, where the trainer lives, in parallel with the server.
    """
    records = [step_entry(trainer)]
    deadline = time.perf_counter() + slice_seconds
    while not trainer.done and time.perf_counter() < deadline:
        records.append(step_entry(trainer))
    return Slice(records, trainer.elapsed, trainer.status, getattr(trainer, "diverged_at", None))


class SliceSession:
    """A session whose trainer lives elsewhere: what it knows is the last slice's figures."""

    total_steps: int
    _elapsed: float = 0.0
    _status: str = "running"
    _diverged_at: int | None = None

    @property
    def elapsed(self) -> float:
        return self._elapsed

    @property
    def status(self) -> str:
        return self._status

    @property
    def diverged_at(self) -> int | None:
        return self._diverged_at

    @property
    def done(self) -> bool:
        return self._status != "running"

    def _took(self, reply: Reply) -> list[Any]:
        """The slice's records, its figures kept."""
        assert isinstance(reply, Slice)
        self._elapsed, self._status, self._diverged_at = (
            reply.elapsed,
            reply.status,
            reply.diverged_at,
        )
        return reply.records


def _serve_trainer(
    conn: Connection,
    config: Job,
    slice_seconds: float,
    build: Callable[[Job], Trainable],
    state: StartState | None = None,
) -> None:
    """The child process: build the trainer, then answer the parent's requests until `close`."""
    # Training is batch work: the server process (event loop, store writer) comes first
    # when the cores are busy, so pages and websockets stay responsive.
    with contextlib.suppress(OSError):
        os.nice(TRAINING_NICENESS)
    try:
        trainer = branched(build(config), state)
    except (ConfigError, OSError, ValueError) as exc:
        conn.send(_refusal(exc))
        return
    conn.send(Ready(trainer.total_steps))
    try:
        while True:
            request = conn.recv()
            if request == "close":
                trainer.close()
                return
            conn.send(answer(trainer, request, slice_seconds))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return  # the parent went away
    except Exception as exc:
        conn.send(Failed(f"{type(exc).__name__}: {exc}", traceback.format_exc()))


def _death(exitcode: int | None) -> str:
    """How a training process ended, in words: 'was killed by SIGKILL', 'exited with 3'."""
    if exitcode is None:
        return "stopped answering"
    if exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


class ProcessSession(SliceSession):
    """A trainer in a child process, driven in lockstep over a pipe."""

    def __init__(
        self,
        ctx: Any,
        config: Job,
        slice_seconds: float,
        build: Callable[[Job], Trainable] = build,
        state: StartState | None = None,
    ) -> None:
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(
            target=_serve_trainer, args=(child, config, slice_seconds, build, state), daemon=True
        )
        self._process.start()
        child.close()
        reply = self._receive()
        if isinstance(reply, Invalid):
            self.close()
            raise reply.error()
        assert isinstance(reply, Ready)
        self.total_steps = reply.total_steps

    def _receive(self) -> Reply:
        try:
            reply: Reply = self._conn.recv()
        except (EOFError, OSError) as exc:
            self._process.join(timeout=1)  # reap it, so its exit code is known
            raise TrainingFailed(f"the training process {_death(self._process.exitcode)}") from exc
        if isinstance(reply, Failed):
            raise TrainingFailed(reply.message, reply.traceback)
        return reply

    def advance(self) -> list[Any]:
        self._conn.send("advance")
        return self._took(self._receive())

    def summary(self) -> dict[str, Any]:
        self._conn.send("summary")
        reply = self._receive()
        assert isinstance(reply, Summary)
        return reply.summary

    def capture(self, seed_index: int | None = None) -> TrainerState:
        self._conn.send(("capture", seed_index))
        state: TrainerState = replied(self._receive())
        return state

    def configure(self, changes: dict[str, Any]) -> None:
        self._conn.send(("configure", changes))
        replied(self._receive())

    def kill(self) -> None:
        """SIGKILL: works on a process stuck in a step and on a stopped (SIGSTOP) one."""
        with contextlib.suppress(OSError, ValueError):
            self._process.kill()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send("close")
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5)
        self._conn.close()


class ProcessExecutor:
    name = "process"

    def __init__(
        self,
        slice_seconds: float = 0.01,
        build: Callable[[Job], Trainable] = build,
    ) -> None:
        """`build` makes the trainer in the child (a module-level function: it is pickled)."""
        self.slice_seconds = slice_seconds
        self.build = build
        self._ctx = multiprocessing.get_context("forkserver")
        # The fork server imports the engine once; each run's process starts from it.
        self._ctx.set_forkserver_preload(["synthgrad_core", "numpy"])

    def open(self, config: Job, state: StartState | None = None) -> Session:
        return ProcessSession(self._ctx, config, self.slice_seconds, self.build, state)

    def capacity(self) -> int:
        return os.cpu_count() or 1

    def shutdown(self) -> None:
        pass
