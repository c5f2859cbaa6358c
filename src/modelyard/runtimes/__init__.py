"""Model-format runtimes ("flavors"), found by name through entry points.

Each flavor lives in its own module and is registered under the ``modelyard.runtimes``
entry-point group, so a third-party package can add one without touching modelyard. Nothing
here imports a model library: a flavor's module, and its library, load on first lookup.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from modelyard.errors import UnknownFlavor
from modelyard.runtimes.base import LoadedModel, Runtime, SavedModel

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = ["LoadedModel", "Runtime", "SavedModel", "available_flavors", "get_runtime"]

GROUP = "modelyard.runtimes"

# Runtimes are stateless, so one instance per flavor serves every caller and thread.
_cache: dict[str, Runtime] = {}
_lock = threading.Lock()


def _entry_points() -> dict[str, EntryPoint]:
    # Imported here: importlib.metadata costs ~10 ms, and only a lookup needs it (a CLI read
    # command imports this module through the registry service, and never looks one up).
    from importlib.metadata import entry_points

    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        # Two distributions claiming one name: the first one installed wins, deterministically.
        found.setdefault(ep.name, ep)
    return found


def available_flavors() -> list[str]:
    """The names of every installed flavor, sorted."""
    return sorted(_entry_points())


def get_runtime(flavor: str) -> Runtime:
    """Return the (cached) runtime registered for ``flavor``.

    Raises:
        UnknownFlavor: when no installed runtime has that name; the message lists those that do.
        MissingDependency: never here; a runtime raises it when it first needs its library.
    """
    with _lock:
        cached = _cache.get(flavor)
        if cached is not None:
            return cached
        eps = _entry_points()
        ep = eps.get(flavor)
        if ep is None:
            known = ", ".join(sorted(eps)) or "none installed"
            raise UnknownFlavor(f"unknown flavor {flavor!r}; available flavors: {known}")
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Runtime)):
            raise UnknownFlavor(
                f"flavor {flavor!r} is registered as {ep.value!r}, which is not a Runtime class"
            )
        runtime = _cache[flavor] = cls()
        return runtime
