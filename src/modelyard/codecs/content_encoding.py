"""``Content-Encoding`` of request bodies: gzip and deflate inflated under the payload limit.

A compressed body is inflated with a cap on zlib's output (``max_length``), so a small body that
would inflate to gigabytes (a zip bomb) costs at most the limit in memory and time before it is
refused with a 413. The same limit bounds the body as sent and as inflated, and each layer of
stacked codings (``gzip, deflate``: undone last applied first); at most :data:`MAX_CODINGS`
layers are undone, so the whole decoding inflates at most that many times the limit.
"""

from __future__ import annotations

import zlib

from modelyard.codecs.json_shapes import clip
from modelyard.errors import InvalidPayload, PayloadTooLarge, UnsupportedMediaType

__all__ = ["MAX_CODINGS", "SUPPORTED_ENCODINGS", "codings", "inflate"]

SUPPORTED_ENCODINGS: tuple[str, ...] = ("gzip", "deflate", "identity")

#: The most codings one body may stack. Each layer inflates under the payload limit, so this
#: bounds the work of the whole: a header listing ten thousand layers over a body stored
#: uncompressed in each would inflate gigabytes, on the event loop, for a body of megabytes.
#: No client stacks more than two (a body compressed once more by a proxy).
MAX_CODINGS = 2

# zlib window bits per coding: gzip's header and trailer (16 + 15); deflate is the zlib format
# (RFC 9110 8.4.1.2). x-gzip is gzip's old name, still to be accepted (RFC 9110 8.4.1.3).
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def codings(header: str) -> tuple[str, ...]:
    """The codings a ``Content-Encoding`` header says were applied, in order, without identity.

    Args:
        header: The header's value, e.g. ``"gzip"`` or ``"identity"``.

    Returns:
        Lower-cased coding names to undo, last applied last; empty for identity alone.

    Raises:
        UnsupportedMediaType: a coding other than gzip, deflate or identity (the message names
            it), or more than :data:`MAX_CODINGS` of them.
    """
    found = []
    for part in header.split(","):
        coding = part.strip().lower()
        if coding in ("", "identity"):
            continue
        if coding not in _WBITS:
            raise UnsupportedMediaType(
                f"unsupported Content-Encoding {clip(part.strip())}: "
                f"supported: {', '.join(SUPPORTED_ENCODINGS)}"
            )
        found.append(coding)
    if len(found) > MAX_CODINGS:
        raise UnsupportedMediaType(
            f"Content-Encoding {clip(header, 60)} lists {len(found)} codings: at most "
            f"{MAX_CODINGS} stacked codings are undone; send the body compressed once"
        )
    return tuple(found)


def inflate(body: bytes, applied: tuple[str, ...], limit: int) -> bytes:
    """Undo the codings of :func:`codings`, last applied first, each inflated to at most ``limit``.

    Args:
        body: The request body as sent.
        applied: What :func:`codings` returned.
        limit: The largest body, in bytes, the server reads.

    Returns:
        The decoded body.

    Raises:
        PayloadTooLarge: the body inflates to more than ``limit`` bytes.
        InvalidPayload: the body is not valid data of its coding (corrupt, truncated, empty).
    """
    for coding in reversed(applied):
        body = _inflate(body, coding, limit)
    return body


def _inflate(data: bytes, coding: str, limit: int) -> bytes:
    inflater = zlib.decompressobj(_WBITS[coding])
    try:
        body = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise InvalidPayload(f"the request body is not valid {coding} data: {exc}") from None
    if len(body) > limit:
        raise PayloadTooLarge(
            f"the {coding} request body inflates to more than {limit} bytes, the limit"
        )
    if not inflater.eof:
        raise InvalidPayload(f"the {coding} request body is truncated or empty")
    if inflater.unused_data:
        # Several gzip members (RFC 1952 2.2) are refused rather than looped over: each would
        # copy the rest of the body, and a body of tiny members would cost quadratic time.
        raise InvalidPayload(
            f"{len(inflater.unused_data)} bytes follow the end of the {coding} data "
            "(one compressed stream per body)"
        )
    return body
