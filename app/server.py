"""Run the app under uvicorn: one worker, a graceful-shutdown timeout, BLAS on one thread."""

from __future__ import annotations

import logging
from typing import Any

import uvicorn

from app.main import create_app
from app.settings import Settings
from app.web.guards import guarded_protocol, install_log_guard

#: The server's own log lines look like uvicorn's.
LOG_FORMAT = "%(levelname)-9s %(name)s: %(message)s"


def uvicorn_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """uvicorn's config for `app`: one worker, guarded connections, settings' timeouts."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "workers": 1,
        "timeout_graceful_shutdown": int(settings.shutdown_timeout),
        "log_level": settings.log_level.lower(),
        "ws_per_message_deflate": settings.ws_compression,
        "http": guarded_protocol(settings.header_timeout, settings.max_connections_per_address),
        "timeout_keep_alive": 5,
    }
    return uvicorn.Config(app, **{**options, **overrides})


def run_server(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    config = uvicorn_config(create_app(settings), settings)
    install_log_guard()
    uvicorn.Server(config).run()
