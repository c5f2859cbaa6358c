"""Fixture factories shared by the service tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import pytest


class _Closable(Protocol):
    def close(self) -> None: ...


def parts_fixture(open_parts: Callable[[str], _Closable]) -> Any:
    """A ``parts`` fixture: ``open_parts`` (the test module's own, from ``deployment_parts``,
    ``monitoring_parts`` or ``schedule_parts``, whose parts differ) on each backend's
    ``db_url``, closed after the test. In a module: ``parts = parts_fixture(open_parts)``."""

    @pytest.fixture(name="parts")
    def parts(db_url: str) -> Iterator[Any]:
        opened = open_parts(db_url)
        yield opened
        opened.close()

    return parts
