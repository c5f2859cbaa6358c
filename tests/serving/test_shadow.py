"""Shadow variants in the serving app bootstrap builds: a shadow that fails every request and
one stuck at a gate change nothing in the caller's answers, which arrive while the stuck shadow
still holds their copies; the metrics count the shadows' requests and errors under their own
variant names, capture records both predictions with one inference id, and in-flight counts
return to zero. A full queue drops copies and counts them; a queued copy keeps its shadow's
model loaded after a new plan retired it. Sampling at 100, 0 and 50 % with an injected draw,
and the copies left at shutdown.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from modelyard.bootstrap import Platform, build, serving_app
from modelyard.config import load_settings
from modelyard.domain import CaptureConfig, Trust
from modelyard.errors import ConfigError
from modelyard.serving.app import predict_executor
from modelyard.serving.dataplane import DataPlane
from modelyard.serving.deployer import Deployer
from modelyard.serving.loader import load_served
from modelyard.serving.shadow import ShadowWrapper
from modelyard.serving.stack import RequestMeta, assemble
from modelyard.storage.artifacts import FsspecArtifactStore
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.plan_source import SqlPlanSource
from tests.serving.asgi_support import lifespan
from tests.serving.metrics_support import csv_body, parse, value
from tests.waiting import DEADLINE_S

FEATURES = ["a", "b", "c"]
GATE_ENV = "MODELYARD_TEST_SHADOW_GATE"
REQUESTS = "modelyard_requests_total"
ERRORS = "modelyard_request_errors_total"
DROPPED = "modelyard_shadow_dropped_total"
QUEUE = "modelyard_shadow_queue_copies"
CALM = [[-1.0, 0.5, 0.5]] * 3  # warm-up rows every model answers (the first feature is <= 0)

#: Fails every request (any row whose first feature is above 0), but not its warm-up.
FAILING = """
import numpy as np


class Model:
    def load(self, artifacts_dir):
        pass

    def predict(self, data):
        x = np.asarray(data, dtype=float)
        if (x[:, 0] > 0).any():
            raise ValueError("this shadow fails every request")
        return x.sum(axis=1)
"""

#: Stops at a gate (a folder named by an environment variable) on requests' rows: it marks
#: that it entered, then waits for the file ``open`` to appear there.
GATED = f"""
import os
import pathlib
import time

import numpy as np


class Model:
    def load(self, artifacts_dir):
        pass

    def predict(self, data):
        x = np.asarray(data, dtype=float)
        gate = os.environ.get("{GATE_ENV}")
        if gate and (x[:, 0] > 0).any():
            folder = pathlib.Path(gate)
            (folder / f"entered-{{time.monotonic_ns()}}").touch()
            deadline = time.monotonic() + 120
            while not (folder / "open").exists():
                if time.monotonic() > deadline:
                    raise TimeoutError("the test never opened the gate")
                time.sleep(0.005)
        return x.sum(axis=1) * 10.0
"""


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A store holding ``churn:1`` (a logistic regression on a, b, c)."""
    from sklearn.linear_model import LogisticRegression

    made = build(load_settings({}, home=tmp_path_factory.mktemp("shadow") / "home"))
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=FEATURES)
    model = LogisticRegression().fit(frame, (frame["a"] + frame["b"] > 0).astype(int))
    made.registry.register("churn", model, flavor="sklearn", input_example=frame[:3])
    yield made
    made.close()


@pytest.fixture
def gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The gated models' gate, closed; opened at the end, so no thread is left waiting."""
    folder = tmp_path / "gate"
    folder.mkdir()
    monkeypatch.setenv(GATE_ENV, str(folder))
    yield folder
    (folder / "open").touch()


def register(platform: Platform, name: str, source: str, folder: Path) -> str:
    """Register ``source`` as a script-mode model ``name``; its reference."""
    code = folder / name
    code.mkdir()
    (code / "model.py").write_text(source)
    version = platform.registry.register(
        name, code, flavor="pyfunc", input_example=CALM, trust=Trust(user_code=True)
    )
    return version.ref


async def invoke(
    client: httpx.AsyncClient, endpoint: str, rows: np.ndarray, target: str | None = None
) -> httpx.Response:
    headers = {"content-type": "text/csv", "accept": "application/json"}
    if target is not None:
        headers["x-amzn-sagemaker-target-variant"] = target
    return await client.post(
        f"/endpoints/{endpoint}/invocations", content=csv_body(rows), headers=headers
    )


async def poll(what: str, observe: Callable[[], Any], until: Callable[[Any], Any] = bool) -> Any:
    """Observe (a coroutine function or a plain one) until ``until`` holds, on the event loop."""
    seen = None
    try:
        async with asyncio.timeout(DEADLINE_S):
            while True:
                seen = observe()
                if asyncio.iscoroutine(seen):
                    seen = await seen
                if until(seen):
                    return seen
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}; last seen: {seen!r}") from None


async def scrape(client: httpx.AsyncClient) -> dict[Any, float]:
    answer = await client.get("/metrics")
    assert answer.status_code == 200, answer.text
    return parse(answer.text)


async def variants(client: httpx.AsyncClient, endpoint: str) -> dict[str, dict[str, Any]]:
    """What ``GET /endpoints`` says of ``endpoint``'s variants, by name."""
    body = (await client.get("/endpoints")).json()
    route = next(e for e in body["endpoints"] if e["name"] == endpoint)
    return {v["name"]: v for v in route["variants"]}


def labels(endpoint: str, variant: str, version: str = "1", **more: str) -> dict[str, str]:
    return {"endpoint": endpoint, "variant": variant, "model_version": version, **more}


def test_failing_and_stuck_shadows_never_reach_the_caller(
    platform: Platform, gate: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    failing = register(platform, "failing", FAILING, tmp_path)
    gated = register(platform, "gated", GATED, tmp_path)
    everything = CaptureConfig.parse(100)
    platform.endpoints.create("plain", {"main": "churn:1"})
    platform.endpoints.create(
        "shadowed",
        {"main": "churn:1", "failing": failing, "gated": gated},
        shadows={"failing": 100, "gated": 100},
        capture={"main": everything, "gated": everything},
    )
    rng = np.random.default_rng(1)
    batches = [rng.uniform(0.5, 2.0, size=(n, 3)) for n in (1, 3, 2, 1)]
    sagemaker = {"protocol": "sagemaker"}

    async def scenario() -> dict[str, Any]:
        async with lifespan(serving_app(platform.settings)) as client:
            plain = [await invoke(client, "plain", rows) for rows in batches]
            shadowed = [await invoke(client, "shadowed", rows) for rows in batches]
            targeted = await invoke(client, "shadowed", batches[0], target="main")
            # Every answer is in, and the gated shadow is inside its first copy, holding all 4.
            await poll("the gated shadow inside a copy", lambda: list(gate.glob("entered-*")))
            busy = await variants(client, "shadowed")
            (gate / "open").touch()

            def counted(samples: dict[Any, float]) -> bool:
                shadows = [labels("shadowed", v, **sagemaker) for v in ("failing", "gated")]
                return all(value(samples, REQUESTS, **s) == 4 for s in shadows)

            samples = await poll("the shadows' copies counted", lambda: scrape(client), counted)
            idle = await poll(
                "nothing in flight",
                lambda: variants(client, "shadowed"),
                lambda vs: all(v["inflight"] == 0 for v in vs.values()),
            )
        return dict(
            plain=plain, shadowed=shadowed, targeted=targeted, busy=busy, samples=samples, idle=idle
        )

    seen = asyncio.run(scenario())
    for alone, copied in zip(seen["plain"], seen["shadowed"], strict=True):
        assert (alone.status_code, copied.status_code) == (200, 200), copied.text
        assert copied.content == alone.content
        same = {k: v for k, v in alone.headers.items() if k != "x-modelyard-inference-id"}
        assert {k: v for k, v in copied.headers.items() if k != "x-modelyard-inference-id"} == same
        assert copied.headers["x-modelyard-variant"] == "main"
        assert copied.headers["x-amzn-invoked-production-variant"] == "main"
        assert copied.headers["x-modelyard-model-version"] == "churn:1"
    assert seen["targeted"].status_code == 200
    busy = seen["busy"]
    assert busy["gated"]["inflight"] == 4, busy  # its 4 copies, held after their answers
    assert busy["main"]["inflight"] == 0
    assert busy["gated"]["shadow"] == 100.0 and busy["main"]["shadow"] is None

    samples = seen["samples"]
    # The targeted request reached its variant only: 5 requests for main, 4 copies each.
    assert value(samples, REQUESTS, **labels("shadowed", "main", **sagemaker)) == 5
    failed = labels("shadowed", "failing", **sagemaker, status="424", code="model_failed")
    assert value(samples, ERRORS, **failed) == 4
    for variant in ("main", "gated"):
        errors = [k for k in samples if k[0] == ERRORS and ("variant", variant) in k[1]]
        assert not errors, errors
    for variant in ("failing", "gated"):
        assert value(samples, DROPPED, **labels("shadowed", variant)) == 0  # shown, at zero
    assert value(samples, QUEUE) == 0
    assert all(v["inflight"] == 0 for v in seen["idle"].values())
    # One warning for 4 failures: a shadow failing every request does not flood the log.
    warnings = [r for r in caplog.records if r.name == "modelyard.serving.shadow"]
    assert len(warnings) == 1 and "failing" in warnings[0].getMessage(), warnings
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    # Capture (written at shutdown): the shadow's predictions under the caller's inference ids.
    captured = platform.capture.read("shadowed", since=datetime.now(UTC) - timedelta(hours=1))
    ids = [r.headers["x-modelyard-inference-id"] for r in seen["shadowed"]]
    main = captured[captured["variant"] == "main"]
    copies = captured[captured["variant"] == "gated"]
    assert set(main["inference_id"]) == {*ids, seen["targeted"].headers["x-modelyard-inference-id"]}
    assert set(copies["inference_id"]) == set(ids)
    assert set(captured["variant"]) == {"main", "gated"}  # the failing shadow had no answer
    for inference_id, rows in zip(ids, batches, strict=True):
        mine = copies[copies["inference_id"] == inference_id].sort_values("row")
        assert list(mine["output.prediction"]) == pytest.approx(list(rows.sum(axis=1) * 10.0))


def test_a_full_queue_drops_and_counts_and_queued_copies_keep_the_shadow_loaded(
    platform: Platform, gate: Path, tmp_path: Path
) -> None:
    gated = register(platform, "stuck", GATED, tmp_path)
    platform.endpoints.create("busy", {"main": "churn:1", "stuck": gated}, shadows={"stuck": 100})
    settings = load_settings({}, home=platform.settings.home, shadow_queue_copies=1)
    sent = 20
    rows = np.array([[1.0, 2.0, 3.0]])
    stuck = labels("busy", "stuck")

    async def scenario() -> dict[str, Any]:
        async with lifespan(serving_app(settings)) as client:
            answers = [await invoke(client, "busy", rows) for _ in range(sent)]
            await poll("the shadow inside a copy", lambda: list(gate.glob("entered-*")))
            held = (await variants(client, "busy"))["stuck"]["inflight"]
            # Both from one drain that saw the last copy: an earlier drain may have counted
            # every drop while the copy now queued had not arrived yet (queue 0).
            full = await poll(
                "the dropped and the queued copies counted",
                lambda: scrape(client),
                lambda s: value(s, DROPPED, **stuck) == sent - held and value(s, QUEUE) == held - 1,
            )
            # A new plan retires the shadow; its queued copies keep its model loaded.
            config = platform.endpoints.update("busy", {"main": "churn:1"}).config.number

            async def described() -> dict[str, Any]:
                return dict((await client.get("/endpoints")).json())

            retired = await poll(
                "the shadow retired from the route table",
                described,
                lambda d: any(
                    e["name"] == "busy" and e["config"] == config for e in d["endpoints"]
                ),
            )
            (gate / "open").touch()
            await poll("the retired shadow unloaded", described, lambda d: not d["retired"])
            done = await poll(
                "the held copies counted",
                lambda: scrape(client),
                lambda s: value(s, REQUESTS, **stuck, protocol="sagemaker") == held,
            )
        return {"answers": answers, "held": held, "full": full, "retired": retired, "done": done}

    seen = asyncio.run(scenario())
    assert [a.status_code for a in seen["answers"]] == [200] * sent
    assert {a.headers["x-modelyard-variant"] for a in seen["answers"]} == {"main"}
    held = seen["held"]
    # One copy inside the model (a batch of one: the queue holds one), perhaps one waiting.
    assert 1 <= held <= 2, held
    assert value(seen["full"], QUEUE) == held - 1
    assert seen["retired"]["retired"] == [{"model": gated, "inflight": held}]
    done = seen["done"]
    assert value(done, DROPPED, **stuck) == sent - held
    assert not [k for k in done if k[0] == ERRORS and ("endpoint", "busy") in k[1]]
    assert value(done, QUEUE) == 0


def test_waiting_copies_are_bounded_in_rows_as_well_as_in_copies(
    platform: Platform, gate: Path, tmp_path: Path
) -> None:
    """Each copy holds its request's rows, so a bound in copies alone let a stuck shadow hold
    ``max_queued`` large requests: the rows waiting are bounded too. A copy past that bound,
    or larger than it, is dropped and counted as a copy past ``max_queued`` is."""
    gated = register(platform, "roomy", GATED, tmp_path)
    platform.endpoints.create("rowed", {"main": "churn:1", "roomy": gated}, shadows={"roomy": 100})
    rng = np.random.default_rng(2)

    def rows(n: int) -> np.ndarray:
        return rng.uniform(0.5, 2.0, size=(n, 3))

    async def scenario() -> dict[str, Any]:
        with _deployer(platform) as deployer:
            await deployer.sync()
            roomy = deployer.table.endpoints["rowed"].variants["roomy"]
            shadows = ShadowWrapper(max_queued=1000, max_queued_rows=10, linger_s=0.0)
            core = DataPlane(deployer, assemble([shadows]))

            async def request(n: int) -> Any:
                with core.choose(RequestMeta("rowed", f"id-{n}")) as lease:
                    return await lease.predict(rows(n))

            await request(4)  # taken into the model, where it stops at the gate
            await poll("the shadow inside a copy", lambda: list(gate.glob("entered-*")))
            # 4 + 4 rows wait; 4 more would make 12: dropped; 11 rows alone never fit: dropped;
            # 2 rows make 10: taken.
            for n in (4, 4, 4, 11, 2):
                await request(n)
            full = shadows.counters(), roomy.served.inflight
            (gate / "open").touch()
            await poll("the waiting copies predicted", lambda: roomy.served.inflight == 0)
            await request(11)  # larger than the bound with nothing waiting: still dropped
            await shadows.stop()
            return {"full": full, "last": shadows.counters(), "inflight": roomy.served.inflight}

    seen = asyncio.run(scenario())
    key = ("rowed", "roomy", int(gated.split(":")[1]))
    counters, inflight = seen["full"]
    assert (counters.queued, counters.dropped, inflight) == (3, {key: 2}, 4)
    assert (seen["last"].queued, seen["last"].dropped, seen["inflight"]) == (0, {key: 3}, 0)


def test_the_rows_bound_is_a_setting_of_the_server(platform: Platform, tmp_path: Path) -> None:
    """``shadow_queue_rows`` reaches the served fan-out: a request of more rows than it gets
    its answer, and its copy is dropped and counted in the metrics."""
    with pytest.raises(ConfigError, match="shadow_queue_rows"):
        load_settings({}, home=platform.settings.home, shadow_queue_rows=0)
    platform.endpoints.create(
        "narrow", {"main": "churn:1", "copy": "churn:1"}, shadows={"copy": 100}
    )
    settings = load_settings({}, home=platform.settings.home, shadow_queue_rows=2)
    sizes = (3, 5, 1)

    async def scenario() -> dict[str, Any]:
        async with lifespan(serving_app(settings)) as client:
            answers = [await invoke(client, "narrow", np.ones((n, 3))) for n in sizes]
            copies = labels("narrow", "copy", protocol="sagemaker")
            samples = await poll(
                "a copy counted", lambda: scrape(client), lambda s: value(s, REQUESTS, **copies)
            )
        return {"answers": answers, "samples": samples, "copies": copies}

    seen = asyncio.run(scenario())
    assert [a.status_code for a in seen["answers"]] == [200] * len(sizes)
    # The 1-row request's copy went; the others were dropped when they were sent.
    assert value(seen["samples"], DROPPED, **labels("narrow", "copy")) == 2
    assert value(seen["samples"], REQUESTS, **seen["copies"]) == 1


def test_in_flight_counts_are_each_endpoints_own_not_their_shared_models(
    platform: Platform, gate: Path, tmp_path: Path
) -> None:
    """Two endpoints serving one model version load it once; a request held in one of them
    counts as in flight there only (the model's own count, which keeps it loaded, is both's)."""
    gated = register(platform, "held", GATED, tmp_path)
    platform.endpoints.create("one", {"main": gated})
    platform.endpoints.create("two", {"main": gated})
    rows = np.array([[1.0, 0.5, 0.5]])  # the gated model stops on it

    async def scenario() -> tuple[dict[str, Any], dict[Any, float], httpx.Response]:
        async with lifespan(serving_app(platform.settings)) as client:
            held = asyncio.ensure_future(invoke(client, "one", rows))
            await poll("the request inside the model", lambda: list(gate.glob("entered-*")))
            shown = {name: await variants(client, name) for name in ("one", "two")}

            one = labels("one", "main", gated.split(":")[1])

            def drained(samples: dict[Any, float]) -> bool:  # a drain since the request began
                return value(samples, "modelyard_inflight_requests", **one) > 0

            samples = await poll("the in-flight gauge", lambda: scrape(client), drained)
            (gate / "open").touch()
            return shown, samples, await held

    shown, samples, answer = asyncio.run(scenario())
    assert answer.status_code == 200, answer.text
    assert shown["one"]["main"]["inflight"] == 1
    assert shown["two"]["main"]["inflight"] == 0
    gauge = "modelyard_inflight_requests"
    version = gated.split(":")[1]
    assert value(samples, gauge, **labels("one", "main", version)) == 1
    assert value(samples, gauge, **labels("two", "main", version)) == 0


#: Tells which columns it was given, in order: 100 x its first column + its second.
ECHO = """
import numpy as np


class Model:
    def load(self, artifacts_dir):
        pass

    def predict(self, data):
        x = np.asarray(data, dtype=float)
        return x[:, 0] * 100.0 + x[:, 1]
"""


def test_a_shadow_naming_its_inputs_in_another_order_gets_its_own_columns(
    platform: Platform, tmp_path: Path
) -> None:
    """churn:1 takes a, b, c; the shadow takes c, a (another order, one fewer): its copy holds
    the production request's columns c and a, in that order, and so does its capture."""
    code = tmp_path / "echo"
    code.mkdir()
    (code / "model.py").write_text(ECHO)
    example = pd.DataFrame(CALM, columns=FEATURES)[["c", "a"]]
    echo = platform.registry.register(
        "echo", code, flavor="pyfunc", input_example=example, trust=Trust(user_code=True)
    ).ref
    everything = CaptureConfig.parse(100)
    platform.endpoints.create(
        "picked",
        {"main": "churn:1", "echo": echo},
        shadows={"echo": 100},
        capture={"main": everything, "echo": everything},
    )
    rows = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])

    async def scenario() -> httpx.Response:
        async with lifespan(serving_app(platform.settings)) as client:
            answer = await invoke(client, "picked", rows)

            def copied(samples: dict[Any, float]) -> bool:
                echo = labels("picked", "echo", protocol="sagemaker")
                return value(samples, REQUESTS, **echo) == 1

            await poll("the shadow's copy counted", lambda: scrape(client), copied)
        return answer

    answer = asyncio.run(scenario())
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-modelyard-variant"] == "main"
    captured = platform.capture.read("picked", since=datetime.now(UTC) - timedelta(hours=1))
    inference_id = answer.headers["x-modelyard-inference-id"]
    mine = captured[
        (captured["variant"] == "echo") & (captured["inference_id"] == inference_id)
    ].sort_values("row")
    assert list(mine["output.prediction"]) == pytest.approx([301.0, 604.0])  # c * 100 + a
    # Captured under the shadow's own names, each with the value of that name.
    assert list(mine["input.c"]) == [3.0, 6.0] and list(mine["input.a"]) == [1.0, 4.0]
    assert mine["input.b"].isna().all()  # a column of main's captures, not the shadow's


def test_sampling_at_100_0_and_50_percent_draws_only_for_the_partial_shadow(
    platform: Platform,
) -> None:
    platform.endpoints.create(
        "sampled",
        {"main": "churn:1", "always": "churn:1", "never": "churn:1", "half": "churn:1"},
        shadows={"always": 100, "never": 0, "half": 50},
    )
    platform.endpoints.create(
        "fixed", {"main": "churn:1", "always": "churn:1"}, shadows={"always": 100}
    )
    draws = [0.1, 0.7, 0.49, 0.5, 0.0, 0.99]
    drawn: list[float] = []

    def draw() -> float:  # the scripted numbers, then the same again
        drawn.append(draws[len(drawn) % len(draws)])
        return drawn[-1]

    async def scenario() -> Any:
        with _deployer(platform, draw) as deployer:
            await deployer.sync()
            table = deployer.table.endpoints
            sampled = [table["sampled"].select(None) for _ in draws]
            after = len(drawn)
            fixed = [table["fixed"].select(key) for key in (None, "user-1", "user-2")]
            keyed = {table["sampled"].select(f"user-{i}").variant.name for i in range(200)}
            return table, sampled, after, fixed, keyed

    table, sampled, after, fixed, keyed = asyncio.run(scenario())
    assert after == len(draws), "one draw per request, for the 50 % shadow only"
    assert [s.variant.name for s in sampled] == ["main"] * len(draws)
    assert [[v.name for v in s.shadows] for s in sampled] == [
        ["always", "half"],
        ["always"],
        ["always", "half"],
        ["always"],
        ["always", "half"],
        ["always"],
    ]
    assert len(drawn) == len(draws) + 200  # the keyed requests drew too (for "half")
    assert keyed == {"main"}  # a shadow never answers through the weighted choice
    assert [[v.name for v in s.shadows] for s in fixed] == [["always"]] * 3
    assert fixed[0] is fixed[1] is fixed[2], "no draw and no new selection at 100 %"
    assert set(table["sampled"].variants) == {"main", "always", "never", "half"}


def test_copies_left_at_shutdown_are_released_and_counted(
    platform: Platform, gate: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gated = register(platform, "closing", GATED, tmp_path)
    platform.endpoints.create("closing", {"main": "churn:1", "late": gated}, shadows={"late": 100})
    rows = np.array([[1.0, 1.0, 1.0]])

    async def scenario() -> dict[str, Any]:
        with _deployer(platform) as deployer:
            await deployer.sync()
            late = deployer.table.endpoints["closing"].variants["late"]
            shadows = ShadowWrapper(max_queued=2, linger_s=0.0, drain_s=0.05)
            core = DataPlane(deployer, assemble([shadows]))
            answers = []
            for i in range(4):  # one copy runs, two wait, the last finds the queue full
                with core.choose(RequestMeta("closing", f"id-{i}")) as lease:
                    answers.append(await lease.predict(rows))
                if i == 0:
                    await poll("the shadow inside a copy", lambda: list(gate.glob("entered-*")))
            before = shadows.counters(), late.served.inflight
            await shadows.stop()
            after = shadows.counters(), late.served.inflight
            with core.choose(RequestMeta("closing", "id-late")) as lease:
                answers.append(await lease.predict(rows))
            last = shadows.counters()
            return {"answers": answers, "before": before, "after": after, "last": last}

    seen = asyncio.run(scenario())
    key = ("closing", "late", int(gated.split(":")[1]))
    assert len(seen["answers"]) == 5
    (counters, inflight) = seen["before"]
    assert (counters.queued, counters.dropped, inflight) == (2, {key: 1}, 3)
    (counters, inflight) = seen["after"]
    # The two never started and the one cancelled inside the model are dropped; none is held.
    assert (counters.queued, counters.dropped, inflight) == (0, {key: 4}, 0)
    assert seen["last"].dropped == {key: 5}  # after stop, a copy is dropped at once
    assert any("at shutdown" in r.getMessage() for r in caplog.records)


class _Outcomes:
    """A request observer that keeps each copy's variant and error (the copies' observer)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, BaseException | None]] = []

    def finished(self, lease: Any, error: BaseException | None) -> None:
        self.seen.append((lease.variant_name, error))

    def refused(self, meta: RequestMeta, error: BaseException) -> None:
        raise AssertionError(f"a copy was refused: {error}")

    def answered(self, variant: str) -> int:
        return sum(1 for name, error in self.seen if name == variant and error is None)


def test_a_stuck_shadow_holds_up_no_other_shadow(
    platform: Platform, gate: Path, tmp_path: Path
) -> None:
    gated = register(platform, "held", GATED, tmp_path)
    platform.endpoints.create(
        "pair", {"main": "churn:1", "held": gated, "quick": "churn:1"},
        shadows={"held": 100, "quick": 100},
    )  # fmt: skip
    rows = np.array([[1.0, 2.0, 3.0]])
    sent = 12

    async def scenario() -> dict[str, Any]:
        with _deployer(platform) as deployer:
            await deployer.sync()
            outcomes = _Outcomes()
            # Room for 2 waiting copies per shadow: the held one fills its own, not quick's.
            shadows = ShadowWrapper(observer=outcomes, max_queued=2, linger_s=0.0)
            core = DataPlane(deployer, assemble([shadows]))
            for i in range(sent):
                with core.choose(RequestMeta("pair", f"id-{i}")) as lease:
                    await lease.predict(rows)
                if i == 0:
                    await poll(
                        "the held shadow inside a copy", lambda: list(gate.glob("entered-*"))
                    )
                # Every copy of quick's is answered while held's first is still in its model
                # (one at a time: quick's own lane never holds more than the one just sent).
                await poll(
                    f"quick's copy of request {i} answered",
                    lambda: outcomes.answered("quick"),
                    lambda answered, i=i: answered == i + 1,
                )
            held_meanwhile = outcomes.answered("held")
            counters = shadows.counters()
            (gate / "open").touch()
            await poll("held's waiting copies answered", lambda: outcomes.answered("held") == 3)
            await shadows.stop()
            return {"held_meanwhile": held_meanwhile, "counters": counters, "seen": outcomes.seen}

    seen = asyncio.run(scenario())
    version = int(gated.split(":")[1])
    assert seen["held_meanwhile"] == 0
    # Held: one copy in its model, two waiting, the other nine dropped; quick: none dropped.
    assert seen["counters"].dropped == {("pair", "held", version): sent - 3}
    assert seen["counters"].queued == 2
    assert sorted(name for name, _ in seen["seen"]) == ["held"] * 3 + ["quick"] * sent
    assert all(error is None for _, error in seen["seen"])


def test_a_version_number_a_shadow_shares_names_the_production_variant(
    platform: Platform,
) -> None:
    """A shadow may serve the very version production serves (with another predictor or
    batching, say) and be listed first: V2's ``/versions/1`` names production, which
    answers callers; the shadow answers only when named itself."""
    platform.endpoints.create(
        "same-version", {"trial": "churn:1", "main": "churn:1"}, shadows={"trial": 100}
    )
    rows = np.array([[1.0, 2.0, 3.0]])
    tensor = {"name": "input-0", "datatype": "FP64", "shape": [1, 3], "data": rows.tolist()}
    body = {"inputs": [tensor]}

    async def scenario() -> dict[str, httpx.Response]:
        async with lifespan(serving_app(platform.settings)) as client:
            base = "/v2/models/same-version"
            return {
                "number": await client.post(f"{base}/versions/1/infer", json=body),
                "name": await client.post(f"{base}/versions/trial/infer", json=body),
                "plain": await client.post(f"{base}/infer", json=body),
                "sagemaker": await invoke(client, "same-version", rows, target="trial"),
            }

    answers = asyncio.run(scenario())
    answered = {k: (r.status_code, r.headers["x-modelyard-variant"]) for k, r in answers.items()}
    assert answered == {
        "number": (200, "main"),
        "name": (200, "trial"),
        "plain": (200, "main"),
        "sagemaker": (200, "trial"),
    }


def test_a_shadows_version_number_is_neither_listed_nor_taken_by_v2(
    platform: Platform, tmp_path: Path
) -> None:
    """V2 metadata lists in ``versions`` the numbers a request may name. A shadow answers no
    caller (it is sent copies), so a number only a shadow serves was listed and then answered
    by the shadow: a client picking the highest listed version was answered by the model
    under trial. Now it is not listed, and asking for it over REST or gRPC is refused naming
    the shadow and how to try it (by variant name, which still answers)."""
    import grpc

    from modelyard.serving.v2 import grpc_predict_v2_pb2 as pb
    from modelyard.serving.v2 import grpc_predict_v2_pb2_grpc as pb_grpc

    for version in ("v1", "v2"):  # trial:1 and trial:2: the shadow serves number 2
        (tmp_path / version).mkdir()
        register(platform, "trial", GATED, tmp_path / version)
    platform.endpoints.create(
        "tried", {"main": "churn:1", "next": "trial:2"}, shadows={"next": 100}
    )
    port = _free_port()
    settings = load_settings({}, home=platform.settings.home, grpc_port=port)
    rows = np.array([[1.0, 2.0, 3.0]])
    tensor = {"name": "input-0", "datatype": "FP64", "shape": [1, 3], "data": rows.tolist()}
    body = {"inputs": [tensor]}

    async def scenario() -> dict[str, Any]:
        async with lifespan(serving_app(settings)) as client:
            base = "/v2/models/tried"
            rest = {
                "metadata": await client.get(base),
                "by number": await client.post(f"{base}/versions/2/infer", json=body),
                "ready": await client.get(f"{base}/versions/2/ready"),
                "described": await client.get(f"{base}/versions/2"),
                "by name": await client.post(f"{base}/versions/next/infer", json=body),
                "production": await client.post(f"{base}/versions/1/infer", json=body),
            }
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = pb_grpc.GRPCInferenceServiceStub(channel)
                listed = await stub.ModelMetadata(pb.ModelMetadataRequest(name="tried"))
                tensor = pb.ModelInferRequest.InferInputTensor(
                    name="input-0", datatype="FP64", shape=[1, 3]
                )
                tensor.contents.fp64_contents.extend(rows.ravel().tolist())
                request = pb.ModelInferRequest(model_name="tried", model_version="2")
                request.inputs.append(tensor)
                try:
                    await stub.ModelInfer(request)
                    refused = None
                except grpc.aio.AioRpcError as exc:
                    refused = (exc.code(), exc.details())
        return {"rest": rest, "grpc": (list(listed.versions), refused)}

    seen = asyncio.run(scenario())
    rest = seen["rest"]
    assert rest["metadata"].status_code == 200
    assert rest["metadata"].json()["versions"] == ["1"]
    assert rest["metadata"].json()["platform"] == "sklearn"  # production describes it
    for what in ("by number", "ready", "described"):
        answer = rest[what]
        assert answer.status_code == 404, (what, answer.text)
        message = answer.json()["error"]
        assert "only in shadow variant 'next'" in message and "version 'next'" in message, message
    assert (rest["by name"].status_code, rest["by name"].headers["x-modelyard-variant"]) == (
        200,
        "next",
    )
    assert rest["production"].headers["x-modelyard-variant"] == "main"
    versions, refused = seen["grpc"]
    assert versions == ["1"]
    assert refused is not None and refused[0] == grpc.StatusCode.NOT_FOUND
    assert "only in shadow variant 'next'" in refused[1], refused


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _deployer(platform: Platform, draw: Callable[[], float] = random.random) -> Iterator[Deployer]:
    """A deployer on the platform's store (closed, with its executor, on the way out)."""
    settings = platform.settings
    engine, executor = make_engine(settings.resolved_db_url), predict_executor()
    artifacts = FsspecArtifactStore(settings.resolved_artifact_url)
    load = functools.partial(load_served, artifacts, scratch=settings.home / "tmp" / "shadow")
    deployer = Deployer(SqlPlanSource(engine), load=load, predict_executor=executor, draw=draw)
    try:
        yield deployer
    finally:
        deployer.close()
        executor.shutdown()
        engine.dispose()
