"""Request dependencies: the run manager of this app and the caller's token."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from .runs import RunManager

OWNER_COOKIE = "synthgrad_owner"


def get_manager(conn: HTTPConnection) -> RunManager:
    manager: RunManager = conn.app.state.manager
    return manager


def get_token(conn: HTTPConnection) -> str | None:
    """The caller's token: `Authorization: Bearer <token>`, else the owner cookie."""
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return conn.cookies.get(OWNER_COOKIE) or None


Manager = Annotated[RunManager, Depends(get_manager)]
Token = Annotated[str | None, Depends(get_token)]
