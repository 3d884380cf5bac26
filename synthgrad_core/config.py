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
EXECUTIONS = ("sequential", "pipelined")
#: Number types a run computes in (float64 is exact to the bit between equal runs).
DTYPES = ("float64", "float32")
#: Most workers of a pipelined run (one stage of layers each).
MAX_WORKERS = 8

DIGITS_COUNT = 1797
MAX_LAYERS = 8
MAX_WIDTH = 4096


class ConfigError(ValueError):
    """A config value is out of its bounds; `field` names the offending key."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class FieldSpec:
    """What one config field accepts and how people see it: the CLI, the API and the form."""

    kind: str  # "int", "float", "choice", "widths" (hidden) or "path"
    label: str  # plain words, for the form
    help: str
    unit: str = ""
    ge: float | None = None
    le: float | None = None
    gt: float | None = None
    choices: tuple[str, ...] | None = None
    #: shown under "Advanced" in the form
    advanced: bool = True
    #: fewest entries of a "widths" field (0: it may be empty)
    min_count: int = 1

    @property
    def integer(self) -> bool:
        return self.kind in ("int", "widths")

    @property
    def minimum(self) -> float | None:
        return self.ge if self.ge is not None else self.gt

    def bounds_text(self) -> str:
        """The bounds in words, e.g. ">= 1, <= 10000"."""
        parts = []
        for sign, bound in ((">=", self.ge), (">", self.gt), ("<=", self.le)):
            if bound is not None:
                shown = str(int(bound)) if float(bound).is_integer() else f"{bound:g}"
                parts.append(f"{sign} {shown}")
        return ", ".join(parts)


def _spec(kind: str, label: str, help: str, **more: Any) -> dict[str, FieldSpec]:
    return {"spec": FieldSpec(kind, label, help, **more)}


@dataclass(frozen=True)
class TrainConfig:
    """A training run. `None` means "the dataset's default" until `resolve()` fills it in.

    >>> cfg = TrainConfig(dataset="addition", method="cdni").resolve()
    >>> cfg.hidden, cfg.learning_rate
    ((128, 64), 2.0)
    """

    dataset: str = field(
        default="addition",
        metadata=_spec("choice", "Dataset", "task to learn", choices=DATASETS, advanced=False),
    )
    method: str = field(
        default="backprop",
        metadata=_spec("choice", "Learning rule", "learning rule", choices=METHODS, advanced=False),
    )
    bits: int = field(
        default=8,
        metadata=_spec(
            "int", "Bits", "bits per number (addition)", ge=2, le=32, unit="bits", advanced=False
        ),
    )
    examples: int | None = field(
        default=None,
        metadata=_spec(
            "int",
            "Examples",
            "examples in the data set, train and held-out together",
            ge=4,
            le=100_000,
            unit="examples",
        ),
    )
    test_fraction: float = field(
        default=0.2,
        metadata=_spec("float", "Held-out share", "share of examples held out", ge=0.05, le=0.5),
    )
    data_path: str | None = field(
        default=None,
        metadata=_spec("path", "MNIST folder", "folder with the MNIST IDX files (mnist)"),
    )
    hidden: tuple[int, ...] | None = field(
        default=None,
        metadata=_spec(
            "widths",
            "Hidden layers",
            f"hidden layer widths, 1 to {MAX_LAYERS} layers",
            ge=1,
            le=MAX_WIDTH,
            unit="units",
            advanced=False,
        ),
    )
    activation: str | None = field(
        default=None,
        metadata=_spec(
            "choice", "Activation", "hidden activation", choices=ACTIVATIONS, advanced=False
        ),
    )
    batch_norm: str = field(
        default="off",
        metadata=_spec(
            "choice",
            "Batch norm",
            "normalise each hidden layer's pre-activations over the batch, with a learned "
            "scale and shift (running statistics for held-out evaluation)",
            choices=("off", "on"),
        ),
    )
    loss: str | None = field(
        default=None,
        metadata=_spec(
            "choice",
            "Loss",
            "output loss (bce/mse for bits, cross_entropy for classes)",
            choices=LOSSES,
        ),
    )
    init: str = field(
        default="auto",
        metadata=_spec("choice", "Initialisation", "weight initialisation", choices=INITS),
    )
    epochs: int | None = field(
        default=None,
        metadata=_spec(
            "int", "Epochs", "passes over the data", ge=1, le=10_000, unit="epochs", advanced=False
        ),
    )
    batch_size: int | None = field(
        default=None,
        metadata=_spec(
            "int",
            "Batch size",
            "examples per step",
            ge=1,
            le=4096,
            unit="examples",
            advanced=False,
        ),
    )
    learning_rate: float | None = field(
        default=None,
        metadata=_spec(
            "float", "Learning rate", "step size of the network", gt=0, le=1e4, advanced=False
        ),
    )
    optimizer: str = field(
        default="sgd",
        metadata=_spec("choice", "Optimiser", "network optimiser", choices=OPTIMIZERS),
    )
    momentum: float = field(
        default=0.9, metadata=_spec("float", "Momentum", "momentum / Adam beta1", ge=0, le=0.999)
    )
    sg_learning_rate: float | None = field(
        default=None,
        metadata=_spec(
            "float",
            "Module learning rate",
            "step size of the synthetic-gradient modules",
            gt=0,
            le=1e4,
        ),
    )
    sg_optimizer: str = field(
        default="sgd",
        metadata=_spec(
            "choice",
            "Module optimiser",
            "synthetic-gradient module optimiser",
            choices=OPTIMIZERS,
        ),
    )
    sg_hidden: tuple[int, ...] = field(
        default=(),
        metadata=_spec(
            "widths",
            "Module hidden layers",
            "hidden ReLU widths of each synthetic-gradient module, e.g. 1024,1024 as in the "
            "paper; 0 or none = linear",
            ge=1,
            le=MAX_WIDTH,
            unit="units",
            min_count=0,
        ),
    )
    sg_batch_norm: str = field(
        default="off",
        metadata=_spec(
            "choice",
            "Module batch norm",
            "normalise each synthetic-gradient module's hidden layers over the batch "
            "(modules with hidden layers only)",
            choices=("off", "on"),
        ),
    )
    dtype: str = field(
        default="float64",
        metadata=_spec(
            "choice",
            "Number type",
            "floating-point type of the weights, activations, modules, optimiser moments and "
            "data: float32 is faster on wide nets, float64 the exact default",
            choices=DTYPES,
        ),
    )
    sg_scale: float = field(
        default=1.0,
        metadata=_spec(
            "float",
            "Synthetic-gradient scale",
            "factor on each synthetic gradient where its layer uses it (not compounded)",
            ge=0,
            le=100,
        ),
    )
    update_probability: float = field(
        default=1.0,
        metadata=_spec(
            "float",
            "Update probability",
            "chance that a layer applies its update in a step",
            gt=0,
            le=1,
        ),
    )
    seed: int = field(
        default=0,
        metadata=_spec(
            "int",
            "Seed",
            "random seed (data, init, order)",
            ge=0,
            le=2**32 - 1,
            advanced=False,
        ),
    )
    execution: str = field(
        default="sequential",
        metadata=_spec(
            "choice",
            "Execution",
            "sequential: one layer after another; pipelined: each stage of layers in its own "
            "worker, updating at once (dni, cdni; backprop and feedback alignment stay locked)",
            choices=EXECUTIONS,
        ),
    )
    workers: int = field(
        default=2,
        metadata=_spec(
            "int",
            "Workers",
            "stages of layers working in parallel when pipelined",
            ge=1,
            le=MAX_WORKERS,
            unit="workers",
        ),
    )
    diagnostics_every: int = field(
        default=1,
        metadata=_spec(
            "int",
            "Diagnostics every",
            "steps between gradient-fidelity and weight diagnostics, 0 = never",
            ge=0,
            le=100_000,
            unit="steps",
        ),
    )
    histogram_every: int = field(
        default=100,
        metadata=_spec(
            "int",
            "Histograms every",
            "steps between weight histograms, 0 = never",
            ge=0,
            le=1_000_000,
            unit="steps",
        ),
    )
    test_every: int = field(
        default=0,
        metadata=_spec(
            "int",
            "Held-out every",
            "steps between held-out evaluations besides each epoch end, 0 = epochs only",
            ge=0,
            le=1_000_000,
            unit="steps",
        ),
    )

    def resolve(self) -> ResolvedConfig:
        """Fill in the dataset's defaults and validate every field; raises ConfigError."""
        validate_choice("dataset", self.dataset, DATASETS)
        defaults = DATASET_DEFAULTS[self.dataset]
        filled = {
            f.name: defaults[f.name]
            if getattr(self, f.name) is None and f.name in defaults
            else getattr(self, f.name)
            for f in dataclasses.fields(self)
        }
        for name in WIDTH_FIELDS:
            filled[name] = widths(filled[name])
        return ResolvedConfig(**filled)  # which validates itself

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (lists, not tuples)."""
        out = dataclasses.asdict(self)
        for name in WIDTH_FIELDS:
            if out[name] is not None:
                out[name] = list(out[name])
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a plain dict, rejecting unknown keys with a ConfigError naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise ConfigError(key, f"unknown field; known fields: {', '.join(sorted(known))}")
        values = dict(values)
        for name in WIDTH_FIELDS:
            if name in values:
                values[name] = widths(values[name])
        return cls(**values)

    @property
    def bit_targets(self) -> bool:
        return self.dataset == "addition"


#: Fields that hold a list of layer widths.
WIDTH_FIELDS = ("hidden", "sg_hidden")


def widths(value: Any) -> Any:
    """A widths field as a tuple: a list becomes one; a lone 0 (or an int 0) is no layers
    (a linear module); an int n is one layer (sg_hidden was one width before round 3)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        value = (value,)
    if isinstance(value, (list, tuple)):
        value = tuple(value)
        return () if value == (0,) else value
    return value


def validate_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)}; got {value!r}")


def _validate_field(name: str, value: Any, dataset: str) -> None:
    spec = field_spec(name)
    if value is None:
        if name == "data_path" and dataset != "mnist":
            return
        hint = " for the mnist dataset (a folder with the IDX files)" if name == "data_path" else ""
        raise ConfigError(name, "is required" + hint)
    if spec.kind == "choice":
        assert spec.choices is not None
        validate_choice(name, value, spec.choices)
    elif spec.kind == "widths":
        _check_widths(name, value, spec)
    elif spec.kind == "path":
        if not isinstance(value, str):
            raise ConfigError(name, f"must be a folder path, got {value!r}")
    else:
        _check_number(name, value, spec)


def _check_widths(name: str, value: Any, spec: FieldSpec) -> None:
    if not isinstance(value, tuple) or not spec.min_count <= len(value) <= MAX_LAYERS:
        count = len(value) if isinstance(value, tuple) else value
        raise ConfigError(
            name, f"needs {spec.min_count} to {MAX_LAYERS} layers of widths, got {count!r}"
        )
    for width in value:
        _check_number(name, width, spec)


def _check_number(name: str, value: Any, spec: FieldSpec) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(name, f"must be a number, got {value!r}")
    if spec.integer and not float(value).is_integer():
        raise ConfigError(name, f"must be a whole number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(name, f"must be finite, got {value!r}")
    if spec.ge is not None and value < spec.ge:
        raise ConfigError(name, f"must be >= {spec.ge:g}, got {value!r}")
    if spec.gt is not None and value <= spec.gt:
        raise ConfigError(name, f"must be > {spec.gt:g}, got {value!r}")
    if spec.le is not None and value > spec.le:
        raise ConfigError(name, f"must be <= {spec.le:g}, got {value!r}")


@dataclass(frozen=True)
class ResolvedConfig(TrainConfig):
    """A config with the dataset's defaults filled in and every field validated.

    Only `resolve()` makes one; its fields are never None (but `data_path`
    outside mnist), so the engine reads them without checks.
    """

    examples: int = 0
    hidden: tuple[int, ...] = ()
    activation: str = ""
    loss: str = ""
    epochs: int = 0
    batch_size: int = 0
    learning_rate: float = 0.0
    sg_learning_rate: float = 0.0

    def __post_init__(self) -> None:
        # Every way to make one validates it (resolve(), dataclasses.replace, from_dict),
        # so a ResolvedConfig that exists is valid and nothing downstream checks again.
        for f in dataclasses.fields(self):
            _validate_field(f.name, getattr(self, f.name), self.dataset)
        self._validate_dataset()

    def resolve(self) -> ResolvedConfig:
        """Already resolved and valid: itself (a config is resolved once, where it enters)."""
        return self

    @classmethod
    def from_stored(cls, values: dict[str, Any]) -> ResolvedConfig:
        """A config that was resolved when it was stored (as_dict), read back.

        A stored run must load even if today's bounds refuse its config (they were
        different when it was admitted): then it is read back as it was, unchecked.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        known = {name: v for name in names if (v := values.get(name)) is not None}
        for name in WIDTH_FIELDS:
            if name in known:
                known[name] = widths(known[name])
        try:
            return cls(**known)
        except (ConfigError, TypeError):
            stored = object.__new__(cls)
            for f in dataclasses.fields(cls):
                object.__setattr__(stored, f.name, known.get(f.name, f.default))
            return stored

    def _validate_dataset(self) -> None:
        """The checks that tie fields together."""
        if self.dataset == "addition":
            limit = min(4 ** (self.bits - 1), 100_000)
            if self.examples > limit:
                raise ConfigError(
                    "examples",
                    f"must be at most {limit} for {self.bits}-bit addition "
                    f"(there are only {4 ** (self.bits - 1)} distinct pairs)",
                )
        if self.dataset == "digits" and self.examples > DIGITS_COUNT:
            raise ConfigError("examples", f"must be at most {DIGITS_COUNT} for digits")
        if self.bit_targets and self.loss == "cross_entropy":
            raise ConfigError("loss", "must be 'bce' or 'mse' for bit targets (addition)")
        if not self.bit_targets and self.loss != "cross_entropy":
            raise ConfigError("loss", f"must be 'cross_entropy' for class targets ({self.dataset})")
        layers = len(self.hidden) + 1
        if self.execution == "pipelined" and self.workers > layers:
            raise ConfigError(
                "workers", f"must be at most {layers}, the layers of this net (a stage each)"
            )


#: MNIST's standard files hold 60,000 training and 10,000 test images.
MNIST_TRAIN_SHARE = 6 / 7


def split_sizes(cfg: ResolvedConfig) -> tuple[int, int]:
    """Training and held-out examples of a config (MNIST: as its standard files split them)."""
    if cfg.dataset == "mnist":
        n_train = round(cfg.examples * MNIST_TRAIN_SHARE)
        return n_train, cfg.examples - n_train
    n_test = held_out_count(cfg.examples, cfg.test_fraction)
    return cfg.examples - n_test, n_test


def io_sizes(cfg: TrainConfig) -> tuple[int, int]:
    """Input and output units of a config's network (the datasets' shapes, without loading them)."""
    if cfg.dataset == "addition":
        return 2 * cfg.bits, cfg.bits
    return (64, 10) if cfg.dataset == "digits" else (784, 10)


def held_out_count(examples: int, test_fraction: float) -> int:
    """How many of `examples` are held out (at least one)."""
    return max(1, round(examples * test_fraction))


def planned_steps(cfg: ResolvedConfig) -> int:
    """Steps a config will train for (MNIST: an upper bound before its files are read)."""
    n_train, _ = split_sizes(cfg)
    return math.ceil(n_train / cfg.batch_size) * cfg.epochs


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
    """The fields of TrainConfig; each one's `metadata["spec"]` is its FieldSpec."""
    return list(dataclasses.fields(TrainConfig))


#: Every config field's FieldSpec, in the order of TrainConfig.
FIELD_SPECS: dict[str, FieldSpec] = {f.name: f.metadata["spec"] for f in config_fields()}


def field_spec(name: str) -> FieldSpec:
    return FIELD_SPECS[name]
