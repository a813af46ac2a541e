"""The outbox: who is told of each change, queued in the change's own transaction, with no free text."""

from __future__ import annotations

from collections.abc import Callable
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
from tests.factories import IRO, TM


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
