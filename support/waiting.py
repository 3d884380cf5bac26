"""One way to wait for a condition in tests, benchmarks and scripts: poll until a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float = 30.0, what: str = "condition", every: float = 0.05
) -> T:
    """Poll `predicate` until it returns something truthy (returned), or fail after `timeout` s.

    The deadline is a backstop for a hang, not a speed bound: it should sit far above
    what the wait takes on a loaded machine.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)
