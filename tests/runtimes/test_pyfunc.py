"""The pyfunc flavor: user classes shipped as source code, loaded only with user-code trust."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from modelyard.domain import Trust
from modelyard.errors import InvalidModelFile, UnsafeModelFormat
from modelyard.runtimes import LoadedModel, SavedModel
from modelyard.runtimes.pyfunc_runtime import PyFuncRuntime

RT = PyFuncRuntime()
X = np.arange(12, dtype=float).reshape(4, 3)

# A model whose factor comes from a sibling module and whose offset is an artifact file.
MODEL_PY = """
from pathlib import Path

from helpers import FACTOR


class Model:
    def load(self, artifacts_dir):
        self.offset = float((Path(artifacts_dir) / "offset.txt").read_text())

    def predict(self, data):
        return [float(row.sum()) * FACTOR + self.offset for row in data]
"""

SINGLE_PY = """
import numpy as np


class Model:
    def load(self, artifacts_dir):
        self.loaded_from = artifacts_dir

    def predict(self, data):
        return np.asarray(data).max(axis=1)
"""


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


def model_folder(folder: Path, factor: int, offset: float) -> Path:
    return write(
        folder,
        {"model.py": MODEL_PY, "helpers.py": f"FACTOR = {factor}\n", "offset.txt": str(offset)},
    )


def save(source: object, tmp_path: Path, name: str = "package") -> tuple[SavedModel, Path]:
    dest = tmp_path / name
    dest.mkdir()
    return RT.save(source, dest, trust=Trust()), dest


def roundtrip(source: object, tmp_path: Path, name: str = "package") -> LoadedModel:
    saved, dest = save(source, tmp_path, name)
    return RT.load(dest, saved)


def test_folder_round_trip_with_artifacts_and_helpers(tmp_path) -> None:
    saved, dest = save(model_folder(tmp_path / "src", factor=2, offset=0.5), tmp_path)
    assert saved.model_format == "python"
    assert saved.options == {"entry_point": "model:Model"}
    assert saved.trust == Trust(user_code=True)
    assert sorted(p.name for p in (dest / "code").iterdir()) == [
        "helpers.py",
        "model.py",
        "offset.txt",
    ]
    out = RT.load(dest, saved).predict(X)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, X.sum(axis=1) * 2 + 0.5)


def test_two_versions_with_the_same_module_names_load_side_by_side(tmp_path) -> None:
    first = roundtrip(model_folder(tmp_path / "v1", factor=1, offset=0.0), tmp_path, "p1")
    second = roundtrip(model_folder(tmp_path / "v2", factor=10, offset=1.0), tmp_path, "p2")
    np.testing.assert_allclose(first.predict(X), X.sum(axis=1))
    np.testing.assert_allclose(second.predict(X), X.sum(axis=1) * 10 + 1.0)
    assert "helpers" not in sys.modules and "model" not in sys.modules
    first.unload()
    second.unload()


def test_entrypoint_file_names_another_module_and_class(tmp_path) -> None:
    source = write(
        tmp_path / "src",
        {
            "serve.py": "class Scorer:\n    def load(self, d): pass\n"
            "    def predict(self, data): return [len(r) for r in data]\n",
            "entrypoint.txt": "serve:Scorer\n",
        },
    )
    saved, dest = save(source, tmp_path)
    assert saved.options == {"entry_point": "serve:Scorer"}
    np.testing.assert_array_equal(RT.load(dest, saved).predict(X), [3, 3, 3, 3])


def test_single_python_file(tmp_path) -> None:
    source = write(tmp_path / "src", {"my_model.py": SINGLE_PY}) / "my_model.py"
    saved, dest = save(source, tmp_path)
    assert saved.options == {"entry_point": "my_model:Model"}
    np.testing.assert_array_equal(RT.load(dest, saved).predict(X), X.max(axis=1))


def test_in_memory_instance_ships_its_module_file(tmp_path, monkeypatch) -> None:
    file = write(tmp_path / "src", {"scorer_mod.py": SINGLE_PY}) / "scorer_mod.py"
    spec = importlib.util.spec_from_file_location("scorer_mod", file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "scorer_mod", module)  # as a real import would
    spec.loader.exec_module(module)
    saved, dest = save(module.Model(), tmp_path)
    assert saved.options == {"entry_point": "scorer_mod:Model"}
    assert [p.name for p in (dest / "code").iterdir()] == ["scorer_mod.py"]
    loaded = RT.load(dest, saved)
    np.testing.assert_array_equal(loaded.predict(X), X.max(axis=1))


def test_code_runs_only_at_load_and_only_with_user_code_trust(tmp_path) -> None:
    marker = tmp_path / "ran"
    source = write(
        tmp_path / "src",
        {"model.py": f"from pathlib import Path\nPath({str(marker)!r}).touch()\n" + SINGLE_PY},
    )
    saved, dest = save(source, tmp_path)
    assert not marker.exists()  # save() checks the code without running it
    with pytest.raises(UnsafeModelFormat, match="user_code=True"):
        RT.load(dest, SavedModel(saved.model_format, Trust(), saved.options))
    assert not marker.exists()
    RT.load(dest, saved)
    assert marker.exists()


def test_missing_entry_module_or_class_is_named(tmp_path) -> None:
    no_module = write(tmp_path / "a", {"other.py": SINGLE_PY})
    with pytest.raises(InvalidModelFile, match="no module 'model'"):
        save(no_module, tmp_path, "p1")
    no_class = write(tmp_path / "b", {"model.py": "class Other:\n    pass\n"})
    with pytest.raises(InvalidModelFile, match="no class 'Model'"):
        save(no_class, tmp_path, "p2")
    bad_entry = write(tmp_path / "c", {"model.py": SINGLE_PY, "entrypoint.txt": "model"})
    with pytest.raises(InvalidModelFile, match="malformed entry point"):
        save(bad_entry, tmp_path, "p3")


def test_other_sources_are_refused(tmp_path) -> None:
    text = tmp_path / "model.txt"
    text.write_text("not python")
    with pytest.raises(InvalidModelFile, match=r"expected a folder or a \.py file"):
        save(text, tmp_path, "p1")
    with pytest.raises(InvalidModelFile, match="no such file"):
        save(tmp_path / "absent", tmp_path, "p2")
    with pytest.raises(InvalidModelFile, match="needs load"):
        save(3.14, tmp_path, "p3")


def test_broken_user_code_is_reported_as_an_invalid_model(tmp_path) -> None:
    broken = write(tmp_path / "a", {"model.py": "class Model(:\n"})
    with pytest.raises(InvalidModelFile, match="not valid Python"):
        save(broken, tmp_path, "p1")
    failing = write(
        tmp_path / "b",
        {
            "model.py": "class Model:\n    def load(self, d): raise OSError('weights gone')\n"
            "    def predict(self, data): return data\n"
        },
    )
    saved, dest = save(failing, tmp_path, "p2")
    with pytest.raises(InvalidModelFile, match="weights gone"):
        RT.load(dest, saved)
