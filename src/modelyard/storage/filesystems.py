"""Opening an fsspec filesystem from a store URL, with its failures as typed errors.

The artifact store and the capture folder take any fsspec URL. fsspec raises ``ValueError`` for
a protocol it does not know, ``ImportError`` for one whose package is not installed (``s3fs``
for ``s3://``) and ``OSError`` when the filesystem cannot be reached: each is a setting to fix,
a package to install or a store that is down, said in one line with the URL's credentials
masked. :func:`check_protocol` finds the first two without making a filesystem (some drivers
connect when made), so that a command can refuse a bad setting before it starts.
:func:`is_pattern` tells a glob from a path that merely holds glob characters.
"""

from __future__ import annotations

from typing import Any

from modelyard.errors import ConfigError, MissingDependency, StorageUnavailable
from modelyard.storage.urls import redact

GLOB_CHARS = "*?["


def open_filesystem(given: str, shown: str, what: str, **options: Any) -> tuple[Any, str]:
    """``(filesystem, root)`` of the URL ``given``, the root without a trailing slash.

    Args:
        given: The URL as set (credentials and all; only fsspec sees it).
        shown: The same URL with its credentials masked, for messages.
        what: What the URL is for, as messages name it (``"the artifact store"``).

    Raises:
        ConfigError: fsspec knows no such protocol, or refuses the options.
        MissingDependency: the protocol's package is not installed.
        StorageUnavailable: the filesystem cannot be reached.
    """
    import fsspec  # an import only the stores that touch files need

    try:
        fs, root = fsspec.core.url_to_fs(given, **options)
    except ImportError as exc:
        raise MissingDependency(f"cannot open {what} {shown}: {redact(str(exc), given)}") from None
    except ValueError as exc:
        raise ConfigError(f"cannot open {what} {shown}: {redact(str(exc), given)}") from None
    except OSError as exc:
        raise StorageUnavailable(f"cannot open {what} {shown}: {redact(str(exc), given)}") from None
    return fs, root.rstrip("/")


def check_protocol(given: str, shown: str, what: str) -> None:
    """Refuse a URL whose protocol (each of a chained URL's, ``simplecache::s3://…``) fsspec
    does not know or cannot load, without making the filesystem. A local path passes.

    Raises:
        ConfigError: fsspec knows no such protocol.
        MissingDependency: the protocol's package is not installed.
    """
    if "://" not in given and "::" not in given:
        return  # a local path: nothing to load
    import fsspec

    for part in given.split("::"):
        protocol = fsspec.core.split_protocol(part)[0]
        if protocol is None:
            continue
        try:
            fsspec.get_filesystem_class(protocol)
        except ImportError as exc:
            message = redact(str(exc), given)
            raise MissingDependency(f"cannot open {what} {shown}: {message}") from None
        except ValueError as exc:
            raise ConfigError(f"cannot open {what} {shown}: {redact(str(exc), given)}") from None


def is_pattern(fs: Any, path: str) -> bool:
    """Whether ``path`` is a glob on ``fs``: it holds ``*``, ``?`` or ``[`` and names nothing
    that exists. A path that exists is itself, whatever its characters (a file called
    ``data[1].csv`` is that file, not the glob matching ``data1.csv``).

    Raises:
        OSError: the filesystem cannot be reached (as fsspec raises it; the caller names it).
    """
    return any(c in path for c in GLOB_CHARS) and not fs.exists(path)
