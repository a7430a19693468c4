"""Waiting on real conditions: the one polling helper the tests share."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(condition: Callable[[], T], what: str, timeout: float = 300, interval: float = 0.05) -> T:
    """Call `condition()` until it returns something true and return that value; fail saying `what` never happened
    after `timeout` seconds. `interval` is the pause between polls (a poll, not a guess at how long things take)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s: {what}"
        time.sleep(interval)
