"""create_app(settings): the FastAPI app, its lifespan (manager + stream hub), error mapping."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.runs.branches import Branches
from app.runs.manager import RunManager
from app.runs.status import Conflict, Forbidden, RunNotFound, TooManyRuns, Unavailable
from app.runs.sweeps import SweepNotFound, Sweeps
from app.settings import Settings
from app.storage.metrics import InvalidQuery
from app.storage.store import StoreError
from app.web.api import router as api_router
from app.web.branch_routes import router as branch_router
from app.web.guards import BodyLimit, SecurityHeaders
from app.web.looplag import LoopLagMonitor
from app.web.pages import mount_static
from app.web.pages import router as pages_router
from app.web.presenter import PresenterHub
from app.web.stream import StreamHub
from app.web.sweep_routes import router as sweep_router
from synthgrad_core import ConfigError


def create_app(settings: Settings | None = None) -> FastAPI:
    """A fresh app with its own manager and database; tests build one each."""
    settings = settings or Settings()
    logging.getLogger("synthgrad").setLevel(settings.log_level.upper())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        manager = RunManager(settings).start()
        hub = StreamHub(
            manager,
            asyncio.get_running_loop(),
            interval=settings.flush_interval,
            max_pending=settings.stream_backlog,
            send_timeout=settings.ws_send_timeout,
        )
        loop_lag = LoopLagMonitor()
        loop_lag.start()
        app.state.manager, app.state.hub, app.state.loop_lag = manager, hub, loop_lag
        app.state.presenter = PresenterHub(manager, settings.ws_send_timeout)
        app.state.sweeps = Sweeps(manager)
        app.state.branches = Branches(manager)
        try:
            yield
        finally:
            await loop_lag.stop()
            hub.close()
            await asyncio.to_thread(manager.close)

    app = FastAPI(
        title="synthgrad",
        version="0.1.0",
        lifespan=lifespan,
        summary="Train networks with backprop, DNI, cDNI and feedback alignment, live.",
    )
    app.state.settings = settings
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)  # outermost: first
    app.include_router(api_router)
    app.include_router(sweep_router)
    app.include_router(branch_router)
    app.include_router(pages_router)
    mount_static(app)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"detail": message}, status_code=status)

    @app.exception_handler(RunNotFound)
    async def not_found(request: Request, exc: RunNotFound) -> JSONResponse:
        return error(404, f"no run with id {exc.args[0]!r}")

    @app.exception_handler(SweepNotFound)
    async def no_sweep(request: Request, exc: SweepNotFound) -> JSONResponse:
        return error(404, f"no sweep with id {exc.args[0]!r}")

    @app.exception_handler(Conflict)
    async def conflict(request: Request, exc: Conflict) -> JSONResponse:
        return error(409, str(exc))

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> JSONResponse:
        return error(403, str(exc))

    @app.exception_handler(TooManyRuns)
    async def too_many(request: Request, exc: TooManyRuns) -> JSONResponse:
        response = error(429, str(exc))
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(Unavailable)
    async def unavailable(request: Request, exc: Unavailable) -> JSONResponse:
        return error(503, str(exc))

    @app.exception_handler(StoreError)
    async def store_failed(request: Request, exc: StoreError) -> JSONResponse:
        # Logged where it happened; the client learns the cause, never a traceback.
        return error(503, f"the store failed: {exc}")

    @app.exception_handler(InvalidQuery)
    async def bad_query(request: Request, exc: InvalidQuery) -> JSONResponse:
        detail = [{"type": "value_error", "loc": ["query", exc.parameter], "msg": exc.message}]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes each input whole: a 100 MB body got a 100 MB 422,
        # and a NaN or a lone surrogate in the input could not be encoded at all (500).
        return JSONResponse({"detail": [_short(error) for error in exc.errors()]}, 422)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        # Starlette logs the traceback after this answer. The connection closes: the
        # request may have been left half read, and a kept-alive client must not send the
        # next request into it.
        response = error(500, "internal server error")
        response.headers["Connection"] = "close"
        return response

    @app.exception_handler(ConfigError)
    async def bad_config(request: Request, exc: ConfigError) -> JSONResponse:
        # The same shape FastAPI gives its own 422s, so clients handle one format.
        detail = [
            {
                "type": "value_error",
                # a field of the config, or of the body itself (a fork's `step`: part "")
                "loc": ["body", *filter(None, [getattr(exc, "part", "config")]), exc.field],
                "msg": exc.message,
                "input": None,
            }
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    return app


#: Characters of an offending input a 422 quotes.
INPUT_EXCERPT = 80


def _short(error: Any) -> dict[str, Any]:
    """A validation error with its input as a short, always encodable excerpt."""
    text = ascii(error.get("input"))
    if len(text) > INPUT_EXCERPT:
        text = text[:INPUT_EXCERPT] + "..."
    return {
        "type": error.get("type"),
        "loc": [str(part) if not isinstance(part, int) else part for part in error.get("loc", ())],
        "msg": str(error.get("msg")),
        "input": text,
    }
