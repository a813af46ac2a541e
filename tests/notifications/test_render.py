"""What an email says: references, the stage and dates only, never the free text of the dispute."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from dispute_service import transactions
from dispute_service.inputs import ActionInput
from dispute_service.models import Person
from notifications.dispatcher import DispatchReport
from states.policy import Policy
from tests.factories import IRO, IRO_MANAGER_EMAIL, TM, TM_EMAIL, raise_dispute
from tests.mail import Mailbox, full_text, links_in


def test_emails_hold_references_only(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
) -> None:
    d = raise_dispute(sessions, policy, clock.now).dispute
    transactions.apply_trigger(
        sessions, policy, d.id, "respond", TM, ActionInput(response="SECRET-RESPONSE Jamie"), clock.now
    )
    transactions.apply_trigger(
        sessions,
        policy,
        d.id,
        "resolve",
        TM,
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


def test_the_iro_managers_hear_when_a_stage_goes_to_its_role_instead_of_its_named_person(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
) -> None:
    d = raise_dispute(sessions, policy, clock.now).dispute
    with sessions.begin() as session:
        session.execute(update(Person).where(Person.email == TM_EMAIL).values(active=False))
    transactions.apply_trigger(
        sessions, policy, d.id, "escalate", IRO, ActionInput(reason="SECRET"), clock.now
    )
    send_mail()
    [message] = mailbox.to(IRO_MANAGER_EMAIL)
    assert message["Subject"] == (f"Dispute {d.reference} at Team Manager: the named person cannot take it")
    body = full_text(message)
    assert "can no longer act on it" in body and "reassign" in body and d.child_ref in body
    assert not links_in(message), "an IRO manager acts through the service, not a link meant for an owner"


def test_the_owner_gets_hold_resume_and_extend_by_smtp_with_the_new_due_date_and_no_free_text(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
) -> None:
    d = raise_dispute(sessions, policy, clock.now).dispute
    review_on = (clock.now + timedelta(days=7)).date()
    for trigger, data in (
        ("hold", ActionInput(reason="SECRET-HOLD Jamie", review_on=review_on)),
        ("resume", ActionInput(reason="SECRET-RESUME")),
        ("extend", ActionInput(reason="SECRET-EXTEND", working_days=2)),
    ):
        transactions.apply_trigger(sessions, policy, d.id, trigger, IRO, data, clock.now)
    send_mail()
    mine = [m for m in mailbox.messages if m["To"] == TM_EMAIL and "raised" not in m["Subject"]]
    subjects = [m["Subject"] for m in mine]
    assert subjects == [
        f"Dispute {d.reference} is on hold: the clock is stopped",
        f"Dispute {d.reference} has resumed: your response is needed",
        f"Dispute {d.reference}: the due date has been extended",
    ]
    held, resumed, extended = (full_text(m) for m in mine)
    assert "clock is stopped" in held and "Due:" not in held
    assert "Please respond by" in resumed and "Please respond by" in extended
    assert all("SECRET" not in text and "Jamie" not in text for text in (held, resumed, extended))
