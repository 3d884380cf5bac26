"""HTTP and websocket routes: each translates HTTP to one call on the run manager."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request, Response, WebSocket
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.runs.controls import CONTROL_WAIT
from app.runs.run import Run
from app.runs.status import RunNotFound, RunStatus
from app.web.deps import OWNER_COOKIE, Manager, Token, get_token
from app.web.messages import CloseCode
from app.web.schemas import CreatedRun, CreateRun, Health, Metrics, RenameRun, RunOut, RunView

#: Largest step a client may name (SQLite integers are 64-bit).
MAX_STEP = 2**62

#: What a creation may answer besides 201 and 422.
CREATE: dict[int | str, dict[str, Any]] = {
    403: {"description": "read-only server, or a cookie sent from another site"},
    413: {"description": "the request body is larger than the server accepts"},
    429: {"description": "a limit on runs: stored, unfinished per owner, or per minute"},
    503: {"description": "the store cannot write, or its disk is nearly full"},
}
#: Error statuses documented for the routes that act on one run.
ONE_RUN: dict[int | str, dict[str, Any]] = {404: {"description": "no run with this id"}}
CONTROL: dict[int | str, dict[str, Any]] = {
    **ONE_RUN,
    403: {"description": "needs the run's owner token or the admin token (cookies: same site)"},
    409: {"description": "the run's status does not allow this"},
    503: {"description": "the store cannot write"},
}

router = APIRouter()


@router.get(
    "/api/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "the store cannot take runs (why: store)"}},
)
def health(
    request: Request,
    response: Response,
    manager: Manager,
    lag_window: Annotated[
        float, Query(gt=0, le=10, description="seconds of event-loop lag to summarize")
    ] = 10.0,
) -> dict[str, Any]:
    """Liveness, the store's state, runs, the stream's backlog figures and event-loop lag (ms)."""
    active = sum(1 for run in manager.runs.values() if not run.status.terminal)
    store = manager.admission.store_health()
    if not store["ok"]:
        response.status_code = 503
    return {
        "status": "ok" if store["ok"] else "failing",
        "store": store,
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
    responses=CREATE,
)
def create_run(
    body: CreateRun, request: Request, manager: Manager, token: Token, response: Response
) -> dict[str, Any]:
    """Create a run and start (or queue) it; the caller becomes its owner."""
    config = body.config.model_dump(exclude_none=True)  # type: ignore[attr-defined]
    client = request.client.host if request.client else None
    run, owner_token = manager.create(config, name=body.name, token=token, client=client)
    set_owner_cookie(request, response, owner_token)
    return {**run.public(), "owner_token": owner_token}


def set_owner_cookie(request: Request, response: Response, owner_token: str) -> None:
    response.set_cookie(
        OWNER_COOKIE,
        owner_token,
        max_age=365 * 24 * 3600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",  # behind an HTTPS proxy (its X-Forwarded-Proto)
    )


@router.get("/api/runs", response_model=list[RunOut])
def list_runs(manager: Manager) -> list[dict[str, Any]]:
    """All runs, newest first."""
    return [run.public() for run in manager.all_runs()]


@router.get("/api/runs/{run_id}", response_model=RunView, responses=ONE_RUN)
def get_run(run_id: str, manager: Manager, token: Token) -> dict[str, Any]:
    """One run; `can_control` says whether the caller's token may pause, resume or stop it."""
    run = manager.get(run_id)
    control = manager.can_control(run_id, token)
    return {**run.public(), "can_control": control, "checkpoints": manager.checkpoints.stored(run)}


async def _settled(run: Run, until: Callable[[Run], bool]) -> dict[str, Any]:
    """The run once `until(run)` holds or CONTROL_WAIT has passed, without holding a thread."""
    deadline = time.monotonic() + CONTROL_WAIT
    while not (until(run) or run.status.terminal) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return run.public()


@router.post("/api/runs/{run_id}/pause", response_model=RunOut, responses=CONTROL)
async def pause_run(run_id: str, manager: Manager, token: Token) -> dict[str, Any]:
    """Pause a running run at its next step boundary (owner or admin).

    Answers within a second: paused, or still running with `requested: "pause"`.
    """
    run = await run_in_threadpool(manager.controls.pause, run_id, token, 0.0)
    return await _settled(run, lambda r: r.status is RunStatus.PAUSED)


@router.post("/api/runs/{run_id}/resume", response_model=RunOut, responses=CONTROL)
async def resume_run(run_id: str, manager: Manager, token: Token) -> dict[str, Any]:
    """Resume a paused run (owner or admin)."""
    run = await run_in_threadpool(manager.controls.resume, run_id, token, 0.0)
    return await _settled(run, lambda r: r.status is RunStatus.RUNNING)


@router.post("/api/runs/{run_id}/stop", response_model=RunOut, responses=CONTROL)
async def stop_run(run_id: str, manager: Manager, token: Token) -> dict[str, Any]:
    """Stop a run for good, keeping what it recorded (owner or admin).

    Answers within a second: stopped, or with `requested: "stop"`; a training that
    does not stop within the grace period is killed.
    """
    run = await run_in_threadpool(manager.controls.stop, run_id, token, 0.0)
    return await _settled(run, lambda r: r.status.terminal)


@router.patch("/api/runs/{run_id}", response_model=RunOut, responses=CONTROL)
def rename_run(run_id: str, body: RenameRun, manager: Manager, token: Token) -> dict[str, Any]:
    """Rename a run (owner or admin)."""
    return manager.controls.rename(run_id, body.name, token).public()


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
        422: {"description": "a bad parameter, or a field the run's records do not have"},
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
    """The run's stored records, complete or min/max-downsampled, as JSON or CSV.

    Streamed as read from the store: memory stays flat however long the run.
    """
    out = manager.history.export(run_id, fields, max_points, format)
    headers = {"Content-Disposition": f'attachment; filename="{run_id}.csv"'}
    return StreamingResponse(
        out.chunks, media_type=out.media_type, headers=headers if format == "csv" else None
    )


@router.websocket("/ws/runs/{run_id}")
async def run_stream(
    websocket: WebSocket,
    run_id: str,
    after: int | None = None,
    detail: Literal["full", "lean"] = "full",
    layer: Annotated[int | None, Query(ge=1, le=1000)] = None,
    fields: Annotated[str | None, Query(max_length=8000)] = None,
) -> None:
    """Live stream of one run: snapshot (or missed records after `after`), metrics, status.

    `detail=lean` streams what a page draws instead (the view of hidden layer `layer`, or
    the named `fields`), a few columnar frames a second; docs/api.md has both formats.
    A refusal is a close code after the handshake (1008 for a foreign origin, 4404 for
    no such run, 4422 for a lean view the run cannot have), not an HTTP 403 at it: a
    browser sees only the code, and a page must tell "stop trying" from "reconnect".
    Nothing is sent before the close.
    """
    await websocket.accept()
    origin = websocket.headers.get("origin")
    if origin and urlsplit(origin).netloc != websocket.headers.get("host"):
        await websocket.close(code=CloseCode.POLICY, reason="cross-origin websocket refused")
        return
    try:
        websocket.app.state.manager.get(run_id)
    except RunNotFound:
        await websocket.close(code=CloseCode.NO_SUCH_RUN, reason="no such run")
        return
    if detail == "lean":
        await websocket.app.state.hub.serve_lean(websocket, run_id, layer, fields)
        return
    # Steps fit SQLite's 64-bit integers; a larger `after` simply means "nothing missed".
    await websocket.app.state.hub.serve(
        websocket, run_id, after if after is None else min(max(0, after), MAX_STEP)
    )


@router.websocket("/ws/runs/{run_id}/presenter")
async def presenter_stream(websocket: WebSocket, run_id: str) -> None:
    """The view the run's owner presents, as it changes; only the owner's messages count.

    Refusals are close codes after the handshake, as for the run stream.
    """
    await websocket.accept()
    origin = websocket.headers.get("origin")
    if origin and urlsplit(origin).netloc != websocket.headers.get("host"):
        await websocket.close(code=CloseCode.POLICY, reason="cross-origin websocket refused")
        return
    manager = websocket.app.state.manager
    try:
        owner = manager.can_control(run_id, get_token(websocket))
    except RunNotFound:
        await websocket.close(code=CloseCode.NO_SUCH_RUN, reason="no such run")
        return
    await websocket.app.state.presenter.serve(websocket, run_id, owner)
