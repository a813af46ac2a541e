"""What each trigger does beyond moving the stage and state: hold, resume and extend on the working-day
calendar, and the dates each change records in its audit entry."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from dispute_service import people, transactions
from dispute_service.access import Actor
from dispute_service.errors import InvalidInput
from dispute_service.inputs import ActionInput
from dispute_service.models import AuditEntry, Dispute, Notification, Person, StageEntry
from dispute_service.queries import DisputeSnapshot
from dispute_service.sweep import sweep
from states.policy import Policy
from tests.factories import (
    ADMIN,
    ADMIN_EMAIL,
    GONE_EMAIL,
    HOS_EMAIL,
    IRO,
    IRO_MANAGER,
    IRO_MANAGER_EMAIL,
    TM,
    TM2,
    TM2_EMAIL,
    TM_EMAIL,
    fetch,
    fire_timer,
    raise_dispute,
)

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
    # The review date (Thursday) reminded the IRO while the clock was stopped: a bookkeeping entry.
    hold, remind, resume = entries[1], entries[2], entries[3]
    assert remind.trigger == "remind" and remind.at == london(2018, 3, 30, 12, 0)
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


# --- reassign: only to an active holder of the stage's role, never to the IRO --------------------------


def _person(sessions: sessionmaker[Session], email: str, roles: list[str], now: datetime) -> Actor:
    with sessions.begin() as session:
        session.add(Person(name=email, email=email, roles=roles, active=True, created_at=now, updated_at=now))
    return Actor(email, frozenset(roles))


def _reassign(
    sessions: sessionmaker[Session], policy: Policy, d: DisputeSnapshot, actor: Actor, to: str, now: datetime
) -> DisputeSnapshot:
    return transactions.apply_trigger(
        sessions, policy, d.dispute.id, "reassign", actor, ActionInput(owner_email=to), now
    )


def _entries(sessions: sessionmaker[Session], d: DisputeSnapshot) -> list[AuditEntry]:
    with sessions() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.dispute_id == d.dispute.id).order_by(AuditEntry.seq)
            )
        )


def test_the_owner_hands_the_stage_to_another_holder_of_its_role(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    d = raise_one()
    moved = _reassign(sessions, policy, d, TM, TM2_EMAIL, clock.now).dispute
    assert moved.owner_email == TM2_EMAIL and moved.owner_role == "team_manager"
    last = _entries(sessions, d)[-1]
    assert (last.trigger, last.actor_role) == ("reassign", "team_manager")


@pytest.mark.parametrize(
    ("who", "to", "why"),
    [
        # An admin cannot take a stage their roles do not cover, nor hand it to someone else outside the role.
        (ADMIN, ADMIN_EMAIL, "does not hold the team_manager role"),
        (IRO_MANAGER, HOS_EMAIL, "does not hold the team_manager role"),
        (TM, GONE_EMAIL, "is not an active person"),
        (TM, "nobody@example.gov.uk", "is not an active person"),
    ],
)
def test_a_stage_goes_only_to_an_active_holder_of_its_role(
    raise_one: Callable[..., DisputeSnapshot],
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    who: Actor,
    to: str,
    why: str,
) -> None:
    d = raise_one()
    with pytest.raises(InvalidInput) as refused:
        _reassign(sessions, policy, d, who, to, clock.now)
    [(field, message)] = refused.value.errors
    assert field == "owner_email" and why in message
    assert "only to an active holder of the team_manager role other than the IRO" in message
    assert fetch(sessions, d.dispute.id).owner_email == TM_EMAIL
    assert len(_entries(sessions, d)) == 1


def test_a_stage_is_never_handed_to_the_disputes_iro(
    sessions: sessionmaker[Session], staff: list[str], policy: Policy, clock: Any
) -> None:
    # Someone who is both an IRO and a team manager raises a dispute: its stage may not come back to them.
    both = _person(sessions, "both@example.gov.uk", ["iro", "team_manager"], clock.now)
    d = raise_dispute(sessions, policy, clock.now, actor=both)
    with pytest.raises(InvalidInput, match="is the dispute's IRO"):
        _reassign(sessions, policy, d, TM, both.email, clock.now)
    assert fetch(sessions, d.dispute.id).owner_email == TM_EMAIL


def test_an_iro_who_owns_the_stage_cannot_become_the_disputes_iro(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    both = _person(sessions, "both@example.gov.uk", ["iro", "team_manager"], clock.now)
    d = raise_one()
    _reassign(sessions, policy, d, TM, both.email, clock.now)
    with pytest.raises(InvalidInput, match="owns the current stage"):
        transactions.apply_trigger(
            sessions,
            policy,
            d.dispute.id,
            "reassign_iro",
            ADMIN,
            ActionInput(iro_email=both.email),
            clock.now,
        )
    assert fetch(sessions, d.dispute.id).iro_email == IRO.email


def test_a_named_owner_who_lost_the_role_is_recorded_in_the_role_they_hold(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    manager = _person(sessions, "mgr@example.gov.uk", ["iro_manager", "team_manager"], clock.now)
    d = raise_one()
    _reassign(sessions, policy, d, TM, manager.email, clock.now)
    # Their team_manager role goes behind the service's back; the stage still names them.
    with sessions.begin() as session:
        session.execute(update(Person).where(Person.email == manager.email).values(roles=["iro_manager"]))
    now_held = Actor(manager.email, frozenset({"iro_manager"}))
    _reassign(sessions, policy, d, now_held, TM2_EMAIL, clock.now)
    last = _entries(sessions, d)[-1]
    assert (last.actor, last.actor_role) == (manager.email, "iro_manager")


# --- a stage is never handed to someone who cannot act on it ------------------------------------------


def _tm_moves_on(sessions: sessionmaker[Session], policy: Policy, d: DisputeSnapshot, now: datetime) -> None:
    """The team manager named at raise hands the stage on and leaves: the next team manager's stage would
    name them."""
    _reassign(sessions, policy, d, TM, TM2_EMAIL, now)
    with sessions.begin() as session:
        people.update_person(
            session, ADMIN, TM_EMAIL, now, name=None, roles=None, active=False, audit_key="test-audit-key"
        )


def _emails(sessions: sessionmaker[Session], d: DisputeSnapshot, seq: int) -> dict[str, str]:
    with sessions() as session:
        rows = session.scalars(
            select(Notification).where(Notification.dispute_id == d.dispute.id, Notification.audit_seq == seq)
        )
        return {n.recipient: n.template for n in rows}


def _passed_over(sessions: sessionmaker[Session], d: DisputeSnapshot) -> tuple[Dispute, AuditEntry]:
    row = fetch(sessions, d.dispute.id)
    assert (row.stage, row.owner_email, row.owner_role) == ("team_manager", None, "team_manager")
    with sessions() as session:
        entry = session.scalars(
            select(StageEntry).where(StageEntry.dispute_id == row.id, StageEntry.seq == row.stage_entry_seq)
        ).one()
        assert (entry.owner_email, entry.owner_role) == (None, "team_manager")
    last = _entries(sessions, d)[-1]
    assert json.loads(last.details)["owner_passed_over"] == TM_EMAIL
    emails = _emails(sessions, d, last.seq)
    # The role's active holders own it now, and the IRO managers hear that it went to the role.
    assert emails.get(IRO_MANAGER_EMAIL) == "owner_unavailable" and emails.get(TM2_EMAIL) == "escalated"
    assert TM_EMAIL not in emails
    return row, last


def test_a_timeout_into_an_inactive_persons_stage_gives_it_to_the_role(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    d = raise_one()
    _tm_moves_on(sessions, policy, d, clock.now)
    assert d.dispute.escalate_at is not None
    fired = fire_timer(sessions, policy, d.dispute.id, d.dispute.stage_entry_seq, d.dispute.escalate_at)
    assert fired == "timeout"
    row, last = _passed_over(sessions, d)
    assert last.trigger == "timeout"
    # Any active team manager may now act on it; the one who left could not have.
    transactions.apply_trigger(sessions, policy, row.id, "acknowledge", TM2, ActionInput(), clock.now)


def test_an_escalation_into_an_inactive_persons_stage_gives_it_to_the_role(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    d = raise_one()
    _tm_moves_on(sessions, policy, d, clock.now)
    transactions.apply_trigger(
        sessions, policy, d.dispute.id, "escalate", IRO, ActionInput(reason="r"), clock.now
    )
    assert _passed_over(sessions, d)[1].trigger == "escalate"


def test_a_reopen_into_an_inactive_persons_stage_gives_it_to_the_role(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    d = raise_one()
    _reassign(sessions, policy, d, TM, TM2_EMAIL, clock.now)
    transactions.apply_trigger(
        sessions,
        policy,
        d.dispute.id,
        "resolve",
        TM2,
        ActionInput(outcome="Agreed", outcome_code="action_agreed"),
        clock.advance(hours=1),
    )
    with sessions.begin() as session:
        people.update_person(
            session,
            ADMIN,
            TM_EMAIL,
            clock.now,
            name=None,
            roles=None,
            active=False,
            audit_key="test-audit-key",
        )
    transactions.apply_trigger(
        sessions, policy, d.dispute.id, "reopen", IRO, ActionInput(reason="Not done"), clock.advance(hours=1)
    )
    assert _passed_over(sessions, d)[1].trigger == "reopen"


def test_a_team_manager_who_became_the_iro_is_passed_over_too(
    sessions: sessionmaker[Session], staff: list[str], policy: Policy, clock: Any
) -> None:
    both = _person(sessions, "both@example.gov.uk", ["iro", "team_manager"], clock.now)
    d = raise_dispute(sessions, policy, clock.now, team_manager_email=both.email)
    _reassign(sessions, policy, d, both, TM2_EMAIL, clock.now)
    transactions.apply_trigger(
        sessions, policy, d.dispute.id, "reassign_iro", ADMIN, ActionInput(iro_email=both.email), clock.now
    )
    transactions.apply_trigger(
        sessions, policy, d.dispute.id, "escalate", both, ActionInput(reason="r"), clock.now
    )
    row = fetch(sessions, d.dispute.id)
    assert (row.stage, row.owner_email) == ("team_manager", None)


def test_the_iro_cannot_name_themselves_as_the_team_manager(
    sessions: sessionmaker[Session], staff: list[str], policy: Policy, clock: Any
) -> None:
    both = _person(sessions, "both@example.gov.uk", ["iro", "team_manager"], clock.now)
    with pytest.raises(InvalidInput) as refused:
        raise_dispute(sessions, policy, clock.now, actor=both, team_manager_email=both.email)
    assert [field for field, _ in refused.value.errors] == ["team_manager_email"]
