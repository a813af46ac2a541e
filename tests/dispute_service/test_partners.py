"""Organisations and contacts: the CSV imports name every bad row by its line and load nothing; a contact's
address is never also a staff address, whichever is added first; and a contact can never sign in."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from dispute_service import partners, people, web_sessions
from dispute_service.cli import app
from dispute_service.errors import Forbidden, InvalidInput, PartnerConflict, PersonConflict, Unauthenticated
from dispute_service.models import Contact, Organisation, PartnerChange, Person
from dispute_service.transactions import import_contacts, import_organisations, import_people
from tests.factories import ADMIN, IRO, TEST_SECRET, TM_EMAIL, FakeClock

Invoke = Callable[..., Result]
NURSE = "nurse@nhs.example"
KEY = TEST_SECRET


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _organisations(sessions: sessionmaker[Session]) -> dict[str, tuple[str, str]]:
    with sessions() as session:
        return {o.id: (o.name, o.kind) for o in session.scalars(select(Organisation))}


def _contacts(sessions: sessionmaker[Session]) -> dict[str, tuple[str, str, bool]]:
    with sessions() as session:
        return {c.email: (c.name, c.organisation_id, c.active) for c in session.scalars(select(Contact))}


def _refusals(refused: pytest.ExceptionInfo[InvalidInput]) -> dict[str, str]:
    return dict(refused.value.errors)


@pytest.fixture
def nhs(sessions: sessionmaker[Session], staff: list[str], clock: FakeClock) -> None:
    """An NHS trust with one contact, the designated nurse."""
    with sessions.begin() as session:
        partners.add_organisation(
            session,
            ADMIN,
            partners.OrganisationData("nhs_trust", "The NHS Trust", "partner"),
            clock.now,
            audit_key=KEY,
        )
        partners.add_contact(
            session,
            ADMIN,
            partners.ContactData("Nadia Nurse", "Nurse@NHS.example", "nhs_trust"),
            clock.now,
            audit_key=KEY,
        )


# --- organisations import ------------------------------------------------------------------------------


def test_organisations_import_adds_then_updates(
    sessions: sessionmaker[Session], tmp_path: Path, clock: FakeClock
) -> None:
    first = _write(tmp_path, "a.csv", "id,name,kind\nnhs_trust,The NHS Trust,partner\n")
    assert import_organisations(sessions, first, clock.now, audit_key=KEY) == (1, 0)
    second = _write(
        tmp_path,
        "b.csv",
        "kind,id,name\n"  # the columns in any order
        "partner, nhs_trust ,NHS Foundation Trust\n"
        "other_authority,shire_council,Shire County Council\n",
    )
    assert import_organisations(sessions, second, clock.now, audit_key=KEY) == (1, 1)
    assert _organisations(sessions) == {
        "nhs_trust": ("NHS Foundation Trust", "partner"),
        "shire_council": ("Shire County Council", "other_authority"),
    }


def test_organisations_import_names_every_bad_row_and_loads_nothing(
    sessions: sessionmaker[Session], tmp_path: Path, clock: FakeClock
) -> None:
    path = _write(
        tmp_path,
        "orgs.csv",
        "id,name,kind\n"
        "nhs_trust,The NHS Trust,partner\n"  # 2: fine
        "NHS-Trust,Shouting Trust,partner\n"  # 3: a bad id
        "school,The School,charity\n"  # 4: an unknown kind
        "nhs_trust,The NHS Trust again,partner\n"  # 5: twice in the file
        'housing,"",partner\n'  # 6: no name
        "shire_council,Shire,other_authority,extra\n"  # 7: a cell too many
        f"{'a' * 65},Long,partner\n"  # 8: an id too long
        "shire,Shire County Council,other_authority\n",  # 9: fine
    )
    with pytest.raises(InvalidInput) as refused:
        import_organisations(sessions, path, clock.now, audit_key=KEY)
    found = _refusals(refused)
    assert sorted(found, key=lambda w: int(w.split()[1])) == [f"line {n}" for n in (3, 4, 5, 6, 7, 8)]
    assert "'NHS-Trust'" in found["line 3"] and "lower-case" in found["line 3"]
    assert "'charity'" in found["line 4"] and "partner, other_authority" in found["line 4"]
    assert "appears twice" in found["line 5"]
    assert "name is empty" in found["line 6"]
    assert "more cells" in found["line 7"]
    assert "at most 64" in found["line 8"]
    assert _organisations(sessions) == {}


@pytest.mark.parametrize("header", ["id,name", "id,name,kind,notes", "name,email,organisation", "id,id,kind"])
def test_organisations_import_wants_exactly_its_columns(
    sessions: sessionmaker[Session], tmp_path: Path, clock: FakeClock, header: str
) -> None:
    path = _write(tmp_path, "orgs.csv", f"{header}\nnhs_trust,The NHS Trust,partner\n")
    with pytest.raises(InvalidInput) as refused:
        import_organisations(sessions, path, clock.now, audit_key=KEY)
    assert list(_refusals(refused)) == ["header"]
    assert "id,name,kind" in refused.value.errors[0][1]
    assert _organisations(sessions) == {}


# --- contacts import -----------------------------------------------------------------------------------


def test_contacts_import_adds_then_updates_leaving_active_alone(
    sessions: sessionmaker[Session], nhs: None, tmp_path: Path, clock: FakeClock
) -> None:
    with sessions.begin() as session:
        partners.add_organisation(
            session,
            ADMIN,
            partners.OrganisationData("school", "The School", "partner"),
            clock.now,
            audit_key=KEY,
        )
        partners.update_contact(
            session, ADMIN, NURSE, clock.now, name=None, organisation=None, active=False, audit_key=KEY
        )
    path = _write(
        tmp_path,
        "contacts.csv",
        "name,email,organisation\n"
        "Nadia Renamed,NURSE@nhs.example,school\n"
        "Hal Head, head@School.example ,school\n",
    )
    assert import_contacts(sessions, path, clock.now, audit_key=KEY) == (1, 1)
    assert _contacts(sessions) == {
        NURSE: ("Nadia Renamed", "school", False),
        "head@school.example": ("Hal Head", "school", True),
    }


def test_contacts_import_names_every_bad_row_and_loads_nothing(
    sessions: sessionmaker[Session], nhs: None, tmp_path: Path, clock: FakeClock
) -> None:
    before = _contacts(sessions)
    path = _write(
        tmp_path,
        "contacts.csv",
        "name,email,organisation\n"
        "Fine Person,fine@nhs.example,nhs_trust\n"  # 2: fine
        "Bad Address,not-an-address,nhs_trust\n"  # 3: a bad address
        '"Smuggled","x@nhs.example\nBcc: z@example.com",nhs_trust\n'  # 4 (and 5): not one address
        "No Address,,nhs_trust\n"  # 6: no address
        "Lost Person,lost@nhs.example,no_such_trust\n"  # 7: an unknown organisation
        "Tara Manager,TM@example.gov.uk,nhs_trust\n"  # 8: a staff address
        "Fine Again,FINE@nhs.example,nhs_trust\n"  # 9: twice in the file
        ",nameless@nhs.example,nhs_trust\n",  # 10: no name
    )
    with pytest.raises(InvalidInput) as refused:
        import_contacts(sessions, path, clock.now, audit_key=KEY)
    found = _refusals(refused)
    assert sorted(found, key=lambda w: int(w.split()[1])) == [f"line {n}" for n in (3, 4, 6, 7, 8, 9, 10)]
    for line in (3, 4, 6):
        assert "is not one valid email address" in found[f"line {line}"]
    assert "no organisation 'no_such_trust'" in found["line 7"]
    assert TM_EMAIL in found["line 8"] and "never also a staff address" in found["line 8"]
    assert "fine@nhs.example appears twice" in found["line 9"]
    assert "name is empty" in found["line 10"]
    assert _contacts(sessions) == before


def test_contacts_import_wants_exactly_its_columns(
    sessions: sessionmaker[Session], nhs: None, tmp_path: Path, clock: FakeClock
) -> None:
    path = _write(tmp_path, "contacts.csv", "name,email,organisation,roles\nX,x@nhs.example,nhs_trust,iro\n")
    with pytest.raises(InvalidInput) as refused:
        import_contacts(sessions, path, clock.now, audit_key=KEY)
    assert list(_refusals(refused)) == ["header"]


# --- a contact's address is never a staff address ----------------------------------------------------------


def test_adding_a_contact_at_a_staff_address_is_refused(
    sessions: sessionmaker[Session], nhs: None, clock: FakeClock
) -> None:
    with pytest.raises(PartnerConflict, match="never also a staff address"), sessions.begin() as session:
        partners.add_contact(
            session,
            ADMIN,
            partners.ContactData("Tara", TM_EMAIL.upper(), "nhs_trust"),
            clock.now,
            audit_key=KEY,
        )
    assert TM_EMAIL not in _contacts(sessions)


def test_adding_a_person_at_a_contacts_address_is_refused(
    sessions: sessionmaker[Session], nhs: None, clock: FakeClock
) -> None:
    with pytest.raises(PersonConflict, match="external contact of the organisation nhs_trust"):
        with sessions.begin() as session:
            people.add_person(
                session,
                ADMIN,
                people.PersonData("Nadia", "NURSE@nhs.example", ["iro"]),
                clock.now,
                audit_key=TEST_SECRET,
            )
    with sessions() as session:
        assert session.scalar(select(Person).where(Person.email == NURSE)) is None


def test_the_people_import_refuses_a_contacts_address_by_line(
    sessions: sessionmaker[Session], nhs: None, tmp_path: Path, clock: FakeClock
) -> None:
    path = _write(
        tmp_path,
        "staff.csv",
        "name,email,roles\nNew Person,new@example.gov.uk,iro\nNadia Nurse,Nurse@nhs.example,team_manager\n",
    )
    with pytest.raises(InvalidInput) as refused:
        import_people(sessions, path, clock.now, audit_key=TEST_SECRET)
    [(where, message)] = refused.value.errors
    assert where == "line 3"
    assert NURSE in message and "never also a staff address" in message
    with sessions() as session:
        assert session.scalar(select(Person).where(Person.email == "new@example.gov.uk")) is None


# --- who may, and who never signs in ---------------------------------------------------------------------


def test_only_admins_keep_organisations_and_contacts(
    sessions: sessionmaker[Session], nhs: None, clock: FakeClock
) -> None:
    calls: list[Callable[[Session], object]] = [
        lambda s: partners.list_organisations(s, IRO),
        lambda s: partners.add_organisation(
            s, IRO, partners.OrganisationData("x", "X", "partner"), clock.now, audit_key=KEY
        ),
        lambda s: partners.update_organisation(
            s, IRO, "nhs_trust", clock.now, name="X", kind=None, audit_key=KEY
        ),
        lambda s: partners.list_contacts(s, IRO),
        lambda s: partners.add_contact(
            s, IRO, partners.ContactData("X", "x@nhs.example", "nhs_trust"), clock.now, audit_key=KEY
        ),
        lambda s: partners.update_contact(
            s, IRO, NURSE, clock.now, name="X", organisation=None, active=None, audit_key=KEY
        ),
    ]
    for call in calls:
        with pytest.raises(Forbidden), sessions.begin() as session:
            call(session)


def test_a_contact_cannot_sign_in_to_the_pages(
    sessions: sessionmaker[Session], nhs: None, clock: FakeClock
) -> None:
    with pytest.raises(Unauthenticated), sessions.begin() as session:
        web_sessions.begin(session, NURSE, clock.now)


# --- through the command line ----------------------------------------------------------------------------


@pytest.fixture
def run(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    # No stray .env or DISPUTES_* variable from the developer's shell may leak into what the CLI reads.
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), env={"DISPUTES_DATABASE_URL": db_url, "DISPUTES_POLICY": None})

    return invoke


def test_the_cli_imports_organisations_then_contacts(
    run: Invoke, tmp_path: Path, sessions: sessionmaker[Session], staff: list[str]
) -> None:
    organisations = _write(
        tmp_path, "orgs.csv", "id,name,kind\nnhs_trust,The NHS Trust,partner\nshire,Shire,other_authority\n"
    )
    result = run("organisations", "import", str(organisations))
    assert result.exit_code == 0, result.output
    assert "2 added, 0 updated" in result.output
    contacts = _write(
        tmp_path, "contacts.csv", "name,email,organisation\nNadia Nurse,nurse@nhs.example,nhs_trust\n"
    )
    result = run("contacts", "import", str(contacts))
    assert result.exit_code == 0, result.output
    assert "1 added, 0 updated" in result.output
    assert _contacts(sessions) == {NURSE: ("Nadia Nurse", "nhs_trust", True)}
    # Each addition is in the partner changes, as the command line's.
    with sessions() as session:
        changes = session.scalars(select(PartnerChange).order_by(PartnerChange.seq)).all()
        assert [(c.actor, c.channel, c.subject_kind, c.subject_id, c.kind) for c in changes] == [
            ("cli", "import", "organisation", "nhs_trust", "added"),
            ("cli", "import", "organisation", "shire", "added"),
            ("cli", "import", "contact", NURSE, "added"),
        ]


def test_the_cli_names_each_bad_row_by_line_and_exits_non_zero(
    run: Invoke, tmp_path: Path, sessions: sessionmaker[Session], staff: list[str]
) -> None:
    organisations = _write(
        tmp_path,
        "orgs.csv",
        "id,name,kind\nnhs_trust,The NHS Trust,partner\nBad Id,X,partner\nschool,S,club\n",
    )
    result = run("organisations", "import", str(organisations))
    assert result.exit_code == 1
    assert "line 3: id 'Bad Id'" in result.output and "line 4: kind 'club'" in result.output
    assert "line 2" not in result.output and "nothing was imported" in result.output
    assert _organisations(sessions) == {}

    contacts = _write(
        tmp_path,
        "contacts.csv",
        "name,email,organisation\nA,a@nhs.example,nhs_trust\nB,b@,nhs_trust\nTara,tm@example.gov.uk,nhs_trust\n",
    )
    result = run("contacts", "import", str(contacts))
    assert result.exit_code == 1
    # Nothing named nhs_trust was loaded above, so every row's organisation is unknown too.
    assert "line 2: there is no organisation 'nhs_trust'" in result.output
    assert "line 3: email 'b@'" in result.output
    assert "line 4: tm@example.gov.uk is in the staff directory" in result.output
    assert "nothing was imported" in result.output
    assert _contacts(sessions) == {}


def test_the_cli_refuses_a_missing_file(run: Invoke, tmp_path: Path) -> None:
    for command in ("organisations", "contacts"):
        result = run(command, "import", str(tmp_path / "absent.csv"))
        assert result.exit_code != 0 and "absent.csv" in result.output
