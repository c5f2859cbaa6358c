"""Running an ASGI app in a test as uvicorn runs it: its lifespan startup before the first
request, a client over httpx's ASGI transport, and its shutdown after the last."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from tests.waiting import DEADLINE_S


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s ASGI lifespan around a client, as uvicorn does around its connections."""
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    sent: list[str] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    async def until(kind: str) -> None:
        async with asyncio.timeout(DEADLINE_S):
            while kind not in sent:
                await asyncio.sleep(0.01)

    task = asyncio.create_task(app({"type": "lifespan"}, inbox.get, send))
    await inbox.put({"type": "lifespan.startup"})
    await until("lifespan.startup.complete")
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serving") as client:
            yield client
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await until("lifespan.shutdown.complete")
        await task
        gc.unfreeze()  # startup froze the heap; never leave the test process frozen
