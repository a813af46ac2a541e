"""The link session's cookie (SPEC 10, "Reading by link"): after a right one-time code, the link's page shows
the dispute's texts for 30 minutes. The cookie holds a random token signed with the link secret; the session
is a row (`notifications.link_reading`), so it ends at its time whatever the browser keeps. It is scoped to
/links, HttpOnly and SameSite=Lax: no other page, and no script, ever sees it."""

from __future__ import annotations

import hmac
from datetime import datetime

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from api.web.render import on_https
from api.web.signin import signed
from dispute_service.config import Settings
from notifications import link_reading
from states.policy import Policy

LINK_SESSION_COOKIE = "dispute_link_session"
_PURPOSE = "link-session"
_PATH = "/links"


def set_link_session_cookie(request: Request, response: Response, secret: str, token: str) -> None:
    response.set_cookie(
        LINK_SESSION_COOKIE,
        signed(secret, _PURPOSE, token),
        max_age=int(link_reading.SESSION_LIFETIME.total_seconds()),
        path=_PATH,
        httponly=True,
        samesite="lax",
        secure=on_https(request),
    )


def link_session_token(request: Request, secret: str) -> str | None:
    """The cookie's token, when it is signed here; None otherwise."""
    cookie = request.cookies.get(LINK_SESSION_COOKIE)
    if not cookie or len(cookie) > 200 or "." not in cookie:
        return None
    token = cookie.rsplit(".", 1)[0]
    # As bytes: compare_digest refuses a str with non-ASCII characters, and a cookie can hold any.
    return token if hmac.compare_digest(cookie.encode(), signed(secret, _PURPOSE, token).encode()) else None


def texts_for(
    request: Request, session: Session, policy: Policy, settings: Settings, token: str, now: datetime
) -> link_reading.LinkTexts | None:
    """The dispute's texts for the link page, when the browser holds a live link session of this link."""
    session_token = link_session_token(request, settings.link_secret)
    if session_token is None:
        return None
    return link_reading.read_texts(session, policy, settings.link_secret, token, session_token, now)
