"""Sessions on the pages: begun at sign-in, resumed on each request, ended by sign-out or deactivation.

Kept on the server so that ending one takes effect on the next request, not when a cookie runs out. Only
the SHA-256 of the cookie's token is stored. Each runs inside the caller's one transaction."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dispute_service.access import Actor, authenticate
from dispute_service.errors import Unauthenticated
from dispute_service.models import WebSession

MAX_AGE = timedelta(hours=8)
IDLE = timedelta(minutes=30)
# A page view records itself at most once a minute: the idle limit needs no finer grain, and a write on
# every page would queue readers behind SQLite's one writer.
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Signed:
    """A live session and the person in it, with their roles as they are now."""

    actor: Actor
    csrf: str
    session_id: str


def _session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def begin(session: Session, email: str, now: datetime) -> tuple[str, Signed]:
    """Sign `email` in: they must be active in the staff directory (`Unauthenticated` otherwise). Returns the
    token for the cookie, which is never stored."""
    actor = authenticate(session, email, channel="web")
    token = secrets.token_urlsafe(32)
    row = WebSession(
        id=_session_id(token),
        email=actor.email,
        csrf=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        ended_at=None,
    )
    session.add(row)
    return token, Signed(actor, row.csrf, row.id)


def resume(session: Session, token: str, now: datetime) -> Signed | None:
    """The session the token names, if it is live and its person is still active; None otherwise, and a
    session found dead is ended so it can never come back."""
    row, actor = _look_up(session, token, now)
    if row is None:
        return None
    if actor is None:
        # A statement rather than the row's attribute: on PostgreSQL housekeeping may delete a long-dead
        # row meanwhile, and the ORM's flush would then fail the request on the missing row.
        end(session, token, now)
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return Signed(actor, row.csrf, row.id)


def peek(session: Session, token: str, now: datetime) -> Signed | None:
    """`resume` for a transaction that only reads (the annual report's snapshot, where a write could meet
    SQLite's snapshot conflict): the same checks, and nothing written. A dead session is refused, and the
    next page that writes ends it; the view does not count as activity towards the idle limit."""
    row, actor = _look_up(session, token, now)
    if row is None or actor is None:
        return None
    return Signed(actor, row.csrf, row.id)


def _look_up(session: Session, token: str, now: datetime) -> tuple[WebSession | None, Actor | None]:
    """The session's row (None when unknown or ended), and its person when it is live (None when it has
    run out, or its person has been deactivated or removed since signing in)."""
    row = session.get(WebSession, _session_id(token))
    if row is None or row.ended_at is not None:
        return None, None
    if now - row.created_at >= MAX_AGE or now - row.last_seen_at >= IDLE:
        return row, None
    try:
        return row, authenticate(session, row.email, channel="web")
    except Unauthenticated:
        return row, None


def end(session: Session, token: str, now: datetime) -> None:
    """Sign out: the session ends now, whatever the cookie's browser does next."""
    session.execute(
        update(WebSession)
        .where(WebSession.id == _session_id(token), WebSession.ended_at.is_(None))
        .values(ended_at=now)
    )


def end_all_for(session: Session, email: str, now: datetime) -> int:
    """End every live session of `email` (on deactivation). Returns how many were live."""
    live = session.scalars(
        select(WebSession.id).where(WebSession.email == email.strip().lower(), WebSession.ended_at.is_(None))
    ).all()
    if live:
        session.execute(update(WebSession).where(WebSession.id.in_(live)).values(ended_at=now))
    return len(live)
