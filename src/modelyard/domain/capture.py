"""Data capture: which share of a variant's requests is recorded, and which fields are redacted.

A variant's :class:`CaptureConfig` is part of its endpoint config (a change to it is a new
config like any other). Captured rows land as Parquet files under a capture root, one folder
per endpoint, date and hour (:func:`partition`), with the columns named here
(:data:`METADATA_COLUMNS`, then ``input.<feature>`` and ``output.<name>``): the data plane
writes them, the capture service reads them, and both agree through this module.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from modelyard.domain.numbers import parse_percent_text
from modelyard.errors import InvalidInput

#: The folder of the artifact store's root that holds captured rows by default.
CAPTURE_FOLDER = "capture"

#: The columns every captured row has, in order, with their Arrow types (as text).
#: ``caller_inference_id`` (:data:`CALLER_ID`) is in a file only when one of its rows was sent
#: with an id of the caller's own (SageMaker ``InferenceId``); readers take a file without it
#: as all null.
METADATA_COLUMNS: dict[str, str] = {
    "inference_id": "string",
    "time": "timestamp[us, tz=UTC]",
    "variant": "string",
    "model": "string",
    "model_version": "int64",
    "latency_ms": "float64",
    "row": "int32",
    "protocol": "string",
    "caller_inference_id": "string",
}
#: The column of the id a caller gave its request, beside ours (``inference_id``).
CALLER_ID = "caller_inference_id"
INPUT_PREFIX = "input."
OUTPUT_PREFIX = "output."
#: The output column of a model that returns one value per row.
SINGLE_OUTPUT = OUTPUT_PREFIX + "prediction"

#: The end of the name of a captured file whose rows carry callers' ids, and of one whose rows
#: carry none (both still ``*.parquet`` to every reader): a lookup by a caller's id opens only
#: the files that may hold one (:func:`may_hold_caller_ids`), not every file of its window.
WITH_CALLER_IDS = ".ids.parquet"
WITHOUT_CALLER_IDS = ".noids.parquet"

_PARTITION = re.compile(r"date=(\d{4})-(\d{2})-(\d{2})/hour=(\d{2})")
#: A day of which a read needs at most this many hours is listed hour folder by hour folder;
#: with more, its date folder is listed once (and files of other hours skipped).
_HOUR_FOLDERS = 6


class Redaction(enum.StrEnum):
    """What happens to a redacted field's values: ``hash`` keeps a salted SHA-256 (equal
    values stay equal, so they can still be grouped and joined), ``drop`` leaves null."""

    HASH = "hash"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class RedactedField:
    """One input field (a feature name, or its column index for a model without names)
    whose captured values are replaced."""

    name: str
    mode: Redaction = Redaction.HASH

    @classmethod
    def parse(cls, text: str) -> RedactedField:
        """``ssn`` (hashed), ``ssn:hash`` or ``ssn:drop``; a name holding ``:`` takes an
        explicit mode (``a:b:hash``).

        Raises:
            InvalidInput: an empty name or an unknown mode, naming the text.
        """
        name, sep, mode = text.rpartition(":")
        if not sep:
            name, mode = text, Redaction.HASH.value
        if mode not in {m.value for m in Redaction}:
            raise InvalidInput(
                f"unknown redaction {mode!r} in {text!r}: write FIELD, FIELD:hash or FIELD:drop "
                "(a field whose name holds ':' needs the mode, as in 'a:b:hash')"
            )
        if not name.strip():
            raise InvalidInput(f"redacted field {text!r} has no name")
        return cls(name, Redaction(mode))

    def __str__(self) -> str:
        return f"{self.name}:{self.mode.value}"


@dataclass(frozen=True, slots=True)
class KeepCapture:
    """An update's capture that keeps the endpoint's, as the SageMaker SDK's
    ``update_endpoint`` keeps an endpoint's ``DataCaptureConfig``: each new variant the share
    of the current variant of its name, else the largest current share (``percent``: that
    share for every one instead), and every current redaction on a field its model has."""

    percent: float | None = None


@dataclass(frozen=True, slots=True)
class CaptureConfig:
    """How one variant captures: ``percent`` of its requests (0 = off, 100 = all; each
    request is sampled on its own), with the ``redact`` fields' values replaced."""

    percent: float = 0.0
    redact: tuple[RedactedField, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.percent, bool) or not isinstance(self.percent, int | float):
            raise InvalidInput(f"capture percent must be a number, got {self.percent!r}")
        if not math.isfinite(self.percent) or not 0 <= self.percent <= 100:
            raise InvalidInput(f"capture percent must be 0..100, got {self.percent:g}")
        seen: set[str] = set()
        for item in self.redact:
            if item.name in seen:
                raise InvalidInput(f"redacted field {item.name!r} is given twice; give it once")
            seen.add(item.name)

    @property
    def enabled(self) -> bool:
        return self.percent > 0

    def mode(self, field: str) -> Redaction | None:
        """How ``field`` is redacted, or None when its values are kept."""
        return next((r.mode for r in self.redact if r.name == field), None)

    @classmethod
    def parse(cls, percent: str | float, redact: Any = ()) -> CaptureConfig:
        """A config from user text: ``percent`` as ``10``, ``2.5`` or ``10%``; ``redact`` as
        texts for :meth:`RedactedField.parse`.

        Raises:
            InvalidInput: naming the value that is wrong.
        """
        return cls(parse_percent(percent), tuple(RedactedField.parse(str(r)) for r in redact))

    def describe(self) -> str:
        """``10% of requests, redacting ssn (hash), email (drop)``, or ``off``."""
        if not self.enabled:
            return "off"
        text = f"{self.percent:g}% of requests"
        if self.redact:
            text += ", redacting " + ", ".join(f"{r.name} ({r.mode.value})" for r in self.redact)
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "percent": self.percent,
            "redact": [{"name": r.name, "mode": r.mode.value} for r in self.redact],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CaptureConfig:
        data = data or {}
        return cls(
            percent=float(data.get("percent", 0.0)),
            redact=tuple(
                RedactedField(str(r["name"]), Redaction(r.get("mode", "hash")))
                for r in data.get("redact", ())
            ),
        )


#: Capture off: the default of every variant.
NO_CAPTURE = CaptureConfig()


def parse_percent(value: str | float) -> float:
    """``10``, ``2.5`` or ``10%`` → 10.0, 2.5, 10.0.

    Raises:
        InvalidInput: not a number, or outside 0..100.
    """
    try:
        percent = parse_percent_text(str(value))
    except ValueError:
        raise InvalidInput(
            f"capture percent must be a number from 0 to 100, got {str(value)!r}"
        ) from None
    if not math.isfinite(percent) or not 0 <= percent <= 100:
        raise InvalidInput(f"capture percent must be 0..100, got {str(value)!r}")
    return percent


def input_column(feature: str) -> str:
    return INPUT_PREFIX + feature


#: A column name a read of captured rows takes for every output column the rows have (their
#: number is the answering version's: its signature may not say, a booster registered without
#: an input example, say), in :func:`output_order`.
EVERY_OUTPUT = OUTPUT_PREFIX + "*"


def output_order(name: str) -> tuple[int, int, str]:
    """The sort key of output columns: ``output.prediction``, then ``output.0``, ``output.1``
    … by number, then any other by name."""
    if name == SINGLE_OUTPUT:
        return (0, 0, "")
    tail = name.removeprefix(OUTPUT_PREFIX)
    if tail.isascii() and tail.isdigit():
        return (1, int(tail), "")
    return (2, 0, tail)


def output_columns(count: int) -> list[str]:
    """``output.prediction`` for one output column, else ``output.0`` … ``output.<count-1>``."""
    if count == 1:
        return [SINGLE_OUTPUT]
    return [f"{OUTPUT_PREFIX}{i}" for i in range(count)]


def partition(endpoint: str, when: datetime) -> str:
    """The folder (relative to the capture root) of rows captured at ``when`` (UTC)."""
    when = when.astimezone(UTC)
    return f"{endpoint}/date={when:%Y-%m-%d}/hour={when:%H}"


def partition_hour(path: str) -> datetime | None:
    """The UTC hour a captured file's path (``…/date=2026-01-31/hour=07/…``) belongs to, or
    None when the path is not in a partition folder."""
    found = _PARTITION.search(path)
    if found is None:
        return None
    year, month, day, hour = (int(g) for g in found.groups())
    try:
        return datetime(year, month, day, hour, tzinfo=UTC)
    except ValueError:
        return None


def captured_file_suffix(caller_ids: bool) -> str:
    """The end of a captured file's name: :data:`WITH_CALLER_IDS` when some of its rows carry
    a caller's id, else :data:`WITHOUT_CALLER_IDS`."""
    return WITH_CALLER_IDS if caller_ids else WITHOUT_CALLER_IDS


def may_hold_caller_ids(path: str) -> bool:
    """Whether the captured file ``path`` may hold callers' ids: all but those named as
    holding none. A file named before the marks (``….parquet``: servers of earlier versions,
    still writing during a rolling upgrade) may hold the column, so it is read (its footer
    says); a cut-over time would lose the ids in an old server's later files."""
    return not path.endswith(WITHOUT_CALLER_IDS)


_LAST_HOUR = datetime.max.replace(minute=0, second=0, microsecond=0, tzinfo=UTC)


def window_folders(endpoint: str, spans: Iterable[tuple[datetime, datetime]]) -> list[str]:
    """The partition folders (relative to the capture root) that can hold rows of ``endpoint``
    captured in any of ``spans`` ([start, end) each, aware times): a ``date=`` folder per day
    needing many hours, ``date=…/hour=`` folders for a day needing few; sorted, each once."""
    hours: dict[datetime, set[int]] = {}
    for start, end in spans:
        hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        while hour < end:
            day = hour.replace(hour=0)
            hours.setdefault(day, set()).add(hour.hour)
            if hour >= _LAST_HOUR:  # the last hour a datetime holds: no next one
                break
            hour += timedelta(hours=1)
    folders: list[str] = []
    for day, needed in sorted(hours.items()):
        date = f"{endpoint}/date={day:%Y-%m-%d}"
        if len(needed) > _HOUR_FOLDERS:
            folders.append(date)
        else:
            folders.extend(f"{date}/hour={h:02d}" for h in sorted(needed))
    return folders
