"""The sweep: act on every deadline that has passed, exactly once, whatever happened to the process.

The dispute rows are the only source of truth. The sweep's queries only narrow; each timer then fires in a
transaction of its own, which claims the dispute's row and re-checks the deadline under the lock before
moving it through the same `transition` the API uses (as the system, channel `scheduler`), so a stale
claim, a second replica or a racing manual action can never fire twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from dispute_service.access import SYSTEM
from dispute_service.clock import Clock
from dispute_service.database import Sessions, reading
from dispute_service.disputes import transition
from dispute_service.errors import NotAllowedNow
from dispute_service.inputs import ActionInput
from dispute_service.models import Dispute
from dispute_service.policies import policy_for
from dispute_service.queries import load_stage_entries
from dispute_service.reminders import send_reminder
from dispute_service.stages import calendar_for
from states.policy import Policy
from states.vocabulary import State, Trigger

log = structlog.get_logger("dispute_service.sweep")

BATCH = 500
WATCHDOG_GRACE = timedelta(minutes=5)


@dataclass(frozen=True)
class Fired:
    dispute_id: uuid.UUID
    trigger: str
    scheduled_at: datetime
    committed_at: datetime


@dataclass
class SweepReport:
    fired: list[Fired] = field(default_factory=list)
    reminded: int = 0
    skipped: int = 0
    lag_seconds: float = 0.0
    next_due_at: datetime | None = None


def sweep(sessions: Sessions, policy: Policy, clock: Clock, *, batch: int = BATCH) -> SweepReport:
    """Escalate (or defer) every passed escalation and send every passed reminder, oldest first."""
    report = SweepReport()
    now = clock()
    # Keyset pages (time, id): a row that another replica holds, or that keeps failing, is passed over
    # rather than fetched again, so one sweep always ends and never starves the rows behind it.
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        due = _due_escalations(sessions, now, batch, after)
        if after is None and due:
            report.lag_seconds = max(0.0, (now - due[0][2]).total_seconds())
        for dispute_id, entry_seq, escalate_at in due:
            _escalate_one(sessions, policy, clock, dispute_id, entry_seq, escalate_at, report)
        if len(due) < batch:
            break
        after = (due[-1][2], due[-1][0])
    reminder_after: tuple[datetime, uuid.UUID] | None = None
    while True:
        reminders = _due_reminders(sessions, now, batch, reminder_after)
        for dispute_id, reminder_at in reminders:
            _remind_one(sessions, policy, clock, dispute_id, reminder_at, report)
        if len(reminders) < batch:
            break
        reminder_after = (reminders[-1][1], reminders[-1][0])
    report.next_due_at = next_due_at(sessions)
    return report


def _escalate_one(
    sessions: Sessions,
    policy: Policy,
    clock: Clock,
    dispute_id: uuid.UUID,
    entry_seq: int,
    escalate_at: datetime,
    report: SweepReport,
) -> None:
    try:
        with sessions.begin() as session:
            fired = fire_timer(session, policy, dispute_id, entry_seq, clock())
    except Exception:
        log.exception("sweep.escalation_failed", dispute_id=str(dispute_id))
        fired = None
    if fired is None:
        report.skipped += 1
    else:
        report.fired.append(Fired(dispute_id, fired, escalate_at, clock()))


def fire_timer(
    session: Session, policy: Policy, dispute_id: uuid.UUID, entry_seq: int, now: datetime
) -> Trigger | None:
    """Escalate the dispute whose deadline passed on stage entry `entry_seq`, or move the escalation on if
    its day has become non-working. None when there is nothing to do any more: another replica holds the
    row, or a manual action, an earlier sweep or a hold got there first."""
    dispute = session.scalar(
        select(Dispute)
        .where(
            Dispute.id == dispute_id,
            # One timeout per stage entry: a stale claim on an entry already left finds nothing.
            Dispute.stage_entry_seq == entry_seq,
            Dispute.state == State.AWAITING_RESPONSE.value,
            Dispute.escalate_at <= now,
        )
        # Another replica holding the row is already acting on it.
        .with_for_update(skip_locked=True, of=Dispute)
    )
    if dispute is None:
        return None
    load_stage_entries(session, dispute)
    trigger = (
        Trigger.DEFER
        if escalation_deferred_to(dispute, policy_for(session, dispute.policy_id, policy))
        else Trigger.TIMEOUT
    )
    try:
        transition(session, policy, dispute, trigger, SYSTEM, ActionInput(), now)
    except NotAllowedNow:
        return None
    return trigger


def escalation_deferred_to(dispute: Dispute, policy: Policy) -> datetime | None:
    """Where the escalation moves when its day has become non-working under the current calendar.

    Only working-day timescales move: an ISO-8601 duration is exact by design.
    """
    stage = policy.any_stage(dispute.stage)
    if (
        dispute.escalate_at is None
        or stage.respond_within is None
        or not stage.respond_within.is_working_days
    ):
        return None
    moved = calendar_for(policy.calendar).next_working_moment(dispute.escalate_at)
    return moved if moved != dispute.escalate_at else None


def _remind_one(
    sessions: Sessions,
    policy: Policy,
    clock: Clock,
    dispute_id: uuid.UUID,
    reminder_at: datetime,
    report: SweepReport,
) -> None:
    try:
        with sessions.begin() as session:
            sent = send_reminder(session, policy, dispute_id, reminder_at, clock())
    except Exception:
        log.exception("sweep.reminder_failed", dispute_id=str(dispute_id))
        sent = False
    report.reminded += sent
    report.skipped += not sent


def _due_escalations(
    sessions: Sessions, now: datetime, limit: int, after: tuple[datetime, uuid.UUID] | None
) -> list[tuple[uuid.UUID, int, datetime]]:
    query = select(Dispute.id, Dispute.stage_entry_seq, Dispute.escalate_at).where(
        Dispute.state == State.AWAITING_RESPONSE.value, Dispute.escalate_at <= now
    )
    if after is not None:
        query = query.where(tuple_(Dispute.escalate_at, Dispute.id) > tuple_(*after))
    with reading(sessions) as session:
        rows = session.execute(query.order_by(Dispute.escalate_at, Dispute.id).limit(limit)).all()
    return [(r[0], r[1], r[2]) for r in rows if r[2] is not None]


def _due_reminders(
    sessions: Sessions, now: datetime, limit: int, after: tuple[datetime, uuid.UUID] | None
) -> list[tuple[uuid.UUID, datetime]]:
    query = select(Dispute.id, Dispute.next_reminder_at).where(Dispute.next_reminder_at <= now)
    if after is not None:
        query = query.where(tuple_(Dispute.next_reminder_at, Dispute.id) > tuple_(*after))
    with reading(sessions) as session:
        rows = session.execute(query.order_by(Dispute.next_reminder_at, Dispute.id).limit(limit)).all()
    return [(r[0], r[1]) for r in rows if r[1] is not None]


def next_due_at(sessions: Sessions) -> datetime | None:
    """The earliest future moment the sweep has work, so the scheduler can wake for it."""
    with reading(sessions) as session:
        escalation = session.scalar(
            select(func.min(Dispute.escalate_at)).where(Dispute.state == State.AWAITING_RESPONSE.value)
        )
        reminder = session.scalar(select(func.min(Dispute.next_reminder_at)))
    times = [t for t in (escalation, reminder) if t is not None]
    return min(times) if times else None


def overdue_deadlines(session: Session, now: datetime, grace: timedelta = WATCHDOG_GRACE) -> int:
    """Deadlines more than `grace` past that nothing has acted on: the watchdog's one number."""
    escalations = session.scalar(
        select(func.count()).where(
            Dispute.state == State.AWAITING_RESPONSE.value, Dispute.escalate_at < now - grace
        )
    )
    reminders = session.scalar(select(func.count()).where(Dispute.next_reminder_at < now - grace))
    return int(escalations or 0) + int(reminders or 0)


def watchdog(sessions: Sessions, now: datetime, on_overdue: Callable[[int], None] | None = None) -> int:
    with reading(sessions) as session:
        overdue = overdue_deadlines(session, now)
    if overdue:
        log.error("watchdog.deadlines_overdue", overdue=overdue, grace_seconds=WATCHDOG_GRACE.total_seconds())
    if on_overdue is not None:
        on_overdue(overdue)
    return overdue
