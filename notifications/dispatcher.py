"""The outbox dispatcher: sends queued notifications after their transaction committed.

Each row is claimed first (its attempt counted and its next attempt pushed back), then rendered with fresh
action links, sent, and marked sent. A crash at any point leaves the row pending, so it is sent again
later with the same Message-ID: nothing is lost, and a resend is recognisably the same email.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from dispute_service.access import Actor, authenticate_link_person, relation_to
from dispute_service.clock import Clock
from dispute_service.config import Settings
from dispute_service.database import Sessions
from dispute_service.errors import Unauthenticated
from dispute_service.models import Dispute, Notification
from dispute_service.policies import policy_for
from dispute_service.queries import situation_of
from dispute_service.stages import calendar_for
from notifications import link_reading, links
from notifications.render import LINK_LABELS, EmailContent, Link, build_message, render
from states.calendar import format_due_words
from states.machine import Request, machine_for
from states.permissions import allowed_actions
from states.policy import Policy
from states.vocabulary import IRO_LINK_TRIGGERS, OWNER_LINK_TRIGGERS

log = structlog.get_logger("notifications.dispatcher")

Send = Callable[[EmailMessage], None]
BATCH = 50


@dataclass
class DispatchReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """Exponential: base, 2x, 4x ... capped at an hour."""
    return timedelta(seconds=min(3600.0, base_seconds * 2 ** max(0, attempts - 1)))


def dispatch(
    sessions: Sessions, policy: Policy, settings: Settings, send: Send, clock: Clock, *, batch: int = BATCH
) -> DispatchReport:
    report = DispatchReport()
    # Renewals asked for at /links/renew queue their emails here, so that this run sends them too.
    link_reading.renew_requested(sessions, policy, clock)
    while True:
        claimed = _claim(sessions, clock(), batch, settings.mail_claim_seconds)
        for notification_id in claimed:
            _deliver(sessions, policy, settings, send, clock, notification_id, report)
        if len(claimed) < batch:
            return report


def _claim(sessions: Sessions, now: datetime, batch: int, lease_seconds: float) -> list[int]:
    """Count the attempt and lease the row: nobody else sends it until the lease runs out, which is long
    enough for a slow SMTP conversation; a crash mid-send leaves it to be sent again after the lease."""
    with sessions.begin() as session:
        rows = session.scalars(
            select(Notification)
            .where(Notification.status == "pending", Notification.next_attempt_at <= now)
            .order_by(Notification.id)
            .limit(batch)
            # Another replica's dispatcher skips what this one holds.
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            row.attempts += 1
            row.next_attempt_at = now + timedelta(seconds=lease_seconds)
        return [row.id for row in rows]


def _deliver(
    sessions: Sessions,
    policy: Policy,
    settings: Settings,
    send: Send,
    clock: Clock,
    notification_id: int,
    report: DispatchReport,
) -> None:
    # A failure is one line in the log, per attempt, naming the error: the same bad address or refusing
    # server would otherwise print the same traceback at every retry.
    try:
        message, template = compose(sessions, policy, settings, notification_id, clock())
    except Exception as exc:  # a recipient no header can hold, say: keep the row and try again later
        _record_failure(
            sessions, settings, clock(), notification_id, f"could not render: {_named(exc)}", report
        )
        return
    try:
        send(message)
    except Exception as exc:  # any SMTP or network failure: keep the row and try again later
        _record_failure(sessions, settings, clock(), notification_id, _named(exc), report)
        return
    with sessions.begin() as session:
        row = session.get(Notification, notification_id)
        assert row is not None
        row.status, row.sent_at, row.last_error = "sent", clock(), None
    report.sent += 1
    log.info(
        "notification.sent",
        notification_id=notification_id,
        template=template,
        message_id=message["Message-ID"],
    )


def _named(exc: Exception) -> str:
    # On one line: the text can hold the recipient, and a bad one can hold a line break.
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def _record_failure(
    sessions: Sessions,
    settings: Settings,
    now: datetime,
    notification_id: int,
    error: str,
    report: DispatchReport,
) -> None:
    with sessions.begin() as session:
        row = session.get(Notification, notification_id)
        assert row is not None
        row.last_error = error
        row.next_attempt_at = now + backoff(row.attempts, settings.mail_retry_seconds)
        if row.attempts >= settings.mail_max_attempts:
            row.status = "failed"
            report.failed += 1
            log.error(
                "notification.failed", notification_id=notification_id, attempts=row.attempts, error=error
            )
        else:
            report.retried += 1
            log.warning(
                "notification.retry", notification_id=notification_id, attempts=row.attempts, error=error
            )


def compose(
    sessions: Sessions, policy: Policy, settings: Settings, notification_id: int, now: datetime
) -> tuple[EmailMessage, str]:
    """Render one notification for its recipient, creating the action links they may use now."""
    with sessions.begin() as session:
        row = session.get(Notification, notification_id)
        assert row is not None
        dispute = session.get(Dispute, row.dispute_id)
        assert dispute is not None
        dispute_policy = policy_for(session, dispute.policy_id, policy)
        tz = calendar_for(dispute_policy.calendar).tz
        stage_id = str(row.context.get("stage", dispute.stage))
        try:
            stage_title = dispute_policy.any_stage(stage_id).title
        except KeyError:
            stage_title = stage_id
        due = row.context.get("due_at")
        actor = _recipient(session, row.recipient)
        relation = relation_to(dispute, actor)
        if row.template in link_reading.TEMPLATES:
            # Their code or fresh links are made now, as every email's links are: no secret is queued.
            content = link_reading.email_content(session, dispute, dispute_policy, settings, row, actor, now)
        else:
            content = EmailContent(
                reference=dispute.reference,
                child_ref=dispute.child_ref,
                their_reference=dispute.their_reference,
                stage_title=stage_title,
                due_words=f"by {format_due_words(datetime.fromisoformat(due), tz)}" if due else None,
                reopen_words=(
                    f"until {format_due_words(dispute.reopen_until, tz)}"
                    if row.template == "resolved" and dispute.reopen_until
                    else None
                ),
                is_owner=relation.is_owner,
                is_iro=relation.is_iro,
                links=_links(session, dispute, dispute_policy, settings, row, actor, now),
            )
        subject, text, html = render(row.template, content)
        message = build_message(
            sender=settings.mail_from,
            recipient=row.recipient,
            message_id=row.message_id,
            subject=subject,
            text=text,
            html=html,
        )
        return message, row.template


def _recipient(session: Session, email: str) -> Actor:
    """The recipient as their links will find them: staff with their roles, an active external contact with
    the pseudo role `external`; anyone else holds nothing, and is offered no links."""
    try:
        return authenticate_link_person(session, email)
    except Unauthenticated:
        return Actor(email, frozenset())


def _links(
    session: Session,
    dispute: Dispute,
    policy: Policy,
    settings: Settings,
    row: Notification,
    actor: Actor,
    now: datetime,
) -> tuple[Link, ...]:
    # An email about a stage the dispute has since left offers no actions: they would be refused anyway.
    if row.context.get("stage_entry_seq") != dispute.stage_entry_seq or not actor.roles:
        return ()
    relation = relation_to(dispute, actor)
    offered = (OWNER_LINK_TRIGGERS if relation.is_owner else ()) + (
        IRO_LINK_TRIGGERS if relation.is_iro else ()
    )
    allowed = set(allowed_actions(machine_for(policy), situation_of(dispute), relation, Request(now=now)))
    made = []
    for trigger in dict.fromkeys(offered):
        if trigger not in allowed:
            continue
        token = links.issue(
            session,
            settings.link_secret,
            person_email=actor.email,
            dispute=dispute,
            trigger=trigger,
            expires_at=links.expiry(dispute, policy, trigger, now),
            now=now,
        )
        made.append(Link(LINK_LABELS[trigger], f"{settings.public_base_url.rstrip('/')}/links/{token}"))
    return tuple(made)
