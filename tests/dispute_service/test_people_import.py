"""`people import`: each address is checked and normalised as the API checks one, and each bad one is
named by the line its record starts on. All or nothing."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from pydantic import EmailStr, TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.errors import InvalidInput
from dispute_service.models import Person
from dispute_service.transactions import import_people
from tests.factories import TEST_SECRET, FakeClock


def _write(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path = tmp_path / "staff.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "email", "roles"])
        writer.writerows(rows)
    return path


def _emails(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(Person.email).order_by(Person.email)))


@pytest.mark.parametrize(
    "email",
    [
        "a@example.gov.uk, c@example.gov.uk",  # two addresses in one cell
        "a@example.gov.uk;c@example.gov.uk",
        "x@example.gov.uk\nBcc: z@example.com",  # a header line smuggled in a quoted cell
        "x@example.gov.uk\r\nBcc: z@example.com",
        "@example.gov.uk",
        "x@localhost",
        "x@@example.gov.uk",
        "x @example.gov.uk",
    ],
)
def test_a_cell_that_is_not_one_address_is_refused_naming_its_line(
    tmp_path: Path, sessions: sessionmaker[Session], clock: FakeClock, email: str
) -> None:
    path = _write(
        tmp_path,
        [
            ("Ima Reviewer", "iro@example.gov.uk", "iro"),
            ("Wrong Address", email, "team_manager"),
            ("Tara Manager", "tm@example.gov.uk", "team_manager"),
            ("Also Wrong", email, "team_manager"),
        ],
    )
    with pytest.raises(InvalidInput) as refused:
        import_people(sessions, path, clock.now, audit_key=TEST_SECRET)
    # The record on line 3 may take two lines of the file (a quoted line break): the next starts after it.
    breaks = email.count("\n")
    assert [where for where, _ in refused.value.errors] == ["line 3", f"line {5 + breaks}"]
    assert all("is not one valid email address" in message for _, message in refused.value.errors)
    assert _emails(sessions) == []


def test_an_address_is_normalised_as_the_api_normalises_it(
    tmp_path: Path, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    written = ["  IRO@Example.GOV.uk ", "Tara.Manager@EXAMPLE.gov.uk", "mañana@example.gov.uk"]
    path = _write(tmp_path, [(f"Person {i}", e, "iro") for i, e in enumerate(written)])
    assert import_people(sessions, path, clock.now, audit_key=TEST_SECRET) == (3, 0)
    as_the_api = sorted(TypeAdapter(EmailStr).validate_python(e.strip()).lower() for e in written)
    assert _emails(sessions) == as_the_api
    assert "iro@example.gov.uk" in as_the_api
