"""Branches and live knobs: "what if, from here?" on a paused run, and knobs turned while it trains.

A fork captures the paused parent's trainer (synthgrad_core.state) and creates a
run that starts from that state with the owner's changes: its own id, owner
token, records and limits, and `fork_of` = {run, step}. The parent stays paused.
A knob change (`configure`) alters a queued, running or paused run in place: its
config at once, its trainer at the next slice boundary, where the next record
says what changed (`config_change`).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from app.runs.manager import RunManager
from app.runs.run import Run
from app.runs.status import ACTIVE, Conflict
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
    ) -> tuple[Run, str]:
        """A branch of a paused run (owner or admin); returns it and its owner token.

        Raises Forbidden, Conflict (not paused, or its trainer has no state between two
        steps), ConfigError (a change that does not fit the state), and what
        RunManager.create_many raises (limits, store).
        """
        parent = self.manager.controls.controlled(run_id, token)
        check_changes(parent.config, changes or {})
        try:
            state = self.manager.controls.capture(parent)
        except CaptureError as exc:
            raise Conflict(str(exc)) from None
        config = dataclasses.replace(parent.config, **(changes or {}))
        check_branch(parent.config, config, state.step)
        fork_of = {"run": parent.id, "step": state.step}

        def start_from_state(owner_hash: str, runs: list[Run]) -> None:
            (branch,) = runs
            branch.fork_of, branch.start_state, branch.step = fork_of, state, state.step
            self.manager.store.insert_run(branch.row())

        default_name = f"{parent.name}, fork at step {state.step}"[:100]
        (branch,), owner_token = self.manager.create_many(
            [(config.as_dict(), name or default_name)], token, client, group=start_from_state
        )
        log.info("run %s forked from %s at step %d", branch.id, parent.id, state.step)
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
