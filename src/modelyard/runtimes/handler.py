"""Inference handlers: the user's pre- and post-processing, packaged with a model version.

A handler is one Python file (stored as ``handler/handler.py`` in the package) defining either
or both of::

    def input_fn(body: bytes, content_type: str) -> array-like   # rows x features
    def output_fn(predictions: numpy.ndarray, accept: str) -> tuple[bytes | str, str]

so that a raw request (a movie review as ``text/plain``) becomes features inside the server
and a prediction leaves as what the client wants (a label). This is the role AWS Lambda plays
in front of a SageMaker endpoint. It is user code, so it needs user-code trust.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from modelyard.errors import InvalidModelFile
from modelyard.runtimes.user_code import forget, import_file

HANDLER_DIR = "handler"
HANDLER_FILE = "handler.py"
_HOOKS = ("input_fn", "output_fn")


@dataclass(frozen=True)
class InferenceHandler:
    """The hooks a handler file defines (``None`` for one it leaves out)."""

    input_fn: Callable[[bytes, str], Any] | None
    output_fn: Callable[[Any, str], tuple[bytes | str, str]] | None
    module: ModuleType

    def unload(self) -> None:
        """Forget the handler's module."""
        forget(self.module)


def stage_handler(source: Path, package: Path) -> None:
    """Check a handler file without running it and copy it into ``package``.

    ``source`` is the one file the caller named, so a link there is followed (its target is
    stored as a regular file); unlike the files of a model folder, nobody else chose it.

    Raises:
        InvalidModelFile: the file is missing, not Python, or defines neither hook.
    """
    if not source.is_file():
        raise InvalidModelFile(f"no such handler file: {source}")
    code = source.read_bytes()  # read once: the bytes checked are the bytes stored
    try:
        tree = ast.parse(code, filename=str(source))
    except (SyntaxError, ValueError) as exc:
        raise InvalidModelFile(f"handler {source.name} is not valid Python: {exc}") from None
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    if not defined & set(_HOOKS):
        raise InvalidModelFile(
            f"handler {source.name} defines neither input_fn(body, content_type) nor "
            "output_fn(predictions, accept)"
        )
    target = package / HANDLER_DIR
    target.mkdir()
    (target / HANDLER_FILE).write_bytes(code)


def load_handler(package: Path) -> InferenceHandler | None:
    """Import the handler of a materialised package, if it has one.

    Raises:
        InvalidModelFile: when importing it fails.
    """
    file = package / HANDLER_DIR / HANDLER_FILE
    if not file.is_file():
        return None
    module = import_file(file, file.parent, HANDLER_FILE)
    hooks = {name: getattr(module, name, None) for name in _HOOKS}
    for name, hook in hooks.items():
        if hook is not None and not callable(hook):
            forget(module)
            raise InvalidModelFile(f"{HANDLER_FILE}: {name} is not a function")
    return InferenceHandler(hooks["input_fn"], hooks["output_fn"], module)
