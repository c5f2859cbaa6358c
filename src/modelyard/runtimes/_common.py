"""Small helpers every runtime shares: lazy imports, source paths, input-width checks.

Kept free of model libraries so that importing a runtime module stays cheap.
"""

from __future__ import annotations

import bz2
import gzip
import importlib
import lzma
import os
import pickletools
import zlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from modelyard.errors import InvalidModelFile, MissingDependency, SignatureMismatch

# The first byte of every pickle written with protocol 2 or later (joblib's plain files too).
PICKLE_MAGIC = b"\x80"


def require(module: str, package: str, flavor: str) -> ModuleType:
    """Import an optional model library, or say how to install it.

    Raises:
        MissingDependency: when ``module`` cannot be imported; the message holds the pip command.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(
            f"the {flavor!r} flavor needs the {package!r} package ({exc}): pip install {package}"
        ) from exc


def source_path(source: object) -> Path | None:
    """Return ``source`` as an existing path, or None when it is an in-memory object.

    Raises:
        InvalidModelFile: when ``source`` is a path that does not exist.
    """
    if not isinstance(source, str | os.PathLike):
        return None
    path = Path(source)
    if not path.exists():
        raise InvalidModelFile(f"no such file: {path}")
    return path


def read_head(path: Path, size: int = 16) -> bytes:
    """The first ``size`` bytes of a file (to detect its format by content, not by name)."""
    with path.open("rb") as fh:
        return fh.read(size)


def check_width(data: Any, expected: int | None) -> None:
    """Refuse input that is not 2-D or whose column count differs from ``expected``.

    Raises:
        SignatureMismatch: naming the expected and the received width.
    """
    shape = getattr(data, "shape", None)
    if shape is None:
        shape = np.shape(data)
    if len(shape) != 2:
        raise SignatureMismatch(f"expected 2-D input (rows x features), got shape {tuple(shape)}")
    if expected is not None and shape[1] != expected:
        raise SignatureMismatch(f"expected {expected} features, got {shape[1]}")


def is_dataframe(data: Any) -> bool:
    """True for a pandas DataFrame, without importing pandas when it is not loaded."""
    return hasattr(data, "columns") and hasattr(data, "iloc")


def pickle_kind(path: Path) -> str | None:
    """``"pickle"`` or ``"joblib"`` when the file's content is one, else None.

    Reads opcodes and compression headers only; nothing is unpickled.
    """
    head = read_head(path, 8)
    if head[:1] == PICKLE_MAGIC:
        return "pickle"  # protocol >= 2; joblib's uncompressed files are plain pickles
    if head[:4] == b"\x04\x22\x4d\x18":
        return "joblib"  # lz4 frame: only joblib would hand a model over in that wrapper
    try:
        inner = _decompressed_head(path, head)
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError):
        return None
    if inner is not None:
        return "joblib" if inner == PICKLE_MAGIC else None
    try:  # protocol 0/1 text pickles have no magic byte: parse their opcodes to the end
        with path.open("rb") as fh:
            ops = list(pickletools.genops(fh))
    except (ValueError, EOFError):  # unknown opcode, truncated argument, bad text argument
        return None
    return "pickle" if ops and ops[-1][0].name == "STOP" else None


def _decompressed_head(path: Path, head: bytes) -> bytes | None:
    """The first decompressed byte for joblib's compressors (told by magic number), else None."""
    opener: Callable[..., Any] | None = None
    if head[:2] == b"\x1f\x8b":
        opener = gzip.open
    elif head[:3] == b"BZh":
        opener = bz2.open
    elif head[:6] == b"\xfd7zXZ\x00" or head[:3] == b"\x5d\x00\x00":
        opener = lzma.open
    elif len(head) >= 2 and (head[0] & 0x0F) == 8 and ((head[0] << 8) | head[1]) % 31 == 0:
        # zlib (joblib's default compressor): method 8 and a header checksum (RFC 1950).
        with path.open("rb") as fh:
            return zlib.decompressobj().decompress(fh.read(65536), 1)
    if opener is None:
        return None
    with opener(path, "rb") as fh:
        return bytes(fh.read(1))
