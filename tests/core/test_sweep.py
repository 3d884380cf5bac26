"""`synthgrad sweep`: a grid of runs in parallel processes, summarised by group."""

from __future__ import annotations

import dataclasses
import itertools
import json

import pytest

from synthgrad_core import TrainConfig
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
    assert jobs_of({"dataset": "digits"}, todo, "always") == [[0, 1, 2], [3, 4, 5]]
    assert jobs_of({"dataset": "digits"}, todo, "never") == [[i] for i in range(6)]
    # a batch cannot skip layers per seed: such a group trains seed by seed
    fixed = {"dataset": "digits", "update_probability": 0.5}
    assert jobs_of(fixed, todo, "always") == [[i] for i in range(6)]
    assert jobs_of(fixed, todo, "auto", cores=1) == [[i] for i in range(6)]


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


def test_a_sweep_batches_a_group_where_its_estimate_says_it_finishes_sooner() -> None:
    import math

    from synthgrad_core.seeds import BATCH_MARGIN, batch_pays, batch_speedup

    small = TrainConfig(dataset="digits", method="dni").resolve()
    wide = TrainConfig(dataset="digits", hidden=(1024, 1024), batch_size=256).resolve()
    # the estimate: small nets gain from one stacked step, a wide net does not, and a
    # diagnosed step (more fixed overhead) gains more than an undiagnosed one
    assert batch_speedup(small, 4) > 1.1 > 1.02 > batch_speedup(wide, 4) >= 1.0
    never = dataclasses.replace(small, diagnostics_every=0).resolve()
    assert batch_speedup(small, 4) > batch_speedup(never, 4)
    # 4 rules x 4 seeds on 2 cores: every core is busy either way, a batch's speedup wins
    assert batch_pays(small, 4, runs=16, cores=2)
    assert not batch_pays(wide, 4, runs=16, cores=2)
    # one group of 4 seeds on 4 cores: 4 processes at once beat one batch on one core
    assert not batch_pays(small, 4, runs=4, cores=4)
    assert not batch_pays(small, 1, runs=16, cores=2)  # one seed is no batch
    skipping = dataclasses.replace(small, update_probability=0.5).resolve()
    assert not batch_pays(skipping, 4, runs=16, cores=2)  # a batch cannot train it
    # and in general it is the makespan rule its docstring states
    for runs, seeds, cores in itertools.product((4, 8, 16, 32), (2, 4, 8), (1, 2, 4, 8)):
        if seeds > runs:
            continue
        batched = math.ceil(max(runs // seeds, 1) / cores) * seeds / batch_speedup(small, seeds)
        expected = batched < math.ceil(runs / cores) * (1 - BATCH_MARGIN)
        assert batch_pays(small, seeds, runs, cores) == expected, (runs, seeds, cores)


def test_an_automatic_sweep_batches_the_groups_that_pay_and_not_the_others() -> None:
    from synthgrad_core.sweep import jobs_of, points

    grid = {"hidden": [[32], [1024, 1024]], "seed": [1, 2, 3, 4]}
    todo = points({}, grid)
    fixed = {"dataset": "digits", "method": "dni", "batch_size": 256}
    assert jobs_of(fixed, todo, "auto", cores=2) == [[0, 1, 2, 3], [4], [5], [6], [7]]
    assert jobs_of(fixed, todo, "always", cores=2) == [[0, 1, 2, 3], [4, 5, 6, 7]]
