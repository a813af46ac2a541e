"""What each trigger does to the dispute row beyond its stage and state: one function per trigger.

Each runs inside the use case's transaction, validates the trigger's own fields (422), and returns the free
text for the audit log and the non-sensitive details that go into the chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from dispute_service import outbox
from dispute_service.audit import REDACTED
from dispute_service.inputs import ActionInput
from dispute_service.ladder import (
    after,
    calendar_for,
    current_entry,
    move_to,
    next_reminder,
    stop_clock,
    sync_entry_deadline,
)
from dispute_service.models import AuditText, Dispute
from dispute_service.validation import (
    check_refs_and_categories,
    check_text,
    named_person,
    optional_reason,
    raise_if,
    require_text,
)
from states.machine import OUTCOME_CODES, Position, Trigger
from states.policy import Policy
from states.timescale import Timescale


@dataclass
class Effect:
    texts: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    previous_owners: list[str] = field(default_factory=list)


EffectFn = Callable[[Session, Dispute, Policy, ActionInput, Position, datetime], Effect]


def _acknowledge(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    d.acknowledged_at = now
    current_entry(s, d).acknowledged_at = now
    return Effect()


def _respond(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    require_text(errors, "response", a.response)
    raise_if(errors)
    assert a.response is not None
    late = d.due_at is not None and now > d.due_at
    d.responded_at = now
    current_entry(s, d).responded_at = now
    # The clock stops; the IRO decides, and is reminded after `remind_iro_after`.
    d.escalate_at = None
    d.next_reminder_at = after(p, now, p.rules.remind_iro_after)
    return Effect(texts={"response": a.response}, details={"late": late})


def _resolve(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    require_text(errors, "outcome", a.outcome)
    if a.outcome_code not in OUTCOME_CODES:
        errors.append(("outcome_code", f"must be one of: {', '.join(OUTCOME_CODES)}"))
    raise_if(errors)
    assert a.outcome is not None
    d.resolved_at = now
    d.resolved_stage = d.stage
    d.outcome_code = a.outcome_code
    d.reopen_until = calendar_for(p.calendar).deadline(now, p.rules.reopen_within).due_at
    d.ended_at = now
    stop_clock(d)
    current_entry(s, d).left_at = now
    return Effect(
        texts={"outcome": a.outcome}, details={"outcome_code": a.outcome_code, "resolved_stage": d.stage}
    )


def _reopen(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    require_text(errors, "reason", a.reason)
    raise_if(errors)
    assert a.reason is not None
    previous = outbox.owners_of(s, d.owner_email, d.owner_role)
    details = {"resolved_stage": d.resolved_stage, "to_stage": t.stage}
    d.resolved_at = d.resolved_stage = d.resolved_by = d.outcome_code = d.reopen_until = d.ended_at = None
    d.outcome_text_id = None
    move_to(s, d, p, t.stage, now)
    return Effect(texts={"reason": a.reason}, details=details, previous_owners=previous)


def _escalate(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    require_text(errors, "reason", a.reason)
    raise_if(errors)
    assert a.reason is not None
    previous = outbox.owners_of(s, d.owner_email, d.owner_role)
    move_to(s, d, p, t.stage, now)
    return Effect(
        texts={"reason": a.reason}, details={"kind": "manual", "to_stage": t.stage}, previous_owners=previous
    )


def _timeout(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    previous = outbox.owners_of(s, d.owner_email, d.owner_role)
    details: dict[str, Any] = {"kind": "automatic", "to_stage": t.stage}
    if d.escalate_at is not None:
        details["escalate_at"] = d.escalate_at.isoformat()
    move_to(s, d, p, t.stage, now)
    return Effect(details=details, previous_owners=previous)


def _refer(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    require_text(errors, "reason", a.reason)
    if a.referred_on is None:
        errors.append(("referred_on", "is required: the date the case was referred to CAFCASS (YYYY-MM-DD)"))
    if a.cafcass_reference is not None and len(a.cafcass_reference) > 64:
        errors.append(("cafcass_reference", "must be at most 64 characters"))
    raise_if(errors)
    assert a.reason is not None
    d.referred_on = a.referred_on
    d.cafcass_reference = a.cafcass_reference
    if not a.alongside:
        if t.stage != d.stage:
            move_to(s, d, p, t.stage, now)
        stop_clock(d)
    details = {
        "alongside": a.alongside,
        "referred_on": a.referred_on,
        "cafcass_reference": a.cafcass_reference,
    }
    return Effect(texts={"reason": a.reason}, details=details)


def _close(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    require_text(errors, "outcome", a.outcome)
    if a.outcome_code is not None and a.outcome_code not in OUTCOME_CODES:
        errors.append(("outcome_code", f"must be one of: {', '.join(OUTCOME_CODES)}"))
    raise_if(errors)
    assert a.outcome is not None
    d.ended_at = now
    d.outcome_code = a.outcome_code
    stop_clock(d)
    current_entry(s, d).left_at = now
    return Effect(texts={"outcome": a.outcome}, details={"outcome_code": a.outcome_code})


def _withdraw(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    require_text(errors, "reason", a.reason)
    raise_if(errors)
    assert a.reason is not None
    d.ended_at = now
    stop_clock(d)
    current_entry(s, d).left_at = now
    return Effect(texts={"reason": a.reason})


def _hold(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    require_text(errors, "reason", a.reason)
    if a.review_on is None:
        errors.append(("review_on", "is required: the date to review the hold (YYYY-MM-DD)"))
    raise_if(errors)
    assert a.reason is not None
    calendar = calendar_for(p.calendar)
    stage = p.stage(d.stage)
    d.held_at = now
    d.hold_review_on = a.review_on
    if d.due_at is not None and stage.respond_within is not None and stage.respond_within.is_working_days:
        today = now.astimezone(calendar.tz).date()
        d.hold_remaining_working_days = calendar.working_days_between(
            today, d.due_at.astimezone(calendar.tz).date()
        )
    elif d.due_at is not None:
        d.hold_remaining_seconds = max(0, int((d.due_at - now).total_seconds()))
    d.due_at = d.escalate_at = d.next_reminder_at = None
    return Effect(
        texts={"reason": a.reason},
        details={
            "review_on": a.review_on,
            "remaining_working_days": d.hold_remaining_working_days,
            "remaining_seconds": d.hold_remaining_seconds,
        },
    )


def _resume(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    calendar = calendar_for(p.calendar)
    if d.hold_remaining_working_days is not None:
        remaining = d.hold_remaining_working_days
        ts = Timescale(working_days=remaining, duration=None, text=f"{remaining}wd")
        deadline = calendar.deadline(now, ts)
        d.due_at, d.escalate_at = deadline.due_at, deadline.escalate_at
    elif d.hold_remaining_seconds is not None:
        d.due_at = d.escalate_at = now + timedelta(seconds=d.hold_remaining_seconds)
    details = {
        "remaining_working_days": d.hold_remaining_working_days,
        "remaining_seconds": d.hold_remaining_seconds,
    }
    d.held_at = d.hold_review_on = None
    d.hold_remaining_working_days = d.hold_remaining_seconds = None
    d.next_reminder_at = next_reminder(p, p.stage(d.stage), d.due_at, now)
    sync_entry_deadline(s, d)
    return Effect(texts=optional_reason(a.reason), details=details)


def _extend(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    require_text(errors, "reason", a.reason)
    if a.working_days is None or not 1 <= a.working_days <= 60:
        errors.append(("working_days", "is required: a whole number of working days from 1 to 60"))
    if d.due_at is None:
        errors.append(("working_days", "this stage has no due date to extend"))
    raise_if(errors)
    assert a.reason is not None and a.working_days is not None and d.due_at is not None
    calendar = calendar_for(p.calendar)
    new_due = calendar.add_working_days_to(d.due_at, a.working_days)
    d.due_at = new_due
    d.escalate_at = calendar.deadline(
        new_due, Timescale(working_days=0, duration=None, text="0wd")
    ).escalate_at
    d.next_reminder_at = next_reminder(p, p.stage(d.stage), d.due_at, now)
    sync_entry_deadline(s, d)
    return Effect(texts={"reason": a.reason}, details={"working_days": a.working_days})


def _reassign(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    new_owner = named_person(s, errors, "owner_email", a.owner_email, None)
    if a.reason is not None:
        check_text(errors, "reason", a.reason)
    raise_if(errors)
    previous = outbox.owners_of(s, d.owner_email, d.owner_role)
    details = {"owner_before": d.owner_email or f"role:{d.owner_role}", "owner_after": new_owner}
    d.owner_email = new_owner
    current_entry(s, d).owner_email = new_owner
    return Effect(texts=optional_reason(a.reason), details=details, previous_owners=previous)


def _reassign_iro(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    new_iro = named_person(s, errors, "iro_email", a.iro_email, "iro")
    if a.reason is not None:
        check_text(errors, "reason", a.reason)
    raise_if(errors)
    assert new_iro is not None
    details = {"iro_before": d.iro_email, "iro_after": new_iro}
    if p.stage(d.stage).owner_role == "iro":
        d.owner_email = new_iro
        current_entry(s, d).owner_email = new_iro
    d.iro_email = new_iro
    return Effect(texts=optional_reason(a.reason), details=details)


def _amend(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    require_text(errors, "reason", a.reason)
    changes = {
        k: v
        for k, v in (
            ("child_ref", a.child_ref),
            ("sibling_refs", a.sibling_refs),
            ("categories", a.categories),
            ("case_type", a.case_type),
        )
        if v is not None
    }
    if not changes:
        errors.append(
            (
                "child_ref",
                "name at least one field to correct: child_ref, sibling_refs, categories, case_type",
            )
        )
    check_refs_and_categories(
        errors,
        a.child_ref if a.child_ref is not None else d.child_ref,
        a.sibling_refs if a.sibling_refs is not None else d.sibling_refs,
        a.categories if a.categories is not None else d.categories,
        a.case_type if a.case_type is not None else d.case_type,
    )
    raise_if(errors)
    assert a.reason is not None
    before = {k: getattr(d, k) for k in changes}
    for key, value in changes.items():
        setattr(d, key, value.strip() if isinstance(value, str) else list(dict.fromkeys(value)))
    return Effect(
        texts={"reason": a.reason}, details={"before": before, "after": {k: getattr(d, k) for k in changes}}
    )


def _redact(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    require_text(errors, "reason", a.reason)
    text = s.get(AuditText, a.text_id) if a.text_id is not None else None
    if text is None or text.dispute_id != d.id:
        errors.append(("text_id", "must be the text_id of an entry in this dispute's audit log"))
    elif text.redacted_at is not None:
        errors.append(("text_id", "that text is already redacted"))
    raise_if(errors)
    assert a.reason is not None and text is not None
    text.body = REDACTED
    text.redacted_at = now
    return Effect(
        texts={"reason": a.reason}, details={"redacted_text_id": text.id, "redacted_kind": text.kind}
    )


def _defer(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    calendar = calendar_for(p.calendar)
    assert d.escalate_at is not None
    was = d.escalate_at
    day = was.astimezone(calendar.tz).date()
    d.escalate_at = calendar.next_working_moment(was)
    sync_entry_deadline(s, d)
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
}
