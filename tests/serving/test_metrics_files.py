"""Per-worker metric files and their exposition: several workers' files in one folder read back,
through prometheus_client's real parser, as sums (counters, histograms, ``livesum`` gauges),
extremes (``min``/``max`` gauges) or one series per worker (``liveall``); a dead worker's
counts stay in the sums while its live gauges leave them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelyard.serving import metrics_names as m
from modelyard.serving.metrics_files import PromWriter, exposition, forget_dead_workers
from tests.waiting import wait_for

VARIANT = ("churn", "main", "3")
PROTOCOL = (*VARIANT, "sagemaker")


def samples(directory: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = exposition(directory).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def labels(
    *values: str, names: tuple[str, ...] = m.PROTOCOL, **extra: str
) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({**dict(zip(names, values, strict=True)), **extra}.items()))


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        check=True,
        text=True,
    )
    return int(done.stdout)


Writers = Callable[..., PromWriter]


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Writers]:
    """Makes writers on ``tmp_path`` (closed, files kept, at the end)."""
    made: list[PromWriter] = []

    def make(pid: int | None = None) -> PromWriter:
        made.append(PromWriter(tmp_path, pid=pid))
        return made[-1]

    yield make
    for one in made:
        one.close(live=True)


def test_two_workers_counters_and_histograms_are_summed(tmp_path: Path, writer: Writers) -> None:
    first, second = writer(os.getpid()), writer(dead_pid())
    first.inc(m.REQUESTS, PROTOCOL, 3)
    second.inc(m.REQUESTS, PROTOCOL, 4)
    # Buckets as the drain counts them: one per bound, then +Inf.
    buckets = [0] * (len(m.DURATION.buckets) + 1)
    buckets[3], buckets[-1] = 2, 1  # two at <= 1 ms, one above 30 s
    first.observe(m.DURATION, PROTOCOL, buckets, 31.0015)
    second.observe(m.DURATION, PROTOCOL, [0, 0, 0, 4] + [0] * (len(buckets) - 4), 0.003)
    for one in (first, second):
        one.flush()
    seen = samples(tmp_path)
    assert seen[("modelyard_requests_total", labels(*PROTOCOL))] == 7
    assert seen[("modelyard_request_duration_seconds_count", labels(*PROTOCOL))] == 7
    assert seen[("modelyard_request_duration_seconds_sum", labels(*PROTOCOL))] == pytest.approx(
        31.0045
    )
    cumulative = {
        dict(key[1])["le"]: value
        for key, value in seen.items()
        if key[0] == "modelyard_request_duration_seconds_bucket"
    }
    assert cumulative["0.0005"] == 0 and cumulative["0.001"] == 6
    assert cumulative["30.0"] == 6 and cumulative["+Inf"] == 7
    assert len(cumulative) == len(m.DURATION.buckets) + 1  # empty buckets are listed too


def test_gauges_combine_by_mode_and_dead_workers_leave_live_sums(
    tmp_path: Path, writer: Writers
) -> None:
    gone = dead_pid()
    alive, dead = writer(os.getpid()), writer(gone)
    feature = (*VARIANT, "age")
    for one, rss, low, high in ((alive, 100.0, 5.0, 50.0), (dead, 300.0, -1.0, 40.0)):
        one.set(m.MEMORY, (), rss)
        one.set(m.WORKER_MEMORY, (), rss)
        one.set(m.WORKERS, (), 1)
        one.low(m.INPUT_MIN, feature, low)
        one.high(m.INPUT_MAX, feature, high)
        one.inc(m.CPU, (), 2.5)
        one.flush()
    assert forget_dead_workers(tmp_path) == [gone]
    seen = samples(tmp_path)
    assert seen[("modelyard_process_resident_memory_bytes", ())] == 100  # the live one only
    assert seen[("modelyard_workers", ())] == 1
    assert seen[("modelyard_worker_resident_memory_bytes", (("pid", str(os.getpid())),))] == 100
    assert ("modelyard_worker_resident_memory_bytes", (("pid", str(gone)),)) not in seen
    # Extremes and counters keep what the dead worker saw.
    names = (*m.VARIANT, "feature")
    assert seen[("modelyard_input_value_min", labels(*feature, names=names))] == -1
    assert seen[("modelyard_input_value_max", labels(*feature, names=names))] == 50
    assert seen[("modelyard_process_cpu_seconds_total", ())] == 5.0


def test_a_worker_that_closes_leaves_the_live_sums(tmp_path: Path) -> None:
    writer = PromWriter(tmp_path)
    writer.set(m.WORKERS, (), 1)
    writer.inc(m.REQUESTS, PROTOCOL, 2)
    writer.flush()
    assert samples(tmp_path)[("modelyard_workers", ())] == 1
    writer.close()
    seen = samples(tmp_path)
    assert ("modelyard_workers", ()) not in seen
    assert seen[("modelyard_requests_total", labels(*PROTOCOL))] == 2


def test_only_changed_values_are_written_and_later_values_replace_earlier(
    tmp_path: Path, writer: Writers
) -> None:
    one = writer()
    one.inc(m.REQUESTS, PROTOCOL, 1)
    one.flush()
    one.inc(m.REQUESTS, PROTOCOL, 1)
    assert samples(tmp_path)[("modelyard_requests_total", labels(*PROTOCOL))] == 1  # not flushed
    one.flush()
    assert samples(tmp_path)[("modelyard_requests_total", labels(*PROTOCOL))] == 2
    one.low(m.INPUT_MIN, (*VARIANT, "x"), 3.0)
    one.low(m.INPUT_MIN, (*VARIANT, "x"), 7.0)  # not lower: ignored
    one.flush()
    names = (*m.VARIANT, "feature")
    assert samples(tmp_path)[("modelyard_input_value_min", labels(*VARIANT, "x", names=names))] == 3


def test_a_scrape_never_reads_a_file_being_created(tmp_path: Path) -> None:
    """Workers create their files while another worker answers scrapes: every scrape parses
    (a file seen before it had its header made /metrics fail with a struct error)."""
    import threading

    failures: list[BaseException] = []
    done = threading.Event()

    def scrape() -> None:
        while not done.is_set():
            try:
                exposition(tmp_path)
            except Exception as exc:  # the failure under test, kept to report
                failures.append(exc)
                return

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        for pid in range(1, 401):
            made = PromWriter(tmp_path, pid=10_000_000 + pid)
            made.inc(m.REQUESTS, PROTOCOL)
            made.flush()
            made.close(live=True)
            if failures:
                break
    finally:
        done.set()
        scraper.join()
    assert failures == []
    assert samples(tmp_path)[("modelyard_requests_total", labels(*PROTOCOL))] == 400


def test_a_label_utf8_cannot_spell_leaves_the_scrape_readable(
    tmp_path: Path, writer: Writers
) -> None:
    """A class label holding a lone surrogate (a model's own label, never valid UTF-8) is
    exposed escaped: kept as it was, every scrape after it failed to encode, for the rest of
    the server's run."""
    one = writer()
    classes = (*VARIANT, "prediction")
    one.inc(m.CLASSES, (*classes, "n\ud800o"), 2)
    one.inc(m.CLASSES, (*classes, "ünï"), 3)
    one.flush()
    names = (*m.VARIANT, "output", "class")
    assert samples(tmp_path) == {
        ("modelyard_predicted_class_total", labels(*classes, "n\\ud800o", names=names)): 2.0,
        ("modelyard_predicted_class_total", labels(*classes, "ünï", names=names)): 3.0,
    }


def test_a_scrape_sees_each_flush_whole(tmp_path: Path, writer: Writers) -> None:
    """A scrape that read the files while a worker was writing them saw some of one drain's
    values and not the rest (requests counted, their errors not yet): every series here grows
    together, so every scrape must find them equal."""
    import threading

    one = writer()
    endpoints = [(f"e{i}", "main", "1", "sagemaker") for i in range(300)]
    uneven: list[set[float]] = []
    scrapes: list[int] = []
    done = threading.Event()

    def scrape() -> None:
        while not done.is_set() and not uneven:
            scrapes.append(1)
            seen = {
                value
                for (name, _), value in samples(tmp_path).items()
                if name == "modelyard_requests_total"
            }
            if len(seen) > 1:
                uneven.append(seen)

    for labels_ in endpoints:
        one.inc(m.REQUESTS, labels_)
    one.flush()
    scraper = threading.Thread(target=scrape)
    scraper.start()
    flushes = 1
    try:
        # Each flush starts once a scrape has begun after the last one, so that it runs
        # while that scrape reads.
        while flushes <= 100 and not uneven:
            begun = len(scrapes)
            wait_for(
                "a scrape to begin", lambda b=begun: len(scrapes) > b or bool(uneven), interval=0
            )
            for labels_ in endpoints:
                one.inc(m.REQUESTS, labels_)
            one.flush()
            flushes += 1
    finally:
        done.set()
        scraper.join()
    assert uneven == []
    assert set(samples(tmp_path).values()) == {float(flushes)}


def test_a_scrape_of_a_removed_folder_reads_nothing(tmp_path: Path) -> None:
    """A server removes its run's folder when it stops; a scrape answered meanwhile reads no
    files (it must not fail making the folder's lock)."""
    gone = tmp_path / "removed"
    assert exposition(gone) == b""
    assert not gone.exists()
