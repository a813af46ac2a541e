"""Who is looking at a page: the session cookie, the session behind it, and the CSRF tokens of forms.

The cookie holds a random token and its HMAC under DISPUTES_SESSION_SECRET; the session itself is a row
(`dispute_service.web_sessions`), so sign-out and deactivation end it at once. `/api/v1` never reads it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from api.deps import NowDep, SnapshotTransactionDep, Transaction, TransactionDep
from api.web.forms import refuse_nul
from api.web.render import on_https
from dispute_service import web_sessions
from dispute_service.access import Actor

SESSION_COOKIE = "dispute_session"
CSRF_COOKIE = "dispute_csrf"
CSRF_FIELD = "csrf_token"


class SignInRequired(Exception):
    """No live session: the page answers with the sign-in page's address."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class CsrfRefused(Exception):
    """A form sent without its CSRF token, or with one that is not this session's (or not signed here)."""


def _mac(secret: str, purpose: str, value: str) -> str:
    digest = hmac.new(secret.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# The forms without a session (sign-in, email links) sign their tokens with the link secret: a strict
# server always has a real one, while the session secret is required only where sign-in is configured,
# and the link pages are served either way.
_DOUBLE_SUBMIT = "csrf"


def _secret(request: Request, purpose: str = "session") -> str:
    settings = request.app.state.settings
    secret: str = settings.link_secret if purpose == _DOUBLE_SUBMIT else settings.session_secret
    return secret


def signed(secret: str, purpose: str, value: str) -> str:
    """`value` with its HMAC for `purpose`: a session cookie is `signed(secret, "session", token)`."""
    return f"{value}.{_mac(secret, purpose, value)}"


def _signed_value(request: Request, purpose: str, value: str) -> str:
    return signed(_secret(request, purpose), purpose, value)


def _unsigned(request: Request, purpose: str, signed: str | None, longest: int = 200) -> str | None:
    """The value of a signed cookie, or None when it is missing, longer than `longest` or its signature is
    wrong."""
    if not signed or len(signed) > longest or "." not in signed:
        return None
    value, mac = signed.rsplit(".", 1)
    expected = _mac(_secret(request, purpose), purpose, value)
    return value if hmac.compare_digest(mac.encode(), expected.encode()) else None


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        _signed_value(request, "session", token),
        max_age=int(web_sessions.MAX_AGE.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=on_https(request),
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=on_https(request))


def session_token(request: Request) -> str | None:
    return _unsigned(request, "session", request.cookies.get(SESSION_COOKIE))


async def get_viewer(request: Request, tx: TransactionDep, now: NowDep) -> Actor:
    """The signed-in person, roles as they are now, in the request's one transaction; otherwise
    `SignInRequired`. Puts the viewer and the session's CSRF token where every page's template finds them."""
    return await _signed_in(request, tx, now, web_sessions.resume)


async def get_snapshot_viewer(request: Request, tx: SnapshotTransactionDep, now: NowDep) -> Actor:
    """`get_viewer` for a page whose one transaction is a read snapshot (the annual report): the session is
    checked without being written to."""
    return await _signed_in(request, tx, now, web_sessions.peek)


async def _signed_in(
    request: Request,
    tx: Transaction,
    now: datetime,
    resume: Callable[[Session, str, datetime], web_sessions.Signed | None],
) -> Actor:
    token = session_token(request)
    signed = await tx.run(resume, token, now) if token else None
    if signed is None:
        if token:
            # Commit now: a session found expired is ended for good, though the request is refused.
            await tx.finish(_nothing)
        path = request.url.path
        raise SignInRequired(path if request.method == "GET" else "/")
    request.state.viewer = signed.actor
    request.state.csrf_token = signed.csrf
    return signed.actor


def _nothing(_: Session) -> None:
    return None


async def form_token(request: Request) -> str:
    form = await request.form()
    # Every page form's token is read here first, so the NUL check covers them all.
    refuse_nul(form.multi_items())
    value = form.get(CSRF_FIELD)
    return value if isinstance(value, str) else ""


async def get_poster(request: Request, viewer: Annotated[Actor, Depends(get_viewer)]) -> Actor:
    """The signed-in person sending a form, whose CSRF token must be their session's."""
    sent = await form_token(request)
    expected: str = request.state.csrf_token
    if not sent or not hmac.compare_digest(sent, expected):
        raise CsrfRefused()
    return viewer


class Throttled(Exception):
    """Too many sign-in attempts from this client: try again in `wait` seconds."""

    def __init__(self, wait: int) -> None:
        self.wait = wait


def count_sign_in(request: Request, now: float) -> None:
    """Count a sign-in attempt against the client; `Throttled` when it is over its limit."""
    limits = request.app.state.sign_in_limits
    client = request.client.host if request.client else "unknown"
    wait: int | None = limits.per_client.use(client, now)
    if wait is not None:
        raise Throttled(wait)


ViewerDep = Annotated[Actor, Depends(get_viewer)]
PosterDep = Annotated[Actor, Depends(get_poster)]


def _admin(viewer: Actor) -> Actor:
    # Before any work: the use cases refuse a non-admin too, but a page should say so plainly.
    if "admin" not in viewer.roles:
        raise HTTPException(403)
    return viewer


async def admin_viewer(viewer: ViewerDep) -> Actor:
    return _admin(viewer)


async def admin_poster(poster: PosterDep) -> Actor:
    return _admin(poster)


# The admin's pages: the staff directory, and the organisations and their contacts.
AdminDep = Annotated[Actor, Depends(admin_viewer)]
AdminPosterDep = Annotated[Actor, Depends(admin_poster)]
SnapshotViewerDep = Annotated[Actor, Depends(get_snapshot_viewer)]


# Forms without a session (the sign-in pages, the email-link pages): a signed double-submit token. The page
# sets a cookie holding a random value with its HMAC and puts the same in the form; a post must bring both,
# equal, and signed here. Another site can make a browser send the cookie but cannot read it to fill the
# form, nor make one that verifies.
def issue_form_token(request: Request) -> str:
    existing = request.cookies.get(CSRF_COOKIE)
    if _unsigned(request, "csrf", existing) is not None and existing is not None:
        token = existing
    else:
        token = _signed_value(request, "csrf", secrets.token_urlsafe(24))
    request.state.csrf_token = token
    return token


def set_form_cookie(request: Request, response: Response) -> None:
    token = getattr(request.state, "csrf_token", None)
    if token:
        response.set_cookie(
            CSRF_COOKIE, token, path="/", httponly=True, samesite="lax", secure=on_https(request)
        )


async def check_form_token(request: Request) -> None:
    """Raise `CsrfRefused` unless the form's token is the cookie's, and signed here."""
    verify_form_token(request, await form_token(request))


def verify_form_token(request: Request, sent: str | None) -> None:
    """`check_form_token` for a route that has the form's token already."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    # As bytes: compare_digest refuses a str with non-ASCII characters, which a forged form may well send.
    if (
        not sent
        or not hmac.compare_digest(sent.encode(), cookie.encode())
        or _unsigned(request, "csrf", sent) is None
    ):
        raise CsrfRefused()
