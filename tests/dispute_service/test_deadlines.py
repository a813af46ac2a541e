"""Hold, resume and extend on the working-day calendar, and policy versions that never move a deadline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service import transactions
from dispute_service.inputs import ActionInput
from dispute_service.models import AuditEntry
from dispute_service.queries import DisputeSnapshot
from dispute_service.sweep import sweep
from states.policy import Policy, parse_policy
from tests.factories import IRO, raise_dispute

LONDON = ZoneInfo("Europe/London")


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON).astimezone(UTC)  # type: ignore[misc]


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


def test_a_policy_change_moves_no_running_deadline(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    clock.now = datetime(2018, 1, 8, 10, 0, tzinfo=UTC)
    d = raise_one().dispute
    assert d.escalate_at == datetime(2018, 1, 16, 9, 0, tzinfo=UTC)
    # The council lengthens every stage to 10 working days. The running dispute keeps its 5.
    longer = parse_policy(policy.text.replace('respond_within = "5wd"', 'respond_within = "10wd"'))
    assert longer.sha256 != policy.sha256
    clock.now = datetime(2018, 1, 16, 9, 0, tzinfo=UTC)
    fired = sweep(sessions, longer, clock).fired
    assert [f.dispute_id for f in fired] == [d.id]
    moved = transactions.get_dispute(sessions, longer, d.id, IRO, clock.now).dispute
    # The next stage also runs on the policy it was raised under: 5 working days, not 10.
    assert (moved.stage, moved.due_at) == ("team_manager", datetime(2018, 1, 23, 17, 0, tzinfo=UTC))
    assert moved.policy_id == d.policy_id
    # A dispute raised now gets the new policy.
    fresh = raise_dispute(sessions, longer, clock.now, child_ref="LCS-2").dispute
    assert fresh.policy_id != d.policy_id
    assert fresh.due_at == datetime(2018, 1, 30, 17, 0, tzinfo=UTC)
