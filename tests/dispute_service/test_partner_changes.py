"""The partner changes: every change to an organisation or an external contact, whoever makes it (the API's
cores or a CSV import), is kept append-only in the database and chained under the audit key, in a chain of
its own beside the people changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from dispute_service import partner_changes, partners, trails
from dispute_service.audit import key_id
from dispute_service.cli import app
from dispute_service.config import Settings
from dispute_service.errors import InvalidInput, PartnerConflict
from dispute_service.models import PartnerChange, PersonChange
from dispute_service.transactions import import_contacts, import_organisations
from tests.factories import ADMIN, ADMIN_EMAIL, TM_EMAIL, FakeClock

KEY = "test-audit-key-0123456789abcdef0123456789"
NURSE = "nurse@nhs.example"


def _changes(sessions: sessionmaker[Session]) -> list[PartnerChange]:
    with sessions() as session:
        return list(session.scalars(select(PartnerChange).order_by(PartnerChange.seq)))


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def _walk_through_every_kind(sessions: sessionmaker[Session], tmp_path: Path, clock: FakeClock) -> None:
    """Two organisations and a contact added, then changed in every way over the API's cores; then CSV
    imports change them again and add one of each. Changes that change nothing record nothing."""
    with sessions.begin() as session:
        for data in (
            partners.OrganisationData("nhs_trust", "The NHS Trust", "partner"),
            partners.OrganisationData("shire", "Shire", "other_authority"),
        ):
            partners.add_organisation(session, ADMIN, data, clock.now, audit_key=KEY)
        partners.add_contact(
            session,
            ADMIN,
            partners.ContactData("Nadia Nurse", "Nurse@NHS.example", "nhs_trust"),
            clock.now,
            audit_key=KEY,
        )
    organisation_changes: list[dict[str, Any]] = [
        {"name": "NHS Foundation Trust"},
        {"kind": "other_authority"},
        {"name": " NHS Foundation Trust ", "kind": "other_authority"},  # changes nothing
    ]
    for change in organisation_changes:
        with sessions.begin() as session:
            fields = {"name": None, "kind": None, **change}
            partners.update_organisation(
                session, ADMIN, "nhs_trust", clock.advance(minutes=1), audit_key=KEY, **fields
            )
    contact_changes: list[dict[str, Any]] = [
        {"name": "Nadia Renamed"},
        {"organisation": "shire"},
        {"active": False},
        {"active": True},
        {"name": "Nadia Renamed", "organisation": "shire", "active": True},  # changes nothing
    ]
    for change in contact_changes:
        with sessions.begin() as session:
            fields = {"name": None, "organisation": None, "active": None, **change}
            partners.update_contact(
                session, ADMIN, "NURSE@nhs.example", clock.advance(minutes=1), audit_key=KEY, **fields
            )
    organisations = _write(
        tmp_path,
        "orgs.csv",
        "id,name,kind\n"
        "nhs_trust,NHS Trust,partner\n"
        "shire,Shire,other_authority\n"  # unchanged
        "school,The School,partner\n",
    )
    assert import_organisations(sessions, organisations, clock.advance(minutes=1), audit_key=KEY) == (1, 2)
    contacts = _write(
        tmp_path,
        "contacts.csv",
        "name,email,organisation\n"
        "Nadia Imported,nurse@nhs.example,nhs_trust\n"
        "Hal Head,head@school.example,school\n",
    )
    assert import_contacts(sessions, contacts, clock.advance(minutes=1), audit_key=KEY) == (1, 1)


@pytest.fixture
def trail(
    sessions: sessionmaker[Session], staff: list[str], tmp_path: Path, clock: FakeClock
) -> list[PartnerChange]:
    _walk_through_every_kind(sessions, tmp_path, clock)
    return _changes(sessions)


def test_every_change_to_organisations_and_contacts_is_recorded_with_who_when_before_and_after(
    trail: list[PartnerChange], sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    rows = [
        (
            c.seq,
            c.actor,
            c.channel,
            c.subject_kind,
            c.subject_id,
            c.kind,
            c.before and json.loads(c.before),
            json.loads(c.after),
        )
        for c in trail
    ]
    api = (ADMIN_EMAIL, "api")
    cli = ("cli", "import")
    org, shire, school = ("organisation", "nhs_trust"), ("organisation", "shire"), ("organisation", "school")
    contact, head = ("contact", NURSE), ("contact", "head@school.example")
    assert rows == [
        (1, *api, *org, "added", None, {"id": "nhs_trust", "name": "The NHS Trust", "kind": "partner"}),
        (2, *api, *shire, "added", None, {"id": "shire", "name": "Shire", "kind": "other_authority"}),
        (
            3,
            *api,
            *contact,
            "added",
            None,
            {"name": "Nadia Nurse", "email": NURSE, "organisation": "nhs_trust", "active": True},
        ),
        (4, *api, *org, "name_changed", {"name": "The NHS Trust"}, {"name": "NHS Foundation Trust"}),
        (5, *api, *org, "kind_changed", {"kind": "partner"}, {"kind": "other_authority"}),
        (6, *api, *contact, "name_changed", {"name": "Nadia Nurse"}, {"name": "Nadia Renamed"}),
        (7, *api, *contact, "organisation_changed", {"organisation": "nhs_trust"}, {"organisation": "shire"}),
        (8, *api, *contact, "deactivated", {"active": True}, {"active": False}),
        (9, *api, *contact, "reactivated", {"active": False}, {"active": True}),
        (10, *cli, *org, "name_changed", {"name": "NHS Foundation Trust"}, {"name": "NHS Trust"}),
        (11, *cli, *org, "kind_changed", {"kind": "other_authority"}, {"kind": "partner"}),
        (12, *cli, *school, "added", None, {"id": "school", "name": "The School", "kind": "partner"}),
        (13, *cli, *contact, "name_changed", {"name": "Nadia Renamed"}, {"name": "Nadia Imported"}),
        (
            14,
            *cli,
            *contact,
            "organisation_changed",
            {"organisation": "shire"},
            {"organisation": "nhs_trust"},
        ),
        (
            15,
            *cli,
            *head,
            "added",
            None,
            {"name": "Hal Head", "email": "head@school.example", "organisation": "school", "active": True},
        ),
    ]
    assert all(a.at <= b.at for a, b in zip(trail, trail[1:], strict=False))
    # A chain of its own, each link keyed: the hash is an HMAC under the key the row names.
    assert trail[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in zip(trail, trail[1:], strict=False))
    assert {c.key_id for c in trail} == {key_id(KEY)}
    assert all(trails.change_hash(partner_changes.TRAIL, c, KEY) == c.hash for c in trail)
    assert trails.change_hash(partner_changes.TRAIL, trail[0], "another key") != trail[0].hash
    with sessions() as session:
        assert partner_changes.verify(session, [KEY]) == (15, [])
        # The staff directory's chain is untouched by any of it.
        assert session.scalar(select(PersonChange.id).limit(1)) is None


def test_the_subject_is_part_of_the_hash(trail: list[PartnerChange]) -> None:
    # A change moved onto another contact (or from a contact to an organisation) no longer verifies.
    change = trail[5]
    for column, value in (("subject_id", "head@school.example"), ("subject_kind", "organisation")):
        moved = PartnerChange(**{c: getattr(change, c) for c in PartnerChange.__table__.columns.keys()})
        setattr(moved, column, value)
        assert trails.change_hash(partner_changes.TRAIL, moved, KEY) != change.hash


def test_a_refused_change_records_nothing(
    sessions: sessionmaker[Session], staff: list[str], tmp_path: Path, clock: FakeClock
) -> None:
    with sessions.begin() as session:
        partners.add_organisation(
            session, ADMIN, partners.OrganisationData("nhs_trust", "NHS", "partner"), clock.now, audit_key=KEY
        )
    before = _changes(sessions)
    with pytest.raises(PartnerConflict, match="never also a staff address"), sessions.begin() as session:
        partners.add_contact(
            session, ADMIN, partners.ContactData("Tara", TM_EMAIL, "nhs_trust"), clock.now, audit_key=KEY
        )
    bad = _write(tmp_path, "orgs.csv", "id,name,kind\nnhs_trust,Renamed,partner\nBad Id,X,partner\n")
    with pytest.raises(InvalidInput):
        import_organisations(sessions, bad, clock.now, audit_key=KEY)
    assert [c.seq for c in _changes(sessions)] == [c.seq for c in before] == [1]


# --- append-only, and tampering named ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE partner_changes SET actor = 'someone@else.gov.uk' WHERE seq = 2",
        "DELETE FROM partner_changes WHERE seq = 3",
        "DELETE FROM partner_changes",
    ],
)
def test_the_database_refuses_update_and_delete(
    trail: list[PartnerChange], engine: Engine, sessions: sessionmaker[Session], statement: str
) -> None:
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement))
    if engine.dialect.name == "postgresql":  # SQLite has no TRUNCATE
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text("TRUNCATE partner_changes"))
    assert [(c.seq, c.hash) for c in _changes(sessions)] == [(c.seq, c.hash) for c in trail]
    with sessions() as session:
        assert partner_changes.verify(session, [KEY]) == (15, [])


def _drop_guards(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER partner_changes_no_update"))
            conn.execute(text("DROP TRIGGER partner_changes_no_delete"))
        else:
            conn.execute(text("DROP TRIGGER partner_changes_no_update ON partner_changes"))
            conn.execute(text("DROP TRIGGER partner_changes_no_delete ON partner_changes"))


def _problems(sessions: sessionmaker[Session], keys: list[str] | None = None) -> list[str]:
    with sessions() as session:
        return [str(p) for p in partner_changes.verify(session, keys or [KEY])[1]]


def test_an_edit_behind_the_databases_back_is_named(
    trail: list[PartnerChange], engine: Engine, sessions: sessionmaker[Session]
) -> None:
    _drop_guards(engine)
    with engine.begin() as conn:
        conn.execute(text("""UPDATE partner_changes SET after = '{"organisation":"school"}' WHERE seq = 7"""))
    problems = _problems(sessions)
    assert problems[0] == (
        "partner change 7: hash does not match the change's contents (the change was altered)"
    )
    assert all("partner change 7" in p or "contact " in p for p in problems)


def test_a_rehashed_edit_is_named_without_the_key(
    trail: list[PartnerChange], engine: Engine, sessions: sessionmaker[Session]
) -> None:
    # Someone with the database but not the key moves a contact in the trail and writes a hash of their own.
    _drop_guards(engine)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE partner_changes SET subject_id = 'someone@nhs.example', hash = :h WHERE seq = 3"),
            {"h": "f" * 64},
        )
    problems = _problems(sessions)
    assert "partner change 3: hash does not match" in problems[0]
    assert "partner change 4: prev_hash does not match the previous change's hash" in problems


def test_a_deleted_change_is_named(
    trail: list[PartnerChange], engine: Engine, sessions: sessionmaker[Session]
) -> None:
    _drop_guards(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM partner_changes WHERE seq = 8"))
    problems = _problems(sessions)
    assert "partner change 9: change(s) 8 before it are missing (deleted)" in problems
    assert "partner change 9: prev_hash does not match the previous change's hash" in problems


def test_the_last_changes_deleted_show_as_the_rows_disagreeing(
    trail: list[PartnerChange], engine: Engine, sessions: sessionmaker[Session]
) -> None:
    _drop_guards(engine)
    with engine.begin() as conn:
        # The last two: the import's move of Nadia back to the NHS trust, and Hal's arrival (Hal, with no
        # change left, looks like someone loaded before the trail began).
        conn.execute(text("DELETE FROM partner_changes WHERE seq >= 14"))
    assert _problems(sessions) == [
        'contact nurse@nhs.example: organisation is "nhs_trust" but the last recorded change (partner change '
        '7) says "shire": a change is missing from the trail, or was made around it'
    ]


def test_a_change_made_around_the_service_is_named(
    trail: list[PartnerChange], engine: Engine, sessions: sessionmaker[Session]
) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE contacts SET active = :no WHERE email = 'head@school.example'"), {"no": False}
        )
        conn.execute(text("UPDATE organisations SET kind = 'other_authority' WHERE id = 'school'"))
    assert sorted(_problems(sessions)) == [
        "contact head@school.example: active is false but the last recorded change (partner change 15) says "
        "true: a change is missing from the trail, or was made around it",
        'organisation school: kind is "other_authority" but the last recorded change (partner change 12) '
        'says "partner": a change is missing from the trail, or was made around it',
    ]


def test_changes_under_a_retired_key_verify_when_it_is_given(
    trail: list[PartnerChange], sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    new_key = "the-next-audit-key-0123456789abcdef012345"
    with sessions.begin() as session:
        partners.update_contact(
            session,
            ADMIN,
            "head@school.example",
            clock.now,
            name="Hal",
            organisation=None,
            active=None,
            audit_key=new_key,
        )
    assert _problems(sessions, [new_key, KEY]) == []
    unknown = f"partner change 1: signed with an unknown key (key id {key_id(KEY)})"
    assert unknown in _problems(sessions, [new_key])


def test_audit_verify_checks_the_partner_changes(
    sessions: sessionmaker[Session], staff: list[str], engine: Engine, db_url: str, clock: FakeClock
) -> None:
    key = Settings(_env_file=None).audit_key  # type: ignore[call-arg]
    with sessions.begin() as session:
        partners.add_organisation(
            session, ADMIN, partners.OrganisationData("nhs_trust", "NHS", "partner"), clock.now, audit_key=key
        )
        partners.add_contact(
            session, ADMIN, partners.ContactData("Nadia", NURSE, "nhs_trust"), clock.now, audit_key=key
        )
    env = {"DISPUTES_DATABASE_URL": db_url, "DISPUTES_AUDIT_KEY": key}
    result = CliRunner().invoke(app, ["audit", "verify"], env=env)
    assert result.exit_code == 0, result.output
    assert "0 people change(s) and 2 partner change(s), every chain verifies" in result.output
    _drop_guards(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE partner_changes SET actor = 'someone@else.gov.uk' WHERE seq = 2"))
    result = CliRunner().invoke(app, ["audit", "verify"], env=env)
    assert result.exit_code == 1
    assert "MISMATCH partner change 2: hash does not match" in result.output
    assert "1 problem(s) in 0 dispute(s), 0 people change(s) and 2 partner change(s)" in result.output
