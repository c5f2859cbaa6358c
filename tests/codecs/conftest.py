"""Helpers of the codec tests, shared with the end-to-end tests of compressed bodies."""

from __future__ import annotations

import struct
import zlib
from functools import cache


@cache
def gzip_bomb(size: int) -> bytes:
    """A valid gzip stream of ``size`` zero bytes (a multiple of 16 MiB), built in a second.

    Each 16 MiB of zeros compresses, after a full flush (which forgets the history), to the
    same bytes, so the stream is one block repeated: no need to compress a gigabyte.
    """
    chunk = bytes(1 << 24)
    count, rest = divmod(size, len(chunk))
    assert rest == 0 and count >= 2
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    first = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert first.endswith(block)  # the same block after the 10-byte gzip header
    end = compressor.flush()[:-8]  # the final empty block, without the trailer of 2 chunks
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(chunk, crc)
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return first + block * (count - 1) + end + trailer
