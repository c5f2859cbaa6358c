"""Parsing command-line values that are not plain strings (``k=v`` pairs, JSON files)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from modelyard.errors import InvalidInput


def pairs(values: Sequence[str] | None, option: str) -> dict[str, str]:
    """Turn ``["k=v", …]`` into a dict; a later key wins, as on most command lines.

    Raises:
        typer.BadParameter: for an item without ``=`` or with an empty key (a usage error,
            exit 2), naming the option and the item.
    """
    out: dict[str, str] = {}
    for item in values or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=f"'{option}'")
        out[key.strip()] = value
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
