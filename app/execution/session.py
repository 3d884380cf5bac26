"""What the run manager drives: a Session per run, opened by an Executor; the records it returns."""

from __future__ import annotations

import logging
from typing import Any, NamedTuple, Protocol

from app.execution.checkpoints import StartState, replayed
from synthgrad_core import Trainer, dumps
from synthgrad_core.config import ResolvedConfig
from synthgrad_core.factory import make_trainer
from synthgrad_core.seeds import SeedBatch
from synthgrad_core.state import TrainerState

Record = dict[str, Any]


log = logging.getLogger("synthgrad.executors")


class Entry(NamedTuple):
    """One step's record, encoded once (where it was made), with what the manager reads of it."""

    step: int
    text: str  # the record as JSON (records.dumps: no NaN tokens)
    loss: float | None
    accuracy: float | None
    test_accuracy: float | None  # set on held-out evaluation steps only
    #: every viewer must see it, however fast the run: a held-out evaluation, a knob change
    landmark: bool


def entry(record: Record) -> Entry:
    return Entry(
        record["step"],
        dumps(record),
        record.get("loss"),
        record.get("accuracy"),
        record.get("test_accuracy"),
        "test_loss" in record or "config_change" in record,
    )


class SeedsJob(NamedTuple):
    """A sweep group's seeds trained as one computation (synthgrad_core.seeds), each seed
    its own run: its session's slices hold BatchEntry records."""

    config: ResolvedConfig
    seeds: list[int]


#: What an executor trains: one run's config, or a group of seeds.
Job = ResolvedConfig | SeedsJob
#: What trains where the session's trainer lives.
Trainable = Trainer | SeedBatch


def build(job: Job) -> Trainable:
    """The trainer of a job (a module-level function: process executors pickle it)."""
    if isinstance(job, SeedsJob):
        return SeedBatch(job.config, job.seeds)
    return make_trainer(job)


def job_config(job: Job) -> ResolvedConfig:
    return job.config if isinstance(job, SeedsJob) else job


class BatchEntry(NamedTuple):
    """One step of a SeedBatch: each seed's entry (None once it has ended), and each seed's
    status and divergence step after it."""

    step: int
    members: list[Entry | None]
    statuses: list[str]
    diverged_at: list[int | None]


def step_entry(trainer: Trainable) -> Entry | BatchEntry:
    """One step, its record(s) encoded where the trainer lives."""
    if isinstance(trainer, SeedBatch):
        records = trainer.step()
        members = trainer.members
        return BatchEntry(
            trainer.step_count,
            [None if r is None else entry(r) for r in records],
            [m.status for m in members],
            [m.diverged_at for m in members],
        )
    return entry(trainer.step())


def capture(trainer: Trainable, seed_index: int | None) -> TrainerState:
    """The trainer's state, or one seed's of a SeedBatch."""
    if isinstance(trainer, SeedBatch):
        return trainer.capture_seed(seed_index or 0)
    return trainer.capture()


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
#: Seconds a training process or actor gets to answer a capture or a knob change.
ANSWER_TIMEOUT = 5.0


class TrainingFailed(RuntimeError):
    """The trainer raised or its process died; the message says what happened.

    `details` holds the training process's traceback when there is one.
    """

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


class NoAnswer(TrainingFailed):
    """The training process did not answer within its deadline (stopped, or stuck): it
    is no longer in step with its session, which can only end."""


def branched(trainer: Trainable, state: StartState | None) -> Trainable:
    """`trainer`, having taken up `state` if there is one (a branch); closed if it cannot."""
    if state is not None:
        assert isinstance(trainer, Trainer), "a batch of seeds starts fresh"
        try:
            trainer.restore(replayed(state))  # a Replay: the parent's steps again, here
        except Exception:
            trainer.close()
            raise
    return trainer


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

    def advance(self) -> list[Any]:
        """Train one slice (at least one step) and return its records: an Entry per step,
        a BatchEntry per step of a SeedsJob."""
        ...

    def summary(self) -> dict[str, Any]: ...

    def capture(self, seed_index: int | None = None) -> TrainerState:
        """The trainer's state between two steps (CaptureError if it has none); of a
        SeedsJob, the state of the seed at `seed_index`."""
        ...

    def configure(self, changes: dict[str, Any]) -> None:
        """Change live knobs in place before the next slice (ConfigError for a bad one)."""
        ...

    def check(self) -> None:
        """TrainingFailed if the training has died meanwhile (where that can be seen
        without asking it)."""
        ...

    def close(self) -> None:
        """End the training and release what it holds (processes, pipes, actors)."""
        ...

    def kill(self) -> None:
        """End the training at once, from another thread (a no-op where it cannot be)."""
        ...


class Executor(Protocol):
    name: str

    def open(self, config: Job, state: StartState | None = None) -> Session:
        """Build the run's trainer (from `state`, for a branch), or a SeedsJob's batch;
        raises ConfigError, OSError or ValueError for a bad config."""
        ...

    def capacity(self) -> int:
        """Runs that can train at once by default (this machine's cores, a cluster's CPUs)."""
        ...

    def shutdown(self) -> None: ...
