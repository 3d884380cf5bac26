"""TrainConfig: every knob of a training run, its bounds, and dataset-dependent defaults.

This is the one place that says what a run accepts. The command line builds its
flags from it and the server builds its request model from it, so a bound
changed here changes everywhere.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Method(StrEnum):
    """A learning rule. Its value is what configs hold and JSON carries ("dni", ...)."""

    BACKPROP = "backprop"
    DNI = "dni"
    CDNI = "cdni"
    FEEDBACK_ALIGNMENT = "feedback_alignment"

    @property
    def uses_modules(self) -> bool:
        """Whether the rule trains synthetic-gradient modules (and can be pipelined)."""
        return self in (Method.DNI, Method.CDNI)

    @property
    def conditioned(self) -> bool:
        """Whether its modules also see the batch's targets (cDNI)."""
        return self is Method.CDNI


DATASETS = ("addition", "digits", "mnist")
METHODS = tuple(m.value for m in Method)
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
#: Longest text of a path field.
MAX_PATH = 4096


class ConfigError(ValueError):
    """A config value is out of its bounds; `field` names the offending key."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, str]]:
        """Pickled with its field, so it crosses a process boundary as itself."""
        return (type(self), (self.field, self.message))


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
    #: a running run may change it in place (Trainer.configure, PATCH /api/runs/{id}/config)
    live: bool = False
    #: a branch of a trained state may change it (a fork, --resume with flags); the other
    #: fields shape the weights or the data
    branchable: bool = False
    #: the run page's fork dialog offers it (a branchable field people change most)
    fork_form: bool = False

    def __post_init__(self) -> None:
        if (self.live or self.fork_form) and not self.branchable:
            raise ValueError(f"{self.label}: a live or offered field must be branchable")

    @property
    def integer(self) -> bool:
        return self.kind in ("int", "widths")

    @property
    def width(self) -> bool:
        """Whether the field holds a list of layer widths."""
        return self.kind == "widths"

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
        metadata=_spec(
            "choice",
            "Learning rule",
            "learning rule",
            choices=METHODS,
            advanced=False,
            branchable=True,
            fork_form=True,
        ),
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
            "int",
            "Epochs",
            "passes over the data",
            ge=1,
            le=10_000,
            unit="epochs",
            advanced=False,
            branchable=True,
            fork_form=True,
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
            "float",
            "Learning rate",
            "step size of the network",
            gt=0,
            le=1e4,
            advanced=False,
            branchable=True,
            live=True,
            fork_form=True,
        ),
    )
    optimizer: str = field(
        default="sgd",
        metadata=_spec(
            "choice",
            "Optimiser",
            "network optimiser",
            choices=OPTIMIZERS,
            branchable=True,
            fork_form=True,
        ),
    )
    momentum: float = field(
        default=0.9,
        metadata=_spec(
            "float", "Momentum", "momentum / Adam beta1", ge=0, le=0.999, branchable=True
        ),
    )
    sg_learning_rate: float | None = field(
        default=None,
        metadata=_spec(
            "float",
            "Module learning rate",
            "step size of the synthetic-gradient modules",
            gt=0,
            le=1e4,
            branchable=True,
            live=True,
            fork_form=True,
        ),
    )
    sg_optimizer: str = field(
        default="sgd",
        metadata=_spec(
            "choice",
            "Module optimiser",
            "synthetic-gradient module optimiser",
            choices=OPTIMIZERS,
            branchable=True,
            fork_form=True,
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
            branchable=True,
            live=True,
            fork_form=True,
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
            branchable=True,
            live=True,
            fork_form=True,
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
            "worker, updating at once (dni, cdni; backprop and feedback alignment stay locked); "
            "the same config and seed give the same numbers either way",
            choices=EXECUTIONS,
            branchable=True,
        ),
    )
    workers: int = field(
        default=2,
        metadata=_spec(
            "int",
            "Workers",
            "stages of layers working in parallel when pipelined; with w > 1 each stage's top "
            "module learns from its targets w - 1 batches late",
            ge=1,
            le=MAX_WORKERS,
            unit="workers",
            branchable=True,
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
            branchable=True,
            fork_form=True,
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
            branchable=True,
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
            branchable=True,
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

    @property
    def uses_modules(self) -> bool:
        """Whether the rule trains synthetic-gradient modules (dni, cdni)."""
        return Method(self.method).uses_modules


def widths(value: Any) -> Any:
    """A widths field as a tuple: a list becomes one; a lone 0 (or an int 0) is no layers
    (a linear module); an int n is one layer (older configs give sg_hidden as one width)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        value = (value,)
    if isinstance(value, (list, tuple)):
        value = tuple(value)
        return () if value == (0,) else value
    return value


def validate_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)}; got {value!r}")


# -- the one validator -----------------------------------------------------------------
# Every way in (TrainConfig.resolve, the command line's flags, the API's request models)
# checks a value with check_value, so they accept and refuse the same inputs with the
# same words. A value is what JSON can carry: numbers are int or float (a whole float is
# a fine int: 2.0 is 2), never bool or text; the command line turns its text into such a
# value first (synthgrad_core.flags).

#: C0 and C1 control characters and DEL: never part of a name or a path.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def text_problem(text: str) -> str | None:
    """What is wrong with `text` as a name or a path, or None: control characters (NUL,
    newlines, ...) or a lone surrogate that cannot be stored."""
    found = _CONTROL.search(text)
    if found:
        return f"must not hold control characters; found {found.group()!r} at {found.start()}"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (it holds a lone surrogate)"
    return None


def check_value(name: str, value: Any) -> Any:
    """One value of config field `name`, checked against its FieldSpec and normalised (a
    whole float in an int field becomes an int, an int in a float field a float, a widths
    list a tuple, a Method a plain string); raises ConfigError naming the field."""
    spec = FIELD_SPECS.get(name)
    if spec is None:
        raise ConfigError(name, f"unknown field; known fields: {', '.join(sorted(FIELD_SPECS))}")
    if value is None:
        raise ConfigError(name, "needs a value")
    if spec.kind == "choice":
        assert spec.choices is not None
        validate_choice(name, value, spec.choices)
        return str(value)
    if spec.kind == "widths":
        return _check_widths(name, widths(value), spec)
    if spec.kind == "path":
        return _check_path(name, value)
    return _check_number(name, value, spec)


def _check_path(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(name, f"must be a folder path, got {value!r}")
    if len(value) > MAX_PATH:
        raise ConfigError(name, f"must be at most {MAX_PATH} characters, got {len(value)}")
    problem = text_problem(value)
    if problem:
        raise ConfigError(name, problem)
    return value


def _check_widths(name: str, value: Any, spec: FieldSpec) -> tuple[int, ...]:
    if not isinstance(value, tuple):
        raise ConfigError(
            name,
            f"must be a list of whole-number widths like [128, 64] (128,64 on the "
            f"command line), got {value!r}",
        )
    if not spec.min_count <= len(value) <= MAX_LAYERS:
        raise ConfigError(
            name, f"needs {spec.min_count} to {MAX_LAYERS} layers of widths, got {len(value)}"
        )
    return tuple(int(_check_number(name, width, spec)) for width in value)


def _check_number(name: str, value: Any, spec: FieldSpec) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(name, f"must be a number, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(name, f"must be finite, got {value!r}")
        if spec.integer and not value.is_integer():
            raise ConfigError(name, f"must be a whole number, got {value!r}")
    number = _in_kind(name, value, spec.integer)
    _check_bounds(name, number, spec)
    return number


def _check_bounds(name: str, number: int | float, spec: FieldSpec) -> None:
    if spec.ge is not None and number < spec.ge:
        raise ConfigError(name, f"must be >= {spec.ge:g}, got {_shown(number)}")
    if spec.gt is not None and number <= spec.gt:
        raise ConfigError(name, f"must be > {spec.gt:g}, got {_shown(number)}")
    if spec.le is not None and number > spec.le:
        raise ConfigError(name, f"must be <= {spec.le:g}, got {_shown(number)}")


def _in_kind(name: str, value: int | float, integer: bool) -> int | float:
    """`value` as its field's kind: int for whole-number fields, float for the others."""
    if integer:
        return int(value)
    try:
        return float(value)
    except OverflowError:  # an int beyond a float's range
        raise ConfigError(
            name, f"must be finite, got an integer of {len(str(value))} digits"
        ) from None


def _shown(number: int | float) -> str:
    text = repr(number)
    return text if len(text) <= 24 else text[:20] + "..."


def _check_missing(name: str, dataset: str) -> None:
    """A resolved config's None: fine only for data_path outside mnist."""
    if name == "data_path" and dataset != "mnist":
        return
    hint = " for the mnist dataset (a folder with the IDX files)" if name == "data_path" else ""
    raise ConfigError(name, "is required" + hint)


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
            value = getattr(self, f.name)
            if value is None:
                _check_missing(f.name, self.dataset)
            else:
                object.__setattr__(self, f.name, check_value(f.name, value))
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
        """The checks that tie fields together (CROSS_FIELD_RULES, in order)."""
        for rule in CROSS_FIELD_RULES:
            rule(self)


def _examples_exist(cfg: ResolvedConfig) -> None:
    if cfg.dataset == "addition":
        limit = min(4 ** (cfg.bits - 1), 100_000)
        if cfg.examples > limit:
            raise ConfigError(
                "examples",
                f"must be at most {limit} for {cfg.bits}-bit addition "
                f"(there are only {4 ** (cfg.bits - 1)} distinct pairs)",
            )
    if cfg.dataset == "digits" and cfg.examples > DIGITS_COUNT:
        raise ConfigError("examples", f"must be at most {DIGITS_COUNT} for digits")


def _loss_fits_targets(cfg: ResolvedConfig) -> None:
    if cfg.bit_targets and cfg.loss == "cross_entropy":
        raise ConfigError("loss", "must be 'bce' or 'mse' for bit targets (addition)")
    if not cfg.bit_targets and cfg.loss != "cross_entropy":
        raise ConfigError("loss", f"must be 'cross_entropy' for class targets ({cfg.dataset})")


def _a_stage_per_worker(cfg: ResolvedConfig) -> None:
    layers = len(cfg.hidden) + 1
    if cfg.execution == "pipelined" and cfg.workers > layers:
        raise ConfigError(
            "workers", f"must be at most {layers}, the layers of this net (a stage each)"
        )


def _batch_statistics_need_two(cfg: ResolvedConfig) -> None:
    """Batch norm over one example normalises every unit to zero: the layer's input is
    lost, its running variance falls to zero and held-out outputs blow up (a batch of one
    trained to a loss of 50,704)."""
    if cfg.batch_size >= 2:
        return
    if cfg.batch_norm == "on":
        raise ConfigError(
            "batch_size", "must be at least 2 with batch_norm on (statistics of one example)"
        )
    if cfg.sg_batch_norm == "on" and cfg.sg_hidden and cfg.uses_modules:
        raise ConfigError(
            "batch_size",
            "must be at least 2 with sg_batch_norm on and sg_hidden layers (statistics of "
            "one example)",
        )


Rule = Callable[["ResolvedConfig"], None]
#: Rules over several fields, each raising ConfigError naming the field to change: what
#: the data and the net can be built from, then combinations that build but cannot train
#: (found by scripts/extremes.py, a search over the fields' extremes).
CONSISTENCY_RULES: tuple[Rule, ...] = (_examples_exist, _loss_fits_targets, _a_stage_per_worker)
TRAINABILITY_RULES: tuple[Rule, ...] = (_batch_statistics_need_two,)
CROSS_FIELD_RULES: tuple[Rule, ...] = CONSISTENCY_RULES + TRAINABILITY_RULES


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


# Per-dataset defaults: the settings of the reference results in docs/engine.md.
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


def _fields_where(flag: str) -> tuple[str, ...]:
    return tuple(name for name, spec in FIELD_SPECS.items() if getattr(spec, flag))


#: What a running run may change in place (Trainer.configure, the API's knobs).
LIVE_FIELDS = _fields_where("live")
#: What a branch of a trained state may change: the rule, its learning rates and
#: optimisers, its knobs, how long it trains and what it reports. Everything else shapes
#: the state itself.
BRANCHABLE_FIELDS = _fields_where("branchable")
#: What the run page's fork dialog offers (a subset of BRANCHABLE_FIELDS).
FORK_FORM_FIELDS = _fields_where("fork_form")
#: Fields that hold a list of layer widths.
WIDTH_FIELDS = _fields_where("width")
