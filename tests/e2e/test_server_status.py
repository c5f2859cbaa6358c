"""Servers report to the store: a real ``modelyard serve --workers 2`` and the real CLI, through
one server's life (a server costs seconds to start, so the phases share it):

1. Both workers are listed by ``endpoints show`` as live and current.
2. A model that fails to load inside the running server (its blob corrupted after the caller's
   check): the old route keeps answering, ``/readyz`` names the failure, an endpoint that never
   loaded answers ModelNotReadyException (429), ``endpoints show`` shows the failure and
   ``endpoints list`` flags it; once the blob is good again the servers load it and the flags go.
3. A worker killed with SIGKILL turns stale; a clean stop removes the others.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.errors import ModelLoadFailed
from modelyard.services.servers import ServerService
from tests.blobs import corrupt_model_file, unchecked_endpoints
from tests.e2e.conftest import MODELYARD, Server, clean_env
from tests.waiting import wait_for

ROW = [0.1] * 30
HEARTBEAT = {"MODELYARD_SERVER_HEARTBEAT_S": "0.5"}
# Readers (the CLI, this test) judge a server stale after 10 silent heartbeats (5 s): on a loaded
# machine a report can come a second late, which must not read as a crash.
STALE_AFTER = "10"


def cli(platform: Platform, *commands: str) -> list[str]:
    """Run each ``modelyard COMMAND`` against the platform's store, all at once (each costs a
    second or more of imports); their stdout (each must succeed)."""

    def run(command: str) -> str:
        done = subprocess.run(
            [MODELYARD, *command.split()],
            env=clean_env(platform.settings.home, MODELYARD_SERVER_STALE_AFTER=STALE_AFTER),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(run, commands))


@pytest.fixture
def servers(platform: Platform) -> Iterator[ServerService]:
    """The server service of the platform's store, judging staleness as the CLI here does."""
    watcher = build(load_settings({}, home=platform.settings.home, server_stale_after=STALE_AFTER))
    yield watcher.servers
    watcher.close()


def test_server_status_through_a_failure_a_crash_and_a_stop(
    platform: Platform, servers: ServerService, serve: Any
) -> None:
    platform.endpoints.create("churn-api", {"main": "churn:1"})
    server = serve(workers=2, **HEARTBEAT)
    pids = live_and_current(platform, servers, server)
    failure_and_recovery(platform, servers, server, pids)
    crash_and_stop(platform, servers, server, pids)


def live_and_current(platform: Platform, servers: ServerService, server: Server) -> set[int]:
    """Both workers live and current; their pids."""
    seen = wait_for(
        "2 live workers serving the current config",
        lambda: servers.for_endpoint("churn-api"),
        lambda s: len(s) == 2 and all(x.serves_current for x in s),
    )
    shown_json, text = cli(platform, "endpoints show churn-api --json", "endpoints show churn-api")
    shown = json.loads(shown_json)
    assert [(s["state"], s["current"], s["config"], s["failure"]) for s in shown["servers"]] == [
        ("live", True, 1, None),
        ("live", True, 1, None),
    ]
    assert {s["url"] for s in shown["servers"]} == {server.url}
    pids = {x.server.status.pid for x in seen}
    assert "servers  2 live, 2 serving the current config" in text, text
    for pid in pids:
        assert f":{pid}  live, revision" in text, text
    return pids


def failure_and_recovery(
    platform: Platform, servers: ServerService, server: Server, pids: set[int]
) -> None:
    """churn:3 cannot load in the server: reported, flagged, served around; then fixed."""
    # churn:3's blob breaks after the caller's check: the servers cannot load it.
    restore = corrupt_model_file(platform, "churn:3")
    unchecked = unchecked_endpoints(platform)
    unchecked.update("churn-api", {"main": "churn:3"})
    unchecked.create("fresh", {"main": "churn:3"})
    revision = servers.plan_revision()
    failing = wait_for(
        "both workers reporting both failures at the current revision",
        servers.unservable,
        lambda u: (
            set(u) == {"churn-api", "fresh"}
            and all(len(v) == 2 and all(s.server.current for s in v) for v in u.values())
        ),
    )
    assert all("churn:3" in s.failure for v in failing.values() for s in v if s.failure)
    try:
        servers.wait_until_served("churn-api", revision, timeout=30)
        raise AssertionError("waiting for a config no server can load succeeded")
    except ModelLoadFailed as exc:
        assert "churn:3" in str(exc) and server.url in str(exc)

    # The old route keeps answering; the endpoint that never loaded is SageMaker's
    # ModelNotReadyException, a 429.
    for _ in range(8):  # new connections, so both workers answer some
        answer = httpx.post(f"{server.url}/endpoints/churn-api/invocations", json=ROW, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-modelyard-model-version"] == "churn:1"
    never = httpx.post(f"{server.url}/endpoints/fresh/invocations", json=ROW, timeout=10)
    assert never.status_code == 429, never.text
    assert never.headers["x-amzn-errortype"] == "ModelNotReadyException"
    assert "churn:3" in never.json()["message"]
    # The CLI reads that 429 as the server's "not ready" (exit 6), not as a bad request (2).
    invoked = subprocess.run(
        [MODELYARD, "invoke", "fresh", "--url", server.url, "--data", json.dumps([ROW])],
        env=clean_env(platform.settings.home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert invoked.returncode == 6, invoked.stderr
    assert invoked.stderr.startswith("error: ") and "churn:3" in invoked.stderr, invoked.stderr
    ready = httpx.get(f"{server.url}/readyz", timeout=10)
    assert ready.status_code == 503
    assert set(ready.json()["failures"]) == {"churn-api", "fresh"}
    assert "corrupt" in ready.json()["failures"]["churn-api"].lower()

    shown_json, text, listing, listed_json = cli(
        platform,
        "endpoints show churn-api --json",
        "endpoints show churn-api",
        "endpoints list",
        "endpoints list --json",
    )
    shown = json.loads(shown_json)
    assert shown["config"]["number"] == 2
    assert [(s["state"], s["current"], s["config"]) for s in shown["servers"]] == [
        ("live", True, 1),
        ("live", True, 1),
    ]
    assert all("churn:3" in s["failure"] for s in shown["servers"])
    assert "servers  2 live, 0 serving the current config" in text, text
    assert text.count("serves config 1") == 2 and text.count("failed: churn:3") == 2, text
    assert "churn-api !" in listing and "fresh !" in listing, listing
    # One line per endpoint and reason, naming both workers.
    (fresh,) = [line for line in listing.splitlines() if line.startswith("! fresh: not loaded by")]
    (churn,) = [line for line in listing.splitlines() if line.startswith("! churn-api: not")]
    assert "(answering ModelNotReadyException): churn:3 failed to load" in fresh, listing
    assert "(still serving config 1): churn:3 failed to load" in churn, listing
    assert all(f":{pid}" in fresh and f":{pid}" in churn for pid in pids), listing
    listed = {e["name"]: e for e in json.loads(listed_json)}
    assert [len(listed[n]["failing_servers"]) for n in ("churn-api", "fresh")] == [2, 2]

    # Fixed: the servers retry the load and serve it; nothing is flagged any more.
    restore()
    wait_for(
        "both workers serving both endpoints' current configs",
        lambda: [*servers.for_endpoint("churn-api"), *servers.for_endpoint("fresh")],
        lambda s: len(s) == 4 and all(x.serves_current for x in s),
    )
    assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
    answer = httpx.post(f"{server.url}/endpoints/fresh/invocations", json=ROW, timeout=10)
    assert answer.status_code == 200 and answer.headers["x-modelyard-model-version"] == "churn:3"
    listing, listed_json = cli(platform, "endpoints list", "endpoints list --json")
    assert "!" not in listing, listing
    listed = {e["name"]: e for e in json.loads(listed_json)}
    assert [listed[n]["failing_servers"] for n in ("churn-api", "fresh")] == [[], []]


def crash_and_stop(
    platform: Platform, servers: ServerService, server: Server, pids: set[int]
) -> None:
    """A killed worker stays listed, stale; a clean stop removes the others."""
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)  # uvicorn starts a replacement
    after = wait_for(
        "the killed worker stale",
        lambda: servers.for_endpoint("churn-api"),
        lambda s: {x.server.status.pid: x.server.live for x in s}.get(victim) is False,
    )
    assert {x.server.status.pid for x in after if x.server.live} & pids == pids - {victim}
    (text,) = cli(platform, "endpoints show churn-api")
    assert f":{victim}  stale (silent " in text, text

    # The replacement too, if it had started; the dead one is left, stale.
    server.stop()
    left = wait_for(
        "the stopped workers removed",
        lambda: servers.for_endpoint("churn-api"),
        lambda s: [x.server.status.pid for x in s] == [victim],
    )
    assert not left[0].server.live


@pytest.mark.parametrize("workers", [1, 2])
def test_port_0_serves_on_a_free_port_and_says_which(
    platform: Platform, servers: ServerService, tmp_path: Path, workers: int
) -> None:
    """``serve --port 0`` (as ``demo --port 0`` does) binds a port the system picks, names it in
    its banner and reports it as its URL; every worker answers on it. It was refused (exit 2).
    So does ``--grpc-port 0``: one free port, chosen once by ``serve``, that every worker binds
    (each picking its own would leave the banner naming none of them); it was refused too."""
    platform.endpoints.create("churn-api", {"main": "churn:1"})
    log = tmp_path / "server.log"
    argv = [MODELYARD, "serve", "--port", "0", "--grpc-port", "0", "--workers", str(workers)]
    argv.append("--no-monitors")
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            env=clean_env(platform.settings.home, **HEARTBEAT),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def banner() -> str | None:
        if process.poll() is not None:
            raise AssertionError(f"serve exited {process.returncode}: {log.read_text()}")
        found = re.search(r"on (http://127\.0\.0\.1:\d+) and grpc://(\S+) with", log.read_text())
        return found.groups() if found else None

    url, grpc_address = wait_for("the banner naming the addresses", banner)
    server = Server(url, process, log)
    try:
        assert not url.endswith(":0") and not grpc_address.endswith(":0"), (url, grpc_address)
        assert grpc_address != url.removeprefix("http://")
        server.wait_ready()
        answer = httpx.post(f"{url}/endpoints/churn-api/invocations", json=ROW, timeout=10)
        assert answer.status_code == 200, answer.text
        seen: set[str] = set()
        wait_for(
            f"gRPC answers from {workers} worker(s) on {grpc_address}",
            lambda: _grpc_worker(grpc_address, seen),
            lambda answered: len(answered) == workers,
        )
        reported = wait_for(
            f"{workers} live worker(s)",
            lambda: servers.for_endpoint("churn-api"),
            lambda s: len(s) == workers,
        )
        assert {x.server.status.url for x in reported} == {url}
    finally:
        server.stop()


def _grpc_worker(address: str, seen: set[str]) -> set[str]:
    """``seen`` and the worker that answers a V2 ModelInfer on a new connection to ``address``."""
    import grpc

    from modelyard.serving.v2 import grpc_predict_v2_pb2 as pb
    from modelyard.serving.v2 import grpc_predict_v2_pb2_grpc as pb_grpc

    request = pb.ModelInferRequest(model_name="churn-api")
    tensor = request.inputs.add(name="input-0", datatype="FP64", shape=[1, len(ROW)])
    tensor.contents.fp64_contents.extend(ROW)
    # A local subchannel pool makes each channel its own connection (so its own worker).
    options = [("grpc.use_local_subchannel_pool", 1)]
    with grpc.insecure_channel(address, options=options) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        _, call = stub.ModelInfer.with_call(request, timeout=10)
    seen.add(dict(call.trailing_metadata())["x-modelyard-worker"])
    return seen
