"""Sweeps: a named grid of runs (rules x seeds x up to two more fields), its groups, its controls.

A sweep is created in one step: every grid point's config is checked (a point
listed twice is refused), then the sweep and all its runs are stored in one
transaction and queued, owned by the caller. For the owner's limits a sweep is
one creation (the pace) and one unfinished item (the item quota); every run
counts against the stored- and unfinished-run caps and the caller's shares of
them (app.runs.quotas.Shares), and each run's cost is checked on its own. A
group's seeds train in batches that each fit one run's budget (their estimate is
the sum of their seeds'). Waiting runs start round-robin across owners, so a
24-run sweep does not starve another visitor.

Plain Python on top of the run manager; it knows nothing of HTTP.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.runs.access import new_run_id
from app.runs.batches import is_batchable
from app.runs.manager import RunManager
from app.runs.naming import dataset_of, point_label, sweep_name
from app.runs.quotas import seeds_per_batch, split_evenly
from app.runs.run import Run
from app.runs.status import ACTIVE, Conflict, RunStatus
from app.storage.store import RUN_COLUMNS, Store, encode_column
from synthgrad_core import ConfigError, TrainConfig
from synthgrad_core.seeds import batch_pays
from synthgrad_core.sweep import check_grid, points, summarize

log = logging.getLogger("synthgrad.sweeps")

SWEEP_COLUMNS = ("id", "name", "owner_hash", "created_at", "config", "grid")


class SweepNotFound(KeyError):
    pass


class GridError(ConfigError):
    """A bad grid: `field` names the grid's field (the API answers 422 at body.grid.<field>)."""

    part = "grid"


@dataclass(eq=False)
class Sweep:
    id: str
    name: str
    owner_hash: str
    created_at: float
    config: dict[str, Any]  # the base config (what every grid point shares)
    grid: dict[str, list[Any]]
    run_ids: list[str]


def checked_points(
    config: dict[str, Any],
    grid: dict[str, list[Any]],
    fill: Callable[[dict[str, Any]], dict[str, Any]] = lambda config: config,
) -> list[dict[str, Any]]:
    """The grid's points, each checked with the base config (and what `fill` adds to a
    point's config: the server's MNIST, where the grid varies the dataset): a GridError
    names the point.

    Two points that would train the same run (a value listed twice, or two values the
    config reads the same) are refused: a batch cannot train a seed twice, and a sweep
    of copies measures nothing.
    """
    try:
        check_grid(grid)
    except ConfigError as exc:
        raise GridError(exc.field, exc.message) from None
    todo = points(config, grid)
    seen: dict[str, dict[str, Any]] = {}
    for point in todo:
        try:
            resolved = TrainConfig.from_dict(fill({**config, **point})).resolve()
        except ConfigError as exc:
            if exc.field not in grid:
                raise
            raise GridError(exc.field, f"{point_label(point)}: {exc.message}") from None
        key = json.dumps(resolved.as_dict(), sort_keys=True)
        if (twin := seen.setdefault(key, point)) is not point:
            raise _twice(grid, twin, point)
    return todo


def _twice(grid: dict[str, list[Any]], twin: dict[str, Any], point: dict[str, Any]) -> GridError:
    """The error for two grid points that are the same run: a value listed twice, or two
    values the config reads the same (0.1 and 0.10)."""
    for field, values in grid.items():
        texts = [json.dumps(v, sort_keys=True) for v in values]
        if len(set(texts)) < len(texts):
            return GridError(field, f"lists {_cell(point[field])} twice: give each value once")
    field = next(f for f in grid if twin[f] != point[f])
    return GridError(
        field,
        f"lists {_cell(twin[field])} and {_cell(point[field])}, the same run twice: "
        "give each value once",
    )


def mark_batches(runs: list[Run], most: Callable[[Run], int], cores: int = 1) -> None:
    """Runs whose configs differ only by seed, and that a batch can train, form batches of
    at most `most(run)` seeds each (a batch is one job: it must fit one run's budget), where
    a batch is estimated to finish sooner than a process per seed on `cores`
    (seeds.batch_pays)."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        key = json.dumps({**run.config.as_dict(), "seed": None}, sort_keys=True)
        groups.setdefault(key, []).append(run)
    for group in groups.values():
        if len(group) < 2 or not is_batchable(group[0].config):
            continue
        for batch in split_evenly(group, most(group[0])):
            if len(batch) > 1 and batch_pays(batch[0].config, len(batch), len(runs), cores):
                ids = [run.id for run in batch]
                for run in batch:
                    run.batch = ids


class Sweeps:
    """The server's sweeps: create, read (runs and groups), control and delete them."""

    def __init__(self, manager: RunManager) -> None:
        self.manager = manager
        self.store: Store = manager.store
        self.sweeps: dict[str, Sweep] = {}
        members: dict[str, list[str]] = {}
        for run in manager.runs.values():  # in creation order
            if run.sweep_id:
                members.setdefault(run.sweep_id, []).append(run.id)
        rows = self.store._read(f"SELECT {', '.join(SWEEP_COLUMNS)} FROM sweeps", ())
        for row in rows:
            values = dict(zip(SWEEP_COLUMNS, row, strict=True))
            values["config"], values["grid"] = json.loads(row[4]), json.loads(row[5])
            self.sweeps[row[0]] = Sweep(**values, run_ids=members.get(row[0], []))

    # -- creating ----------------------------------------------------------------
    def create(
        self,
        name: str | None,
        config: dict[str, Any],
        grid: dict[str, list[Any]],
        token: str | None = None,
        client: str | None = None,
        batch_seeds: bool = True,
    ) -> tuple[Sweep, str]:
        """Check the grid and every point's config, then store and queue all its runs; with
        `batch_seeds`, each group's seeds train as one batch (app.runs.batches).

        Raises GridError (the grid), ConfigError (the base config), and what
        RunManager.create_many raises (access, limits, store).
        """
        grid = {field: list(values) for field, values in grid.items() if values}
        config = {k: v for k, v in config.items() if k not in grid}  # the grid's values rule
        config = self.manager.admission.with_data(config)  # MNIST from the data folder
        todo = checked_points(config, grid, self.manager.admission.with_data)
        prefix = name or dataset_of(config)
        name = name or sweep_name(config, grid)
        sweep = Sweep(new_run_id(), name, "", time.time(), config, grid, [])

        def store_together(owner_hash: str, runs: list[Run]) -> None:
            sweep.owner_hash = owner_hash
            for run in runs:
                run.sweep_id = sweep.id
            if batch_seeds:
                # the slots this sweep's runs may hold at once: its owner's share of them
                slots = min(self.manager.admission.shares.slot_limits(self.manager.slots))
                mark_batches(
                    runs, lambda run: seeds_per_batch(run.config, self.manager.settings), slots
                )
            self._insert(sweep, runs)

        runs, owner_token = self.manager.create_many(
            [({**config, **p}, f"{prefix}: {point_label(p)}"[:100]) for p in todo],
            token,
            client,
            group=store_together,
        )
        sweep.run_ids = [run.id for run in runs]
        self.sweeps[sweep.id] = sweep
        log.info("sweep %s created: %d runs over %s", sweep.id, len(runs), ", ".join(grid))
        return sweep, owner_token

    def _insert(self, sweep: Sweep, runs: list[Run]) -> None:
        """The sweep and its runs in one transaction: all stored, or none."""
        row = [getattr(sweep, c) for c in SWEEP_COLUMNS]
        row[4], row[5] = json.dumps(sweep.config), json.dumps(sweep.grid)
        run_rows = [[encode_column(c, run.row()[c]) for c in RUN_COLUMNS] for run in runs]

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(f"INSERT INTO sweeps VALUES ({', '.join('?' * len(row))})", row)
            conn.executemany(
                f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(RUN_COLUMNS))})",
                run_rows,
            )

        self.store._write(work)

    # -- reading -----------------------------------------------------------------
    def get(self, sweep_id: str) -> Sweep:
        sweep = self.sweeps.get(sweep_id)
        if sweep is None:
            raise SweepNotFound(sweep_id)
        return sweep

    def all_sweeps(self) -> list[Sweep]:
        return sorted(self.sweeps.values(), key=lambda s: s.created_at, reverse=True)

    def runs(self, sweep: Sweep) -> list[Run]:
        """The sweep's runs that still exist (a run may be deleted on its own)."""
        return [self.manager.runs[r] for r in sweep.run_ids if r in self.manager.runs]

    def status(self, sweep: Sweep) -> str:
        """running, paused or queued while any run is unfinished; then finished when every
        run trained to the end (finished or diverged), else ended (some stopped, failed...)."""
        statuses = {run.status for run in self.runs(sweep)}
        for status in (RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.QUEUED):
            if status in statuses:
                return status.value
        if not statuses:
            return "empty"
        return "finished" if statuses <= {RunStatus.FINISHED, RunStatus.DIVERGED} else "ended"

    def describe(self, sweep: Sweep, token: str | None = None) -> dict[str, Any]:
        """The sweep as the API shows it: its runs with their grid points, and its groups."""
        runs = self.runs(sweep)
        rows = []
        for run in runs:
            point = {field: run.config.as_dict().get(field) for field in sweep.grid}
            # Final numbers: of runs that trained to the end (a stopped or interrupted
            # run's are partial, a failed one's missing).
            ended = run.status in (RunStatus.FINISHED, RunStatus.DIVERGED)
            summary = run.summary if ended else {}
            rows.append(
                {
                    **point,
                    "accuracy": summary.get("accuracy"),
                    "test_accuracy": summary.get("test_accuracy"),
                    "fidelity": summary.get("fidelity", {}),
                    "status": run.status.value,
                }
            )
        return {
            "id": sweep.id,
            "name": sweep.name,
            "status": self.status(sweep),
            "created_at": sweep.created_at,
            "config": sweep.config,
            "grid": sweep.grid,
            "runs": [
                {**run.public(), "point": {k: row[k] for k in sweep.grid}}
                for run, row in zip(runs, rows, strict=True)
            ],
            "groups": summarize(rows, sweep.grid),
            "can_control": self.manager.access.can_control(sweep.owner_hash, token),
        }

    # -- controls ----------------------------------------------------------------
    def control(self, sweep_id: str, action: str, token: str | None) -> Sweep:
        """Pause, resume or stop every unfinished run of the sweep (owner or admin).

        Pausing also holds its queued runs (they start once the sweep resumes; a
        restart of the server releases them). Stop ends queued runs too.
        """
        sweep = self.get(sweep_id)
        self.manager.access.authorize(sweep.owner_hash, token)
        act = {"pause": self.manager.controls.pause, "resume": self.manager.controls.resume}.get(
            action, self.manager.controls.stop
        )
        with self.manager._lock:  # queued runs hold while the sweep is paused
            for run in self.runs(sweep):
                waiting = run.status is RunStatus.QUEUED and run.thread is None
                run.held = action == "pause" and waiting
        for run in self.runs(sweep):
            if run.status in ACTIVE and not run.held:
                with contextlib.suppress(Conflict):  # not one this action applies to
                    act(run.id, token, 0.0)
        if action == "resume":
            self.manager._start_queued()
        return sweep

    def delete(self, sweep_id: str, token: str | None) -> None:
        """Delete the sweep and every run of it (owner or admin)."""
        sweep = self.get(sweep_id)
        self.manager.access.authorize(sweep.owner_hash, token)
        for run in self.runs(sweep):
            self.manager.delete(run.id, token)
        self.store._write(lambda conn: conn.execute("DELETE FROM sweeps WHERE id = ?", (sweep.id,)))
        del self.sweeps[sweep.id]
        log.info("sweep %s deleted", sweep.id)


def results_table(described: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The sweep's groups as docs/results.md shows them: header, rows of values (None: none)."""
    keys = [k for k in described["grid"] if k != "seed"]
    fidelity = sorted({k for g in described["groups"] for k in g["fidelity"]}, key=_layer_order)
    header = [*keys, "runs", "train accuracy mean", "min", "max"]
    header += ["held-out accuracy mean", "min", "max", *(f"{k}, last epoch" for k in fidelity)]
    rows = []
    for g in described["groups"]:
        row = [_cell(g[k]) for k in keys] + [f"{g['done']}/{g['n']}"]
        for field in ("accuracy", "test_accuracy"):
            row += [g[f"{field}_{part}"] for part in ("mean", "min", "max")]
        rows.append(row + [g["fidelity"].get(k) for k in fidelity])
    return header, rows


def markdown(described: dict[str, Any]) -> str:
    header, rows = results_table(described)
    lines = [f"# {described['name']}", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "---|" * len(header))
    for row in rows:
        cells = (_number(c) if not isinstance(c, str) else c.replace("|", "\\|") for c in row)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _layer_order(key: str) -> tuple[int, str]:
    return int(key.rsplit("_h", 1)[1]), key


def _cell(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
