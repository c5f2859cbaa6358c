"""The public Python API: everything in ``__all__`` resolves, and importing stays cheap."""

from __future__ import annotations

import subprocess
import sys

import modelyard


def test_all_names_resolve() -> None:
    for name in modelyard.__all__:
        assert getattr(modelyard, name) is not None, name


def test_unknown_attribute() -> None:
    try:
        modelyard.nope  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "nope" in str(exc)
    else:
        raise AssertionError("modelyard.nope resolved")


def test_import_is_cheap() -> None:
    heavy = ["xgboost", "lightgbm", "sklearn", "onnxruntime", "sqlalchemy", "pandas", "skops"]
    code = (
        "import sys, modelyard, modelyard.domain, modelyard.errors, modelyard.config;"
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
