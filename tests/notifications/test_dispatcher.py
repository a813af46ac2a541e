"""The dispatcher: each queued email delivered once through a real SMTP server, retried while the server is
down, and failed (and listed for admins) after the last attempt."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from structlog.testing import capture_logs

from api.app import Mode, create_app
from dispute_service import transactions
from dispute_service.config import Settings
from dispute_service.inputs import ActionInput
from dispute_service.models import ActionLink, Notification
from notifications.dispatcher import DispatchReport
from states.policy import Policy
from tests.factories import IRO, IRO_EMAIL, SCRAPER, TM_EMAIL, post_dispute, raise_dispute
from tests.mail import Mailbox, links_in


def test_raising_emails_the_owner_once_with_three_links(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
) -> None:
    clock.now = datetime(2017, 12, 22, 10, 0, tzinfo=UTC)
    d = raise_dispute(sessions, policy, clock.now).dispute
    assert send_mail().sent == 1
    assert send_mail().sent == 0, "nothing is sent twice"
    [message] = mailbox.messages
    assert message["To"] == TM_EMAIL
    assert message["Subject"] == f"Dispute {d.reference} raised: your response is needed"
    text = message.get_body(("plain",)).get_content()
    assert "Dispute:  DR-2017-0001" in text and "Child:    LCS-000123" in text
    assert "Stage:    Quality Assurance (informal)" in text
    assert "respond by 5pm on Wednesday 3 January 2018" in text
    assert set(links_in(message)) == {"acknowledge", "respond", "resolve"}
    with sessions() as session:
        row = session.scalars(select(Notification)).one()
        assert (row.status, row.attempts, message["Message-ID"]) == ("sent", 1, row.message_id)
        stored = session.scalars(select(ActionLink.token_hash)).all()
    # Only hashes are stored: no token from the email appears in the database.
    assert len(stored) == 3 and not set(links_in(message).values()) & set(stored)


def test_smtp_down_then_back_delivers_each_notification_exactly_once(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
) -> None:
    mailbox.stop()
    for i in range(20):
        d = raise_dispute(sessions, policy, clock.now, child_ref=f"LCS-{i:04d}").dispute
        transactions.apply_trigger(
            sessions, policy, d.id, "escalate", IRO, ActionInput(reason="r"), clock.now
        )
    first = send_mail()
    assert first.sent == 0 and first.retried > 0
    mailbox.start()
    for _ in range(10):
        clock.advance(minutes=30)  # past the backoff
        send_mail()
    with sessions() as session:
        rows = session.scalars(select(Notification)).all()
    assert {r.status for r in rows} == {"sent"}
    delivered = Counter(m["Message-ID"] for m in mailbox.messages)
    assert set(delivered) == {r.message_id for r in rows}
    assert set(delivered.values()) == {1}, "each notification delivered exactly once"
    assert (
        len(rows) == 20 * 3
    )  # raised to the owner; escalated to the new owner's role holder, the IRO, the old owner


def test_after_the_last_attempt_a_notification_is_failed_and_listed_for_admins(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
    app_client: TestClient,
    token_for: Callable[[str], dict[str, str]],
    mail_settings: Any,
) -> None:
    mailbox.stop()
    d = raise_dispute(sessions, policy, clock.now).dispute
    for _ in range(mail_settings.mail_max_attempts):
        send_mail()
        clock.advance(hours=2)
    listed = app_client.get(
        "/api/v1/notifications?status=failed", headers=token_for("admin@example.gov.uk")
    ).json()
    assert listed["total"] == 1
    [item] = listed["items"]
    assert (item["reference"], item["attempts"], item["status"]) == (d.reference, 8, "failed")
    assert "ConnectionRefusedError" in item["last_error"]
    assert 'dispute_notifications{status="failed"} 1.0' in app_client.get("/metrics", headers=SCRAPER).text
    assert app_client.get("/api/v1/notifications", headers=token_for(TM_EMAIL)).status_code == 403
    clock.advance(days=1)
    assert send_mail().sent == 0, "a failed notification is not retried on its own"


def test_a_failing_address_logs_one_line_per_attempt_without_a_traceback(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
    mail_settings: Settings,
) -> None:
    raise_dispute(sessions, policy, clock.now)
    # An address no email header can hold, as a directory loaded before imports were checked might have.
    bad = f"{TM_EMAIL}\nBcc: someone@example.com"
    with sessions.begin() as session:
        session.execute(update(Notification).values(recipient=bad))
    with capture_logs() as events:
        for _ in range(mail_settings.mail_max_attempts):
            send_mail()
            clock.advance(hours=2)
    assert [(e["event"], e["attempts"]) for e in events] == [
        *(("notification.retry", n) for n in range(1, mail_settings.mail_max_attempts)),
        ("notification.failed", mail_settings.mail_max_attempts),
    ]
    assert not any("exc_info" in e for e in events)
    assert all(e["error"].startswith("could not render: ValueError:") for e in events)
    assert all("\n" not in e["error"] for e in events), "the error is one line"
    assert mailbox.messages == []


def test_an_unreachable_server_logs_one_line_per_attempt_naming_the_error(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
) -> None:
    mailbox.stop()
    raise_dispute(sessions, policy, clock.now)
    with capture_logs() as events:
        send_mail()
    [event] = events
    assert (event["event"], event["log_level"], event["attempts"]) == ("notification.retry", "warning", 1)
    assert event["error"].startswith("ConnectionRefusedError") and "exc_info" not in event


def test_twenty_requests_that_queue_email_log_no_warning(
    mail_settings: Settings,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    token_for: Callable[[str], dict[str, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Only the requests' wake-ups send: the dispatcher's own interval is out of the way.
    live = mail_settings.model_copy(
        update={"scheduler_enabled": True, "scheduler_interval_seconds": 60, "dispatch_interval_seconds": 60}
    )
    caplog.set_level(logging.WARNING)
    with capture_logs() as events, TestClient(create_app(live, mode=Mode.DEMO, clock=clock)) as client:
        for i in range(20):
            post_dispute(client.post, token_for(IRO_EMAIL), child_ref=f"LCS-{i:04d}")
        deadline = time.monotonic() + 15
        while len(mailbox.messages) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [r.getMessage() for r in caplog.records] == []
    assert [e for e in events if e["log_level"] not in ("debug", "info")] == []
    assert len(mailbox.messages) == 20, "each raise emailed its owner straight away"
