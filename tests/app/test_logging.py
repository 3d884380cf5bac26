"""The server's log: run lifecycle lines, and a failing training process's traceback."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from app.execution.process import ProcessExecutor
from app.runs.manager import RunManager
from app.runs.status import RunStatus
from app.settings import Settings
from synthgrad_core import Trainer
from synthgrad_core.config import ResolvedConfig

CONFIG = {"dataset": "addition", "bits": 4, "examples": 40, "hidden": [8], "epochs": 50}


class BrokenTrainer(Trainer):
    """A real trainer whose fifth step raises, as a bug in the engine would."""

    def step(self) -> dict[str, Any]:
        if self.step_count == 4:
            raise ZeroDivisionError("a bug deep in the engine")
        return super().step()


def build_broken(config: ResolvedConfig) -> Trainer:
    return BrokenTrainer(config)


def test_a_failing_training_process_logs_its_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="synthgrad")
    executor = ProcessExecutor(build=build_broken)
    manager = RunManager(Settings(db=str(tmp_path / "l.sqlite3")), executor=executor).start()
    try:
        run, _ = manager.create(CONFIG)
        done = manager.controls.wait(run.id, timeout=60)
    finally:
        manager.close()
    assert done.status is RunStatus.FAILED
    assert done.error == "ZeroDivisionError: a bug deep in the engine"
    text = caplog.text
    # The child's own traceback, with the frame that raised, reached the server's log.
    assert "Traceback (most recent call last)" in text
    assert "in step" in text and "raise ZeroDivisionError" in text
    assert f"run {run.id} created" in text and f"run {run.id} failed" in text


def test_lifecycle_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="synthgrad")
    manager = RunManager(Settings(db=str(tmp_path / "l.sqlite3"), executor="thread")).start()
    try:
        run, token = manager.create({**CONFIG, "epochs": 2000})
        manager.controls.pause(run.id, token)
    finally:
        manager.close()
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("synthgrad")]
    for word in ("created", "running", "paused", "interrupted"):
        assert any(m.startswith(f"run {run.id} {word}") for m in messages), (word, messages)
