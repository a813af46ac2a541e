"""Who is asking, what they are to a dispute, and what they may read."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, or_, select, true
from sqlalchemy.orm import Session

from dispute_service.errors import Forbidden, ReportForbidden, Unauthenticated
from dispute_service.models import Dispute, Person, StageEntry
from states.permissions import Relation

READ_ALL_ROLES = frozenset({"iro_manager", "admin"})
REPORT_READER_ROLES = ("iro_manager", "admin", "head_of_service", "assistant_director")


@dataclass(frozen=True)
class Actor:
    email: str
    roles: frozenset[str]
    channel: str = "api"


# The scheduler acts as nobody in the directory: no roles, never the IRO, never an owner.
SYSTEM = Actor("system", frozenset(), "scheduler")


def authenticate(session: Session, email: str, channel: str = "api") -> Actor:
    """The person a verified token or link names, with their roles as they are in this transaction."""
    person = session.scalar(select(Person).where(Person.email == email.strip().lower()))
    if person is None or not person.active:
        raise Unauthenticated("the token's person is unknown or inactive")
    return Actor(person.email, frozenset(person.roles), channel)


def is_owner(dispute: Dispute, actor: Actor) -> bool:
    if dispute.owner_email is not None:
        return dispute.owner_email == actor.email
    return dispute.owner_role in actor.roles


def relation_to(dispute: Dispute, actor: Actor) -> Relation:
    return Relation(
        roles=actor.roles, is_iro=dispute.iro_email == actor.email, is_owner=is_owner(dispute, actor)
    )


def acting_role(dispute: Dispute, actor: Actor) -> str | None:
    """The capacity recorded in the audit log; None for the scheduler, which holds no role."""
    if dispute.iro_email == actor.email:
        return "iro"
    if is_owner(dispute, actor):
        return dispute.owner_role
    for role in ("iro_manager", "admin"):
        if role in actor.roles:
            return role
    return next(iter(sorted(actor.roles)), None)


def readable_by(actor: Actor) -> ColumnElement[bool]:
    """Disputes this person may read: theirs as IRO, or any stage they have owned, or all for managers."""
    if actor.roles & READ_ALL_ROLES:
        return true()
    owned_a_stage = exists().where(
        StageEntry.dispute_id == Dispute.id,
        or_(
            StageEntry.owner_email == actor.email,
            and_(StageEntry.owner_email.is_(None), StageEntry.owner_role.in_(sorted(actor.roles))),
        ),
    )
    return or_(Dispute.iro_email == actor.email, owned_a_stage)


def require_admin(actor: Actor, action: str) -> None:
    """The staff directory and the email outbox are the admins'."""
    if "admin" not in actor.roles:
        raise Forbidden(action, "only an admin")


def require_report_reader(actor: Actor) -> None:
    """The annual report holds counts only, but it is for managers."""
    if not actor.roles & set(REPORT_READER_ROLES):
        raise ReportForbidden(actor.email, REPORT_READER_ROLES)
