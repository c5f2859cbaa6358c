"""The final check of ``guardrails_cost.py``: what the shadow did, counted by the server itself.

The measured servers run with metrics off, so nothing in them counts the shadow's predictions
or the copies it dropped (``modelyard_shadow_dropped_total`` is a metric). Once the rounds are
over, the guarded server's home (the deployment still at its 10 % step) is served again with
``MODELYARD_METRICS=true``, and at each connection count one warm-up and one run of the same
length as a measured run are made. ``GET /metrics`` (summed over the workers) is read before
and after each run, once the shadow's queue is empty and the counts stand still; the
differences are the copies the shadow predicted (``modelyard_requests_total`` of the variant
``shadow``), the copies dropped, and the requests each production variant answered (the
canary's split). The shadow thread's CPU around the same run gives CPU per prediction.

Metrics cost something, so these runs are not compared with anything: they count.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from typing import Any

import serving as bench
from guardrails_servers import SHADOW_VARIANT
from serverproc import ServerFailed, http_request
from threadcpu import named_threads
from wrkload import run_wrk

SHADOW_THREADS = "modelyard-shad"  # "modelyard-shadow_0", as the kernel keeps it (15 bytes)
SETTLE_S = 30.0  # for the queue to empty and the workers' metric files to catch up
COUNTED = ("modelyard_requests_total", "modelyard_request_errors_total",
           "modelyard_shadow_dropped_total")  # fmt: skip


def scrape(base_url: str) -> dict[str, Any]:
    """``GET /metrics``: the counts above by variant, and the copies waiting now."""
    from prometheus_client.parser import text_string_to_metric_families

    status, body = http_request(f"{base_url}/metrics")
    if status != 200:
        raise ServerFailed(f"GET {base_url}/metrics answered {status}: {body[:300]!r}")
    found: dict[str, Any] = {name: defaultdict(float) for name in COUNTED}
    found["modelyard_shadow_queue_copies"] = 0.0
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name in COUNTED and sample.labels.get("endpoint") == bench.MODELYARD_ENDPOINT:
                found[sample.name][sample.labels.get("variant", "?")] += sample.value
            elif sample.name == "modelyard_shadow_queue_copies":
                found[sample.name] += sample.value
    return found


def settled(base_url: str) -> dict[str, Any]:
    """``scrape`` once no copy waits and two reads 1 s apart agree (drains every second)."""
    deadline = time.monotonic() + SETTLE_S
    last = scrape(base_url)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = scrape(base_url)
        if now == last and now["modelyard_shadow_queue_copies"] == 0:
            return now
        last = now
    return last


def _grown(after: dict[str, Any], before: dict[str, Any], name: str) -> dict[str, float]:
    return {v: after[name][v] - before[name].get(v, 0.0) for v in after[name]}


def count_run(running: bench.Running, body: bytes, connections: int, seconds: int) -> dict:
    """One run on the metrics-on server, and what its shadow did meanwhile."""
    base = running.launch.invoke_url.split("/endpoints/")[0]
    session = running.server.pid
    before = settled(base)
    cpu_before = named_threads(session, [SHADOW_THREADS])[SHADOW_THREADS].cpu_s
    result = run_wrk(running.launch.invoke_url, body, connections=connections, duration_s=seconds)
    after = settled(base)  # the copies queued at the end are predicted by now
    cpu_s = named_threads(session, [SHADOW_THREADS])[SHADOW_THREADS].cpu_s - cpu_before
    answered = _grown(after, before, "modelyard_requests_total")
    predicted = answered.pop(SHADOW_VARIANT, 0.0)
    dropped = _grown(after, before, "modelyard_shadow_dropped_total").get(SHADOW_VARIANT, 0.0)
    production = sum(answered.values())
    return {
        "connections": connections,
        "duration_s": result.duration_s,
        "wrk_requests": result.requests,
        "answered_by_variant": answered,
        "canary_share": answered.get("main.next", 0.0) / production if production else None,
        "errors_by_variant": _grown(after, before, "modelyard_request_errors_total"),
        "shadow_predictions": predicted,
        "shadow_dropped": dropped,
        "shadow_dropped_share": dropped / (predicted + dropped) if predicted + dropped else None,
        "shadow_predictions_per_s": predicted / result.duration_s,
        "shadow_thread_cpu_s": cpu_s,
        "shadow_cpu_us_per_prediction": cpu_s / predicted * 1e6 if predicted else None,
    }


def shadow_counts(
    args: argparse.Namespace, launcher: bench.Launcher, assets: bench.Assets, collected: Any
) -> list[dict[str, Any]]:
    """Serve the guarded home with metrics on; one counted run per connection count."""
    rows = []
    with bench.serving(
        "guarded-metrics", launcher, args.workers, assets, collected, "guarded-metrics"
    ) as running:
        for connections in args.connections:
            url = running.launch.invoke_url
            run_wrk(url, assets.body, connections=connections, duration_s=args.warmup)
            row = count_run(running, assets.body, connections, args.duration)
            print(
                f"check c={connections:<3}: shadow predicted {row['shadow_predictions']:.0f} "
                f"copies ({row['shadow_predictions_per_s']:.0f}/s), dropped "
                f"{row['shadow_dropped']:.0f}, {row['shadow_cpu_us_per_prediction'] or 0:.0f} "
                f"CPU us/prediction; canary share {row['canary_share'] or 0:.3f}",
                flush=True,
            )
            rows.append(row)
    return rows
