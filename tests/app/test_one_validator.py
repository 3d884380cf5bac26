"""One validator: the CLI, the API and TrainConfig accept and refuse the same inputs.

Each row is an input as JSON text (so NaN, 1e400 and a 400-digit integer reach the
server exactly as a client sends them) and, where the command line can write it, as
flag text. Every row goes to all three ways in: TrainConfig directly, the API (POST
/api/runs and /api/sweeps; PATCH /api/runs/{id}/config and a fork for the fields those
may change) and `synthgrad train`'s own argument parsing; a refusal must name the same
field everywhere (HTTP 422 with that field in `loc`, CLI exit 2 with one line naming its
flag).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from synthgrad_core.cli import build_parser, config_from_args, main
from synthgrad_core.config import BRANCHABLE_FIELDS, LIVE_FIELDS, ConfigError, TrainConfig
from synthgrad_core.flags import flag_name

from .conftest import ADMIN, SAME_ORIGIN

#: A run that trains in a few steps; each row changes some of it.
BASE = {"dataset": "addition", "bits": 4, "examples": 60, "hidden": [8, 6], "epochs": 1}
#: A folder inside the server's data root, for the accepted non-ASCII path.
FOLDER = "données"

# (JSON object text of the changes, the same as flags or None where flags cannot write
# it, the field a refusal names or None for an accepted input)
ROWS: list[tuple[str, list[str] | None, str | None]] = [
    # whole numbers: an int, a whole float, text, a fraction, booleans, non-finite, huge
    ('{"epochs": 2}', ["--epochs", "2"], None),
    ('{"epochs": 2.0}', ["--epochs", "2.0"], None),
    ('{"epochs": 3e0}', ["--epochs", "3e0"], None),
    ('{"epochs": "2"}', None, "epochs"),
    ('{"epochs": 2.5}', ["--epochs", "2.5"], "epochs"),
    ('{"epochs": true}', ["--epochs", "true"], "epochs"),
    ('{"epochs": NaN}', ["--epochs", "nan"], "epochs"),
    ('{"epochs": Infinity}', ["--epochs", "inf"], "epochs"),
    ('{"epochs": 1e400}', ["--epochs", "1e400"], "epochs"),
    ('{"epochs": 0}', ["--epochs", "0"], "epochs"),
    ('{"epochs": -1}', ["--epochs", "-1"], "epochs"),
    ('{"epochs": 10001}', ["--epochs", "10001"], "epochs"),
    ('{"seed": 4294967295}', ["--seed", "4294967295"], None),
    ('{"seed": 4294967296}', ["--seed", "4294967296"], "seed"),
    ('{"seed": 1' + "0" * 400 + "}", ["--seed", "1" + "0" * 400], "seed"),
    ('{"seed": "\\u0661"}', ["--seed", "\u0661"], "seed"),  # an Arabic-Indic digit one
    ('{"seed": null}', None, "seed"),
    # fractions: an int, text, booleans, non-finite, huge, out of bounds
    ('{"learning_rate": 0.5}', ["--learning-rate", "0.5"], None),
    ('{"learning_rate": 1}', ["--learning-rate", "1"], None),
    ('{"learning_rate": 1e-300}', ["--learning-rate", "1e-300"], None),
    ('{"learning_rate": "0.5"}', None, "learning_rate"),
    ('{"learning_rate": true}', ["--learning-rate", "true"], "learning_rate"),
    ('{"learning_rate": NaN}', ["--learning-rate", "nan"], "learning_rate"),
    ('{"learning_rate": -Infinity}', ["--learning-rate=-inf"], "learning_rate"),
    ('{"learning_rate": 1e400}', ["--learning-rate", "1e400"], "learning_rate"),
    (
        '{"learning_rate": 1' + "0" * 400 + "}",
        ["--learning-rate", "1" + "0" * 400],
        "learning_rate",
    ),
    ('{"learning_rate": 0}', ["--learning-rate", "0"], "learning_rate"),
    ('{"learning_rate": -0.1}', ["--learning-rate", "-0.1"], "learning_rate"),
    ('{"update_probability": 1}', ["--update-probability", "1"], None),
    ('{"update_probability": 1.5}', ["--update-probability", "1.5"], "update_probability"),
    ('{"sg_scale": false}', ["--sg-scale", "false"], "sg_scale"),
    # choices: exact words only
    ('{"method": "dni"}', ["--method", "dni"], None),
    ('{"method": "DNI"}', ["--method", "DNI"], "method"),
    ('{"method": "dn\\u0456"}', ["--method", "dn\u0456"], "method"),  # a Cyrillic i
    ('{"method": "dni\\u0000"}', ["--method", "dni\x00"], "method"),
    ('{"method": 1}', ["--method", "1"], "method"),
    # text: non-ASCII is fine, NUL and control characters are not
    ('{"data_path": "' + FOLDER + '"}', ["--data-path", FOLDER], None),
    ('{"data_path": "\\u0000"}', ["--data-path", "\x00"], "data_path"),
    ('{"data_path": "a\\nb"}', ["--data-path", "a\nb"], "data_path"),
    ('{"data_path": "a\\u007fb"}', ["--data-path", "a\x7fb"], "data_path"),
    ('{"data_path": 5}', None, "data_path"),
    # widths
    ('{"hidden": [8, 6]}', ["--hidden", "8,6"], None),
    ('{"hidden": [8.0, 6]}', ["--hidden", "8.0,6"], None),
    ('{"hidden": 8}', ["--hidden", "8"], None),
    ('{"hidden": [8, 0]}', ["--hidden", "8,0"], "hidden"),
    ('{"hidden": [8, 1.5]}', ["--hidden", "8,1.5"], "hidden"),
    ('{"hidden": [8, true]}', None, "hidden"),
    ('{"hidden": "8,6"}', None, "hidden"),
    ('{"hidden": []}', ["--hidden", ""], "hidden"),
    ('{"hidden": [8, 8, 8, 8, 8, 8, 8, 8, 8]}', ["--hidden", "8,8,8,8,8,8,8,8,8"], "hidden"),
    ('{"sg_hidden": 0}', ["--sg-hidden", "0"], None),
    ('{"sg_hidden": [16, NaN]}', ["--sg-hidden", "16,nan"], "sg_hidden"),
    # combinations that cannot train, refused by the same validator's cross-field rules
    (
        '{"batch_norm": "on", "batch_size": 1}',
        ["--batch-norm", "on", "--batch-size", "1"],
        "batch_size",
    ),
    (
        '{"method": "dni", "sg_hidden": [16], "sg_batch_norm": "on", "batch_size": 1}',
        ["--method", "dni", "--sg-hidden", "16", "--sg-batch-norm", "on", "--batch-size", "1"],
        "batch_size",
    ),
    ('{"batch_norm": "on", "batch_size": 2}', ["--batch-norm", "on", "--batch-size", "2"], None),
    ('{"bits": 3, "examples": 20}', ["--bits", "3", "--examples", "20"], "examples"),
]


def _base_flags() -> list[str]:
    flags: list[str] = []
    for name, value in BASE.items():
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        flags += [flag_name(name), text]
    return flags


def engine_refusal(changes: dict[str, Any]) -> str | None:
    try:
        TrainConfig.from_dict({**BASE, **changes}).resolve()
    except ConfigError as exc:
        return exc.field
    return None


def cli_refusal(flags: list[str], capsys: pytest.CaptureFixture[str]) -> str | None:
    """The field the command line names, or None if its parsing accepts the config (a
    refusal runs `synthgrad train` itself: exit 2, one line; an accepted one would train,
    so it is parsed and resolved as train does, without training)."""
    argv = ["train", *_base_flags(), *flags]
    args = build_parser().parse_args(argv)
    try:
        config_from_args(args)
    except ConfigError:
        pass
    else:
        return None
    assert main([*argv, "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    named = lines[0].split(": error: ")[1].split(":")[0]
    assert named.startswith("--")
    return named[2:].replace("-", "_")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder: Path = tmp_path_factory.mktemp("validator")
    (folder / FOLDER).mkdir()
    settings = Settings(
        db=str(folder / "runs.sqlite3"),
        executor="thread",
        admin_token=ADMIN,
        data_root=str(folder),
        create_rate=0,
        max_active_per_owner=0,
    )
    headers = {**SAME_ORIGIN, "Authorization": f"Bearer {ADMIN}"}
    with TestClient(create_app(settings), headers=headers) as client:
        yield client


def api_refusal(client: TestClient, changes_text: str) -> str | None:
    body = '{"config": ' + json.dumps(BASE)[:-1] + ", " + changes_text[1:] + "}"
    response = client.post("/api/runs", content=body, headers={"content-type": "application/json"})
    if response.status_code == 201:
        client.delete(f"/api/runs/{response.json()['id']}")
        return None
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"][:1]
    assert error["loc"][:2] == ["body", "config"], error
    return str(error["loc"][2])


@pytest.mark.parametrize(("changes", "flags", "field"), ROWS, ids=[r[0][:40] for r in ROWS])
def test_cli_api_and_engine_agree(
    api: TestClient,
    capsys: pytest.CaptureFixture[str],
    changes: str,
    flags: list[str] | None,
    field: str | None,
) -> None:
    assert engine_refusal(json.loads(changes)) == field
    assert api_refusal(api, changes) == field
    if flags is not None:
        assert cli_refusal(flags, capsys) == field


@pytest.fixture(scope="module")
def paused_run(api: TestClient) -> str:
    body = {"config": {**BASE, "epochs": 10_000}}
    run = api.post("/api/runs", json=body).json()
    assert api.post(f"/api/runs/{run['id']}/pause").status_code == 200
    return str(run["id"])


LIVE_ROWS = [(c, f) for c, _, f in ROWS if set(json.loads(c)) <= set(LIVE_FIELDS)]


@pytest.mark.parametrize(("changes", "field"), LIVE_ROWS, ids=[r[0][:40] for r in LIVE_ROWS])
def test_knobs_of_a_running_run_follow_the_same_rules(
    api: TestClient, paused_run: str, changes: str, field: str | None
) -> None:
    response = api.patch(
        f"/api/runs/{paused_run}/config",
        content=changes,
        headers={"content-type": "application/json"},
    )
    if field is None:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"][-1] == field


FORK_ROWS = [
    (c, f)
    for c, _, f in ROWS
    if set(json.loads(c)) <= set(BRANCHABLE_FIELDS) - {"epochs"}  # epochs: the steps trained
]


@pytest.mark.parametrize(("changes", "field"), FORK_ROWS, ids=[r[0][:40] for r in FORK_ROWS])
def test_a_fork_follows_the_same_rules(
    api: TestClient, paused_run: str, changes: str, field: str | None
) -> None:
    response = api.post(
        f"/api/runs/{paused_run}/fork",
        content='{"config": ' + changes + "}",
        headers={"content-type": "application/json"},
    )
    if field is None:
        assert response.status_code == 201, response.text
        api.delete(f"/api/runs/{response.json()['id']}")
    else:
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"][-1] == field


@pytest.mark.parametrize(("changes", "flags", "field"), ROWS, ids=[r[0][:40] for r in ROWS])
def test_a_sweep_follows_the_same_rules(
    api: TestClient, changes: str, flags: list[str] | None, field: str | None
) -> None:
    """A row of one field is the sweep's grid (one value); a combination is its config."""
    values = json.loads(changes)
    (name,) = values if len(values) == 1 else (None,)
    if name is not None:
        config, grid = json.dumps(BASE), '{"' + name + '": [' + changes.split(":", 1)[1][:-1] + "]}"
    else:
        config, grid = json.dumps(BASE)[:-1] + ", " + changes[1:], '{"seed": [1]}'
    body = '{"config": ' + config + ', "grid": ' + grid + "}"
    response = api.post("/api/sweeps", content=body, headers={"content-type": "application/json"})
    if field is None:
        assert response.status_code == 201, response.text
        api.delete(f"/api/sweeps/{response.json()['id']}")
    else:
        assert response.status_code == 422, response.text
        assert field in response.json()["detail"][0]["loc"]


def test_the_command_line_refuses_in_one_line_from_a_real_process() -> None:
    """The same refusal as the in-process rows, from `python -m synthgrad_core.cli`."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "synthgrad_core.cli", "train", "--epochs", "2.5"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "synthgrad train: error: --epochs: must be a whole number, got 2.5"
    ]
