"""The Ray executor runs a batch job's units with Ray Data and writes what the local executor
writes, byte for byte.

One local Ray serves the whole module: the fixture starts it as a user's ``ray.init()`` would
(the executor then uses it and leaves it running) and, at the end, shuts it down and waits
until none of the processes it started is left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelyard.batch.coordinator import transform
from modelyard.batch.executor import LocalExecutor
from modelyard.batch.model import ModelSource
from modelyard.batch.plan import JobSpec, WorkUnit
from modelyard.batch.ray_executor import RayExecutor
from modelyard.batch.sink import UnitResult
from modelyard.bootstrap import build
from modelyard.config import load_settings
from modelyard.domain import ModelSpec
from modelyard.domain.batch import TransformRequest
from modelyard.errors import ArtifactMissing, InvalidPayload, JobFailed
from tests.waiting import wait_for

pytest.importorskip("ray.data")
# Ray Data 2.60 warns about its own defaults when it builds its context: nothing to act on.
pytestmark = pytest.mark.filterwarnings(r"ignore::DeprecationWarning:ray\.data\.context")

N_FEATURES = 6
UNIT_BYTES = 16 * 1024  # small units: a file is cut into several, as a large one would be
REPO = Path(__file__).resolve().parents[2]


def _descendants(root: int) -> dict[int, str]:
    """pid -> command line of the live processes below ``root``."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found: dict[int, str] = {}
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - set(found)
        for pid in frontier:
            try:
                found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                found[pid] = ""
    return found


@pytest.fixture(scope="module")
def ray_session() -> Iterator[Any]:
    import ray

    before = set(_descendants(os.getpid()))
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    try:
        yield ray
    finally:
        started = set(_descendants(os.getpid())) - before
        ray.shutdown()
        left = wait_for(
            "every process the local Ray started to end",
            lambda: {p: c for p, c in _descendants(os.getpid()).items() if p in started},
            lambda still: not still,
        )
        assert not left


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModelSource, Any]]:
    """A small XGBoost model registered with a float32 signature, and its booster."""
    import xgboost

    home = tmp_path_factory.mktemp("ray-batch") / "home"
    platform = build(load_settings({}, home=home))
    rng = np.random.default_rng(11)
    x = rng.normal(size=(400, N_FEATURES)).astype(np.float32)
    names = [f"f{i}" for i in range(N_FEATURES)]
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3, "seed": 1},
        xgboost.DMatrix(x, label=(x[:, 0] + x[:, 1] > 0).astype(int), feature_names=names),
        num_boost_round=8,
    )
    path = home.parent / "model.ubj"
    booster.save_model(path)
    signature = {
        "inputs": [{"name": n, "dtype": "float32"} for n in names],
        "outputs": [{"name": None, "dtype": "float32"}],
    }
    version = platform.registry.register("scorer", str(path), flavor="xgboost",
                                         signature=signature)  # fmt: skip
    source = ModelSource(
        artifacts=platform.artifacts,
        spec=ModelSpec.from_version(version),
        scratch=str(home.parent / "scratch"),
    )
    try:
        yield source, booster
    finally:
        platform.close()


def _rows(count: int, seed: int) -> np.ndarray:
    return np.round(np.random.default_rng(seed).normal(size=(count, N_FEATURES)), 3)


def _write_inputs(folder: Path) -> dict[str, np.ndarray]:
    """Two CSV files (one cut into several units) and a Parquet file of several row groups."""
    folder.mkdir()
    rows = {"a.csv": _rows(3000, 1), "b.csv": _rows(40, 2), "c.parquet": _rows(2500, 3)}
    for name in ("a.csv", "b.csv"):
        lines = "\n".join(",".join(f"{v:g}" for v in row) for row in rows[name])
        (folder / name).write_text(lines + "\n")
    table = pa.table({f"f{i}": rows["c.parquet"][:, i] for i in range(N_FEATURES)})
    pq.write_table(table, folder / "c.parquet", row_group_size=500)
    return rows


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _no_model_copies_left(source: ModelSource) -> None:
    """Every run's actors materialise the model in a folder the run removes when it ends."""
    wait_for(
        "the Ray run's model copies to be removed",
        lambda: sorted(p.name for p in Path(source.scratch).glob("ray-*")),
        lambda left: not left,
    )


def _request(inputs: Path, output: Path, **more: Any) -> TransformRequest:
    return TransformRequest(model="scorer:1", input=str(inputs), output=str(output), **more)


def test_ray_writes_the_bytes_the_local_executor_writes(
    ray_session: Any, model: tuple[ModelSource, Any], tmp_path: Path
) -> None:
    source, booster = model
    rows = _write_inputs(tmp_path / "in")
    local = transform(_request(tmp_path / "in", tmp_path / "local"), source, job="local",
                      executor=LocalExecutor(2), unit_bytes=UNIT_BYTES)  # fmt: skip
    on_ray = transform(_request(tmp_path / "in", tmp_path / "ray"), source, job="ray",
                       executor=RayExecutor(workers=2), unit_bytes=UNIT_BYTES)  # fmt: skip

    assert on_ray == local
    assert on_ray.rows_out == sum(len(r) for r in rows.values())
    written = _files(tmp_path / "ray")
    assert sorted(written) == ["a.csv.out", "b.csv.out", "c.parquet.out.parquet"]
    assert written == _files(tmp_path / "local")
    expected = booster.inplace_predict(rows["a.csv"].astype(np.float32))
    got = np.array([float(v) for v in written["a.csv.out"].split()], dtype=np.float32)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert ray_session.is_initialized()  # the caller's Ray is left to the caller
    _no_model_copies_left(source)


class _StopAfterFirst:
    """An executor around another that asks for a stop once the first unit is done."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seen = 0

    def run(
        self,
        job: JobSpec,
        units: Sequence[WorkUnit],
        done: Callable[[UnitResult], None],
        stop: threading.Event,
    ) -> None:
        def first_then_stop(result: UnitResult) -> None:
            self.seen += 1
            done(result)
            stop.set()

        self.inner.run(job, units, first_then_stop, stop)


class _Counting:
    """An executor around another that records how many units it was given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.given: list[int] = []

    def run(self, job: JobSpec, units: Sequence[WorkUnit], done: Any, stop: Any) -> None:
        self.given.append(len(units))
        self.inner.run(job, units, done, stop)


def test_a_job_stopped_on_ray_resumes_locally_with_the_same_bytes(
    ray_session: Any, model: tuple[ModelSource, Any], tmp_path: Path
) -> None:
    source, _ = model
    _write_inputs(tmp_path / "in")
    counting = _Counting(LocalExecutor(2))
    transform(_request(tmp_path / "in", tmp_path / "whole"), source, job="whole",
              executor=counting, unit_bytes=UNIT_BYTES)  # fmt: skip
    total = counting.given[0]
    stopping = _StopAfterFirst(RayExecutor(workers=2))

    with pytest.raises(JobFailed, match="finished work is kept"):
        transform(_request(tmp_path / "in", tmp_path / "out"), source, job="halted",
                  executor=stopping, unit_bytes=UNIT_BYTES)  # fmt: skip
    resumed = _Counting(LocalExecutor(2))
    transform(_request(tmp_path / "in", tmp_path / "out"), source, job="halted",
              executor=resumed, unit_bytes=UNIT_BYTES)  # fmt: skip

    assert stopping.seen == 1
    # What Ray finished is not run again: the unit handed to ``done``, and any other its
    # actors finished before they were let go (their runners recorded them).
    assert len(resumed.given) == 1 and resumed.given[0] <= total - 1
    assert _files(tmp_path / "out") == _files(tmp_path / "whole")
    _no_model_copies_left(source)


def test_a_bad_record_on_ray_fails_the_job_naming_file_and_line(
    ray_session: Any, model: tuple[ModelSource, Any], tmp_path: Path
) -> None:
    source, _ = model
    folder = tmp_path / "in"
    folder.mkdir()
    lines = [",".join(f"{v:g}" for v in row) for row in _rows(1500, 4)]
    lines[1200] = "1,2,oops,4,5,6"
    (folder / "data.csv").write_text("\n".join(lines) + "\n")

    with pytest.raises(InvalidPayload, match=r"data\.csv, line 1201"):
        transform(_request(folder, tmp_path / "out"), source, job="bad",
                  executor=RayExecutor(workers=2), unit_bytes=UNIT_BYTES)  # fmt: skip
    assert not (tmp_path / "out" / "data.csv.out").exists()
    _no_model_copies_left(source)


def test_a_model_the_actors_cannot_load_fails_with_its_own_error(
    ray_session: Any, model: tuple[ModelSource, Any], tmp_path: Path
) -> None:
    source, _ = model
    _write_inputs(tmp_path / "in")
    empty = build(load_settings({}, home=tmp_path / "empty-home"))
    try:
        elsewhere = ModelSource(empty.artifacts, source.spec, source.scratch)
        with pytest.raises(ArtifactMissing):
            transform(_request(tmp_path / "in", tmp_path / "out"), elsewhere, job="nomodel",
                      executor=RayExecutor(workers=1))  # fmt: skip
    finally:
        empty.close()
    assert not (tmp_path / "out" / "a.csv.out").exists()


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO,
        check=False,
    )  # fmt: skip


def test_ray_is_imported_only_when_a_job_runs_on_it() -> None:
    run = _python(
        "import json, sys\n"
        "from modelyard.batch.ray_executor import RayExecutor\n"
        "RayExecutor(workers=2, address='ray://nowhere:10001')\n"
        "print(json.dumps('ray' in sys.modules))\n"
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) is False


def test_without_ray_the_executor_names_the_install_command() -> None:
    run = _python(
        "import sys, threading\n"
        "sys.modules['ray'] = None\n"  # as if Ray were not installed
        "from modelyard.batch.ray_executor import RayExecutor\n"
        "from modelyard.errors import MissingDependency\n"
        "try:\n"
        "    RayExecutor().run(None, [object()], print, threading.Event())\n"
        "except MissingDependency as exc:\n"
        "    print(exc)\n"
    )
    assert run.returncode == 0, run.stderr
    assert "pip install 'modelyard[ray]'" in run.stdout
