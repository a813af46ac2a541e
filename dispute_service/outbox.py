"""Queues emails as outbox rows inside the trigger's transaction; `notifications/` sends them after commit.

A row's context holds only what an email may show: references, the stage and dates. Never free text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispute_service.models import Dispute, Notification, Person


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
) -> int:
    """Queue one row per recipient. `occasion` names what the email is about when it is not an audit
    entry (a reminder is keyed by its stage entry and time), so the same occasion is never queued twice."""
    occasion = occasion or f"audit:{audit_seq}"
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
