"""Model references: ``name`` (latest), ``name:3`` (a version), ``name@production`` (an alias)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from modelyard.domain.numbers import shown_value
from modelyard.errors import InvalidInput, InvalidName, InvalidReference

# Names travel in URLs, file paths and CLI arguments: keep them to a safe, readable alphabet.
# Always ``fullmatch``: with ``match``, a ``$`` also matches before a final newline, so
# ``"churn\n"`` would pass and then be impossible to show or use.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")

#: The largest version number (a signed 64-bit database integer).
MAX_VERSION = 2**63 - 1
_MAX_VERSION_DIGITS = len(str(MAX_VERSION))


# Metric names follow SageMaker's ``validation:auc`` style.
_METRIC = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}")


def validate_metric_name(value: str) -> str:
    """Return ``value`` if it is a valid metric name (``validation:auc``, ``train/loss``).

    Raises:
        InvalidName: otherwise.
    """
    if not _METRIC.fullmatch(value):
        raise InvalidName(
            f"invalid metric name {value!r}: use 1-128 letters, digits, '_', '.', ':', '/' or "
            "'-', starting with a letter or digit"
        )
    return value


def validate_name(value: str, what: str = "model name") -> str:
    """Return ``value`` if it is a valid model, alias or tag name.

    Raises:
        InvalidName: when it is not text (from Python an int or None may come), is empty, too
            long or holds characters outside ``[A-Za-z0-9_.-]``.
    """
    if not isinstance(value, str):
        raise InvalidName(f"invalid {what}: it must be text, got {type(value).__name__} {value!r}")
    if not _NAME.fullmatch(value):
        raise InvalidName(
            f"invalid {what} {value!r}: use 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return value


def validate_aliases(values: Iterable[str]) -> tuple[str, ...]:
    """Return the alias names ``values`` as a tuple, each checked by :func:`validate_name`.

    Raises:
        InvalidInput: ``values`` is one text (``aliases="production"`` from Python), which
            would otherwise be taken letter by letter as the names ``p``, ``r``, ``o`` …
        InvalidName: a name is not valid.
    """
    if isinstance(values, str | bytes):
        raise InvalidInput(
            f"aliases must be a list of names, got the text {values!r}; give [{values!r}]"
        )
    return tuple(validate_name(v, "alias") for v in values)


def validate_text(value: str | None, what: str) -> str | None:
    """Return free text (a description, a tag value) if both metadata databases can keep it.

    PostgreSQL refuses the NUL character in text, SQLite keeps it: refusing it here gives the
    same answer on both instead of a database error on one.

    Raises:
        InvalidInput: ``value`` is not text (from Python a number may come) or holds a NUL
            character.
    """
    if value is not None and not isinstance(value, str):
        raise InvalidInput(
            f"the {what} must be text, got {type(value).__name__} {shown_value(value)}"
        )
    if value is not None and "\x00" in value:
        raise InvalidInput(f"the {what} holds a NUL character (\\x00), which cannot be stored")
    return value


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A parsed model reference; at most one of ``version`` and ``alias`` is set."""

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """Parse ``name``, ``name:VERSION`` or ``name@ALIAS``.

        Raises:
            InvalidReference: for anything else (``a:b:c``, ``name:0``, ``name:-1``, ``a@``,
                or what is not text).
        """
        if not isinstance(text, str):  # from Python an int or None may come
            raise InvalidReference(
                "malformed model reference: it must be text (NAME, NAME:VERSION or NAME@ALIAS), "
                f"got {type(text).__name__} {shown_value(text)}"
            )
        raw = text  # exact, as names are: "churn\n" or " churn" is not a reference to churn
        if raw.count(":") + raw.count("@") > 1:
            raise InvalidReference(
                f"malformed model reference {text!r}: expected NAME, NAME:VERSION or NAME@ALIAS"
            )
        try:
            if ":" in raw:
                name, _, version_text = raw.partition(":")
                # ASCII digits only ('²' is a digit to str.isdigit), and what a database
                # integer holds (2**63 - 1; more was an OverflowError at the query).
                if (
                    not (version_text.isascii() and version_text.isdigit())
                    or len(version_text) > _MAX_VERSION_DIGITS
                    or not 1 <= int(version_text) <= MAX_VERSION
                ):
                    raise InvalidReference(
                        f"malformed model reference {text!r}: version must be a whole number "
                        f"from 1 to {MAX_VERSION}"
                    )
                return cls(validate_name(name), version=int(version_text))
            if "@" in raw:
                name, _, alias = raw.partition("@")
                return cls(validate_name(name), alias=validate_name(alias, "alias"))
            return cls(validate_name(raw))
        except InvalidName as exc:
            raise InvalidReference(f"malformed model reference {text!r}: {exc}") from None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name
