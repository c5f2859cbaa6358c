"""Give an older modelyard server the GC policy of the current one, for ``v2_serving.py``.

The current serving app freezes its startup heap (``gc.collect(); gc.freeze()`` once the plan
is loaded; see ``modelyard.serving.app``), so full collections no longer stop a worker's event
loop for 100-400 ms. Commit 329b317 predates that. To compare the inference core and nothing
else, the benchmark starts the older server with this folder on ``PYTHONPATH``: Python imports
``sitecustomize`` at start-up in every process (the CLI, uvicorn's parent, each worker), and
here it wraps uvicorn's ``Server.startup`` (which runs the app's lifespan startup, then binds)
so that each worker freezes its heap once started, as the current code does. Each worker
prints one ``MARKER`` line to stderr, which the benchmark counts in the server's log.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any

MARKER = "v2-bench: gc.freeze after startup"

try:
    from uvicorn.server import Server
except ImportError:  # a process that has no uvicorn: nothing to do
    Server = None

if Server is not None:
    _startup = Server.startup

    async def _startup_then_freeze(self: Any, sockets: Any = None) -> None:
        await _startup(self, sockets=sockets)
        gc.collect()
        gc.freeze()
        print(f"{MARKER}: pid {os.getpid()}, {gc.get_freeze_count()} objects", file=sys.stderr)

    Server.startup = _startup_then_freeze  # type: ignore[method-assign]
