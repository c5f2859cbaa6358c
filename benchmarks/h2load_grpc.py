"""Drive a V2 gRPC server with ``h2load`` (nghttp2's HTTP/2 load generator, written in C).

A unary gRPC call is an HTTP/2 POST to ``/inference.GRPCInferenceService/ModelInfer`` with
``content-type: application/grpc``, ``te: trailers`` and one length-prefixed protobuf message
as the body. ``h2load`` sends the same body over and over over ``connections`` connections,
one stream in flight on each (``-m 1``), as wrk does for HTTP/1.1; ``--log-file`` gives every
request's latency, from which the percentiles are computed.

What ``h2load`` cannot see is the ``grpc-status`` trailer: a gRPC error still arrives as
HTTP 200, but without a response message. So the DATA bytes received are checked against the
size of one good answer (measured once with a real gRPC client): every answer that carried no
message counts as an error (``grpc_no_message``).

Needs ``h2load`` (``apt-get install nghttp2-client``).
"""

from __future__ import annotations

import re
import resource
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from tritonclient.grpc import service_pb2

INFER_METHOD = "/inference.GRPCInferenceService/ModelInfer"
HEADERS = ("content-type: application/grpc", "te: trailers")
MAX_THREADS = 2
PROBE_TIMEOUT_S = 10.0
EXTRA_TIME_S = 40  # beyond the run's own duration, before the run is called hung
INPUT_NAME = "input-0"


class H2loadFailed(RuntimeError):
    """h2load is missing, failed, overran its time, or printed no result."""


@dataclass(frozen=True)
class GrpcRequest:
    """One encoded ModelInfer request and the answer a good server gives to it."""

    message: bytes  # the serialised ModelInferRequest
    answer_bytes: int  # size of the serialised ModelInferResponse
    prediction: float | None

    @property
    def frame(self) -> bytes:
        """The message as gRPC sends it on the wire: uncompressed flag, length, message."""
        return b"\x00" + struct.pack(">I", len(self.message)) + self.message


def h2load_binary() -> str:
    """The h2load executable on PATH."""
    path = shutil.which("h2load")
    if path is None:
        raise H2loadFailed("h2load is not installed (apt-get install nghttp2-client)")
    return path


def h2load_version() -> str:
    """h2load's version line."""
    run = subprocess.run(
        [h2load_binary(), "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    return run.stdout.strip().splitlines()[0]


def infer_request(model: str, row: Sequence[float]) -> bytes:
    """A ModelInferRequest for one FP64 row, with the data as raw bytes (as Triton's client)."""
    data = np.asarray([row], dtype=np.float64)
    request = service_pb2.ModelInferRequest(model_name=model)
    tensor = request.inputs.add()
    tensor.name, tensor.datatype = INPUT_NAME, "FP64"
    tensor.shape.extend(data.shape)
    request.raw_input_contents.append(data.tobytes())
    return request.SerializeToString()


def first_output_value(response: Any) -> float | None:
    """The first number of the first output (raw contents or typed contents), or None."""
    if not response.outputs:
        return None
    output = response.outputs[0]
    dtypes = {"FP32": "<f4", "FP64": "<f8", "INT64": "<i8", "INT32": "<i4"}
    if response.raw_output_contents and output.datatype in dtypes:
        values = np.frombuffer(response.raw_output_contents[0], dtype=dtypes[output.datatype])
        return float(values[0]) if values.size else None
    contents = output.contents
    for field in ("fp32_contents", "fp64_contents", "int64_contents", "int_contents"):
        values = getattr(contents, field)
        if values:
            return float(values[0])
    return None


def probe(target: str, model: str, row: Sequence[float]) -> GrpcRequest:
    """Send the request once with a real gRPC client; raise grpc.RpcError if it fails."""
    message = infer_request(model, row)
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(
            INFER_METHOD,
            request_serializer=lambda raw: raw,
            response_deserializer=lambda raw: raw,
        )
        answer = call(message, timeout=PROBE_TIMEOUT_S)
    response = service_pb2.ModelInferResponse.FromString(answer)
    return GrpcRequest(message, len(answer), first_output_value(response))


def _children_cpu_seconds() -> float:
    """CPU time of this process's reaped children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _count(pattern: str, text: str) -> int:
    """The integer a summary-line pattern captures (0 when absent)."""
    found = re.search(pattern, text)
    return int(found.group(1)) if found else 0


def _parse(stdout: str, log: Path, duration_s: float, answer_bytes: int) -> dict[str, Any]:
    """Counts from h2load's summary, latency percentiles from its per-request log."""
    if "requests:" not in stdout:
        raise H2loadFailed(f"h2load printed no summary:\n{stdout[-2000:]}")
    succeeded = _count(r"(\d+) succeeded", stdout)
    data_bytes = _count(r"\((\d+)\) data", stdout)
    frame_bytes = 5 + answer_bytes  # each good answer: one length-prefixed message
    with_message = round(data_bytes / frame_bytes)
    rows = [line.split("\t") for line in log.read_text().splitlines() if line.strip()]
    latency_ms = np.array([int(row[2]) / 1e3 for row in rows if row[1] == "200"])
    errors = {
        "failed": _count(r"(\d+) failed", stdout),
        "errored": _count(r"(\d+) errored", stdout),
        "timeout": _count(r"(\d+) timeout", stdout),
        "non_2xx": sum(_count(rf"(\d+) {kind}", stdout) for kind in ("3xx", "4xx", "5xx")),
        "grpc_no_message": max(0, succeeded - with_message),
    }
    errors["total"] = sum(errors.values())
    good = succeeded - errors["grpc_no_message"]

    def pct(q: float) -> float | None:
        return float(np.percentile(latency_ms, q)) if latency_ms.size else None

    return {
        "requests": good,
        "duration_s": duration_s,
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": float(latency_ms.max()) if latency_ms.size else None,
        "mean_ms": float(latency_ms.mean()) if latency_ms.size else None,
        "errors": errors,
        "data_bytes": data_bytes,
        "answer_frame_bytes": frame_bytes,
    }


def run_h2load(
    url: str, request: GrpcRequest, *, connections: int, duration_s: int
) -> dict[str, Any]:
    """POST the request to ``url`` (``http://host:port``) for ``duration_s``; one stream each.

    Returns:
        Requests answered with a message, latency percentiles (ms), errors by kind, and
        h2load's own CPU time (``client_cpu_s``).

    Raises:
        H2loadFailed: h2load is missing, exits non-zero, hangs, or prints no summary.
    """
    with tempfile.TemporaryDirectory(prefix="h2load-") as tmp:
        body, log = Path(tmp) / "body.bin", Path(tmp) / "requests.log"
        body.write_bytes(request.frame)
        argv = [
            h2load_binary(), "-D", str(duration_s), "-c", str(connections), "-m", "1",
            "-t", str(min(connections, MAX_THREADS)), "-d", str(body),
            *(part for header in HEADERS for part in ("-H", header)),
            f"--log-file={log}", url.rstrip("/") + INFER_METHOD,
        ]  # fmt: skip
        cpu_before = _children_cpu_seconds()
        try:
            run = subprocess.run(
                argv, capture_output=True, text=True, timeout=duration_s + EXTRA_TIME_S, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise H2loadFailed(f"h2load did not finish within {exc.timeout:.0f} s") from exc
        if run.returncode != 0:
            raise H2loadFailed(f"h2load exited {run.returncode}: {run.stderr[-2000:]}")
        result = _parse(run.stdout, log, duration_s, request.answer_bytes)
    return {**result, "client_cpu_s": _children_cpu_seconds() - cpu_before}
