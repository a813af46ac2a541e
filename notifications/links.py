"""Single-use action links. The token is random and opaque; only its keyed hash is stored. A link is bound
to one person, one dispute, one trigger and one stage entry, and is consumed in the action's transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dispute_service import disputes
from dispute_service.access import Actor, authenticate_link_person, relation_to
from dispute_service.errors import DomainError, LinkExpired, LinkNotFound, LinkStale, LinkUsed
from dispute_service.inputs import ActionInput
from dispute_service.models import ActionLink, Dispute
from dispute_service.policies import policy_for
from dispute_service.queries import readable_dispute
from dispute_service.stages import calendar_for
from states.policy import Policy
from states.vocabulary import IRO_LINK_TRIGGERS, OWNER_LINK_TRIGGERS, Trigger

# Long enough that guessing is hopeless, short enough to survive being wrapped by a mail scanner.
TOKEN_BYTES = 32


def token_hash(secret: str, token: str) -> str:
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def issue(
    session: Session,
    secret: str,
    *,
    person_email: str,
    dispute: Dispute,
    trigger: str,
    expires_at: datetime,
    now: datetime,
) -> str:
    """Create a link inside the caller's transaction and return its token (which is never stored)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        ActionLink(
            token_hash=token_hash(secret, token),
            person_email=person_email,
            dispute_id=dispute.id,
            trigger=trigger,
            stage_entry_seq=dispute.stage_entry_seq,
            expires_at=expires_at,
            created_at=now,
        )
    )
    return token


def expiry(dispute: Dispute, policy: Policy, trigger: str, now: datetime) -> datetime:
    """`link_valid_after_due` after the stage's due date; a reopen link lasts for the reopen window."""
    if trigger == Trigger.REOPEN and dispute.reopen_until is not None:
        return dispute.reopen_until
    base = dispute.due_at or now
    return calendar_for(policy.calendar).deadline(base, policy.rules.link_valid_after_due).due_at


@dataclass(frozen=True)
class LinkView:
    """What a link page shows: the dispute by reference only, and what the action will do."""

    trigger: str
    person_email: str
    reference: str
    child_ref: str
    stage: str
    stage_title: str
    dispute_id: uuid.UUID


def inspect(session: Session, policy: Policy, secret: str, token: str, now: datetime) -> LinkView:
    """Check a link without changing anything (mail scanners open every link)."""
    link, dispute = usable(session, secret, token, now)
    dispute_policy = policy_for(session, dispute.policy_id, policy)
    return LinkView(
        trigger=link.trigger,
        person_email=link.person_email,
        reference=dispute.reference,
        child_ref=dispute.child_ref,
        stage=dispute.stage,
        stage_title=dispute_policy.any_stage(dispute.stage).title,
        dispute_id=dispute.id,
    )


def usable(session: Session, secret: str, token: str, now: datetime) -> tuple[ActionLink, Dispute]:
    """The link and its dispute, when the link could still be used now; else the link's refusal (unknown,
    used, stale or expired)."""
    link = _find(session, secret, token)
    dispute = session.get(Dispute, link.dispute_id)
    if dispute is None:
        raise LinkNotFound()
    _check_state(link, dispute, now)
    return link, dispute


def use(session: Session, policy: Policy, secret: str, token: str, data: ActionInput, now: datetime) -> None:
    """Apply the link's action as its person, channel `email_link`, and consume the link: both in the
    caller's transaction, so the link is used exactly when the action commits, and stays unused when the
    action is refused."""
    link = _find(session, secret, token)
    actor = authenticate_link_person(session, link.person_email)
    dispute = readable_dispute(session, link.dispute_id, actor, for_change=True)
    # Checked under the row lock: another POST, or a move of the dispute, may have come first.
    _check_state(link, dispute, now)
    disputes.act(session, policy, dispute, link.trigger, actor, data, now)
    # Single use is enforced by the database: only one transaction can flip used_at from NULL.
    consumed = session.execute(
        update(ActionLink).where(ActionLink.id == link.id, ActionLink.used_at.is_(None)).values(used_at=now)
    )
    if consumed.rowcount != 1:  # type: ignore[attr-defined]
        raise LinkUsed()


def _find(session: Session, secret: str, token: str) -> ActionLink:
    link = session.scalar(select(ActionLink).where(ActionLink.token_hash == token_hash(secret, token)))
    if link is None:
        raise LinkNotFound()
    return link


def _check_state(link: ActionLink, dispute: Dispute, now: datetime) -> None:
    if link.used_at is not None:
        raise LinkUsed()
    if link.stage_entry_seq != dispute.stage_entry_seq:
        raise LinkStale(dispute.reference)
    if now > link.expires_at:
        raise LinkExpired()


def link_actor(session: Session, email: str) -> Actor | None:
    """The link's person as the service knows them now (staff, or an active external contact), or None."""
    try:
        return authenticate_link_person(session, email)
    except DomainError:
        return None


def still_bound(session: Session, email: str, dispute_id: uuid.UUID, trigger: str) -> bool:
    """Whether the link's person is still active and still what the link was sent to them as: the stage's
    owner for an owner's action, the dispute's IRO for the IRO's. Nobody else is shown the dispute, nor
    sent a code or a fresh link for it."""
    actor = link_actor(session, email)
    if actor is None:
        return False
    try:
        dispute = readable_dispute(session, dispute_id, actor, for_change=False)
    except DomainError:
        return False
    relation = relation_to(dispute, actor)
    return (relation.is_owner and trigger in OWNER_LINK_TRIGGERS) or (
        relation.is_iro and trigger in IRO_LINK_TRIGGERS
    )
