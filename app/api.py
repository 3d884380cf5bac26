"""HTTP and websocket routes: each translates HTTP to one call on the run manager."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request, Response, WebSocket
from fastapi.responses import JSONResponse

from .deps import OWNER_COOKIE, Manager, Token
from .messages import CloseCode, envelope
from .metrics import downsample, numeric_keys, select_fields, to_csv
from .schemas import CreatedRun, CreateRun, Health, Metrics, RenameRun, RunOut, RunView
from .status import RunNotFound

#: Largest step a client may name (SQLite integers are 64-bit).
MAX_STEP = 2**62

#: Error statuses documented for the routes that act on one run.
ONE_RUN: dict[int | str, dict[str, Any]] = {404: {"description": "no run with this id"}}
CONTROL: dict[int | str, dict[str, Any]] = {
    **ONE_RUN,
    403: {"description": "needs the run's owner token or the admin token"},
    409: {"description": "the run's status does not allow this"},
}

router = APIRouter()


@router.get("/api/health", response_model=Health)
def health(
    request: Request,
    manager: Manager,
    lag_window: Annotated[
        float, Query(gt=0, le=10, description="seconds of event-loop lag to summarize")
    ] = 10.0,
) -> dict[str, Any]:
    """Liveness, runs, the stream's backlog figures and event-loop lag (ms)."""
    active = sum(1 for run in manager.runs.values() if not run.status.terminal)
    return {
        "status": "ok",
        "runs": len(manager.runs),
        "active": active,
        "executor": manager.executor.name,
        "stream": request.app.state.hub.stats(),
        "loop_lag_ms": request.app.state.loop_lag.stats(lag_window),
    }


@router.post(
    "/api/runs",
    status_code=201,
    response_model=CreatedRun,
    responses={
        403: {"description": "read-only server"},
        429: {"description": "the server keeps no more runs"},
    },
)
def create_run(
    body: CreateRun, manager: Manager, token: Token, response: Response
) -> dict[str, Any]:
    """Create a run and start (or queue) it; the caller becomes its owner."""
    config = body.config.model_dump(exclude_none=True)  # type: ignore[attr-defined]
    run, owner_token = manager.create(config, name=body.name, token=token)
    response.set_cookie(
        OWNER_COOKIE, owner_token, max_age=365 * 24 * 3600, httponly=True, samesite="strict"
    )
    return {**run.public(), "owner_token": owner_token}


@router.get("/api/runs", response_model=list[RunOut])
def list_runs(manager: Manager) -> list[dict[str, Any]]:
    """All runs, newest first."""
    return [run.public() for run in manager.all_runs()]


@router.get("/api/runs/{run_id}", response_model=RunView, responses=ONE_RUN)
def get_run(run_id: str, manager: Manager, token: Token) -> dict[str, Any]:
    """One run; `can_control` says whether the caller's token may pause, resume or stop it."""
    run = manager.get(run_id)
    return {**run.public(), "can_control": manager.can_control(run_id, token)}


@router.post("/api/runs/{run_id}/pause", response_model=RunOut, responses=CONTROL)
def pause_run(run_id: str, manager: Manager, token: Token) -> dict[str, Any]:
    """Pause a running run at its next step boundary (owner or admin)."""
    return manager.pause(run_id, token).public()


@router.post("/api/runs/{run_id}/resume", response_model=RunOut, responses=CONTROL)
def resume_run(run_id: str, manager: Manager, token: Token) -> dict[str, Any]:
    """Resume a paused run (owner or admin)."""
    return manager.resume(run_id, token).public()


@router.post("/api/runs/{run_id}/stop", response_model=RunOut, responses=CONTROL)
def stop_run(run_id: str, manager: Manager, token: Token) -> dict[str, Any]:
    """Stop a run for good, keeping what it recorded (owner or admin)."""
    return manager.stop(run_id, token).public()


@router.patch("/api/runs/{run_id}", response_model=RunOut, responses=CONTROL)
def rename_run(run_id: str, body: RenameRun, manager: Manager, token: Token) -> dict[str, Any]:
    """Rename a run (owner or admin)."""
    return manager.rename(run_id, body.name, token).public()


@router.delete("/api/runs/{run_id}", status_code=204, responses=CONTROL)
def delete_run(run_id: str, manager: Manager, token: Token) -> Response:
    """Delete a run and its metrics (owner or admin)."""
    manager.delete(run_id, token)
    return Response(status_code=204)


@router.get(
    "/api/runs/{run_id}/metrics",
    response_model=None,
    responses={
        200: {
            "model": Metrics,
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "the records as JSON, or as CSV with format=csv",
        },
        **ONE_RUN,
    },
)
def get_metrics(
    run_id: str,
    manager: Manager,
    fields: Annotated[
        str | None, Query(max_length=4000, description="comma-separated record fields")
    ] = None,
    max_points: Annotated[
        int | None, Query(ge=2, le=1_000_000, description="downsample to this many points")
    ] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    """The run's stored records, complete or min/max-downsampled, as JSON or CSV."""
    texts = manager.records(run_id)
    wanted = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    if wanted is None and max_points is None and format == "json":
        head = {"run_id": run_id, "count": len(texts), "downsampled": False}
        return Response(envelope(head, records=texts), media_type="application/json")
    records = [json.loads(t) for t in texts]
    downsampled = max_points is not None and len(records) > max_points
    if max_points is not None and downsampled:
        keep = downsample(records, max_points, wanted or numeric_keys(records[:50]))
        records = [records[i] for i in keep]
    records = [select_fields(r, wanted) for r in records]
    if format == "csv":
        return Response(
            to_csv(records, wanted),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{run_id}.csv"'},
        )
    return JSONResponse(
        {"run_id": run_id, "count": len(records), "downsampled": downsampled, "records": records}
    )


@router.websocket("/ws/runs/{run_id}")
async def run_stream(websocket: WebSocket, run_id: str, after: int | None = None) -> None:
    """Live stream of one run: snapshot (or missed records after `after`), metrics, status."""
    origin = websocket.headers.get("origin")
    if origin and urlsplit(origin).netloc != websocket.headers.get("host"):
        await websocket.close(code=CloseCode.POLICY, reason="cross-origin websocket refused")
        return
    try:
        websocket.app.state.manager.get(run_id)
    except RunNotFound:
        await websocket.close(code=CloseCode.NO_SUCH_RUN, reason="no such run")
        return
    await websocket.accept()
    # Steps fit SQLite's 64-bit integers; a larger `after` simply means "nothing missed".
    await websocket.app.state.hub.serve(
        websocket, run_id, after if after is None else min(max(0, after), MAX_STEP)
    )
