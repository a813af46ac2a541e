"""What every request meets before any route: its body's cap and, under /api/v1, an answer no cache keeps.
Also where the link pages' rate limits are set up, once per app.

Pure ASGI middlewares rather than dependencies: FastAPI reads a route's body before its dependencies run, so
a cap enforced there would come after the body had been read into memory, and after routing and
validation had answered for it.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem
from api.ratelimit import LinkLimits, LinkReadingLimits, SignInLimits
from api.web.errors import error_page
from api.web.render import is_page
from dispute_service.config import Settings

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def install(app: FastAPI, settings: Settings) -> None:
    """Add the body caps, the API's no-store header and the link rate limits to `app`."""
    app.state.link_limits = LinkLimits(settings)
    app.state.link_reading_limits = LinkReadingLimits(settings)
    app.state.sign_in_limits = SignInLimits(settings)
    app.add_middleware(BodyCap, json_bytes=settings.max_json_bytes, form_bytes=settings.max_form_bytes)
    # Added last, so it is outside the cap and the cap's 413 carries the header too.
    app.add_middleware(NoStore)


class BodyCap:
    """Refuse a body over its cap with 413, before the app reads it or checks who is asking.

    A declared Content-Length over the cap is refused without reading a byte. A body without one
    (chunked) is read here, up to the cap and no further, and handed on whole; the app would read it into
    memory anyway, and the cap bounds what is held. Forms get the larger cap; every other body the JSON one.
    """

    def __init__(self, app: ASGIApp, *, json_bytes: int, form_bytes: int) -> None:
        self.app = app
        self.json_bytes = json_bytes
        self.form_bytes = form_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        cap = self.form_bytes if media in FORM_TYPES else self.json_bytes
        length = headers.get("content-length", "")
        if length.isdigit():
            if int(length) > cap:
                await _too_large(scope, receive, send, cap)
                return
            # The server delivers no more than the declared length.
            await self.app(scope, receive, send)
            return
        body: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away: there is nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                await _too_large(scope, receive, send, cap)
                return
            body.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(body), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, as one message; then the client's own messages (its disconnect)."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed


async def _too_large(scope: Scope, receive: Receive, send: Send, cap: int) -> None:
    detail = f"the request body is larger than the {cap} bytes allowed for its content type"
    response: Response
    if is_page(scope["path"]):
        response = error_page(Request(scope), 413, detail)
    else:
        response = problem(413, "too-large", "Request body too large", detail)
    # The rest of the body is not wanted: closing stops the client sending it.
    response.headers["Connection"] = "close"
    await response(scope, receive, send)


class NoStore:
    """Every answer under /api/v1 holds dispute data or a refusal about it: `Cache-Control: no-store`, so
    neither a browser nor a proxy keeps a copy."""

    def __init__(self, app: ASGIApp, prefix: str = "/api/v1") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_no_store)
