"""Run the app under uvicorn: one worker, a graceful-shutdown timeout, BLAS on one thread."""

from __future__ import annotations

import logging

import uvicorn

from .main import create_app
from .settings import Settings

#: The server's own log lines look like uvicorn's.
LOG_FORMAT = "%(levelname)-9s %(name)s: %(message)s"


def run_server(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        workers=1,
        timeout_graceful_shutdown=int(settings.shutdown_timeout),
        log_level=settings.log_level.lower(),
        ws_per_message_deflate=settings.ws_compression,
    )
    uvicorn.Server(config).run()
