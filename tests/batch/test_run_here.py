"""A job's own worker process runs units too (a thread of it, with one worker process fewer):
the outputs are the same bytes, and a bad record still fails the job naming its line. Run in
a child process: the thread loads the model lean, which a shared process must not do."""

from __future__ import annotations

from pathlib import Path

from tests.batch.support import Model, csv_text, features, request, run_child

CHILD = """
import pickle, sys, threading
from modelyard.batch.executor import LocalExecutor
from modelyard.batch.coordinator import transform
from modelyard.errors import ModelyardError

request, source = pickle.loads(open(sys.argv[1], "rb").read())
try:
    counts = transform(request, source, job="here", executor=LocalExecutor(2, run_here=True),
                       stop=threading.Event(), unit_bytes=4096)
except ModelyardError as exc:
    print(f"failed: {exc}")
else:
    print(f"done: {counts.rows_out}")
"""


def _run(model: Model, tmp_path: Path, data: bytes) -> tuple[str, Path]:
    source = tmp_path / "rows.csv"
    source.write_bytes(data)
    out = tmp_path / "out"
    payload = (request(model, source, out, workers=2), model.source)
    return run_child(CHILD, tmp_path / "args.pkl", payload), out


def test_thread_and_process_workers_write_the_same_bytes(model: Model, tmp_path: Path) -> None:
    rows = features(2000, seed=21)
    said, out = _run(model, tmp_path, csv_text(rows))
    assert said == "done: 2000"
    assert (out / "rows.csv.out").read_bytes() == model.csv(rows)


def test_a_bad_record_fails_the_job_with_its_line(model: Model, tmp_path: Path) -> None:
    rows = features(2000, seed=22)
    lines = csv_text(rows).splitlines(keepends=True)
    lines[1500] = b"1,2,not-a-number,4,5\n"
    said, out = _run(model, tmp_path, b"".join(lines))
    assert said.startswith("failed: ") and "line 1501" in said, said
    assert not (out / "rows.csv.out").exists()
