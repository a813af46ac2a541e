"""What an email says: references, the stage and dates only, never the free text of the dispute."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from dispute_service import transactions
from dispute_service.inputs import ActionInput
from notifications.dispatcher import DispatchReport
from states.policy import Policy
from tests.factories import TM, raise_dispute
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
