"""The predictor lines of ``endpoints show``: what a variant asks for, and which predictor the
live servers serve it with and why (as each server reported it).

Servers on the endpoint's current config are asked; servers serving an older config (or none)
answer for other models, so they are left out. Servers that agree are one line; when they
disagree (a server started before a cache was written, another software version), each
distinct answer is a line with its server count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from modelyard.domain import EndpointServer, Variant

_INDENT = "    "
_NOT_REPORTED = "not reported (the server does not report predictors)"


def predictor_lines(
    variant: Variant, config: int, servers: Iterable[EndpointServer] | None
) -> list[str]:
    """``predictor  auto`` and, when ``servers`` is given, ``serving  compiled (…): … · 9 µs/row
    (native 240 µs)`` for ``variant`` of config number ``config``."""
    lines = [f"{_INDENT}predictor  {variant.predictor.value}"]
    if servers is None:
        return lines
    servers = list(servers)
    live = [s for s in servers if s.server.live]
    if not live:
        return [*lines, f"{_INDENT}serving    unknown: no live server"]
    on_config = [s for s in live if s.config == config]
    if not on_config:
        return [*lines, f"{_INDENT}serving    unknown: no live server serves config {config} yet"]
    answers = _answers(variant.name, on_config)
    if len(answers) == 1:
        return [*lines, f"{_INDENT}serving    {answers[0][0]}"]
    lines.append(
        f"{_INDENT}serving    differs between the {len(on_config)} live servers on config {config}:"
    )
    width = max(len(_count(n)) for _, n in answers)
    for text, n in answers:
        lines.append(f"{_INDENT}  {_count(n):<{width}}  {text}")
    return lines


def _answers(variant: str, servers: Sequence[EndpointServer]) -> list[tuple[str, int]]:
    """Each distinct answer (its line) and how many servers gave it, most servers first."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for s in servers:
        found = s.predictors.get(variant)
        key = ("", _NOT_REPORTED) if not found else (str(found.get("kind")), _reason(found))
        groups.setdefault(key, []).append(found or {})
    ordered = sorted(groups, key=lambda k: (-len(groups[k]), k))
    return [(_line(key[1], groups[key]), len(groups[key])) for key in ordered]


def _reason(found: Mapping[str, Any]) -> str:
    return str(found.get("reason") or found.get("kind") or "?")


def _line(reason: str, reports: Sequence[Mapping[str, Any]]) -> str:
    # Timings differ from server to server; the reason is what they agree or disagree on.
    row = _micros([r.get("row_us") for r in reports])
    if row is None:
        return reason
    native = _micros([r.get("native_row_us") for r in reports])
    return f"{reason} · {row} µs/row" + (f" (native {native} µs)" if native else "")


def _micros(values: Iterable[Any]) -> str | None:
    """``9``, or ``9-12`` over several servers; None when no server measured it."""
    found = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not found:
        return None
    low, high = _number(min(found)), _number(max(found))
    return low if low == high else f"{low}-{high}"


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0") if value < 10 else f"{value:,.0f}"


def _count(n: int) -> str:
    return f"{n} server" + ("" if n == 1 else "s")
