"""Datasets: binary addition (the article's task), the 8x8 digits, and MNIST from IDX files."""

from __future__ import annotations

import dataclasses
import gzip
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .config import ConfigError, ResolvedConfig, held_out_count


@dataclass(frozen=True)
class Dataset:
    """Train and held-out splits. Bit targets are 0/1 floats; class targets are one-hot."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    bit_targets: bool

    @property
    def n_inputs(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_outputs(self) -> int:
        return int(self.y_train.shape[1])


def load_dataset(cfg: ResolvedConfig) -> Dataset:
    """Build the dataset a resolved config names, in its number type; raises ConfigError on
    bad options."""
    return in_dtype(_load(cfg), cfg.dtype)


def in_dtype(data: Dataset, dtype: str) -> Dataset:
    """`data` with inputs and targets of `dtype` (the same object when they are already)."""
    if data.x_train.dtype == dtype and data.y_train.dtype == dtype:
        return data
    cast = {name: getattr(data, name).astype(dtype) for name in ("x_train", "y_train")}
    cast |= {name: getattr(data, name).astype(dtype) for name in ("x_test", "y_test")}
    return dataclasses.replace(data, **cast)


def _load(cfg: ResolvedConfig) -> Dataset:
    rng = np.random.default_rng([cfg.seed, 0])
    if cfg.dataset == "addition":
        return addition(cfg.bits, cfg.examples, cfg.test_fraction, rng)
    if cfg.dataset == "digits":
        return digits(cfg.examples, cfg.test_fraction, rng)
    if cfg.dataset == "mnist":
        if cfg.data_path is None:
            raise ConfigError("data_path", "is required for the mnist dataset")
        return mnist(cfg.data_path, cfg.examples, cfg.dtype)
    raise ConfigError("dataset", f"unknown dataset {cfg.dataset!r}")


def to_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """Integers to rows of bits, most significant first."""
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
    return ((values[:, None].astype(np.int64) >> shifts) & 1).astype(np.float64)


def addition(bits: int, examples: int, test_fraction: float, rng: np.random.Generator) -> Dataset:
    """Distinct pairs (a, b), each below 2**(bits-1); input a then b, target a+b in `bits` bits."""
    half = 1 << (bits - 1)
    space = half * half
    if examples > space:
        raise ConfigError("examples", f"must be at most {space} for {bits}-bit addition")
    if space <= 4 * examples:
        codes = rng.permutation(space)[:examples]
    else:
        # Rejection-free enough: draw a surplus, keep the first `examples` distinct codes.
        codes = np.empty(0, dtype=np.int64)
        while codes.size < examples:
            draw = rng.integers(0, space, size=2 * examples, dtype=np.int64)
            merged = np.concatenate([codes, draw])
            _, first = np.unique(merged, return_index=True)
            codes = merged[np.sort(first)]
        codes = codes[:examples]
    a, b = codes // half, codes % half
    x = np.hstack([to_bits(a, bits), to_bits(b, bits)])
    y = to_bits(a + b, bits)
    return _split("addition", x, y, test_fraction, rng, bit_targets=True)


def digits(examples: int, test_fraction: float, rng: np.random.Generator) -> Dataset:
    """The 8x8 handwritten digits shipped in the package (data/DIGITS.md), scaled to [0, 1]."""
    with resources.files("synthgrad_core").joinpath("data/digits.npz").open("rb") as fh:
        archive = np.load(fh)
        images, labels = archive["images"], archive["labels"]
    if examples > len(images):
        raise ConfigError("examples", f"must be at most {len(images)} for digits")
    order = rng.permutation(len(images))[:examples]
    x = images[order].astype(np.float64) / 16.0
    y = np.eye(10)[labels[order]]
    return _split("digits", x, y, test_fraction, rng, bit_targets=False)


def _split(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    test_fraction: float,
    rng: np.random.Generator,
    *,
    bit_targets: bool,
) -> Dataset:
    n_test = held_out_count(len(x), test_fraction)
    if n_test >= len(x):
        raise ConfigError("examples", f"too few examples ({len(x)}) to hold {test_fraction:g} out")
    order = rng.permutation(len(x))
    test, train = order[:n_test], order[n_test:]
    return Dataset(name, x[train], y[train], x[test], y[test], bit_targets)


MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (plain or gzipped) into an array of its stored shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_TYPES:
        raise ValueError(f"{path}: unknown IDX element type 0x{type_code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[type_code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: IDX body has {len(raw) - header} bytes, its header promises {expected}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (
        stem,
        stem + ".gz",
        stem.replace("-idx", ".idx"),
        stem.replace("-idx", ".idx") + ".gz",
    ):
        if (folder / name).is_file():
            return folder / name
    raise ConfigError("data_path", f"{folder} has no {stem} (or {stem}.gz)")


#: Datasets every installation has (generated, or shipped in the package).
BUILT_IN = ("addition", "digits")
#: The folder of a data folder (`synthgrad serve --data-dir`) that holds MNIST's IDX files.
MNIST_FOLDER = "mnist"


def mnist_missing(folder: str | os.PathLike[str]) -> str | None:
    """The first of MNIST's four IDX files `folder` lacks (its name), or None if it has all."""
    for stem in MNIST_FILES.values():
        try:
            _find_idx(Path(folder), stem)
        except ConfigError:
            return stem
    return None


def datasets_in(data_dir: str | os.PathLike[str]) -> list[str]:
    """The datasets a data folder offers: the built-in ones, and MNIST when its folder
    `mnist` holds the four IDX files."""
    found = list(BUILT_IN)
    if mnist_missing(Path(data_dir) / MNIST_FOLDER) is None:
        found.append("mnist")
    return found


def mnist(data_path: str, examples: int, dtype: str = "float64") -> Dataset:
    """MNIST from the four standard IDX files in `data_path`, pixels scaled to [0, 1] in
    `dtype`; `examples` caps train+test."""
    folder = Path(data_path).expanduser()
    if not folder.is_dir():
        raise ConfigError("data_path", f"{folder} is not a folder")
    arrays = {}
    for key, stem in MNIST_FILES.items():
        path = _find_idx(folder, stem)
        try:
            arrays[key] = read_idx(path)
        except (OSError, ValueError) as exc:
            raise ConfigError("data_path", str(exc)) from None
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ConfigError(
                "data_path", f"{split} images {images.shape} and labels {labels.shape} do not match"
            )
        if labels.size and labels.max() > 9:
            raise ConfigError("data_path", f"{split} labels must be digits 0-9")
    n_train_all, n_test_all = len(arrays["x_train"]), len(arrays["x_test"])
    share = examples / (n_train_all + n_test_all)
    n_train = min(n_train_all, max(1, round(n_train_all * share)))
    n_test = min(n_test_all, max(1, round(n_test_all * share)))

    def prep(images: np.ndarray, labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        flat = images[:n].reshape(n, -1).astype(dtype) / 255.0
        return flat, np.eye(10, dtype=dtype)[labels[:n].astype(np.int64)]

    x_train, y_train = prep(arrays["x_train"], arrays["y_train"], n_train)
    x_test, y_test = prep(arrays["x_test"], arrays["y_test"], n_test)
    return Dataset("mnist", x_train, y_train, x_test, y_test, bit_targets=False)
