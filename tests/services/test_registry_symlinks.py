"""Registering a folder with symlinks in it (issue 14, defect 1): a link out of the folder is
refused by name and nothing reaches the artifact store; a loop is reported as a loop.

Real symlinks to a real system file, real stores (SQLite and PostgreSQL), real worker processes.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import JobStatus, Trust
from modelyard.errors import InvalidModelFile
from modelyard.storage import packages

SYSTEM_FILE = Path("/etc/passwd")
SYSTEM_DIGEST = (
    hashlib.sha256(SYSTEM_FILE.read_bytes()).hexdigest() if SYSTEM_FILE.is_file() else ""
)

pytestmark = pytest.mark.skipif(not SYSTEM_DIGEST, reason="needs a readable /etc/passwd")

MODEL_PY = """
from pathlib import Path

import numpy as np


class Model:
    def load(self, artifacts_dir):
        self.w = float((Path(artifacts_dir) / "weight.txt").read_text())

    def predict(self, data):
        return np.asarray(data, dtype=float).sum(axis=1) * self.w
"""

# A SageMaker-style script: a pyfunc model in SM_MODEL_DIR, plus a link to a system file.
LINKING_SCRIPT = f"""
import os
from pathlib import Path

model_dir = Path(os.environ["SM_MODEL_DIR"])
(model_dir / "model.py").write_text({MODEL_PY!r})
(model_dir / "weight.txt").write_text("2.0")
os.symlink({str(SYSTEM_FILE)!r}, model_dir / "passwd")
print("model written", flush=True)
"""


@pytest.fixture
def platform(db_url: str, tmp_path: Path) -> Iterator[Platform]:
    p = build(load_settings({}, home=tmp_path / "home", db_url=db_url))
    yield p
    p.close()


def blobs(platform: Platform) -> set[str]:
    """The digests of every blob in the platform's (local) artifact store."""
    root = Path(platform.settings.resolved_artifact_url)
    return {p.name for p in root.rglob("*") if p.is_file()}


def pyfunc_folder(folder: Path, links: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(MODEL_PY)
    (folder / "weight.txt").write_text("2.0")
    for name, target in links.items():
        os.symlink(target, folder / name)
    return folder


def test_links_out_of_a_pyfunc_folder_are_refused_and_nothing_is_stored(
    platform: Platform, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"  # stands for /etc/ssl: a whole folder of someone's files
    outside.mkdir()
    for i in range(3):
        (outside / f"cert{i}.pem").write_text(f"certificate {i}\n")
    digests = {hashlib.sha256(f"certificate {i}\n".encode()).hexdigest() for i in range(3)}
    folder = pyfunc_folder(tmp_path / "m", {"passwd": str(SYSTEM_FILE), "ssldir": str(outside)})
    platform.registry.register("seed", pyfunc_folder(tmp_path / "ok", {}), flavor="pyfunc",
                               trust=Trust(user_code=True))  # fmt: skip
    before = blobs(platform)
    reg = platform.registry
    with pytest.raises(InvalidModelFile) as caught:
        reg.register("leaky", folder, flavor="pyfunc", trust=Trust(user_code=True))
    assert f"symlink 'passwd' -> '{SYSTEM_FILE}' leaves the model folder" in str(caught.value)
    (folder / "passwd").unlink()
    with pytest.raises(
        InvalidModelFile, match=re.escape(f"symlink 'ssldir' -> '{outside}' leaves")
    ):
        reg.register("leaky", folder, flavor="pyfunc", trust=Trust(user_code=True))
    after = blobs(platform)
    assert SYSTEM_DIGEST not in after and not digests & after
    assert after == before
    assert [m.name for m in reg.list_models()] == ["seed"]


@pytest.mark.parametrize("links", [{"loop": "loop"}, {"a": "b", "b": "a"}], ids=["self", "pair"])
def test_a_symlink_loop_is_reported_as_a_loop(
    platform: Platform, tmp_path: Path, links: dict[str, str]
) -> None:
    folder = pyfunc_folder(tmp_path / "m", links)
    name, target = next(iter(links.items()))
    with pytest.raises(InvalidModelFile) as caught:
        platform.registry.register("looped", folder, flavor="pyfunc", trust=Trust(user_code=True))
    assert f"symlink '{name}' -> '{target}' in {folder} is a symlink loop" in str(caught.value)
    assert blobs(platform) == set() and platform.registry.list_models() == []


def test_a_link_to_a_file_inside_is_packaged_as_that_file(
    platform: Platform, tmp_path: Path
) -> None:
    folder = pyfunc_folder(tmp_path / "m", {})
    (folder / "weight.txt").rename(folder / "real-weight.txt")
    os.symlink("real-weight.txt", folder / "weight.txt")
    reg = platform.registry
    mv = reg.register("linked", folder, flavor="pyfunc", trust=Trust(user_code=True))
    loaded = reg.load(mv.ref)
    try:
        np.testing.assert_allclose(loaded.predict(np.ones((2, 3))), [6.0, 6.0])
    finally:
        loaded.unload()
    files = {f["path"]: f["sha256"] for f in packages.read_manifest(
        platform.artifacts, mv.artifact_digest)["files"]}  # fmt: skip
    assert files["model/code/weight.txt"] == files["model/code/real-weight.txt"]


def test_a_training_script_that_links_a_system_file_fails_and_stores_nothing(
    platform: Platform, tmp_path: Path
) -> None:
    script = tmp_path / "src" / "train.py"  # its folder is copied for the job: its own
    script.parent.mkdir()
    script.write_text(LINKING_SCRIPT)
    train = tmp_path / "train.csv"
    train.write_text("x,y\n1,2\n3,4\n")
    job = platform.training.submit("leaky", script=str(script), train=str(train),
                                   flavor="pyfunc", trust=Trust(user_code=True))  # fmt: skip
    job = platform.jobs.wait(job.name, timeout_s=120)
    assert job.status is JobStatus.FAILED, job
    reason = job.failure_reason or ""
    assert f"symlink 'passwd' -> '{SYSTEM_FILE}' leaves the model folder" in reason, reason
    assert "model written" in platform.jobs.logs(job.name)
    assert SYSTEM_DIGEST not in blobs(platform)
    assert platform.registry.list_models() == []
