"""Where a run's trainer lives: a thread of the server process, or a process of its own.

The run manager drives every run the same way, through a `Session`: it asks for
a slice of training (`advance`), gets the slice's records back, and between
slices obeys pause, resume and stop. An `Executor` opens sessions. Two exist:

- `ThreadExecutor`: the trainer runs in the manager's thread for the run. No
  copies, but small-array numpy holds the GIL: two runs in threads share one
  core's worth of Python (docs/benchmarks.md, "Concurrency").
- `ProcessExecutor` (process.py): the trainer runs in a child process (forkserver: started
  from a clean, preloaded server process, not forked from the threaded one);
  slices of up to `slice_seconds` of records come back through a pipe. Runs
  use every core.

- `RayExecutor` (ray_executor.py): the trainer runs in a Ray actor, on a local
  Ray instance or a cluster (`SYNTHGRAD_RAY_ADDRESS`); the same slices come back
  through Ray's object store. An optional extra.

As with any multiprocessing code, a script that builds a RunManager with the
process executor must guard its entry point with `if __name__ == "__main__":`
(each training process imports the main module); `synthgrad serve` does.
"""

from __future__ import annotations

import logging

from app.execution.session import ANSWER_TIMEOUT, Executor
from app.execution.thread import ThreadExecutor

log = logging.getLogger("synthgrad.executors")

EXECUTORS = ("thread", "process", "ray")


def make_executor(
    name: str,
    slice_seconds: float = 0.01,
    ray_address: str | None = None,
    answer_timeout: float = ANSWER_TIMEOUT,
) -> Executor:
    """The executor called `name`; `slice_seconds` is how much training one message holds,
    `answer_timeout` how long a capture or a knob change waits for its answer."""
    if name == "thread":
        return ThreadExecutor()
    if name == "process":
        from app.execution.process import ProcessExecutor

        log.info("training processes start from a fork server (slices of %g s)", slice_seconds)
        return ProcessExecutor(slice_seconds, answer_timeout=answer_timeout)
    if name == "ray":
        from app.execution.ray_executor import RayExecutor

        return RayExecutor(slice_seconds, ray_address, answer_timeout)
    raise ValueError(f"executor: must be one of {', '.join(EXECUTORS)}, not {name!r}")
