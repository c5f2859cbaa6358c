"""Concurrent registration from many processes never duplicates or skips a version number.

The processes start together against an empty database, so they also race on the migration.
"""

from __future__ import annotations

import multiprocessing as mp

from modelyard.domain import ModelRef, Source, Trust
from modelyard.storage.base import NewVersion
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.store import SqlMetadataStore

PROCESSES = 8
PER_PROCESS = 5


def _register(url: str, start: mp.synchronize.Event, count: int) -> list[int]:  # type: ignore[name-defined]
    start.wait(30)
    store = SqlMetadataStore(make_engine(url))
    new = NewVersion(
        name="racer",
        flavor="xgboost",
        model_format="ubj",
        artifact_digest="cd" * 32,
        size_bytes=1,
        source=Source("upload"),
        trust=Trust(),
    )
    numbers = [store.create_version(new).version for _ in range(count)]
    store.close()
    return numbers


def test_parallel_registration_is_dense_and_unique(empty_db_url: str) -> None:
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Event()
        with ctx.Pool(PROCESSES) as pool:
            pending = [
                pool.apply_async(_register, (empty_db_url, start, PER_PROCESS))
                for _ in range(PROCESSES)
            ]
            start.set()
            results = [p.get(timeout=120) for p in pending]
    numbers = sorted(n for chunk in results for n in chunk)
    assert numbers == list(range(1, PROCESSES * PER_PROCESS + 1))
    assert all(chunk == sorted(chunk) for chunk in results), "each process sees increasing numbers"
    store = SqlMetadataStore(make_engine(empty_db_url))
    assert store.get_version(ModelRef("racer")).version == PROCESSES * PER_PROCESS
    store.close()
