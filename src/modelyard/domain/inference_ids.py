"""Inference ids: 32 hex digits that name one request and say when it was made.

An id is a UUIDv7 (RFC 9562) written without dashes: 48 bits of Unix time in milliseconds,
then the version and variant bits, and 74 random bits. Random enough that two servers never
hand out the same id, and time-ordered, so that ground truth arriving days later finds its
prediction by reading the one or two hours of captured rows around :func:`issued_at` instead
of every captured row, and can be told "expired" without any lookup.

Servers make every inference id themselves; an id a caller sends with its request (SageMaker
``InferenceId``) is captured beside ours, not used as ours. An id of another form is not ours:
:func:`issued_at` returns None for it, and feedback looks it up among the callers' ids.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime

_HEX = frozenset("0123456789abcdefABCDEF")
_VERSION = 0x7
#: The hex digit holding the variant bits ``10`` and two random bits.
_VARIANT_DIGITS = "89ab"
_VARIANT = 0b10
#: Times before this are not ids this module made (it did not exist then).
_EARLIEST_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
_LATEST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, datetime's last


#: Random bytes read from the OS at a time: ``os.urandom`` releases the GIL around its system
#: call, so one call per request hands the GIL to any busy thread of the server (a shadow's, the
#: capture writer's) and waits to get it back: 8 µs a request with a shadow at 100 %, measured
#: in process. One read per 400 ids costs no such hand-over.
_POOL_BYTES = 4000
_pool = b""
_used = 0
_lock = threading.Lock()


def _forget_pool() -> None:
    """In a forked child: never reuse the parent's bytes (two processes, the same ids)."""
    global _pool, _used
    _pool, _used = b"", 0


os.register_at_fork(after_in_child=_forget_pool)


def _random_bytes(count: int) -> bytes:
    global _pool, _used
    with _lock:
        if _used + count > len(_pool):
            _pool, _used = os.urandom(_POOL_BYTES), 0
        start = _used
        _used += count
        return _pool[start:_used]


def new_inference_id() -> str:
    """A fresh id: UUIDv7 of now, as 32 lower-case hex digits."""
    # Built as text: a third cheaper than assembling the 128-bit integer (it runs per request).
    rand = _random_bytes(10)
    digits = rand.hex()
    variant = _VARIANT_DIGITS[rand[9] & 0b11]
    return f"{time.time_ns() // 1_000_000:012x}7{digits[:3]}{variant}{digits[4:19]}"


def canonical(inference_id: str) -> str:
    """The form servers write of an id given in another spelling of the same UUID: upper-case
    digits (as some tools print hex), the dashed 8-4-4-4-12 form (``str(uuid.UUID(...))``, a
    database's uuid column), surrounding spaces. Anything else is returned as it is."""
    text = inference_id.strip()
    if len(text) == 36 and [len(part) for part in text.split("-")] == [8, 4, 4, 4, 12]:
        text = text.replace("-", "")
    if len(text) == 32 and _HEX.issuperset(text):
        return text.lower()
    return inference_id


def issued_at(inference_id: str) -> datetime | None:
    """When the id was made, to the millisecond; None when it is not an id of this form
    (wrong length, not hex, another UUID version, or a time before this scheme existed)."""
    if len(inference_id) != 32 or not _HEX.issuperset(inference_id):
        return None
    value = int(inference_id, 16)
    if value >> 76 & 0xF != _VERSION or value >> 62 & 0b11 != _VARIANT:
        return None
    millis = value >> 80
    if not _EARLIEST_MS <= millis <= _LATEST_MS:
        return None
    return datetime.fromtimestamp(millis / 1000, tz=UTC)
