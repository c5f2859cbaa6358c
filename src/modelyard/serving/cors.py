"""CORS for the data plane, as ASGI middleware around every route.

Browsers may call the data plane from the origins in the allow-list (``*`` for any). A
preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from an allowed origin gets a
204 naming the methods and headers the routes accept; from any other origin, a 403. Responses
to allowed origins expose the headers that say which variant and model version answered.
"""

from __future__ import annotations

from modelyard.serving.http import ASGIApp, Message, Receive, Scope, Send, respond_json

_EXPOSE = (
    b"x-modelyard-variant, x-modelyard-model-version, x-modelyard-inference-id, "
    b"x-modelyard-worker, x-amzn-invoked-production-variant"
)
_ALLOW_HEADERS = (
    b"content-type, accept, content-encoding, x-modelyard-routing-key, "
    b"x-modelyard-target-variant, x-amzn-sagemaker-target-variant, "
    b"inference-header-content-length"
)


class CorsMiddleware:
    """Adds CORS headers for allowed origins and answers preflights."""

    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        self.app = app
        self._origins = frozenset(origins)
        self._any = "*" in self._origins

    def _allowed(self, scope: Scope) -> bytes | None:
        if not self._origins:
            return None
        for key, value in scope["headers"]:
            if key == b"origin":
                origin = value.decode("latin-1")
                return value if self._any or origin in self._origins else None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await self._preflight(scope, send)
            return
        origin = self._allowed(scope)
        if origin is None:
            await self.app(scope, receive, send)
            return
        cors = [
            (b"access-control-allow-origin", origin),
            (b"vary", b"Origin"),
            (b"access-control-expose-headers", _EXPOSE),
        ]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *cors]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, scope: Scope, send: Send) -> None:
        origin = self._allowed(scope)
        if origin is None:
            refused = "origin not in the CORS allow-list"
            await respond_json(send, 403, {"error": {"code": "cors_refused", "message": refused}})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [
                    (b"access-control-allow-origin", origin),
                    (b"vary", b"Origin"),
                    (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                    (b"access-control-allow-headers", _ALLOW_HEADERS),
                    (b"access-control-max-age", b"600"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})
