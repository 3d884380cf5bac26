"""Request models of the API, generated from TrainConfig so bounds live in one place."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, create_model, field_validator

from synthgrad_core.config import FIELD_SPECS, MAX_LAYERS, MAX_WIDTH, FieldSpec, TrainConfig

NAME_MAX = 100


def _config_field(name: str, spec: FieldSpec) -> tuple[Any, Any]:
    bounds: dict[str, Any] = {
        k: v for k, v in (("ge", spec.ge), ("le", spec.le), ("gt", spec.gt)) if v is not None
    }
    default: Any = TrainConfig.__dataclass_fields__[name].default
    description = spec.help + (f" ({spec.unit})" if spec.unit else "")
    kind: Any
    if spec.kind == "choice":
        kind = Literal[spec.choices]
        bounds = {}
    elif spec.kind == "widths":
        kind = Annotated[
            list[Annotated[StrictInt, Field(**bounds)]],
            Field(min_length=1, max_length=MAX_LAYERS),
        ]
        bounds = {}
        description += f"; each width 1..{MAX_WIDTH}"
    elif spec.kind == "path":
        kind = Annotated[str, Field(max_length=4096)]
    else:
        # Strict: `false` is not an integer; NaN, Infinity and 1e400 are not numbers here.
        kind = StrictInt if spec.kind == "int" else Annotated[float, Field(allow_inf_nan=False)]
    if default is None:
        kind = kind | None
    field: Any = Field(default=default, description=description, title=spec.label, **bounds)
    return kind, field


RunConfig = create_model(  # type: ignore[call-overload]
    "RunConfig",
    __config__=ConfigDict(extra="forbid"),
    __doc__="A run's training config; omitted fields take the dataset's defaults.",
    **{name: _config_field(name, spec) for name, spec in FIELD_SPECS.items()},
)


def _encodable(name: str | None) -> str | None:
    """A run name must be text that can be stored: no lone surrogates."""
    if name is not None:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text (it holds a lone surrogate)") from None
    return name


class CreateRun(BaseModel):
    """Body of POST /api/runs."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX)] | None = None
    _name_text = field_validator("name")(_encodable)
    config: RunConfig = Field(default_factory=RunConfig)  # type: ignore[valid-type]


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


class CreatedRun(RunOut):
    owner_token: str = Field(description="controls this run; also set as the owner cookie")


class RunView(RunOut):
    can_control: bool = Field(description="whether the caller may pause, resume, stop, delete")


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
