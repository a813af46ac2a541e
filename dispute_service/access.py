"""Who is asking, what they are to a dispute, and what they may read."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import BindParameter, ColumnElement, Select, bindparam, exists, or_, select, true, union
from sqlalchemy.orm import Session, aliased

from dispute_service.errors import Forbidden, ReportForbidden, Unauthenticated
from dispute_service.models import Contact, Dispute, Person, StageEntry
from states.permissions import Relation
from states.vocabulary import EXTERNAL

READ_ALL_ROLES = frozenset({"iro_manager", "admin"})
REPORT_READER_ROLES = ("iro_manager", "admin", "head_of_service", "assistant_director")


@dataclass(frozen=True)
class Actor:
    email: str
    roles: frozenset[str]
    channel: str = "api"


# The scheduler acts as nobody in the directory: no roles, never the IRO, never an owner.
SYSTEM = Actor("system", frozenset(), "scheduler")


# Built once: every request runs it, and a statement built afresh is compiled-cache-keyed afresh too.
_PERSON_BY_EMAIL = select(Person.email, Person.roles, Person.active).where(Person.email == bindparam("email"))


def authenticate(session: Session, email: str, channel: str = "api") -> Actor:
    """The person a verified token or link names, with their roles as they are in this transaction.

    Only the staff directory is read: an external contact (`dispute_service.partners`) holds no role and is
    never found here, so their token and their sign-in are refused like a stranger's."""
    person = session.execute(_PERSON_BY_EMAIL, {"email": email.strip().lower()}).first()
    if person is None or not person.active:
        raise Unauthenticated("the token's person is unknown or inactive")
    return Actor(person.email, frozenset(person.roles), channel)


_CONTACT_BY_EMAIL = select(Contact.email, Contact.active).where(Contact.email == bindparam("email"))


def authenticate_link_person(session: Session, email: str) -> Actor:
    """The person an email link was sent to: someone in the staff directory, as `authenticate` finds them,
    or an active external contact, who holds only the pseudo role `external` (SPEC 10). Only links come
    here: a bearer token or a sign-in still goes through `authenticate`, which never finds a contact."""
    try:
        return authenticate(session, email, channel="email_link")
    except Unauthenticated:
        contact = session.execute(_CONTACT_BY_EMAIL, {"email": email.strip().lower()}).first()
        if contact is None or not contact.active:
            raise
        return Actor(contact.email, frozenset({EXTERNAL}), "email_link")


def is_iro(dispute: Dispute, actor: Actor) -> bool:
    """The dispute's IRO, while they still hold the iro role: losing it ends their part in the dispute."""
    return dispute.iro_email == actor.email and "iro" in actor.roles


def is_owner(dispute: Dispute, actor: Actor) -> bool:
    """The current stage's owner, through its owner role held now: a named person who has since lost the
    role owns nothing, so a stage handed over before a change of job does not keep its rights."""
    if dispute.owner_role not in actor.roles:
        return False
    if dispute.owner_role == EXTERNAL:
        # A partner's stage belongs to the one contact named for it, never to every contact.
        return dispute.owner_email == actor.email
    return dispute.owner_email is None or dispute.owner_email == actor.email


def relation_to(dispute: Dispute, actor: Actor) -> Relation:
    return Relation(
        roles=actor.roles,
        is_iro=is_iro(dispute, actor),
        is_owner=is_owner(dispute, actor),
        named_stage=dispute.owner_role == EXTERNAL,
    )


def acting_role(dispute: Dispute, actor: Actor) -> str | None:
    """The capacity recorded in the audit log, always a role the actor holds; None for the scheduler."""
    if is_iro(dispute, actor):
        return "iro"
    if is_owner(dispute, actor):
        return dispute.owner_role
    for role in ("iro_manager", "admin"):
        if role in actor.roles:
            return role
    return next(iter(sorted(actor.roles)), None)


def readable_by(actor: Actor) -> ColumnElement[bool]:
    """Disputes this person may read: theirs as IRO, or any stage they have owned, or all for managers.

    Each through a role they hold now, as `relation_to` decides, so the list and the single read agree with
    what the person may do. For a list, as the set of their disputes' ids, which indexes answer (the IRO's
    email, a stage entry's owner): the same rule written as `readable_clause` writes it, a test per row, made
    the database test every dispute, a second for an IRO's first page among 100,000.
    """
    kind = reader_kind(actor)
    if kind == "all":
        return true()
    roles = sorted(actor.roles)
    theirs: list[Select[uuid.UUID]] = [
        select(StageEntry.dispute_id).where(
            StageEntry.owner_role.in_(roles), StageEntry.owner_email == actor.email
        ),
        select(StageEntry.dispute_id).where(
            StageEntry.owner_role.in_(roles), StageEntry.owner_email.is_(None)
        ),
    ]
    if kind == "iro":
        as_iro = aliased(Dispute)
        theirs.append(select(as_iro.id).where(as_iro.iro_email == actor.email))
    return Dispute.id.in_(union(*theirs))


ReaderKind = Literal["all", "iro", "owner"]


def reader_kind(actor: Actor) -> ReaderKind:
    if actor.roles & READ_ALL_ROLES:
        return "all"
    return "iro" if "iro" in actor.roles else "owner"


def reader_params(actor: Actor) -> dict[str, Any]:
    """The values `readable_clause` leaves to be bound: the reader's email and roles."""
    return {"reader_email": actor.email, "reader_roles": sorted(actor.roles)}


@functools.cache
def readable_clause(kind: ReaderKind) -> ColumnElement[bool]:
    """`readable_by` for every reader of one kind, with their email and roles left as parameters: built
    once, so a statement that holds it can be built once too."""
    if kind == "all":
        return true()
    email: BindParameter[str] = bindparam("reader_email")
    roles: BindParameter[list[str]] = bindparam("reader_roles", expanding=True)
    owned_a_stage = exists().where(
        StageEntry.dispute_id == Dispute.id,
        StageEntry.owner_role.in_(roles),
        or_(StageEntry.owner_email == email, StageEntry.owner_email.is_(None)),
    )
    if kind == "owner":
        return owned_a_stage
    return or_(Dispute.iro_email == email, owned_a_stage)


def require_admin(actor: Actor, action: str) -> None:
    """The staff directory and the email outbox are the admins'."""
    if "admin" not in actor.roles:
        raise Forbidden(action, "only an admin")


def require_report_reader(actor: Actor) -> None:
    """The annual report holds counts only, but it is for managers."""
    if not actor.roles & set(REPORT_READER_ROLES):
        raise ReportForbidden(actor.email, REPORT_READER_ROLES)
