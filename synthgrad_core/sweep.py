"""`synthgrad sweep`: a grid of runs (rules x seeds x up to two more fields) and its groups.

Every config flag takes a list: `--method backprop,dni --seed 1,2,3 --epochs 50`
(`--hidden 128,64;256,128` for lists of widths). The grid is every combination;
a group is a grid point without the seed. A group's seeds train either as one batched
computation (synthgrad_core.seeds) or as one process per seed: by default the sweep
chooses per group what is estimated to finish sooner on the cores it has
(seeds.batch_pays: the cores, the group's seeds, its net's size and diagnostics
cadence); `--batch-seeds always` or `never` (`--no-batch-seeds`) decide for every
group, and a config a batch cannot train (pipelined, or with update_probability below
1) always trains seed by seed. Jobs train in parallel processes (`--jobs`, default
the number of cores), a progress line counts runs, and the summary gives each group's
held-out accuracy: mean, min and max over its seeds.
With `--json`, the last line is one object: `runs` (grid values, accuracy,
test_accuracy, status) and `groups` (grid values, n, test_accuracy_mean, _min, _max).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from .config import FIELD_SPECS, ConfigError, TrainConfig, check_value
from .flags import FLAG_TYPES

#: Largest grid one sweep may run.
MAX_RUNS = 96
#: Fields besides method and seed that may vary in one sweep.
MAX_EXTRA_FIELDS = 2
#: How a sweep trains a group's seeds: chosen per group, always batched, never batched.
BATCH_MODES = ("auto", "always", "never")


def add_sweep_command(sub: Any) -> None:
    sweep = sub.add_parser("sweep", help="train a grid of runs and summarise it by group")
    for name, spec in FIELD_SPECS.items():
        separator = ";" if spec.kind == "widths" else ","
        sweep.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            default=None,
            help=f"{spec.help} (one value, or several separated by '{separator}')",
        )
    sweep.add_argument("--jobs", type=int, default=None, help="runs at once (default: cores)")
    sweep.add_argument("--json", action="store_true", help="one JSON summary on the last line")
    sweep.add_argument(
        "--batch-seeds",
        choices=BATCH_MODES,
        default="auto",
        help="train a group's seeds as one batched computation (same results): 'auto' "
        "(default) where it is estimated to finish sooner than one process per seed",
    )
    sweep.add_argument(
        "--no-batch-seeds",
        dest="batch_seeds",
        action="store_const",
        const="never",
        help="train every seed in its own process (--batch-seeds never)",
    )


def grid_from_args(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The fixed fields and the varying ones (name -> values), parsed and checked."""
    fixed: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}
    for name in FIELD_SPECS:
        text = getattr(args, name)
        if text is None:
            continue
        values = _values(name, text)
        if len(values) == 1:
            fixed[name] = values[0]
        else:
            grid[name] = values
    check_grid(grid)
    return fixed, grid


def _values(name: str, text: str) -> list[Any]:
    """A flag's distinct values, each read as its field's kind."""

    spec = FIELD_SPECS[name]
    separator = ";" if spec.kind == "widths" else ","
    values: dict[str, Any] = {}
    for part in (p.strip() for p in text.split(separator) if p.strip()):
        value = check_value(name, FLAG_TYPES[spec.kind](part))
        value = list(value) if isinstance(value, tuple) else value
        values.setdefault(json.dumps(value), value)
    if not values:
        raise ConfigError(name, "needs a value")
    return list(values.values())


def check_grid(grid: dict[str, list[Any]]) -> None:
    extra = [n for n in grid if n not in ("method", "seed")]
    if len(extra) > MAX_EXTRA_FIELDS:
        raise ConfigError(
            extra[0],
            f"a sweep varies the rule, the seed and at most {MAX_EXTRA_FIELDS} more fields; "
            f"this one varies {', '.join(extra)}",
        )
    size = 1
    for values in grid.values():
        size *= len(values)
    if size > MAX_RUNS:
        raise ConfigError(
            next(iter(grid)), f"the grid has {size} runs; a sweep runs at most {MAX_RUNS}"
        )


def points(fixed: dict[str, Any], grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every grid point's varying values, in grid order."""
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


def train_one(config: dict[str, Any]) -> dict[str, Any]:
    """One run to the end (in a worker process); its summary."""
    from .factory import make_trainer

    trainer = make_trainer(TrainConfig.from_dict(config))
    while not trainer.done:
        trainer.step()
    trainer.close()
    return trainer.summary()


def train_group(config: dict[str, Any], seeds: list[int]) -> list[dict[str, Any]]:
    """A group's seeds as one batch (in a worker process); each seed's summary."""
    from .seeds import SeedBatch

    batch = SeedBatch(TrainConfig.from_dict(config), seeds)
    while not batch.done:
        batch.step()
    return batch.summaries()


def jobs_of(
    fixed: dict[str, Any], todo: list[dict[str, Any]], batch_seeds: str, cores: int = 1
) -> list[list[int]]:
    """The grid points as jobs, by index: a group's points together when its seeds train as
    one batch (`batch_seeds` "always", or "auto" where seeds.batch_pays on `cores`), else one
    point per job. A config a batch cannot train is never batched."""
    from .seeds import batch_pays, check_batchable

    if batch_seeds == "never":
        return [[i] for i in range(len(todo))]
    groups: dict[str, list[int]] = {}
    for i, point in enumerate(todo):
        key = json.dumps({k: v for k, v in point.items() if k != "seed"}, sort_keys=True)
        groups.setdefault(key, []).append(i)
    jobs: list[list[int]] = []
    for members in groups.values():
        cfg = TrainConfig.from_dict({**fixed, **todo[members[0]]}).resolve()
        try:
            check_batchable(cfg)
        except ConfigError:
            jobs += [[i] for i in members]
            continue
        if batch_seeds == "always" or batch_pays(cfg, len(members), len(todo), cores):
            jobs.append(members)
        else:
            jobs += [[i] for i in members]
    return jobs


def summarize(runs: list[dict[str, Any]], grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """One object per grid point without the seed, in grid order.

    Each has the point's values, `n` (its runs), `done` (runs with final numbers),
    train and held-out accuracy mean/min/max over those, and the mean of each
    fidelity number (a run's `fidelity`: last-epoch cosine and relative error).
    A run without a `test_accuracy` (one still training, or failed) adds to `n` only.
    """
    keys = [n for n in grid if n != "seed"]
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(json.dumps([run[k] for k in keys]), []).append(run)
    return [{k: members[0][k] for k in keys} | _numbers(members) for members in groups.values()]


def _numbers(members: list[dict[str, Any]]) -> dict[str, Any]:
    """A group's n, done, accuracy mean/min/max and mean fidelity over its ended runs."""
    ended = [m for m in members if m.get("test_accuracy") is not None]
    group: dict[str, Any] = {"n": len(members), "done": len(ended)}
    for field in ("test_accuracy", "accuracy"):
        values = [m[field] for m in ended if m.get(field) is not None]
        group[f"{field}_mean"] = statistics.fmean(values) if values else None
        group[f"{field}_min"] = min(values, default=None)
        group[f"{field}_max"] = max(values, default=None)
    fidelity: dict[str, list[float]] = {}
    for m in ended:
        for key, value in (m.get("fidelity") or {}).items():
            fidelity.setdefault(key, []).append(value)
    group["fidelity"] = {k: statistics.fmean(v) for k, v in sorted(fidelity.items())}
    return group


def sweep(args: argparse.Namespace) -> int:
    fixed, grid = grid_from_args(args)
    todo = points(fixed, grid)
    for point in todo:  # every config is checked before anything trains
        TrainConfig.from_dict({**fixed, **point}).resolve()
    jobs = args.jobs or os.cpu_count() or 1
    if jobs < 1:
        raise ConfigError("jobs", "must be at least 1")
    plan = jobs_of(fixed, todo, args.batch_seeds, jobs)
    runs = _run_all(fixed, todo, plan, jobs, show=sys.stderr.isatty() and not args.json)
    groups = summarize(runs, grid)
    if args.json:
        print(json.dumps({"runs": runs, "groups": groups}))
        return 0
    for group in groups:
        label = ", ".join(f"{k}={v}" for k, v in group.items() if k in grid) or "all"
        print(
            f"{label}: held-out accuracy {group['test_accuracy_mean']:.4f} "
            f"(min {group['test_accuracy_min']:.4f}, max {group['test_accuracy_max']:.4f}, "
            f"n={group['n']})"
        )
    return 0


def _submit(
    pool: ProcessPoolExecutor, fixed: dict[str, Any], todo: list[dict[str, Any]], job: list[int]
) -> Any:
    if len(job) == 1:
        return pool.submit(train_one, {**fixed, **todo[job[0]]})
    return pool.submit(train_group, {**fixed, **todo[job[0]]}, [todo[i]["seed"] for i in job])


def _run_all(
    fixed: dict[str, Any],
    todo: list[dict[str, Any]],
    plan: list[list[int]],
    jobs: int,
    show: bool,
) -> list[dict[str, Any]]:
    """Train every job of `plan` in a process pool; each run's grid values and results."""
    runs: list[dict[str, Any]] = [{} for _ in todo]
    done = 0
    with ProcessPoolExecutor(max_workers=min(jobs, len(plan))) as pool:
        futures = {_submit(pool, fixed, todo, job): job for job in plan}
        for future in as_completed(futures):
            job, result = futures[future], future.result()
            for i, summary in zip(job, result if len(job) > 1 else [result], strict=True):
                runs[i] = {
                    **todo[i],
                    "accuracy": summary["accuracy"],
                    "test_accuracy": summary["test_accuracy"],
                    "status": summary["status"],
                    "fidelity": summary.get("fidelity", {}),
                }
            done += len(job)
            if show:
                sys.stderr.write(f"\r{done}/{len(todo)} runs done ")
                sys.stderr.flush()
    if show:
        sys.stderr.write("\n")
    return runs
