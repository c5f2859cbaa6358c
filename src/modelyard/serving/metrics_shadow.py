"""The shadow fan-out's counters in a worker's metrics.

A worker's :class:`~modelyard.serving.shadow.ShadowWrapper` counts the copies of requests it
dropped, per endpoint and shadow variant, since it started. At each drain,
:class:`ShadowFold` reads them and adds what grew since the previous drain to the worker's
``modelyard_shadow_dropped_total`` (so the exposition's sums over workers, dead ones included,
never go back), shows every served shadow's series from the start (at zero, so a rate is
defined before the first drop), and sets the live gauge of copies waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from modelyard.serving import metrics_names as m

if TYPE_CHECKING:
    from modelyard.serving.metrics_files import PromWriter
    from modelyard.serving.shadow import DropKey, ShadowCounters
    from modelyard.serving.table import RouteTable


class ShadowFold:
    """Adds a shadow fan-out's progress to a worker's metrics, one drain at a time.

    Args:
        read: The fan-out's :meth:`~modelyard.serving.shadow.ShadowWrapper.counters`
            (cumulative since it started; read from the drain thread).
    """

    def __init__(self, read: Callable[[], ShadowCounters]) -> None:
        self._read = read
        self._seen: dict[DropKey, int] = {}

    def drain(self, writer: PromWriter, table: RouteTable) -> None:
        """Count the drops since the previous drain, and set the copies waiting."""
        counters = self._read()
        for endpoint in table.endpoints.values():
            for variant in endpoint.variants.values():
                if variant.shadow is not None:
                    labels = (endpoint.name, variant.name, str(variant.served.spec.version))
                    writer.inc(m.SHADOW_DROPPED, labels, 0)
        for key, now in counters.dropped.items():
            grown = now - self._seen.get(key, 0)
            if grown > 0:
                writer.inc(m.SHADOW_DROPPED, (key[0], key[1], str(key[2])), grown)
                self._seen[key] = now
        writer.set(m.SHADOW_QUEUE, (), max(counters.queued, 0))
