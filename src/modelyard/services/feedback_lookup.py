"""Finding the captured predictions that feedback items name.

Inference ids made by modelyard servers carry their time (:mod:`modelyard.domain.inference_ids`),
so an item is looked up in the few minutes of captured rows around that time, and an id older
than the label window is expired without a read. A batch is one pass over the capture files:
the folders of every id's minutes are listed once and each file is read once, with only the
columns needed.

Servers make every inference id themselves
(:func:`~modelyard.domain.inference_ids.new_inference_id`); an id with a time of ours in the
future names no captured row: it is unknown at once. An id without a time of ours may be one a
caller sent with its request (SageMaker ``InferenceId``, captured as ``caller_inference_id``):
those of a batch are looked up together, in one pass over the files of the whole label window
(``[oldest, now]``) that may hold callers' ids (a file named as holding none is not opened, so
an endpoint whose callers send no ids costs only the window's folder listings), reading each
file's caller ids and times first and its other columns only when one matches. A caller's id
found on the rows of one request stands for that request's id of ours; one that several
requests carry (callers may reuse ids) is ambiguous and labels nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from modelyard.domain.capture import (
    CALLER_ID,
    EVERY_OUTPUT,
    OUTPUT_PREFIX,
    SINGLE_OUTPUT,
    partition_hour,
)
from modelyard.domain.inference_ids import issued_at
from modelyard.services.capture_port import CaptureReader

if TYPE_CHECKING:
    import pandas as pd

#: How far a captured row's time may be from its id's time: the request's own duration, and
#: the clocks of the machine that made the id and the one that captured (the same server).
SLACK = timedelta(minutes=5)
_META = ("inference_id", "row", "time", "variant", "model", "model_version")

log = logging.getLogger("modelyard.feedback")


@dataclass(frozen=True, slots=True)
class Captured:
    """One captured row: who answered, when, and what it predicted."""

    row: int
    time: datetime
    variant: str
    model: str
    model_version: int
    prediction: Any


@dataclass(frozen=True, slots=True)
class Lookup:
    """The captured rows of the ids found (id as given → row index → row), the ids too old to
    look up (id → when it was made), the ids no captured row can have (id → why), the damaged
    captured files left out of the read (``path: why``), which may hold ids not found; and of
    the callers' ids, those found (caller's id → our id of the request that carries it) and
    those several requests carry (caller's id → how many)."""

    found: dict[str, dict[int, Captured]]
    expired: dict[str, datetime]
    foreign: dict[str, str]
    damaged: tuple[str, ...] = ()
    ours: dict[str, str] = field(default_factory=dict)
    ambiguous: dict[str, int] = field(default_factory=dict)

    def our_id(self, inference_id: str) -> str:
        """Our id of the request ``inference_id`` (ours, or a caller's that was found)
        names."""
        return self.ours.get(inference_id, inference_id)

    def damaged_near(self, made: datetime | None) -> tuple[str, ...]:
        """The damaged files that may hold a row of an id made at ``made``: those of the
        partition hours within :data:`SLACK` of it (all of them when its time is unknown)."""
        if made is None:
            return self.damaged
        hours = {
            (t.replace(minute=0, second=0, microsecond=0)) for t in (made - SLACK, made + SLACK)
        }
        return tuple(d for d in self.damaged if partition_hour(d.partition(": ")[0]) in hours)


def spans(
    times: Iterable[datetime], oldest: datetime, now: datetime
) -> list[tuple[datetime, datetime]]:
    """The time ranges to read for ids made at ``times``: each widened by :data:`SLACK`, cut
    to ``[oldest, now]``, overlapping ones merged, in order."""
    merged: list[tuple[datetime, datetime]] = []
    for t in sorted(times):
        start, end = max(t - SLACK, oldest), min(t + SLACK, now)
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def lookup(
    capture: CaptureReader,
    endpoint: str,
    ids: Sequence[str],
    *,
    oldest: datetime,
    now: datetime,
) -> Lookup:
    """Find ``ids`` (ours, or callers' ids) among the rows ``endpoint`` captured in
    ``[oldest, now]``, with every output column their files have (not only those the models'
    signatures name: a booster registered without an example names none, yet its answers are
    captured as ``output.0`` …)."""
    expired: dict[str, datetime] = {}
    foreign: dict[str, str] = {}
    timed: dict[str, datetime] = {}
    callers: list[str] = []
    for inference_id in ids:
        made = issued_at(inference_id)
        if made is None:
            callers.append(inference_id)  # not ours: perhaps the id a caller sent
        elif made > now + SLACK:
            foreign[inference_id] = (
                f"this id says it was made at {made:%Y-%m-%d %H:%M:%S} UTC, in the future, so "
                "no captured prediction has it"
            )
        elif made < oldest:
            expired[inference_id] = made
        else:
            timed[inference_id] = made
    found: dict[str, dict[int, Captured]] = {}
    # A damaged file must not refuse the labels of the rows in the files beside it (for
    # good: a retry reads the same file); only ids it may hold go unfound.
    damaged: list[str] = []
    ranges = spans(timed.values(), oldest, now)
    if ranges:
        rows = capture.find(
            endpoint, set(timed), spans=ranges, columns=[*_META, EVERY_OUTPUT], skipped=damaged
        )
        _keep(found, _records(rows, "inference_id"))
    ours: dict[str, str] = {}
    ambiguous: dict[str, int] = {}
    if callers and oldest < now:
        rows = capture.find(
            endpoint,
            set(callers),
            spans=[(oldest, now)],
            columns=[*_META, CALLER_ID, EVERY_OUTPUT],
            skipped=damaged,
            key=CALLER_ID,
        )
        requests: dict[str, set[str]] = {}
        for caller, request in zip(rows[CALLER_ID], rows["inference_id"], strict=True):
            requests.setdefault(str(caller), set()).add(str(request))
        for caller, made_by in requests.items():
            if len(made_by) > 1:  # a reused id: its label could join the wrong prediction
                ambiguous[caller] = len(made_by)
            else:
                ours[caller] = next(iter(made_by))
        _keep(found, (r for r in _records(rows, CALLER_ID) if r[0] in ours))
    if damaged:
        log.warning(
            "feedback of %s left out %d damaged captured file(s): %s",
            endpoint, len(damaged), "; ".join(damaged),
        )  # fmt: skip
    return Lookup(found, expired, foreign, tuple(damaged), ours, ambiguous)


def _keep(found: dict[str, dict[int, Captured]], records: Iterable[tuple[str, Captured]]) -> None:
    """Add ``records`` to ``found`` by id and row."""
    for inference_id, captured in records:
        by_row = found.setdefault(inference_id, {})
        kept = by_row.get(captured.row)
        # A request copied to a shadow variant has two captured rows per row, one per
        # variant, with the same id (ours, and the caller's). The label belongs to the answer
        # the caller got: the production variant's, the earlier of the two (a copy starts
        # only once the answer is settled, serving/shadow.py).
        if kept is None or captured.time < kept.time:
            by_row[captured.row] = captured


def _records(frame: pd.DataFrame, key: str) -> Iterable[tuple[str, Captured]]:
    """Each row of ``frame`` as ``(its id in column key, the row)``."""
    outputs = [c for c in frame.columns if c.startswith(OUTPUT_PREFIX)]
    single = SINGLE_OUTPUT if SINGLE_OUTPUT in outputs else None
    several = [c for c in outputs if c != SINGLE_OUTPUT]
    for values in frame.itertuples(index=False, name=None):
        record = dict(zip(frame.columns, values, strict=True))
        # One row has the outputs of the version that answered it: either the one column or
        # the numbered ones (the columns of other versions are null in it).
        prediction: Any = _plain(record[single]) if single else None
        if prediction is None:
            numbered = [_plain(record[c]) for c in several]
            prediction = numbered if any(v is not None for v in numbered) else None
            while prediction and prediction[-1] is None:
                prediction.pop()
        yield (
            str(record[key]),
            Captured(
                row=int(record["row"]),
                time=record["time"].to_pydatetime(),
                variant=str(record["variant"]),
                model=str(record["model"]),
                model_version=int(record["model_version"]),
                prediction=prediction,
            ),
        )


def _plain(value: Any) -> Any:
    """A captured value as JSON holds it: numpy scalars as Python ones, NaN and null as None."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return None
    item = getattr(value, "item", None)
    return item() if callable(item) else value
