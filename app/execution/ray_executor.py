"""The Ray executor: each run's trainer in a Ray actor, on this machine or on a cluster.

The manager drives a Ray session exactly as a process session: `advance` asks the
actor for a slice of training and gets its encoded records back, so the server
stays the only writer of the store and streams the records like any others.
Pause, resume and stop act between slices; `kill` is `ray.kill`. A worker that dies
(killed, out of memory, its node gone) fails its run with Ray's reason; other runs
go on.

Without an address, the executor starts a local Ray instance sized to the machine
(one CPU per run, `workers` CPUs for a pipelined one); with `SYNTHGRAD_RAY_ADDRESS`
it joins an existing cluster, whose nodes must have synthgrad installed (the actor
imports `app.execution.ray_executor` and the engine there). Ray is an optional extra:
`pip install "synthgrad[ray]"`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import traceback
from collections.abc import Iterator
from typing import Any

from app.execution.checkpoints import StartState
from app.execution.messages import (
    Advance,
    ChangeKnobs,
    Failed,
    Ready,
    Refused,
    Reply,
    Request,
    Summarize,
    TakeState,
    answer,
    replied,
)
from app.execution.process import SliceSession
from app.execution.session import (
    ANSWER_TIMEOUT,
    RAY_MISSING,
    TRAINING_NICENESS,
    Job,
    NoAnswer,
    Session,
    Trainable,
    TrainingFailed,
    branched,
    build,
    job_config,
)
from synthgrad_core import ConfigError
from synthgrad_core.state import TrainerState

log = logging.getLogger("synthgrad.executors")

#: Object store of a local instance: records are small and leave it at once.
LOCAL_OBJECT_STORE = 100 * 2**20


class TrainerActor:
    """Lives in a Ray worker: builds a run's trainer, then trains slice by slice on request.

    One actor trains one run at a time and then the next (`load`): with an actor per
    run a run waited 1.3 s for its first record here, with reuse 0.06 s.
    """

    def __init__(self, slice_seconds: float) -> None:
        with contextlib.suppress(OSError):
            os.nice(TRAINING_NICENESS)
        self.slice_seconds = slice_seconds
        self.trainer: Trainable | None = None

    def load(self, config: Job, state: StartState | None = None) -> Ready | Refused:
        try:
            self.trainer = branched(build(config), state)
        except (ConfigError, OSError, ValueError) as exc:
            return Refused(exc)
        return Ready(self.trainer.total_steps)

    def request(self, request: Request) -> Reply:
        """A session's request (process.answer): the same typed messages as a pipe's."""
        assert self.trainer is not None
        try:
            return answer(self.trainer, request, self.slice_seconds)
        except Exception as exc:
            return Failed(f"{type(exc).__name__}: {exc}", traceback.format_exc())

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        if self.trainer is not None:
            self.trainer.close()
        self.trainer = None


def _death(exc: Exception) -> str:
    """Ray's reason for a dead actor, in one line ('killed by ray.kill', 'its worker died...')."""
    for line in str(exc).splitlines():
        line = line.strip()
        if line.startswith("The actor is dead because"):
            return line.removeprefix("The actor is dead because").strip().rstrip(".")
    first = str(exc).strip().splitlines()
    return first[0].rstrip(".") if first else type(exc).__name__


@contextlib.contextmanager
def _signals_kept() -> Iterator[None]:
    """Keep the process's SIGTERM and SIGINT handlers: `ray.init` replaces them with one
    that exits at once, which would cut the server's graceful shutdown short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            if handler is not None:
                signal.signal(signum, handler)


class RaySession(SliceSession):
    """A trainer in a Ray actor, driven in lockstep like a process session."""

    def __init__(self, executor: RayExecutor, job: Job, state: StartState | None = None) -> None:
        import ray

        self._ray = ray
        self.answer_timeout = executor.answer_timeout
        self._executor = executor
        config = job_config(job)
        pipelined = config.execution == "pipelined" and config.uses_modules
        self.cpus = config.workers if pipelined else 1  # a CPU per thread that trains
        self._actor, self._killed = executor.actor(self.cpus), False
        self._ping: Any = None  # a liveness question in flight (check)
        try:
            reply = self._get(self._actor.load.remote(job, state))
        except TrainingFailed:  # an idle actor that died meanwhile: once more, a fresh one
            self._actor = executor.actor(self.cpus, fresh=True)
            reply = self._get(self._actor.load.remote(job, state))
        if isinstance(reply, Refused):
            self.close()
            raise reply.error
        assert isinstance(reply, Ready)
        self.total_steps = reply.total_steps

    def _get(self, ref: Any, timeout: float | None = None) -> Any:
        from ray.exceptions import GetTimeoutError, RayActorError, RayError

        try:
            reply = self._ray.get(ref, timeout=timeout)
        except GetTimeoutError:
            raise NoAnswer(f"the Ray worker did not answer within {timeout:g} s") from None
        except RayActorError as exc:
            raise TrainingFailed(f"the Ray worker died: {_death(exc)}") from None
        except RayError as exc:
            raise TrainingFailed(f"Ray failed: {_death(exc)}", str(exc)) from None
        if isinstance(reply, Failed):
            raise TrainingFailed(reply.message, reply.traceback)
        return reply

    def _ask(self, request: Request, timeout: float | None = None) -> Any:
        return self._get(self._actor.request.remote(request), timeout)

    def advance(self) -> list[Any]:
        return self._took(self._ask(Advance()))

    def summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = self._ask(Summarize()).summary
        return summary

    def capture(self, seed_index: int | None = None) -> TrainerState:
        state: TrainerState = replied(self._ask(TakeState(seed_index), self.answer_timeout))
        return state

    def configure(self, changes: dict[str, Any]) -> None:
        replied(self._ask(ChangeKnobs(changes), self.answer_timeout))

    def check(self) -> None:
        """TrainingFailed once a ping shows the worker dead; a ping not yet answered (a
        stopped worker) is asked again later, never waited for."""
        if self._ping is None:
            self._ping = self._actor.pid.remote()
            return
        ready, _ = self._ray.wait([self._ping], timeout=0)
        if ready:
            ping, self._ping = self._ping, None
            self._get(ping)

    def pid(self) -> int:
        """The worker process's id (on its node), for tests and operators."""
        pid: int = self._get(self._actor.pid.remote())
        return pid

    def kill(self) -> None:
        self._killed = True
        with contextlib.suppress(Exception):
            self._ray.kill(self._actor, no_restart=True)

    def close(self) -> None:
        """Free the actor for the next run (or end it, if it was killed or will not answer)."""
        if not self._killed:
            try:
                self._ray.get(self._actor.close.remote(), timeout=5)
            except Exception:
                self.kill()
        if self._killed:
            return
        self._executor.release(self._actor, self.cpus)


class RayExecutor:
    """Opens Ray sessions; starts (and later stops) a local Ray unless one is running or given."""

    name = "ray"

    def __init__(
        self,
        slice_seconds: float = 0.05,
        address: str | None = None,
        answer_timeout: float = ANSWER_TIMEOUT,
    ) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError(f"executor: {RAY_MISSING}") from None
        self._ray = ray
        self.slice_seconds = slice_seconds
        self.answer_timeout = answer_timeout
        self._owns = not ray.is_initialized()
        if self._owns:
            with _signals_kept():
                if address:
                    log.info("joining the Ray cluster at %s", address)
                    ray.init(address=address, log_to_driver=False)
                else:
                    log.info("starting a local Ray instance (%d CPUs)", os.cpu_count() or 1)
                    ray.init(
                        address="local",  # a new instance, even if a cluster runs here
                        num_cpus=os.cpu_count() or 1,
                        include_dashboard=False,
                        object_store_memory=LOCAL_OBJECT_STORE,
                        log_to_driver=False,
                    )
        self._actor_class = ray.remote(TrainerActor)
        self._idle: dict[int, list[Any]] = {}  # actors between runs, by the CPUs they hold
        self._lock = threading.Lock()

    def capacity(self) -> int:
        """Runs that can train at once: the cluster's CPUs."""
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def actor(self, cpus: int, fresh: bool = False) -> Any:
        """An idle actor holding `cpus` CPUs, or a new one."""
        with self._lock:
            idle = self._idle.get(cpus, [])
            if idle and not fresh:
                return idle.pop()
            # Idle actors of another size hold CPUs the new one may need: end them.
            others = [a for c, actors in self._idle.items() if c != cpus for a in actors]
            self._idle = {cpus: idle}
        for other in others:
            with contextlib.suppress(Exception):
                self._ray.kill(other, no_restart=True)
        options = self._actor_class.options(num_cpus=cpus, max_restarts=0)
        return options.remote(self.slice_seconds)

    def release(self, actor: Any, cpus: int) -> None:
        """Keep a finished run's actor for the next run, up to the cluster's CPUs in all."""
        with self._lock:
            held = sum(c * len(a) for c, a in self._idle.items())
            if held + cpus <= self.capacity():
                self._idle.setdefault(cpus, []).append(actor)
                return
        with contextlib.suppress(Exception):
            self._ray.kill(actor, no_restart=True)

    def open(self, config: Job, state: StartState | None = None) -> Session:
        return RaySession(self, config, state)

    def shutdown(self) -> None:
        with self._lock:
            idle = [a for actors in self._idle.values() for a in actors]
            self._idle.clear()
        for actor in idle:
            with contextlib.suppress(Exception):
                self._ray.kill(actor, no_restart=True)
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
