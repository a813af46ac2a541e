"""Tampering by someone with database access alone (a DBA, or anyone holding its credentials): each edit,
deletion or rewrite below goes around the service with plain SQL, dropping the append-only triggers where
it must, and `audit verify` names it. Entries are keyed with the test key, which the tamperer does not have.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from dispute_service import audit, transactions
from dispute_service.cli import app
from dispute_service.database import make_engine, make_session_factory, upgrade
from dispute_service.inputs import ActionInput
from dispute_service.models import AuditEntry
from dispute_service.queries import DisputeSnapshot
from states.policy import Policy
from tests.conftest import _pg_base, _with_database
from tests.factories import IRO, TEST_SECRET, TM, raise_dispute

BYPASS_REASON = "SECRET-REASON the QA stage was tried by phone already"


def verify(db_url: str, *args: str, key: str = TEST_SECRET, keyring: str = "") -> Any:
    env = {"DISPUTES_DATABASE_URL": db_url, "DISPUTES_AUDIT_KEY": key, "DISPUTES_AUDIT_KEYRING": keyring}
    return CliRunner().invoke(app, ["audit", "verify", *args], env=env)


def checkpoint(db_url: str) -> str:
    env = {"DISPUTES_DATABASE_URL": db_url, "DISPUTES_AUDIT_KEY": TEST_SECRET}
    result = CliRunner().invoke(app, ["audit", "checkpoint"], env=env)
    assert result.exit_code == 0, result.output
    line = json.loads(result.output)
    assert line["event"] == "audit.checkpoint" and set(line) >= {"gseq", "hash", "time"}
    return f"{line['gseq']}:{line['hash']}"


def sql(engine: Engine, statement: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def drop_guards(engine: Engine) -> None:
    for name in ("audit_entries_no_update", "audit_entries_no_delete"):
        sql(engine, f"DROP TRIGGER {name}" + ("" if engine.dialect.name == "sqlite" else " ON audit_entries"))


def flagged(result: Any, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


@pytest.fixture
def bypass(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> DisputeSnapshot:
    """Raised straight at the team manager stage, with the bypass reason as a second text; acknowledged
    and escalated, so it has three entries."""
    d = raise_one(start_stage="team_manager", reason=BYPASS_REASON)
    transactions.apply_trigger(
        sessions, policy, d.dispute.id, "acknowledge", TM, ActionInput(), clock.advance(hours=1)
    )
    return transactions.apply_trigger(
        sessions, policy, d.dispute.id, "escalate", IRO, ActionInput(reason="no"), clock.advance(hours=1)
    )


def entry(engine: Engine, dispute_id: uuid.UUID, seq: int) -> AuditEntry:
    with Session(engine) as session:
        found = session.scalar(
            select(AuditEntry).where(AuditEntry.dispute_id == dispute_id, AuditEntry.seq == seq)
        )
        assert found is not None
        session.expunge(found)
        return found


def test_a_clean_database_verifies(bypass: DisputeSnapshot, db_url: str) -> None:
    result = verify(db_url)
    assert result.exit_code == 0, result.output
    assert "ok: 1 dispute(s)" in result.output


def test_an_edited_text_is_named(bypass: DisputeSnapshot, engine: Engine, db_url: str) -> None:
    sql(engine, "UPDATE audit_texts SET body = 'rewritten' WHERE kind = 'summary'")
    flagged(verify(db_url), f"{bypass.dispute.reference}", "entry 1: its text does not match")


def test_an_edited_text_marked_redacted_is_named(
    bypass: DisputeSnapshot, engine: Engine, db_url: str
) -> None:
    sql(
        engine,
        "UPDATE audit_texts SET body = :body, redacted_at = :at WHERE kind = 'summary'",
        body=audit.REDACTED,
        at=datetime(2018, 1, 1, tzinfo=UTC),
    )
    flagged(verify(db_url), "entry 1: its text", "marked redacted, but no redact entry names it")


def test_an_edited_bypass_reason_is_named(bypass: DisputeSnapshot, engine: Engine, db_url: str) -> None:
    sql(engine, "UPDATE audit_texts SET body = 'a better reason' WHERE body = :body", body=BYPASS_REASON)
    flagged(verify(db_url), "entry 1: its reason text does not match")


def test_an_entry_rehashed_with_the_unkeyed_formula_is_named(
    bypass: DisputeSnapshot, engine: Engine, db_url: str
) -> None:
    drop_guards(engine)
    forged = entry(engine, bypass.dispute.id, 2)
    forged.actor = "someone@else.gov.uk"
    sql(
        engine,
        "UPDATE audit_entries SET actor = :actor, hash = :hash WHERE id = :id",
        actor=forged.actor,
        hash=audit.legacy_entry_hash(forged),
        id=forged.id,
    )
    flagged(verify(db_url), "entry 2: hash does not match")
    # Made to look like a legacy entry: the seal rule and the global chain both see it.
    sql(
        engine,
        "UPDATE audit_entries SET key_id = NULL, gseq = NULL, gprev_hash = NULL WHERE id = :id",
        id=forged.id,
    )
    flagged(verify(db_url), "entry 2: an unkeyed entry after keyed ones", "global chain at gseq 3: entries 2")


def test_a_deleted_tail_with_the_head_moved_back_is_named(
    bypass: DisputeSnapshot, engine: Engine, db_url: str
) -> None:
    drop_guards(engine)
    second = entry(engine, bypass.dispute.id, 2)
    sql(
        engine,
        "DELETE FROM audit_entries WHERE dispute_id = :d AND seq = 3",
        d=_uuid_param(engine, bypass.dispute.id),
    )
    sql(engine, "UPDATE disputes SET audit_seq = 2, audit_hash = :h", h=second.hash)
    sql(engine, "UPDATE audit_head SET gseq = :g, hash = :h", g=second.gseq, h=second.hash)
    # The row still says what the deleted escalation did.
    flagged(verify(db_url), "chain: the dispute's stage is", "chain: the dispute's version is 3 but")


def test_an_edited_dispute_row_is_named(bypass: DisputeSnapshot, engine: Engine, db_url: str) -> None:
    sql(engine, "UPDATE disputes SET stage = 'team_manager', iro_email = 'other@example.gov.uk'")
    flagged(
        verify(db_url),
        'chain: the dispute\'s stage is "team_manager" but the last entry (3) says',
        "the dispute's iro_email is",
    )


def test_an_edited_child_ref_is_named(bypass: DisputeSnapshot, engine: Engine, db_url: str) -> None:
    sql(engine, "UPDATE disputes SET child_ref = 'LCS-999'")
    flagged(verify(db_url), 'the dispute\'s child_ref is "LCS-999"')


def _delete_dispute(engine: Engine, dispute_id: uuid.UUID) -> None:
    for table in (
        "notifications",
        "action_links",
        "idempotency_keys",
        "stage_entries",
        "audit_entries",
        "audit_texts",
    ):
        sql(engine, f"DELETE FROM {table} WHERE dispute_id = :d", d=_uuid_param(engine, dispute_id))
    sql(engine, "DELETE FROM disputes WHERE id = :d", d=_uuid_param(engine, dispute_id))


def test_a_whole_dispute_deleted_is_named(
    bypass: DisputeSnapshot, raise_one: Callable[..., DisputeSnapshot], engine: Engine, db_url: str
) -> None:
    raise_one()
    drop_guards(engine)
    _delete_dispute(engine, bypass.dispute.id)
    flagged(verify(db_url), "global chain at gseq 4: entries 1 to 3 are missing (deleted)")


def test_entries_deleted_from_the_middle_of_the_global_chain_are_named(
    bypass: DisputeSnapshot, raise_one: Callable[..., DisputeSnapshot], engine: Engine, db_url: str
) -> None:
    raise_one()
    drop_guards(engine)
    sql(engine, "DELETE FROM audit_entries WHERE gseq IN (2, 3)")
    flagged(verify(db_url), "global chain at gseq 4: entries 2 to 3 are missing (deleted)")


def test_a_rotated_key_still_verifies_with_the_old_one_in_the_keyring(
    bypass: DisputeSnapshot, engine: Engine, db_url: str, policy: Policy, clock: Any
) -> None:
    new_key = "rotated-key-0123456789abcdef0123456789"
    rotated = make_session_factory(engine, audit_key=new_key, audit_keyring=[TEST_SECRET])
    raise_dispute(rotated, policy, clock.advance(hours=1))
    result = verify(db_url, key=new_key, keyring=f"{audit.key_id(TEST_SECRET)}:{TEST_SECRET}")
    assert result.exit_code == 0, result.output
    flagged(verify(db_url, key=new_key), f"signed with an unknown key (key id {audit.key_id(TEST_SECRET)})")


def test_the_newest_entries_deleted_are_named_by_the_checkpoint(
    bypass: DisputeSnapshot, engine: Engine, db_url: str
) -> None:
    point = checkpoint(db_url)
    drop_guards(engine)
    # A careful DBA: the acknowledgement and escalation removed, and the row and both heads put back as
    # the raise left them, so that every chain in the database is consistent again.
    first = entry(engine, bypass.dispute.id, 1)
    sql(engine, "DELETE FROM audit_entries WHERE seq > 1")
    sql(
        engine,
        "UPDATE disputes SET audit_seq = 1, audit_hash = :h, version = 1, stage = :stage, state = :state, "
        "due_at = :due, escalate_at = :esc",
        h=first.hash,
        stage=first.to_stage,
        state=first.to_state,
        due=first.due_at_after,
        esc=first.escalate_at_after,
    )
    sql(engine, "UPDATE audit_head SET gseq = 1, hash = :h", h=first.hash)
    assert verify(db_url).exit_code == 0
    flagged(
        verify(db_url, "--checkpoint", point),
        "global chain at gseq 3: the checkpoint's entry is not in the database, which ends at gseq 1",
    )


def test_the_newest_dispute_deleted_is_named_by_the_checkpoint(
    bypass: DisputeSnapshot, raise_one: Callable[..., DisputeSnapshot], engine: Engine, db_url: str
) -> None:
    newest = raise_one()
    point = checkpoint(db_url)
    assert point.startswith("4:")
    drop_guards(engine)
    _delete_dispute(engine, newest.dispute.id)
    last = entry(engine, bypass.dispute.id, 3)
    sql(engine, "UPDATE audit_head SET gseq = :g, hash = :h", g=last.gseq, h=last.hash)
    assert verify(db_url).exit_code == 0
    flagged(verify(db_url, "--checkpoint", point), "entries 4 to 4 are missing")
    assert verify(db_url, "--checkpoint", f"3:{last.hash}").exit_code == 0


# ------------------------------------------------------------------------ legacy entries and their seal


@pytest.fixture
def legacy_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database migrated only to 0003, the last revision before the keyed format."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'legacy.db'}"
        upgrade(url, "0003")
        yield url
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    base = _pg_base()
    assert base is not None
    name = f"disputes_legacy_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = _with_database(base, name)
    upgrade(url, "0003")
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


LEGACY_AT = datetime(2019, 5, 1, 9, tzinfo=UTC)


def _write_legacy_dispute(engine: Engine) -> uuid.UUID:
    """A dispute and two entries in the old, unkeyed format, as the service wrote them before 0004."""
    dispute_id = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO policy_versions (id, sha256, text, first_used_at) VALUES (1, :s, '', :at)"),
            {"s": "0" * 64, "at": LEGACY_AT.replace(tzinfo=None)},
        )
    prev = audit.GENESIS_HASH
    rows = []
    for seq, (trigger, state) in enumerate([("raise", "awaiting_response"), ("hold", "on_hold")], start=1):
        e = AuditEntry(
            dispute_id=dispute_id,
            seq=seq,
            at=LEGACY_AT,
            actor=IRO.email,
            actor_role="iro",
            channel="api",
            trigger=trigger,
            from_stage=None if seq == 1 else "quality_assurance",
            to_stage="quality_assurance",
            from_state=None if seq == 1 else "awaiting_response",
            to_state=state,
            due_at_before=None,
            due_at_after=None,
            escalate_at_before=None,
            escalate_at_after=None,
            text_id=None,
            text_sha256=None,
            details="{}",
            prev_hash=prev,
        )
        e.hash = prev = audit.legacy_entry_hash(e)
        rows.append(e)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO disputes (id, reference, child_ref, sibling_refs, case_type, categories, "
                "iro_email, stage, state, owner_role, stage_entry_seq, stage_entered_at, policy_id, "
                "raised_at, updated_at, version, audit_seq, audit_hash) VALUES (:id, 'DR-2019-0001', "
                "'LCS-1', '[]', 'looked_after', '[]', :iro, 'quality_assurance', 'on_hold', 'team_manager', "
                "1, :at, 1, :at, :at, 2, 2, :h)"
            ),
            {
                "id": _uuid_param(engine, dispute_id),
                "iro": IRO.email,
                "at": LEGACY_AT.replace(tzinfo=None),
                "h": prev,
            },
        )
        for e in rows:
            conn.execute(
                text(
                    "INSERT INTO audit_entries (dispute_id, seq, at, actor, actor_role, channel, trigger, "
                    "from_stage, to_stage, from_state, to_state, details, prev_hash, hash) VALUES (:d, :seq, "
                    ":at, :actor, :role, :channel, :trigger, :fs, :ts, :fst, :tst, :details, :prev, :hash)"
                ),
                {
                    "d": _uuid_param(engine, dispute_id),
                    "seq": e.seq,
                    "at": LEGACY_AT.replace(tzinfo=None),
                    "actor": e.actor,
                    "role": e.actor_role,
                    "channel": e.channel,
                    "trigger": e.trigger,
                    "fs": e.from_stage,
                    "ts": e.to_stage,
                    "fst": e.from_state,
                    "tst": e.to_state,
                    "details": e.details,
                    "prev": e.prev_hash,
                    "hash": e.hash,
                },
            )
    return dispute_id


def _uuid_param(engine: Engine, value: uuid.UUID) -> str:
    # SQLAlchemy's Uuid is CHAR(32) hex on SQLite and a native uuid on PostgreSQL.
    return value.hex if engine.dialect.name == "sqlite" else str(value)


def test_legacy_entries_are_sealed_and_a_rewrite_under_the_seal_is_named(legacy_url: str) -> None:
    engine = make_engine(legacy_url)
    try:
        dispute_id = _write_legacy_dispute(engine)
        upgrade(legacy_url, audit_key=TEST_SECRET)
        seal = entry(engine, dispute_id, 3)
        assert seal.trigger == "seal" and seal.channel == "migration" and seal.gseq == 1
        assert json.loads(seal.details) == {"legacy_seq": 2, "legacy_hash": seal.prev_hash}
        # The seal is bookkeeping: the version still counts the two changes.
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version, audit_seq FROM disputes")).one() == (2, 3)
        result = verify(legacy_url)
        assert result.exit_code == 0, result.output

        # The triggers refusing UPDATE and DELETE survived the migration.
        with pytest.raises(Exception, match="append-only"):
            sql(engine, "UPDATE audit_entries SET actor = 'x' WHERE seq = 1")

        # A legacy entry rewritten and the legacy chain rehashed with the unkeyed formula, as it can be.
        drop_guards(engine)
        prev = audit.GENESIS_HASH
        for seq in (1, 2):
            e = entry(engine, dispute_id, seq)
            e.channel = "email" if seq == 1 else e.channel
            e.prev_hash = prev
            e.hash = prev = audit.legacy_entry_hash(e)
            sql(
                engine,
                "UPDATE audit_entries SET channel = :c, prev_hash = :p, hash = :h WHERE id = :id",
                c=e.channel,
                p=e.prev_hash,
                h=e.hash,
                id=e.id,
            )
        flagged(
            verify(legacy_url),
            "entry 3: prev_hash does not match the previous entry's hash",
        )
    finally:
        engine.dispose()
