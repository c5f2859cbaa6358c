"""Give every Python thread of a benchmarked server its Python name as its OS thread name.

Python 3.11 leaves a thread's OS name (``/proc/<pid>/task/<tid>/comm``) as the process's,
``python``, so a thread pool's ``thread_name_prefix`` (``modelyard-shadow``, ``modelyard-predict``)
cannot be seen from outside the process. ``guardrails_cost.py`` reads the CPU time of the
shadow variants' prediction thread from ``/proc``, so it starts both of its servers with this
folder on ``PYTHONPATH``: Python imports ``sitecustomize`` at start-up in every process (the
CLI, uvicorn's parent, each worker, the scheduler), and here each thread, as it starts, sets its
OS name to the first 15 bytes of its Python name (the kernel keeps 15), e.g. ``modelyard-shado``
for ``modelyard-shadow_0``. One ``prctl`` call per thread start, nothing per request; both
servers get it, so it is no part of what they differ by.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

_PR_SET_NAME = 15  # linux/prctl.h
_COMM_BYTES = 15  # TASK_COMM_LEN (16) less the terminating NUL

try:
    _prctl: Any = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: nothing to name
    _prctl = None

if _prctl is not None:
    _bootstrap_inner = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def _named_bootstrap_inner(self: threading.Thread) -> None:
        name = self.name.encode(errors="replace")[:_COMM_BYTES]
        _prctl(_PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)  # a failure leaves "python"
        _bootstrap_inner(self)

    threading.Thread._bootstrap_inner = _named_bootstrap_inner  # type: ignore[attr-defined]
