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
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from app.execution.checkpoints import StartState
from app.execution.messages import (
    Advance,
    ChangeKnobs,
    Close,
    Failed,
    Ready,
    Refused,
    Reply,
    Request,
    Slice,
    Summarize,
    Summary,
    TakeState,
    answer,
    replied,
)
from app.execution.session import (
    ANSWER_TIMEOUT,
    TRAINING_NICENESS,
    Job,
    NoAnswer,
    Session,
    Trainable,
    TrainingFailed,
    branched,
    build,
)
from synthgrad_core import ConfigError
from synthgrad_core.state import TrainerState


class SliceSession:
    """A session whose trainer lives elsewhere: what it knows is the last slice's figures."""

    total_steps: int
    _elapsed: float = 0.0
    _status: str = "running"
    _diverged_at: int | None = None
    _done: bool = False

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
        return self._done

    def check(self) -> None:
        """Nothing seen without asking (a process session looks at its process)."""

    def _took(self, reply: Reply) -> list[Any]:
        """The slice's records, its figures kept."""
        assert isinstance(reply, Slice)
        self._elapsed, self._status, self._diverged_at, self._done = (
            reply.elapsed,
            reply.status,
            reply.diverged_at,
            reply.done,
        )
        return reply.records


def _serve_trainer(
    conn: Connection,
    config: Job,
    slice_seconds: float,
    build: Callable[[Job], Trainable],
    state: StartState | None = None,
) -> None:
    """The child process: build the trainer, then answer the parent's requests until Close."""
    # Training is batch work: the server process (event loop, store writer) comes first
    # when the cores are busy, so pages and websockets stay responsive.
    with contextlib.suppress(OSError):
        os.nice(TRAINING_NICENESS)
    try:
        trainer = branched(build(config), state)
    except (ConfigError, OSError, ValueError) as exc:
        conn.send(Refused(exc))
        return
    conn.send(Ready(trainer.total_steps))
    try:
        while not isinstance(request := conn.recv(), Close):
            conn.send(answer(trainer, request, slice_seconds))
        trainer.close()
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
    """A trainer in a child process, driven in lockstep over a pipe.

    A capture or a knob change waits `answer_timeout` seconds for its reply (then
    NoAnswer); a slice or a summary waits as long as the training takes (an ending
    control kills a process that does not obey: app.runs.controls).
    """

    def __init__(
        self,
        ctx: Any,
        config: Job,
        slice_seconds: float,
        build: Callable[[Job], Trainable] = build,
        state: StartState | None = None,
        answer_timeout: float = ANSWER_TIMEOUT,
    ) -> None:
        self.answer_timeout = answer_timeout
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(
            target=_serve_trainer, args=(child, config, slice_seconds, build, state), daemon=True
        )
        try:
            self._process.start()
        finally:
            child.close()
        reply = self._receive()
        if isinstance(reply, Refused):
            self.close()
            raise reply.error
        assert isinstance(reply, Ready)
        self.total_steps = reply.total_steps

    def _died(self) -> TrainingFailed:
        self._process.join(timeout=1)  # reap it, so its exit code is known
        return TrainingFailed(f"the training process {_death(self._process.exitcode)}")

    def _ask(self, request: Request, timeout: float | None = None) -> Reply:
        """Send `request` and wait for its reply (up to `timeout` s, if given)."""
        try:
            self._conn.send(request)
            if timeout is not None and not self._conn.poll(timeout):
                raise NoAnswer(f"the training process did not answer within {timeout:g} s")
            reply: Reply = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise self._died() from exc
        if isinstance(reply, Failed):
            raise TrainingFailed(reply.message, reply.traceback)
        return reply

    def _receive(self) -> Reply:
        try:
            reply: Reply = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise self._died() from exc
        return reply

    def advance(self) -> list[Any]:
        return self._took(self._ask(Advance()))

    def summary(self) -> dict[str, Any]:
        reply = self._ask(Summarize())
        assert isinstance(reply, Summary)
        return reply.summary

    def capture(self, seed_index: int | None = None) -> TrainerState:
        state: TrainerState = replied(self._ask(TakeState(seed_index), self.answer_timeout))
        return state

    def configure(self, changes: dict[str, Any]) -> None:
        replied(self._ask(ChangeKnobs(changes), self.answer_timeout))

    def check(self) -> None:
        """TrainingFailed if the training process has died (a paused run's, say)."""
        if not self._process.is_alive():
            raise self._died()

    def kill(self) -> None:
        """SIGKILL: works on a process stuck in a step and on a stopped (SIGSTOP) one."""
        with contextlib.suppress(OSError, ValueError):
            self._process.kill()

    def close(self) -> None:
        """End the process (killed if it does not end within a second) and free its
        pipe and sentinel: a finished run holds no file descriptor."""
        if self._conn.closed:
            return
        with contextlib.suppress(OSError, ValueError):
            self._conn.send(Close())
        self._process.join(timeout=1)
        if self._process.is_alive():
            self.kill()
            self._process.join(timeout=5)
        self._conn.close()
        with contextlib.suppress(ValueError):  # still alive after SIGKILL: left to the OS
            self._process.close()


class ProcessExecutor:
    name = "process"

    def __init__(
        self,
        slice_seconds: float = 0.01,
        build: Callable[[Job], Trainable] = build,
        answer_timeout: float = ANSWER_TIMEOUT,
    ) -> None:
        """`build` makes the trainer in the child (a module-level function: it is pickled)."""
        self.slice_seconds = slice_seconds
        self.answer_timeout = answer_timeout
        self.build = build
        self._ctx = multiprocessing.get_context("forkserver")
        # The fork server imports the engine once; each run's process starts from it.
        self._ctx.set_forkserver_preload(["synthgrad_core", "numpy"])

    def open(self, config: Job, state: StartState | None = None) -> Session:
        return ProcessSession(
            self._ctx, config, self.slice_seconds, self.build, state, self.answer_timeout
        )

    def capacity(self) -> int:
        return os.cpu_count() or 1

    def shutdown(self) -> None:
        pass
