"""`synthgrad train`: the JSON summary, the records file, and one-line errors for bad options."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from synthgrad_core.cli import main

SUMMARY_KEYS = {
    "method",
    "dataset",
    "steps",
    "seconds",
    "loss",
    "accuracy",
    "test_accuracy",
    "status",
}


def test_json_summary_is_the_last_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    code = main(
        [
            "train",
            "--dataset",
            "addition",
            "--bits",
            "4",
            "--examples",
            "60",
            "--hidden",
            "8,6",
            "--epochs",
            "2",
            "--method",
            "cdni",
            "--json",
            "--records",
            str(records),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    assert summary.keys() >= SUMMARY_KEYS
    assert summary["method"] == "cdni" and summary["status"] == "finished"
    assert summary["steps"] == 2 * 5  # 48 training examples, batch 10
    lines = records.read_text().splitlines()
    assert len(lines) == summary["steps"]
    assert json.loads(lines[-1])["step"] == summary["steps"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synthgrad_core.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--bits", "40"], "--bits: must be <= 32"),
        (["--method", "magic"], "--method: invalid choice: 'magic'"),
        (["--hidden", "12,x"], "--hidden: expected comma-separated whole numbers"),
        (["--learning-rate", "-1"], "--learning-rate: must be > 0"),
        (
            ["--dataset", "mnist", "--data-path", "/nowhere"],
            "--data-path: /nowhere is not a folder",
        ),
        (["--epochs", "0"], "--epochs: must be >= 1"),
        (
            ["--records", "/no/such/dir/r.jsonl", "--epochs", "1", "--examples", "20"],
            "No such file or directory",
        ),
    ],
)
def test_bad_options_give_one_line_and_exit_2(args: list[str], expected: str) -> None:
    result = run_cli("train", *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_diverged_run_reports_its_step(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "train",
            "--dataset",
            "digits",
            "--method",
            "dni",
            "--sg-learning-rate",
            "10000",
            "--epochs",
            "2",
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "diverged" and summary["diverged_at"] >= 1
