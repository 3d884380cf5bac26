"""Request models of the API, generated from TrainConfig so bounds live in one place."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from synthgrad_core.config import MAX_LAYERS, MAX_WIDTH, config_fields

NAME_MAX = 100


def _config_field(f: dataclasses.Field[Any]) -> tuple[Any, Any]:
    meta = f.metadata
    bounds = {k: meta[k] for k in ("ge", "le", "gt") if meta[k] is not None}
    default = None if f.default is dataclasses.MISSING else f.default
    description = meta["help"] + (f" ({meta['unit']})" if meta["unit"] else "")
    kind: Any
    if meta["choices"]:
        kind = Literal[meta["choices"]]
        bounds = {}
    elif f.name == "hidden":
        kind = Annotated[
            list[Annotated[int, Field(**bounds)]], Field(min_length=1, max_length=MAX_LAYERS)
        ]
        bounds = {}
        description += f"; each width 1..{MAX_WIDTH}"
    elif f.name == "data_path":
        kind = Annotated[str, Field(max_length=4096)]
    elif "int" in str(f.type):
        kind = int
    else:
        kind = float
    if default is None:
        kind = kind | None
    return kind, Field(default=default, description=description, **bounds)


RunConfig = create_model(  # type: ignore[call-overload]
    "RunConfig",
    __config__=ConfigDict(extra="forbid"),
    __doc__="A run's training config; omitted fields take the dataset's defaults.",
    **{f.name: _config_field(f) for f in config_fields()},
)


class CreateRun(BaseModel):
    """Body of POST /api/runs."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX)] | None = None
    config: RunConfig = Field(default_factory=RunConfig)  # type: ignore[valid-type]
