"""The outbox: who is told of a change, queued as rows inside the change's transaction, which `notifications/`
sends after commit; and the admins' view of it.

A row's context holds only what an email may show: references, the stage and dates. Never free text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dispute_service.access import Actor, require_admin
from dispute_service.models import Dispute, Notification, Person
from states.machine import Position
from states.vocabulary import State, Trigger

# Set on a session whose transaction queued an email, so the caller can wake the dispatcher after commit.
QUEUED_EMAIL = "queued_email"


def people_with_role(session: Session, role: str) -> list[str]:
    # Roles are a JSON list, which the two engines query differently; a staff directory is small enough
    # to filter here.
    active = session.scalars(select(Person).where(Person.active.is_(True)).order_by(Person.email)).all()
    return [p.email for p in active if role in p.roles]


def owners_of(session: Session, owner_email: str | None, owner_role: str) -> list[str]:
    """A named owner, or every active holder of the role; admins and IRO managers when nobody holds it."""
    if owner_email is not None:
        return [owner_email]
    holders = people_with_role(session, owner_role)
    if holders:
        return holders
    return sorted(set(people_with_role(session, "admin")) | set(people_with_role(session, "iro_manager")))


def message_id(dispute: Dispute, occasion: str, template: str, recipient: str) -> str:
    """Stable, so a resend after a crash is recognisably the same email; unique, so it is queued once."""
    digest = hashlib.sha256(f"{dispute.id}|{occasion}|{template}|{recipient}".encode()).hexdigest()[:24]
    return f"<{dispute.reference}.{template}.{digest}@dispute-service>"


def queue(
    session: Session,
    dispute: Dispute,
    *,
    audit_seq: int,
    template: str,
    recipients: Iterable[str],
    now: datetime,
    occasion: str | None = None,
    extra: dict[str, Any] | None = None,
) -> int:
    """Queue one row per recipient. `occasion` names what the email is about when it is not an audit
    entry (a reminder is keyed by its stage entry and time), so the same occasion is never queued twice.
    `extra` adds to the row's context what its template needs beyond the dispute's references (ids, never
    free text and never a secret: a code or a link is made when the email is sent)."""
    occasion = occasion or f"audit:{audit_seq}"
    session.info[QUEUED_EMAIL] = True
    queued = 0
    for recipient in dict.fromkeys(recipients):
        session.add(
            Notification(
                dispute_id=dispute.id,
                audit_seq=audit_seq,
                recipient=recipient,
                template=template,
                context={
                    "reference": dispute.reference,
                    "child_ref": dispute.child_ref,
                    "stage": dispute.stage,
                    "state": dispute.state,
                    "stage_entry_seq": dispute.stage_entry_seq,
                    "due_at": dispute.due_at.isoformat() if dispute.due_at else None,
                    **(extra or {}),
                },
                status="pending",
                attempts=0,
                next_attempt_at=now,
                message_id=message_id(dispute, occasion, template, recipient),
                created_at=now,
            )
        )
        queued += 1
    return queued


def queue_for_transition(
    session: Session,
    dispute: Dispute,
    *,
    trigger: Trigger,
    before: Position,
    previous_owners: Sequence[str],
    audit_seq: int,
    now: datetime,
    tell_iro_managers: bool = False,
    by_owner: bool = False,
) -> None:
    """Tell the people a change concerns: the new owners, the IRO, and whoever held the stage before; and the
    IRO managers when the stage could not go to the person it names (`tell_iro_managers`), so that someone
    who can reassign it knows it went to the whole role instead. `by_owner` says the stage's owner made the
    change themselves, so they need no email about it."""

    def send(template: str, recipients: list[str]) -> None:
        queue(session, dispute, audit_seq=audit_seq, template=template, recipients=recipients, now=now)

    def owners() -> list[str]:
        return owners_of(session, dispute.owner_email, dispute.owner_role)

    def iro_managers() -> list[str]:
        return people_with_role(session, "iro_manager")

    # A reopen at the top stage stays there but goes back to the IRO's decision, which is news too.
    moved = dispute.stage != before.stage or trigger is Trigger.REOPEN
    climbing = (Trigger.TIMEOUT, Trigger.ESCALATE, Trigger.REOPEN)
    stopped_on_partner_ladder = (
        trigger in climbing and dispute.ladder != "own" and dispute.state == State.AWAITING_IRO_DECISION
    )
    if stopped_on_partner_ladder and dispute.awaiting_contact_for is not None:
        # The next stage is named and nobody is named for it: only the IRO can name someone.
        send("contact_needed", [dispute.iro_email])
    elif stopped_on_partner_ladder:
        send("partner_ladder_exhausted", [dispute.iro_email, *iro_managers()])
    elif trigger is Trigger.NAME_CONTACT and moved:
        # The contact named for the stage the dispute waited to enter now owns it.
        send("escalated", [*owners(), dispute.iro_email, *previous_owners])
    elif trigger in climbing and moved:
        if dispute.state == State.AWAITING_IRO_DECISION:
            send("ladder_exhausted", [dispute.iro_email, *iro_managers()])
        else:
            send("escalated", [*owners(), dispute.iro_email, *previous_owners])
            if tell_iro_managers:
                send("owner_unavailable", iro_managers())
    elif trigger is Trigger.RESPOND:
        send("responded", [dispute.iro_email])
    elif trigger is Trigger.RESOLVE:
        send("resolved", [dispute.iro_email])
        # An owner still answering for the stage would otherwise go on working on a dispute that has ended.
        # At the end of the ladder nobody below the IRO holds it, so nobody else is told.
        if not by_owner and before.state in (State.AWAITING_RESPONSE, State.RESPONDED, State.ON_HOLD):
            send("resolved_by_iro", owners())
    elif trigger in (Trigger.HOLD, Trigger.RESUME, Trigger.EXTEND):
        # The owner's clock stopped, started again or moved: they learn the new due date (none on hold).
        template = {Trigger.HOLD: "held", Trigger.RESUME: "resumed", Trigger.EXTEND: "extended"}[trigger]
        send(template, owners())
    elif trigger is Trigger.REASSIGN_IRO:
        # The effect has already made the new IRO the dispute's IRO.
        send("iro_assigned", [dispute.iro_email])
    elif trigger is Trigger.REFER_TO_CAFCASS:
        send("referred", iro_managers())
    elif trigger in (Trigger.WITHDRAW, Trigger.CLOSE):
        send("closed" if trigger is Trigger.CLOSE else "withdrawn", owners())
    elif trigger is Trigger.REASSIGN:
        send("assigned", owners())


def list_notifications(
    session: Session, actor: Actor, *, status: str | None, limit: int, offset: int
) -> tuple[list[tuple[Notification, str]], int]:
    """The outbox, newest first, each row with its dispute's reference; for admins."""
    require_admin(actor, "list notifications")
    query = select(Notification, Dispute.reference).join(Dispute, Dispute.id == Notification.dispute_id)
    if status is not None:
        query = query.where(Notification.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Notification.id.desc()).limit(limit).offset(offset)).all()
    return [(notification, reference) for notification, reference in rows], total
