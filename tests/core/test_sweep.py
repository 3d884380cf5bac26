"""`synthgrad sweep`: a grid of runs in parallel processes, summarised by group."""

from __future__ import annotations

import json

import pytest

from synthgrad_core.cli import main


def test_a_rules_by_seeds_sweep_gives_every_run_and_each_group(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["sweep", "--dataset", "digits", "--method", "backprop,cdni", "--seed", "1,2,3"]
    assert main([*argv, "--epochs", "2", "--jobs", "2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    runs, groups = summary["runs"], summary["groups"]
    assert [(r["method"], r["seed"]) for r in runs] == [
        (m, s) for m in ("backprop", "cdni") for s in (1, 2, 3)
    ]
    assert all(r["status"] == "finished" and 0 < r["test_accuracy"] <= 1 for r in runs)
    assert [g["method"] for g in groups] == ["backprop", "cdni"]
    for group in groups:
        mine = [r["test_accuracy"] for r in runs if r["method"] == group["method"]]
        assert group["n"] == 3
        assert group["test_accuracy_min"] == min(mine)
        assert group["test_accuracy_max"] == max(mine)
        assert group["test_accuracy_mean"] == pytest.approx(sum(mine) / 3)


def test_a_sweep_matches_the_runs_trained_alone(capsys: pytest.CaptureFixture[str]) -> None:
    main(["sweep", "--dataset", "digits", "--seed", "4,5", "--epochs", "1", "--json"])
    swept = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["runs"]
    for run in swept:
        main(
            ["train", "--dataset", "digits", "--seed", str(run["seed"]), "--epochs", "1", "--json"]
        )
        alone = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert alone["test_accuracy"] == run["test_accuracy"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--seed", ",".join(map(str, range(100)))],
            "--seed: the grid has 100 runs; a sweep runs at most 96",
        ),
        (
            ["--learning-rate", "0.1,0.2", "--momentum", "0.5,0.9", "--batch-size", "16,32"],
            "at most 2 more fields",
        ),
        (["--epochs", "two"], "--epochs: must be a number, got 'two'"),
        (["--method", "backprop,nope"], "--method: must be one of"),
    ],
)
def test_a_bad_sweep_is_one_line_before_anything_trains(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sweep", "--dataset", "digits", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_a_groups_seeds_train_as_one_job_unless_they_cannot() -> None:
    from synthgrad_core.sweep import jobs_of, points

    grid = {"method": ["backprop", "dni"], "seed": [1, 2, 3]}
    todo = points({}, grid)
    assert jobs_of({"dataset": "digits"}, todo, batch_seeds=True) == [[0, 1, 2], [3, 4, 5]]
    assert jobs_of({"dataset": "digits"}, todo, batch_seeds=False) == [[i] for i in range(6)]
    # a batch cannot skip layers per seed: such a group trains seed by seed
    fixed = {"dataset": "digits", "update_probability": 0.5}
    assert jobs_of(fixed, todo, batch_seeds=True) == [[i] for i in range(6)]


def test_batched_and_unbatched_sweeps_give_the_same_groups(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["sweep", "--dataset", "addition", "--bits", "6", "--examples", "200"]
    argv += ["--method", "dni,feedback_alignment", "--seed", "1,2,3", "--epochs", "2", "--json"]
    results = []
    for extra in ([], ["--no-batch-seeds"]):
        assert main([*argv, *extra]) == 0
        results.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    batched, alone = results
    assert [(r["method"], r["seed"]) for r in batched["runs"]] == [
        (r["method"], r["seed"]) for r in alone["runs"]
    ]
    for mine, theirs in zip(batched["runs"], alone["runs"], strict=True):
        assert mine["test_accuracy"] == pytest.approx(theirs["test_accuracy"], rel=1e-9)
        assert mine["accuracy"] == pytest.approx(theirs["accuracy"], rel=1e-9)
        assert mine["fidelity"] == pytest.approx(theirs["fidelity"], rel=1e-9)
    for mine, theirs in zip(batched["groups"], alone["groups"], strict=True):
        assert mine["n"] == theirs["n"] == 3
        assert mine["test_accuracy_mean"] == pytest.approx(theirs["test_accuracy_mean"], rel=1e-9)
