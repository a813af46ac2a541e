"""The tamper-evident audit chain: each entry's hash covers its fields and the previous entry's hash.

Free text is hashed separately and only its SHA-256 enters the chain, so a redaction changes no hash.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispute_service.access import Actor
from dispute_service.models import AuditEntry, AuditText, Dispute
from states.machine import Position
from states.vocabulary import Trigger

GENESIS_HASH = "0" * 64
REDACTED = "[redacted]"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_encode)


def _encode(value: Any) -> str:
    if isinstance(value, datetime):
        return _time(value) or ""
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(entry: AuditEntry) -> str:
    payload = {
        "dispute_id": str(entry.dispute_id),
        "seq": entry.seq,
        "at": _time(entry.at),
        "actor": entry.actor,
        "actor_role": entry.actor_role,
        "channel": entry.channel,
        "trigger": entry.trigger,
        "from_stage": entry.from_stage,
        "to_stage": entry.to_stage,
        "from_state": entry.from_state,
        "to_state": entry.to_state,
        "due_at_before": _time(entry.due_at_before),
        "due_at_after": _time(entry.due_at_after),
        "escalate_at_before": _time(entry.escalate_at_before),
        "escalate_at_after": _time(entry.escalate_at_after),
        "text_id": entry.text_id,
        "text_sha256": entry.text_sha256,
        "details": entry.details,
        "prev_hash": entry.prev_hash,
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def append(
    session: Session,
    dispute: Dispute,
    *,
    actor: Actor,
    actor_role: str | None,
    trigger: str,
    before: Position | None,
    before_times: tuple[datetime | None, datetime | None],
    texts: dict[str, str],
    details: dict[str, Any],
    now: datetime,
) -> AuditEntry:
    """Chain a new entry to the dispute's head. The row lock (or SQLite's write lock) makes seq gap-free.

    The first text is the entry's own; any others are named in its details, so the chain covers them too.
    """
    stored = [
        AuditText(dispute=dispute, kind=kind, body=body, sha256=sha256_text(body), created_at=now)
        for kind, body in texts.items()
    ]
    if stored:
        # The chain covers each text's id, which the database gives out: one flush, for all of them.
        session.add_all(stored)
        session.flush()
    main = stored[0] if stored else None
    details = dict(details)
    for extra in stored[1:]:
        details[f"{extra.kind}_text_id"] = extra.id
        details[f"{extra.kind}_sha256"] = extra.sha256
    entry = AuditEntry(
        dispute=dispute,
        seq=dispute.audit_seq + 1,
        at=now,
        actor=actor.email,
        actor_role=actor_role,
        channel=actor.channel,
        trigger=trigger,
        from_stage=before.stage if before else None,
        to_stage=dispute.stage,
        from_state=before.state.value if before else None,
        to_state=dispute.state,
        due_at_before=before_times[0],
        due_at_after=dispute.due_at,
        escalate_at_before=before_times[1],
        escalate_at_after=dispute.escalate_at,
        text_id=main.id if main else None,
        text_sha256=main.sha256 if main else None,
        details=canonical_json(details),
        prev_hash=dispute.audit_hash,
        hash="",
    )
    # The relationship fills dispute_id only at flush; the hash needs it now.
    entry.dispute_id = dispute.id
    entry.hash = entry_hash(entry)
    session.add(entry)
    dispute.audit_seq, dispute.audit_hash = entry.seq, entry.hash
    if trigger == Trigger.RESOLVE and main is not None:
        dispute.outcome_text_id = main.id
        dispute.resolved_by = actor.email
    elif trigger == Trigger.CLOSE and main is not None:
        dispute.outcome_text_id = main.id
    return entry


@dataclass(frozen=True)
class Problem:
    dispute_id: uuid.UUID
    reference: str
    seq: int | None
    message: str

    def __str__(self) -> str:
        where = f"entry {self.seq}" if self.seq is not None else "chain"
        return f"{self.reference} ({self.dispute_id}) {where}: {self.message}"


def verify_dispute(session: Session, dispute: Dispute) -> Iterator[Problem]:
    """Recompute one chain; name every entry that does not match, and entries missing from either end."""

    def problem(seq: int | None, message: str) -> Problem:
        return Problem(dispute.id, dispute.reference, seq, message)

    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.dispute_id == dispute.id).order_by(AuditEntry.seq)
    ).all()
    texts = {
        t.id: t for t in session.scalars(select(AuditText).where(AuditText.dispute_id == dispute.id)).all()
    }
    prev = GENESIS_HASH
    expected_seq = 1
    for entry in entries:
        if entry.seq != expected_seq:
            yield problem(entry.seq, f"sequence gap: expected entry {expected_seq}")
        if entry.prev_hash != prev:
            yield problem(entry.seq, "prev_hash does not match the previous entry's hash")
        if entry_hash(entry) != entry.hash:
            yield problem(entry.seq, "hash does not match the entry's contents (the entry was altered)")
        if entry.text_id is not None:
            text = texts.get(entry.text_id)
            if text is None:
                yield problem(entry.seq, "its text is missing")
            elif text.redacted_at is None and sha256_text(text.body) != entry.text_sha256:
                yield problem(entry.seq, "its text does not match the hash recorded in the chain")
        prev = entry.hash
        expected_seq = entry.seq + 1
    if dispute.audit_seq != len(entries) or dispute.audit_hash != prev:
        yield problem(
            None,
            f"the dispute records {dispute.audit_seq} entries ending in {dispute.audit_hash[:12]}, "
            f"but the log has {len(entries)} ending in {prev[:12]}: entries are missing from the end",
        )


def verify_all(session: Session) -> tuple[int, list[Problem]]:
    """Check every chain. Returns the number of disputes checked and every problem found."""
    problems: list[Problem] = []
    checked = 0
    for dispute in session.scalars(select(Dispute).order_by(Dispute.raised_at)).yield_per(500):
        checked += 1
        problems.extend(verify_dispute(session, dispute))
    return checked, problems
