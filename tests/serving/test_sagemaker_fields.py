"""InvokeEndpoint's ``CustomAttributes`` on the SageMaker route, through the app bootstrap
builds: at most 1024 visible US-ASCII characters as RFC 7230 3.2.6 writes a field value (space
and tab between them), as the runtime API defines the field; anything else is a 400
``ValidationError`` naming the field. uvicorn's parser refuses most control characters before
the app sees them; any other ASGI server hands them on, and the route must not take them."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest

from modelyard.bootstrap import Platform, serving_app
from tests.serving.asgi_support import lifespan
from tests.serving.capture_support import make_platform

BODY = "0.5,1.5,7.0\n"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    """The store of ``make_platform``, closed: the app under test opens its own."""
    with contextlib.closing(make_platform(tmp_path_factory.mktemp("fields") / "home")) as made:
        return made


def invoke(platform: Platform, values: list[bytes]) -> list[httpx.Response]:
    """One invocation of ``quiet`` per ``CustomAttributes`` value, in order."""

    async def scenario() -> list[httpx.Response]:
        async with lifespan(serving_app(platform.settings)) as client:
            return [
                await client.post(
                    "/endpoints/quiet/invocations",
                    content=BODY,
                    headers=[
                        (b"content-type", b"text/csv"),
                        (b"x-amzn-sagemaker-custom-attributes", value),
                    ],
                )
                for value in values
            ]

    return asyncio.run(scenario())


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (b"trace=\x01", "U+0001 at 7"),
        (b"\x00", "U+0000 at 1"),
        (b"colour=\x1b[31mred", "U+001B at 8"),
        (b"a=b\x7f", "U+007F at 4"),
        (b"caf\xc3\xa9", "U+00C3 at 4"),  # UTF-8 read as the ISO-8859-1 a header is
        (b"x" * 1025, "got 1025 characters"),
    ],
    ids=["soh", "nul", "escape", "del", "utf8", "long"],
)
def test_custom_attributes_the_runtime_refuses_are_a_validation_error(
    platform: Platform, value: bytes, named: str
) -> None:
    (answer,) = invoke(platform, [value])
    assert answer.status_code == 400, answer.text
    assert answer.headers["x-amzn-errortype"] == "ValidationError"
    message = answer.json()["message"]
    assert message.startswith("CustomAttributes must be at most 1024 visible ASCII"), message
    assert named in message, message


def test_custom_attributes_within_the_limits_are_taken(platform: Platform) -> None:
    values = [b"x" * 1024, b"a=b; trace=1", b'c="d\te"', b"~!@#$%^&*()_+{}|:<>?`-=[]\\;',./"]
    for value, answer in zip(values, invoke(platform, values), strict=True):
        assert answer.status_code == 200, (value, answer.text)
