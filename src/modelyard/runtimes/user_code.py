"""Importing a user's Python file from a materialised package, kept apart from every other.

Each import gets a unique module name, so two versions that both ship ``model.py`` (or
``handler.py``) never collide in ``sys.modules``; helper modules the file imports from its own
folder are forgotten afterwards for the same reason.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import uuid
from pathlib import Path
from types import ModuleType

from modelyard.errors import InvalidModelFile

# sys.path and sys.modules are process-wide: one import of user code at a time.
_import_lock = threading.Lock()


def import_file(file: Path, root: Path, label: str) -> ModuleType:
    """Import ``file`` with ``root`` on ``sys.path`` for the duration of the import.

    Args:
        label: How to name the code in an error (``"model:Model"``, ``"handler.py"``).

    Raises:
        InvalidModelFile: when the import raises; the message names ``label`` and the error.
    """
    unique = f"_modelyard_user_{uuid.uuid4().hex}_{file.stem}"
    spec = importlib.util.spec_from_file_location(unique, file)
    if spec is None or spec.loader is None:
        raise InvalidModelFile(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    with _import_lock:
        before = set(sys.modules)
        sys.modules[unique] = module  # dataclasses and pickle look the module up by name
        sys.path.insert(0, str(root))
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(unique, None)
            raise InvalidModelFile(f"importing {label} from {root} failed: {exc!r}") from exc
        finally:
            sys.path.remove(str(root))
            inside = str(root) + os.sep
            for name in set(sys.modules) - before - {unique}:
                if str(getattr(sys.modules[name], "__file__", "")).startswith(inside):
                    del sys.modules[name]
    return module


def forget(module: ModuleType) -> None:
    """Drop an imported user module from ``sys.modules`` (on unload)."""
    sys.modules.pop(module.__name__, None)
