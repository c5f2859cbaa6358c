"""The V2 gRPC server as a companion of the serving app (``serving/v2/grpc_server.py``), started
by the app's lifespan in this process and called with grpc.aio on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelyard.bootstrap import serving_app
from modelyard.config import Settings, load_settings
from modelyard.serving.v2 import grpc_predict_v2_pb2 as pb
from modelyard.serving.v2 import grpc_predict_v2_pb2_grpc as pb_grpc
from tests.e2e.conftest import free_port
from tests.serving.asgi_support import lifespan
from tests.serving.capture_support import make_platform


def _settings(home: Path, **overrides: Any) -> Settings:
    """A store holding the endpoint ``quiet`` (``make_platform``), served with a gRPC port."""
    make_platform(home).close()
    return load_settings({}, home=home, grpc_port=free_port(), **overrides)


@asynccontextmanager
async def _channel(settings: Settings) -> AsyncIterator[grpc.aio.Channel]:
    """The serving app started (its gRPC server with it), and a channel to its gRPC port."""
    async with lifespan(serving_app(settings)):
        target = f"127.0.0.1:{settings.grpc_port}"
        async with grpc.aio.insecure_channel(target) as channel:
            yield channel


def test_a_payload_limit_past_what_grpc_can_carry_serves_at_grpcs_own_limit(
    tmp_path: Path,
) -> None:
    """``--max-payload-mb 4096`` with ``--grpc-port``: gRPC's message limit is a C int, so the
    server did not start (OverflowError from grpc's channel arguments, a traceback and exit 3).
    A limit past 2 GiB - 1 means no limit gRPC can keep below its own: it serves with that."""
    settings = _settings(tmp_path / "home", max_payload_bytes=4 * 1024**3)

    async def scenario() -> tuple[bool, list[float]]:
        async with _channel(settings) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            live = await stub.ServerLive(pb.ServerLiveRequest(), timeout=30)
            request = pb.ModelInferRequest(model_name="quiet")
            tensor = request.inputs.add(name="input-0", datatype="FP64", shape=[1, 3])
            tensor.contents.fp64_contents.extend([0.5, -1.0, 2.0])
            answer = await stub.ModelInfer(request, timeout=30)
            return live.live, list(answer.outputs[0].contents.int64_contents)

    live, labels = asyncio.run(scenario())
    assert live
    assert len(labels) == 1


def test_an_unknown_health_service_is_not_found_however_long_its_name(tmp_path: Path) -> None:
    """The unknown service's name was echoed whole in the status message: past the caller's
    metadata limit (16 KiB in grpc's clients) the caller got RESOURCE_EXHAUSTED 'received
    metadata size exceeds hard limit' instead of the protocol's NOT_FOUND."""
    settings = _settings(tmp_path / "home")

    async def scenario() -> list[tuple[Any, str]]:
        answers = []
        async with _channel(settings) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for service in ("inference.Other", "x" * 100_000):
                try:
                    await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=30)
                except grpc.aio.AioRpcError as error:
                    answers.append((error.code(), error.details() or ""))
            # The server goes on: a known service still answers.
            check = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=30)
            answers.append((check.status, ""))
        return answers

    short, long, known = asyncio.run(scenario())
    assert short == (grpc.StatusCode.NOT_FOUND, "unknown service 'inference.Other'")
    assert long[0] == grpc.StatusCode.NOT_FOUND, long
    assert long[1].startswith("unknown service 'xxxx") and len(long[1]) < 200, long[1][:300]
    assert known[0] == health_pb2.HealthCheckResponse.SERVING


def test_bytes_that_are_not_a_health_request_are_an_invalid_argument(tmp_path: Path) -> None:
    """The health service was registered without the inference service's handling of bytes
    that do not parse: the caller got UNKNOWN 'Unexpected DecodeError'."""
    settings = _settings(tmp_path / "home")
    garbage = b"\xff\xff\xff\xff\x0fnot a protobuf message"

    async def scenario() -> tuple[list[tuple[Any, str]], Any]:
        answers = []
        async with _channel(settings) as channel:
            check = channel.unary_unary("/grpc.health.v1.Health/Check")  # bytes as they are
            watch = channel.unary_stream("/grpc.health.v1.Health/Watch")
            for call in (check(garbage, timeout=30), watch(garbage, timeout=30)):
                try:
                    if hasattr(call, "read"):
                        await call.read()
                    else:
                        await call
                except grpc.aio.AioRpcError as error:
                    answers.append((error.code(), error.details() or ""))
            stub = health_pb2_grpc.HealthStub(channel)
            known = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=30)
        return answers, known.status

    answers, known = asyncio.run(scenario())
    words = "not a valid grpc.health.v1.HealthCheckRequest protobuf message"
    assert [code for code, _ in answers] == [grpc.StatusCode.INVALID_ARGUMENT] * 2, answers
    assert all(words in details for _, details in answers), answers
    assert known == health_pb2.HealthCheckResponse.SERVING
