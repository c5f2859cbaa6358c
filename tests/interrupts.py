"""Starting a child that a test will interrupt with SIGINT, as Ctrl-C in a terminal would.

A process started with SIGINT ignored passes that on to its children, and Python does not turn
an ignored SIGINT into ``KeyboardInterrupt``: a test run from a background job of a shell
(where SIGINT is ignored) would see its child shrug off the signal. While the child starts,
the parent catches SIGINT (a handler, not "ignore"), so the child begins with the default.
"""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def interruptible(args: list[str], **popen: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(args, **popen)`` with SIGINT at its default in the child. Call it
    from the main thread (as pytest runs tests)."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.SIG_IGN:
        return subprocess.Popen(args, **popen)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(args, **popen)
    finally:
        signal.signal(signal.SIGINT, previous)
