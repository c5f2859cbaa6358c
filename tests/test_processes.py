"""Stopping on a signal: :func:`modelyard.processes.set_on_signals`."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# The signal lands while the main thread holds the event's lock, where Event.wait holds it
# around its check; a handler calling stop.set() there waits for its own thread for ever.
_SIGNAL_INSIDE_WAIT = textwrap.dedent(
    """
    import os, signal, threading
    from modelyard.processes import set_on_signals

    stop = threading.Event()
    set_on_signals(stop, signal.SIGTERM, signal.SIGINT)
    with stop._cond:
        os.kill(os.getpid(), signal.{first})
        sum(range(100_000))  # bytecodes for the handler to run between
    print("first", stop.wait(60), flush=True)
    stop.clear()
    os.kill(os.getpid(), signal.{second})
    print("second", stop.wait(60), flush=True)
    """
)


def _run(first: str, second: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _SIGNAL_INSIDE_WAIT.format(first=first, second=second)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split("\n")[:2]


def test_a_signal_while_the_main_thread_holds_the_events_lock_sets_it() -> None:
    assert _run("SIGTERM", "SIGTERM") == ["first True", "second True"]


def test_each_signal_named_sets_the_event_every_time() -> None:
    assert _run("SIGINT", "SIGTERM") == ["first True", "second True"]
