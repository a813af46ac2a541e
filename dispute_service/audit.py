"""The tamper-evident audit chain: each entry's hash covers its fields and the previous entry's hash.

Two chains run through every entry: the dispute's own (`seq`, `prev_hash`) and one across all disputes in
commit order (`gseq`, `gprev_hash`), whose head is the single `audit_head` row. Each hash is an
HMAC-SHA-256 under the audit key named by `key_id`, so someone with database access alone can neither
rewrite an entry and rehash it, nor delete a dispute or a run of entries without leaving a gap in the
global chain. Entries written before the keyed format (null `gseq`) keep the plain SHA-256 formula; a keyed
`seal` entry per dispute commits to their head (migration 0004).

Free text is hashed separately and only its SHA-256 enters the chain, so a redaction changes no hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import insert, inspect, select
from sqlalchemy.orm import Session

from dispute_service.access import Actor
from dispute_service.database import AUDIT_KEY_INFO, AUDIT_KEYRING_INFO
from dispute_service.models import AuditEntry, AuditHead, AuditText, Dispute
from states.machine import Position
from states.vocabulary import BOOKKEEPING_TRIGGERS, Trigger

GENESIS_HASH = "0" * 64
REDACTED = "[redacted]"
# The single row of `audit_head`.
HEAD_ID = 1
SEAL = Trigger.SEAL.value
# Where `lock_head` keeps the head it locked, with the transaction that holds the lock.
_HEAD_LOCK = "audit_head_lock"
# Entries that record what the service did, not a change to the dispute: they leave its version alone.
BOOKKEEPING = frozenset(t.value for t in BOOKKEEPING_TRIGGERS)


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


def key_id(key: str) -> str:
    """A short public name for a key: enough to pick it from a keyring, nothing towards guessing it."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


def keyed_hash(payload: Mapping[str, Any], key: str) -> str:
    """HMAC-SHA-256 of a payload's canonical JSON: the hash of every keyed chain (audit, people changes)."""
    return hmac.new(key.encode("utf-8"), canonical_json(payload).encode("utf-8"), hashlib.sha256).hexdigest()


def session_key(session: Session) -> str:
    """The current audit key, put on the session factory by `database.make_session_factory`."""
    return str(session.info[AUDIT_KEY_INFO])


def session_keys(session: Session) -> dict[str, str]:
    """Every key an entry may be signed with, by id: the current one and the retired ones."""
    keys = [session_key(session), *session.info.get(AUDIT_KEYRING_INFO, ())]
    return {key_id(k): k for k in keys}


_FIELDS = (
    "seq actor actor_role channel trigger from_stage to_stage from_state to_state text_id text_sha256 "
    "details prev_hash"
).split()
_TIMES = ("at", "due_at_before", "due_at_after", "escalate_at_before", "escalate_at_after")


def _payload(row: Mapping[str, Any]) -> dict[str, Any]:
    payload = {name: row[name] for name in _FIELDS}
    payload.update({name: _time(row[name]) for name in _TIMES})
    payload["dispute_id"] = str(row["dispute_id"])
    return payload


def _columns(entry: AuditEntry) -> dict[str, Any]:
    return {
        name: getattr(entry, name)
        for name in (*_FIELDS, *_TIMES, "dispute_id", "key_id", "gseq", "gprev_hash")
    }


def row_hash(row: Mapping[str, Any], key: str) -> str:
    """`entry_hash` of an entry given as a mapping of its columns, for bulk loaders that write rows."""
    payload = _payload(row)
    payload.update(key_id=row["key_id"], gseq=row["gseq"], gprev_hash=row["gprev_hash"])
    return keyed_hash(payload, key)


def legacy_entry_hash(entry: AuditEntry) -> str:
    """The unkeyed formula of entries written before the keyed format; only ever checked, never written."""
    return hashlib.sha256(canonical_json(_payload(_columns(entry))).encode("utf-8")).hexdigest()


def entry_hash(entry: AuditEntry, key: str) -> str:
    """HMAC-SHA-256 under `key` over the entry's fields, both chains' links and the key's id."""
    return row_hash(_columns(entry), key)


def lock_head(session: Session) -> AuditHead:
    """The global head, locked until this transaction ends: FOR UPDATE on PostgreSQL, and SQLite's BEGIN
    IMMEDIATE already holds the write lock. Read afresh once per transaction, as a session kept open
    across transactions would otherwise hand back the head as it was; after that, the copy this
    transaction holds the lock on, with whatever entries it has already chained to it."""
    held = session.info.get(_HEAD_LOCK)
    if held is not None:
        transaction, locked = held
        if transaction.is_active and locked in session:
            return cast(AuditHead, locked)
    # No autoflush: the dispute's pending changes would be written now and again once the entry is signed.
    with session.no_autoflush:
        head = session.execute(
            select(AuditHead)
            .where(AuditHead.id == HEAD_ID)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one()
    # The innermost transaction: a lock taken in a savepoint is released if the savepoint rolls back.
    session.info[_HEAD_LOCK] = (session.get_nested_transaction() or session.get_transaction(), head)
    return head


def sign(entry: AuditEntry, head: AuditHead, key: str) -> None:
    """Chain `entry` to the global head and sign it; the head then points at it."""
    entry.key_id = key_id(key)
    entry.gseq = head.gseq + 1
    entry.gprev_hash = head.hash
    entry.hash = entry_hash(entry, key)
    head.gseq, head.hash = entry.gseq, entry.hash


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
    """Chain a new entry to the dispute's head and to the global head, signed with the session's audit key.
    The row lock (or SQLite's write lock) makes seq gap-free; the head's lock makes gseq follow commits.

    The first text is the entry's own; any others are named in its details, so the chain covers them too.
    """
    stored = _store_texts(session, dispute, texts, now)
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
    # Locked last, after the dispute's own row, by every writer: one order, so no deadlock between them.
    sign(entry, lock_head(session), session_key(session))
    session.add(entry)
    dispute.audit_seq, dispute.audit_hash = entry.seq, entry.hash
    if trigger == Trigger.RESOLVE and main is not None:
        dispute.outcome_text_id = main.id
        dispute.resolved_by = actor.email
    elif trigger == Trigger.CLOSE and main is not None:
        dispute.outcome_text_id = main.id
    return entry


@dataclass(frozen=True)
class _StoredText:
    id: int
    kind: str
    sha256: str


def _store_texts(
    session: Session, dispute: Dispute, texts: dict[str, str], now: datetime
) -> list[_StoredText]:
    """Insert the texts and return their ids, which the chain covers and the database gives out."""
    if not texts:
        return []
    if inspect(dispute).pending:
        # A new dispute's row must exist before its texts can point at it.
        session.flush()
    stored = [(kind, body, sha256_text(body)) for kind, body in texts.items()]
    rows = [
        {"dispute_id": dispute.id, "kind": kind, "body": body, "sha256": digest, "created_at": now}
        for kind, body, digest in stored
    ]
    # A statement of its own, without autoflush: the dispute's changes so far would otherwise be written
    # now and again once the entry is signed.
    with session.no_autoflush:
        ids = session.scalars(
            insert(AuditText).returning(AuditText.id, sort_by_parameter_order=True), rows
        ).all()
    return [_StoredText(i, kind, digest) for i, (kind, _, digest) in zip(ids, stored, strict=True)]


@dataclass(frozen=True)
class Checkpoint:
    """The global chain's head at a moment: kept somewhere the database's administrators cannot write, it
    shows later whether the entries up to it are still there, unchanged."""

    gseq: int
    hash: str
    at: datetime

    def __str__(self) -> str:
        return f"{self.gseq}:{self.hash}"

    def fields(self) -> dict[str, Any]:
        return {"gseq": self.gseq, "hash": self.hash, "time": _time(self.at)}

    @staticmethod
    def parse(value: str) -> tuple[int, str]:
        gseq, sep, digest = value.strip().partition(":")
        if not sep or not gseq.isdigit() or len(digest) != 64:
            raise ValueError("a checkpoint is GSEQ:HASH, as `audit checkpoint` prints it")
        return int(gseq), digest.lower()


def checkpoint(session: Session, now: datetime) -> Checkpoint:
    head = session.get_one(AuditHead, HEAD_ID)
    return Checkpoint(head.gseq, head.hash, now)


@dataclass(frozen=True)
class Problem:
    dispute_id: uuid.UUID | None
    reference: str | None
    seq: int | None
    message: str
    gseq: int | None = None

    def __str__(self) -> str:
        if self.dispute_id is None:
            where = f"global chain at gseq {self.gseq}" if self.gseq is not None else "global chain"
            return f"{where}: {self.message}"
        where = f"entry {self.seq}" if self.seq is not None else "chain"
        return f"{self.reference} ({self.dispute_id}) {where}: {self.message}"


def _details(entry: AuditEntry) -> dict[str, Any]:
    try:
        value = json.loads(entry.details)
    except ValueError:
        return {}  # already named: the hash cannot match altered details
    return value if isinstance(value, dict) else {}


def _text_refs(entry: AuditEntry, details: Mapping[str, Any]) -> Iterator[tuple[str, int, str | None]]:
    """Every text the entry commits to: (what it is, its id, the SHA-256 the chain holds for it)."""
    if entry.text_id is not None:
        yield "its text", entry.text_id, entry.text_sha256
    for name, value in details.items():
        if name.endswith("_text_id") and name != "redacted_text_id" and isinstance(value, int):
            kind = name.removesuffix("_text_id")
            yield f"its {kind} text", value, details.get(f"{kind}_sha256")


def verify_dispute(
    session: Session, dispute: Dispute, keys: Mapping[str, str] | None = None
) -> Iterator[Problem]:
    """Recompute one dispute's chain and check what it covers: each entry's hash under its key, the texts
    the entries reference, the redactions, and the dispute row's fields against what the chain last says.
    Names every entry that does not match, and entries missing from either end."""
    keys = session_keys(session) if keys is None else keys

    def problem(entry: AuditEntry | None, message: str) -> Problem:
        return Problem(
            dispute.id,
            dispute.reference,
            entry.seq if entry else None,
            message,
            entry.gseq if entry else None,
        )

    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.dispute_id == dispute.id).order_by(AuditEntry.seq)
    ).all()
    texts = {
        t.id: t for t in session.scalars(select(AuditText).where(AuditText.dispute_id == dispute.id)).all()
    }
    redactions = {
        _details(e).get("redacted_text_id"): e.seq for e in entries if e.trigger == Trigger.REDACT.value
    }
    prev = GENESIS_HASH
    expected_seq = 1
    keyed_seen = False
    version = 0
    for entry in entries:
        details = _details(entry)
        if entry.seq != expected_seq:
            yield problem(entry, f"sequence gap: expected entry {expected_seq}")
        if entry.prev_hash != prev:
            yield problem(entry, "prev_hash does not match the previous entry's hash")
        if entry.key_id is None:
            if keyed_seen:
                yield problem(entry, "an unkeyed entry after keyed ones (rewritten in the legacy format)")
            if entry.gseq is not None or entry.gprev_hash is not None:
                yield problem(entry, "an unkeyed entry with a place in the global chain")
            if legacy_entry_hash(entry) != entry.hash:
                yield problem(entry, "hash does not match the entry's contents (the entry was altered)")
        else:
            if not keyed_seen and entry.seq > 1 and entry.trigger != SEAL:
                yield problem(entry, "the first keyed entry after legacy ones is not their seal")
            keyed_seen = True
            key = keys.get(entry.key_id)
            if entry.gseq is None or entry.gprev_hash is None:
                yield problem(entry, "a keyed entry outside the global chain")
            if key is None:
                yield problem(entry, f"signed with an unknown key (key id {entry.key_id})")
            elif not hmac.compare_digest(entry_hash(entry, key), entry.hash):
                yield problem(entry, "hash does not match the entry's contents (the entry was altered)")
        if entry.trigger == SEAL and (
            details.get("legacy_seq") != entry.seq - 1 or details.get("legacy_hash") != entry.prev_hash
        ):
            yield problem(entry, "the seal does not commit to the legacy entries before it")
        for what, text_id, digest in _text_refs(entry, details):
            yield from (problem(entry, m) for m in _text_faults(what, texts.get(text_id), digest, redactions))
        if entry.trigger not in BOOKKEEPING:
            version += 1
        prev = entry.hash
        expected_seq = entry.seq + 1
    if entries and not keyed_seen:
        yield problem(
            None, "no entry is keyed: its keyed entries were removed, or it was written around them"
        )
    if dispute.audit_seq != len(entries) or dispute.audit_hash != prev:
        yield problem(
            None,
            f"the dispute records {dispute.audit_seq} entries ending in {dispute.audit_hash[:12]}, "
            f"but the log has {len(entries)} ending in {prev[:12]}: entries are missing from the end",
        )
    if entries:
        yield from (problem(None, m) for m in _row_faults(dispute, entries, version))


def _text_faults(
    what: str, text: AuditText | None, digest: str | None, redactions: Mapping[Any, int]
) -> Iterator[str]:
    if text is None:
        yield f"{what} is missing"
    elif text.redacted_at is not None or text.body == REDACTED:
        if text.id not in redactions:
            yield f"{what} (text {text.id}) is marked redacted, but no redact entry names it"
        elif text.body != REDACTED:
            yield f"{what} (text {text.id}) is marked redacted, but its body is not the redaction marker"
        elif text.redacted_at is None:
            yield f"{what} (text {text.id}) was blanked without being marked redacted"
    elif sha256_text(text.body) != digest:
        yield f"{what} does not match the hash recorded in the chain (text {text.id})"


def _row_faults(dispute: Dispute, entries: Iterable[AuditEntry], version: int) -> Iterator[str]:
    """The dispute row against its chain: a field changed by a direct UPDATE, or a tail of entries removed
    with the head moved back, leaves the row saying something no entry says."""
    last: AuditEntry | None = None
    iro: str | None = None
    child_ref: str | None = None
    for entry in entries:
        details = _details(entry)
        if entry.trigger == Trigger.RAISE.value:
            iro = entry.actor
            child_ref = details.get("child_ref", child_ref)
        elif entry.trigger == Trigger.REASSIGN_IRO.value:
            iro = details.get("iro_after", iro)
        elif entry.trigger == Trigger.AMEND.value and isinstance(details.get("after"), dict):
            child_ref = details["after"].get("child_ref", child_ref)
        last = entry
    assert last is not None
    said = f"the last entry ({last.seq}) says"
    checks: list[tuple[str, Any, Any, str]] = [
        ("stage", dispute.stage, last.to_stage, said),
        ("state", dispute.state, last.to_state, said),
        ("due_at", dispute.due_at, last.due_at_after, said),
        ("escalate_at", dispute.escalate_at, last.escalate_at_after, said),
        ("version", dispute.version, version, "the chain has that many changes"),
    ]
    if iro is not None:
        checks.append(("iro_email", dispute.iro_email, iro, "the chain's raise and IRO reassignments say"))
    if child_ref is not None:
        # Disputes raised before the raise entry recorded the child reference are not checked for it.
        checks.append(("child_ref", dispute.child_ref, child_ref, "the chain's raise and amendments say"))
    for name, is_now, recorded, source in checks:
        if is_now != recorded:
            yield f"the dispute's {name} is {_shown(is_now)} but {source} {_shown(recorded)}"


def _shown(value: Any) -> str:
    return json.dumps(_time(value) if isinstance(value, datetime) else value, default=str)


def verify_global(session: Session) -> tuple[list[Problem], tuple[int, str]]:
    """Walk the chain across all disputes in gseq order: a gap is a deleted dispute or run of entries.
    Returns the problems and the chain's last (gseq, hash)."""
    problems: list[Problem] = []
    prev_gseq, prev = 0, GENESIS_HASH
    rows = session.execute(
        select(AuditEntry.gseq, AuditEntry.gprev_hash, AuditEntry.hash, AuditEntry.dispute_id, AuditEntry.seq)
        .where(AuditEntry.gseq.is_not(None))
        .order_by(AuditEntry.gseq)
        .execution_options(yield_per=2000)
    )
    for gseq, gprev_hash, digest, dispute_id, seq in rows:
        assert gseq is not None  # the query's own condition
        where = f"(dispute {dispute_id} entry {seq})"
        if gseq != prev_gseq + 1:
            missing = f"{prev_gseq + 1}" if gseq == prev_gseq + 2 else f"{prev_gseq + 1} to {gseq - 1}"
            problems.append(
                Problem(None, None, None, f"entries {missing} are missing (deleted) {where}", gseq)
            )
        elif gprev_hash != prev:
            problems.append(
                Problem(
                    None, None, None, f"gprev_hash does not match the previous entry's hash {where}", gseq
                )
            )
        prev_gseq, prev = gseq, digest
    head = session.get(AuditHead, HEAD_ID)
    if head is None:
        problems.append(Problem(None, None, None, "the head row is missing"))
    elif (head.gseq, head.hash) != (prev_gseq, prev):
        problems.append(
            Problem(
                None,
                None,
                None,
                f"the head records gseq {head.gseq} ending in {head.hash[:12]}, but the chain ends at gseq "
                f"{prev_gseq} in {prev[:12]}: entries are missing from the end, or the head was moved",
            )
        )
    return problems, (prev_gseq, prev)


def verify_checkpoint(session: Session, gseq: int, digest: str, last_gseq: int) -> list[Problem]:
    """Whether the database still holds the checkpoint's entry, unchanged; the global walk checks that the
    chain extends it."""
    found = session.scalar(select(AuditEntry.hash).where(AuditEntry.gseq == gseq))
    if found is None:
        return [
            Problem(
                None,
                None,
                None,
                f"the checkpoint's entry is not in the database, which ends at gseq {last_gseq}: "
                f"entries {last_gseq + 1} to {gseq} are missing (deleted, or a restore is behind it)",
                gseq,
            )
        ]
    if found != digest:
        return [
            Problem(
                None, None, None, f"the checkpoint's hash {digest[:12]} is not the entry's {found[:12]}", gseq
            )
        ]
    return []


def verify_all(session: Session, checkpoint: tuple[int, str] | None = None) -> tuple[int, list[Problem]]:
    """Check every chain: each dispute's, and the global one (against `checkpoint`, a (gseq, hash) taken
    earlier, when given). Returns the number of disputes checked and every problem found."""
    keys = session_keys(session)
    problems: list[Problem] = []
    checked = 0
    for dispute in session.scalars(select(Dispute).order_by(Dispute.raised_at)).yield_per(500):
        checked += 1
        problems.extend(verify_dispute(session, dispute, keys))
    global_problems, (last_gseq, _) = verify_global(session)
    problems.extend(global_problems)
    if checkpoint is not None:
        problems.extend(verify_checkpoint(session, *checkpoint, last_gseq))
    return checked, problems
