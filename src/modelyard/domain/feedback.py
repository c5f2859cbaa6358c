"""Ground truth ("feedback"): labels sent for predictions already made, named by inference id.

One item labels one row of one request: ``{"inference_id": "…", "label": 1}``, with ``"row": 2``
for the third row of a request that sent several. The id is ours (the server's
``x-modelyard-inference-id``) or the one the caller sent with the request (SageMaker
``InferenceId``, captured as ``caller_inference_id``). A label is a JSON scalar (a number, a string
or a boolean); whether it fits the model (a number for a regressor, one of its classes for a
classifier) is the feedback service's to judge. A later label for the same inference id and row
replaces the earlier one.

Each item of a batch gets its own :class:`FeedbackOutcome`: accepted, unknown (no captured
prediction has that id and row), expired (the prediction is older than labels are taken
for) or ambiguous (a caller's id that several captured requests carry: the label is not
stored, as it could join the wrong prediction). The JSON forms (``to_dict``) are what the
HTTP route, the CLI's ``--json`` and the Python API return.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelyard.domain.inference_ids import canonical, issued_at
from modelyard.errors import InvalidInput, PayloadTooLarge

Label = str | int | float | bool
"""A label: a JSON scalar. ``None`` (JSON null) is not a label."""

#: The most items one feedback call takes (an HTTP request, one CLI batch).
MAX_ITEMS = 10_000
#: The longest inference id and string label taken, in characters.
MAX_ID_CHARS = 128
MAX_LABEL_CHARS = 1000
_ITEM_KEYS = frozenset({"inference_id", "label", "row"})
_MAX_ROW = 2**31 - 1
#: Whole-number labels are kept as JSON integers, which the stores hold in 64 bits: a larger
#: one came back as a float (another number), 10**400 as infinity.
_MAX_INT_LABEL = 2**63 - 1


class FeedbackStatus(enum.StrEnum):
    """What became of one feedback item."""

    ACCEPTED = "accepted"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    """The label of one row (``row``; None: the request's only row) of request ``inference_id``."""

    inference_id: str
    label: Label
    row: int | None = None

    @classmethod
    def from_dict(cls, data: Any, index: int = 0) -> FeedbackItem:
        """An item from its JSON form.

        Raises:
            InvalidInput: not an object, an unknown field, or a missing or malformed id,
                label or row; the message names the item (its position and id) and the field.
        """
        where = f"feedback item {index}"
        if not isinstance(data, Mapping):
            raise InvalidInput(f"{where} must be an object with inference_id and label")
        inference_id = data.get("inference_id")
        if not isinstance(inference_id, str) or not inference_id.strip():
            raise InvalidInput(f"{where} needs an inference_id (a non-empty string)")
        if len(inference_id) > MAX_ID_CHARS:
            raise InvalidInput(f"{where}: inference_id is longer than {MAX_ID_CHARS} characters")
        where = f"{where} (inference id {inference_id})"
        # Captured rows hold the lower-case, undashed form of ours: another spelling of the
        # same id found nothing, and two spellings labelled one prediction twice. A caller's
        # id (a uuid4 as str(uuid4()) writes it) is captured as sent, and matched so.
        spelled = canonical(inference_id)
        if issued_at(spelled) is not None:
            inference_id = spelled
        extra = sorted(str(k) for k in data if k not in _ITEM_KEYS)
        if extra:
            raise InvalidInput(
                f"{where} has unknown fields {extra}; an item has inference_id, label and row"
            )
        if "label" not in data:
            raise InvalidInput(f"{where} has no label")
        label = check_label(data["label"], where)
        row = data.get("row")
        if row is not None and (
            isinstance(row, bool) or not isinstance(row, int) or not 0 <= row <= _MAX_ROW
        ):
            raise InvalidInput(f"{where}: row must be a whole number from 0, got {row!r}")
        return cls(inference_id, label, row)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"inference_id": self.inference_id, "label": self.label}
        if self.row is not None:
            out["row"] = self.row
        return out


def check_label(value: Any, where: str) -> Label:
    """``value`` if it is a JSON scalar label (a finite number, a whole one within 64 bits, a
    non-empty string of at most :data:`MAX_LABEL_CHARS`, a boolean).

    Raises:
        InvalidInput: naming ``where`` and what is wrong (null, a list or object, NaN …).
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -_MAX_INT_LABEL - 1 <= value <= _MAX_INT_LABEL:
            raise InvalidInput(
                f"{where}: label is a whole number beyond 64 bits (at most "
                f"{_MAX_INT_LABEL:,} either way); send a class as a string, a number as a float"
            )
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{where}: label must be a finite number, got {value!r}")
        return value
    if isinstance(value, str):
        if not value.strip():
            raise InvalidInput(f"{where}: label is an empty string")
        if len(value) > MAX_LABEL_CHARS:
            raise InvalidInput(f"{where}: label is longer than {MAX_LABEL_CHARS} characters")
        return value
    kind = "null" if value is None else type(value).__name__
    raise InvalidInput(
        f"{where}: label must be one number, string or boolean, got {kind}"
        + ("" if value is None else f" {str(value)[:60]}")
    )


def parse_items(data: Any, *, limit: int | None = MAX_ITEMS) -> list[FeedbackItem]:
    """The items of a feedback body's ``feedback`` list (or of the list itself).

    Args:
        limit: The most items taken (None: any number, as from a labels file).

    Raises:
        InvalidInput: not a list, empty, or an item that :meth:`FeedbackItem.from_dict` refuses.
        PayloadTooLarge: more than ``limit`` items.
    """
    if not isinstance(data, Sequence) or isinstance(data, str | bytes):
        raise InvalidInput("feedback must be a list of {inference_id, label[, row]} objects")
    if not data:
        raise InvalidInput("feedback holds no items")
    if limit is not None and len(data) > limit:
        raise PayloadTooLarge(f"feedback holds {len(data)} items; send at most {limit} per request")
    return [FeedbackItem.from_dict(item, i) for i, item in enumerate(data)]


@dataclass(frozen=True, slots=True)
class FeedbackOutcome:
    """What became of one item; ``message`` says why it was not accepted."""

    inference_id: str
    row: int | None
    status: FeedbackStatus
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "inference_id": self.inference_id,
            "row": self.row,
            "status": self.status.value,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeedbackOutcome:
        row = data.get("row")
        return cls(
            inference_id=str(data["inference_id"]),
            row=None if row is None else int(row),
            status=FeedbackStatus(data["status"]),
            message=data.get("message"),
        )


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    """The outcome of every item of one feedback call, in the order they were sent."""

    endpoint: str
    outcomes: tuple[FeedbackOutcome, ...]

    def count(self, status: FeedbackStatus) -> int:
        return sum(1 for o in self.outcomes if o.status is status)

    @property
    def accepted(self) -> int:
        return self.count(FeedbackStatus.ACCEPTED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "counts": {s.value: self.count(s) for s in FeedbackStatus},
            "results": [o.to_dict() for o in self.outcomes],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeedbackResult:
        return cls(
            endpoint=str(data["endpoint"]),
            outcomes=tuple(FeedbackOutcome.from_dict(o) for o in data.get("results", ())),
        )


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """A stored label joined with the prediction it labels (read from the captured row when
    the label arrived, so quality can be computed after the capture is gone).

    ``prediction`` is the captured output: one value, or one per output column (class
    probabilities); ``served_at`` is when the prediction was made.
    """

    endpoint: str
    inference_id: str
    row: int
    label: Label
    variant: str
    model: str
    model_version: int
    served_at: datetime
    prediction: Label | list[Any] | None
    received_at: datetime | None = None

    @property
    def model_ref(self) -> str:
        return f"{self.model}:{self.model_version}"
