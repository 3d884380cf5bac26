"""The factory of every trainer: which trainer (sequential or pipelined) a config asks for.

Several seeds of one config train as one `synthgrad_core.seeds.SeedBatch`."""

from __future__ import annotations

from .config import TrainConfig
from .data import Dataset
from .pipeline import LOCKED, PipelinedTrainer
from .trainer import Trainer


def make_trainer(config: TrainConfig, dataset: Dataset | None = None) -> Trainer:
    """The trainer a config asks for: pipelined for dni/cdni with execution "pipelined",
    else sequential (with a note saying why, when a pipeline was asked for)."""
    cfg = config.resolve()
    if cfg.execution == "pipelined" and cfg.uses_modules:
        return PipelinedTrainer(config, dataset)
    trainer = Trainer(config, dataset)
    if cfg.execution == "pipelined":
        trainer.notes.append(f"trained sequentially: {LOCKED[cfg.method]}")
    return trainer
