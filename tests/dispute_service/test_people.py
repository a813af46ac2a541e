"""The staff directory's cores: roles in use stay, whoever asks (the API or a CSV import)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service import people
from dispute_service.errors import InvalidInput
from dispute_service.models import Person
from dispute_service.queries import DisputeSnapshot
from tests.factories import TM_EMAIL


def _roles(sessions: sessionmaker[Session]) -> dict[str, list[str]]:
    with sessions() as session:
        return {p.email: p.roles for p in session.scalars(select(Person))}


def test_an_import_may_not_take_away_a_role_in_use(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], tmp_path: Path, clock: Any
) -> None:
    d = raise_one().dispute
    before = _roles(sessions)
    path = tmp_path / "staff.csv"
    path.write_text(
        "name,email,roles\nTara Manager,tm@example.gov.uk,head_of_service\nNew One,new@example.gov.uk,iro\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidInput) as refused, sessions.begin() as session:
        people.import_people(session, path, clock.now)
    [(where, message)] = refused.value.errors
    assert where == TM_EMAIL and d.reference in message and "team_manager" in message
    assert _roles(sessions) == before
