"""The action links an email carries: opening one changes nothing, submitting it acts once, and a tampered,
stale or expired link gets a plain page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service import transactions
from dispute_service.inputs import ActionInput
from dispute_service.models import ActionLink, AuditEntry
from notifications.dispatcher import DispatchReport
from states.policy import Policy
from tests.factories import IRO, TM_EMAIL, raise_dispute
from tests.mail import Mailbox, links_in
from tests.pages import post_link


def audit_rows(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def test_get_changes_nothing_post_acts_once(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
    app_client: TestClient,
) -> None:
    d = raise_dispute(sessions, policy, clock.now).dispute
    send_mail()
    token = links_in(mailbox.to(TM_EMAIL)[0])["acknowledge"]
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

    done = post_link(app_client, token, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("/links/done?")
    assert "is recorded" in app_client.get(done.headers["location"]).text
    with sessions() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
        assert entry is not None
        assert (entry.trigger, entry.channel, entry.actor) == ("acknowledge", "email_link", TM_EMAIL)
    again = post_link(app_client, token, follow_redirects=False)
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
    raise_dispute(sessions, policy, clock.now)
    send_mail()
    token = links_in(mailbox.to(TM_EMAIL)[0])["respond"]
    before = audit_rows(sessions)
    empty = post_link(app_client, token, data={}, follow_redirects=False)
    assert empty.status_code == 422 and "Your response is required" in empty.text
    assert audit_rows(sessions) == before
    ok = post_link(
        app_client, token, data={"response": "SECRET-RESPONSE meeting booked"}, follow_redirects=False
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
    d = raise_dispute(sessions, policy, clock.now).dispute
    send_mail()
    tokens = links_in(mailbox.to(TM_EMAIL)[0])
    tampered = tokens["resolve"][:-2] + ("AA" if not tokens["resolve"].endswith("AA") else "BB")
    for bad in (tampered, "nonsense", "x" * 128):
        page = app_client.get(f"/links/{bad}")
        assert page.status_code == 404 and "not recognised" in page.text
        assert post_link(app_client, bad).status_code == 404
    transactions.apply_trigger(
        sessions, policy, d.id, "escalate", IRO, ActionInput(reason="not satisfied"), clock.now
    )
    stale = app_client.get(f"/links/{tokens['respond']}")
    assert stale.status_code == 409 and "has moved on" in stale.text
    assert post_link(app_client, tokens["respond"], data={"response": "late"}).status_code == 409

    send_mail()
    fresh = links_in(mailbox.to(TM_EMAIL)[-1])["acknowledge"]
    clock.advance(days=60)
    expired = app_client.get(f"/links/{fresh}")
    assert expired.status_code == 410 and "expired" in expired.text
