"""``modelyard endpoints feedback NAME --file labels.csv``: ground truth for past predictions.

The file holds one label per line: a CSV with the columns ``inference_id``, ``label`` and
optionally ``row``, or JSON Lines of ``{"inference_id", "label", "row"?}`` objects (``.jsonl``,
``.ndjson``), or one JSON list of them (``.json``). In a CSV, a label that reads as a number
or as true/false is sent as one. The labels go to the feedback service as one batch, however
many: each label's outcome (accepted, unknown, expired, ambiguous) is reported, and a file
holding a label the model cannot have is refused whole (nothing of it is stored). An
``inference_id`` is ours or the ``InferenceId`` the caller sent with the request.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from modelyard.cli.context import platform
from modelyard.cli.render import console, print_json
from modelyard.domain.feedback import FeedbackStatus
from modelyard.errors import InvalidInput

_INTEGER = re.compile(r"[-+]?\d+")
_SHOWN = 20


def feedback(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Endpoint name.")],
    file: Annotated[
        Path,
        typer.Option(
            "--file",
            "-f",
            metavar="FILE",
            help="Labels: CSV (inference_id,label[,row]), JSON Lines (.jsonl) or a JSON list.",
        ),
    ],
    json_: Annotated[
        bool, typer.Option("--json", help="Print JSON (only JSON) on stdout.")
    ] = False,
) -> None:
    """Send ground-truth labels for predictions endpoint NAME made, by inference id.

    Each label joins the captured prediction with that id (and row); `modelyard monitor
    quality NAME` then scores them. A later label for the same id and row replaces the
    earlier one.
    """
    items = read_labels(file)
    outcomes = platform().feedback.record_all(name, items).outcomes
    counts = Counter(o.status for o in outcomes)
    if json_:
        print_json(
            {
                "endpoint": name,
                "counts": {s.value: counts.get(s, 0) for s in FeedbackStatus},
                "results": [o.to_dict() for o in outcomes],
            }
        )
        return
    summary = ", ".join(f"{counts.get(s, 0)} {s.value}" for s in FeedbackStatus)
    console.print(f"{name}: {len(outcomes)} labels: {summary}")
    refused = [o for o in outcomes if o.status is not FeedbackStatus.ACCEPTED]
    for outcome in refused[:_SHOWN]:
        row = "" if outcome.row is None else f" row {outcome.row}"
        console.print(
            f"  {outcome.status.value}: {outcome.inference_id}{row}: {outcome.message or ''}"
        )
    if len(refused) > _SHOWN:
        console.print(f"  … and {len(refused) - _SHOWN} more (--json lists them all)")


def read_labels(path: Path) -> list[dict[str, Any]]:
    """The items of a labels file (see the module docstring), as JSON objects.

    Raises:
        InvalidInput: the file is missing, unreadable, empty, or malformed (naming the line).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (Excel) is skipped
    except FileNotFoundError:
        raise InvalidInput(f"labels file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read labels file {path}: {exc}") from None
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        items = _json_lines(text, path)
    elif suffix == ".json":
        items = _json_list(text, path)
    else:
        items = _csv(text, path)
    if not items:
        raise InvalidInput(f"labels file {path} holds no labels")
    return items


def _json_lines(text: str, path: Path) -> list[dict[str, Any]]:
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path} line {number} is not JSON: {exc}") from None
        if not isinstance(item, dict):
            raise InvalidInput(f"{path} line {number} must be an object with inference_id, label")
        items.append(item)
    return items


def _json_list(text: str, path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path} is not JSON: {exc}") from None
    if isinstance(data, dict) and "feedback" in data:
        data = data["feedback"]
    if not isinstance(data, list):
        raise InvalidInput(f'{path} must hold a list of labels (or {{"feedback": [...]}})')
    return data


def _csv(text: str, path: Path) -> list[dict[str, Any]]:
    reader = csv.DictReader(text.splitlines())
    columns = set(reader.fieldnames or ())
    missing = {"inference_id", "label"} - columns
    if missing:
        raise InvalidInput(
            f"{path} needs the CSV columns inference_id and label (and optionally row); "
            f"missing: {', '.join(sorted(missing))}"
        )
    extra = columns - {"inference_id", "label", "row"}
    if extra:
        raise InvalidInput(f"{path} has unknown columns {sorted(extra)}")
    items = []
    for record in reader:
        number = reader.line_num
        if None in record:  # the fields past the header's (an unquoted comma in a label)
            fields = len(reader.fieldnames or ()) + len(record[None])
            raise InvalidInput(
                f"{path} line {number} has {fields} fields; the header has "
                f"{len(reader.fieldnames or ())} (quote a label that holds a comma)"
            )
        item: dict[str, Any] = {
            "inference_id": (record["inference_id"] or "").strip(),
            "label": _scalar(record["label"] or ""),
        }
        row = (record.get("row") or "").strip()
        if row:
            if not _INTEGER.fullmatch(row):
                raise InvalidInput(f"{path} line {number}: row must be a whole number, got {row!r}")
            item["row"] = int(row)
        items.append(item)
    return items


def _scalar(text: str) -> Any:
    """A CSV cell as the JSON scalar it reads as: a whole number, a number, true/false, else
    the text itself."""
    value = text.strip()
    if _INTEGER.fullmatch(value):
        return int(value)
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        number = float(value)
    except ValueError:
        return value
    return number if number == number and abs(number) != float("inf") else value
