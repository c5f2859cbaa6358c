"""The job worker's command line: ``[--prestart MODULE:N]... JOB``; anything else is refused
(exit code 2, usage on stderr) before a module is imported or a store opened."""

from __future__ import annotations

import pytest

from modelyard import worker


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["a", "b"],
        ["--prestart", "modelyard.batch.spawn:1"],
        ["--prestart", "no-count", "JOB"],
        ["--prestart", "module:x", "JOB"],
        ["--prestart", ":1", "JOB"],
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
