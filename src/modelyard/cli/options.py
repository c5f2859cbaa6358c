"""Parsing command-line values that are not plain strings (``k=v`` pairs, JSON files)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import typer

from modelyard.errors import InvalidInput

T = TypeVar("T")


def pairs(values: Sequence[str] | None, option: str) -> dict[str, str]:
    """Turn ``["k=v", …]`` into a dict.

    A key given twice is refused rather than letting one silently win: ``--variant a=m:1
    --variant a=m:2`` would otherwise deploy only ``m:2``.

    Raises:
        typer.BadParameter: for an item without ``=``, with an empty key or with a key given
            before (a usage error, exit 2), naming the option and the item.
    """
    out: dict[str, str] = {}
    for item in values or ():
        # The key is kept exactly as typed: names are matched whole, so "blue\n" must reach
        # validation as it is rather than become "blue".
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=f"'{option}'")
        if key in out:
            raise typer.BadParameter(
                f"{key!r} is given twice ({key}={out[key]} and {item}); give each once",
                param_hint=f"'{option}'",
            )
        out[key] = value
    return out


def per_variant(
    values: Sequence[str] | None,
    variants: Sequence[str],
    option: str,
    what: str,
    parse: Callable[[str], T],
) -> dict[str, T]:
    """``["x", "blue=y"]`` of a repeatable ``[VARIANT=]VALUE`` option → ``parse(value)`` per
    variant: a bare value is the choice of every variant in ``variants`` not named. A variant
    name that is not a variant is left for the service to refuse.

    Args:
        what: What a value is, for messages (``a predictor``).
        parse: Turns one value into its setting; raises InvalidInput naming the problem.

    Raises:
        typer.BadParameter: two bare values, a malformed pair, or a value ``parse`` refuses
            (a usage error, exit 2, naming the option and the value).
    """
    bare = [v for v in values or () if "=" not in v]
    if len(bare) > 1:
        raise typer.BadParameter(
            f"{what} for every variant is given twice ({', '.join(bare)}); give it once",
            param_hint=f"'{option}'",
        )
    named = pairs([v for v in values or () if "=" in v], option)
    chosen = dict.fromkeys(variants, bare[0]) if bare else {}
    chosen.update(named)
    out: dict[str, T] = {}
    for variant, text in chosen.items():
        try:
            out[variant] = parse(text)
        except InvalidInput as exc:
            where = f"{variant}={text}" if variant in named else text
            raise typer.BadParameter(
                f"{exc.message} (in {where!r})", param_hint=f"'{option}'"
            ) from None
    return out


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """Read a JSON file that must hold an object (a signature file …).

    Raises:
        InvalidInput: when the file is missing, unreadable, not JSON or not an object.
    """
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidInput(f"{what} file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {what} file {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what} file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{what} file {path} must hold a JSON object")
    return data
