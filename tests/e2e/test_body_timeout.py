"""A client that sends its headers and then stalls mid-body (slowloris) gets 408 from a real
``modelyard serve`` once ``MODELYARD_BODY_TIMEOUT_S`` has passed, on the SageMaker and the V2
routes, and the server goes on answering everyone else; the 408s are counted as errors."""

from __future__ import annotations

import socket
from collections.abc import Callable

import orjson

from modelyard.bootstrap import Platform
from tests.e2e.conftest import N_FEATURES, Server
from tests.serving.metrics_support import parse, total
from tests.waiting import wait_for

#: Long enough for the server's 1 s timeout and its 1 s sweep on a slow machine, many times over.
ANSWER_WAIT_S = 60


def stalled(server: Server, path: str) -> bytes:
    """Send ``path``'s headers and the first 10 of 200 body bytes, then nothing; the answer."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_WAIT_S) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            "content-length: 200\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"instanc')
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def test_a_body_that_stops_arriving_gets_408_and_others_are_served(
    platform: Platform, serve: Callable[..., Server]
) -> None:
    platform.endpoints.create("api", {"main": "churn:1"})
    server = serve(MODELYARD_BODY_TIMEOUT_S="1", MODELYARD_METRICS="true")
    for path in ("/endpoints/api/invocations", "/v2/models/api/infer"):
        answer = stalled(server, path)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        # Closed, not kept alive: the rest of the body is unread, and a keep-alive connection
        # would wait on the stalled client with no timer to end it.
        assert b"\r\nconnection: close\r\n" in answer.lower(), answer[:400]
    body = orjson.dumps({"instances": [[0.1] * N_FEATURES]})
    with server.client() as http:
        ok = http.post(
            "/endpoints/api/invocations", content=body, headers={"content-type": "application/json"}
        )
        assert ok.status_code == 200, ok.text
        timeout = {"endpoint": "api", "status": "408", "code": "request_timeout"}

        def counted() -> float:
            samples = parse(http.get("/metrics").text)
            return total(samples, "modelyard_request_errors_total", **timeout)

        wait_for("both 408s counted", counted, lambda n: n == 2)
