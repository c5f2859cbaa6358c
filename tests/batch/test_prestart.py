"""Worker processes started before the job is read (``python -m modelyard.worker --prestart``):
the pool takes them instead of starting new ones, writes the same bytes, and the ones it does
not need leave quietly. Run in a child process: the warm processes are that process's."""

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


def test_prestarted_workers_the_pool_does_not_need_leave_quietly(
    model: Model, tmp_path: Path
) -> None:
    said, _ = _run(model, tmp_path, warm=3, rows=2000)  # the pool needs one
    assert said == {"rows": 2000, "started_later": 0, "left": 0, "exit_codes": [0, 0, 0]}


def test_without_prestarted_workers_the_pool_starts_its_own(model: Model, tmp_path: Path) -> None:
    said, _ = _run(model, tmp_path, warm=0, rows=2000)
    assert said == {"rows": 2000, "started_later": 1, "left": 0, "exit_codes": []}
