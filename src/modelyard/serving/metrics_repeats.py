"""Repeated queries: which requests a worker answered recently, remembered by digest.

A request counts as repeated when a request with equal rows (equal digest, see
``metrics_compute.request_digests``) reached the same endpoint variant earlier in the same
drain, or was last seen by this worker at most ``window_s`` seconds before the drain. The
worker remembers a bounded number of digests with the time each was last seen, as two sorted
NumPy arrays, so a drain of thousands of requests looks them all up and refreshes them with a
few vectorized operations, not a dictionary operation per request.

Memory: at most ``capacity * 5 / 4`` digests (16 bytes each): past that, the ones seen
longest ago are forgotten down to ``capacity`` (so forgetting costs a sort once per
``capacity / 4`` new digests, not one per drain).
"""

from __future__ import annotations

import numpy as np

#: Recent request digests remembered per worker (for repeated-query detection).
MAX_RECENT = 20_000


class RecentDigests:
    """The digests a worker answered recently and when each was last seen."""

    def __init__(self, capacity: int = MAX_RECENT) -> None:
        self.capacity = capacity
        self._keys = np.empty(0, dtype=np.uint64)  # sorted
        self._seen = np.empty(0, dtype=np.float64)  # last seen, per key

    def __len__(self) -> int:
        return len(self._keys)

    def repeats(self, digests: np.ndarray, now: float, window_s: float) -> int:
        """How many of ``digests`` (one drain's requests of one variant, salted by it) are
        repeats; all of them are then remembered as seen ``now``."""
        distinct = np.unique(digests)  # sorted
        repeated = len(digests) - len(distinct)
        keys, seen = self._keys, self._seen
        at = np.searchsorted(keys, distinct)
        found = at < len(keys)
        found[found] = keys[at[found]] == distinct[found]
        hits = at[found]
        repeated += int(np.count_nonzero(now - seen[hits] <= window_s))
        seen[hits] = now
        fresh = ~found
        if fresh.any():
            keys = np.insert(keys, at[fresh], distinct[fresh])
            seen = np.insert(seen, at[fresh], now)
        if len(keys) > self.capacity + self.capacity // 4:
            kept = np.sort(np.argsort(seen, kind="stable")[len(keys) - self.capacity :])
            keys, seen = keys[kept], seen[kept]
        self._keys, self._seen = keys, seen
        return repeated
