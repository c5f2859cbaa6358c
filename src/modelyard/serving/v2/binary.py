"""Framing of Triton's binary tensor data extension on REST bodies.

With the extension, a body is the JSON object followed by the tensors' raw bytes, in the order
the tensors are listed; the ``Inference-Header-Content-Length`` header gives the JSON object's
length, and each binary tensor's ``parameters.binary_data_size`` its byte count. Outputs are
asked for as binary with ``parameters.binary_data: true`` on a requested output, or for all of
them with the request's ``parameters.binary_data_output: true`` (an output's own setting wins).
The answer then has the same layout, and the header, on its way back.

The header, the sizes and the body must agree to the byte: a header past the body, or binary
sizes that do not add up to what follows the JSON, is refused (400).
"""

from __future__ import annotations

from collections.abc import Sequence

from modelyard.codecs.json_shapes import clip
from modelyard.errors import InvalidPayload

__all__ = ["HEADER", "HEADER_NAME", "BinaryData", "frame", "split"]

#: The header giving the JSON object's length (lower case, as ASGI hands headers over).
HEADER = "inference-header-content-length"
#: The same header as the protocol spells it, for messages.
HEADER_NAME = "Inference-Header-Content-Length"
_EMPTY = memoryview(b"")


def split(body: bytes, header_length: str | None) -> tuple[bytes | memoryview, BinaryData]:
    """Split a request body into its JSON object and the binary data after it.

    Args:
        body: The whole (inflated) request body.
        header_length: The ``Inference-Header-Content-Length`` header, or None (all JSON).

    Raises:
        InvalidPayload: a header that is not a byte count within the body.
    """
    if header_length is None:
        return body, BinaryData(_EMPTY, header=False)
    try:
        length = int(header_length.strip())
    except ValueError:
        raise InvalidPayload(f"malformed {HEADER_NAME} {clip(header_length)}") from None
    if not 0 <= length <= len(body):
        raise InvalidPayload(
            f"{HEADER_NAME} is {length}, but the body has {len(body)} bytes: it must give "
            "the length of the JSON object at the body's start"
        )
    view = memoryview(body)
    return view[:length], BinaryData(view[length:], header=True)


class BinaryData:
    """The binary part of a request body, handed out tensor by tensor."""

    __slots__ = ("_header", "_offset", "_view")

    def __init__(self, view: memoryview, header: bool) -> None:
        self._view = view
        self._offset = 0
        self._header = header

    def take(self, size: object, what: str) -> memoryview:
        """The next ``size`` bytes, for the tensor ``what`` (its ``binary_data_size``).

        Raises:
            InvalidPayload: a size that is not a non-negative integer, or past the body's end.
        """
        if type(size) is not int or size < 0:
            raise InvalidPayload(f"{what}: binary_data_size must be a non-negative integer")
        start = self._offset
        if start + size > len(self._view):
            hint = "" if self._header else f" (send the JSON object's length as {HEADER_NAME})"
            raise InvalidPayload(
                f"{what}: binary_data_size is {size}, but only {len(self._view) - start} bytes "
                f"of binary data follow the JSON object{hint}"
            )
        self._offset = start + size
        return self._view[start : self._offset]

    def finish(self) -> None:
        """Check that the tensors' sizes used up the binary data.

        Raises:
            InvalidPayload: bytes left over (the header or a size is wrong).
        """
        left = len(self._view) - self._offset
        if left:
            raise InvalidPayload(
                f"{left} bytes after the JSON object ({HEADER_NAME}) are not claimed by any "
                "input's binary_data_size"
            )


def frame(header: bytes, blobs: Sequence[bytes]) -> bytes:
    """A response body: the JSON object, then each binary output's bytes in order."""
    return b"".join((header, *blobs)) if blobs else header
