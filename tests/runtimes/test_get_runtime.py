"""Looking runtimes up by flavor name through the ``modelyard.runtimes`` entry points."""

from __future__ import annotations

import subprocess
import sys

import pytest

from modelyard.errors import UnknownFlavor
from modelyard.runtimes import Runtime, available_flavors, get_runtime

FLAVORS = ["lightgbm", "onnx", "pyfunc", "sklearn", "xgboost"]


def test_available_flavors_lists_the_builtin_ones() -> None:
    assert set(FLAVORS) <= set(available_flavors())
    assert available_flavors() == sorted(available_flavors())


@pytest.mark.parametrize("flavor", FLAVORS)
def test_get_runtime_returns_a_cached_runtime_of_that_flavor(flavor: str) -> None:
    runtime = get_runtime(flavor)
    assert isinstance(runtime, Runtime)
    assert runtime.flavor == flavor
    assert get_runtime(flavor) is runtime


def test_unknown_flavor_lists_the_available_ones() -> None:
    with pytest.raises(UnknownFlavor) as info:
        get_runtime("tensorflow")
    message = str(info.value)
    assert "'tensorflow'" in message
    for flavor in FLAVORS:
        assert flavor in message


def test_lookup_does_not_import_model_libraries() -> None:
    code = (
        "import sys\n"
        "from modelyard.runtimes import available_flavors, get_runtime\n"
        "for f in available_flavors(): get_runtime(f)\n"
        "heavy = ['xgboost', 'lightgbm', 'sklearn', 'onnxruntime', 'onnx', 'skops', 'pandas']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"
