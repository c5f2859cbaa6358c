"""Where a canary's split and a shadow spend a serving process's CPU: the serving app in
process, on four endpoints over one model, broken down per thread (native threads included),
with each thread's context switches.

A companion to ``guardrails_cost.py`` (which measures real servers): it calls the serving ASGI
app directly (``metrics_cost.App``: no sockets, no HTTP parser) with ``serving.py``'s one-row
body, ``--callers`` at once, capture and metrics off. The endpoints, each with ``serving.py``'s
batching:

- ``one``: one variant (the plain endpoint);
- ``split``: two variants of the same model at 90/10 (a canary's routing);
- ``shadowed``: one variant and a shadow of the same model at 100 %;
- ``guarded``: the split and the shadow together.

For each endpoint and round it reports CPU microseconds per request of the whole process and of
each thread, by its Python name (``native`` for threads Python did not start: BLAS, OpenMP,
pyarrow pools), and each thread's voluntary and involuntary context switches per request (a
thread handing the GIL back and forth shows as voluntary switches). Shadow copies still queued
when the callers finish are predicted before the second reading, so the shadow threads' CPU is
that of every copy. A native thread that uses CPU at all is worth a look: it is work nobody
asked for (see ``serving/metrics_compute.py``: a BLAS product whose threads spun on the serving
cores).

Run (from the repository root)::

    .venv/bin/python benchmarks/guardrails_profile.py [--requests 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from metrics_cost import App, body_of, registered
from monitoring_profile import load
from serverproc import CLOCK_TICKS
from threadcpu import own_threads

ENDPOINTS = ("one", "split", "shadowed", "guarded")


def build_home(home: Path) -> bytes:
    """The four endpoints over serving.py's model; the request body."""
    from modelyard.domain.endpoints import Batching

    platform, x = registered(home)
    one = Batching(max_batch_size=64, max_wait_ms=2)
    make = platform.endpoints.create
    make("one", {"main": "bench:1"}, batching={"main": one})
    pair = {"main": "bench:1", "next": "bench:1"}
    both = {"main": one, "next": one}
    make("split", pair, weights={"main": 90, "next": 10}, batching=both)
    make("shadowed", {"main": "bench:1", "shadow": "bench:1"},
         batching={"main": one, "shadow": one}, shadows={"shadow": 100.0})  # fmt: skip
    make("guarded", {**pair, "shadow": "bench:1"}, weights={"main": 90, "next": 10},
         batching={**both, "shadow": one}, shadows={"shadow": 100.0})  # fmt: skip
    platform.close()
    return body_of(x)


async def one_endpoint(home: Path, body: bytes, endpoint: str, args: Any) -> dict[str, Any]:
    from modelyard.bootstrap import serving_app
    from modelyard.config import load_settings

    app = App(serving_app(load_settings({}, home=home, metrics=False)), body)
    app.scope["path"] = f"/endpoints/{endpoint}/invocations"
    await app.start()
    try:
        await load(app, 2000, args.callers)  # warm-up
        await asyncio.sleep(0.5)  # the warm-up's shadow copies
        before, cpu0 = own_threads(), time.process_time()
        wall = await load(app, args.requests, args.callers)
        await asyncio.sleep(1.0)  # the copies still queued are predicted
        after, cpu1 = own_threads(), time.process_time()
    finally:
        await app.stop()
    n = args.requests // args.callers * args.callers
    threads = {
        k: [(a - before.get(k, [0, 0, 0])[i]) / n for i, a in enumerate(v)]
        for k, v in after.items()
    }
    return {
        "rps": n / wall,
        "cpu_us": (cpu1 - cpu0) / n * 1e6,
        "threads": {
            k: {"cpu_us": v[0] / CLOCK_TICKS * 1e6, "voluntary": v[1], "involuntary": v[2]}
            for k, v in threads.items()
            if any(v)
        },
    }


def line(result: dict[str, Any]) -> str:
    busy = sorted(result["threads"].items(), key=lambda kv: -kv[1]["cpu_us"])
    return "  ".join(
        f"{k} {v['cpu_us']:.1f} ({v['voluntary']:.2f}v/{v['involuntary']:.2f}i)" for k, v in busy
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="modelyard-guardrails-profile-") as work:
        home = Path(work) / "home"
        body = build_home(home)
        results: dict[str, list[dict[str, Any]]] = {e: [] for e in ENDPOINTS}
        for index in range(args.rounds):
            order = ENDPOINTS if index % 2 == 0 else ENDPOINTS[::-1]
            for endpoint in order:
                result = await one_endpoint(home, body, endpoint, args)
                results[endpoint].append(result)
                print(
                    f"round {index + 1} {endpoint:<9} {result['rps']:7.0f} rps  "
                    f"cpu {result['cpu_us']:6.1f} us/req  {line(result)}",
                    flush=True,
                )
    print("\nmedians (CPU us per request; context switches per request, voluntary/involuntary):")
    summary: dict[str, Any] = {}
    for endpoint, rows in results.items():
        names = {k for r in rows for k in r["threads"]}
        per = {
            k: {
                f: statistics.median(r["threads"].get(k, {}).get(f, 0.0) for r in rows)
                for f in ("cpu_us", "voluntary", "involuntary")
            }
            for k in names
        }
        total = statistics.median(r["cpu_us"] for r in rows)
        summary[endpoint] = {"cpu_us": total, "threads": per}
        print(f"  {endpoint:<9} total {total:6.1f}  {line({'threads': per})}")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument("--out", type=Path, help="write the medians as JSON")
    args = parser.parse_args(argv)
    summary = asyncio.run(run(args))
    if args.out is not None:
        args.out.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
