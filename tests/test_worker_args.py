"""The job worker's command line: ``[--prestart MODULE:N]... JOB``. Anything else is refused
(exit code 2, usage on stderr); each prestart is called, in order, before the job runs, and one
that fails costs only a warning."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelyard import worker
from modelyard.errors import JobNotFound


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["a", "b"],
        ["--prestart", "modelyard.batch.spawn:1"],
        ["--prestart", "no-count", "JOB"],
        ["--prestart", "module:x", "JOB"],
        ["--prestart", ":1", "JOB"],
        ["--prestart", "module:\u00b2", "JOB"],
        ["--other", "JOB"],
    ],
)
def test_a_command_line_it_cannot_read_is_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert worker.main(argv) == 2
    assert "usage: python -m modelyard.worker [--prestart MODULE:N]... JOB_NAME" in (
        capsys.readouterr().err
    )


PROBE = """
import os

def prestart(count):
    with open(os.environ["PRESTART_PROBE"], "a") as out:
        out.write(f"{count}\\n")
"""


def test_prestart_runs_before_the_job_which_is_named_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "prestart_probe.py").write_text(PROBE)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [n for n in os.environ if n.startswith("MODELYARD_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PRESTART_PROBE", str(tmp_path / "probe.txt"))
    argv = ["--prestart", "prestart_probe:3", "--prestart", "prestart_probe:1", "no-such-job"]
    with pytest.raises(JobNotFound, match="no-such-job"):
        worker.main(argv)
    assert (tmp_path / "probe.txt").read_text() == "3\n1\n"


def test_a_prestart_that_fails_only_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in os.environ if n.startswith("MODELYARD_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "home"))
    with pytest.raises(JobNotFound):
        worker.main(["--prestart", "no_such_module_here:2", "no-such-job"])
    assert "warning: --prestart no_such_module_here:2 failed" in capsys.readouterr().err
