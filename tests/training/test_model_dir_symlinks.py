"""A training script's SM_MODEL_DIR with symlinks in it (issue 14, defect 1): detection follows
no link out of the folder, and a link inside stands for its file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from modelyard.errors import InvalidModelFile
from modelyard.training.flavor_detect import detect_flavor, find_model_file

SYSTEM_FILE = Path("/etc/passwd")

pytestmark = pytest.mark.skipif(not SYSTEM_FILE.is_file(), reason="needs /etc/passwd")


@pytest.fixture(scope="module")
def booster_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    params = {"objective": "binary:logistic", "max_depth": 2, "nthread": 1}
    booster = xgb.train(params, xgb.DMatrix(x, label=x[:, 0] > 0), num_boost_round=2)
    path = tmp_path_factory.mktemp("booster") / "model.ubj"
    booster.save_model(str(path))
    return path


def test_a_model_file_linked_to_a_system_file_is_refused(tmp_path: Path) -> None:
    # SageMaker's name is xgboost whatever its bytes: the link alone would make it the model.
    os.symlink(SYSTEM_FILE, tmp_path / "xgboost-model")
    for find in (detect_flavor, lambda d: find_model_file(d, "xgboost")):
        with pytest.raises(InvalidModelFile) as caught:
            find(tmp_path)
        assert f"symlink 'xgboost-model' -> '{SYSTEM_FILE}' leaves the model folder" in str(
            caught.value
        )


def test_a_stray_link_out_is_refused_even_beside_a_real_model(
    tmp_path: Path, booster_file: Path
) -> None:
    (tmp_path / "model.ubj").write_bytes(booster_file.read_bytes())
    (tmp_path / "logs").mkdir()
    os.symlink(SYSTEM_FILE, tmp_path / "logs" / "passwd")
    with pytest.raises(InvalidModelFile, match=r"symlink 'logs/passwd' -> '/etc/passwd' leaves"):
        detect_flavor(tmp_path)
    os.symlink("loop", tmp_path / "loop")
    (tmp_path / "logs" / "passwd").unlink()
    with pytest.raises(InvalidModelFile, match=r"symlink 'loop' -> 'loop' .* symlink loop"):
        detect_flavor(tmp_path)


def test_a_link_inside_the_folder_is_detected_as_its_file(
    tmp_path: Path, booster_file: Path
) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "final.ubj").write_bytes(booster_file.read_bytes())
    os.symlink("checkpoints/final.ubj", tmp_path / "model.ubj")
    os.symlink(SYSTEM_FILE, tmp_path / ".hidden-link")  # hidden names are never looked at
    assert detect_flavor(tmp_path) == ("xgboost", tmp_path / "model.ubj")
