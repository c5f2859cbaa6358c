"""The body of a SageMaker ``InvokeEndpointWithResponseStream`` answer: AWS's event-stream
framing (``application/vnd.amazon.eventstream``), which botocore's ``EventStream`` reads.

Each message is a prelude (total length, headers length, the prelude's CRC32, all big-endian
uint32), the headers, the payload and the CRC32 of everything before it. Every message here is
a ``PayloadPart`` event carrying a slice of the response body in its payload; a caller
concatenates the parts' ``Bytes`` to get the body back.
"""

from __future__ import annotations

import struct
import zlib

MEDIA_TYPE = "application/vnd.amazon.eventstream"

#: The largest payload one message carries: botocore refuses a message over 16 MiB, and the
#: real runtime sends parts much smaller than that.
PART_BYTES = 1 << 20

_STRING = 7  # the event-stream header value type of a UTF-8 string


def _header(name: bytes, value: bytes) -> bytes:
    return bytes((len(name),)) + name + bytes((_STRING,)) + struct.pack(">H", len(value)) + value


_PAYLOAD_PART_HEADERS = (
    _header(b":event-type", b"PayloadPart")
    + _header(b":content-type", b"application/octet-stream")
    + _header(b":message-type", b"event")
)


def _message(headers: bytes, payload: bytes) -> bytes:
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    framed = prelude + headers + payload
    return framed + struct.pack(">I", zlib.crc32(framed))


def payload_parts(body: bytes, part_bytes: int = PART_BYTES) -> bytes:
    """``body`` as a stream of ``PayloadPart`` events of at most ``part_bytes`` each (one
    event, with an empty payload, for an empty body)."""
    if len(body) <= part_bytes:
        return _message(_PAYLOAD_PART_HEADERS, body)
    view = memoryview(body)
    return b"".join(
        _message(_PAYLOAD_PART_HEADERS, bytes(view[start : start + part_bytes]))
        for start in range(0, len(body), part_bytes)
    )
