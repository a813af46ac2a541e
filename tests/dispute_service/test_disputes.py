"""The use cases called directly, as the scheduler and email links call them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from structlog.testing import capture_logs

from dispute_service import transactions
from dispute_service.errors import NotAllowedNow, UnknownTrigger
from dispute_service.inputs import ActionInput
from dispute_service.models import Notification
from dispute_service.queries import DisputeSnapshot
from states.policy import Policy
from tests.factories import IRO, TM


def test_raise_sets_deadlines_from_the_working_day_calendar(
    raise_one: Callable[..., DisputeSnapshot], clock: Any
) -> None:
    clock.now = datetime(2017, 12, 22, 10, 0, tzinfo=UTC)
    d = raise_one().dispute
    assert d.reference == "DR-2017-0001"
    assert d.due_at == datetime(2018, 1, 3, 17, 0, tzinfo=UTC)
    assert d.escalate_at == datetime(2018, 1, 4, 9, 0, tzinfo=UTC)
    # Reminders: two working days before the due date, at the start of business.
    assert d.next_reminder_at == datetime(2017, 12, 29, 9, 0, tzinfo=UTC)


def test_references_count_per_reporting_year_in_london_time(
    raise_one: Callable[..., DisputeSnapshot], clock: Any
) -> None:
    clock.now = datetime(2018, 3, 31, 22, 30, tzinfo=UTC)  # 23:30 BST on 31 March: still 2017-18
    assert raise_one().dispute.reference == "DR-2017-0001"
    clock.now = datetime(2018, 3, 31, 23, 30, tzinfo=UTC)  # 00:30 BST on 1 April: 2018-19
    assert raise_one().dispute.reference == "DR-2018-0001"
    assert raise_one().dispute.reference == "DR-2018-0002"


def test_people_cannot_fire_timeout(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    d = raise_one().dispute
    with pytest.raises(UnknownTrigger):
        transactions.apply_trigger(
            sessions, policy, d.id, "timeout", IRO, ActionInput(), clock.advance(days=30)
        )


def test_one_log_event_per_change_with_ids_and_never_free_text(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    with capture_logs() as logs:
        d = raise_one()
        transactions.apply_trigger(
            sessions, policy, d.dispute.id, "respond", TM, ActionInput(response="SECRET-RESPONSE"), clock.now
        )
        with pytest.raises(NotAllowedNow):
            transactions.apply_trigger(
                sessions, policy, d.dispute.id, "respond", TM, ActionInput(response="again"), clock.now
            )
    events = [e for e in logs if e["event"] == "dispute.transitioned"]
    assert [e["trigger"] for e in events] == ["raise", "respond"]
    assert all(e["dispute_id"] == str(d.dispute.id) for e in events)
    assert "SECRET" not in repr(logs) and "Jamie" not in repr(logs)


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


def test_hold_and_resume_give_back_the_working_days_left(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    from datetime import date

    clock.now = datetime(2018, 1, 8, 10, 0, tzinfo=UTC)  # Monday; due Monday 15 January
    d = raise_one().dispute
    assert d.due_at == datetime(2018, 1, 15, 17, 0, tzinfo=UTC)
    held = transactions.apply_trigger(
        sessions,
        policy,
        d.id,
        "hold",
        IRO,
        ActionInput(reason="awaiting assessment", review_on=date(2018, 1, 20)),
        datetime(2018, 1, 10, 10, 0, tzinfo=UTC),
    ).dispute
    assert held.state == "on_hold" and held.due_at is None and held.hold_remaining_working_days == 3
    resumed = transactions.apply_trigger(
        sessions, policy, d.id, "resume", IRO, ActionInput(), datetime(2018, 1, 19, 10, 0, tzinfo=UTC)
    ).dispute
    # Three working days after Friday 19 January: Monday 22, Tuesday 23, Wednesday 24.
    assert resumed.due_at == datetime(2018, 1, 24, 17, 0, tzinfo=UTC)
    assert resumed.escalate_at == datetime(2018, 1, 25, 9, 0, tzinfo=UTC)


def test_extend_moves_the_due_date_by_working_days(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    clock.now = datetime(2018, 1, 8, 10, 0, tzinfo=UTC)
    d = raise_one().dispute
    extended = transactions.apply_trigger(
        sessions, policy, d.id, "extend", IRO, ActionInput(working_days=3, reason="leave"), clock.now
    ).dispute
    assert extended.due_at == datetime(2018, 1, 18, 17, 0, tzinfo=UTC)
    assert extended.escalate_at == datetime(2018, 1, 19, 9, 0, tzinfo=UTC)


def test_a_database_error_never_carries_free_text_into_a_traceback(engine: Any) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError) as raised, engine.begin() as conn:
        statement = text("INSERT INTO no_such_table (body) VALUES (:body)")
        conn.execute(statement, {"body": "SECRET-SUMMARY Jamie"})
    assert "SECRET" not in str(raised.value) and "Jamie" not in str(raised.value)


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
