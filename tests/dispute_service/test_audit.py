"""The audit table is append-only in the database itself, and `audit verify` names tampered entries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from dispute_service import transactions
from dispute_service.cli import app
from dispute_service.inputs import ActionInput
from dispute_service.queries import DisputeSnapshot
from states.policy import Policy
from tests.factories import IRO, TEST_SECRET, TM


@pytest.fixture
def chain(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> DisputeSnapshot:
    d = raise_one()
    transactions.apply_trigger(
        sessions, policy, d.dispute.id, "acknowledge", TM, ActionInput(), clock.advance(hours=1)
    )
    return transactions.apply_trigger(
        sessions,
        policy,
        d.dispute.id,
        "escalate",
        IRO,
        ActionInput(reason="not satisfied"),
        clock.advance(hours=1),
    )


def verify(db_url: str) -> Any:
    return CliRunner().invoke(
        app, ["audit", "verify"], env={"DISPUTES_DATABASE_URL": db_url, "DISPUTES_AUDIT_KEY": TEST_SECRET}
    )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entries SET actor = 'someone@else' WHERE seq = 2",
        "DELETE FROM audit_entries WHERE seq = 3",
        "DELETE FROM audit_entries",
    ],
)
def test_the_database_refuses_update_and_delete(
    chain: DisputeSnapshot, engine: Any, statement: str, db_url: str
) -> None:
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement))
    if engine.dialect.name == "postgresql":  # SQLite has no TRUNCATE
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_entries CASCADE"))
    assert verify(db_url).exit_code == 0


def _drop_guards(engine: Any) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER audit_entries_no_update"))
            conn.execute(text("DROP TRIGGER audit_entries_no_delete"))
        else:
            conn.execute(text("DROP TRIGGER audit_entries_no_update ON audit_entries"))
            conn.execute(text("DROP TRIGGER audit_entries_no_delete ON audit_entries"))


def test_verify_is_green_on_an_honest_log(chain: DisputeSnapshot, db_url: str) -> None:
    result = verify(db_url)
    assert result.exit_code == 0, result.output
    assert "ok: 1 dispute(s)" in result.output


def test_an_edit_behind_the_databases_back_is_named(chain: DisputeSnapshot, engine: Any, db_url: str) -> None:
    _drop_guards(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_entries SET actor = 'someone@else.gov.uk' WHERE seq = 2"))
    result = verify(db_url)
    assert result.exit_code == 1
    reference = chain.dispute.reference
    assert f"MISMATCH {reference} ({chain.dispute.id}) entry 2: hash does not match" in result.output
    assert "entry 1" not in result.output and "entry 3" not in result.output


def test_entries_deleted_from_the_end_are_caught(chain: DisputeSnapshot, engine: Any, db_url: str) -> None:
    _drop_guards(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entries WHERE seq = 3"))
    result = verify(db_url)
    assert result.exit_code == 1
    assert "missing from the end" in result.output and "3 entries" in result.output


def test_a_text_changed_behind_the_databases_back_is_named(
    chain: DisputeSnapshot, engine: Any, db_url: str
) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_texts SET body = 'rewritten history' WHERE kind = 'summary'"))
    result = verify(db_url)
    assert result.exit_code == 1
    assert "entry 1: its text does not match" in result.output
