"""Compressed request bodies through a real `modelyard serve` on 127.0.0.1: gzip and deflate
answered like plain bodies, a zip bomb refused with 413 without the server inflating it, corrupt
gzip a 400, and an unknown Content-Encoding a 415 naming it before the body is read."""

from __future__ import annotations

import gzip
import socket
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from modelyard.bootstrap import Platform
from tests.codecs.conftest import gzip_bomb
from tests.e2e.conftest import N_FEATURES, expected

INVOKE = "/endpoints/churn-api/invocations"


@pytest.fixture
def server(platform: Platform, serve: Any) -> Any:
    platform.endpoints.create("churn-api", {"main": "churn:2"})
    return serve()


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def test_gzip_and_deflate_bodies_are_answered(server: Any, models: dict[str, Any]) -> None:
    rows = models["x"][:3]
    want = expected(models, 2, rows)
    text = "\n".join(",".join(repr(v) for v in r) for r in rows.tolist()).encode()
    json_body = orjson.dumps({"instances": rows.tolist()})
    cases = [
        ("text/csv", "gzip", gzip.compress(text)),
        ("text/csv", "x-gzip", gzip.compress(text)),
        ("application/json", "GZIP", gzip.compress(json_body)),
        ("application/json", "deflate", zlib.compress(json_body)),
        ("application/json", "identity", json_body),
    ]
    with server.client() as http:
        for content_type, encoding, body in cases:
            res = http.post(
                INVOKE,
                content=body,
                headers={"content-type": content_type, "content-encoding": encoding},
            )
            assert res.status_code == 200, (encoding, res.text)
            np.testing.assert_allclose(res.json()["predictions"], want, rtol=1e-6, atol=1e-6)

        def chunks() -> Any:  # sent chunked, without a Content-Length
            packed = gzip.compress(text)
            yield from (packed[i : i + 100] for i in range(0, len(packed), 100))

        res = http.post(
            INVOKE,
            content=chunks(),
            headers={"content-type": "text/csv", "content-encoding": "gzip"},
        )
        assert res.status_code == 200, res.text
        np.testing.assert_allclose(res.json()["predictions"], want, rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_a_zip_bomb_is_413_and_the_server_does_not_inflate_it(server: Any) -> None:
    bomb = gzip_bomb(1 << 30)  # 1 GiB of zeros, about 1 MB on the wire: under the 6 MiB limit
    assert len(bomb) < 6 * 1024 * 1024
    before = peak_rss(server.process.pid)
    with server.client() as http:
        res = http.post(
            INVOKE, content=bomb, headers={"content-type": "text/csv", "content-encoding": "gzip"}
        )
        assert res.status_code == 413, res.text
        error = res.json()
        assert error["error_code"] == "payload_too_large"
        assert f"inflates to more than {6 * 1024 * 1024} bytes" in error["message"]
        grown = peak_rss(server.process.pid) - before
        assert grown < 256 * 1024 * 1024, f"the server's peak memory grew by {grown} bytes"
        res = http.post(INVOKE, json=[0.0] * N_FEATURES)
        assert res.status_code == 200, "the server goes on serving after the bomb"


def test_a_bomb_under_a_lower_limit(platform: Platform, serve: Any) -> None:
    platform.endpoints.create("churn-api", {"main": "churn:1"})
    server = serve(MODELYARD_MAX_PAYLOAD_BYTES="100000")
    bomb = gzip_bomb(1 << 25)  # 32 MiB of zeros in about 33 KB: the upload itself is allowed
    assert len(bomb) < 100_000
    with server.client() as http:
        res = http.post(
            INVOKE, content=bomb, headers={"content-type": "text/csv", "content-encoding": "gzip"}
        )
        assert res.status_code == 413 and "100000" in res.json()["message"], res.text


def test_stacked_codings_in_one_line_or_two_are_undone_in_reverse(
    server: Any, models: dict[str, Any]
) -> None:
    """Content-Encoding lists the codings in the order they were applied (RFC 9110 8.4), and two
    field lines are one list (5.3): a body gzipped, then deflated, is answered whether the
    header says so in one line or two; a third layer is a 415 naming the header."""
    rows = models["x"][:3]
    want = expected(models, 2, rows)
    text = "\n".join(",".join(repr(v) for v in r) for r in rows.tolist()).encode()
    twice = zlib.compress(gzip.compress(text))
    with server.client() as http:
        for lines in ([b"gzip, deflate"], [b"gzip", b"deflate"], [b"gzip", b"identity, deflate"]):
            headers = [(b"content-type", b"text/csv")]
            headers += [(b"content-encoding", line) for line in lines]
            res = http.post(INVOKE, content=twice, headers=headers)
            assert res.status_code == 200, (lines, res.text)
            np.testing.assert_allclose(res.json()["predictions"], want, rtol=1e-6, atol=1e-6)
        thrice = [(b"content-type", b"text/csv")] + [(b"content-encoding", b"gzip")] * 3
        res = http.post(INVOKE, content=gzip.compress(twice), headers=thrice)
        assert res.status_code == 415, res.text
        assert res.headers["x-amzn-errortype"] == "ValidationError"
        assert "Content-Encoding 'gzip, gzip, gzip'" in res.json()["message"], res.text


def test_corrupt_gzip_is_a_400_naming_it(server: Any) -> None:
    packed = gzip.compress(b",".join([b"0.5"] * N_FEATURES))
    cases = [
        (b"0.5," * (N_FEATURES - 1) + b"0.5", "not valid gzip data"),
        (packed[:-10], "gzip request body is truncated"),
        (b"", "gzip request body is truncated or empty"),
    ]
    with server.client() as http:
        for body, words in cases:
            res = http.post(
                INVOKE,
                content=body,
                headers={"content-type": "text/csv", "content-encoding": "gzip"},
            )
            assert res.status_code == 400, res.text
            error = res.json()
            assert error["error_code"] == "invalid_payload" and words in error["message"], error


def test_an_unknown_encoding_is_a_415_naming_it(server: Any) -> None:
    row = orjson.dumps([0.5] * N_FEATURES)
    with server.client() as http:
        for encoding in ("br", "compress", "gzip, zstd"):
            res = http.post(
                INVOKE,
                content=row,
                headers={"content-type": "application/json", "content-encoding": encoding},
            )
            assert res.status_code == 415, (encoding, res.text)
            named = encoding.split(",")[-1].strip()
            assert f"Content-Encoding {named!r}" in res.json()["message"]
    # Only the request head is sent: the 415 comes before the body is read.
    port = int(server.url.rsplit(":", 1)[1])
    head = (
        f"POST {INVOKE} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Encoding: br\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        # The head and the body of the answer may arrive in separate reads (seen in CI).
        while b"'br'" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 415"), answer[:200]
    assert b"'br'" in answer, answer
