"""The Platform of the running command, built on first use and closed when the command ends.

Building opens the metadata database (checking its schema), so it happens only inside a command
that needs it: ``modelyard --help`` or a usage error never touches a database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelyard.bootstrap import Platform
    from modelyard.services.registry import RegistryService

# One command runs per process (the console script), so one slot is enough; ``close()`` empties
# it so that a caller running several commands in one process gets a fresh Platform each time.
_current: list[Platform] = []


def platform() -> Platform:
    """The Platform for this command, built by :func:`modelyard.bootstrap.build` on first use.

    Raises:
        ConfigError, DatabaseUnavailable, StorageNotWritable, SchemaOutdated, SchemaMismatch:
            from ``build``.
    """
    if not _current:
        # Imported here: the stores pull in SQLAlchemy, which help text never needs.
        from modelyard.bootstrap import build

        _current.append(build())
    return _current[0]


def registry() -> RegistryService:
    """The registry service of the running command (the CLI's only door to model operations)."""
    return platform().registry


def close() -> None:
    """Release the Platform's connections, if one was built."""
    while _current:
        _current.pop().close()
