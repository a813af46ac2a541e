"""Housekeeping on an injected clock: which rows go, which stay, and that records are never touched."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service import web_sessions
from dispute_service.housekeeping import PurgeReport, purge_expired
from dispute_service.models import (
    ActionLink,
    AuditEntry,
    Dispute,
    IdempotencyKey,
    LinkCode,
    LinkSession,
    Notification,
    WebSession,
)
from dispute_service.queries import DisputeSnapshot
from tests.factories import IRO_EMAIL, TM_EMAIL
from tests.recording import record_transactions

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@pytest.fixture
def dispute_id(raise_one: Callable[..., DisputeSnapshot]) -> uuid.UUID:
    return raise_one().dispute.id


def _web_session(name: str, created: datetime, last_seen: datetime, ended: datetime | None) -> WebSession:
    return WebSession(
        id=name, email=IRO_EMAIL, csrf="csrf", created_at=created, last_seen_at=last_seen, ended_at=ended
    )


def _link(
    dispute_id: uuid.UUID, name: str, expires: datetime, used: datetime | None, now: datetime
) -> ActionLink:
    return ActionLink(
        token_hash=name,
        person_email=TM_EMAIL,
        dispute_id=dispute_id,
        trigger="respond",
        stage_entry_seq=1,
        expires_at=expires,
        used_at=used,
        created_at=now - 10 * DAY,
    )


def _left(sessions: sessionmaker[Session], column: Any) -> set[str]:
    with sessions() as session:
        return set(session.scalars(select(column)))


def test_a_session_goes_a_day_after_it_ended_ran_out_or_went_idle(
    sessions: sessionmaker[Session], clock: Any
) -> None:
    now = clock.now
    with sessions.begin() as session:
        session.add_all(
            [
                _web_session("live", now - HOUR, now - 5 * MINUTE, None),
                _web_session("just_ended", now - HOUR, now - 2 * MINUTE, now - MINUTE),
                _web_session("ended_23_hours_ago", now - DAY, now - DAY, now - 23 * HOUR),
                _web_session("ended_2_days_ago", now - 2 * DAY - HOUR, now - 2 * DAY, now - 2 * DAY),
                # Idle: over 30 minutes after the last page, whether or not a request ever ended it.
                _web_session("idle_a_minute_ago", now - HOUR, now - 31 * MINUTE, None),
                _web_session("idle_a_day_ago", now - DAY - HOUR, now - DAY - 31 * MINUTE, None),
                _web_session("idle_just_under_a_day", now - DAY, now - DAY + 29 * MINUTE, None),
                # Busy to the end: over 8 hours after sign-in, however recent the last page.
                _web_session("8h_a_day_ago", now - DAY - 8 * HOUR - MINUTE, now - DAY - 10 * MINUTE, None),
                _web_session("8h_just_under", now - DAY - 8 * HOUR + MINUTE, now - DAY - 5 * MINUTE, None),
            ]
        )

    report = purge_expired(sessions, now)

    assert _left(sessions, WebSession.id) == {
        "live",
        "just_ended",
        "ended_23_hours_ago",
        "idle_a_minute_ago",
        "idle_just_under_a_day",
        "8h_just_under",
    }
    assert report == PurgeReport(web_sessions=3)


def test_a_code_goes_a_day_after_it_was_used_or_after_it_and_its_link_expired(
    sessions: sessionmaker[Session], clock: Any, dispute_id: uuid.UUID
) -> None:
    now = clock.now
    with sessions.begin() as session:
        live = _link(dispute_id, "live", now + 5 * DAY, None, now)
        used = _link(dispute_id, "used_2_days_ago", now + 5 * DAY, now - 2 * DAY, now)
        expired = _link(dispute_id, "expired_2_days_ago", now - 2 * DAY, None, now)
        just_expired = _link(dispute_id, "expired_an_hour_ago", now - HOUR, None, now)
        session.add_all([live, used, expired, just_expired])
        session.flush()

        def code(name: str, link: ActionLink, expires: datetime, used: datetime | None = None) -> LinkCode:
            return LinkCode(
                link_id=link.id,
                code_hash=name,
                created_at=expires - 15 * MINUTE,
                expires_at=expires,
                used_at=used,
            )

        session.add_all(
            [
                code("waiting", live, now + 10 * MINUTE),
                code("expired_a_minute_ago", live, now - MINUTE),
                # Its link can still take a code, and the next one inherits this one's wrong tries.
                code("expired_2_days_ago_on_a_live_link", live, now - 2 * DAY),
                code("used_an_hour_ago", live, now - HOUR, used=now - HOUR - MINUTE),
                code("used_2_days_ago", live, now - 2 * DAY, used=now - 2 * DAY - MINUTE),
                code("expired_on_a_link_used_2_days_ago", used, now - 3 * DAY),
                code("expired_on_a_link_expired_2_days_ago", expired, now - 3 * DAY),
                code("expired_on_a_link_expired_an_hour_ago", just_expired, now - 3 * DAY),
            ]
        )

    report = purge_expired(sessions, now)

    assert _left(sessions, LinkCode.code_hash) == {
        "waiting",
        "expired_a_minute_ago",
        "expired_2_days_ago_on_a_live_link",
        "used_an_hour_ago",
        "expired_on_a_link_expired_an_hour_ago",
    }
    assert report == PurgeReport(link_codes=3)
    # The links themselves are records of what was sent: every one stays.
    assert len(_left(sessions, ActionLink.token_hash)) == 4


def test_a_link_session_goes_a_day_after_it_expired(
    sessions: sessionmaker[Session], clock: Any, dispute_id: uuid.UUID
) -> None:
    now = clock.now
    with sessions.begin() as session:
        link = _link(dispute_id, "live", now + 5 * DAY, None, now)
        session.add(link)
        session.flush()
        for name, expires in [
            ("open", now + 10 * MINUTE),
            ("expired_a_minute_ago", now - MINUTE),
            ("expired_just_under_a_day_ago", now - DAY + MINUTE),
            ("expired_a_day_ago", now - DAY - MINUTE),
            ("expired_3_days_ago", now - 3 * DAY),
        ]:
            session.add(
                LinkSession(
                    token_hash=name, link_id=link.id, created_at=expires - 30 * MINUTE, expires_at=expires
                )
            )

    report = purge_expired(sessions, now)

    assert _left(sessions, LinkSession.token_hash) == {
        "open",
        "expired_a_minute_ago",
        "expired_just_under_a_day_ago",
    }
    assert report == PurgeReport(link_sessions=2)


def test_an_idempotency_key_goes_a_day_after_its_24_hours(
    sessions: sessionmaker[Session], clock: Any, dispute_id: uuid.UUID
) -> None:
    now = clock.now
    with sessions.begin() as session:
        for name, age in [
            ("an_hour_old", HOUR),
            ("past_its_ttl", 25 * HOUR),
            ("just_under_2_days", 2 * DAY - MINUTE),
            ("2_days_old", 2 * DAY + MINUTE),
        ]:
            session.add(
                IdempotencyKey(
                    caller=IRO_EMAIL,
                    key=name,
                    request_sha256="0" * 64,
                    dispute_id=dispute_id,
                    created_at=now - age,
                )
            )

    report = purge_expired(sessions, now)

    assert _left(sessions, IdempotencyKey.key) == {"an_hour_old", "past_its_ttl", "just_under_2_days"}
    assert report == PurgeReport(idempotency_keys=1)


def test_records_are_never_touched_and_a_second_run_finds_nothing(
    sessions: sessionmaker[Session], clock: Any, dispute_id: uuid.UUID
) -> None:
    def counts() -> list[int]:
        with sessions() as session:
            return [
                session.scalar(select(func.count()).select_from(model)) or 0
                for model in (Dispute, AuditEntry, Notification, ActionLink)
            ]

    before = counts()
    assert before[0] == 1 and before[1] >= 1 and before[2] >= 1
    # Years later, everything the dispute left behind is long over; none of it is a purgeable row.
    later = clock.now + 3 * 365 * DAY
    assert purge_expired(sessions, later) == PurgeReport()
    assert counts() == before


def test_a_run_deletes_at_most_its_limit_per_table_and_the_next_run_goes_on(
    sessions: sessionmaker[Session], clock: Any
) -> None:
    now = clock.now
    with sessions.begin() as session:
        session.add_all(
            _web_session(f"ended_{i}", now - 3 * DAY, now - 3 * DAY, now - 3 * DAY) for i in range(5)
        )
        session.add(_web_session("live", now, now, None))

    runs = [purge_expired(sessions, now, limit=2) for _ in range(4)]

    assert [r.web_sessions for r in runs] == [2, 2, 1, 0]
    assert [r.reached(2) for r in runs] == [True, True, False, False]
    assert _left(sessions, WebSession.id) == {"live"}


def test_a_run_is_one_transaction_that_passes_over_rows_another_run_holds(
    sessions: sessionmaker[Session], clock: Any, engine: Engine
) -> None:
    with record_transactions(engine) as seen:
        purge_expired(sessions, clock.now)
    [statements] = seen
    assert [s.split()[:3] for s in statements] == [
        ["DELETE", "FROM", table]
        for table in ("web_sessions", "link_codes", "link_sessions", "idempotency_keys")
    ]
    if engine.dialect.name == "postgresql":
        assert all("FOR UPDATE SKIP LOCKED" in s for s in statements)


# SQLite has one writer at a time, so housekeeping cannot delete a row while a request's transaction holds it.
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_dead_session_deleted_while_a_request_holds_it_ends_with_no_error(
    sessions: sessionmaker[Session], staff: list[str]
) -> None:
    signed_in = datetime(2026, 12, 1, 9, tzinfo=UTC)
    with sessions.begin() as session:
        token, _ = web_sessions.begin(session, IRO_EMAIL, signed_in)
    long_after = signed_in + web_sessions.MAX_AGE + 2 * DAY
    with sessions.begin() as request:
        # The request has the row in hand when another replica's housekeeping deletes it and commits.
        held = request.scalars(select(WebSession)).one()
        assert purge_expired(sessions, long_after).web_sessions == 1
        assert web_sessions.resume(request, token, long_after) is None
        assert held.ended_at == long_after
    with sessions() as session:
        assert session.scalars(select(WebSession)).all() == []
