"""Reminders: the owner before and on the due date, the IRO while a decision waits on them (after a
response, or at the end of the ladder) and on a hold's review date. Each is queued exactly once, and each is
recorded in the audit as a `remind` entry, so nobody is left waiting without a trace of who was told."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from dispute_service import audit, outbox
from dispute_service.access import SYSTEM
from dispute_service.database import after_commit
from dispute_service.models import Dispute
from dispute_service.policies import policy_for
from dispute_service.stages import after, calendar_for, next_reminder
from states.machine import Position
from states.policy import Policy
from states.timescale import Timescale
from states.vocabulary import State, Trigger

log = structlog.get_logger("dispute_service.reminders")

_ONE_WORKING_DAY = Timescale(working_days=1, duration=None, text="1wd")


def hold_review_at(policy: Policy, review_on: date) -> datetime:
    """The start of the working day of a hold's review (or of the next working day, if it is not one)."""
    calendar = calendar_for(policy.calendar)
    start = datetime.combine(review_on, policy.calendar.start_of_business, tzinfo=calendar.tz)
    return calendar.next_working_moment(start.astimezone(UTC))


def iro_decision_reminder_at(policy: Policy, now: datetime) -> datetime:
    """When an IRO who has a decision to make is first reminded of it."""
    return after(policy, now, policy.rules.remind_iro_after)


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
    stage = dispute_policy.any_stage(dispute.stage)
    state = dispute.state
    if state == State.AWAITING_RESPONSE:
        template, to_role = "reminder", "owner"
        exact = stage.respond_within is not None and not stage.respond_within.is_working_days
    elif state == State.RESPONDED:
        template, to_role = "iro_reminder", "iro"
        exact = not dispute_policy.rules.remind_iro_after.is_working_days
    elif state == State.AWAITING_IRO_DECISION:
        template, to_role = "decision_reminder", "iro"
        exact = not dispute_policy.rules.remind_iro_after.is_working_days
    elif state == State.ON_HOLD:
        template, to_role = "hold_review", "iro"
        exact = False
    else:
        dispute.next_reminder_at = None
        return False
    moved = reminder_at if exact else calendar.next_working_moment(reminder_at)
    if moved > now:
        # A closure day added since the reminder was planned: remind on the next working moment instead,
        # and say so, as the escalations do.
        dispute.next_reminder_at = moved
        day = reminder_at.astimezone(calendar.tz).date()
        _record(
            session,
            dispute,
            Trigger.DEFER,
            {
                "reminder": template,
                "to": to_role,
                "planned_at": reminder_at,
                "deferred_to": moved,
                "reason": f"{day.isoformat()} is no longer a working day "
                f"({calendar.non_working_reason(day) or 'not working'})",
            },
            now,
        )
        return False
    if template == "reminder":
        recipients = outbox.owners_of(session, dispute.owner_email, dispute.owner_role)
        upcoming = next_reminder(dispute_policy, stage, dispute.due_at, reminder_at)
    elif template in ("iro_reminder", "decision_reminder"):
        recipients = [dispute.iro_email]
        # The IRO is reminded again each time `remind_iro_after` passes, until they decide.
        upcoming = after(dispute_policy, reminder_at, dispute_policy.rules.remind_iro_after)
    else:
        recipients = [dispute.iro_email]
        # Every working day from the review date, until the IRO resumes, escalates or ends the dispute.
        upcoming = calendar.shift(reminder_at, _ONE_WORKING_DAY)
    entry = _record(
        session,
        dispute,
        Trigger.REMIND,
        {"reminder": template, "to": to_role, "planned_at": reminder_at},
        now,
    )
    outbox.queue(
        session,
        dispute,
        audit_seq=entry,
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


def _record(
    session: Session, dispute: Dispute, trigger: Trigger, details: dict[str, object], now: datetime
) -> int:
    """A bookkeeping entry: chained like any other, but the dispute's version stays, since nothing a
    caller aimed at has changed."""
    here = Position(dispute.stage, State(dispute.state))
    entry = audit.append(
        session,
        dispute,
        actor=SYSTEM,
        actor_role=None,
        trigger=trigger,
        before=here,
        before_times=(dispute.due_at, dispute.escalate_at),
        texts={},
        details=dict(details),
        now=now,
    )
    return entry.seq
