"""bench.paper: the paper's FC MNIST protocol on IDX files the user has (tiny fakes here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import paper
from tests.core.test_data import write_idx


def fake_mnist(folder: Path, train: int = 300, test: int = 100) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("t10k", test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        # each digit a bright block in its own place, so the nets can learn something
        images = (rng.random((n, 28, 28)) * 60).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 2 * label : 2 * label + 6, 4:20] = 255
        write_idx(folder / f"{split}-images-idx3-ubyte", images, compress=True)
        write_idx(folder / f"{split}-labels-idx1-ubyte", labels, compress=False)


def test_the_table_has_a_row_per_depth_and_rule(tmp_path: Path) -> None:
    fake_mnist(tmp_path)
    out = tmp_path / "table.md"
    argv = ["--data-path", str(tmp_path), "--epochs", "12", "--layers", "3", "--seeds", "1,2"]
    argv += ["--width", "32", "--module-width", "16", "--out", str(out), "--cache", ""]
    assert paper.main(argv) == 0
    table = out.read_text()
    rows = [line for line in table.splitlines() if line.startswith("| 3 |")]
    assert [row.split("|")[2].strip() for row in rows] == list(paper.RULES)
    assert "MNIST: 300 training and 100 held-out examples" in table
    for row in rows:
        cells = [cell.strip() for cell in row.split("|")[1:-1]]
        error, low, high = (float(c) for c in cells[2:5])
        assert 0.0 <= low <= error <= high <= 100.0
        assert cells[-1] == "not read"  # no number the paper's table was not read for
    backprop = next(r for r in rows if "| backprop |" in r)
    assert float(backprop.split("|")[3]) < 50.0  # it learned the blocks


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "--data-path: is required for the mnist dataset"),
        (["--data-path", "{tmp}"], "has no train-images-idx3-ubyte"),
        (["--dataset", "digits", "--layers", "1"], "--layers: each depth must be at least 2"),
    ],
)
def test_bad_input_is_one_line_naming_the_flag(
    argv: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert paper.main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err


def test_an_interrupted_table_continues_where_it_stopped(tmp_path: Path) -> None:
    """A row stopped after a few steps is saved; run again, it goes on from there and ends
    with exactly the numbers of a row trained in one go."""
    (tmp_path / "data").mkdir()
    fake_mnist(tmp_path / "data", train=200, test=50)
    common = ["--data-path", str(tmp_path / "data"), "--epochs", "3", "--layers", "3"]
    common += ["--seeds", "1,2", "--width", "16", "--module-width", "8", "--save-every", "2"]

    def table(*extra: str) -> list[str]:
        out = tmp_path / "table.md"
        assert paper.main([*common, "--out", str(out), *extra]) == 0
        return [line for line in out.read_text().splitlines() if line.startswith("| 3 |")]

    whole = table("--cache", "")
    first = table("--cache", str(tmp_path / "cache"), "--stop-after", "2")
    assert all("pending" in row for row in first)
    again = table("--cache", str(tmp_path / "cache"))

    def numbers(row: str) -> list[str]:  # all but the seconds
        cells = row.split("|")[1:-1]
        return cells[:-2] + cells[-1:]

    assert [numbers(r) for r in again] == [numbers(r) for r in whole]
    assert table("--cache", str(tmp_path / "cache")) == again  # read back, not trained again


def test_a_longer_budget_goes_on_from_a_shorter_one(tmp_path: Path) -> None:
    """Two epochs saved, then four asked: the row trains two more and ends as four in one go."""
    (tmp_path / "data").mkdir()
    fake_mnist(tmp_path / "data", train=200, test=50)
    common = ["--data-path", str(tmp_path / "data"), "--layers", "3", "--seeds", "1,2"]
    common += ["--width", "16", "--module-width", "8"]

    def table(*extra: str) -> list[str]:
        out = tmp_path / "table.md"
        assert paper.main([*common, "--out", str(out), *extra]) == 0
        rows = [line for line in out.read_text().splitlines() if line.startswith("| 3 |")]
        return ["|".join(r.split("|")[:-3]) for r in rows]  # all but seconds and paper

    cache = ["--cache", str(tmp_path / "cache")]
    table("--epochs", "2", *cache)
    assert table("--epochs", "4", *cache) == table("--epochs", "4", "--cache", "")
