"""Request dependencies: the run manager of this app and the caller's token."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends
from starlette.requests import HTTPConnection

from app.runs.manager import RunManager

OWNER_COOKIE = "synthgrad_owner"


def get_manager(conn: HTTPConnection) -> RunManager:
    manager: RunManager = conn.app.state.manager
    return manager


#: Methods that change nothing: a cookie may come with them from anywhere.
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def get_token(conn: HTTPConnection) -> str | None:
    """The caller's token: `Authorization: Bearer <token>`, else the owner cookie.

    A cookie only counts for a state change sent by this site's own pages: the
    request must carry a same-origin `Origin` or `Sec-Fetch-Site: same-origin`
    (SameSite=Strict alone lets pages of the same site on other ports through).
    Otherwise the request goes on as if it had no token: controls get 403, a
    create makes a new owner (a script whose HTTP session kept the cookie still works).
    """
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    cookie = conn.cookies.get(OWNER_COOKIE) or None
    if cookie and conn.scope.get("method", "GET") not in SAFE_METHODS and not same_origin(conn):
        return None
    return cookie


def same_origin(conn: HTTPConnection) -> bool:
    if conn.headers.get("sec-fetch-site") == "same-origin":
        return True
    origin = conn.headers.get("origin")
    return bool(origin) and urlsplit(origin).netloc == conn.headers.get("host")


Manager = Annotated[RunManager, Depends(get_manager)]
Token = Annotated[str | None, Depends(get_token)]
