"""muted_lines: a native library's lines on fd 2 are dropped for one call; everything else
that reaches fd 2 meanwhile (another thread's output, Python's own stderr) still arrives."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from modelyard.runtimes.native_stderr import muted_lines
from tests.waiting import DEADLINE_S


def test_only_the_muted_lines_are_dropped(capfd: pytest.CaptureFixture[str]) -> None:
    written = threading.Event()

    def other_thread() -> None:
        os.write(2, b"another thread's line\n")
        written.set()

    with muted_lines(b"[Lib] "):
        os.write(2, b"[Lib] [Fatal] cannot read it\n")
        print("python's own stderr", file=sys.stderr)
        thread = threading.Thread(target=other_thread)
        thread.start()
        assert written.wait(DEADLINE_S)
        thread.join()
    assert capfd.readouterr().err == "python's own stderr\nanother thread's line\n"
    os.write(2, b"[Lib] after the block: kept\n")
    assert capfd.readouterr().err == "[Lib] after the block: kept\n"


def test_stderr_comes_back_when_the_call_raises(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError, match="boom"), muted_lines(b"[Lib] "):
        os.write(2, b"[Lib] [Fatal] boom\nkept\n")
        raise RuntimeError("boom")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "kept\nafter\n"
