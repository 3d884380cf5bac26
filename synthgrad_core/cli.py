"""`synthgrad train`: run one training job in the terminal with a progress bar and a summary."""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from .config import FIELD_SPECS, ConfigError, ResolvedConfig, TrainConfig
from .factory import make_trainer
from .flags import FLAG_TYPES, OneLineParser, flag_name
from .presets import describe as describe_presets
from .presets import preset_config
from .records import dumps
from .seeds import SeedBatch, parse_seeds
from .state import CaptureError, StateError
from .state import load as load_state
from .state import save as save_state
from .sweep import add_sweep_command, sweep
from .trainer import EXPLOSION_FACTOR, Trainer


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    for name, spec in FIELD_SPECS.items():
        default = TrainConfig.__dataclass_fields__[name].default
        shown = "dataset default" if default is None else default
        bounds = spec.bounds_text()
        parser.add_argument(
            flag_name(name),
            dest=name,
            type=FLAG_TYPES[spec.kind],
            default=None,
            metavar="{" + ",".join(spec.choices) + "}" if spec.choices else None,
            help=f"{spec.help} ({bounds + '; ' if bounds else ''}default: {shown})",
        )


#: Config fields the divergence advice names (synthgrad_core.divergence.advice).
ADVISED_FIELDS = ("sg_learning_rate", "learning_rate", "optimizer", "batch_norm", "workers")
#: Exit status of `train` when the run (or a seed of --seeds) diverged.
EXIT_DIVERGED = 3
EXIT_STATUSES = (
    "exit status: 0 when training ends, 2 for bad input (one line naming the flag), "
    f"{EXIT_DIVERGED} when the run diverged (a loss or weight became non-finite; stderr says "
    "at which step, what went first, what ran away and what to try), 130 when interrupted"
)


def add_train_command(sub: Any) -> None:
    """Add `train` to a subparsers object (the server's CLI adds `serve` beside it)."""
    train = sub.add_parser("train", help="train one network in the terminal", epilog=EXIT_STATUSES)
    _add_config_flags(train)
    train.add_argument(
        "--json",
        action="store_true",
        help="print the final summary as one JSON object on the last line",
    )
    train.add_argument(
        "--records", metavar="FILE", help="write every step record as JSON lines to FILE"
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument(
        "--seeds",
        metavar="LIST",
        type=_seeds_flag,
        help="train these seeds (1,2,3 or 1-4) as one batched computation, each seed's "
        'numbers those of --seed k alone; with --json the last line is {"seeds": [one '
        'summary per seed], "seconds": T}; not with --execution pipelined, '
        "--update-probability below 1, --save-state or --resume",
    )
    train.add_argument(
        "--preset",
        metavar="NAME",
        help="start from a named recipe (`synthgrad presets` lists them); flags change it",
    )
    train.add_argument(
        "--save-state",
        metavar="FILE",
        help="write the trainer's complete state to FILE (.npz) when training ends",
    )
    train.add_argument(
        "--save-every",
        metavar="N",
        type=int,
        help="with --save-state, also write it every N steps (the file holds the latest)",
    )
    train.add_argument(
        "--resume",
        metavar="FILE",
        help="go on from a state saved with --save-state; its config, with the flags given "
        "as changes (only the rule, learning rates, optimisers, knobs, epochs and cadences "
        "may change); a pipelined run saves and resumes with one worker only",
    )


def _seeds_flag(text: str) -> list[int]:
    try:
        return parse_seeds(text)
    except ConfigError as exc:  # argparse shows only an ArgumentTypeError's own words
        raise argparse.ArgumentTypeError(exc.message) from None


def add_presets_command(sub: Any) -> None:
    sub.add_parser("presets", help="list the named recipes (synthgrad train --preset NAME)")


def presets(args: argparse.Namespace) -> int:
    for line in describe_presets():
        print(line)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="synthgrad", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    add_train_command(sub)
    add_sweep_command(sub)
    add_presets_command(sub)
    return parser


def config_from_args(
    args: argparse.Namespace, base: ResolvedConfig | None = None
) -> ResolvedConfig:
    """The flags given, over `base` (a resumed state's config), a preset or the defaults."""
    values = {name: getattr(args, name) for name in FIELD_SPECS if getattr(args, name) is not None}
    if base is not None:
        return dataclasses.replace(base, **values)
    preset = getattr(args, "preset", None)
    start = TrainConfig.from_dict(preset_config(preset)) if preset else TrainConfig()
    return dataclasses.replace(start, **values).resolve()


def trainer_from_args(args: argparse.Namespace) -> Trainer:
    """The trainer the flags ask for: fresh, or going on from `--resume`'s state."""
    if getattr(args, "resume", None) is None:
        return make_trainer(config_from_args(args))
    state = load_state(args.resume)
    trainer = make_trainer(config_from_args(args, state.config))
    trainer.restore(state)
    return trainer


class ProgressBar:
    """A one-line progress display: steps, loss, accuracy, steps/s, ETA."""

    def __init__(self, total: int, stream: TextIO, first: int = 0) -> None:
        self.total, self.stream, self.first = total, stream, first
        self.start = time.perf_counter()
        self.last_draw = 0.0

    def update(self, step: int, loss: float, accuracy: float, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last_draw < 0.1:
            return
        self.last_draw = now
        elapsed = max(now - self.start, 1e-9)
        rate = (step - self.first) / elapsed
        eta = (self.total - step) / rate if rate > 0 else 0.0
        filled = int(30 * step / self.total)
        bar = "#" * filled + "-" * (30 - filled)
        self.stream.write(
            f"\r[{bar}] {step}/{self.total} loss {loss:.4f} acc {accuracy:.3f} "
            f"{rate:,.0f} steps/s ETA {eta:.0f}s "
        )
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def train(args: argparse.Namespace) -> int:
    if args.save_every is not None and (args.save_every < 1 or not args.save_state):
        raise ConfigError("save_every", "needs --save-state FILE and a whole number >= 1")
    if args.seeds is not None:
        return train_seeds(args)
    trainer = trainer_from_args(args)
    for note in trainer.notes:
        print(f"synthgrad train: note: {note}", file=sys.stderr)
    show_bar = not args.quiet and sys.stderr.isatty()
    bar = ProgressBar(trainer.total_steps, sys.stderr, trainer.step_count) if show_bar else None
    records_file = open(args.records, "w", encoding="utf-8") if args.records else None  # noqa: SIM115
    try:
        _drive(trainer, bar, records_file, (args.save_state, args.save_every))
    finally:
        if records_file is not None:
            records_file.close()
    summary = trainer.summary()
    if trainer.exploded_at is not None:
        print(
            f"synthgrad train: warning: the loss exploded (an epoch's mean loss passed "
            f"{EXPLOSION_FACTOR:g}x the untrained network's) at step {trainer.exploded_at}; "
            "the numbers below are not a trained network's (try a smaller learning rate)",
            file=sys.stderr,
        )
    print(dumps(summary) if args.json else summary_line(summary))
    return explain_divergence([summary])


def explain_divergence(summaries: list[dict[str, Any]]) -> int:
    """Say on stderr why each diverged run diverged; EXIT_DIVERGED if one did, else 0."""
    diverged = [s for s in summaries if s["status"] == "diverged"]
    for summary in diverged:
        who = f"seed {summary['seed']}: " if len(summaries) > 1 else ""
        why = summary.get("divergence", {}).get("text", "a loss or weight became non-finite.")
        for name in ADVISED_FIELDS:  # the advice in this command's words
            why = re.sub(rf"\b{name} ", f"{flag_name(name)} ", why)
        print(f"synthgrad train: diverged: {who}{why}", file=sys.stderr)
    return EXIT_DIVERGED if diverged else 0


def train_seeds(args: argparse.Namespace) -> int:
    """`train --seeds`: the seeds as one SeedBatch; a summary per seed."""
    if args.save_state or args.resume:
        raise ConfigError("seeds", "cannot be combined with --save-state or --resume")
    batch = SeedBatch(config_from_args(args), args.seeds)
    for note in batch.members[0].notes:
        print(f"synthgrad train: note: {note}", file=sys.stderr)
    show_bar = not args.quiet and sys.stderr.isatty()
    bar = ProgressBar(batch.total_steps * len(batch.seeds), sys.stderr) if show_bar else None
    records_file = open(args.records, "w", encoding="utf-8") if args.records else None  # noqa: SIM115
    try:
        _drive_seeds(batch, bar, records_file)
    finally:
        if records_file is not None:
            records_file.close()
    summaries = batch.summaries()
    for summary in summaries:
        if "exploded_at" in summary:
            print(
                f"synthgrad train: warning: seed {summary['seed']}: the loss exploded at step "
                f"{summary['exploded_at']}",
                file=sys.stderr,
            )
    if args.json:
        print(dumps(batch.summary()))
    else:
        for summary in summaries:
            print(f"seed {summary['seed']}: {summary_line(summary)}")
    return explain_divergence(summaries)


def _drive_seeds(batch: SeedBatch, bar: ProgressBar | None, records_file: TextIO | None) -> None:
    """Train the batch to the end; each seed's records tagged with its seed; the bar counts
    seed-steps and shows the running seeds' mean loss and accuracy."""
    for records in batch:
        running = [(seed, r) for seed, r in zip(batch.seeds, records, strict=True) if r]
        if records_file is not None:
            records_file.writelines(dumps({"seed": seed} | r) + "\n" for seed, r in running)
        if bar is not None and running:
            loss = sum(r["loss"] for _, r in running) / len(running)
            accuracy = sum(r["accuracy"] for _, r in running) / len(running)
            bar.update(batch.step_count * len(batch.seeds), loss, accuracy)
    if bar is not None:
        bar.close()


def _drive(
    trainer: Trainer,
    bar: ProgressBar | None,
    records_file: TextIO | None,
    saving: tuple[str | None, int | None],
) -> None:
    """Train to the end, writing each record, drawing the bar and saving the state as asked."""
    path, every = saving
    record: dict[str, Any] = {}
    for record in trainer:
        if records_file is not None:
            records_file.write(dumps(record) + "\n")
        if bar is not None:
            bar.update(record["step"], record["loss"], record["accuracy"])
        if path and every and record["step"] % every == 0 and not trainer.done:
            save_state(trainer.capture(), path)
    if path:
        save_state(trainer.capture(), path)
    if bar is not None and record:
        bar.update(record["step"], record["loss"], record["accuracy"], force=True)
        bar.close()


def summary_line(summary: dict[str, Any]) -> str:
    """A run's summary in one line of words."""
    line = (
        f"{summary['method']} on {summary['dataset']}: {summary['status']} after "
        f"{summary['steps']} steps in {summary['seconds']:.1f}s; train accuracy "
        f"{summary['accuracy']:.4f}, held-out accuracy {summary['test_accuracy']:.4f}"
    )
    if "diverged_at" in summary:
        line += f" (diverged at step {summary['diverged_at']})"
    if "exploded_at" in summary:
        line += f" (loss exploded at step {summary['exploded_at']})"
    return line


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(args, {"train": train, "sweep": sweep, "presets": presets})


def run_command(args: argparse.Namespace, commands: dict[str, Any]) -> int:
    """Run the chosen subcommand, turning config errors into one line and exit code 2."""
    try:
        return int(commands[args.command](args))
    except ConfigError as exc:
        flag = flag_name(exc.field)
        print(f"synthgrad {args.command}: error: {flag}: {exc.message}", file=sys.stderr)
        return 2
    except StateError as exc:
        print(f"synthgrad {args.command}: error: --resume: {exc}", file=sys.stderr)
        return 2
    except CaptureError as exc:  # a pipelined run with batches in flight cannot be saved
        print(f"synthgrad {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. --records names a folder that does not exist
        print(f"synthgrad {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"synthgrad {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
