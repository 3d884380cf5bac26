"""Where a run's trainer lives: a thread of the server process, or a process of its own.

The run manager drives every run the same way, through a `Session`: it asks for
a slice of training (`advance`), gets the slice's records back, and between
slices obeys pause, resume and stop. An `Executor` opens sessions. Two exist:

- `ThreadExecutor`: the trainer runs in the manager's thread for the run. No
  copies, but small-array numpy holds the GIL: two runs in threads share one
  core's worth of Python (docs/benchmarks.md, "Concurrency").
- `ProcessExecutor` (app/process.py): the trainer runs in a child process (forkserver: started
  from a clean, preloaded server process, not forked from the threaded one);
  slices of up to `slice_seconds` of records come back through a pipe. Runs
  use every core.

- `RayExecutor` (app/ray_executor.py): the trainer runs in a Ray actor, on a local
  Ray instance or a cluster (`SYNTHGRAD_RAY_ADDRESS`); the same slices come back
  through Ray's object store. An optional extra.

As with any multiprocessing code, a script that builds a RunManager with the
process executor must guard its entry point with `if __name__ == "__main__":`
(each training process imports the main module); `synthgrad serve` does.
"""

from __future__ import annotations

import logging
import os
from typing import Any, NamedTuple, Protocol

from synthgrad_core import Trainer, dumps
from synthgrad_core.config import ResolvedConfig
from synthgrad_core.pipeline import make_trainer

Record = dict[str, Any]
log = logging.getLogger("synthgrad.executors")


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


EXECUTORS = ("thread", "process", "ray")
#: What `--executor ray` says where Ray is not installed.
RAY_MISSING = (
    "the ray executor needs Ray, an optional extra: pip install 'synthgrad[ray]' "
    "(in a checkout: pip install '.[ray]')"
)


def ray_available() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("ray") is not None
    except ValueError:  # a module set to None in sys.modules: imports of it fail
        return False


#: Niceness added to training processes (0 = same priority as the server).
TRAINING_NICENESS = 10


class TrainingFailed(RuntimeError):
    """The trainer raised or its process died; the message says what happened.

    `details` holds the training process's traceback when there is one.
    """

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


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

    def kill(self) -> None:
        """End the training at once, from another thread (a no-op where it cannot be)."""
        ...


class Executor(Protocol):
    name: str

    def open(self, config: ResolvedConfig) -> Session:
        """Build the run's trainer; raises ConfigError, OSError or ValueError for a bad config."""
        ...

    def capacity(self) -> int:
        """Runs that can train at once by default (this machine's cores, a cluster's CPUs)."""
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
        self.trainer.close()

    def kill(self) -> None:
        pass  # a thread cannot be killed: its one-step slices end soon on their own


class ThreadExecutor:
    name = "thread"

    def open(self, config: ResolvedConfig) -> Session:
        return ThreadSession(make_trainer(config))

    def capacity(self) -> int:
        return os.cpu_count() or 1

    def shutdown(self) -> None:
        pass


def make_executor(
    name: str, slice_seconds: float = 0.01, ray_address: str | None = None
) -> Executor:
    """The executor called `name`; `slice_seconds` is how much training one message holds."""
    if name == "thread":
        return ThreadExecutor()
    if name == "process":
        from .process import ProcessExecutor

        log.info("training processes start from a fork server (slices of %g s)", slice_seconds)
        return ProcessExecutor(slice_seconds)
    if name == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(slice_seconds, ray_address)
    raise ValueError(f"executor: must be one of {', '.join(EXECUTORS)}, not {name!r}")
