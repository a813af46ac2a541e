"""What each trigger does to the dispute row beyond its stage and state: one function per trigger.

Each runs inside the use case's transaction, validates the trigger's own fields (422), and returns the free
text for the audit log and the non-sensitive details that go into the chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispute_service import outbox
from dispute_service.audit import REDACTED
from dispute_service.inputs import ActionInput
from dispute_service.models import AuditText, Dispute, Person
from dispute_service.reminders import hold_review_at
from dispute_service.stages import (
    after,
    calendar_for,
    current_entry,
    move_to,
    named_owner,
    reschedule,
    stop_clock,
    sync_entry_deadline,
)
from dispute_service.validation import Problems, optional_reason
from states.machine import Position
from states.policy import OWN_LADDER_ID, Policy
from states.timescale import Timescale
from states.vocabulary import EXTERNAL, OUTCOME_CODES, State, Trigger


@dataclass
class Effect:
    texts: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    previous_owners: list[str] = field(default_factory=list)
    # The person the new stage names, when they could not take it (inactive, or no longer in its role).
    owner_passed_over: str | None = None


EffectFn = Callable[[Session, Dispute, Policy, ActionInput, Position, datetime], Effect]


def _enter(
    session: Session, dispute: Dispute, policy: Policy, stage_id: str, now: datetime, details: dict[str, Any]
) -> str | None:
    """Move to a new stage, never handing it to someone who cannot act on it: when the person it names is
    inactive, no longer holds its role, or has since become the dispute's IRO, it goes to the role, the
    audit details say who was passed over, and that person is returned."""
    stage = policy.any_stage(stage_id)
    named = named_owner(dispute, stage)
    passed_over = None
    dispute.awaiting_contact_for = None
    if stage.owner_role == EXTERNAL:
        # The machine enters a partner's named stage only with a contact named for it, checked active when
        # the IRO named them.
        move_to(dispute, policy, stage_id, now, named_may_own=True)
        return None
    if named is not None:
        person = session.scalar(select(Person).where(Person.email == named))
        is_iro = named == dispute.iro_email and stage.owner_role != "iro"
        if person is None or not person.active or stage.owner_role not in person.roles or is_iro:
            passed_over = named
            details["owner_passed_over"] = named
    move_to(dispute, policy, stage_id, now, named_may_own=passed_over is None)
    return passed_over


def _stops_on_partner_ladder(
    dispute: Dispute, policy: Policy, target: Position, waiting_for: str | None, details: dict[str, Any]
) -> bool:
    """A move up a partner ladder that ends at the IRO's decision on the same stage enters no stage: either
    the next stage is named with nobody named for it, so the dispute waits for the IRO to name someone
    (`waiting_for`), or the ladder is exhausted. The clock stops; the IRO is reminded as at any decision."""
    if dispute.ladder == OWN_LADDER_ID or target.state is not State.AWAITING_IRO_DECISION:
        return False
    dispute.due_at = None
    stop_clock(dispute)
    if waiting_for is not None:
        dispute.awaiting_contact_for = waiting_for
        details["reason"] = "next_contact_needed"
        details["waiting_for_stage"] = waiting_for
    else:
        details["reason"] = "ladder_end"
    return True


def _next_stage(policy: Policy, dispute: Dispute) -> str | None:
    """The stage above the dispute's on its own ladder; None at the top."""
    stages = policy.ladder(dispute.ladder).stage_ids
    position = stages.index(dispute.stage)
    return stages[position + 1] if position + 1 < len(stages) else None


def _acknowledge(
    session: Session, dispute: Dispute, policy: Policy, data: ActionInput, target: Position, now: datetime
) -> Effect:
    dispute.acknowledged_at = now
    current_entry(dispute).acknowledged_at = now
    return Effect()


def _respond(
    session: Session, dispute: Dispute, policy: Policy, data: ActionInput, target: Position, now: datetime
) -> Effect:
    problems = Problems()
    response = problems.required("response", data.response)
    problems.raise_if_any()
    late = dispute.due_at is not None and now > dispute.due_at
    dispute.responded_at = now
    current_entry(dispute).responded_at = now
    # The clock stops; the IRO decides, and is reminded after `remind_iro_after`.
    dispute.escalate_at = None
    dispute.next_reminder_at = after(policy, now, policy.rules.remind_iro_after)
    return Effect(texts={"response": response}, details={"late": late})


def _resolve(
    session: Session, dispute: Dispute, policy: Policy, data: ActionInput, target: Position, now: datetime
) -> Effect:
    problems = Problems()
    outcome = problems.required("outcome", data.outcome)
    if data.outcome_code not in OUTCOME_CODES:
        problems.add("outcome_code", f"must be one of: {', '.join(OUTCOME_CODES)}")
    problems.raise_if_any()
    dispute.resolved_at = now
    dispute.resolved_stage = dispute.stage
    dispute.outcome_code = data.outcome_code
    dispute.reopen_until = calendar_for(policy.calendar).deadline(now, policy.rules.reopen_within).due_at
    dispute.ended_at = now
    stop_clock(dispute)
    current_entry(dispute).left_at = now
    return Effect(
        texts={"outcome": outcome},
        details={"outcome_code": data.outcome_code, "resolved_stage": dispute.stage},
    )


def _reopen(
    session: Session, dispute: Dispute, policy: Policy, data: ActionInput, target: Position, now: datetime
) -> Effect:
    problems = Problems()
    reason = problems.required("reason", data.reason)
    problems.raise_if_any()
    previous = outbox.owners_of(session, dispute.owner_email, dispute.owner_role)
    details = {"resolved_stage": dispute.resolved_stage, "to_stage": target.stage}
    dispute.resolved_at = dispute.resolved_stage = dispute.resolved_by = dispute.outcome_code = (
        dispute.reopen_until
    ) = dispute.ended_at = None
    dispute.outcome_text_id = None
    passed_over = None
    if not _stops_on_partner_ladder(dispute, policy, target, _next_stage(policy, dispute), details):
        passed_over = _enter(session, dispute, policy, target.stage, now, details)
    return Effect(
        texts={"reason": reason}, details=details, previous_owners=previous, owner_passed_over=passed_over
    )


def _escalate(
    session: Session, dispute: Dispute, policy: Policy, data: ActionInput, target: Position, now: datetime
) -> Effect:
    problems = Problems()
    reason = problems.required("reason", data.reason)
    problems.raise_if_any()
    previous = outbox.owners_of(session, dispute.owner_email, dispute.owner_role)
    details: dict[str, Any] = {"kind": "manual", "to_stage": target.stage}
    passed_over = None
    waiting_for = data.to_stage or _next_stage(policy, dispute)
    if not _stops_on_partner_ladder(dispute, policy, target, waiting_for, details):
        passed_over = _enter(session, dispute, policy, target.stage, now, details)
    return Effect(
        texts={"reason": reason}, details=details, previous_owners=previous, owner_passed_over=passed_over
    )


def _timeout(
    session: Session, dispute: Dispute, policy: Policy, data: ActionInput, target: Position, now: datetime
) -> Effect:
    previous = outbox.owners_of(session, dispute.owner_email, dispute.owner_role)
    details: dict[str, Any] = {"kind": "automatic", "to_stage": target.stage}
    if dispute.escalate_at is not None:
        details["escalate_at"] = dispute.escalate_at.isoformat()
    passed_over = None
    if not _stops_on_partner_ladder(dispute, policy, target, _next_stage(policy, dispute), details):
        passed_over = _enter(session, dispute, policy, target.stage, now, details)
    return Effect(details=details, previous_owners=previous, owner_passed_over=passed_over)


def _refer(
    session: Session, dispute: Dispute, policy: Policy, data: ActionInput, target: Position, now: datetime
) -> Effect:
    problems = Problems()
    reason = problems.required("reason", data.reason)
    if data.referred_on is None:
        problems.add("referred_on", "is required: the date the case was referred to CAFCASS (YYYY-MM-DD)")
    else:
        # A referral is recorded when it is made, or soon after: a date to come, or one long past, is a
        # mistyped year far more often than a fact.
        today = now.astimezone(calendar_for(policy.calendar).tz).date()
        year_ago = today.replace(
            year=today.year - 1, day=min(today.day, 28) if today.month == 2 else today.day
        )
        if data.referred_on > today:
            problems.add("referred_on", f"must not be in the future (today is {today.isoformat()})")
        elif data.referred_on < year_ago:
            problems.add("referred_on", f"must be within the last year: on or after {year_ago.isoformat()}")
    if data.cafcass_reference is not None and len(data.cafcass_reference) > 64:
        problems.add("cafcass_reference", "must be at most 64 characters")
    problems.raise_if_any()
    dispute.referred_on = data.referred_on
    dispute.cafcass_reference = data.cafcass_reference
    if not data.alongside:
        if target.stage != dispute.stage:
            _enter(session, dispute, policy, target.stage, now, {})
        stop_clock(dispute)
    details = {
        "alongside": data.alongside,
        "referred_on": data.referred_on,
        "cafcass_reference": data.cafcass_reference,
    }
    return Effect(texts={"reason": reason}, details=details)


def _close(
    session: Session, dispute: Dispute, policy: Policy, data: ActionInput, target: Position, now: datetime
) -> Effect:
    problems = Problems()
    outcome = problems.required("outcome", data.outcome)
    if data.outcome_code is not None and data.outcome_code not in OUTCOME_CODES:
        problems.add("outcome_code", f"must be one of: {', '.join(OUTCOME_CODES)}")
    problems.raise_if_any()
    dispute.ended_at = now
    dispute.outcome_code = data.outcome_code
    stop_clock(dispute)
    current_entry(dispute).left_at = now
    return Effect(texts={"outcome": outcome}, details={"outcome_code": data.outcome_code})


def _withdraw(
    session: Session, dispute: Dispute, policy: Policy, data: ActionInput, target: Position, now: datetime
) -> Effect:
    problems = Problems()
    reason = problems.required("reason", data.reason)
    problems.raise_if_any()
    dispute.ended_at = now
    stop_clock(dispute)
    current_entry(dispute).left_at = now
    return Effect(texts={"reason": reason})


def _hold(
    session: Session, dispute: Dispute, policy: Policy, data: ActionInput, target: Position, now: datetime
) -> Effect:
    problems = Problems()
    reason = problems.required("reason", data.reason)
    calendar = calendar_for(policy.calendar)
    today = now.astimezone(calendar.tz).date()
    if data.review_on is None:
        problems.add("review_on", "is required: the date to review the hold (YYYY-MM-DD)")
    elif data.review_on < today:
        # A review already overdue when the hold starts would never prompt anyone.
        problems.add("review_on", f"must not be in the past (today is {today.isoformat()})")
    problems.raise_if_any()
    assert data.review_on is not None
    stage = policy.any_stage(dispute.stage)
    dispute.held_at = now
    dispute.hold_review_on = data.review_on
    if (
        dispute.due_at is not None
        and stage.respond_within is not None
        and stage.respond_within.is_working_days
    ):
        dispute.hold_remaining_working_days = calendar.working_days_between(
            today, dispute.due_at.astimezone(calendar.tz).date()
        )
    elif dispute.due_at is not None:
        dispute.hold_remaining_seconds = max(0, int((dispute.due_at - now).total_seconds()))
    dispute.due_at = dispute.escalate_at = None
    # The clock is stopped, but the IRO is reminded on the review date, and each working day after it.
    dispute.next_reminder_at = hold_review_at(policy, data.review_on)
    return Effect(
        texts={"reason": reason},
        details={
            "review_on": data.review_on,
            "remaining_working_days": dispute.hold_remaining_working_days,
            "remaining_seconds": dispute.hold_remaining_seconds,
        },
    )


def _resume(
    session: Session, dispute: Dispute, policy: Policy, data: ActionInput, target: Position, now: datetime
) -> Effect:
    due_at, escalate_at = dispute.due_at, dispute.escalate_at
    if dispute.hold_remaining_working_days is not None:
        remaining = dispute.hold_remaining_working_days
        ts = Timescale(working_days=remaining, duration=None, text=f"{remaining}wd")
        deadline = calendar_for(policy.calendar).deadline(now, ts)
        due_at, escalate_at = deadline.due_at, deadline.escalate_at
    elif dispute.hold_remaining_seconds is not None:
        due_at = escalate_at = now + timedelta(seconds=dispute.hold_remaining_seconds)
    details = {
        "remaining_working_days": dispute.hold_remaining_working_days,
        "remaining_seconds": dispute.hold_remaining_seconds,
    }
    dispute.held_at = dispute.hold_review_on = None
    dispute.hold_remaining_working_days = dispute.hold_remaining_seconds = None
    reschedule(dispute, policy, due_at, escalate_at, now)
    return Effect(texts=optional_reason(data.reason), details=details)


def _extend(
    session: Session, dispute: Dispute, policy: Policy, data: ActionInput, target: Position, now: datetime
) -> Effect:
    problems = Problems()
    reason = problems.required("reason", data.reason)
    if data.working_days is None or not 1 <= data.working_days <= 60:
        problems.add("working_days", "is required: a whole number of working days from 1 to 60")
    if dispute.due_at is None:
        problems.add("working_days", "this stage has no due date to extend")
    problems.raise_if_any()
    assert data.working_days is not None and dispute.due_at is not None
    calendar = calendar_for(policy.calendar)
    new_due = calendar.add_working_days_to(dispute.due_at, data.working_days)
    escalate_at = calendar.deadline(new_due, Timescale(working_days=0, duration=None, text="0wd")).escalate_at
    reschedule(dispute, policy, new_due, escalate_at, now)
    return Effect(texts={"reason": reason}, details={"working_days": data.working_days})


def _reassign(
    session: Session, dispute: Dispute, policy: Policy, data: ActionInput, target: Position, now: datetime
) -> Effect:
    problems = Problems()
    if dispute.owner_role == EXTERNAL:
        new_owner = _named_stage_owner(session, problems, dispute, data.owner_email)
    else:
        new_owner = _stage_owner(session, problems, dispute, data.owner_email)
    problems.text_if_given("reason", data.reason)
    problems.raise_if_any()
    previous = outbox.owners_of(session, dispute.owner_email, dispute.owner_role)
    details = {"owner_before": dispute.owner_email or f"role:{dispute.owner_role}", "owner_after": new_owner}
    dispute.owner_email = new_owner
    current_entry(dispute).owner_email = new_owner
    if dispute.owner_role == EXTERNAL and new_owner is not None:
        # The stage's named contact is now this one, as if the IRO had named them for it.
        dispute.contacts = {**dispute.contacts, dispute.stage: new_owner}
    return Effect(texts=optional_reason(data.reason), details=details, previous_owners=previous)


def _named_stage_owner(
    session: Session, problems: Problems, dispute: Dispute, email: str | None
) -> str | None:
    """Another active contact of the dispute's organisation: a partner's stage stays with the partner."""
    contact = problems.contact(session, "owner_email", email, organisation=dispute.organisation_id)
    if contact is not None and contact.email == dispute.owner_email:
        problems.add("owner_email", f"{contact.email} already owns this stage")
        return None
    return contact.email if contact is not None else None


def _stage_owner(session: Session, problems: Problems, dispute: Dispute, email: str | None) -> str | None:
    """The person a stage may be handed to: active, holding its owner role, and not the dispute's IRO.

    Anyone else could not act on it (rights follow roles), or would answer to themselves as IRO; and an
    admin or IRO manager must not be able to take a stage their own roles do not cover.
    """
    role = dispute.owner_role
    allowed = f"this stage may be handed only to an active holder of the {role} role other than the IRO"
    if email is None or not email.strip():
        problems.add("owner_email", f"is required: {allowed}")
        return None
    # FOR SHARE: a concurrent deactivation or change of roles (FOR UPDATE on the person) waits for this
    # hand-over to commit and then sees it, or this waits and sees the person as they now are.
    person = session.scalar(
        select(Person).where(Person.email == email.strip().lower()).with_for_update(read=True)
    )
    if person is None or not person.active:
        problems.add("owner_email", f"{email} is not an active person in the staff directory; {allowed}")
    elif role not in person.roles:
        problems.add("owner_email", f"{email} does not hold the {role} role; {allowed}")
    elif person.email == dispute.iro_email:
        problems.add("owner_email", f"{email} is the dispute's IRO; {allowed}")
    else:
        return person.email
    return None


def _reassign_iro(
    session: Session, dispute: Dispute, policy: Policy, data: ActionInput, target: Position, now: datetime
) -> Effect:
    problems = Problems()
    new_iro = problems.person(session, "iro_email", data.iro_email, "iro")
    if new_iro is not None and new_iro == dispute.owner_email and dispute.owner_role != "iro":
        # The IRO would be answering to themselves: the stage must go to someone else first.
        problems.add(
            "iro_email", f"{new_iro} owns the current stage; reassign the stage to someone else first"
        )
    problems.text_if_given("reason", data.reason)
    problems.raise_if_any()
    assert new_iro is not None
    details = {"iro_before": dispute.iro_email, "iro_after": new_iro}
    if policy.any_stage(dispute.stage).owner_role == "iro":
        dispute.owner_email = new_iro
        current_entry(dispute).owner_email = new_iro
    dispute.iro_email = new_iro
    return Effect(texts=optional_reason(data.reason), details=details)


def _amend(
    session: Session, dispute: Dispute, policy: Policy, data: ActionInput, target: Position, now: datetime
) -> Effect:
    problems = Problems()
    reason = problems.required("reason", data.reason)
    changes = {
        k: v
        for k, v in (
            ("child_ref", data.child_ref),
            ("sibling_refs", data.sibling_refs),
            ("categories", data.categories),
            ("case_type", data.case_type),
        )
        if v is not None
    }
    if not changes:
        problems.add(
            "child_ref", "name at least one field to correct: child_ref, sibling_refs, categories, case_type"
        )
    problems.refs_and_categories(
        data.child_ref if data.child_ref is not None else dispute.child_ref,
        data.sibling_refs if data.sibling_refs is not None else dispute.sibling_refs,
        data.categories if data.categories is not None else dispute.categories,
        data.case_type if data.case_type is not None else dispute.case_type,
    )
    problems.raise_if_any()
    before = {k: getattr(dispute, k) for k in changes}
    for key, value in changes.items():
        setattr(dispute, key, value.strip() if isinstance(value, str) else list(dict.fromkeys(value)))
    return Effect(
        texts={"reason": reason},
        details={"before": before, "after": {k: getattr(dispute, k) for k in changes}},
    )


def _redact(
    session: Session, dispute: Dispute, policy: Policy, data: ActionInput, target: Position, now: datetime
) -> Effect:
    problems = Problems()
    reason = problems.required("reason", data.reason)
    text = session.get(AuditText, data.text_id) if data.text_id is not None else None
    if text is None or text.dispute_id != dispute.id:
        problems.add("text_id", "must be the text_id of an entry in this dispute's audit log")
    elif text.redacted_at is not None:
        problems.add("text_id", "that text is already redacted")
    problems.raise_if_any()
    assert text is not None
    text.body = REDACTED
    text.redacted_at = now
    if text.kind == "summary":
        # The dispute was read with its summary; the answer must show the redaction, not the text.
        session.expire(dispute, ["summary"])
    return Effect(texts={"reason": reason}, details={"redacted_text_id": text.id, "redacted_kind": text.kind})


def _name_contact(
    session: Session, dispute: Dispute, policy: Policy, data: ActionInput, target: Position, now: datetime
) -> Effect:
    """The IRO names (or changes) the contact of a later named stage; when the dispute waits to enter that
    stage for want of one, the machine has already sent it there, and it enters now."""
    problems = Problems()
    ladder = policy.ladder(dispute.ladder)
    later = ladder.stage_ids[ladder.stage_ids.index(dispute.stage) + 1 :]
    named_later = [s for s in later if policy.any_stage(s).owner_role == EXTERNAL]
    if data.stage not in named_later:
        problems.add(
            "stage", f"must be a later named stage of the {ladder.id} ladder: {', '.join(named_later)}"
        )
    contact = problems.contact(
        session, "contact_email", data.contact_email, organisation=dispute.organisation_id
    )
    problems.text_if_given("reason", data.reason)
    problems.raise_if_any()
    assert contact is not None and data.stage is not None
    before = (dispute.contacts or {}).get(data.stage)
    # A new dict: the column is plain JSON, which notices a new value but not a change inside the old one.
    dispute.contacts = {**(dispute.contacts or {}), data.stage: contact.email}
    details: dict[str, Any] = {
        "stage": data.stage,
        "contact_before": before,
        "contact_after": contact.email,
        "organisation": dispute.organisation_id,
    }
    previous: list[str] = []
    if target.stage != dispute.stage:
        previous = outbox.owners_of(session, dispute.owner_email, dispute.owner_role)
        details["entered"] = True
        _enter(session, dispute, policy, target.stage, now, details)
    return Effect(texts=optional_reason(data.reason), details=details, previous_owners=previous)


def _defer(
    session: Session, dispute: Dispute, policy: Policy, data: ActionInput, target: Position, now: datetime
) -> Effect:
    calendar = calendar_for(policy.calendar)
    assert dispute.escalate_at is not None
    was = dispute.escalate_at
    day = was.astimezone(calendar.tz).date()
    dispute.escalate_at = calendar.next_working_moment(was)
    sync_entry_deadline(dispute)
    why = calendar.non_working_reason(day)
    return Effect(
        details={"reason": f"{day.isoformat()} is no longer a working day ({why})", "escalate_at_was": was}
    )


EFFECTS: dict[Trigger, EffectFn] = {
    Trigger.ACKNOWLEDGE: _acknowledge,
    Trigger.RESPOND: _respond,
    Trigger.RESOLVE: _resolve,
    Trigger.REOPEN: _reopen,
    Trigger.ESCALATE: _escalate,
    Trigger.TIMEOUT: _timeout,
    Trigger.DEFER: _defer,
    Trigger.REFER_TO_CAFCASS: _refer,
    Trigger.CLOSE: _close,
    Trigger.WITHDRAW: _withdraw,
    Trigger.HOLD: _hold,
    Trigger.RESUME: _resume,
    Trigger.EXTEND: _extend,
    Trigger.REASSIGN: _reassign,
    Trigger.REASSIGN_IRO: _reassign_iro,
    Trigger.AMEND: _amend,
    Trigger.REDACT: _redact,
    Trigger.NAME_CONTACT: _name_contact,
}
