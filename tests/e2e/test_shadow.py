"""Shadow variants in a real ``modelyard serve --workers 2``: one shadow fails every request and
one is stuck at a gate, with room for two waiting copies per worker. Every caller gets the answer
an endpoint without shadows gives (status, body, variant and version headers) while the stuck
shadow still holds copies; once the gate opens, ``GET /metrics`` sums over both workers count
every copy either run (under the shadow's variant, with its errors) or dropped, nothing stays in
flight, and the shadow's captured predictions carry the callers' inference ids."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from modelyard.bootstrap import Platform
from modelyard.domain import CaptureConfig, Trust
from tests.e2e.conftest import N_FEATURES, Server
from tests.e2e.metrics_load import scrape
from tests.serving.metrics_support import value
from tests.serving.test_shadow import FAILING, GATE_ENV, GATED
from tests.waiting import wait_for

JSON = {"content-type": "application/json", "accept": "application/json"}
ENOUGH = 40
SHOWN = ("x-modelyard-variant", "x-amzn-invoked-production-variant", "x-modelyard-model-version")


def _register(platform: Platform, name: str, source: str, folder: Path) -> str:
    code = folder / name
    code.mkdir()
    (code / "model.py").write_text(source)
    calm = [[-1.0] + [0.1] * (N_FEATURES - 1)] * 3  # warm-up rows: no failure, no gate
    version = platform.registry.register(
        name, code, flavor="pyfunc", input_example=calm, trust=Trust(user_code=True)
    )
    return version.ref


def _send(server: Server, x: np.ndarray) -> list[tuple[httpx.Response, httpx.Response]]:
    """The same row to ``api`` and ``plain``, on short-lived connections (so both workers get
    some), until both workers answered and at least ``ENOUGH`` were sent."""
    pairs: list[tuple[httpx.Response, httpx.Response]] = []
    workers: set[str] = set()
    for start in range(0, len(x), 10):
        with server.client() as http:
            for row in x[start : start + 10]:
                row = row.copy()
                row[0] = abs(row[0]) + 0.5  # what the shadows fail, or stop, on
                body = orjson.dumps({"instances": [row.tolist()]})
                shadowed = http.post("/endpoints/api/invocations", content=body, headers=JSON)
                alone = http.post("/endpoints/plain/invocations", content=body, headers=JSON)
                pairs.append((shadowed, alone))
                workers.add(shadowed.headers.get("x-modelyard-worker", "?"))
        if len(pairs) >= ENOUGH and len(workers) == 2:
            return pairs
    raise AssertionError(f"only workers {workers} answered {len(pairs)} requests")


def test_shadows_never_reach_callers_of_two_workers_and_every_copy_is_counted(
    platform: Platform, serve: Callable[..., Server], models: dict[str, Any], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    failing = _register(platform, "failing", FAILING, tmp_path)
    gated = _register(platform, "gated", GATED, tmp_path)
    everything = CaptureConfig.parse(100)
    platform.endpoints.create(
        "api",
        {"main": "churn:2", "failing": failing, "gated": gated},
        shadows={"failing": 100, "gated": 100},
        capture={"main": everything, "gated": everything},
    )
    platform.endpoints.create("plain", {"main": "churn:2"})
    server = serve(
        workers=2,
        **{GATE_ENV: str(gate)},
        MODELYARD_SHADOW_QUEUE_COPIES="2",  # room for one request's two copies
        MODELYARD_CAPTURE_ROLL_S="0.2",
    )
    try:
        pairs = _send(server, models["x"])
        # Every answer is in while the gated shadow still holds copies.
        held = httpx.get(f"{server.url}/endpoints", timeout=10).json()
        api = next(e for e in held["endpoints"] if e["name"] == "api")
        inflight = {v["name"]: v["inflight"] for v in api["variants"]}
    finally:
        (gate / "open").touch()
    for shadowed, alone in pairs:
        assert (shadowed.status_code, alone.status_code) == (200, 200), shadowed.text
        assert shadowed.content == alone.content
        assert [shadowed.headers[h] for h in SHOWN] == ["main", "main", "churn:2"]
        assert shadowed.headers["content-type"] == alone.headers["content-type"]
    assert inflight["gated"] >= 1 and inflight["main"] == 0, inflight
    sent = len(pairs)

    def counts() -> dict[str, float]:
        _, samples = scrape(server)
        found = {"queued": value(samples, "modelyard_shadow_queue_copies")}
        for variant in ("main", "failing", "gated"):
            at = {"endpoint": "api", "variant": variant, "model_version": "1"}
            if variant == "main":
                at["model_version"] = "2"
            found[f"{variant} requests"] = value(
                samples, "modelyard_requests_total", **at, protocol="sagemaker"
            )
            found[f"{variant} errors"] = sum(
                v
                for (name, labels), v in samples.items()
                if name == "modelyard_request_errors_total" and set(at.items()) <= labels
            )
            found[f"{variant} dropped"] = value(samples, "modelyard_shadow_dropped_total", **at)
            found[f"{variant} inflight"] = value(samples, "modelyard_inflight_requests", **at)
        return found

    # A worker writes its values one by one, so a scrape can fall between a copy's request and
    # its error: the failing shadow's errors are waited for with the rest, not read once.
    seen = wait_for(
        "every copy run or dropped, with its error, counted over both workers, nothing in flight",
        counts,
        lambda c: (
            c["main requests"] == sent
            and all(c[f"{s} requests"] + c[f"{s} dropped"] == sent for s in ("failing", "gated"))
            and c["failing errors"] == c["failing requests"]
            and not any(c[f"{v} inflight"] for v in ("main", "failing", "gated"))
            and not c["queued"]
        ),
        timeout=120,
    )
    # Each of the two workers holds at most 4 of the stuck shadow's copies: a batch taken from
    # a queue of 2, inside the model, and 2 waiting.
    assert seen["gated dropped"] >= sent - 8 and seen["failing dropped"] > 0, seen
    assert seen["failing requests"] > 0, seen
    assert seen["gated errors"] == seen["main errors"] == 0, seen

    ids = {shadowed.headers["x-modelyard-inference-id"] for shadowed, _ in pairs}
    captured = wait_for(
        "the shadow's copies captured",
        lambda: platform.capture.read("api", since=datetime.now(UTC) - timedelta(hours=1)),
        lambda c: (
            (c["variant"] == "gated").sum() == seen["gated requests"]
            and (c["variant"] == "main").sum() == sent
        ),
        timeout=120,
    )
    copies = set(captured[captured["variant"] == "gated"]["inference_id"])
    assert len(copies) == seen["gated requests"] and copies <= ids
    assert set(captured[captured["variant"] == "main"]["inference_id"]) == ids
