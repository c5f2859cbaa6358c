"""Waiting in tests: poll for a condition with a generous deadline, never sleep for a guess.

A fixed sleep followed by an assert fails on a machine slower than the author's, and an assert
on elapsed time fails on a loaded one. Tests instead poll what they can observe until it holds;
on a fast machine that returns in milliseconds, on a slow one it waits as long as it must, and
when the condition never comes the failure shows the last state seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: How long a test waits for a condition before it fails: generous, as a loaded CI machine
#: (two test workers on two cores, each starting servers and job processes) is slow.
DEADLINE_S = 60.0
POLL_S = 0.05


def wait_for(
    what: str,
    observe: Callable[[], T],
    until: Callable[[T], Any] = bool,
    *,
    timeout: float = DEADLINE_S,
    interval: float = POLL_S,
) -> T:
    """Call ``observe`` until ``until`` holds for what it returned; return that observation.

    Args:
        what: The condition in words, for the failure message ("both workers serving v2").
        observe: Reads the current state (a status, a list of jobs, a count …). Exceptions it
            raises are not caught: an error while observing is a failure, not "not yet".
        until: Whether an observation is the one waited for; by default, its truth value.
        timeout: Seconds to wait before failing.
        interval: Seconds between observations.

    Returns:
        The first observation for which ``until`` held.

    Raises:
        AssertionError: when ``timeout`` passed first; the message names ``what`` and shows
            the last observation.
    """
    deadline = time.monotonic() + timeout
    while True:
        seen = observe()
        if until(seen):
            return seen
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what}; last seen: {seen!r}"
            )
        time.sleep(interval)
