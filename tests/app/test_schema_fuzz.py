"""Schemathesis over every endpoint of a live server: no 5xx, no undocumented status.

Bounded in examples (FUZZ_EXAMPLES per operation) so the suite stays quick; the
adversarial run that motivated it used 17,581 requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from app.settings import Settings
from support.live import LiveServer, live_server

FUZZ_EXAMPLES = 30


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    settings_ = Settings(
        db=str(folder / "fuzz.sqlite3"),
        executor="thread",
        max_concurrent_runs=1,
        max_total_steps=2_000,  # generated configs stay cheap
        create_rate=0,  # the fuzzer creates many runs from one address
        max_active_per_owner=0,
        data_root=str(folder),
    )
    with live_server(settings_) as server:
        yield server


def test_no_server_error_and_no_undocumented_status(fuzzed_server: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed_server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8  # every route, not an empty schema
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=fuzzed_server.url,
                checks=[not_a_server_error, status_code_conformance],
                timeout=30,
            )

        fuzz()
