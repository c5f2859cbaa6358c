"""Which flavor a training script saved, told from the files in its model folder.

Detection reads names and the first bytes of files; it never loads a model, never
unpickles, and follows no symlink out of the folder (``storage/tree.py``). The registry
validates the chosen file properly when it is registered.

Rules, per file:

- ``xgboost-model`` (SageMaker's XGBoost name, no extension): xgboost, whatever its content;
- a JSON or UBJSON object whose first key is ``learner``, or a legacy binary with XGBoost's
  ``binf`` header (``*.json``, ``*.ubj``, ``*.bin`` …): xgboost;
- a text file opening with ``tree`` and ``version=v`` (``booster.save_model``): lightgbm;
- ``*.onnx``: onnx;
- ``*.skops``: sklearn;
- ``*.pkl``, ``*.pickle``, ``*.joblib`` holding a pickle: sklearn.

With several candidates the one named ``model.*`` or ``xgboost-model`` wins; otherwise the
caller must name the flavor (or the file).
"""

from __future__ import annotations

from pathlib import Path

from modelyard.errors import InvalidInput
from modelyard.runtimes._common import pickle_kind, read_head
from modelyard.storage.tree import list_files

__all__ = ["KNOWN_FLAVORS", "classify_file", "detect_flavor", "find_model_file"]

KNOWN_FLAVORS = ("xgboost", "lightgbm", "sklearn", "onnx")
# Flavors whose package is a whole folder rather than one file.
FOLDER_FLAVORS = ("pyfunc",)
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
_SHOWN = 20  # files named in an error message, at most


def classify_file(path: Path) -> str | None:
    """The flavor ``path`` holds by its name and first bytes, or None."""
    name = path.name.lower()
    suffix = path.suffix.lower()
    if name == "xgboost-model":
        # SageMaker's XGBoost scripts and containers write this name. Older containers wrote a
        # pickled Booster under it; the registry refuses that with how to re-save it.
        return "xgboost"
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".skops":
        return "sklearn"  # a zip of skops' schema (a pickle under this name is refused later)
    try:
        head = read_head(path, 512)
    except OSError:
        return None
    if _is_xgboost(head):
        return "xgboost"
    if head.startswith(b"tree\n") and b"version=v" in head:
        return "lightgbm"
    if suffix in _PICKLE_SUFFIXES and pickle_kind(path) is not None:
        # A pickle/joblib estimator: registering it needs explicit pickle trust, since
        # loading it runs code; detection only names the flavor.
        return "sklearn"
    return None


def detect_flavor(model_dir: Path) -> tuple[str, Path]:
    """The flavor of the model a training script left in ``model_dir``, and its file.

    Args:
        model_dir: The script's ``SM_MODEL_DIR`` (subfolders are searched too), or one file.

    Returns:
        ``(flavor, path)``: the path to hand to ``RegistryService.register``.

    Raises:
        InvalidInput: nothing recognisable (the message lists the files found), or several
            candidates with none named ``model.*`` / ``xgboost-model`` (it lists them).
        InvalidModelFile: a symlink in the folder leaves it, loops or points at nothing.
    """
    files = _files(model_dir)
    candidates = [(flavor, path) for path in files if (flavor := classify_file(path))]
    if not candidates:
        raise InvalidInput(
            f"no model file of a known flavor ({', '.join(KNOWN_FLAVORS)}) in {model_dir}; "
            f"files found: {_listing(files, model_dir)}. Name the flavor explicitly"
        )
    return _choose(candidates, model_dir)


def find_model_file(model_dir: Path, flavor: str) -> Path:
    """The file (or folder) to register for an explicitly named ``flavor``.

    A folder flavor (pyfunc) or a flavor detection does not know (a third-party one) gets
    ``model_dir`` itself: its runtime decides what in it is the model.

    Raises:
        InvalidInput: no file of that flavor, or several with none named ``model.*``.
        InvalidModelFile: a symlink in the folder leaves it, loops or points at nothing.
    """
    if flavor in FOLDER_FLAVORS or flavor not in KNOWN_FLAVORS:
        if not Path(model_dir).exists():
            raise InvalidInput(f"no such model folder: {model_dir}")
        return Path(model_dir)
    files = _files(model_dir)
    candidates = [(f, path) for path in files if (f := classify_file(path)) == flavor]
    if not candidates:
        raise InvalidInput(
            f"no {flavor} model file in {model_dir}; files found: {_listing(files, model_dir)}"
        )
    return _choose(candidates, model_dir)[1]


def _is_xgboost(head: bytes) -> bool:
    if head[:4] == b"binf":  # XGBoost >= 1.0's legacy binary header
        return True
    stripped = head.lstrip()
    # JSON and UBJSON models are one object whose keys are sorted: "learner" comes first.
    return stripped[:1] == b"{" and b"learner" in stripped[:32]


def _files(model_dir: Path) -> list[Path]:
    root = Path(model_dir)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise InvalidInput(f"no such model folder: {root}")
    # A script may leave links in its model folder: one leading out of it is refused rather
    # than read (and maybe registered); one to a file inside stands for that file.
    return [root.joinpath(*f.rel.parts) for f in list_files(root, ignore=_hidden)]


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__pycache__"


def _choose(candidates: list[tuple[str, Path]], model_dir: Path) -> tuple[str, Path]:
    if len(candidates) == 1:
        return candidates[0]
    named = [(f, p) for f, p in candidates if _preferred(p)]
    if len(named) == 1:
        return named[0]
    shown = ", ".join(f"{_rel(p, model_dir)} ({f})" for f, p in (named or candidates))
    raise InvalidInput(
        f"several model files in {model_dir}: {shown}; name the flavor explicitly, or keep one "
        "model file (or name the one to register model.<ext>)"
    )


def _preferred(path: Path) -> bool:
    name = path.name.lower()
    return name == "xgboost-model" or path.stem.lower() == "model"


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _listing(files: list[Path], root: Path) -> str:
    if not files:
        return "none (the folder is empty)"
    shown = ", ".join(_rel(p, root) for p in files[:_SHOWN])
    more = len(files) - _SHOWN
    return shown + (f" and {more} more" if more > 0 else "")
