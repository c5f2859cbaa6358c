"""Inference ids are UUIDv7s written as 32 hex digits: unique, in time order, and they say when
they were made; ids of any other form are taken as ids without a time."""

from __future__ import annotations

import os
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from modelyard.domain.inference_ids import issued_at, new_inference_id


def test_ids_are_uuid7_hex_unique_and_carry_their_time() -> None:
    before = datetime.now(UTC)
    ids = [new_inference_id() for _ in range(20_000)]
    after = datetime.now(UTC)
    assert len(set(ids)) == len(ids)
    for inference_id in ids[:500]:
        parsed = uuid.UUID(inference_id)
        assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
        assert inference_id == parsed.hex  # lower-case, no dashes: 32 hex digits
    times = [issued_at(i) for i in ids]
    assert all(t is not None for t in times)
    # Milliseconds: the first and last ids' times bracket the calls, to the millisecond.
    assert before - timedelta(milliseconds=1) <= times[0] <= times[-1] <= after  # type: ignore[operator]


# Fixed values: xdist's workers must collect the same test ids.
@pytest.mark.parametrize(
    "foreign",
    [
        "9f3c2a5e0d4b4c1e8a7f6b5c4d3e2f10",  # version 4
        "my-own-request-id",
        "Z" * 32,
        "0x" + "7" * 30,
        "",
        "01a2378e76577588ab1f1ef1d12b288",  # a v7 one digit short
        "00000000000070008000000000000000",  # a v7 of 1970: not one this scheme made
    ],
)
def test_ids_of_other_forms_have_no_time(foreign: str) -> None:
    assert issued_at(foreign) is None


def test_random_hex_ids_rarely_pass_for_timed_ones() -> None:
    # Servers before this scheme made 128 random bits; at most 1 in 64 has the version and
    # variant bits of a v7, and a random time is almost never a plausible one.
    now = datetime.now(UTC)
    plausible = [
        t
        for t in (issued_at(os.urandom(16).hex()) for _ in range(20_000))
        if t is not None and t <= now + timedelta(days=1)
    ]
    assert len(plausible) < 20


def _random_part(inference_id: str) -> str:
    return inference_id[13:]  # after the 48-bit time and the version digit


def test_a_forked_process_never_hands_out_its_parents_ids() -> None:
    new_inference_id()  # the parent holds random bytes read ahead
    read, write = os.pipe()
    with warnings.catch_warnings():  # forking a process with threads: fine for this child
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: its next ids, then out at once
        try:
            os.write(write, " ".join(new_inference_id() for _ in range(50)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split()
    os.waitpid(pid, 0)
    parent = [new_inference_id() for _ in range(50)]
    assert len(child) == 50
    assert not {_random_part(i) for i in child} & {_random_part(i) for i in parent}


def test_ids_made_on_several_threads_at_once_are_all_different() -> None:
    with ThreadPoolExecutor(4) as pool:
        batches = list(pool.map(lambda _: [new_inference_id() for _ in range(5_000)], range(4)))
    ids = [i for batch in batches for i in batch]
    assert len({_random_part(i) for i in ids}) == len(ids)
