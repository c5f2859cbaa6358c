"""Input and output filters: the JSONPath subset SageMaker's batch transform documents.

A filter picks parts of a record and builds a new record from them, as SageMaker's
``DataProcessing`` does (``InputFilter``, ``OutputFilter``)::

    $                 the whole record
    $.name            a field of an object          $['name']     the same, quoted
    $['a','b']        a new object holding a and b (in that order)
    $[2]  $[-1]       one element of an array (a CSV row: one column)
    $[0,3,-1]         a new array of those elements, in that order
    $[1:]  $[:-2]     a slice, Python's rules (negative indexes count from the end)
    $[0,5:]           indexes and slices mixed: element 0, then 5 to the end

Segments chain (``$.features[1:]``), each applied to what the one before built. CSV rows are
arrays of their fields, so they are addressed by index only.

Why not jsonpath-ng (a well-kept library, on PyPI): it finds matches inside a document but
does not build a new record from them (``$['a','b']`` must give an object, ``$[0,5:]`` an
array), it has no index-and-slice unions such as ``[0,5:]``, and it would be a new dependency
(with ply) for some 100 lines of parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from modelyard.errors import InvalidInput

__all__ = ["Filter", "FilterError", "parse_filter"]

_NAME = re.compile(r"\.([A-Za-z_][A-Za-z0-9_\-]*)")
_QUOTED = re.compile(r"""\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*""")
_INDEX = re.compile(r"\s*(-?\d+)\s*")
_SLICE = re.compile(r"\s*(-?\d+)?\s*:\s*(-?\d+)?\s*")


class FilterError(ValueError):
    """A record does not hold what the filter asks for (a missing field, an index past the end,
    a name asked of an array); the record is bad, the filter is not."""


@dataclass(frozen=True, slots=True)
class _Names:
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Items:
    items: tuple[int | slice, ...]


@dataclass(frozen=True, slots=True)
class Filter:
    """A parsed filter; :meth:`apply` builds the selected record."""

    text: str
    segments: tuple[_Names | _Items, ...]

    @property
    def is_identity(self) -> bool:
        return not self.segments

    @property
    def uses_names(self) -> bool:
        return any(isinstance(s, _Names) for s in self.segments)

    def apply(self, record: Any) -> Any:
        """The part of ``record`` (a parsed JSON value, or a CSV row as a list) selected.

        Raises:
            FilterError: the record lacks a field or an index, or is of the wrong kind.
        """
        value = record
        for segment in self.segments:
            if isinstance(segment, _Names):
                value = _pick_names(value, segment.names)
            else:
                value = _pick_items(value, segment.items)
        return value

    def columns(self, width: int) -> list[int]:
        """The column indexes an index-only filter picks from a row of ``width`` columns.

        Raises:
            FilterError: an index is out of range, or the filter uses names.
        """
        if self.uses_names:
            raise FilterError(f"{self.text} picks fields by name; CSV columns are picked by index")
        picked = self.apply(list(range(width)))
        return picked if isinstance(picked, list) else [picked]

    def row(self, fields: list[Any]) -> list[Any]:
        """The fields of a CSV row the filter picks (one picked field is a one-field row)."""
        picked = self.apply(fields)
        return picked if isinstance(picked, list) else [picked]


def parse_filter(text: str, what: str = "filter") -> Filter:
    """Parse a filter expression.

    Raises:
        InvalidInput: the text is not in the supported subset; the message shows where.
    """
    source = text.strip()
    if not source.startswith("$"):
        raise InvalidInput(f"{what} {text!r} must start with '$' (JSONPath)")
    pos, segments = 1, list[_Names | _Items]()
    while pos < len(source):
        name = _NAME.match(source, pos)
        if name:
            segments.append(_Names((name.group(1),)))
            pos = name.end()
            continue
        if source[pos] != "[":
            raise InvalidInput(f"{what} {text!r}: unexpected {source[pos:]!r} at {pos}")
        close = source.find("]", pos)
        if close < 0:
            raise InvalidInput(f"{what} {text!r}: '[' at {pos} is never closed")
        segments.append(_bracket(source[pos + 1 : close], text, what))
        pos = close + 1
    return Filter(text=text, segments=tuple(segments))


def _bracket(body: str, text: str, what: str) -> _Names | _Items:
    parts = body.split(",")
    if all(_QUOTED.fullmatch(p) for p in parts):
        names = []
        for part in parts:
            found = _QUOTED.fullmatch(part)
            assert found is not None
            names.append(re.sub(r"\\(.)", r"\1", found.group(1) or found.group(2) or ""))
        return _Names(tuple(names))
    items: list[int | slice] = []
    for part in parts:
        index = _INDEX.fullmatch(part)
        if index:
            items.append(int(index.group(1)))
            continue
        span = _SLICE.fullmatch(part)
        if span is None:
            raise InvalidInput(
                f"{what} {text!r}: [{body}] is not a list of indexes, slices (1:3) "
                "or quoted names ('a','b')"
            )
        start, stop = span.group(1), span.group(2)
        items.append(
            slice(None if start is None else int(start), None if stop is None else int(stop))
        )
    return _Items(tuple(items))


def _pick_names(value: Any, names: tuple[str, ...]) -> Any:
    if not isinstance(value, dict):
        raise FilterError(f"cannot take {list(names)} of a {_kind(value)}: it is not an object")
    missing = [n for n in names if n not in value]
    if missing:
        raise FilterError(f"the record has no field {missing[0]!r}")
    if len(names) == 1:
        return value[names[0]]
    return {n: value[n] for n in names}


def _pick_items(value: Any, items: tuple[int | slice, ...]) -> Any:
    if not isinstance(value, list):
        raise FilterError(f"cannot index a {_kind(value)}: it is not an array")
    size = len(value)
    if len(items) == 1 and isinstance(items[0], int):
        return value[_index(items[0], size)]
    picked: list[Any] = []
    for item in items:
        if isinstance(item, slice):
            picked.extend(value[item])
        else:
            picked.append(value[_index(item, size)])
    return picked


def _index(index: int, size: int) -> int:
    if not -size <= index < size:
        raise FilterError(f"index {index} is out of range for {size} elements")
    return index


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "null" if value is None else type(value).__name__
