"""HTTP routes of sweeps: each translates HTTP to one call on the sweeps of the run manager."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from app.runs.sweeps import Sweeps, markdown, results_table
from app.storage.metrics import csv_cell
from app.web.api import CONTROL, CREATE, set_owner_cookie
from app.web.deps import Token
from app.web.schemas import CreatedSweep, CreateSweep, SweepOut

router = APIRouter()

ONE_SWEEP: dict[int | str, dict[str, Any]] = {404: {"description": "no sweep with this id"}}
SWEEP_CONTROL = {**CONTROL, **ONE_SWEEP}


def get_sweeps(conn: HTTPConnection) -> Sweeps:
    sweeps: Sweeps = conn.app.state.sweeps
    return sweeps


SweepBook = Annotated[Sweeps, Depends(get_sweeps)]


@router.post("/api/sweeps", status_code=201, response_model=CreatedSweep, responses=CREATE)
def create_sweep(
    body: CreateSweep, request: Request, response: Response, sweeps: SweepBook, token: Token
) -> dict[str, Any]:
    """Create a sweep: one run per grid point, all queued at once and owned by the caller.

    For the owner's limits a sweep counts as one creation and one unfinished item.
    """
    config = body.config.model_dump(exclude_none=True)  # type: ignore[attr-defined]
    grid = body.grid.model_dump(exclude_none=True)  # type: ignore[attr-defined]
    client = request.client.host if request.client else None
    sweep, owner_token = sweeps.create(
        body.name, config, grid, token=token, client=client, batch_seeds=body.batch_seeds
    )
    set_owner_cookie(request, response, owner_token)
    return {**sweeps.describe(sweep, owner_token), "owner_token": owner_token}


@router.get("/api/sweeps", response_model=list[SweepOut])
def list_sweeps(sweeps: SweepBook, token: Token) -> list[dict[str, Any]]:
    """All sweeps, newest first."""
    return [sweeps.describe(sweep, token) for sweep in sweeps.all_sweeps()]


@router.get("/api/sweeps/{sweep_id}", response_model=SweepOut, responses=ONE_SWEEP)
def get_sweep(sweep_id: str, sweeps: SweepBook, token: Token) -> dict[str, Any]:
    """A sweep: its runs (each with its grid point) and its groups (mean, min, max over seeds)."""
    return sweeps.describe(sweeps.get(sweep_id), token)


@router.get(
    "/api/sweeps/{sweep_id}/results",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/csv": {}, "text/markdown": {}}, "description": "the table"},
        **ONE_SWEEP,
    },
)
def sweep_results(
    sweep_id: str,
    sweeps: SweepBook,
    format: Annotated[Literal["csv", "markdown"], Query()] = "csv",
) -> Response:
    """The groups' results table (train and held-out accuracy, fidelity) as CSV or Markdown."""
    described = sweeps.describe(sweeps.get(sweep_id))
    if format == "markdown":
        text, media, suffix = markdown(described), "text/markdown", "md"
    else:
        out = io.StringIO()
        header, rows = results_table(described)
        table = [[csv_cell(cell) for cell in row] for row in [header, *rows]]
        csv.writer(out, lineterminator="\n").writerows(table)
        text, media, suffix = out.getvalue(), "text/csv", "csv"
    disposition = f'attachment; filename="sweep-{sweep_id}.{suffix}"'
    return Response(text, media_type=media, headers={"Content-Disposition": disposition})


@router.post("/api/sweeps/{sweep_id}/{action}", response_model=SweepOut, responses=SWEEP_CONTROL)
async def control_sweep(
    sweep_id: str,
    action: Annotated[Literal["pause", "resume", "stop"], Path()],
    sweeps: SweepBook,
    token: Token,
) -> dict[str, Any]:
    """Pause, resume or stop every unfinished run of the sweep (owner or admin).

    Each run answers as its own control does (at its next step boundary); runs the
    action does not apply to are left as they are.
    """
    sweep = await run_in_threadpool(sweeps.control, sweep_id, action, token)
    return sweeps.describe(sweep, token)


@router.delete("/api/sweeps/{sweep_id}", status_code=204, responses=SWEEP_CONTROL)
def delete_sweep(sweep_id: str, sweeps: SweepBook, token: Token) -> Response:
    """Delete the sweep and all its runs (owner or admin)."""
    sweeps.delete(sweep_id, token)
    return Response(status_code=204)
