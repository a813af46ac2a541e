"""Signing in and out. In production, OpenID Connect against the council's identity provider
(`api/web/oidc.py`); with `serve --demo`, a button for each demo person as well."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from api.deps import NowDep, TransactionDep
from api.web.reads import read_afresh
from api.web.render import render
from api.web.signin import (
    CsrfRefused,
    check_form_token,
    clear_session_cookie,
    count_sign_in,
    form_token,
    issue_form_token,
    session_token,
    set_form_cookie,
    set_session_cookie,
)
from dispute_service import web_sessions
from dispute_service.config import sign_in_configured
from dispute_service.errors import Unauthenticated
from dispute_service.people import sign_in_choices
from dispute_service.web_sessions import Signed

router = APIRouter(include_in_schema=False)

NextPath = Annotated[str, Query(alias="next", max_length=300)]


def safe_next(path: str) -> str:
    """Only a path on this service: never another site (`//evil`, `https://...`), so sign-in cannot be
    used to send someone elsewhere."""
    if (
        not path.startswith("/")
        or path.startswith("//")
        or "\\" in path
        or any(ord(c) < 0x20 or c == "\x7f" for c in path)
        or urlsplit(path).netloc
    ):
        return "/"
    return path


def is_demo(request: Request) -> bool:
    return bool(request.app.state.mode.value == "demo")


def sign_in_page(
    request: Request,
    tx_people: list[tuple[str, str, list[str]]] | None,
    next_path: str,
    status: int = 200,
    error: str | None = None,
) -> HTMLResponse:
    issue_form_token(request)
    response = render(
        request,
        "web/sign_in.html",
        status,
        title="Sign in",
        people=tx_people,
        oidc=sign_in_configured(request.app.state.settings),
        next_path=safe_next(next_path),
        error=error,
        private=False,
        form_targets=_provider_origin(request),
    )
    set_form_cookie(request, response)
    return response


def _provider_origin(request: Request) -> tuple[str, ...]:
    """The identity provider's origin: Chromium holds a form's redirect to `form-action` too, and the
    sign-in form's answer sends the browser to the provider. Its issuer's origin, which is where Entra ID
    (and most providers) serve the authorisation endpoint."""
    issuer = (
        request.app.state.settings.oidc_issuer if sign_in_configured(request.app.state.settings) else None
    )
    if not issuer:
        return ()
    parts = urlsplit(issuer)
    return (f"{parts.scheme}://{parts.netloc}",)


@router.get("/sign-in")
async def sign_in(request: Request, tx: TransactionDep, next_path: NextPath = "/") -> Response:
    people = await tx.finish(sign_in_choices) if is_demo(request) else None
    return sign_in_page(request, people, next_path)


@router.post("/sign-in/demo")
async def demo_sign_in(
    request: Request,
    tx: TransactionDep,
    now: NowDep,
    email: Annotated[str, Form(max_length=320)],
    next_path: Annotated[str, Form(alias="next", max_length=300)] = "/",
) -> Response:
    # Demo only: anywhere else this address does not exist.
    if not is_demo(request):
        return Response(status_code=404)
    await check_form_token(request)
    count_sign_in(request, now.timestamp())
    try:
        token, _ = await tx.finish(begin_session, session_token(request), email, now)
    except Unauthenticated:
        people = await demo_people_afresh(request)
        return sign_in_page(
            request, people, next_path, 403, "That person is not active in the staff directory."
        )
    return signed_in(request, token, next_path)


def begin_session(session: Session, old_token: str | None, email: str, now: datetime) -> tuple[str, Signed]:
    """Sign `email` in; the session this browser held before (another person's, on a shared computer, or a
    copied cookie) ends in the same transaction."""
    if old_token:
        web_sessions.end(session, old_token, now)
    return web_sessions.begin(session, email, now)


async def demo_people_afresh(request: Request) -> list[tuple[str, str, list[str]]] | None:
    """The demo people for a sign-in page shown after a refusal, whose transaction has rolled back; None
    outside demo."""
    return await read_afresh(request, sign_in_choices) if is_demo(request) else None


def signed_in(request: Request, token: str, next_path: str) -> Response:
    response = RedirectResponse(safe_next(next_path), status_code=303)
    set_session_cookie(request, response, token)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, tx: TransactionDep, now: NowDep) -> Response:
    token = session_token(request)
    signed = await tx.run(web_sessions.resume, token, now) if token else None
    if signed is not None and token is not None:
        # A live session ends only with its own CSRF token: another site cannot sign you out.
        if not hmac.compare_digest(await form_token(request), signed.csrf):
            raise CsrfRefused()
        await tx.finish(web_sessions.end, token, now)
    # A session already ended (expired, or signed out in another tab) has nothing to end: the cookie that
    # named it is cleared all the same, so the browser holds nothing stale.
    # Signed out now: the page shows no menu, no sign-out button and no "Signed in as".
    request.state.viewer = None
    response = render(request, "web/signed_out.html", title="You have signed out", private=False)
    clear_session_cookie(request, response)
    return response
