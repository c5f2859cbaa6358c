"""Worker processes started before the job is read (``python -m modelyard.worker --prestart``):
the pool takes them instead of starting new ones, writes the same bytes, ends the ones it does
not need, and names one that died before it took the job. Run in a child process: the warm
processes are that process's."""

from __future__ import annotations

import json
from pathlib import Path

from tests.batch.support import Model, csv_text, features, request, run_child

CHILD = """
import json, pickle, sys, threading
from modelyard.batch import spawn
from modelyard.batch.coordinator import transform
from modelyard.batch.executor import LocalExecutor

request, source, warm = pickle.loads(open(sys.argv[1], "rb").read())
spawn.prestart(warm)
prestarted = list(spawn._warm)
started_later = []
original = spawn.spawn
def counted():
    started_later.append(1)
    return original()
spawn.spawn = counted
counts = transform(request, source, job="warm", executor=LocalExecutor(2, run_here=True),
                   stop=threading.Event(), unit_bytes=4096)
print(json.dumps({
    "rows": counts.rows_out,
    "started_later": len(started_later),
    "left": len(spawn._warm),
    "exit_codes": [s.process.returncode for s in prestarted],
}))
"""


def _run(model: Model, tmp_path: Path, warm: int, rows: int) -> tuple[dict[str, object], Path]:
    source = tmp_path / "rows.csv"
    data = features(rows, seed=31)
    source.write_bytes(csv_text(data))
    out = tmp_path / "out"
    payload = (request(model, source, out, workers=2), model.source, warm)
    said = run_child(CHILD, tmp_path / "args.pkl", payload)
    assert (out / "rows.csv.out").read_bytes() == model.csv(data)
    return json.loads(said.splitlines()[-1]), out


def test_the_pool_takes_the_prestarted_worker(model: Model, tmp_path: Path) -> None:
    said, _ = _run(model, tmp_path, warm=1, rows=2000)
    assert said == {"rows": 2000, "started_later": 0, "left": 0, "exit_codes": [0]}


def test_prestarted_workers_the_pool_does_not_need_are_ended(model: Model, tmp_path: Path) -> None:
    said, _ = _run(model, tmp_path, warm=3, rows=2000)  # the pool needs the first one
    assert said == {"rows": 2000, "started_later": 0, "left": 0, "exit_codes": [0, -9, -9]}


def test_without_prestarted_workers_the_pool_starts_its_own(model: Model, tmp_path: Path) -> None:
    said, _ = _run(model, tmp_path, warm=0, rows=2000)
    assert said == {"rows": 2000, "started_later": 1, "left": 0, "exit_codes": []}


DEAD = """
import pickle, sys, threading
from modelyard.batch import spawn
from modelyard.batch.coordinator import transform
from modelyard.batch.executor import LocalExecutor
from modelyard.errors import ModelyardError

request, source = pickle.loads(open(sys.argv[1], "rb").read())
spawn.prestart(1)
spawn._warm[0].process.kill()
spawn._warm[0].process.wait()
try:
    transform(request, source, job="dead", executor=LocalExecutor(2, run_here=True),
              stop=threading.Event(), unit_bytes=4096)
except ModelyardError as exc:
    print(f"failed: {exc}")
"""


def test_a_prestarted_worker_that_died_fails_the_job_saying_so(
    model: Model, tmp_path: Path
) -> None:
    source = tmp_path / "rows.csv"
    source.write_bytes(csv_text(features(500, seed=32)))
    payload = (request(model, source, tmp_path / "out", workers=2), model.source)
    said = run_child(DEAD, tmp_path / "args.pkl", payload)
    assert said == "failed: a batch worker process died (exit code -9) before it took the job"
