"""Processes opening Optuna's storage on a database it has not used yet, all at once.

Optuna checks for its tables and then creates them, so two ``tune`` commands starting together
on a fresh store clashed ("table studies already exists"). Found while hardening (issue 14).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import module_database

WORKER = r"""
import sys, time
from pathlib import Path
from modelyard.tuning.study import open_study

url, ready, me, workers = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
(ready / me).touch()
deadline = time.monotonic() + 120
while len(list(ready.iterdir())) < workers and time.monotonic() < deadline:
    time.sleep(0.0005)
with open_study(url, f"study-{me}", direction="minimize", create=True) as study:
    print(study.study_name)
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with module_database(request) as url:
        yield url


def test_processes_creating_studies_on_a_new_database_together_all_succeed(
    db_url: str, tmp_path: Path
) -> None:
    """Without the retry this failed in every run, on both backends."""
    from modelyard.bootstrap import build
    from modelyard.config import load_settings

    build(load_settings({}, home=tmp_path / "home", db_url=db_url)).close()  # our schema only
    ready = tmp_path / "ready"
    ready.mkdir()
    workers = 4
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, db_url, str(ready), str(i), str(workers)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(workers)
    ]
    outputs = [p.communicate(timeout=180) for p in procs]
    for i, ((out, err), proc) in enumerate(zip(outputs, procs, strict=True)):
        assert proc.returncode == 0, err[-2000:]
        assert out.strip() == f"study-{i}"
