"""Where a run's trainer lives: a thread of the server process, or a process of its own.

The run manager drives every run the same way, through a `Session`: it asks for
a slice of training (`advance`), gets the slice's records back, and between
slices obeys pause, resume and stop. An `Executor` opens sessions. Two exist:

- `ThreadExecutor`: the trainer runs in the manager's thread for the run. No
  copies, but small-array numpy holds the GIL: two runs in threads share one
  core's worth of Python (docs/benchmarks.md, "Concurrency").
- `ProcessExecutor`: the trainer runs in a child process (forkserver: started
  from a clean, preloaded server process, not forked from the threaded one);
  slices of up to `slice_seconds` of records come back through a pipe. Runs
  use every core.

A cluster executor would implement the same two small protocols.

As with any multiprocessing code, a script that builds a RunManager with the
process executor must guard its entry point with `if __name__ == "__main__":`
(each training process imports the main module); `synthgrad serve` does.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any, NamedTuple, Protocol

from synthgrad_core import ConfigError, TrainConfig, Trainer, dumps

Record = dict[str, Any]


class Entry(NamedTuple):
    """One step's record, encoded once (where it was made), with what the manager reads of it."""

    step: int
    text: str  # the record as JSON (records.dumps: no NaN tokens)
    loss: float | None
    accuracy: float | None
    test_accuracy: float | None  # set on held-out evaluation steps only
    evaluated: bool


def entry(record: Record) -> Entry:
    return Entry(
        record["step"],
        dumps(record),
        record.get("loss"),
        record.get("accuracy"),
        record.get("test_accuracy"),
        "test_loss" in record,
    )


EXECUTORS = ("thread", "process")

#: Niceness added to training processes (0 = same priority as the server).
TRAINING_NICENESS = 10


class TrainingFailed(RuntimeError):
    """The trainer raised or its process died; the message says what happened."""


class Session(Protocol):
    """One run's trainer, wherever it lives."""

    total_steps: int

    @property
    def elapsed(self) -> float:
        """Training time so far, in seconds (pauses excluded)."""
        ...

    @property
    def status(self) -> str:
        """ "running", "finished" or "diverged", as Trainer.status."""
        ...

    @property
    def diverged_at(self) -> int | None: ...

    @property
    def done(self) -> bool: ...

    def advance(self) -> list[Entry]:
        """Train one slice (at least one step) and return its records."""
        ...

    def summary(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class Executor(Protocol):
    name: str

    def open(self, config: dict[str, Any]) -> Session:
        """Build the run's trainer; raises ConfigError, OSError or ValueError for a bad config."""
        ...

    def shutdown(self) -> None: ...


# -- threads -------------------------------------------------------------------
class ThreadSession:
    """The trainer in the calling thread; a slice is one step, so controls act at once."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.total_steps = trainer.total_steps

    @property
    def elapsed(self) -> float:
        return self.trainer.elapsed

    @property
    def diverged_at(self) -> int | None:
        return self.trainer.diverged_at

    @property
    def status(self) -> str:
        return self.trainer.status

    @property
    def done(self) -> bool:
        return self.trainer.done

    def advance(self) -> list[Entry]:
        return [entry(self.trainer.step())]

    def summary(self) -> dict[str, Any]:
        return self.trainer.summary()

    def close(self) -> None:
        pass


class ThreadExecutor:
    name = "thread"

    def open(self, config: dict[str, Any]) -> Session:
        return ThreadSession(Trainer(TrainConfig.from_dict(config)))

    def shutdown(self) -> None:
        pass


# -- processes -----------------------------------------------------------------
def _serve_trainer(conn: Connection, config: dict[str, Any], slice_seconds: float) -> None:
    """The child process: build the trainer, then answer the parent's requests until `close`."""
    # Training is batch work: the server process (event loop, store writer) comes first
    # when the cores are busy, so pages and websockets stay responsive.
    with contextlib.suppress(OSError):
        os.nice(TRAINING_NICENESS)
    try:
        trainer = Trainer(TrainConfig.from_dict(config))
    except (ConfigError, OSError, ValueError) as exc:
        conn.send(("invalid", type(exc).__name__, str(exc)))
        return
    conn.send(("ready", trainer.total_steps))
    try:
        while True:
            request = conn.recv()
            if request == "advance":
                # Encoded here, in parallel with the server, not in the server's writer.
                records = [entry(trainer.step())]
                deadline = time.perf_counter() + slice_seconds
                while not trainer.done and time.perf_counter() < deadline:
                    records.append(entry(trainer.step()))
                conn.send(
                    ("records", records, trainer.elapsed, trainer.status, trainer.diverged_at)
                )
            elif request == "summary":
                conn.send(("summary", trainer.summary()))
            else:  # "close"
                return
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return  # the parent went away
    except Exception as exc:
        conn.send(("failed", f"{type(exc).__name__}: {exc}", traceback.format_exc()))


class ProcessSession:
    """A trainer in a child process, driven in lockstep over a pipe."""

    def __init__(self, ctx: Any, config: dict[str, Any], slice_seconds: float) -> None:
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(
            target=_serve_trainer, args=(child, config, slice_seconds), daemon=True
        )
        self._process.start()
        child.close()
        reply = self._receive()
        if reply[0] == "invalid":
            self.close()
            kind, message = reply[1], reply[2]
            if kind == "ConfigError":
                field, _, detail = message.partition(": ")
                raise ConfigError(field, detail)
            raise ValueError(message) if kind == "ValueError" else OSError(message)
        self.total_steps: int = reply[1]
        self._elapsed = 0.0
        self._status = "running"
        self._diverged_at: int | None = None

    @property
    def elapsed(self) -> float:
        return self._elapsed

    @property
    def status(self) -> str:
        return self._status

    @property
    def diverged_at(self) -> int | None:
        return self._diverged_at

    def _receive(self) -> tuple[Any, ...]:
        try:
            reply: tuple[Any, ...] = self._conn.recv()
        except (EOFError, OSError) as exc:
            code = self._process.exitcode
            raise TrainingFailed(f"the training process died (exit code {code})") from exc
        if reply[0] == "failed":
            raise TrainingFailed(reply[1])
        return reply

    @property
    def done(self) -> bool:
        return self._status != "running"

    def advance(self) -> list[Entry]:
        self._conn.send("advance")
        _, records, self._elapsed, self._status, self._diverged_at = self._receive()
        return list(records)

    def summary(self) -> dict[str, Any]:
        self._conn.send("summary")
        return dict(self._receive()[1])

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

    def __init__(self, slice_seconds: float = 0.01) -> None:
        self.slice_seconds = slice_seconds
        self._ctx = multiprocessing.get_context("forkserver")
        # The fork server imports the engine once; each run's process starts from it.
        self._ctx.set_forkserver_preload(["synthgrad_core", "numpy"])

    def open(self, config: dict[str, Any]) -> Session:
        return ProcessSession(self._ctx, config, self.slice_seconds)

    def shutdown(self) -> None:
        pass


def make_executor(name: str) -> Executor:
    if name == "thread":
        return ThreadExecutor()
    if name == "process":
        return ProcessExecutor()
    raise ValueError(f"executor: must be one of {', '.join(EXECUTORS)}, not {name!r}")
