"""``read_body`` under a :class:`BodyDeadline`: a body that stops arriving is given up on as
``RequestTimeout`` (408); any other cancellation passes through untouched; a body that comes
in time leaves nothing behind."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from modelyard.errors import RequestTimeout
from modelyard.serving.body_deadline import BodyDeadline
from modelyard.serving.http import read_body


async def trickle() -> dict[str, Any]:
    """A client that sent one chunk and then stalled: the next ``receive`` never returns."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def stalled_receive() -> Any:
    sent = [False]

    async def receive() -> dict[str, Any]:
        if not sent[0]:
            sent[0] = True
            return {"type": "http.request", "body": b"0123456789", "more_body": True}
        return await trickle()

    return receive


def test_a_stalled_body_times_out_as_408() -> None:
    deadline = BodyDeadline(0.01)  # swept within a second (SWEEP_S)

    async def scenario() -> None:
        with pytest.raises(RequestTimeout, match=r"did not arrive within 0.01 s \(10 bytes came\)"):
            await asyncio.wait_for(read_body({}, stalled_receive(), 1000, deadline), 60)
        # The task is not left cancelled, and the deadline keeps nothing of it.
        assert deadline._reading == {} and deadline._expired == set()
        current = asyncio.current_task()
        assert current is not None and current.cancelling() == 0

    asyncio.run(scenario())
    assert RequestTimeout.http_status == 408


def test_another_cancellation_passes_through_and_a_prompt_body_leaves_nothing() -> None:
    deadline = BodyDeadline(60)

    async def scenario() -> None:
        task = asyncio.ensure_future(read_body({}, stalled_receive(), 1000, deadline))
        async with asyncio.timeout(60):  # until the read has begun (and stalled)
            while not deadline._reading:
                await asyncio.sleep(0)
        task.cancel()  # the client went away, or the server stops: not a timeout
        with pytest.raises(asyncio.CancelledError):
            await task
        assert deadline._reading == {}

        async def whole() -> dict[str, Any]:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        assert await read_body({}, whole, 1000, deadline) == b"{}"
        assert deadline._reading == {}

    asyncio.run(scenario())
    with pytest.raises(ValueError, match="above 0 s"):
        BodyDeadline(0)


def test_a_deadline_outlives_the_event_loop_it_first_ran_on() -> None:
    """A route kept across event loops (tests do that): a sweep scheduled on a loop that closed
    never runs, and the next loop's reads must still time out."""
    deadline = BodyDeadline(0.01)

    async def leave_a_sweep_pending() -> None:
        task = deadline.enter()
        deadline.leave(task)  # the loop closes with the sweep still scheduled

    async def stall() -> None:
        with pytest.raises(RequestTimeout):
            await asyncio.wait_for(read_body({}, stalled_receive(), 1000, deadline), 60)

    asyncio.run(leave_a_sweep_pending())
    asyncio.run(stall())
