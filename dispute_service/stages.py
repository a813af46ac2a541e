"""Moving a dispute between stages: stage entries, owners, and deadlines stored on the row."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from dispute_service.models import Dispute, StageEntry
from states.calendar import WorkingCalendar
from states.policy import CalendarConfig, Policy, Stage
from states.timescale import Timescale
from states.vocabulary import EXTERNAL


@lru_cache(maxsize=32)
def calendar_for(config: CalendarConfig) -> WorkingCalendar:
    return WorkingCalendar(config)


def move_to(dispute: Dispute, policy: Policy, stage_id: str, now: datetime, *, named_may_own: bool) -> None:
    current_entry(dispute).left_at = now
    dispute.stage = stage_id
    dispute.acknowledged_at = dispute.responded_at = None
    dispute.held_at = dispute.hold_review_on = None
    dispute.hold_remaining_working_days = dispute.hold_remaining_seconds = None
    enter_stage(dispute, policy, policy.any_stage(stage_id), now, named_may_own=named_may_own)


def named_owner(dispute: Dispute, stage: Stage) -> str | None:
    """The person a stage names, if any: the IRO for the IRO's stage, the team manager named at raise for a
    team manager's, the contact named for a partner ladder's named stage. Every other stage belongs to its
    owner role."""
    if stage.owner_role == EXTERNAL:
        return (dispute.contacts or {}).get(stage.id)
    if stage.owner_role == "iro":
        return dispute.iro_email
    if stage.owner_role == "team_manager":
        return dispute.team_manager_email
    return None


def enter_stage(
    dispute: Dispute, policy: Policy, stage: Stage, now: datetime, *, named_may_own: bool
) -> None:
    """Open a new stage entry: its owner and its deadlines, computed once and stored on the row.

    `named_may_own` is the caller's answer (it can ask the directory; this module does not) to whether the
    person the stage names is active and holds its role. When not, the stage goes to its owner role, so it
    is never left with someone who cannot act on it.
    """
    owner = named_owner(dispute, stage) if named_may_own else None
    dispute.owner_email, dispute.owner_role = owner, stage.owner_role
    dispute.stage_entry_seq += 1
    dispute.stage_entered_at = now
    if stage.respond_within is not None:
        deadline = calendar_for(policy.calendar).deadline(now, stage.respond_within)
        dispute.due_at, dispute.escalate_at = deadline.due_at, deadline.escalate_at
    else:
        dispute.due_at = dispute.escalate_at = None
    dispute.next_reminder_at = next_reminder(policy, stage, dispute.due_at, now)
    dispute.stage_entries.append(
        StageEntry(
            seq=dispute.stage_entry_seq,
            stage=stage.id,
            owner_email=owner,
            owner_role=stage.owner_role,
            entered_at=now,
            due_at=dispute.due_at,
            escalate_at=dispute.escalate_at,
        )
    )


def next_reminder(policy: Policy, stage: Stage, due_at: datetime | None, now: datetime) -> datetime | None:
    if due_at is None:
        return None
    calendar = calendar_for(policy.calendar)
    upcoming = sorted(t for t in (calendar.shift(due_at, r) for r in stage.reminders) if t > now)
    return upcoming[0] if upcoming else None


def after(policy: Policy, now: datetime, timescale: Timescale) -> datetime:
    return calendar_for(policy.calendar).deadline(now, timescale).due_at


def stop_clock(dispute: Dispute) -> None:
    dispute.escalate_at = dispute.next_reminder_at = None
    dispute.held_at = dispute.hold_review_on = None
    dispute.hold_remaining_working_days = dispute.hold_remaining_seconds = None


def current_entry(dispute: Dispute) -> StageEntry:
    """The visit the dispute is on now; its stage entries must have been loaded with it."""
    for entry in reversed(dispute.stage_entries):
        if entry.seq == dispute.stage_entry_seq:
            return entry
    raise LookupError(f"stage entry {dispute.stage_entry_seq} of {dispute.reference} is missing")


def sync_entry_deadline(dispute: Dispute) -> None:
    entry = current_entry(dispute)
    entry.due_at, entry.escalate_at = dispute.due_at, dispute.escalate_at


def reschedule(
    dispute: Dispute, policy: Policy, due_at: datetime | None, escalate_at: datetime | None, now: datetime
) -> None:
    """Move the current stage's deadlines, and its next reminder with them, on the row and its stage entry."""
    dispute.due_at, dispute.escalate_at = due_at, escalate_at
    dispute.next_reminder_at = next_reminder(policy, policy.any_stage(dispute.stage), due_at, now)
    sync_entry_deadline(dispute)
