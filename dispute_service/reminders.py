"""Reminders: the owner before and on the due date, the IRO after a response. Each is queued exactly once."""

from __future__ import annotations

import uuid
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from dispute_service import outbox
from dispute_service.database import after_commit
from dispute_service.models import Dispute
from dispute_service.policies import policy_for
from dispute_service.stages import after, calendar_for, next_reminder
from states.policy import Policy
from states.vocabulary import State

log = structlog.get_logger("dispute_service.reminders")


def send_reminder(
    session: Session,
    policy: Policy,
    dispute_id: uuid.UUID,
    reminder_at: datetime,
    now: datetime,
) -> bool:
    """Queue the reminder due at `reminder_at` and move on to the next. False if it is stale."""
    dispute = session.scalar(
        select(Dispute)
        .where(Dispute.id == dispute_id, Dispute.next_reminder_at == reminder_at)
        .with_for_update(skip_locked=True)
    )
    if dispute is None or reminder_at > now:
        return False
    dispute_policy = policy_for(session, dispute.policy_id, policy)
    calendar = calendar_for(dispute_policy.calendar)
    stage = dispute_policy.stage(dispute.stage)
    exact = stage.respond_within is not None and not stage.respond_within.is_working_days
    moved = reminder_at if exact else calendar.next_working_moment(reminder_at)
    if moved > now:
        # A closure day added since the reminder was planned: remind on the next working day instead.
        dispute.next_reminder_at = moved
        return False
    if dispute.state == State.AWAITING_RESPONSE:
        template = "reminder"
        recipients = outbox.owners_of(session, dispute.owner_email, dispute.owner_role)
        upcoming = next_reminder(
            dispute_policy, dispute_policy.stage(dispute.stage), dispute.due_at, reminder_at
        )
    elif dispute.state == State.RESPONDED:
        template = "iro_reminder"
        recipients = [dispute.iro_email]
        # The IRO is reminded again each time `remind_iro_after` passes, until they decide.
        upcoming = after(dispute_policy, reminder_at, dispute_policy.rules.remind_iro_after)
    else:
        dispute.next_reminder_at = None
        return False
    outbox.queue(
        session,
        dispute,
        audit_seq=dispute.audit_seq,
        template=template,
        recipients=recipients,
        now=now,
        occasion=f"reminder:{dispute.stage_entry_seq}:{reminder_at.isoformat()}",
    )
    dispute.next_reminder_at = upcoming
    reference = dispute.reference
    after_commit(
        session,
        lambda: log.info(
            "dispute.reminded", dispute_id=str(dispute_id), reference=reference, template=template
        ),
    )
    return True
