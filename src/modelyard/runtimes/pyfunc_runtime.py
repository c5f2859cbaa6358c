"""Python-function models: the user's own class, shipped as source code in ``code/``.

The class needs a no-argument constructor, ``load(self, artifacts_dir: str) -> None`` and
``predict(self, data) -> array-like``. Loading runs the user's code, so it needs
``Trust(user_code=True)``; ``save`` records that trust on every pyfunc package.
"""

from __future__ import annotations

import ast
import inspect
import re
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from modelyard.domain import Trust
from modelyard.errors import InvalidModelFile, UnsafeModelFormat
from modelyard.runtimes._common import source_path
from modelyard.runtimes.base import LoadedModel, Runtime, SavedModel
from modelyard.runtimes.user_code import forget, import_file
from modelyard.storage.tree import copy_tree

CODE_DIR = "code"
ENTRY_FILE = "entrypoint.txt"  # optional, in a source folder: one line "module:Class"
DEFAULT_ENTRY = "model:Model"
_ENTRY = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


def _ignored(name: str) -> bool:
    return name in ("__pycache__", ".git") or name.endswith(".pyc")


def _module_file(code: Path, module: str) -> Path | None:
    base = code.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _check_entry(code: Path, entry: str) -> Path:
    """Check, without running it, that the entry module exists and binds the class name.

    Returns:
        The entry module's file.
    """
    if not _ENTRY.fullmatch(entry):
        raise InvalidModelFile(f"malformed entry point {entry!r}: expected 'module:Class'")
    module, cls = entry.split(":")
    file = _module_file(code, module)
    if file is None:
        raise InvalidModelFile(f"the model code has no module {module!r} (entry point {entry})")
    try:
        tree = ast.parse(file.read_bytes(), filename=str(file))
    except (SyntaxError, ValueError) as exc:
        raise InvalidModelFile(f"{file.name} is not valid Python: {exc}") from exc
    bound: set[str] = set()
    for node in tree.body:  # top-level names: classes, assignments and imports
        if isinstance(node, ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign):
            bound.update(t.id for t in node.targets if isinstance(t, ast.Name))
    if cls not in bound:
        raise InvalidModelFile(f"{file.name} defines no class {cls!r} (entry point {entry})")
    return file


class PyFuncLoaded(LoadedModel):
    """The user's model instance; ``predict`` returns its answer as a numpy array."""

    def __init__(self, model: Any, module: ModuleType) -> None:
        self._model = model
        self._module = module

    def predict(self, data: Any) -> np.ndarray:
        """Return ``np.asarray(model.predict(data))``; the user's exceptions propagate."""
        return np.asarray(self._model.predict(data))

    def unload(self) -> None:
        forget(self._module)
        self._model = None


class PyFuncRuntime(Runtime):
    """Saves and loads user classes as source code.

    ``save`` accepts a folder (entry ``model:Model``, or the ``module:Class`` line of its
    ``entrypoint.txt``), a single ``.py`` file (class ``Model``), or an instance (or class)
    whose class is defined at the top level of a module file; only that one file is copied,
    and the instance's state is not kept: ``load`` builds a new one and calls its ``load``.
    ``save`` never runs the code; it checks the entry module's syntax and top-level names.
    """

    flavor = "pyfunc"

    def save(self, source: Path | object, dest: Path, *, trust: Trust) -> SavedModel:
        path = source_path(source)
        code = dest / CODE_DIR
        if path is not None and path.is_dir():
            # Never shutil.copytree: it follows links, so `passwd -> /etc/passwd` in the folder
            # would be stored. The entry point is read from the checked copy for the same reason.
            copy_tree(path, code, ignore=_ignored)
            entry_file = code / ENTRY_FILE
            entry = entry_file.read_text().strip() if entry_file.is_file() else DEFAULT_ENTRY
        elif path is not None and path.suffix == ".py":
            entry = f"{path.stem}:Model"
            code.mkdir()
            shutil.copy2(path, code / path.name)
        elif path is not None:
            raise InvalidModelFile(f"not a pyfunc model: {path} (expected a folder or a .py file)")
        else:
            entry = self._copy_class(source, code)
        _check_entry(code, entry)
        return SavedModel("python", Trust(user_code=True), {"entry_point": entry})

    def load(self, path: Path, saved: SavedModel) -> LoadedModel:
        if not saved.trust.user_code:
            raise UnsafeModelFormat(
                "a pyfunc model runs its own Python code when loaded; it needs user-code trust "
                "(trust=Trust(user_code=True))"
            )
        code = path / CODE_DIR
        entry = str(saved.options.get("entry_point", DEFAULT_ENTRY))
        file = _check_entry(code, entry)
        cls_name = entry.split(":")[1]
        module = import_file(file, code, entry)
        cls = getattr(module, cls_name, None)
        if not isinstance(cls, type):
            raise InvalidModelFile(f"{file.name} defines no class {cls_name!r}")
        try:
            model = cls()
            model.load(str(code))
        except Exception as exc:  # the user's code: report it as a model that cannot load
            forget(module)
            raise InvalidModelFile(f"{entry}.load() failed: {exc!r}") from exc
        return PyFuncLoaded(model, module)

    @staticmethod
    def _copy_class(obj: object, code: Path) -> str:
        cls = obj if isinstance(obj, type) else type(obj)
        if not (callable(getattr(cls, "load", None)) and callable(getattr(cls, "predict", None))):
            raise InvalidModelFile(
                f"not a pyfunc model: {cls.__name__} needs load(artifacts_dir) and predict(data)"
            )
        if "." in cls.__qualname__:
            raise InvalidModelFile(f"{cls.__qualname__} must be defined at a module's top level")
        try:
            file = inspect.getsourcefile(cls)
        except TypeError:
            file = None
        if file is None or not Path(file).is_file():
            raise InvalidModelFile(f"cannot find the source file of {cls.__qualname__}")
        code.mkdir()
        shutil.copy2(file, code / Path(file).name)
        return f"{Path(file).stem}:{cls.__name__}"
