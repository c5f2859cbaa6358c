"""Finding the captured predictions that feedback items name.

Inference ids made by modelyard servers carry their time (:mod:`modelyard.domain.inference_ids`),
so an item is looked up in the few minutes of captured rows around that time, and an id older
than the label window is expired without a read. A batch is one pass over the capture files:
the folders of every id's minutes are listed once and each file is read once, with only the
columns needed.

Servers never take an inference id from a client (SageMaker's and V2's own request ids are not
the inference id: every id is made by :func:`~modelyard.domain.inference_ids.new_inference_id`),
so an id without a time of ours (or with a time in the future) names no captured row: it is
unknown at once, without any read, however many of them a batch holds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from modelyard.domain.capture import EVERY_OUTPUT, OUTPUT_PREFIX, SINGLE_OUTPUT, partition_hour
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
    """The captured rows of the ids found (id → row index → row), the ids too old to look up
    (id → when it was made), the ids no server of ours made (id → why), and the damaged
    captured files left out of the read (``path: why``), which may hold ids not found."""

    found: dict[str, dict[int, Captured]]
    expired: dict[str, datetime]
    foreign: dict[str, str]
    damaged: tuple[str, ...] = ()

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
    """Find ``ids`` among the rows ``endpoint`` captured in ``[oldest, now]``, with every
    output column their files have (not only those the models' signatures name: a booster
    registered without an example names none, yet its answers are captured as ``output.0``
    …)."""
    expired: dict[str, datetime] = {}
    foreign: dict[str, str] = {}
    timed: list[datetime] = []
    for inference_id in ids:
        made = issued_at(inference_id)
        if made is None:
            foreign[inference_id] = (
                "this is not an inference id a modelyard server made (those are 32 hex digits "
                "that carry their time, and servers take no id from clients), so no captured "
                "prediction has it"
            )
        elif made > now + SLACK:
            foreign[inference_id] = (
                f"this id says it was made at {made:%Y-%m-%d %H:%M:%S} UTC, in the future, so "
                "no captured prediction has it"
            )
        elif made < oldest:
            expired[inference_id] = made
        else:
            timed.append(made)
    ranges = spans(timed, oldest, now)
    found: dict[str, dict[int, Captured]] = {}
    if ranges:
        wanted = set(ids) - set(expired) - set(foreign)
        # A damaged file must not refuse the labels of the rows in the files beside it
        # (for good: a retry reads the same file); only ids it may hold go unfound.
        damaged: list[str] = []
        rows = capture.find(
            endpoint, wanted, spans=ranges, columns=[*_META, EVERY_OUTPUT], skipped=damaged
        )
        if damaged:
            log.warning(
                "feedback of %s left out %d damaged captured file(s): %s",
                endpoint, len(damaged), "; ".join(damaged),
            )  # fmt: skip
        outputs = [c for c in rows.columns if c.startswith(OUTPUT_PREFIX)]
        for inference_id, captured in _records(rows, outputs):
            by_row = found.setdefault(inference_id, {})
            kept = by_row.get(captured.row)
            # A request copied to a shadow variant has two captured rows per row, one per
            # variant, with the same id. The label belongs to the answer the caller got: the
            # production variant's, the earlier of the two (a copy starts only once the
            # answer is settled, serving/shadow.py).
            if kept is None or captured.time < kept.time:
                by_row[captured.row] = captured
        return Lookup(found, expired, foreign, tuple(damaged))
    return Lookup(found, expired, foreign)


def _records(frame: pd.DataFrame, outputs: Sequence[str]) -> Iterable[tuple[str, Captured]]:
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
            str(record["inference_id"]),
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
