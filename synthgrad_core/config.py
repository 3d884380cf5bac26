"""TrainConfig: every knob of a training run, its bounds, and dataset-dependent defaults.

This is the one place that says what a run accepts. The command line builds its
flags from it and the server builds its request model from it, so a bound
changed here changes everywhere.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

DATASETS = ("addition", "digits", "mnist")
METHODS = ("backprop", "dni", "cdni", "feedback_alignment")
ACTIVATIONS = ("sigmoid", "tanh", "relu")
LOSSES = ("bce", "mse", "cross_entropy")
OPTIMIZERS = ("sgd", "momentum", "adam")
INITS = ("auto", "glorot", "he", "article")

DIGITS_COUNT = 1797
MAX_LAYERS = 8
MAX_WIDTH = 4096


class ConfigError(ValueError):
    """A config value is out of its bounds; `field` names the offending key."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


def _spec(
    help: str,
    *,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    choices: tuple[str, ...] | None = None,
    unit: str = "",
) -> dict[str, Any]:
    return {"help": help, "ge": ge, "le": le, "gt": gt, "choices": choices, "unit": unit}


@dataclass(frozen=True)
class TrainConfig:
    """A training run. `None` means "the dataset's default" until `resolve()` fills it in.

    >>> cfg = TrainConfig(dataset="addition", method="cdni").resolve()
    >>> cfg.hidden, cfg.learning_rate
    ((128, 64), 2.0)
    """

    dataset: str = field(default="addition", metadata=_spec("task to learn", choices=DATASETS))
    method: str = field(default="backprop", metadata=_spec("learning rule", choices=METHODS))
    bits: int = field(default=8, metadata=_spec("bits per number (addition)", ge=2, le=32))
    examples: int | None = field(
        default=None,
        metadata=_spec("examples in the data set, train and held-out together", ge=4, le=100_000),
    )
    test_fraction: float = field(
        default=0.2, metadata=_spec("share of examples held out", ge=0.05, le=0.5)
    )
    data_path: str | None = field(
        default=None, metadata=_spec("folder with the MNIST IDX files (mnist)")
    )
    hidden: tuple[int, ...] | None = field(
        default=None,
        metadata=_spec(
            f"hidden layer widths, 1 to {MAX_LAYERS} layers", ge=1, le=MAX_WIDTH, unit="units"
        ),
    )
    activation: str | None = field(
        default=None, metadata=_spec("hidden activation", choices=ACTIVATIONS)
    )
    loss: str | None = field(
        default=None,
        metadata=_spec("output loss (bce/mse for bits, cross_entropy for classes)", choices=LOSSES),
    )
    init: str = field(default="auto", metadata=_spec("weight initialisation", choices=INITS))
    epochs: int | None = field(
        default=None, metadata=_spec("passes over the data", ge=1, le=10_000)
    )
    batch_size: int | None = field(
        default=None, metadata=_spec("examples per step", ge=1, le=4096, unit="examples")
    )
    learning_rate: float | None = field(
        default=None, metadata=_spec("step size of the network", gt=0, le=1e4)
    )
    optimizer: str = field(default="sgd", metadata=_spec("network optimiser", choices=OPTIMIZERS))
    momentum: float = field(default=0.9, metadata=_spec("momentum / Adam beta1", ge=0, le=0.999))
    sg_learning_rate: float | None = field(
        default=None, metadata=_spec("step size of the synthetic-gradient modules", gt=0, le=1e4)
    )
    sg_optimizer: str = field(
        default="sgd", metadata=_spec("synthetic-gradient module optimiser", choices=OPTIMIZERS)
    )
    sg_hidden: int = field(
        default=0,
        metadata=_spec("hidden ReLU width of each module, 0 = linear", ge=0, le=MAX_WIDTH),
    )
    sg_scale: float = field(
        default=1.0, metadata=_spec("factor on the synthetic gradient before use", ge=0, le=100)
    )
    update_probability: float = field(
        default=1.0, metadata=_spec("chance that a layer applies its update in a step", gt=0, le=1)
    )
    seed: int = field(
        default=0, metadata=_spec("random seed (data, init, order)", ge=0, le=2**32 - 1)
    )
    diagnostics_every: int = field(
        default=1,
        metadata=_spec(
            "steps between gradient-fidelity and weight diagnostics, 0 = never",
            ge=0,
            le=100_000,
            unit="steps",
        ),
    )
    histogram_every: int = field(
        default=100,
        metadata=_spec(
            "steps between weight histograms, 0 = never", ge=0, le=1_000_000, unit="steps"
        ),
    )
    test_every: int = field(
        default=0,
        metadata=_spec(
            "steps between held-out evaluations besides each epoch end, 0 = epochs only",
            ge=0,
            le=1_000_000,
            unit="steps",
        ),
    )

    def resolve(self) -> TrainConfig:
        """Fill in the dataset's defaults and validate every field; raises ConfigError."""
        validate_choice("dataset", self.dataset, DATASETS)
        defaults = DATASET_DEFAULTS[self.dataset]
        filled = {
            f.name: defaults[f.name]
            if getattr(self, f.name) is None and f.name in defaults
            else getattr(self, f.name)
            for f in dataclasses.fields(self)
        }
        if filled["hidden"] is not None:
            filled["hidden"] = tuple(filled["hidden"])
        cfg = TrainConfig(**filled)
        cfg._validate()
        return cfg

    def _validate(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            meta = f.metadata
            if value is None:
                if f.name == "data_path" and self.dataset != "mnist":
                    continue
                raise ConfigError(
                    f.name,
                    "is required"
                    + (
                        " for the mnist dataset (a folder with the IDX files)"
                        if f.name == "data_path"
                        else ""
                    ),
                )
            if meta["choices"] is not None:
                validate_choice(f.name, value, meta["choices"])
            elif f.name == "hidden":
                if not 1 <= len(value) <= MAX_LAYERS:
                    raise ConfigError("hidden", f"needs 1 to {MAX_LAYERS} layers, got {len(value)}")
                for width in value:
                    _check_number("hidden", width, meta, integer=True)
            elif isinstance(value, (int, float)) and f.name != "data_path":
                _check_number(f.name, value, meta, integer=f.type in ("int", "int | None"))
        if self.dataset == "addition":
            limit = min(4 ** (self.bits - 1), 100_000)
            assert self.examples is not None
            if self.examples > limit:
                raise ConfigError(
                    "examples",
                    f"must be at most {limit} for {self.bits}-bit addition "
                    f"(there are only {4 ** (self.bits - 1)} distinct pairs)",
                )
        if self.dataset == "digits" and self.examples is not None and self.examples > DIGITS_COUNT:
            raise ConfigError("examples", f"must be at most {DIGITS_COUNT} for digits")
        bit_targets = self.dataset == "addition"
        if bit_targets and self.loss == "cross_entropy":
            raise ConfigError("loss", "must be 'bce' or 'mse' for bit targets (addition)")
        if not bit_targets and self.loss != "cross_entropy":
            raise ConfigError("loss", f"must be 'cross_entropy' for class targets ({self.dataset})")

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (lists, not tuples)."""
        out = dataclasses.asdict(self)
        if out["hidden"] is not None:
            out["hidden"] = list(out["hidden"])
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a plain dict, rejecting unknown keys with a ConfigError naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise ConfigError(key, f"unknown field; known fields: {', '.join(sorted(known))}")
        values = dict(values)
        if values.get("hidden") is not None:
            values["hidden"] = tuple(values["hidden"])
        return cls(**values)

    @property
    def bit_targets(self) -> bool:
        return self.dataset == "addition"


def validate_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)}; got {value!r}")


def _check_number(name: str, value: Any, meta: Any, *, integer: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(name, f"must be a number, got {value!r}")
    if integer and not float(value).is_integer():
        raise ConfigError(name, f"must be a whole number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(name, f"must be finite, got {value!r}")
    if meta["ge"] is not None and value < meta["ge"]:
        raise ConfigError(name, f"must be >= {meta['ge']:g}, got {value!r}")
    if meta["gt"] is not None and value <= meta["gt"]:
        raise ConfigError(name, f"must be > {meta['gt']:g}, got {value!r}")
    if meta["le"] is not None and value > meta["le"]:
        raise ConfigError(name, f"must be <= {meta['le']:g}, got {value!r}")


# Per-dataset defaults: the settings of the reference results in spec/core.md.
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "addition": {
        "examples": 1000,
        "hidden": (128, 64),
        "activation": "sigmoid",
        "loss": "bce",
        "epochs": 300,
        "batch_size": 10,
        "learning_rate": 2.0,
        "sg_learning_rate": 0.003,
    },
    "digits": {
        "examples": 1797,
        "hidden": (128, 64),
        "activation": "relu",
        "loss": "cross_entropy",
        "epochs": 50,
        "batch_size": 32,
        "learning_rate": 0.1,
        "sg_learning_rate": 0.03,
    },
    "mnist": {
        "examples": 70_000,
        "hidden": (256, 128),
        "activation": "relu",
        "loss": "cross_entropy",
        "epochs": 5,
        "batch_size": 64,
        "learning_rate": 0.1,
        "sg_learning_rate": 0.03,
    },
}


def config_fields() -> list[dataclasses.Field[Any]]:
    """The fields of TrainConfig with their metadata (help, bounds, choices, unit)."""
    return list(dataclasses.fields(TrainConfig))
