"""HTTP routes of branches and live knobs: each translates HTTP to one call on `Branches`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.requests import HTTPConnection

from app.runs.branches import Branches
from app.web.api import CONTROL, CREATE, set_owner_cookie
from app.web.deps import Token
from app.web.schemas import CreatedRun, ForkRun, Knobs, RunOut

router = APIRouter()


def get_branches(conn: HTTPConnection) -> Branches:
    branches: Branches = conn.app.state.branches
    return branches


BranchBook = Annotated[Branches, Depends(get_branches)]


@router.post(
    "/api/runs/{run_id}/fork",
    status_code=201,
    response_model=CreatedRun,
    responses={**CREATE, **CONTROL},
)
def fork_run(
    run_id: str,
    request: Request,
    response: Response,
    branches: BranchBook,
    token: Token,
    body: ForkRun | None = None,
) -> dict[str, Any]:
    """Branch a run at a step (owner or admin): a new run from the parent's exact state
    then, with the changes given; the parent stays as it is.

    `step` defaults to a paused run's current step (its live state) or any other run's
    last good step; an earlier one starts from the run's nearest stored checkpoint,
    replayed to it. The branch counts against the owner's limits like any run. 409: a
    queued run, or a paused pipelined run with batches in flight; 422: a step beyond the
    run, or one a pipelined run with more than one worker passed (not replayable), or a
    change that does not fit the state, naming the field.
    """
    body = body or ForkRun()
    changes = body.config.model_dump(exclude_none=True)  # type: ignore[attr-defined]
    client = request.client.host if request.client else None
    branch, owner_token = branches.fork(run_id, token, body.name, changes, client, body.step)
    set_owner_cookie(request, response, owner_token)
    return {**branch.public(), "owner_token": owner_token}


@router.patch("/api/runs/{run_id}/config", response_model=RunOut, responses=CONTROL)
def configure_run(run_id: str, body: Knobs, branches: BranchBook, token: Token) -> dict[str, Any]:  # type: ignore[valid-type]
    """Change learning rates, update probability or sg_scale of a queued, running or paused
    run in place (owner or admin); the next record carries `config_change`, drawn as a
    marker on the run's charts and kept in its CSV."""
    changes = body.model_dump(exclude_none=True)  # type: ignore[attr-defined]
    return branches.configure(run_id, token, changes).public()
