"""Bounded job logs: real files, written and read the way a job and ``jobs logs`` do."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from modelyard.errors import InvalidInput
from modelyard.training.joblog import (
    JobLog,
    LogFollower,
    LogLimits,
    finalize,
    find_cut,
    head_stop,
    last_lines,
    read_range,
    tail_start,
)
from modelyard.training.metric_definitions import parse_metric_definition
from modelyard.training.script import run_script

LIMITS = LogLimits(head_bytes=1000, tail_bytes=4096)
MARKER = re.compile(r"^\[modelyard: ([\d,]+) bytes \(([\d,]+) lines\) cut here; .*\]$", re.M)
NOTE = re.compile(r"^\[modelyard: ([\d,]+) more bytes were cut here while following\]$", re.M)


def _lines(count: int) -> list[str]:
    return ["FIRST"] + [f"line {i:05d} " + "." * (i % 50) for i in range(count)] + ["LAST"]


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_a_log_past_its_bound_keeps_its_head_a_marker_and_its_tail(tmp_path: Path) -> None:
    path = tmp_path / "job.log"
    lines = _lines(3000)
    written = "".join(line + "\n" for line in lines).encode()
    with JobLog(path, LIMITS) as log:
        for line in lines:
            log.write(line + "\n")
            assert path.stat().st_size <= LIMITS.live_bytes
    kept = finalize(path, LIMITS)
    data = kept.read_bytes()
    assert len(data) <= LIMITS.kept_bytes < len(written)
    text = data.decode()
    (found,) = MARKER.finditer(text)
    head, tail = text[: found.start()], text[found.end() + 1 :]
    # Whole lines on both sides of the marker, the very first and the very last among them.
    assert head.startswith("FIRST\nline 00000 \n") and head.endswith("\n")
    assert tail.endswith("\nLAST\n") and tail.split("\n")[0] in lines
    assert written.startswith(head.encode()) and written.endswith(tail.encode())
    assert len(head) > LIMITS.head_bytes // 2 and len(tail) > LIMITS.tail_bytes // 2
    # The marker's numbers are exactly what is missing.
    cut_bytes, cut_lines = _number(found.group(1)), _number(found.group(2))
    assert cut_bytes == len(written) - len(head) - len(tail)
    assert cut_lines == len(lines) - head.count("\n") - tail.count("\n")
    assert "first 1,000 and last 4,096 bytes" in found.group(0)
    # The log itself is left for its owner to remove.
    assert path.is_file()


def test_a_short_log_is_kept_whole(tmp_path: Path) -> None:
    path = tmp_path / "job.log"
    with JobLog(path, LIMITS) as log:
        log.write("only a few lines\nof output, ünïcode too\n")
    kept = finalize(path, LIMITS)
    written = "only a few lines\nof output, ünïcode too\n".encode()
    assert kept.read_bytes() == path.read_bytes() == written
    with open(kept, "rb") as f:
        assert find_cut(f, LIMITS.head_bytes) is None


def test_a_head_inside_one_long_line_is_cut_there(tmp_path: Path) -> None:
    path = tmp_path / "job.log"
    long = "y" * 50_000
    with JobLog(path, LIMITS) as log:
        log.write(long + "\n")
        log.write("after\n")
    text = finalize(path, LIMITS).read_text()
    (found,) = MARKER.finditer(text)
    # The head is the first head_bytes of the line, ended so the marker starts a line.
    assert text[: found.start()] == "y" * LIMITS.head_bytes + "\n"
    assert text.endswith("y\nafter\n")
    tail = text[found.end() + 1 :]
    # The newline closing the head stands for the first byte cut.
    written = len(long) + 1 + len("after\n")
    assert _number(found.group(1)) == written - LIMITS.head_bytes - 1 - len(tail)


def test_rewrites_keep_the_processs_stdout_in_the_log(tmp_path: Path) -> None:
    """The worker's stdout and stderr point at its log: a rewrite must not leave them writing
    into a file nobody reads any more."""
    path = tmp_path / "job.log"
    child = textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        from modelyard.training.joblog import JobLog, LogLimits
        print("raw before", flush=True)
        with JobLog(Path({str(path)!r}), LogLimits(head_bytes=100, tail_bytes=4096)) as log:
            for i in range(2000):
                log.write(f"line {{i}}\\n")
        print("raw after", flush=True)
        os.write(2, b"stderr after\\n")
    """)
    with open(path, "ab") as out:
        done = subprocess.run([sys.executable, "-c", child], stdout=out, stderr=out, timeout=60)
    assert done.returncode == 0
    text = path.read_text()
    assert MARKER.search(text), text[:300]
    assert text.startswith("raw before\n")
    assert text.endswith("line 1999\nraw after\nstderr after\n")


def test_following_a_log_shows_everything_in_order_once_or_says_what_was_cut(
    tmp_path: Path,
) -> None:
    path = tmp_path / "job.log"
    lines = _lines(4000)
    written = "".join(line + "\n" for line in lines)
    follower = LogFollower(LIMITS)
    shown: list[str] = []
    with JobLog(path, LIMITS) as log:
        for number, line in enumerate(lines):
            log.write(line + "\n")
            if number % 401 == 0:  # a reader polling now and then, across many rewrites
                with open(path, "rb") as f:
                    shown.extend(follower.read(f))
    # The job ends: what is left is read from the kept copy, as from the artifact store.
    kept = finalize(path, LIMITS)
    path.unlink()
    with open(kept, "rb") as f:
        shown.extend(follower.read(f))
        assert "".join(follower.read(f)) == ""  # nothing new: nothing shown twice
    out = "".join(shown)
    assert out.startswith("FIRST\n") and out.endswith("\nLAST\n")
    # Every stretch shown is the next piece of the output; the marker and the notes account
    # for every byte not shown.
    pos, accounted = 0, 0
    for piece in re.split(r"(?m)^(\[modelyard: .*\]\n)", out):
        said = MARKER.match(piece.rstrip("\n")) or NOTE.match(piece.rstrip("\n"))
        if said:
            pos += _number(said.group(1))
            accounted += _number(said.group(1))
            continue
        assert written.startswith(piece, pos), (pos, piece[:80])
        pos += len(piece)
    assert pos == len(written) and accounted > 0
    assert len(NOTE.findall(out)) >= 1  # it fell behind a rewrite at least once


def test_following_from_the_last_lines(tmp_path: Path) -> None:
    path = tmp_path / "job.log"
    with JobLog(path, LIMITS) as log:
        for line in _lines(2000):
            log.write(line + "\n")
        follower = LogFollower(LIMITS)
        with open(path, "rb") as f:
            follower.skip_to_last_lines(f, 2)
            assert "".join(follower.read(f)) == "line 01999 " + "." * 49 + "\nLAST\n"
        log.write("one more\n")
        with open(path, "rb") as f:
            assert "".join(follower.read(f)) == "one more\n"


@pytest.mark.parametrize("ending", ["\n", ""])
def test_first_and_last_lines_are_found_without_reading_the_whole_log(
    tmp_path: Path, ending: str
) -> None:
    path = tmp_path / "job.log"
    # Lines longer than one backwards block, and short ones.
    lines = ["a" * 200_000, "b", "c" * 150_000, "d", "e"]
    path.write_text("\n".join(lines) + ending)
    with open(path, "rb") as f:

        def tail(n: int) -> str:
            return "".join(read_range(f, tail_start(f, n)))

        def head(n: int) -> str:
            return "".join(read_range(f, 0, head_stop(f, n)))

        assert tail(0) == "" and head(0) == ""
        assert tail(1) == "e" + ending
        assert tail(3) == "c" * 150_000 + "\nd\ne" + ending
        assert tail(5) == tail(50) == path.read_text()
        assert head(1) == "a" * 200_000 + "\n"
        assert head(2) == "a" * 200_000 + "\nb\n"
        assert head(5) == head(50) == path.read_text()


def test_last_lines_are_cut_short_for_a_failure_reason(tmp_path: Path) -> None:
    path = tmp_path / "job.log"
    path.write_text("early\n" + "z" * 1_000_000 + "\nTraceback: boom\n")
    assert last_lines(path, 2, max_chars=100) == "z" * 100 + "…\nTraceback: boom"
    assert last_lines(path, 1) == "Traceback: boom"
    assert last_lines(tmp_path / "missing.log", 5) == ""


def test_limits_are_checked() -> None:
    with pytest.raises(InvalidInput, match="tail bytes"):
        LogLimits(head_bytes=10, tail_bytes=0)
    with pytest.raises(InvalidInput, match="head bytes"):
        LogLimits(head_bytes=-1)


def test_a_script_printing_a_flood_and_an_endless_line_leaves_a_bounded_log(
    tmp_path: Path,
) -> None:
    (tmp_path / "src").mkdir()
    script = tmp_path / "src" / "train.py"
    script.write_text(
        textwrap.dedent("""
        import os, sys
        print("first line", flush=True)
        for _ in range(12):
            sys.stdout.write("x" * 1_000_000 + "\\n")
        sys.stdout.write("q" * 3_000_000)   # one line of 3 MB ...
        print(" accuracy=0.5")              # ... that ends here, with a metric in its tail
        print("accuracy=0.75")
        open(os.path.join(os.environ["SM_MODEL_DIR"], "model.onnx"), "wb").close()
    """)
    )
    log_path = tmp_path / "train.log"
    limits = LogLimits(head_bytes=100_000, tail_bytes=500_000)
    with JobLog(log_path, limits) as log:
        result = run_script(
            script,
            channels={},
            hyperparameters={},
            work_dir=tmp_path / "work",
            log_file=log,
            metric_definitions=[parse_metric_definition("accuracy=accuracy=([0-9.]+)")],
        )
    assert log_path.stat().st_size <= limits.live_bytes
    text = log_path.read_text()
    assert text.startswith("first line\n") and text.endswith("q accuracy=0.5\naccuracy=0.75\n")
    assert MARKER.search(text)
    # Only a long line's start is scanned; the next line's metric is read.
    assert result.metric_history == {"accuracy": [0.75]}
    assert result.log_tail.endswith("\n" + "q" * 65_536 + "\naccuracy=0.75")


@pytest.mark.parametrize(
    "line",
    [
        b"[modelyard: , bytes (, lines) cut here\n",  # found in review: int(b"") raised
        b"[modelyard: 12 bytes (3 lines) cut here by the job itself\n",
    ],
)
def test_a_job_printing_something_like_the_marker_still_finalizes(
    tmp_path: Path, line: bytes
) -> None:
    log = tmp_path / "job.log"
    log.write_bytes(b"first\n" + line + b"last\n")
    kept = finalize(log, LogLimits(head_bytes=1024, tail_bytes=4096))
    assert kept.read_bytes() == log.read_bytes()
