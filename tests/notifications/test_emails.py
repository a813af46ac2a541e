"""Emails through a real SMTP server, and the action links they carry."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service import transactions
from dispute_service.access import Actor
from dispute_service.inputs import ActionInput, RaiseInput
from dispute_service.models import ActionLink, AuditEntry, Notification
from notifications.dispatcher import DispatchReport
from states.policy import Policy
from tests.notifications.conftest import Mailbox, full_text

IRO = Actor("iro@example.gov.uk", frozenset({"iro"}))
TM = "tm@example.gov.uk"
LINK = re.compile(
    r"^(Acknowledge|Respond|Resolve|Escalate|Reopen):\r?\n(http://testserver/links/([A-Za-z0-9_-]+))", re.M
)


def raise_one(sessions: sessionmaker[Session], policy: Policy, clock: Any, **overrides: Any) -> Any:
    data = RaiseInput(
        **{
            "child_ref": "LCS-000123",
            "case_type": "looked_after",
            "categories": ["permanency_delay"],
            "summary": "SECRET-SUMMARY Jamie's permanence plan has drifted",
            "team_manager_email": TM,
            **overrides,
        }
    )
    return transactions.raise_dispute(sessions, policy, IRO, data, clock.now).dispute


def links_in(message: Any) -> dict[str, str]:
    return {
        label.lower(): token for label, _, token in LINK.findall(message.get_body(("plain",)).get_content())
    }


def audit_rows(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def test_raising_emails_the_owner_once_with_three_links(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
) -> None:
    clock.now = datetime(2017, 12, 22, 10, 0, tzinfo=UTC)
    d = raise_one(sessions, policy, clock)
    assert send_mail().sent == 1
    assert send_mail().sent == 0, "nothing is sent twice"
    [message] = mailbox.messages
    assert message["To"] == TM
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


def test_get_changes_nothing_post_acts_once(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
    app_client: TestClient,
) -> None:
    d = raise_one(sessions, policy, clock)
    send_mail()
    token = links_in(mailbox.to(TM)[0])["acknowledge"]
    before = audit_rows(sessions)
    for _ in range(10):
        page = app_client.get(f"/links/{token}")
        assert page.status_code == 200
        assert (
            page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
        )
        assert "Acknowledge the dispute" in page.text and d.reference in page.text
    assert audit_rows(sessions) == before
    with sessions() as session:
        assert (
            session.scalars(select(ActionLink.used_at).where(ActionLink.trigger == "acknowledge")).one()
            is None
        )

    done = app_client.post(f"/links/{token}", follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("/links/done?")
    assert "is recorded" in app_client.get(done.headers["location"]).text
    with sessions() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
        assert entry is not None
        assert (entry.trigger, entry.channel, entry.actor) == ("acknowledge", "email_link", TM)
    again = app_client.post(f"/links/{token}", follow_redirects=False)
    assert again.status_code == 409 and "already been used" in again.text
    assert audit_rows(sessions) == before + 1


def test_respond_through_the_form_and_a_missing_field_changes_nothing(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
    app_client: TestClient,
) -> None:
    raise_one(sessions, policy, clock)
    send_mail()
    token = links_in(mailbox.to(TM)[0])["respond"]
    before = audit_rows(sessions)
    empty = app_client.post(f"/links/{token}", data={}, follow_redirects=False)
    assert empty.status_code == 422 and "response: is required" in empty.text
    assert audit_rows(sessions) == before
    ok = app_client.post(
        f"/links/{token}", data={"response": "SECRET-RESPONSE meeting booked"}, follow_redirects=False
    )
    assert ok.status_code == 303
    # The IRO is told, with resolve and escalate links, and no free text.
    send_mail()
    [to_iro] = mailbox.to(IRO.email)
    assert to_iro["Subject"].endswith("a response is waiting for your decision")
    assert set(links_in(to_iro)) == {"resolve", "escalate"}


def test_tampered_stale_and_expired_links_get_plain_pages(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
    app_client: TestClient,
) -> None:
    d = raise_one(sessions, policy, clock)
    send_mail()
    tokens = links_in(mailbox.to(TM)[0])
    tampered = tokens["resolve"][:-2] + ("AA" if not tokens["resolve"].endswith("AA") else "BB")
    for bad in (tampered, "nonsense", "x" * 128):
        page = app_client.get(f"/links/{bad}")
        assert page.status_code == 404 and "not recognised" in page.text
        assert app_client.post(f"/links/{bad}").status_code == 404
    transactions.apply_trigger(
        sessions, policy, d.id, "escalate", IRO, ActionInput(reason="not satisfied"), clock.now
    )
    stale = app_client.get(f"/links/{tokens['respond']}")
    assert stale.status_code == 409 and "has moved on" in stale.text
    assert app_client.post(f"/links/{tokens['respond']}", data={"response": "late"}).status_code == 409

    send_mail()
    fresh = links_in(mailbox.to(TM)[-1])["acknowledge"]
    clock.advance(days=60)
    expired = app_client.get(f"/links/{fresh}")
    assert expired.status_code == 410 and "expired" in expired.text


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
        d = raise_one(sessions, policy, clock, child_ref=f"LCS-{i:04d}")
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
    d = raise_one(sessions, policy, clock)
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
    assert 'dispute_notifications{status="failed"} 1.0' in app_client.get("/metrics").text
    assert app_client.get("/api/v1/notifications", headers=token_for(TM)).status_code == 403
    clock.advance(days=1)
    assert send_mail().sent == 0, "a failed notification is not retried on its own"


def test_emails_hold_references_only(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
) -> None:
    d = raise_one(sessions, policy, clock)
    tm = Actor(TM, frozenset({"team_manager"}))
    transactions.apply_trigger(
        sessions, policy, d.id, "respond", tm, ActionInput(response="SECRET-RESPONSE Jamie"), clock.now
    )
    transactions.apply_trigger(
        sessions,
        policy,
        d.id,
        "resolve",
        tm,
        ActionInput(outcome="SECRET-OUTCOME Jamie stays", outcome_code="plan_changed"),
        clock.now,
    )
    send_mail()
    templates = sorted(m["Subject"].split(":")[0] for m in mailbox.messages)
    assert len(templates) == 3
    resolved = [m for m in mailbox.messages if "resolved" in m["Subject"]][0]
    assert set(links_in(resolved)) == {"reopen"}
    assert "reopen it until" in full_text(resolved)
    for message in mailbox.messages:
        body = full_text(message)
        assert "SECRET" not in body and "Jamie" not in body and d.child_ref in body
