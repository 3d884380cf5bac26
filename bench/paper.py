"""The paper's fully connected MNIST experiment in synthgrad: backprop, DNI and cDNI over seeds.

Jaderberg et al. (2016, arXiv:1608.05343, section 3 and its MNIST table) train fully
connected nets on MNIST with batch normalisation and Adam, batches of 256, and put a
synthetic-gradient module between every two layers: an MLP with two hidden layers of
1024 units whose output layer starts at zero (cDNI's modules also see the label). This
trains that setup with synthgrad's engine: ReLU hidden layers of `--width` units (256)
for each depth in `--layers` (the weight layers, output included), the seeds of a rule
as one batched computation (synthgrad_core.seeds), and writes a Markdown table of
held-out error per depth and rule (mean and range over the seeds), the last epoch's
gradient fidelity, and how long each row took, with the paper's column beside it.

`PAPER` holds the paper's Table 1 test errors by (rule, layers). It is empty: the
paper's numbers could not be read where this was written, and a number not read from
the paper does not go in; the column says so until someone fills it from the paper.

MNIST comes from the four IDX files in `--data-path` (gzipped or not; nothing is
downloaded). `--dataset digits` runs the same protocol on the 8x8 digits shipped with
synthgrad, for a machine without MNIST.

The table is resumable: each row saves its seeds' states under `--cache` (by default
~/.cache/synthgrad/paper) every `--save-every` steps and its numbers when it ends, keyed
by everything that shapes the row; run the same command again after an interruption and
finished rows are read back, an unfinished one continues from its last save.

Usage: python -m bench.paper --data-path DIR [--epochs N] [--layers 3,4] [--seeds 1,2,3]
       [--examples N] [--out FILE] [--dataset mnist|digits] [--cache DIR] [--save-every N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

# No OPENBLAS_NUM_THREADS here (bench.engine and bench.seeds pin one thread to compare
# per-call overhead): the modules' 1024-wide products use every core, and the test
# suite imports this module, whose training processes must see the threads it sees.
from synthgrad_core import ConfigError, TrainConfig
from synthgrad_core.data import load_dataset
from synthgrad_core.flags import flag_name
from synthgrad_core.seeds import SeedBatch, parse_seeds
from synthgrad_core.state import StateError, TrainerState, load, save

RULES = ("backprop", "dni", "cdni")

#: The paper's Table 1 test error (%) by (rule, layers). Empty: see the module's docstring.
PAPER: dict[tuple[str, int], float] = {}


def config(args: argparse.Namespace, rule: str, layers: int) -> TrainConfig:
    """One rule at one depth, the paper's way (what the paper does not say: our flags)."""
    return TrainConfig(
        dataset=args.dataset,
        data_path=args.data_path,
        examples=args.examples,
        method=rule,
        hidden=(args.width,) * (layers - 1),
        activation="relu",
        loss="cross_entropy",
        batch_norm="on",
        optimizer="adam",
        learning_rate=args.learning_rate,
        batch_size=256,
        epochs=args.epochs,
        sg_hidden=(args.module_width, args.module_width),
        sg_optimizer="adam",
        sg_learning_rate=args.sg_learning_rate,
        diagnostics_every=args.diagnostics_every,
        histogram_every=0,
        dtype=args.dtype,
    )


def row_dir(args: argparse.Namespace, rule: str, layers: int) -> Path:
    """Where a row keeps its progress: named by its depth and rule, keyed by everything that
    shapes what it computes (the config, the seeds) but how long it trains: a row's first
    N epochs are the same whatever its budget, so a longer table goes on from a shorter."""
    # only the settings away from their defaults: a field added later, at its default,
    # leaves the key (and the saved progress) as it was
    settings = config(args, rule, layers).resolve().as_dict()
    defaults = TrainConfig(dataset=args.dataset, data_path=args.data_path).resolve().as_dict()
    changed = {k: v for k, v in settings.items() if k != "epochs" and defaults.get(k) != v}
    shape = {"config": changed, "seeds": args.seeds}
    key = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:12]
    return Path(args.cache).expanduser() / f"{layers}-{rule}-{key}"


def saved_states(folder: Path) -> list[TrainerState] | None:
    """The row's last saved states (one per seed), or None (none saved, or unreadable)."""
    try:
        current = folder / (folder / "current").read_text().strip()
        return [load(path) for path in sorted(current.glob("seed-*.npz"))] or None
    except (OSError, StateError):
        return None


def save_states(folder: Path, batch: SeedBatch) -> None:
    """The batch's states into a fresh folder, then `current` names it (atomically): an
    interruption mid-save leaves the previous save current."""
    name = f"step-{batch.step_count}"
    target = folder / name
    target.mkdir(parents=True, exist_ok=True)
    for seed, state in zip(batch.seeds, batch.capture(), strict=True):
        save(state, target / f"seed-{seed:04d}.npz")
    pointer = folder / "current.partial"
    pointer.write_text(name)
    pointer.replace(folder / "current")
    for old in folder.glob("step-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)


def restore_batch(batch: SeedBatch, states: list[TrainerState]) -> None:
    """Take up each seed's saved state: each seed's bookkeeping its metadata and order, and
    every stacked array of the batch the seeds' arrays of its name, stacked (the inverse of
    SeedBatch.capture)."""
    for member, state in zip(batch.members, states, strict=True):
        member.load_meta(state.meta, state.arrays["order"])
    alone = states[0].arrays
    for name, live in batch.named_state().items():
        if live.ndim > alone[name].ndim:
            live[...] = np.stack([s.arrays[name] for s in states]).reshape(live.shape)
        else:  # the same for every seed (an optimiser's step counts)
            live[...] = alone[name]
    batch.step_count = states[0].step
    batch.elapsed = float(states[0].meta["elapsed"])


def run_row(args: argparse.Namespace, rule: str, layers: int, data: Any) -> dict[str, Any] | None:
    """Train one rule at one depth over the seeds (batched); its row's numbers. With a cache,
    a finished row is read back and an unfinished one continues from its last save; None
    when `--stop-after` steps ended this invocation before the row did (saved to go on)."""
    folder = row_dir(args, rule, layers) if args.cache else None
    done = folder / f"row-{args.epochs}-epochs.json" if folder is not None else None
    if done is not None and done.exists():
        row: dict[str, Any] = json.loads(done.read_text())
        return row
    batch = SeedBatch(config(args, rule, layers), args.seeds, data)
    states = saved_states(folder) if folder is not None else None
    if states is not None and states[0].step >= batch.total_steps:
        print(
            f"{layers} layers, {rule}: saved further than asked; training afresh", file=sys.stderr
        )
        states = None
    if states is not None:
        restore_batch(batch, states)
        print(f"{layers} layers, {rule}: continuing at step {batch.step_count}", file=sys.stderr)
    trained = 0
    while not batch.done:
        batch.step()
        trained += 1
        if folder is not None and not batch.done:
            stopping = args.stop_after is not None and trained >= args.stop_after
            if stopping or batch.step_count % args.save_every == 0:
                save_states(folder, batch)
            if stopping:
                return None
    row = summarise(batch, rule, layers)
    if folder is not None and done is not None:
        save_states(folder, batch)  # the end, for a longer budget to go on from
        done.write_text(json.dumps(row))
    return row


def summarise(batch: SeedBatch, rule: str, layers: int) -> dict[str, Any]:
    summaries = batch.summaries()
    errors = [100.0 * (1.0 - s["test_accuracy"]) for s in summaries]
    train = [100.0 * (1.0 - s["accuracy"]) for s in summaries]
    cosines = [s.get("fidelity", {}).get("cos_h1") for s in summaries]
    known = [c for c in cosines if c is not None]
    return {
        "layers": layers,
        "rule": rule,
        "error": statistics.fmean(errors),
        "error_min": min(errors),
        "error_max": max(errors),
        "train_error": statistics.fmean(train),
        "cos_h1": statistics.fmean(known) if known else None,
        "statuses": sorted({s["status"] for s in summaries}),
        "steps": batch.step_count,
        "seconds": batch.elapsed,
    }


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace, data: Any) -> str:
    name = "MNIST" if args.dataset == "mnist" else "the 8x8 digits (not MNIST)"
    lines = [
        f"Fully connected nets on {name}: {len(data.x_train)} training and {len(data.x_test)} "
        f"held-out examples, {args.epochs} epochs, batch 256, ReLU layers of {args.width} "
        f"with batch norm, Adam (lr {args.learning_rate:g}), modules of two hidden layers of "
        f"{args.module_width} (Adam, lr {args.sg_learning_rate:g}), seeds "
        f"{', '.join(map(str, args.seeds))}, trained as one batch per row, in {args.dtype}.",
        "",
        "| layers | rule | held-out error % (mean) | min | max | train error % | "
        "cos h1, last epoch | status | steps | seconds | paper, Table 1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "error" not in row:
            lines.append(f"| {row['layers']} | {row['rule']} |" + " pending |" * 9)
            continue
        paper = PAPER.get((row["rule"], row["layers"]))
        cos = "" if row["cos_h1"] is None else f"{row['cos_h1']:.3f}"
        lines.append(
            f"| {row['layers']} | {row['rule']} | {row['error']:.2f} | {row['error_min']:.2f} | "
            f"{row['error_max']:.2f} | {row['train_error']:.2f} | {cos} | "
            f"{', '.join(row['statuses'])} | {row['steps']} | {row['seconds']:.0f} | "
            f"{'not read' if paper is None else f'{paper:.2f}'} |"
        )
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.paper", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data-path", help="folder with MNIST's four IDX files (.gz or not)")
    parser.add_argument("--dataset", choices=("mnist", "digits"), default="mnist")
    parser.add_argument("--epochs", type=int, default=20, help="per run (default 20)")
    parser.add_argument("--layers", default="3,4", help="depths, weight layers (default 3,4)")
    parser.add_argument("--seeds", type=parse_seeds, default=[1, 2, 3])
    parser.add_argument("--examples", type=int, default=None, help="cap train+test examples")
    parser.add_argument("--width", type=int, default=256, help="hidden units (default 256)")
    parser.add_argument("--module-width", type=int, default=1024, help="module hidden units")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--sg-learning-rate", type=float, default=1e-4)
    parser.add_argument(
        "--diagnostics-every", type=int, default=5, help="fidelity every N steps (default 5)"
    )
    parser.add_argument(
        "--dtype", choices=("float64", "float32"), default="float64", help="number type"
    )
    parser.add_argument("--out", help="also write the table to this file")
    speed = parser.add_argument_group("speed (--speed: bench.paper_speed)")
    speed.add_argument(
        "--speed", action="store_true", help="time the DNI and cDNI step against PyTorch instead"
    )
    speed.add_argument("--threads", type=int, default=1, help="threads of each side (default 1)")
    speed.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    speed.add_argument("--steps", type=int, default=5, help="steps per round (default 5)")
    speed.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    speed.add_argument("--profile", action="store_true", help="and profile the float32 step")
    parser.add_argument(
        "--cache",
        default=os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "synthgrad", "paper"),
        help="where rows save their progress (default ~/.cache/synthgrad/paper); '' for none",
    )
    parser.add_argument(
        "--save-every", type=int, default=235, help="save a row's states every N steps"
    )
    parser.add_argument(
        "--stop-after",
        type=int,
        default=None,
        help="train at most N steps of a row in this invocation, then save it (pending)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.speed:
        from bench import paper_speed

        return paper_speed.run(args, sys.argv[1:] if argv is None else argv)
    try:
        depths = [int(n) for n in args.layers.split(",")]
    except ValueError as exc:  # a depth that is not a number
        print(f"bench.paper: error: --layers: {exc}", file=sys.stderr)
        return 2
    try:
        if any(n < 2 for n in depths):
            raise ConfigError("layers", "each depth must be at least 2 (a hidden layer)")
        data = load_dataset(config(args, "backprop", depths[0]).resolve())
        rows: list[dict[str, Any]] = []
        for layers in depths:
            for rule in RULES:
                row = run_row(args, rule, layers, data)
                rows.append(row or {"layers": layers, "rule": rule})
                said = "pending" if row is None else f"{row['error']:.2f}% held-out error"
                seconds = "" if row is None else f" ({row['seconds']:.0f} s)"
                print(f"{layers} layers, {rule}: {said}{seconds}", file=sys.stderr, flush=True)
    except ConfigError as exc:
        print(f"bench.paper: error: {flag_name(exc.field)}: {exc.message}", file=sys.stderr)
        return 2
    table = markdown(rows, args, data)
    print(table)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
