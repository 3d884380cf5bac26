"""Run the app under uvicorn: one worker, a graceful-shutdown timeout, BLAS on one thread."""

from __future__ import annotations

import uvicorn

from .main import create_app
from .settings import Settings


def run_server(settings: Settings) -> None:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        workers=1,
        timeout_graceful_shutdown=int(settings.shutdown_timeout),
        log_level="info",
        ws_per_message_deflate=settings.ws_compression,
    )
    uvicorn.Server(config).run()
