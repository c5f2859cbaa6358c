"""The V2 gRPC server as a companion of the serving app (``serving/v2/grpc_server.py``), started
by the app's lifespan in this process and called with grpc.aio on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc

from modelyard.bootstrap import serving_app
from modelyard.config import load_settings
from modelyard.serving.v2 import grpc_predict_v2_pb2 as pb
from modelyard.serving.v2 import grpc_predict_v2_pb2_grpc as pb_grpc
from tests.e2e.conftest import free_port
from tests.serving.asgi_support import lifespan
from tests.serving.capture_support import make_platform


def test_a_payload_limit_past_what_grpc_can_carry_serves_at_grpcs_own_limit(
    tmp_path: Path,
) -> None:
    """``--max-payload-mb 4096`` with ``--grpc-port``: gRPC's message limit is a C int, so the
    server did not start (OverflowError from grpc's channel arguments, a traceback and exit 3).
    A limit past 2 GiB - 1 means no limit gRPC can keep below its own: it serves with that."""
    home = tmp_path / "home"
    make_platform(home).close()
    settings = load_settings({}, home=home, grpc_port=free_port(), max_payload_bytes=4 * 1024**3)

    async def scenario() -> tuple[bool, list[float]]:
        async with lifespan(serving_app(settings)):
            target = f"127.0.0.1:{settings.grpc_port}"
            async with grpc.aio.insecure_channel(target) as channel:
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
