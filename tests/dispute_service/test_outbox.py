"""The outbox: who is told of each change, queued in the change's own transaction, with no free text."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service import transactions
from dispute_service.errors import NotAllowedNow
from dispute_service.inputs import ActionInput
from dispute_service.models import Notification
from dispute_service.queries import DisputeSnapshot
from states.policy import Policy
from tests.factories import IRO, IRO2_EMAIL, IRO_MANAGER, TM


def test_outbox_rows_are_queued_in_the_same_transaction_and_hold_no_free_text(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    d = raise_one()
    transactions.apply_trigger(
        sessions, policy, d.dispute.id, "respond", TM, ActionInput(response="SECRET-RESPONSE"), clock.now
    )
    with sessions() as session:
        rows = session.scalars(select(Notification).order_by(Notification.id)).all()
        assert [(n.template, n.recipient) for n in rows] == [("raised", TM.email), ("responded", IRO.email)]
        assert len({n.message_id for n in rows}) == 2
        assert "SECRET" not in repr([n.context for n in rows]) and "Jamie" not in repr(
            [n.context for n in rows]
        )
    # A refused trigger queued nothing.
    with pytest.raises(NotAllowedNow):
        transactions.apply_trigger(
            sessions, policy, d.dispute.id, "acknowledge", TM, ActionInput(), clock.now
        )
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Notification)) == 2


def test_a_reopen_at_the_top_stage_tells_the_iro_and_the_iro_managers(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    d = raise_one(start_stage="cafcass", reason="straight to the IRO's decision").dispute
    transactions.apply_trigger(
        sessions, policy, d.id, "resolve", IRO, ActionInput(outcome="agreed", outcome_code="other"), clock.now
    )
    reopened = transactions.apply_trigger(
        sessions, policy, d.id, "reopen", IRO, ActionInput(reason="not satisfied"), clock.now
    ).dispute
    assert (reopened.stage, reopened.state) == ("cafcass", "awaiting_iro_decision")
    with sessions() as session:
        rows = session.scalars(select(Notification).where(Notification.template == "ladder_exhausted")).all()
    assert sorted(n.recipient for n in rows) == sorted([IRO.email, "iro.manager@example.gov.uk"])


def queued(sessions: sessionmaker[Session], template: str) -> list[Notification]:
    with sessions() as session:
        query = select(Notification).where(Notification.template == template).order_by(Notification.id)
        return list(session.scalars(query))


def test_hold_resume_and_extend_tell_the_owner_and_give_the_new_due_date(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    d = raise_one().dispute
    review_on = (clock.now + timedelta(days=7)).date()
    transactions.apply_trigger(
        sessions, policy, d.id, "hold", IRO, ActionInput(reason="SECRET wait", review_on=review_on), clock.now
    )
    [held] = queued(sessions, "held")
    # On hold nothing is due: the email says the clock is stopped and gives no date.
    assert (held.recipient, held.context["due_at"]) == (TM.email, None)
    resumed = transactions.apply_trigger(
        sessions, policy, d.id, "resume", IRO, ActionInput(), clock.now
    ).dispute
    [resume] = queued(sessions, "resumed")
    assert resumed.due_at is not None
    assert (resume.recipient, resume.context["due_at"]) == (TM.email, resumed.due_at.isoformat())
    extended = transactions.apply_trigger(
        sessions, policy, d.id, "extend", IRO, ActionInput(reason="SECRET more", working_days=3), clock.now
    ).dispute
    [extend] = queued(sessions, "extended")
    assert extended.due_at is not None and extended.due_at > resumed.due_at
    assert (extend.recipient, extend.context["due_at"]) == (TM.email, extended.due_at.isoformat())
    assert "SECRET" not in repr([n.context for n in (held, resume, extend)])


def test_reassign_iro_tells_the_new_iro(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    d = raise_one().dispute
    transactions.apply_trigger(
        sessions, policy, d.id, "reassign_iro", IRO_MANAGER, ActionInput(iro_email=IRO2_EMAIL), clock.now
    )
    assert [n.recipient for n in queued(sessions, "iro_assigned")] == [IRO2_EMAIL]


def test_a_resolution_by_the_iro_tells_the_owner_and_one_by_the_owner_does_not(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    by_iro = raise_one().dispute
    by_owner = raise_one(child_ref="LCS-2").dispute
    outcome = ActionInput(outcome="SECRET agreed", outcome_code="other")
    transactions.apply_trigger(sessions, policy, by_iro.id, "resolve", IRO, outcome, clock.now)
    transactions.apply_trigger(sessions, policy, by_owner.id, "resolve", TM, outcome, clock.now)
    told = queued(sessions, "resolved_by_iro")
    assert [(n.dispute_id, n.recipient) for n in told] == [(by_iro.id, TM.email)]
    assert "SECRET" not in repr(told[0].context)
