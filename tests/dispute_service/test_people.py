"""The staff directory's cores: roles in use stay, whoever asks (the API or a CSV import), and every change
is kept in the people changes, append-only in the database and chained under the audit key."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from dispute_service import people, people_changes
from dispute_service.cli import app
from dispute_service.config import Settings
from dispute_service.errors import InvalidInput, PersonConflict
from dispute_service.models import Person, PersonChange
from dispute_service.queries import DisputeSnapshot
from tests.factories import ADMIN, ADMIN_EMAIL, TM_EMAIL

KEY = "test-audit-key-0123456789abcdef0123456789"


def _roles(sessions: sessionmaker[Session]) -> dict[str, list[str]]:
    with sessions() as session:
        return {p.email: p.roles for p in session.scalars(select(Person))}


def _csv(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "staff.csv"
    path.write_text("name,email,roles\n" + body, encoding="utf-8")
    return path


def _changes(sessions: sessionmaker[Session]) -> list[PersonChange]:
    with sessions() as session:
        return list(session.scalars(select(PersonChange).order_by(PersonChange.seq)))


def test_an_import_may_not_take_away_a_role_in_use(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], tmp_path: Path, clock: Any
) -> None:
    d = raise_one().dispute
    before = _roles(sessions)
    path = _csv(tmp_path, "Tara Manager,tm@example.gov.uk,head_of_service\nNew One,new@example.gov.uk,iro\n")
    with pytest.raises(InvalidInput) as refused, sessions.begin() as session:
        people.import_people(session, path, clock.now, audit_key=KEY)
    [(where, message)] = refused.value.errors
    assert where == TM_EMAIL and d.reference in message and "team_manager" in message
    assert _roles(sessions) == before
    assert _changes(sessions) == []


# --- the people changes ---------------------------------------------------------------------------------


def _walk_through_every_kind(sessions: sessionmaker[Session], tmp_path: Path, clock: Any) -> None:
    """One person added, renamed, given a role, deactivated and reactivated over the API's cores; then a CSV
    import renames them, changes their roles and adds someone."""
    with sessions.begin() as session:
        people.add_person(
            session,
            ADMIN,
            people.PersonData("Nina New", "Nina@Example.gov.uk", ["iro"]),
            clock.now,
            audit_key=KEY,
        )
    changes: list[dict[str, Any]] = [
        {"name": "Nina Renamed"},
        {"roles": ["iro", "team_manager"]},
        {"active": False},
        {"active": True},
        {"name": "Nina Renamed", "roles": ["team_manager", "iro"], "active": True},  # changes nothing
    ]
    for change in changes:
        with sessions.begin() as session:
            fields = {"name": None, "roles": None, "active": None, **change}
            people.update_person(
                session, ADMIN, "nina@example.gov.uk", clock.advance(minutes=1), audit_key=KEY, **fields
            )
    path = _csv(
        tmp_path, "Nina Imported,nina@example.gov.uk,iro_manager\nOlly Other,olly@example.gov.uk,iro\n"
    )
    with sessions.begin() as session:
        assert people.import_people(session, path, clock.advance(minutes=1), audit_key=KEY) == (1, 1)


def test_every_change_to_a_person_is_recorded_with_who_when_before_and_after(
    sessions: sessionmaker[Session], staff: list[str], tmp_path: Path, clock: Any
) -> None:
    started = clock.now
    _walk_through_every_kind(sessions, tmp_path, clock)
    rows = [
        (
            c.seq,
            c.actor,
            c.channel,
            c.person_email,
            c.kind,
            c.before and json.loads(c.before),
            json.loads(c.after),
        )
        for c in _changes(sessions)
    ]
    nina = "nina@example.gov.uk"
    assert rows == [
        (
            1,
            ADMIN_EMAIL,
            "api",
            nina,
            "added",
            None,
            {"name": "Nina New", "email": nina, "roles": ["iro"], "active": True},
        ),
        (2, ADMIN_EMAIL, "api", nina, "name_changed", {"name": "Nina New"}, {"name": "Nina Renamed"}),
        (
            3,
            ADMIN_EMAIL,
            "api",
            nina,
            "roles_changed",
            {"roles": ["iro"]},
            {"roles": ["iro", "team_manager"]},
        ),
        (4, ADMIN_EMAIL, "api", nina, "deactivated", {"active": True}, {"active": False}),
        (5, ADMIN_EMAIL, "api", nina, "reactivated", {"active": False}, {"active": True}),
        (6, "cli", "import", nina, "name_changed", {"name": "Nina Renamed"}, {"name": "Nina Imported"}),
        (
            7,
            "cli",
            "import",
            nina,
            "roles_changed",
            {"roles": ["iro", "team_manager"]},
            {"roles": ["iro_manager"]},
        ),
        (
            8,
            "cli",
            "import",
            "olly@example.gov.uk",
            "added",
            None,
            {"name": "Olly Other", "email": "olly@example.gov.uk", "roles": ["iro"], "active": True},
        ),
    ]
    changes = _changes(sessions)
    assert changes[0].at == started and all(a.at <= b.at for a, b in zip(changes, changes[1:], strict=False))
    # One chain, each link keyed: the hash is an HMAC under the key the row names.
    assert changes[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in zip(changes, changes[1:], strict=False))
    assert {c.key_id for c in changes} == {people_changes.key_id(KEY)}
    assert all(people_changes.change_hash(c, KEY) == c.hash for c in changes)
    assert people_changes.change_hash(changes[0], "another key") != changes[0].hash
    with sessions() as session:
        assert people_changes.verify(session, [KEY]) == (8, [])


def test_the_hash_of_a_people_change_keeps_its_stored_format() -> None:
    # Rows already written must still verify: the hash is over exactly these fields, as the people changes
    # hashed them before their chaining was shared with the partner changes.
    change = PersonChange(
        seq=3,
        at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        actor=ADMIN_EMAIL,
        channel="api",
        person_email="nina@example.gov.uk",
        kind="roles_changed",
        before='{"roles":["iro"]}',
        after='{"roles":["iro","team_manager"]}',
        key_id="abcd1234",
        prev_hash="1" * 64,
        hash="",
    )
    assert (
        people_changes.change_hash(change, "k" * 40)
        == "856ed645a58d3138c6b5d42ab16bed7ba898ea133535effa659b8b3fb7683bd3"
    )


def test_a_refused_change_records_nothing(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], clock: Any
) -> None:
    raise_one()
    with pytest.raises(PersonConflict, match="cannot be deactivated"), sessions.begin() as session:
        people.update_person(
            session, ADMIN, TM_EMAIL, clock.now, name="X", roles=None, active=False, audit_key=KEY
        )
    assert _changes(sessions) == []


@pytest.fixture
def trail(
    sessions: sessionmaker[Session], staff: list[str], tmp_path: Path, clock: Any
) -> list[PersonChange]:
    _walk_through_every_kind(sessions, tmp_path, clock)
    return _changes(sessions)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE people_changes SET actor = 'someone@else.gov.uk' WHERE seq = 2",
        "DELETE FROM people_changes WHERE seq = 3",
        "DELETE FROM people_changes",
    ],
)
def test_the_database_refuses_update_and_delete(
    trail: list[PersonChange], engine: Engine, sessions: sessionmaker[Session], statement: str
) -> None:
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement))
    if engine.dialect.name == "postgresql":  # SQLite has no TRUNCATE
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text("TRUNCATE people_changes"))
    assert [(c.seq, c.hash) for c in _changes(sessions)] == [(c.seq, c.hash) for c in trail]
    with sessions() as session:
        assert people_changes.verify(session, [KEY]) == (8, [])


def _drop_guards(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER people_changes_no_update"))
            conn.execute(text("DROP TRIGGER people_changes_no_delete"))
        else:
            conn.execute(text("DROP TRIGGER people_changes_no_update ON people_changes"))
            conn.execute(text("DROP TRIGGER people_changes_no_delete ON people_changes"))


def _problems(sessions: sessionmaker[Session], keys: list[str] | None = None) -> list[str]:
    with sessions() as session:
        return [str(p) for p in people_changes.verify(session, keys or [KEY])[1]]


def test_an_edit_behind_the_databases_back_is_named(
    trail: list[PersonChange], engine: Engine, sessions: sessionmaker[Session]
) -> None:
    _drop_guards(engine)
    with engine.begin() as conn:
        conn.execute(text("""UPDATE people_changes SET after = '{"roles":["admin"]}' WHERE seq = 3"""))
    problems = _problems(sessions)
    assert (
        problems[0] == "people change 3: hash does not match the change's contents (the change was altered)"
    )
    assert all("people change 3" in p or "person " in p for p in problems)


def test_a_rehashed_edit_is_named_without_the_key(
    trail: list[PersonChange], engine: Engine, sessions: sessionmaker[Session]
) -> None:
    # Someone with the database but not the key rewrites an entry and recomputes a plain hash of it.
    _drop_guards(engine)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE people_changes SET actor = 'admin2@example.gov.uk', hash = :h WHERE seq = 2"),
            {"h": "f" * 64},
        )
    problems = _problems(sessions)
    assert "people change 2: hash does not match" in problems[0]
    assert "people change 3: prev_hash does not match the previous change's hash" in problems


def test_a_deleted_change_is_named(
    trail: list[PersonChange], engine: Engine, sessions: sessionmaker[Session]
) -> None:
    _drop_guards(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM people_changes WHERE seq = 4"))
    problems = _problems(sessions)
    assert "people change 5: change(s) 4 before it are missing (deleted)" in problems
    assert "people change 5: prev_hash does not match the previous change's hash" in problems


def test_the_last_change_deleted_shows_as_the_directory_disagreeing(
    trail: list[PersonChange], engine: Engine, sessions: sessionmaker[Session]
) -> None:
    _drop_guards(engine)
    with engine.begin() as conn:
        # The last two: the import's change of Nina's roles, and Olly's arrival (Olly, with no change left,
        # looks like someone loaded before the trail began).
        conn.execute(text("DELETE FROM people_changes WHERE seq >= 7"))
    assert _problems(sessions) == [
        'person nina@example.gov.uk: roles is ["iro_manager"] but the last recorded change (people change 3) '
        'says ["iro", "team_manager"]: a change is missing from the trail, or was made around it'
    ]


def test_a_role_granted_around_the_service_is_named(
    trail: list[PersonChange], engine: Engine, sessions: sessionmaker[Session]
) -> None:
    with engine.begin() as conn:
        conn.execute(text("""UPDATE people SET roles = '["admin"]' WHERE email = 'olly@example.gov.uk'"""))
    [problem] = _problems(sessions)
    assert problem.startswith(
        'person olly@example.gov.uk: roles is ["admin"] but the last recorded change (people change 8)'
    )


def test_changes_under_a_retired_key_verify_when_it_is_given(
    trail: list[PersonChange], sessions: sessionmaker[Session], clock: Any
) -> None:
    new_key = "the-next-audit-key-0123456789abcdef012345"
    with sessions.begin() as session:
        people.update_person(
            session,
            ADMIN,
            "olly@example.gov.uk",
            clock.now,
            name="Olly",
            roles=None,
            active=None,
            audit_key=new_key,
        )
    assert _problems(sessions, [new_key, KEY]) == []
    unknown = f"people change 1: signed with an unknown key (key id {people_changes.key_id(KEY)})"
    assert unknown in _problems(sessions, [new_key])


def test_audit_verify_checks_the_people_changes(
    sessions: sessionmaker[Session], staff: list[str], engine: Engine, db_url: str, tmp_path: Path, clock: Any
) -> None:
    key = Settings(_env_file=None).audit_key  # type: ignore[call-arg]
    with sessions.begin() as session:
        people.add_person(
            session,
            ADMIN,
            people.PersonData("Nina", "nina@example.gov.uk", ["iro"]),
            clock.now,
            audit_key=key,
        )
    env = {"DISPUTES_DATABASE_URL": db_url, "DISPUTES_AUDIT_KEY": key}
    result = CliRunner().invoke(app, ["audit", "verify"], env=env)
    assert result.exit_code == 0, result.output
    assert "1 people change(s)" in result.output
    _drop_guards(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE people_changes SET actor = 'someone@else.gov.uk'"))
    result = CliRunner().invoke(app, ["audit", "verify"], env=env)
    assert result.exit_code == 1
    assert "MISMATCH people change 1: hash does not match" in result.output
