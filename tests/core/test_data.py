"""Datasets: contents, splits, validation errors, and the IDX reader on files the test writes."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from synthgrad_core import ConfigError, TrainConfig, load_dataset
from synthgrad_core.data import read_idx


def test_addition_targets_are_sums_and_splits_are_disjoint() -> None:
    data = load_dataset(TrainConfig(dataset="addition", bits=6, examples=300, seed=4).resolve())
    weights = 2 ** np.arange(5, -1, -1)
    x = np.vstack([data.x_train, data.x_test])
    y = np.vstack([data.y_train, data.y_test])
    a, b, total = x[:, :6] @ weights, x[:, 6:] @ weights, y @ weights
    assert np.all(a < 32) and np.all(b < 32)
    assert np.array_equal(a + b, total)
    pairs = {tuple(row) for row in x}
    assert len(pairs) == 300  # distinct pairs, so no example is both trained on and held out
    assert len(data.x_test) == 60


def test_digits_ship_with_the_package() -> None:
    data = load_dataset(TrainConfig(dataset="digits").resolve())
    assert len(data.x_train) + len(data.x_test) == 1797
    assert data.n_inputs == 64 and data.n_outputs == 10
    assert data.x_train.min() >= 0.0 and data.x_train.max() <= 1.0


@pytest.mark.parametrize(
    ("values", "field", "text"),
    [
        ({"dataset": "cifar"}, "dataset", "must be one of addition, digits, mnist"),
        ({"bits": 1}, "bits", ">= 2"),
        ({"bits": 33}, "bits", "<= 32"),
        ({"bits": 3, "examples": 20}, "examples", "at most 16"),
        ({"dataset": "digits", "examples": 200_000}, "examples", "<= 100000"),
        ({"dataset": "digits", "examples": 2000}, "examples", "at most 1797"),
        ({"test_fraction": 0.9}, "test_fraction", "<= 0.5"),
        ({"hidden": ()}, "hidden", "1 to 8 layers"),
        ({"hidden": (10, 0)}, "hidden", ">= 1"),
        ({"hidden": (5000,)}, "hidden", "<= 4096"),
        ({"method": "hebbian"}, "method", "backprop"),
        ({"learning_rate": 0.0}, "learning_rate", "> 0"),
        ({"learning_rate": float("nan")}, "learning_rate", "finite"),
        ({"epochs": 2.5}, "epochs", "whole number"),
        ({"loss": "cross_entropy"}, "loss", "bce"),
        ({"dataset": "digits", "loss": "bce"}, "loss", "cross_entropy"),
        ({"dataset": "mnist"}, "data_path", "required"),
        ({"dataset": "mnist", "data_path": "/no/such/folder"}, "data_path", "not a folder"),
    ],
)
def test_bad_options_name_the_field_and_the_bound(values: dict, field: str, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_dataset(TrainConfig.from_dict(values).resolve())
    assert info.value.field == field
    assert text in str(info.value)


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({"learnin_rate": 0.1})
    assert info.value.field == "learnin_rate"


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    codes = {np.dtype("uint8"): 0x08, np.dtype(">i4"): 0x0C}
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    header += b"".join(struct.pack(">I", n) for n in array.shape)
    body = header + array.tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(body))
    else:
        path.write_bytes(body)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_plain_and_gzipped(tmp_path: Path, compress: bool) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "imgs", images, compress)
    read = read_idx(tmp_path / ("imgs.gz" if compress else "imgs"))
    assert read.shape == (2, 3, 4) and np.array_equal(read, images)
    ints = np.array([1, -2, 300], dtype=">i4")
    write_idx(tmp_path / "ints", ints, compress)
    assert read_idx(tmp_path / ("ints.gz" if compress else "ints")).tolist() == [1, -2, 300]


def test_read_idx_rejects_bad_files(tmp_path: Path) -> None:
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]))
    with pytest.raises(ValueError, match="promises 5"):
        read_idx(tmp_path / "short")


def make_mnist(folder: Path, n_train: int, n_test: int, compress: bool) -> None:
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(
            folder / f"{prefix}-images-idx3-ubyte",
            rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8),
            compress,
        )
        write_idx(
            folder / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8), compress
        )


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_reads_a_folder_of_idx_files_and_trains(tmp_path: Path, compress: bool) -> None:
    from synthgrad_core import Trainer

    make_mnist(tmp_path, 40, 10, compress)
    cfg = TrainConfig(
        dataset="mnist", data_path=str(tmp_path), hidden=(16,), epochs=1, batch_size=8
    )
    data = load_dataset(cfg.resolve())
    assert data.x_train.shape == (40, 784) and data.x_test.shape == (10, 784)
    assert data.y_train.argmax(axis=1).tolist() == [i % 10 for i in range(40)]
    trainer = Trainer(cfg)
    assert len(list(trainer)) == 5 and trainer.status == "finished"


def test_mnist_missing_file_names_it(tmp_path: Path) -> None:
    make_mnist(tmp_path, 10, 5, False)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ConfigError, match="t10k-labels-idx1-ubyte"):
        load_dataset(TrainConfig(dataset="mnist", data_path=str(tmp_path)).resolve())
