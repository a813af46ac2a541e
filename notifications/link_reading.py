"""Reading a dispute by its email link (SPEC 10, "Reading by link").

Acting through a link needs only the link. Reading the dispute's texts (its summary and the IRO's latest
reason) on the link's page needs a one-time code as well, sent in an email of its own: an action email
that was forwarded, or read over someone's shoulder, then shows no free text. A right code opens a link
session of 30 minutes, named by a cookie. A person whose link expired while its stage still waits for
them can ask for a fresh one at /links/renew.

Secrets are never stored and never queued: the code and the fresh links are made by the dispatcher when it
sends the email, as every email's links are (`email_content`); the rows hold their keyed hashes only.
Nothing here reads partner ladders: a link's person is whoever the link names, staff or, later, contact.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from dispute_service import outbox
from dispute_service.access import Actor, authenticate_link_person, relation_to
from dispute_service.clock import Clock
from dispute_service.config import Settings
from dispute_service.database import Sessions, reading
from dispute_service.errors import DomainError, LinkCodeExpired, LinkCodeWrong, LinkLocked, LinkNotBound
from dispute_service.models import (
    ActionLink,
    AuditEntry,
    Dispute,
    LinkCode,
    LinkSession,
    Notification,
    RenewalRequest,
)
from dispute_service.policies import policy_for
from dispute_service.queries import audit_log, get_dispute, situation_of
from dispute_service.stages import after
from notifications import links
from notifications.render import LINK_LABELS, EmailContent, Link
from states.machine import Request, machine_for
from states.permissions import allowed_actions
from states.policy import Policy
from states.vocabulary import Role, Trigger

log = structlog.get_logger("notifications.link_reading")

CODE_TEMPLATE = "link_code"
RENEWAL_TEMPLATE = "link_renewal"
TEMPLATES = (CODE_TEMPLATE, RENEWAL_TEMPLATE)

CODE_DIGITS = 6
CODE_LIFETIME = timedelta(minutes=15)
# Wrong codes a link survives, counted across the codes sent for it (a new code does not reset the count,
# or asking for codes would buy guesses).
CODE_TRIES = 5
SESSION_LIFETIME = timedelta(minutes=30)
SESSION_TOKEN_BYTES = 32


def _keyed(secret: str, purpose: str, value: str) -> str:
    return hmac.new(secret.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def code_hash(secret: str, link_id: int, code: str) -> str:
    # Keyed by the link too: a code is worth nothing on another link, and equal codes hash differently.
    return _keyed(secret, f"link-code:{link_id}", code)


def session_hash(secret: str, token: str) -> str:
    return _keyed(secret, "link-session", token)


@dataclass(frozen=True)
class LinkTexts:
    """What a live link session shows: the dispute's summary and the IRO's latest reason, if any."""

    reference: str
    summary: str
    iro_reason: str | None


@dataclass(frozen=True)
class CodeResult:
    """A right code's link session token; or why not. A wrong code is answered by value, not raised, so
    its counted try commits with the caller's transaction."""

    session_token: str | None = None
    refusal: DomainError | None = None


def live_link(session: Session, secret: str, token: str, now: datetime) -> ActionLink:
    """The link, when it could still be used and its person still holds the part it was sent for; else
    the link's refusal (unknown, used, stale, expired, or no longer theirs)."""
    link, _ = links.usable(session, secret, token, now)
    if not links.still_bound(session, link.person_email, link.dispute_id, link.trigger):
        raise LinkNotBound()
    return link


def _latest_seq(session: Session, dispute: Dispute) -> int:
    # The outbox row names the audit entry it follows; a code or a renewal follows the latest.
    return session.scalar(select(func.max(AuditEntry.seq)).where(AuditEntry.dispute_id == dispute.id)) or 0


def send_code(session: Session, secret: str, token: str, now: datetime) -> None:
    """Queue an email to the link's person with a one-time code (made when it is sent) and the dispute's
    reference, nothing else. The link must still be usable: a code for a spent link opens nothing."""
    link = live_link(session, secret, token, now)
    dispute = session.get(Dispute, link.dispute_id)
    assert dispute is not None
    outbox.queue(
        session,
        dispute,
        audit_seq=_latest_seq(session, dispute),
        template=CODE_TEMPLATE,
        recipients=[link.person_email],
        now=now,
        # Every request is an email of its own: a new code replaces the one before.
        occasion=f"link_code:{link.id}:{uuid.uuid4().hex}",
        extra={"link_id": link.id},
    )
    log.info("link.code_requested", link_id=link.id, dispute_id=str(dispute.id))


def mint_code(session: Session, secret: str, link_id: int, now: datetime) -> str:
    """Make the code an email is about to carry, replacing any earlier unused one, and store its hash."""
    earlier = session.scalars(
        select(LinkCode).where(LinkCode.link_id == link_id, LinkCode.used_at.is_(None))
    ).all()
    tries = max((c.tries for c in earlier), default=0)
    session.execute(delete(LinkCode).where(LinkCode.link_id == link_id, LinkCode.used_at.is_(None)))
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    session.add(
        LinkCode(
            link_id=link_id,
            code_hash=code_hash(secret, link_id, code),
            created_at=now,
            expires_at=now + CODE_LIFETIME,
            tries=tries,
        )
    )
    return code


def enter_code(session: Session, secret: str, token: str, code: str, now: datetime) -> CodeResult:
    """The right code, once and within 15 minutes, opens a link session of 30 minutes. A wrong one counts
    a try; the fifth wrong try spends the link, so guessing ends there."""
    link = live_link(session, secret, token, now)
    waiting = session.scalar(
        select(LinkCode)
        .where(LinkCode.link_id == link.id, LinkCode.used_at.is_(None))
        .order_by(LinkCode.id.desc())
        .limit(1)
        .with_for_update()
    )
    if waiting is None or now > waiting.expires_at:
        raise LinkCodeExpired()
    if not hmac.compare_digest(code_hash(secret, link.id, code.strip()), waiting.code_hash):
        # Counted in the database, so two wrong tries at once count as two.
        session.execute(update(LinkCode).where(LinkCode.id == waiting.id).values(tries=LinkCode.tries + 1))
        session.refresh(waiting, ["tries"])
        if waiting.tries >= CODE_TRIES:
            session.execute(
                update(ActionLink)
                .where(ActionLink.id == link.id, ActionLink.used_at.is_(None))
                .values(used_at=now)
            )
            session.execute(update(LinkCode).where(LinkCode.id == waiting.id).values(used_at=now))
            log.warning("link.locked", link_id=link.id, dispute_id=str(link.dispute_id))
            return CodeResult(refusal=LinkLocked())
        log.info("link.code_wrong", link_id=link.id, tries=waiting.tries)
        return CodeResult(refusal=LinkCodeWrong(CODE_TRIES - waiting.tries))
    # Single use is enforced by the database: only one transaction can flip used_at from NULL.
    used = session.execute(
        update(LinkCode).where(LinkCode.id == waiting.id, LinkCode.used_at.is_(None)).values(used_at=now)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        raise LinkCodeExpired()
    session_token = secrets.token_urlsafe(SESSION_TOKEN_BYTES)
    session.add(
        LinkSession(
            token_hash=session_hash(secret, session_token),
            link_id=link.id,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    log.info("link.session_opened", link_id=link.id, dispute_id=str(link.dispute_id))
    return CodeResult(session_token=session_token)


def read_texts(
    session: Session, policy: Policy, secret: str, token: str, session_token: str | None, now: datetime
) -> LinkTexts | None:
    """The dispute's texts, when `session_token` names a live link session of this very link; else None.
    The link's own refusals (used, stale, expired, not theirs) are raised, as the link page gives them."""
    link = live_link(session, secret, token, now)
    if not session_token:
        return None
    found = session.scalar(
        select(LinkSession.id).where(
            LinkSession.token_hash == session_hash(secret, session_token),
            LinkSession.link_id == link.id,
            LinkSession.expires_at > now,
        )
    )
    if found is None:
        return None
    # Staff or an external contact (SPEC 10): whoever the link was sent to, as the link page found them.
    actor = authenticate_link_person(session, link.person_email)
    # Through the reads every other reader uses, which log who read what.
    snapshot = get_dispute(session, policy, link.dispute_id, actor, now)
    return LinkTexts(
        reference=snapshot.dispute.reference,
        summary=snapshot.summary,
        iro_reason=_latest_iro_reason(session, link.dispute_id, actor),
    )


def _latest_iro_reason(session: Session, dispute_id: uuid.UUID, actor: Actor) -> str | None:
    for entry, texts in reversed(audit_log(session, dispute_id, actor)):
        if entry.actor_role != Role.IRO:
            continue
        reasons = [t.body for t in texts if t.kind == "reason" and t.redacted_at is None]
        if reasons:
            return reasons[0]
    return None


def request_renewal(session: Session, email: str, now: datetime) -> None:
    """What /links/renew does for any address, known or not: one row, so that its answer takes as long
    either way. The dispatcher answers the row with `renew_requested` before it sends."""
    session.add(RenewalRequest(email=email.strip().lower(), requested_at=now))


def renew_requested(sessions: Sessions, policy: Policy, clock: Clock) -> int:
    """Answer the waiting renewal requests, oldest first, each in the transaction that deletes it: a crash
    leaves the request to the next run, and a request is never answered twice. Returns how many."""
    answered = 0
    while True:
        # Nearly every dispatch finds none: a read, which takes no write lock, says so.
        with reading(sessions) as session:
            if session.scalar(select(RenewalRequest.id).limit(1)) is None:
                return answered
        with sessions.begin() as session:
            request = session.scalars(
                select(RenewalRequest)
                .order_by(RenewalRequest.id)
                .limit(1)
                # Another replica's dispatcher takes the next one.
                .with_for_update(skip_locked=True)
            ).first()
            if request is None:
                return answered
            renew(session, policy, request.email, clock())
            session.delete(request)
        answered += 1


def renew(session: Session, policy: Policy, email: str, now: datetime) -> int:
    """For each dispute with an unused link of this address that expired while its stage still waits for
    the person, queue one email to them with fresh links for those actions (made when it is sent). An
    unknown address, or one with nothing to renew, queues nothing: the caller answers the same either way.
    Returns how many emails were queued, for the tests and the log."""
    address = email.strip().lower()
    expired = session.scalars(
        select(ActionLink)
        .where(
            ActionLink.person_email == address,
            ActionLink.used_at.is_(None),
            ActionLink.expires_at < now,
        )
        .order_by(ActionLink.dispute_id, ActionLink.id)
    ).all()
    by_dispute: dict[uuid.UUID, list[ActionLink]] = {}
    for link in expired:
        by_dispute.setdefault(link.dispute_id, []).append(link)
    queued = 0
    for dispute_id, found in by_dispute.items():
        dispute = session.get(Dispute, dispute_id)
        if dispute is None:
            continue
        triggers = [
            t
            for t in _renewable(session, policy, dispute, address, found, now)
            if not _has_live_link(session, address, dispute, t, now)
        ]
        if not triggers:
            continue
        outbox.queue(
            session,
            dispute,
            audit_seq=_latest_seq(session, dispute),
            template=RENEWAL_TEMPLATE,
            recipients=[address],
            now=now,
            occasion=f"link_renewal:{uuid.uuid4().hex}",
            extra={"renew_triggers": triggers},
        )
        queued += 1
        log.info("link.renewal_queued", dispute_id=str(dispute.id), links=len(triggers))
    return queued


def _renewable(
    session: Session, policy: Policy, dispute: Dispute, email: str, found: Iterable[ActionLink], now: datetime
) -> list[str]:
    """The triggers of these expired links whose stage entry is still the dispute's, whose person still
    holds their part in it, and which they may still use now (a fresh link would only be refused)."""
    actor = links.link_actor(session, email)
    if actor is None:
        return []
    allowed = _allowed(session, policy, dispute, actor, now)
    return list(
        dict.fromkeys(
            link.trigger
            for link in found
            if link.stage_entry_seq == dispute.stage_entry_seq
            and link.trigger in allowed
            and links.still_bound(session, email, dispute.id, link.trigger)
        )
    )


def _allowed(session: Session, policy: Policy, dispute: Dispute, actor: Actor, now: datetime) -> set[str]:
    dispute_policy = policy_for(session, dispute.policy_id, policy)
    return set(
        allowed_actions(
            machine_for(dispute_policy), situation_of(dispute), relation_to(dispute, actor), Request(now=now)
        )
    )


def _has_live_link(session: Session, email: str, dispute: Dispute, trigger: str, now: datetime) -> bool:
    # A renewal already sent and not yet used: asking again sends nothing more.
    return (
        session.scalar(
            select(ActionLink.id)
            .where(
                ActionLink.person_email == email,
                ActionLink.dispute_id == dispute.id,
                ActionLink.trigger == trigger,
                ActionLink.stage_entry_seq == dispute.stage_entry_seq,
                ActionLink.used_at.is_(None),
                ActionLink.expires_at >= now,
            )
            .limit(1)
        )
        is not None
    )


def renewed_expiry(dispute: Dispute, policy: Policy, trigger: str, now: datetime) -> datetime:
    """A fresh link lasts as long as a link sent now would, and at least `link_valid_after_due` from now:
    its stage's due date may be long past (which is why the first one expired)."""
    usual = links.expiry(dispute, policy, trigger, now)
    if trigger == Trigger.REOPEN:
        return usual  # the reopen window is the reopen window
    return max(usual, after(policy, now, policy.rules.link_valid_after_due))


def email_content(
    session: Session,
    dispute: Dispute,
    policy: Policy,
    settings: Settings,
    row: Notification,
    actor: Actor,
    now: datetime,
) -> EmailContent:
    """What a code or renewal email shows, made as it is sent: the code, or the fresh links; and the
    dispute's reference. Nothing else (no child reference, no stage, no date)."""
    code: str | None = None
    made: list[Link] = []
    if row.template == CODE_TEMPLATE:
        code = mint_code(session, settings.link_secret, int(row.context["link_id"]), now)
    else:
        allowed = _allowed(session, policy, dispute, actor, now) if actor.roles else set()
        base = settings.public_base_url.rstrip("/")
        for trigger in row.context.get("renew_triggers", []):
            # The dispute may have moved on since the renewal was asked for: then there is nothing to offer.
            if row.context.get("stage_entry_seq") != dispute.stage_entry_seq or trigger not in allowed:
                continue
            token = links.issue(
                session,
                settings.link_secret,
                person_email=actor.email,
                dispute=dispute,
                trigger=trigger,
                expires_at=renewed_expiry(dispute, policy, trigger, now),
                now=now,
            )
            made.append(Link(LINK_LABELS[Trigger(trigger)], f"{base}/links/{token}"))
    return EmailContent(
        reference=dispute.reference,
        child_ref="",
        stage_title="",
        due_words=None,
        reopen_words=None,
        is_owner=False,
        is_iro=False,
        links=tuple(made),
        code=code,
    )
