"""The governance trails: every change to a directory that decides who may act, chained and keyed.

Two directories have one: the staff directory (`people_changes`) and the organisations and their external
contacts (`partner_changes`). Each is one chain across its whole directory: a change's hash is an
HMAC-SHA-256 under the audit key over the canonical JSON of the row and the previous row's hash, so an edit
made with database access alone cannot be rehashed to match. `key_id` names the key, so that old rows still
verify once the key has been rotated and the retired key is given to `verify`.

A `Trail` says which table and which columns name what changed; the chaining, hashing and checking are the
same for both.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from dispute_service.audit import GENESIS_HASH, canonical_json, key_id, keyed_hash
from dispute_service.models import ChainedChange

C = TypeVar("C", bound=ChainedChange)

# Who the command line's CSV imports record as the actor, on the channel "import": they run with database
# access, not as a person.
CLI_ACTOR = "cli"
IMPORT_CHANNEL = "import"

# What changed, as the values of the trail's subject columns: (email,) for a person.
Subject = tuple[str, ...]
# Each subject's fields as its changes last recorded them, with the seq of the change that recorded each.
Recorded = dict[Subject, dict[str, tuple[Any, int]]]

_ALTERED = "hash does not match the change's contents (the change was altered)"
_AROUND = "a change is missing from the trail, or was made around it"
# Hashed in every trail, beside the trail's own subject columns.
_HASHED = ("seq", "at", "actor", "channel", "kind", "before", "after", "key_id", "prev_hash")


@dataclass(frozen=True)
class Trail(Generic[C]):
    model: type[C]
    # The columns naming what changed; part of the hash.
    subject: tuple[str, ...]
    # An arbitrary constant naming the advisory lock that serialises writers of this chain (PostgreSQL).
    lock_key: int
    # How a problem names one of its changes: "people change" 3.
    label: str


def change_hash(trail: Trail[C], change: C, key: str) -> str:
    return keyed_hash({name: getattr(change, name) for name in (*_HASHED, *trail.subject)}, key)


def lock(session: Session, trail: Trail[C]) -> None:
    """Serialise the writers of the chain until this transaction ends.

    SQLite's BEGIN IMMEDIATE already makes writers take turns; PostgreSQL takes a transaction-scoped
    advisory lock, so that two changes never both chain to the same head.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": trail.lock_key})


def record(
    session: Session,
    trail: Trail[C],
    audit_key: str,
    *,
    subject: Mapping[str, str],
    actor: str,
    channel: str,
    kind: str,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    now: datetime,
) -> C:
    """Chain one change to the head. The caller holds `lock` for the rest of its transaction."""
    assert set(subject) == set(trail.subject), subject
    head = session.scalar(select(trail.model).order_by(trail.model.seq.desc()).limit(1))
    change = trail.model(
        seq=head.seq + 1 if head else 1,
        at=now,
        actor=actor,
        channel=channel,
        kind=kind,
        before=canonical_json(before) if before is not None else None,
        after=canonical_json(after),
        key_id=key_id(audit_key),
        prev_hash=head.hash if head else GENESIS_HASH,
        hash="",
        **subject,
    )
    change.hash = change_hash(trail, change, audit_key)
    session.add(change)
    # Flushed now, so the next change in this transaction chains to this one.
    session.flush()
    return change


def history(session: Session, trail: Trail[C], subject: Mapping[str, str]) -> list[C]:
    """Every change to one subject, oldest first."""
    query = select(trail.model).order_by(trail.model.seq)
    for name, value in subject.items():
        query = query.where(getattr(trail.model, name) == value)
    return list(session.scalars(query).all())


@dataclass(frozen=True)
class Problem:
    # "people change 3", or the subject whose row disagrees with its trail: "person x@example.gov.uk".
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def verify(session: Session, trail: Trail[C], keys: Iterable[str]) -> tuple[int, list[Problem], Recorded]:
    """Recompute the chain under `keys` (the current key and any retired ones), and name every change that
    was altered or is missing.

    Returns the number of changes checked, the problems found, and each subject's fields as its changes last
    recorded them, for the caller to hold its directory's rows against (`disagreements`).
    """
    by_id = {key_id(k): k for k in keys}
    problems: list[Problem] = []
    changes = session.scalars(select(trail.model).order_by(trail.model.seq)).all()
    prev, expected = GENESIS_HASH, 1
    recorded: Recorded = {}
    for change in changes:
        where = f"{trail.label} {change.seq}"
        if change.seq != expected:
            missing = f"{expected}" if change.seq == expected + 1 else f"{expected} to {change.seq - 1}"
            problems.append(Problem(where, f"change(s) {missing} before it are missing (deleted)"))
        if change.prev_hash != prev:
            problems.append(Problem(where, "prev_hash does not match the previous change's hash"))
        key = by_id.get(change.key_id)
        if key is None:
            problems.append(Problem(where, f"signed with an unknown key (key id {change.key_id})"))
        elif not hmac.compare_digest(change_hash(trail, change, key), change.hash):
            problems.append(Problem(where, _ALTERED))
        prev, expected = change.hash, change.seq + 1
        try:
            after = json.loads(change.after)
        except ValueError:
            continue  # already named: the hash cannot match an altered text
        fields = recorded.setdefault(tuple(getattr(change, name) for name in trail.subject), {})
        for name, value in after.items():
            fields[name] = (value, change.seq)
    return len(changes), problems, recorded


def disagreements(
    trail: Trail[C], recorded: Recorded, rows: Iterable[tuple[Subject, str, Mapping[str, Any]]]
) -> list[Problem]:
    """Each field of a directory's row that says something its last recorded change does not. `rows` are
    (subject, how to name it, its fields now).

    The last change of a subject removed from the end of the chain, or a field set by a direct UPDATE, leaves
    the row saying something the trail does not. Rows loaded before the trail existed have no changes, and
    are checked only from their first change on.
    """
    problems = []
    for subject, where, actual in rows:
        fields = recorded.get(subject, {})
        for name, is_now in actual.items():
            if name not in fields:
                continue
            value, seq = fields[name]
            if value != is_now:
                problems.append(
                    Problem(
                        where,
                        f"{name} is {json.dumps(is_now)} but the last recorded change ({trail.label} {seq}) "
                        f"says {json.dumps(value)}: {_AROUND}",
                    )
                )
    return problems
