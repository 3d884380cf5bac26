"""Batched seeds on the server: a sweep group's seeds train as one job, each seed its own run.

A sweep created with `batch_seeds` (the default) marks each group, its runs that
differ only by seed, as a batch (`Run.batch`) when a batch can train its config
(synthgrad_core.seeds.check_batchable). When the first of them leaves the queue,
all of its waiting runs start together: one SeedsJob session (one thread, process
or Ray actor; one slot) trained by the run loop (app.runs.loop), whose every step
hands each seed's record to that seed's run. Everything else stays per run:
records, stream, page, CSV, status, fork.

Pause, resume and stop of any seed act on the whole batch (Controls passes them on;
the sweep page says so); so do knob changes, and a change a batch cannot train
(check_batchable) is refused. A seed that diverges ends alone and the others train
on; a deleted seed ends alone too (its share of the computation goes on, unseen).
A parked batch's seeds go on alone, each from its own state.
"""

from __future__ import annotations

from app.runs.run import Run
from app.runs.status import RunStatus
from synthgrad_core import ConfigError
from synthgrad_core.config import ResolvedConfig
from synthgrad_core.seeds import check_batchable


def is_batchable(config: ResolvedConfig) -> bool:
    try:
        check_batchable(config)
    except ConfigError:
        return False
    return True


def waiting_partners(run: Run, runs: dict[str, Run]) -> list[Run]:
    """`run` and the runs of its batch that wait to start with it (queued, not held)."""
    group = [run]
    if run.start_state is not None:  # one going on from a state trains alone
        return group
    for other_id in run.batch or []:
        other = runs.get(other_id)
        if other is None or other is run or other.held or other.thread is not None:
            continue
        if other.status is RunStatus.QUEUED and other.start_state is None:
            group.append(other)
    return group
