"""Where capture and metrics spend a serving process's CPU: the serving app in process, with
capture and metrics each on and off, broken down per thread, plus cProfile of the event loop.

A companion to ``monitoring_cost.py`` (which measures real servers): it calls the serving ASGI
app directly (``metrics_cost.App``: no sockets, no HTTP parser) with ``serving.py``'s one-row
body, ``--callers`` at once, on an endpoint with ``serving.py``'s batching. For each mode
(``plain``, ``capture``, ``metrics``, ``both``) and round it reports CPU microseconds per
request of the whole process and of each thread (the event loop, the predict thread, the
capture writer, the metrics drain, ``asyncio.to_thread`` helpers), and the garbage collector's
time. With ``--profile`` it also prints the event loop's top functions (cProfile) for ``both``,
and the capture writer's tabling and writing of the captured records, profiled on their own.

Run (from the repository root)::

    .venv/bin/python benchmarks/monitoring_profile.py [--requests 20000] [--rounds 3] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from metrics_cost import App, body_of, registered
from serverproc import CLOCK_TICKS
from threadcpu import own_threads

MODES = {"plain": (False, False), "capture": (True, False), "metrics": (False, True),
         "both": (True, True)}  # fmt: skip


def build_home(home: Path) -> bytes:
    """Endpoints ``cap`` (capture 100 %) and ``nocap`` over one model, with serving.py's
    batching (64 rows, 2 ms); the request body."""
    from modelyard.domain import CaptureConfig
    from modelyard.domain.endpoints import Batching

    platform, x = registered(home)
    batching = {"main": Batching(max_batch_size=64, max_wait_ms=2)}
    for name, percent in (("cap", 100.0), ("nocap", 0.0)):
        platform.endpoints.create(
            name, {"main": "bench:1"}, batching=batching,
            capture={"main": CaptureConfig(percent=percent)},
        )  # fmt: skip
    platform.close()
    return body_of(x)


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each live thread of this process, by thread name (``native``: threads
    Python did not start, such as BLAS's)."""
    return {name: row[0] / CLOCK_TICKS for name, row in own_threads().items()}


class GcTimer:
    """Seconds spent in the garbage collector, per generation."""

    def __init__(self) -> None:
        self.spent = [0.0, 0.0, 0.0]
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.spent[info["generation"]] += time.perf_counter() - self._began


async def load(app: App, requests: int, callers: int) -> float:
    """``requests`` requests from ``callers`` concurrent callers; wall seconds."""
    each = requests // callers

    async def caller() -> None:
        for _ in range(each):
            await app.call()

    began = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return time.perf_counter() - began


async def one_mode(
    home: Path, body: bytes, mode: str, args: argparse.Namespace, profile: cProfile.Profile | None
) -> dict[str, Any]:
    from modelyard.bootstrap import serving_app
    from modelyard.config import load_settings

    capture, metrics = MODES[mode]
    app = App(serving_app(load_settings({}, home=home, metrics=metrics)), body)
    app.scope["path"] = f"/endpoints/{'cap' if capture else 'nocap'}/invocations"
    await app.start()
    timer = GcTimer()
    try:
        await load(app, 2000, args.callers)  # warm-up
        before, cpu0 = thread_cpu(), time.process_time()
        gc.callbacks.append(timer)
        if profile is not None:
            profile.enable()
        wall = await load(app, args.requests, args.callers)
        if profile is not None:
            profile.disable()
        gc.callbacks.remove(timer)
        await asyncio.sleep(2.5)  # the drain and the capture writer (each every 1 s) catch up
        after, cpu1 = thread_cpu(), time.process_time()
    finally:
        await app.stop()
    n = args.requests // args.callers * args.callers
    threads = {k: (after.get(k, 0.0) - before.get(k, 0.0)) / n * 1e6 for k in after}
    return {
        "rps": n / wall,
        "cpu_us": (cpu1 - cpu0) / n * 1e6,
        "threads_us": {k: v for k, v in threads.items() if v > 0},
        "gc_us": [s / n * 1e6 for s in timer.spent],
    }


def profile_writer(body: bytes, records: int = 20000) -> str:
    """cProfile of tabling and writing ``records`` one-row captures, as the writer thread does."""
    from modelyard.codecs.payloads import decode
    from modelyard.serving.capture import CaptureRecord
    from modelyard.serving.capture_parts import COMPRESSION
    from modelyard.serving.capture_table import build_table
    from modelyard.serving.stack import RequestMeta

    class Route:  # what build_table reads of a variant route
        name = "main"
        capture_salt = ""

        class served:
            class spec:
                name, version, signature = "bench", 1, None

        from modelyard.domain import CaptureConfig

        capture = CaptureConfig(percent=100.0)

    import uuid

    batch = [
        CaptureRecord(
            RequestMeta("cap", uuid.uuid4().hex), Route, decode(body, None, None),  # type: ignore[arg-type]
            np.asarray([0.5]), 0.001, time.time(),
        )
        for _ in range(records)
    ]  # fmt: skip
    import pyarrow.parquet as pq

    profile = cProfile.Profile()
    profile.enable()
    for start in range(0, records, 4000):  # ~1 s of one worker's requests per drain
        table = build_table(batch[start : start + 4000])
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression=COMPRESSION)
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(20)
    return out.getvalue()


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="modelyard-monitoring-profile-") as work:
        home = Path(work) / "home"
        body = build_home(home)
        results: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
        profile = cProfile.Profile() if args.profile else None
        for index in range(args.rounds):
            for mode in MODES:
                use = profile if (mode == "both" and index == 0) else None
                result = await one_mode(home, body, mode, args, use)
                results[mode].append(result)
                top = sorted(result["threads_us"].items(), key=lambda kv: -kv[1])
                print(
                    f"round {index + 1} {mode:<8} {result['rps']:7.0f} rps  "
                    f"cpu {result['cpu_us']:6.1f} us/req  gc "
                    f"{'/'.join(f'{g:.1f}' for g in result['gc_us'])}  "
                    + "  ".join(f"{k} {v:.1f}" for k, v in top),
                    flush=True,
                )
        print("\nmedians (CPU us per request):")
        for mode, rows in results.items():
            names = {k for r in rows for k in r["threads_us"]}
            per = {k: statistics.median(r["threads_us"].get(k, 0.0) for r in rows) for k in names}
            print(
                f"  {mode:<8} total {statistics.median(r['cpu_us'] for r in rows):6.1f} "
                f"(min {min(r['cpu_us'] for r in rows):5.1f})  "
                f"gc {statistics.median(sum(r['gc_us']) for r in rows):5.1f}  "
                + "  ".join(f"{k} {v:.1f}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]))
            )
        if profile is not None:
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(35)
            print("\nevent loop, capture and metrics on (tottime):\n" + out.getvalue())
            print("capture writer thread work, 20,000 records:\n" + profile_writer(body))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument("--profile", action="store_true")
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
