"""Float64 Arrow columns into numpy without Arrow's ``to_numpy``: that one imports pandas (to
check whether it is there), ~40 MiB in every batch worker that never uses it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["fill_float64"]


def fill_float64(target: np.ndarray, chunks: Iterable[Any]) -> None:
    """Copy the float64 Arrow arrays ``chunks`` (in order) into the 1-D ``target``, nulls as
    NaN. ``target`` must be as long as the chunks together."""
    at = 0
    for chunk in chunks:
        n, offset = len(chunk), chunk.offset
        if n == 0:
            continue
        validity, values = chunk.buffers()[:2]
        if values is None or chunk.null_count == n:
            target[at : at + n] = np.nan
            at += n
            continue
        part = np.frombuffer(values, dtype=np.float64, count=offset + n)[offset:]
        if chunk.null_count:
            bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
            part = np.where(bits[offset : offset + n].astype(bool), part, np.nan)
        target[at : at + n] = part
        at += n
    if at != len(target):
        raise ValueError(f"{at} values for {len(target)} rows")
