"""The governance trail of the staff directory: every change to a person, chained and keyed.

The directory decides who may act, so granting a role is as consequential as any trigger on a dispute.
Each change is one row of `people_changes`, in one chain across the whole directory (`trails` chains,
hashes and checks it, as it does the partner changes).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispute_service import trails
from dispute_service.audit import key_id as key_id
from dispute_service.models import Person, PersonChange
from dispute_service.trails import Problem as Problem

ChangeKind = Literal["added", "name_changed", "roles_changed", "deactivated", "reactivated"]
ADDED: ChangeKind = "added"
NAME_CHANGED: ChangeKind = "name_changed"
ROLES_CHANGED: ChangeKind = "roles_changed"
DEACTIVATED: ChangeKind = "deactivated"
REACTIVATED: ChangeKind = "reactivated"
KINDS: tuple[ChangeKind, ...] = get_args(ChangeKind)

CLI_ACTOR = trails.CLI_ACTOR

# An arbitrary constant naming the advisory lock that serialises writers of the chain (PostgreSQL).
CHAIN_LOCK = 0x5EED_D1EC

TRAIL = trails.Trail(
    model=PersonChange, subject=("person_email",), lock_key=CHAIN_LOCK, label="people change"
)


def change_hash(change: PersonChange, key: str) -> str:
    return trails.change_hash(TRAIL, change, key)


def lock(session: Session) -> None:
    """Serialise the writers of the chain (and, through them, of the directory) until the transaction ends."""
    trails.lock(session, TRAIL)


def record(
    session: Session,
    audit_key: str,
    *,
    actor: str,
    channel: str,
    person_email: str,
    kind: ChangeKind,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    now: datetime,
) -> PersonChange:
    """Chain one change to the head. The caller holds `lock` for the rest of its transaction."""
    assert kind in KINDS, kind
    return trails.record(
        session,
        TRAIL,
        audit_key,
        subject={"person_email": person_email},
        actor=actor,
        channel=channel,
        kind=kind,
        before=before,
        after=after,
        now=now,
    )


def history(session: Session, email: str) -> list[PersonChange]:
    return trails.history(session, TRAIL, {"person_email": email})


def verify(session: Session, keys: Iterable[str]) -> tuple[int, list[Problem]]:
    """Recompute the chain under `keys` (the current key and any retired ones); name every change that was
    altered or is missing, and every person whose row disagrees with their last recorded change.

    Returns the number of changes checked and the problems found.
    """
    checked, problems, recorded = trails.verify(session, TRAIL, keys)
    emails = sorted(email for (email,) in recorded)
    people = session.scalars(select(Person).where(Person.email.in_(emails))).all()
    rows = [
        ((p.email,), f"person {p.email}", {"name": p.name, "roles": sorted(p.roles), "active": p.active})
        for p in people
    ]
    return checked, problems + trails.disagreements(TRAIL, recorded, rows)
