"""Content-Encoding of request bodies: gzip and deflate inflated under the payload limit, zip
bombs refused without being inflated, corrupt bodies and unknown codings named."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import pytest

from modelyard.codecs.content_encoding import SUPPORTED_ENCODINGS, codings, inflate
from modelyard.errors import InvalidPayload, PayloadTooLarge, UnsupportedMediaType
from tests.codecs.conftest import gzip_bomb

BODY = b"1,2\n3,4\n" * 100


def test_the_bomb_helper_builds_valid_gzip() -> None:
    bomb = gzip_bomb(1 << 25)  # 32 MiB: small enough to inflate whole here
    assert len(bomb) < 64 * 1024
    assert gzip.decompress(bomb) == bytes(1 << 25)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", ("gzip",)),
        ("GZip", ("gzip",)),
        ("x-gzip", ("x-gzip",)),
        ("deflate", ("deflate",)),
        ("identity", ()),
        ("", ()),
        (" identity , gzip ", ("gzip",)),
        ("gzip, identity", ("gzip",)),
        ("deflate, gzip", ("deflate", "gzip")),
    ],
)
def test_codings(header: str, expected: tuple[str, ...]) -> None:
    assert codings(header) == expected


@pytest.mark.parametrize("header", ["br", "compress", "zstd", "gzip, br", "Br"])
def test_an_unknown_coding_is_a_415_naming_it(header: str) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        codings(header)
    message = str(info.value)
    named = header.split(",")[-1].strip()
    assert f"unsupported Content-Encoding {named!r}" in message
    assert all(coding in message for coding in SUPPORTED_ENCODINGS)
    assert info.value.http_status == 415


def test_a_long_coding_is_clipped_in_the_message() -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        codings("q" * 500)
    assert "q" * 41 not in str(info.value)


@pytest.mark.parametrize(
    ("header", "encoded"),
    [
        ("gzip", gzip.compress(BODY, mtime=0)),
        ("x-gzip", gzip.compress(BODY, mtime=0)),
        ("deflate", zlib.compress(BODY)),
        ("deflate, gzip", gzip.compress(zlib.compress(BODY), mtime=0)),
        ("identity", BODY),
    ],
)
def test_inflate_round_trips(header: str, encoded: bytes) -> None:
    assert inflate(encoded, codings(header), 10_000) == BODY


@pytest.mark.parametrize(
    "header", ["gzip, gzip, gzip", "gzip,deflate,gzip", ", ".join(["gzip"] * 10_000)]
)
def test_more_than_two_stacked_codings_are_a_415_naming_the_header(header: str) -> None:
    """Each layer inflates under the payload limit, so the layers a header may list bound the
    work a body costs: ten thousand listed over a body of a few megabytes stored uncompressed in
    each would inflate gigabytes on the event loop. Two are undone; more are refused before
    the body is read, naming the header and how many it lists."""
    with pytest.raises(UnsupportedMediaType) as info:
        codings(header)
    message = str(info.value)
    assert "Content-Encoding" in message and f"{header.count(',') + 1} codings" in message
    assert "at most 2" in message and len(message) < 300, message
    assert info.value.http_status == 415
    assert codings("gzip, identity, gzip, identity") == ("gzip", "gzip")  # identity is none


def test_the_limit_applies_to_the_inflated_size() -> None:
    assert inflate(gzip.compress(BODY, mtime=0), ("gzip",), len(BODY)) == BODY
    with pytest.raises(PayloadTooLarge, match=f"inflates to more than {len(BODY) - 1} bytes"):
        inflate(gzip.compress(BODY, mtime=0), ("gzip",), len(BODY) - 1)
    inner = gzip.compress(BODY, mtime=0)
    with pytest.raises(PayloadTooLarge):  # each layer of a stacked coding has the same limit
        inflate(gzip.compress(inner, mtime=0), ("gzip", "gzip"), len(inner) + 1)


def test_a_zip_bomb_is_refused_without_inflating_it() -> None:
    bomb = gzip_bomb(1 << 30)  # 1 GiB of zeros in about 1 MB
    limit = 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLarge, match=f"more than {limit} bytes"):
            inflate(bomb, ("gzip",), limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * limit, f"inflating the bomb took {peak} bytes"


@pytest.mark.parametrize(
    ("header", "encoded", "words"),
    [
        ("gzip", b"1,2\n3,4\n", "not valid gzip data"),
        ("gzip", gzip.compress(BODY, mtime=0)[:-12], "gzip request body is truncated"),
        ("gzip", b"", "gzip request body is truncated or empty"),
        ("gzip", gzip.compress(BODY, mtime=0)[:-8] + b"\0" * 8, "not valid gzip data"),  # bad CRC
        ("gzip", gzip.compress(BODY, mtime=0) + b"junk", "4 bytes follow the end of the gzip data"),
        ("gzip", gzip.compress(BODY, mtime=0) * 2, "follow the end of the gzip data"),
        ("deflate", gzip.compress(BODY, mtime=0), "not valid deflate data"),
        ("deflate", zlib.compress(BODY)[:-1], "deflate request body is truncated"),
    ],
    ids=[
        "plain",
        "truncated",
        "empty",
        "bad-crc",
        "trailing",
        "two-members",
        "gzip-as-deflate",
        "cut",
    ],
)
def test_a_corrupt_body_is_invalid_and_names_the_coding(
    header: str, encoded: bytes, words: str
) -> None:
    with pytest.raises(InvalidPayload, match=words) as info:
        inflate(encoded, codings(header), 1 << 20)
    assert info.value.http_status == 400
