"""Branches and live knobs: "what if, from here?" at any step, and knobs turned while it trains.

A fork creates a run that starts from the parent's exact state at a step
(synthgrad_core.state) with the owner's changes: its own id, owner token,
records and limits, and `fork_of` = {run, step}. The state is the paused
parent's live one, or its stored checkpoint replayed to the step
(app.runs.checkpoints), so finished, stopped, diverged and interrupted runs fork
too, also after a restart. The parent stays as it is.
A knob change (`configure`) alters a queued, running or paused run in place: its
config at once, its trainer at the next slice boundary, where the next record
says what changed (`config_change`).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from app.execution.checkpoints import StartState
from app.runs.manager import RunManager
from app.runs.run import Run
from app.runs.status import ACTIVE, Conflict, RunStatus
from synthgrad_core import ConfigError
from synthgrad_core.seeds import check_batchable
from synthgrad_core.state import CaptureError, check_branch, check_changes

log = logging.getLogger("synthgrad.runs")


class Branches:
    """Forks of paused runs and live knob changes, on top of the run manager."""

    def __init__(self, manager: RunManager) -> None:
        self.manager = manager

    def fork(
        self,
        run_id: str,
        token: str | None,
        name: str | None = None,
        changes: dict[str, Any] | None = None,
        client: str | None = None,
        step: int | None = None,
    ) -> tuple[Run, str]:
        """A branch of a run at `step` (owner or admin); returns it and its owner token.

        A paused run branches at its current step (the default) from its live state,
        any other run by default from its last (good) step; an earlier step starts from
        the run's stored checkpoint at or before it, replayed to it where the branch
        trains (app.runs.checkpoints).
        Raises Forbidden, Conflict (a queued run, or a paused one without a state between
        two steps), ConfigError (a step it cannot start from, a change that does not fit
        the state), and what RunManager.create_many raises (limits, store).
        """
        parent = self.manager.controls.controlled(run_id, token)
        start: StartState
        if parent.status is RunStatus.PAUSED and step in (None, parent.step):
            try:
                start = self.manager.controls.capture(parent)
            except CaptureError as exc:
                raise Conflict(str(exc)) from None
            base = start.config
        else:
            if parent.status is RunStatus.QUEUED:
                raise Conflict("the run has not trained yet; fork it once it has")
            start = self.manager.checkpoints.start_of_fork(parent, step)
            # the parent's config at that step: its live knobs as they were then
            base = start.start.config if start.start is not None else parent.config
        at = start.step
        check_changes(base, changes or {})
        config = dataclasses.replace(base, **(changes or {}))
        check_branch(base, config, at)
        fork_of = {"run": parent.id, "step": at}

        def start_from_state(owner_hash: str, runs: list[Run]) -> None:
            (branch,) = runs
            branch.fork_of, branch.start_state, branch.step = fork_of, start, at
            self.manager.store.insert_run(branch.row())

        default_name = f"{parent.name}, fork at step {at}"[:100]
        (branch,), owner_token = self.manager.create_many(
            [(config.as_dict(), name or default_name)], token, client, group=start_from_state
        )
        log.info("run %s forked from %s at step %d", branch.id, parent.id, at)
        return branch, owner_token

    def family(self, run: Run) -> dict[str, Any]:
        """A run's parent (when it is a branch; its name None once deleted) and branches."""
        parent = None
        if run.fork_of is not None:
            found = self.manager.runs.get(run.fork_of["run"])
            parent = {**run.fork_of, "name": found.name if found else None}
        children = [
            {"id": r.id, "name": r.name, "step": r.fork_of["step"]}
            for r in self.manager.all_runs()
            if r.fork_of is not None and r.fork_of["run"] == run.id
        ]
        return {"parent": parent, "children": children}

    def configure(self, run_id: str, token: str | None, changes: dict[str, Any]) -> Run:
        """Change live knobs of a queued, running or paused run (owner or admin); of every
        seed of its batch, if it trains in one (they share one trainer).

        Raises Forbidden, Conflict (an ended run; a change its batch of seeds cannot
        train) or ConfigError (a value out of bounds).
        """
        controls = self.manager.controls
        run = controls.controlled(run_id, token)
        if run.status.terminal:
            raise Conflict(f"the run is {run.status.value}; its knobs no longer matter")
        config = dataclasses.replace(run.config, **changes)  # validates
        members = [run, *controls.partners(run, *ACTIVE)]
        if run.batch is not None and run.parked is None:
            try:
                check_batchable(config)
            except ConfigError as exc:
                raise Conflict(
                    f"{', '.join(changes)}: the run trains in a batch of seeds, which "
                    f"{exc.message}; change it on a run of its own (a fork) instead"
                ) from None
        for member in members:
            with member.cond:
                member.config = dataclasses.replace(member.config, **changes)
                self.manager.store.update_run(member.id, config=member.config.as_dict())
        controls.configure(members, changes)
        log.info("run %s: knobs changed: %s", run.id, changes)
        return run
