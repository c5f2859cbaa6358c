"""The event-stream framing of InvokeEndpointWithResponseStream answers, read back by botocore's
own parser (what boto3's ``invoke_endpoint_with_response_stream`` iterates over)."""

from __future__ import annotations

import pytest
from botocore.eventstream import EventStreamBuffer

from modelyard.codecs.event_stream import payload_parts


def _read(stream: bytes) -> list[tuple[dict[str, object], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(stream)
    return [(message.headers, message.payload) for message in buffer]


@pytest.mark.parametrize("body", [b"", b'{"predictions":[0.5]}', bytes(range(256)) * 41])
def test_parts_reassemble_the_body(body: bytes) -> None:
    messages = _read(payload_parts(body, part_bytes=1000))
    assert b"".join(payload for _, payload in messages) == body
    assert len(messages) == max(1, -(-len(body) // 1000))
    for headers, payload in messages:
        assert len(payload) <= 1000
        assert headers == {
            ":event-type": "PayloadPart",
            ":content-type": "application/octet-stream",
            ":message-type": "event",
        }
