"""Request models of the API, generated from TrainConfig so bounds live in one place."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    create_model,
    field_validator,
)
from pydantic_core import PydanticCustomError

from synthgrad_core.config import (
    FIELD_SPECS,
    LIVE_FIELDS,
    MAX_LAYERS,
    MAX_PATH,
    MAX_WIDTH,
    ConfigError,
    FieldSpec,
    TrainConfig,
    check_value,
    text_problem,
)
from synthgrad_core.sweep import MAX_RUNS

NAME_MAX = 100


def _number_schema(spec: FieldSpec) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer" if spec.integer else "number"}
    for key, bound in (("minimum", spec.ge), ("exclusiveMinimum", spec.gt), ("maximum", spec.le)):
        if bound is not None:
            schema[key] = bound
    return schema


def _json_schema(spec: FieldSpec) -> dict[str, Any]:
    """What a field accepts, for /docs and clients: the validator's bounds as JSON Schema."""
    if spec.kind == "choice":
        assert spec.choices is not None
        return {"enum": list(spec.choices), "type": "string"}
    if spec.kind == "path":
        return {"type": "string", "maxLength": MAX_PATH}
    if spec.kind == "widths":
        layers = {
            "type": "array",
            "items": _number_schema(spec),
            "minItems": spec.min_count,
            "maxItems": MAX_LAYERS,
        }
        # one width: n is one layer, and 0 no layers where a field may have none
        one = {"type": "integer", "minimum": 0 if spec.min_count == 0 else 1, "maximum": spec.le}
        return {"anyOf": [layers, one]}
    return _number_schema(spec)


def _checker(name: str, nullable: bool) -> Any:
    def check(value: Any) -> Any:
        if value is None and nullable:
            return None
        try:
            checked = check_value(name, value)
        except ConfigError as exc:  # pydantic names the field in `loc`; the words are ours
            raise PydanticCustomError(
                "value_error", "{message}", {"message": exc.message}
            ) from None
        return list(checked) if isinstance(checked, tuple) else checked  # JSON has lists

    return check


def _value_type(name: str, spec: FieldSpec, nullable: bool = False) -> Any:
    """One value of a config field, checked by the engine's own validator
    (config.check_value): the API accepts and refuses what the CLI and TrainConfig do."""
    schema = _json_schema(spec)
    if nullable:
        schema = {"anyOf": [schema, {"type": "null"}]}
    return Annotated[Any, PlainValidator(_checker(name, nullable)), WithJsonSchema(schema)]


def _description(spec: FieldSpec) -> str:
    text = spec.help + (f" ({spec.unit})" if spec.unit else "")
    return text + (f"; each width 1..{MAX_WIDTH}" if spec.kind == "widths" else "")


def _config_field(name: str, spec: FieldSpec) -> tuple[Any, Any]:
    default: Any = TrainConfig.__dataclass_fields__[name].default
    if isinstance(default, tuple):  # JSON has lists (sg_hidden's default: no layers)
        default = list(default)
    kind = _value_type(name, spec, nullable=default is None)
    return kind, Field(default=default, description=_description(spec), title=spec.label)


def _grid_field(name: str, spec: FieldSpec) -> tuple[Any, Any]:
    value: Any = _value_type(name, spec)
    values: Any = Annotated[list[value], Field(min_length=1, max_length=MAX_RUNS)]  # type: ignore[valid-type]
    return values | None, Field(default=None, description=f"values of: {_description(spec)}")


RunConfig = create_model(  # type: ignore[call-overload]
    "RunConfig",
    __config__=ConfigDict(extra="forbid"),
    __doc__="A run's training config; omitted fields take the dataset's defaults.",
    **{name: _config_field(name, spec) for name, spec in FIELD_SPECS.items()},
)


def _encodable(name: str | None) -> str | None:
    """A name must be text that can be stored and shown: no control characters, no lone
    surrogates (config.text_problem, the rule of path fields too)."""
    if name is not None:
        problem = text_problem(name)
        if problem:
            raise ValueError(problem)
    return name


class NamedBody(BaseModel):
    """A request body with an optional name (of a run, a sweep or a branch)."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX)] | None = None
    _name_text = field_validator("name")(_encodable)


class CreateRun(NamedBody):
    """Body of POST /api/runs."""

    config: RunConfig = Field(default_factory=RunConfig)  # type: ignore[valid-type]


SweepGrid = create_model(  # type: ignore[call-overload]
    "SweepGrid",
    __config__=ConfigDict(extra="forbid"),
    __doc__="The fields a sweep varies, each with its list of values (rules x seeds x at most "
    f"2 more fields; at most {MAX_RUNS} runs in all).",
    **{name: _grid_field(name, spec) for name, spec in FIELD_SPECS.items()},
)


class CreateSweep(NamedBody):
    """Body of POST /api/sweeps: a base config and the grid of values to vary."""

    config: RunConfig = Field(default_factory=RunConfig)  # type: ignore[valid-type]
    grid: SweepGrid  # type: ignore[valid-type]
    #: train each group's seeds as one batched job (same results; pause and stop of one
    #: seed act on its whole group); false: every seed alone
    batch_seeds: bool = True


def _optional_field(name: str, spec: FieldSpec) -> tuple[Any, Any]:
    return _value_type(name, spec, nullable=True), Field(
        default=None, description=_description(spec)
    )


ForkConfig = create_model(  # type: ignore[call-overload]
    "ForkConfig",
    __config__=ConfigDict(extra="forbid"),
    __doc__="What a branch changes; omitted fields stay the parent's. The rule, learning "
    "rates, optimisers, knobs, epochs and cadences may change; anything that shapes the "
    "weights or the data (dataset, widths, activation, seed, ...) is a 422 naming it.",
    **{name: _optional_field(name, spec) for name, spec in FIELD_SPECS.items()},
)


class ForkRun(NamedBody):
    """Body of POST /api/runs/{id}/fork (optional)."""

    config: ForkConfig = Field(default_factory=ForkConfig)  # type: ignore[valid-type]
    step: int | None = Field(
        default=None,
        ge=0,
        description="the parent's step the branch starts from; default: a paused run's "
        "current step, any other run's last (good) step",
    )


Knobs = create_model(  # type: ignore[call-overload]
    "Knobs",
    __config__=ConfigDict(extra="forbid"),
    __doc__="Body of PATCH /api/runs/{id}/config: the knobs to change in place.",
    **{name: _optional_field(name, FIELD_SPECS[name]) for name in LIVE_FIELDS},
)


class RenameRun(BaseModel):
    """Body of PATCH /api/runs/{id}."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
    _name_text = field_validator("name")(_encodable)


# -- responses ------------------------------------------------------------------
class RunSummary(BaseModel):
    """Latest numbers of a run (null until known); diverged runs add `diverged_at`."""

    model_config = ConfigDict(extra="allow")
    loss: float | None = None
    accuracy: float | None = None
    test_accuracy: float | None = None


class ForkOf(BaseModel):
    run: str = Field(description="the parent run's id")
    step: int = Field(description="the step the branch starts from (the parent's state then)")


class RunOut(BaseModel):
    """A run as the API shows it (never its owner token's hash)."""

    id: str
    name: str
    status: str = Field(description="queued, running, paused, finished, stopped, diverged, ...")
    config: dict[str, Any] = Field(description="the resolved training config")
    step: int
    total_steps: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None
    summary: RunSummary
    steps_per_second: float | None
    requested: str | None = Field(
        None,
        description="a control accepted and not yet carried out (pause, resume, stop); "
        "the status follows within a step",
    )
    parked: bool = Field(
        False,
        description="a run paused longer than the server's park_after setting: its state is "
        "kept and its training slot freed; resume queues it and it goes on exactly",
    )
    fork_of: ForkOf | None = Field(None, description="a branch's parent and fork step")
    batch: list[str] | None = Field(
        None,
        description="the runs (this one among them) of a sweep group whose seeds train as one "
        "batched computation; pause, resume and stop of one act on all",
    )


class SweepRun(RunOut):
    sweep_id: str | None = None
    point: dict[str, Any] = Field(description="the run's values of the grid's fields")


class SweepGroup(BaseModel):
    """A grid point without the seed: final numbers of its runs that finished (or diverged)."""

    model_config = ConfigDict(extra="allow")  # plus the point's values of the grid's fields
    n: int = Field(description="runs in the group")
    done: int = Field(description="runs with final numbers: finished or diverged")
    test_accuracy_mean: float | None
    test_accuracy_min: float | None
    test_accuracy_max: float | None
    accuracy_mean: float | None
    accuracy_min: float | None
    accuracy_max: float | None
    fidelity: dict[str, float] = Field(
        description="mean over the group of each run's last-epoch cos_h<i> and rel_err_h<i>"
    )


class SweepOut(BaseModel):
    id: str
    name: str
    status: str = Field(
        description="running, paused or queued while a run is; then finished (every run "
        "trained to the end) or ended (some stopped, interrupted or failed); empty"
    )
    created_at: float
    config: dict[str, Any] = Field(description="the base config every run shares")
    grid: dict[str, list[Any]]
    runs: list[SweepRun]
    groups: list[SweepGroup]
    can_control: bool


class CreatedSweep(SweepOut):
    owner_token: str = Field(description="controls every run of the sweep; also the owner cookie")


class CreatedRun(RunOut):
    owner_token: str = Field(description="controls this run; also set as the owner cookie")


class Stored(BaseModel):
    steps: list[int] = Field(description="steps of the run's stored checkpoints (exact states)")
    bytes: int = Field(description="their size in the store")
    owner_bytes: int = Field(description="checkpoints of every run of this run's owner")


class RunView(RunOut):
    can_control: bool = Field(description="whether the caller may pause, resume, stop, delete")
    checkpoints: Stored = Field(description="what a fork at any step restores and replays from")


class StreamStats(BaseModel):
    clients: int
    largest_backlog: int
    backlog_limit: int
    dropped: int


class StoreHealth(BaseModel):
    ok: bool = Field(description="the store can write and its disk has room for new runs")
    error: str | None = Field(description="why not: 'disk full', 'database corrupt', ...")
    free_bytes: int
    file_bytes: int


class Health(BaseModel):
    status: str = Field(description="ok, or failing (with status code 503)")
    store: StoreHealth
    runs: int
    active: int
    executor: str
    stream: StreamStats
    loop_lag_ms: dict[str, Any]


class Metrics(BaseModel):
    """Stored step records of a run (each a JSON object of the engine's record fields)."""

    run_id: str
    count: int
    downsampled: bool
    records: list[dict[str, Any]]
