"""Every request's id: the caller's `X-Request-ID` (cut to 64 characters) or a new one, bound to the log
context for everything the request logs, and sent back on the response.

A pure ASGI middleware: Starlette's `@app.middleware("http")` runs each request through an extra task
and a stream of the response, which cost more than the rest of a small request's handling.
"""

from __future__ import annotations

import uuid

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_LENGTH = 64


class RequestId:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = (Headers(scope=scope).get("x-request-id") or uuid.uuid4().hex)[:MAX_LENGTH]
        structlog.contextvars.clear_contextvars()
        # The path is not bound: an email link carries its token there, and logs never hold a token.
        structlog.contextvars.bind_contextvars(request_id=request_id, method=scope["method"])

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)
