"""Fixtures of the server tests; every test's log is searched for tokens."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.runs import access
from app.settings import Settings

ADMIN = "admin-secret-token-123"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        db=str(tmp_path / "runs.sqlite3"),
        max_concurrent_runs=2,
        admin_token=ADMIN,
        max_stored_runs=50,
        max_total_steps=200_000,
    )


#: What a browser sends with its pages' requests (TestClient's host is "testserver"):
#: cookie-authenticated state changes need it.
SAME_ORIGIN = {"origin": "http://testserver"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers=SAME_ORIGIN) as test_client:
        yield test_client


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(autouse=True)
def log_has_no_tokens(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every log line of the test, searched at the end for every token the server minted."""
    minted: list[str] = [ADMIN]
    real = access.new_token

    def recording() -> str:
        token = real()
        minted.append(token)
        return token

    monkeypatch.setattr(access, "new_token", recording)
    handler = Collect()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
    leaks = [line for line in handler.lines for token in minted if token in line]
    assert not leaks, f"a token reached the log: {leaks[:3]}"


@pytest.fixture(scope="session")
def ray_instance() -> Iterator[None]:
    """One local Ray for the session (it takes seconds to start); executors join it.

    Skipped where Ray is not installed, unless SYNTHGRAD_REQUIRE_RAY is set (CI sets it).
    """
    try:
        import ray
    except ImportError:
        if os.environ.get("SYNTHGRAD_REQUIRE_RAY"):
            raise
        pytest.skip("Ray is not installed (pip install '.[ray]')")
    from app.execution.ray_executor import LOCAL_OBJECT_STORE

    ray.init(
        address="local",  # never a cluster that happens to run on this machine
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=LOCAL_OBJECT_STORE,
        log_to_driver=False,
    )
    try:
        yield
    finally:
        ray.shutdown()
