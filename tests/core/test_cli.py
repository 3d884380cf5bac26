"""`synthgrad train`: the JSON summary, the records file, and one-line errors for bad options."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from synthgrad_core.cli import EXIT_DIVERGED, main

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
        (["--method", "magic"], "--method: must be one of backprop, dni, cdni"),
        (["--hidden", "12,x"], "--hidden: must be a list of whole-number widths"),
        (["--batch-norm", "on", "--batch-size", "1"], "--batch-size: must be at least 2 with"),
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
    assert code == EXIT_DIVERGED != 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["status"] == "diverged" and summary["diverged_at"] >= 1
    assert summary["divergence"]["step"] == summary["diverged_at"]
    assert f"At step {summary['diverged_at']}" in captured.err
    assert "Try a lower" in captured.err
    assert "--sg-learning-rate 5000 (half of 10000)" in captured.err


def test_help_documents_the_exit_status_of_a_diverged_run() -> None:
    result = run_cli("train", "--help")
    assert f"{EXIT_DIVERGED} when the run diverged" in " ".join(result.stdout.split())


SMALL_RUN = ["--dataset", "addition", "--bits", "4", "--examples", "60", "--hidden", "8,6"]


def summary_and_records(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[dict, list[dict]]:
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record in records:
        for key in [k for k in record if k.startswith(("wall_time", "unix_time", "t_", "time"))]:
            del record[key]
    return summary, records


@pytest.mark.parametrize("method", ["dni", "backprop"])
def test_a_resumed_run_equals_the_uninterrupted_one(
    method: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    common = ["train", *SMALL_RUN, "--method", method, "--optimizer", "adam", "--json"]
    assert main([*common, "--epochs", "6", "--records", str(tmp_path / "whole.jsonl")]) == 0
    whole, whole_records = summary_and_records(capsys, tmp_path / "whole.jsonl")
    state = tmp_path / "state.npz"
    first = ["--epochs", "2", "--save-state", str(state), "--records", str(tmp_path / "a.jsonl")]
    assert main([*common, *first]) == 0
    summary_and_records(capsys, tmp_path / "a.jsonl")
    then = ["--resume", str(state), "--epochs", "6", "--records", str(tmp_path / "b.jsonl")]
    assert main(["train", *then, "--json"]) == 0
    resumed, resumed_records = summary_and_records(capsys, tmp_path / "b.jsonl")
    assert resumed_records == whole_records[10:]  # 2 epochs of 5 steps came before
    for key in ("steps", "loss", "accuracy", "test_accuracy", "method"):
        assert resumed[key] == whole[key]


def test_save_every_keeps_the_latest_state(tmp_path: Path) -> None:
    state = tmp_path / "s.npz"
    args = [*SMALL_RUN, "--epochs", "3", "--save-state", str(state), "--save-every", "4"]
    assert main(["train", *args, "--quiet"]) == 0
    from synthgrad_core.state import load

    assert load(state).step == 15  # the end wins over the step-12 save


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--resume", "/no/such/state.npz"], "--resume: /no/such/state.npz: no such file"),
        (["--resume", "JUNK"], "not a synthgrad state file"),
        (["--resume", "STATE", "--hidden", "9,9"], "--hidden: cannot change from (8, 6)"),
        (["--resume", "STATE", "--epochs", "1"], "--epochs: must leave steps to train"),
        (["--save-every", "5"], "--save-every: needs --save-state FILE"),
    ],
)
def test_bad_state_files_and_branches_give_one_line_and_exit_2(
    args: list[str], expected: str, tmp_path: Path
) -> None:
    state, junk = tmp_path / "s.npz", tmp_path / "junk.npz"
    junk.write_text("no")
    assert main(["train", *SMALL_RUN, "--epochs", "2", "--save-state", str(state), "--quiet"]) == 0
    args = [str(state) if a == "STATE" else str(junk) if a == "JUNK" else a for a in args]
    result = run_cli("train", *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]


def test_presets_are_listed_and_train_with_changes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from synthgrad_core.presets import PRESETS

    assert main(["presets"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed if not line.startswith(" ")] == list(PRESETS)
    # Each says what a room will see; the lecture's says it fails by design.
    expects = [line.split("expect: ", 1)[1] for line in listed if line.startswith(" ")]
    assert expects == [preset["expect"] for preset in PRESETS.values()]
    assert "meant to fail; watch the bottom layer's cosine" in PRESETS["lecture-dni"]["expect"]
    assert "dni-addition" in PRESETS and "article-dni" in PRESETS  # the recipe beside the failure
    args = ["train", "--preset", "article-cdni", "--bits", "4", "--examples", "60", "--epochs", "1"]
    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["method"] == "cdni" and summary["dataset"] == "addition"
    assert summary["steps"] == 5  # the flags changed the preset's epochs and examples


@pytest.mark.parametrize(
    ("preset", "expected"),
    [("nope", "--preset: no preset 'nope'"), ("digits-all", "--preset: digits-all starts 4 runs")],
)
def test_presets_that_cannot_train_alone_say_so(preset: str, expected: str) -> None:
    result = run_cli("train", "--preset", preset)
    assert result.returncode == 2 and expected in result.stderr


def test_modules_as_in_the_paper_train_from_the_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["train", *SMALL_RUN, "--method", "dni", "--sg-hidden", "16,16", "--epochs", "1"]
    assert main([*args, "--batch-norm", "on", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["method"] == "dni"


def test_modules_with_batch_norm_train(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "--dataset", "digits", "--method", "dni", "--epochs", "2"]
    assert main([*args, "--sg-hidden", "32,32", "--sg-batch-norm", "on", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["test_accuracy"] > 0.5


def test_seeds_train_as_one_batch_and_report_each(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    common = ["train", "--dataset", "addition", "--bits", "4", "--examples", "60"]
    common += ["--hidden", "8,6", "--epochs", "2", "--method", "dni", "--json"]
    records = tmp_path / "records.jsonl"
    assert main([*common, "--seeds", "2,5", "--records", str(records)]) == 0
    batch = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(batch) == {"seeds", "seconds"} and batch["seconds"] > 0
    assert [s["seed"] for s in batch["seeds"]] == [2, 5]
    for summary in batch["seeds"]:
        assert main([*common, "--seed", str(summary["seed"])]) == 0
        alone = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert set(summary) == set(alone) and SUMMARY_KEYS | {"seed"} <= set(summary)
        for key in ("steps", "loss", "accuracy", "test_accuracy"):
            assert summary[key] == pytest.approx(alone[key], rel=1e-9)
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    assert {line["seed"] for line in lines} == {2, 5}
    assert len(lines) == 2 * batch["seeds"][0]["steps"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--seeds", "1,1"], "--seeds: lists a seed twice"),
        (["--seeds", "1,2", "--execution", "pipelined"], "--seeds: trains sequentially only"),
        (["--seeds", "1,2", "--save-state", "x.npz"], "--seeds: cannot be combined"),
    ],
)
def test_bad_seed_options_give_one_line_and_exit_2(args: list[str], expected: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "synthgrad_core.cli", "train", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and expected in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
