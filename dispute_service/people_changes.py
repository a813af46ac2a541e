"""The governance trail of the staff directory: every change to a person, chained and keyed.

The directory decides who may act, so granting a role is as consequential as any trigger on a dispute.
Each change is one row of `people_changes`, in one chain across the whole directory: its hash is an
HMAC-SHA-256 under the audit key over the canonical JSON of the row and the previous row's hash, so an
edit made with database access alone cannot be rehashed to match. `key_id` names the key, so that old
rows still verify once the key has been rotated and the retired key is given to `verify`.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from dispute_service.audit import GENESIS_HASH, canonical_json, key_id, keyed_hash
from dispute_service.models import Person, PersonChange

ChangeKind = Literal["added", "name_changed", "roles_changed", "deactivated", "reactivated"]
ADDED: ChangeKind = "added"
NAME_CHANGED: ChangeKind = "name_changed"
ROLES_CHANGED: ChangeKind = "roles_changed"
DEACTIVATED: ChangeKind = "deactivated"
REACTIVATED: ChangeKind = "reactivated"
KINDS: tuple[ChangeKind, ...] = get_args(ChangeKind)

# Who the command line's CSV import records as the actor: it runs with database access, not as a person.
CLI_ACTOR = "cli"

# An arbitrary constant naming the advisory lock that serialises writers of the chain (PostgreSQL).
CHAIN_LOCK = 0x5EED_D1EC


def change_hash(change: PersonChange, key: str) -> str:
    payload = {
        "seq": change.seq,
        "at": change.at,
        "actor": change.actor,
        "channel": change.channel,
        "person_email": change.person_email,
        "kind": change.kind,
        "before": change.before,
        "after": change.after,
        "key_id": change.key_id,
        "prev_hash": change.prev_hash,
    }
    return keyed_hash(payload, key)


def lock(session: Session) -> None:
    """Serialise the writers of the chain (and, through them, of the directory) until this transaction ends.

    SQLite's BEGIN IMMEDIATE already makes writers take turns; PostgreSQL takes a transaction-scoped
    advisory lock, so that two changes never both chain to the same head.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK})


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
    head = session.scalar(select(PersonChange).order_by(PersonChange.seq.desc()).limit(1))
    change = PersonChange(
        seq=head.seq + 1 if head else 1,
        at=now,
        actor=actor,
        channel=channel,
        person_email=person_email,
        kind=kind,
        before=canonical_json(before) if before is not None else None,
        after=canonical_json(after),
        key_id=key_id(audit_key),
        prev_hash=head.hash if head else GENESIS_HASH,
        hash="",
    )
    change.hash = change_hash(change, audit_key)
    session.add(change)
    # Flushed now, so the next change in this transaction chains to this one.
    session.flush()
    return change


def history(session: Session, email: str) -> list[PersonChange]:
    return list(
        session.scalars(
            select(PersonChange).where(PersonChange.person_email == email).order_by(PersonChange.seq)
        ).all()
    )


@dataclass(frozen=True)
class Problem:
    seq: int | None
    email: str | None
    message: str

    def __str__(self) -> str:
        where = f"people change {self.seq}" if self.seq is not None else f"person {self.email}"
        return f"{where}: {self.message}"


def verify(session: Session, keys: Iterable[str]) -> tuple[int, list[Problem]]:
    """Recompute the chain under `keys` (the current key and any retired ones); name every change that was
    altered or is missing, and every person whose row disagrees with their last recorded change.

    Returns the number of changes checked and the problems found.
    """
    by_id = {key_id(k): k for k in keys}
    problems: list[Problem] = []
    changes = session.scalars(select(PersonChange).order_by(PersonChange.seq)).all()
    prev, expected = GENESIS_HASH, 1
    # Each person's fields as their changes last recorded them, with the change that recorded each.
    recorded: dict[str, dict[str, tuple[Any, int]]] = {}
    for change in changes:
        if change.seq != expected:
            missing = f"{expected}" if change.seq == expected + 1 else f"{expected} to {change.seq - 1}"
            problems.append(Problem(change.seq, None, f"change(s) {missing} before it are missing (deleted)"))
        if change.prev_hash != prev:
            problems.append(Problem(change.seq, None, "prev_hash does not match the previous change's hash"))
        key = by_id.get(change.key_id)
        if key is None:
            problems.append(Problem(change.seq, None, f"signed with an unknown key (key id {change.key_id})"))
        elif not hmac.compare_digest(change_hash(change, key), change.hash):
            problems.append(
                Problem(
                    change.seq, None, "hash does not match the change's contents (the change was altered)"
                )
            )
        prev, expected = change.hash, change.seq + 1
        try:
            after = json.loads(change.after)
        except ValueError:
            continue  # already named: the hash cannot match an altered text
        fields = recorded.setdefault(change.person_email, {})
        for name, value in after.items():
            fields[name] = (value, change.seq)
    problems.extend(_directory_against_trail(session, recorded))
    return len(changes), problems


def _directory_against_trail(
    session: Session, recorded: dict[str, dict[str, tuple[Any, int]]]
) -> list[Problem]:
    # The last change of a person removed from the end of the chain, or a role granted by a direct UPDATE,
    # leaves the row saying something the trail does not. People loaded before the trail existed have no
    # changes, and are checked only from their first change on.
    problems = []
    for person in session.scalars(select(Person).where(Person.email.in_(sorted(recorded)))).all():
        fields = recorded[person.email]
        actual = {"name": person.name, "roles": sorted(person.roles), "active": person.active}
        for name, is_now in actual.items():
            if name not in fields:
                continue
            value, seq = fields[name]
            if value != is_now:
                problems.append(
                    Problem(
                        None,
                        person.email,
                        f"{name} is {json.dumps(is_now)} but the last recorded change (people change "
                        f"{seq}) says {json.dumps(value)}: a change is missing from the trail, or was made "
                        "around it",
                    )
                )
    return problems
