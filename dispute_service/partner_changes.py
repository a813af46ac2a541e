"""The governance trail of the organisations and their external contacts: every change to either, chained
and keyed.

A contact decides who may act on a partner dispute by email link (SPEC 10), so adding a contact, moving one
to another organisation or deactivating one is as consequential as a change to the staff directory. Each
change is one row of `partner_changes`, in one chain of its own across every organisation and contact
(`trails` chains, hashes and checks it, as it does the people changes).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispute_service import trails
from dispute_service.models import Contact, Organisation, PartnerChange
from dispute_service.trails import Problem

ChangeKind = Literal[
    "added", "name_changed", "kind_changed", "organisation_changed", "deactivated", "reactivated"
]
ADDED: ChangeKind = "added"
NAME_CHANGED: ChangeKind = "name_changed"
# An organisation's kind (partner, other_authority): which ladders its contacts can be named for.
KIND_CHANGED: ChangeKind = "kind_changed"
# A contact moved to another organisation.
ORGANISATION_CHANGED: ChangeKind = "organisation_changed"
DEACTIVATED: ChangeKind = "deactivated"
REACTIVATED: ChangeKind = "reactivated"
KINDS: tuple[ChangeKind, ...] = get_args(ChangeKind)

SubjectKind = Literal["organisation", "contact"]
ORGANISATION: SubjectKind = "organisation"
CONTACT: SubjectKind = "contact"

# An arbitrary constant naming the advisory lock that serialises writers of the chain (PostgreSQL); not the
# people changes' own, so that each chain has one head.
CHAIN_LOCK = 0x9A27_D1EC

TRAIL = trails.Trail(
    model=PartnerChange, subject=("subject_kind", "subject_id"), lock_key=CHAIN_LOCK, label="partner change"
)


def lock(session: Session) -> None:
    """Serialise the writers of the chain until the transaction ends."""
    trails.lock(session, TRAIL)


def record(
    session: Session,
    audit_key: str,
    *,
    actor: str,
    channel: str,
    subject_kind: SubjectKind,
    subject_id: str,
    kind: ChangeKind,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    now: datetime,
) -> PartnerChange:
    """Chain one change to the head. The caller holds `lock` for the rest of its transaction."""
    assert kind in KINDS, kind
    return trails.record(
        session,
        TRAIL,
        audit_key,
        subject={"subject_kind": subject_kind, "subject_id": subject_id},
        actor=actor,
        channel=channel,
        kind=kind,
        before=before,
        after=after,
        now=now,
    )


def history(session: Session, subject_kind: SubjectKind, subject_id: str) -> list[PartnerChange]:
    return trails.history(session, TRAIL, {"subject_kind": subject_kind, "subject_id": subject_id})


def organisation_fields(organisation: Organisation) -> dict[str, Any]:
    return {"id": organisation.id, "name": organisation.name, "kind": organisation.kind}


def contact_fields(contact: Contact) -> dict[str, Any]:
    # "organisation", as the API and the CSV name it.
    return {
        "name": contact.name,
        "email": contact.email,
        "organisation": contact.organisation_id,
        "active": contact.active,
    }


def verify(session: Session, keys: Iterable[str]) -> tuple[int, list[Problem]]:
    """Recompute the chain under `keys` (the current key and any retired ones); name every change that was
    altered or is missing, and every organisation or contact whose row disagrees with its last recorded
    change.

    Returns the number of changes checked and the problems found.
    """
    checked, problems, recorded = trails.verify(session, TRAIL, keys)
    ids = {kind: sorted(i for k, i in recorded if k == kind) for kind in (ORGANISATION, CONTACT)}
    organisations = session.scalars(select(Organisation).where(Organisation.id.in_(ids[ORGANISATION]))).all()
    contacts = session.scalars(select(Contact).where(Contact.email.in_(ids[CONTACT]))).all()
    # The id and the email name the subject, so they are left out: each is its own subject_id.
    rows: list[tuple[trails.Subject, str, dict[str, Any]]] = [
        ((ORGANISATION, o.id), f"organisation {o.id}", {"name": o.name, "kind": o.kind})
        for o in organisations
    ]
    rows += [
        (
            (CONTACT, c.email),
            f"contact {c.email}",
            {"name": c.name, "organisation": c.organisation_id, "active": c.active},
        )
        for c in contacts
    ]
    return checked, problems + trails.disagreements(TRAIL, recorded, rows)
