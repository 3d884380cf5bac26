"""The server's data folder (`serve --data-dir`): MNIST is a choice where its files are."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.test_bench_paper import fake_mnist

from .conftest import SAME_ORIGIN
from .test_api import wait_status

#: A data folder holding an `mnist/` folder of MNIST's four IDX files: $SYNTHGRAD_SHARED_DATA,
#: else a `shared/data` folder beside the repository (where CI lays it).
SHARED_DATA = Path(
    os.environ.get(
        "SYNTHGRAD_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"
    )
)
TINY = {"dataset": "mnist", "hidden": [8], "epochs": 1, "batch_size": 16, "sg_hidden": [8]}


def serve(settings: Settings, data_dir: Path) -> TestClient:
    app = create_app(dataclasses.replace(settings, data_root=str(data_dir)))
    return TestClient(app, headers=SAME_ORIGIN)


@pytest.fixture
def with_mnist(settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    (tmp_path / "mnist").mkdir()
    fake_mnist(tmp_path / "mnist", train=64, test=16)
    with serve(settings, tmp_path) as client:
        yield client


def test_mnist_in_the_data_folder_is_a_choice_and_a_preset(with_mnist: TestClient) -> None:
    page = with_mnist.get("/").text
    assert '<option value="mnist"' in page
    assert "The paper&#39;s MNIST net" in page or "The paper's MNIST net" in page
    response = with_mnist.post("/api/runs", json={"config": {**TINY, "method": "cdni"}})
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["config"]["data_path"] == "mnist"  # the data folder's, relative to it
    done = wait_status(with_mnist, run["id"], {"finished", "failed", "diverged"})
    assert done["status"] == "finished", done
    sweep = with_mnist.post(
        "/api/sweeps", json={"config": TINY, "grid": {"method": ["backprop", "dni"]}}
    )
    assert sweep.status_code == 201, sweep.text


def test_without_mnist_the_choice_is_absent_and_asking_for_it_is_422(
    settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "mnist").mkdir()
    fake_mnist(tmp_path / "mnist", train=64, test=16)
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte").unlink()  # one file short
    with serve(settings, tmp_path) as client:
        page = client.get("/").text
        assert '<option value="mnist"' not in page and "MNIST net" not in page
        assert '<option value="digits"' in page
        varied = {k: v for k, v in TINY.items() if k != "dataset"}
        for url, body in (
            ("/api/runs", {"config": TINY}),
            ("/api/sweeps", {"config": TINY, "grid": {"method": ["dni"]}}),
            ("/api/sweeps", {"config": varied, "grid": {"dataset": ["digits", "mnist"]}}),
        ):
            response = client.post(url, json=body)
            assert response.status_code == 422, response.text
            detail = response.json()["detail"][0]
            assert detail["loc"][-1] == "dataset"
            assert "mnist/t10k-labels-idx1-ubyte" in detail["msg"]
        # naming the folder itself: the missing file, at data_path
        response = client.post("/api/runs", json={"config": {**TINY, "data_path": "mnist"}})
        assert response.status_code == 422, response.text
        detail = response.json()["detail"][0]
        assert detail["loc"][-1] == "data_path" and "t10k-labels-idx1-ubyte" in detail["msg"]


@pytest.mark.skipif(
    not (SHARED_DATA / "mnist").is_dir(),
    reason=f"no MNIST IDX files at {SHARED_DATA / 'mnist'} (set SYNTHGRAD_SHARED_DATA to a "
    "folder holding mnist/)",
)
def test_the_real_mnist_files_are_offered_and_train(settings: Settings) -> None:
    with serve(settings, SHARED_DATA) as client:
        assert '<option value="mnist"' in client.get("/").text
        config = {**TINY, "examples": 700, "method": "backprop"}
        run = client.post("/api/runs", json={"config": config}).json()
        done = wait_status(client, run["id"], {"finished", "failed", "diverged"}, timeout=120)
        assert done["status"] == "finished", done


def test_the_data_folder_comes_from_the_flag_or_the_environment() -> None:
    from app.cli import build_parser

    assert Settings.from_env({"SYNTHGRAD_DATA_DIR": "/srv/data"}).data_root == "/srv/data"
    args = build_parser().parse_args(["serve", "--data-dir", "/srv/d"])
    assert args.data_root == "/srv/d"


def test_a_sweep_whose_grid_varies_the_dataset_to_mnist_trains_it(with_mnist: TestClient) -> None:
    """The grid's MNIST points get the data folder's MNIST, as a run or a base config does."""
    base = {k: v for k, v in TINY.items() if k != "dataset"}
    response = with_mnist.post(
        "/api/sweeps",
        json={"config": base, "grid": {"dataset": ["digits", "mnist"], "method": ["dni"]}},
    )
    assert response.status_code == 201, response.text
    runs = response.json()["runs"]
    by_dataset = {run["config"]["dataset"]: run for run in runs}
    assert by_dataset["mnist"]["config"]["data_path"] == "mnist"
    assert by_dataset["digits"]["config"].get("data_path") is None
    for run in runs:
        done = wait_status(with_mnist, run["id"], {"finished", "failed", "diverged"})
        assert done["status"] == "finished", done
