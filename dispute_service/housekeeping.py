"""Housekeeping: delete the rows that only ever mattered for a while (UK GDPR storage limitation).

Four tables hold rows that stop counting at a known time: page sessions (`web_sessions`), the one-time codes
and link sessions of reading by link (`link_codes`, `link_sessions`), and idempotency keys. Each is deleted
once it has been over for `MARGIN`, so a request that was already under way with a slightly earlier `now`,
or another replica whose clock lags a little, still finds the row it expects. The answer to an ended
session, code or key is the same whether its row is kept or gone: "sign in", "code expired", "no such key".

Records are never deleted here: action links, disputes, the audit, people changes and the outbox stay.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from dispute_service.database import Sessions
from dispute_service.disputes import IDEMPOTENCY_TTL
from dispute_service.models import ActionLink, IdempotencyKey, LinkCode, LinkSession, WebSession
from dispute_service.web_sessions import IDLE, MAX_AGE

MARGIN = timedelta(days=1)
# Rows deleted per table per run: an hourly run holds the write lock (SQLite's only one) for a bounded time,
# and a backlog drains over a few runs. `purge-expired` on the command line repeats runs until none is full.
LIMIT = 5_000


@dataclass(frozen=True)
class PurgeReport:
    """Rows deleted, per table. Counts only: nothing that names a person or holds a token."""

    web_sessions: int = 0
    link_codes: int = 0
    link_sessions: int = 0
    idempotency_keys: int = 0

    def counts(self) -> dict[str, int]:
        return asdict(self)

    @property
    def total(self) -> int:
        return sum(self.counts().values())

    def reached(self, limit: int) -> bool:
        """Whether some table had more to delete than one run takes."""
        return any(count >= limit for count in self.counts().values())

    def __add__(self, other: PurgeReport) -> PurgeReport:
        return PurgeReport(**{name: count + getattr(other, name) for name, count in self.counts().items()})


def purge_expired(sessions: Sessions, now: datetime, *, limit: int = LIMIT) -> PurgeReport:
    """One run, in one transaction of its own."""
    with sessions.begin() as session:
        return purge(session, now, limit=limit)


def purge(session: Session, now: datetime, *, limit: int = LIMIT) -> PurgeReport:
    """Delete up to `limit` rows of each table that have been over for `MARGIN` at `now`."""
    cutoff = now - MARGIN
    # A session is over when it was ended (sign-out, deactivation, or found dead by `web_sessions.resume`),
    # 8 hours after sign-in, or 30 minutes after its last page, whichever comes first.
    web_session_over = or_(
        WebSession.ended_at < cutoff,
        WebSession.created_at < cutoff - MAX_AGE,
        WebSession.last_seen_at < cutoff - IDLE,
    )
    # An unused code that expired still carries its link's count of wrong tries, which the next code takes
    # over (`link_reading.mint_code`): deleting it would buy a guesser five more tries. So it goes only once
    # its link can take no code either, used or expired; a used code carries nothing.
    links_over = select(ActionLink.id).where(or_(ActionLink.used_at < cutoff, ActionLink.expires_at < cutoff))
    code_over = or_(
        LinkCode.used_at < cutoff,
        (LinkCode.expires_at < cutoff) & LinkCode.link_id.in_(links_over),
    )
    return PurgeReport(
        web_sessions=_delete(session, WebSession, WebSession.id, web_session_over, limit),
        link_codes=_delete(session, LinkCode, LinkCode.id, code_over, limit),
        link_sessions=_delete(session, LinkSession, LinkSession.id, LinkSession.expires_at < cutoff, limit),
        idempotency_keys=_delete(
            session,
            IdempotencyKey,
            IdempotencyKey.id,
            IdempotencyKey.created_at < cutoff - IDEMPOTENCY_TTL,
            limit,
        ),
    )


def _delete(
    session: Session, model: type[Any], key: InstrumentedAttribute[Any], over: ColumnElement[bool], limit: int
) -> int:
    # By key through a bounded subquery: DELETE has no LIMIT on PostgreSQL. SKIP LOCKED (PostgreSQL; SQLite
    # has one writer anyway) passes over a row another replica's run is deleting, rather than waiting for it.
    doomed = select(key).where(over).limit(limit).with_for_update(skip_locked=True)
    result = session.execute(
        delete(model).where(key.in_(doomed)).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
