"""What each trigger does beyond moving the stage and state: hold, resume and extend on the working-day
calendar, and the dates each change records in its audit entry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service import transactions
from dispute_service.errors import InvalidInput
from dispute_service.inputs import ActionInput
from dispute_service.models import AuditEntry
from dispute_service.queries import DisputeSnapshot
from dispute_service.sweep import sweep
from states.policy import Policy
from tests.factories import IRO

LONDON = ZoneInfo("Europe/London")


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON).astimezone(UTC)  # type: ignore[misc]


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


def test_hold_three_working_days_then_resume_across_easter(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    clock.now = london(2018, 3, 22, 10, 0)  # Thursday: due Thursday 29 March
    d = raise_one().dispute
    assert d.due_at == london(2018, 3, 29, 17, 0)
    held = transactions.apply_trigger(
        sessions,
        policy,
        d.id,
        "hold",
        IRO,
        ActionInput(reason="assessment", review_on=date(2018, 3, 29)),
        london(2018, 3, 26, 10, 0),  # Monday: Tuesday, Wednesday and Thursday are left
    ).dispute
    assert (held.state, held.hold_remaining_working_days, held.due_at, held.escalate_at) == (
        "on_hold",
        3,
        None,
        None,
    )
    # Nothing escalates while the clock is stopped, however late it gets.
    clock.now = london(2018, 3, 30, 12, 0)
    assert sweep(sessions, policy, clock).fired == []
    resumed = transactions.apply_trigger(
        sessions, policy, d.id, "resume", IRO, ActionInput(), london(2018, 3, 29, 10, 0)
    ).dispute
    # Held for three working days, so due three working days later than before: past Good Friday, the
    # weekend and Easter Monday, to Thursday 5 April.
    assert resumed.due_at == london(2018, 4, 5, 17, 0)
    assert resumed.escalate_at == london(2018, 4, 6, 9, 0)
    with sessions() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.dispute_id == d.id).order_by(AuditEntry.seq)
        ).all()
    hold, resume = entries[1], entries[2]
    assert (hold.due_at_before, hold.due_at_after) == (london(2018, 3, 29, 17, 0), None)
    assert (resume.due_at_before, resume.due_at_after) == (None, london(2018, 4, 5, 17, 0))
    assert (resume.escalate_at_before, resume.escalate_at_after) == (None, london(2018, 4, 6, 9, 0))


def test_extend_shows_the_new_dates_in_the_audit_entry(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    clock.now = london(2018, 3, 22, 10, 0)
    d = raise_one().dispute
    transactions.apply_trigger(
        sessions, policy, d.id, "extend", IRO, ActionInput(working_days=2, reason="leave"), clock.now
    )
    with sessions() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.trigger == "extend")).one()
    # Two working days after Thursday 29 March: Tuesday 3 and Wednesday 4 April (Easter in between).
    assert (entry.due_at_before, entry.due_at_after) == (
        london(2018, 3, 29, 17, 0),
        london(2018, 4, 4, 17, 0),
    )
    assert (entry.escalate_at_before, entry.escalate_at_after) == (
        london(2018, 4, 3, 9, 0),
        london(2018, 4, 5, 9, 0),
    )


@pytest.mark.parametrize(
    ("at", "review_on", "refused"),
    [
        (london(2018, 1, 10, 10, 0), date(2018, 1, 9), True),
        (london(2018, 1, 10, 10, 0), date(2018, 1, 10), False),  # reviewed later today
        # 00:30 on 2 June in London is still 1 June in UTC: the day is the policy's.
        (london(2018, 6, 2, 0, 30), date(2018, 6, 1), True),
        (london(2018, 6, 2, 0, 30), date(2018, 6, 2), False),
    ],
)
def test_a_hold_review_date_in_the_past_is_refused(
    raise_one: Callable[..., DisputeSnapshot],
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    at: datetime,
    review_on: date,
    refused: bool,
) -> None:
    clock.now = at
    d = raise_one().dispute
    hold = ActionInput(reason="awaiting assessment", review_on=review_on)
    if not refused:
        held = transactions.apply_trigger(sessions, policy, d.id, "hold", IRO, hold, at).dispute
        assert held.state == "on_hold"
        return
    with pytest.raises(InvalidInput) as refusal:
        transactions.apply_trigger(sessions, policy, d.id, "hold", IRO, hold, at)
    [(field, message)] = refusal.value.errors
    assert field == "review_on" and "must not be in the past" in message


@pytest.mark.parametrize(
    ("referred_on", "refused"),
    [
        (date(2018, 6, 3), "must not be in the future"),
        (date(2018, 6, 2), None),  # today in London, though still 1 June in UTC
        (date(2017, 6, 2), None),  # a year ago
        (date(2017, 6, 1), "must be within the last year"),
        (date(1018, 6, 2), "must be within the last year"),
    ],
)
def test_a_cafcass_referral_date_in_the_future_or_over_a_year_back_is_refused(
    raise_one: Callable[..., DisputeSnapshot],
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    referred_on: date,
    refused: str | None,
) -> None:
    clock.now = london(2018, 6, 2, 0, 30)
    d = raise_one().dispute
    refer = ActionInput(reason="ladder exhausted", referred_on=referred_on)
    if refused is None:
        done = transactions.apply_trigger(sessions, policy, d.id, "refer_to_cafcass", IRO, refer, clock.now)
        assert done.dispute.referred_on == referred_on
        return
    with pytest.raises(InvalidInput) as refusal:
        transactions.apply_trigger(sessions, policy, d.id, "refer_to_cafcass", IRO, refer, clock.now)
    [(field, message)] = refusal.value.errors
    assert field == "referred_on" and refused in message
