"""The reference results of docs/engine.md, with default settings, on seeds 1, 2 and 3.

Each case is one `synthgrad train --json` run; floors sit just under the worst
seed of an independent numpy script (docs/engine.md).
"""

from __future__ import annotations

import json

import pytest

from synthgrad_core.cli import main

CASES = [
    # (args, accuracy floor on the training split, floor on the held-out split)
    (
        ["--dataset", "addition", "--bits", "8", "--method", "backprop", "--epochs", "300"],
        0.99,
        0.90,
    ),
    (["--dataset", "addition", "--bits", "8", "--method", "cdni", "--epochs", "300"], 0.99, 0.95),
    (["--dataset", "digits", "--method", "backprop", "--epochs", "50"], 0.0, 0.96),
    (["--dataset", "digits", "--method", "cdni", "--epochs", "50"], 0.0, 0.95),
    (["--dataset", "digits", "--method", "feedback_alignment", "--epochs", "50"], 0.0, 0.94),
    (["--dataset", "digits", "--method", "dni", "--epochs", "50"], 0.0, 0.92),
]


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(
    ("args", "train_floor", "test_floor"),
    CASES,
    ids=lambda v: "-".join(v[1::2][:3]) if isinstance(v, list) else None,
)
def test_defaults_reach_the_reference_accuracy(
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    train_floor: float,
    test_floor: float,
    seed: int,
) -> None:
    assert main(["train", *args, "--seed", str(seed), "--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "finished"
    assert summary["accuracy"] >= train_floor
    assert summary["test_accuracy"] >= test_floor


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_unconditioned_dni_fails_on_addition_and_its_fidelity_shows_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The honest negative result: DNI without labels stays near chance on addition."""
    assert (
        main(
            [
                "train",
                "--dataset",
                "addition",
                "--method",
                "dni",
                "--epochs",
                "100",
                "--seed",
                "1",
                "--json",
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["test_accuracy"] < 0.6


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("seed", [1, 2])
def test_the_dni_addition_preset_learns_the_articles_task(
    capsys: pytest.CaptureFixture[str], seed: int
) -> None:
    """The DNI preset's bar: unconditioned DNI, 8-bit addition, train >= 0.95 and held-out >= 0.90
    (diagnostics off here: they measure, they change nothing the run learns)."""
    args = ["train", "--preset", "dni-addition", "--seed", str(seed), "--diagnostics-every", "0"]
    assert main([*args, "--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["method"] == "dni" and summary["status"] == "finished"
    assert summary["accuracy"] >= 0.95 and summary["test_accuracy"] >= 0.90
