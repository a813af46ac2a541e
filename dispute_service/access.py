"""Who is asking, and what they are to a dispute."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, or_, select, true
from sqlalchemy.orm import Session

from dispute_service.errors import Unauthenticated
from dispute_service.models import Dispute, Person, StageEntry
from states.access import Relation

SYSTEM_EMAIL = "system"
READ_ALL_ROLES = frozenset({"iro_manager", "admin"})


@dataclass(frozen=True)
class Actor:
    email: str
    roles: frozenset[str]
    channel: str = "api"

    @property
    def is_system(self) -> bool:
        return self.email == SYSTEM_EMAIL


def system_actor(channel: str = "scheduler") -> Actor:
    return Actor(SYSTEM_EMAIL, frozenset(), channel)


def authenticate(session: Session, email: str, channel: str = "api") -> Actor:
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
    """The capacity recorded in the audit log."""
    if actor.is_system:
        return None
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


def can_read(session: Session, dispute: Dispute, actor: Actor) -> bool:
    if actor.is_system:
        return True
    return bool(session.scalar(select(Dispute.id).where(Dispute.id == dispute.id, readable_by(actor))))
