from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from api.app import Mode, create_app
from dispute_service import transactions
from dispute_service.access import (
    REPORT_READER_ROLES,
    SYSTEM,
    Actor,
    acting_role,
    authenticate,
    readable_by,
    relation_to,
    require_admin,
    require_report_reader,
)
from dispute_service.config import Settings
from dispute_service.errors import DisputeNotFound, Forbidden
from dispute_service.inputs import ActionInput
from dispute_service.models import Dispute, Person
from dispute_service.queries import DisputeFilters, DisputeSnapshot
from states.permissions import Relation
from states.policy import Policy
from tests.factories import (
    AD_EMAIL,
    ADMIN_EMAIL,
    HOCP,
    HOS_EMAIL,
    IRO,
    IRO_EMAIL,
    IRO_MANAGER_EMAIL,
    TM,
    TM_EMAIL,
    FakeClock,
)


def _someone(*roles: str) -> Actor:
    return Actor("someone@example.gov.uk", frozenset(roles))


# Written out, not taken from REPORT_READER_ROLES: a role dropped from that list must fail here.
MANAGERS = [
    ("iro_manager", IRO_MANAGER_EMAIL),
    ("admin", ADMIN_EMAIL),
    ("head_of_service", HOS_EMAIL),
    ("assistant_director", AD_EMAIL),
]


@pytest.mark.parametrize(("role", "email"), MANAGERS, ids=[role for role, _ in MANAGERS])
def test_managers_may_read_the_report(
    role: str,
    email: str,
    settings: Settings,
    clock: FakeClock,
    raise_one: Callable[..., DisputeSnapshot],
    token_for: Callable[[str], dict[str, str]],
) -> None:
    assert require_report_reader(_someone(role)) is None
    assert role in REPORT_READER_ROLES
    raise_one()  # in the 2017-18 year: 8 January 2018
    with TestClient(create_app(settings, mode=Mode.STRICT, clock=clock)) as client:
        response = client.get("/api/v1/reports/annual", params={"year": 2017}, headers=token_for(email))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["period"]["label"] == "2017-18"
    assert body["raised"] == {"this_year": 1, "previous_year": 0, "change": 1}
    assert body["highest_stage"]["quality_assurance"] == 1


@pytest.mark.parametrize("role", ["iro", "team_manager", "head_of_corporate_parenting"])
def test_others_may_not(role: str) -> None:
    with pytest.raises(Forbidden, match="may not read the annual report"):
        require_report_reader(_someone(role))


def test_only_admins_keep_the_directory_and_the_outbox() -> None:
    require_admin(_someone("admin"), "list people")
    for role in ("iro_manager", "iro", "assistant_director"):
        with pytest.raises(Forbidden, match="only an admin"):
            require_admin(_someone(role), "list people")


def test_the_scheduler_acts_in_no_role() -> None:
    dispute = Dispute(iro_email=IRO_EMAIL, owner_email=None, owner_role="team_manager")
    assert acting_role(dispute, SYSTEM) is None
    assert acting_role(dispute, _someone("team_manager")) == "team_manager"
    assert acting_role(dispute, IRO) == "iro"


# --- rights follow the roles a person holds now -------------------------------------------------------


def test_a_named_owner_who_lost_the_stages_role_owns_nothing() -> None:
    dispute = Dispute(iro_email=IRO_EMAIL, owner_email=TM_EMAIL, owner_role="team_manager")
    moved_on = Actor(TM_EMAIL, frozenset({"head_of_service"}))
    assert relation_to(dispute, moved_on) == Relation(roles=moved_on.roles)
    assert relation_to(dispute, TM).is_owner


def test_the_iro_who_lost_the_iro_role_is_no_longer_the_iro() -> None:
    dispute = Dispute(iro_email=IRO_EMAIL, owner_email=TM_EMAIL, owner_role="team_manager")
    assert not relation_to(dispute, Actor(IRO_EMAIL, frozenset({"head_of_service"}))).is_iro
    assert relation_to(dispute, IRO).is_iro


def test_the_recorded_role_is_always_one_the_actor_holds() -> None:
    # A person named on a stage (or as IRO) while holding a role, who has since lost it, acts only
    # through what they hold now: here the IRO manager's role, never the team_manager role they lack.
    dispute = Dispute(iro_email=IRO_EMAIL, owner_email=TM_EMAIL, owner_role="team_manager")
    assert acting_role(dispute, Actor(TM_EMAIL, frozenset({"iro_manager"}))) == "iro_manager"
    assert acting_role(dispute, Actor(IRO_EMAIL, frozenset({"admin"}))) == "admin"
    assert acting_role(dispute, TM) == "team_manager"


def _readable(sessions: sessionmaker[Session], actor: Actor) -> set[uuid.UUID]:
    with sessions() as session:
        return set(session.scalars(select(Dispute.id).where(readable_by(actor))).all())


def _set_roles(sessions: sessionmaker[Session], email: str, roles: list[str]) -> Actor:
    """Change a person's roles behind the service's back, and sign them in as they now are."""
    with sessions.begin() as session:
        session.execute(update(Person).where(Person.email == email).values(roles=roles))
    with sessions() as session:
        return authenticate(session, email)


def test_a_named_owner_who_lost_the_role_can_no_longer_read_or_act(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    d = raise_one().dispute
    assert d.owner_email == TM_EMAIL
    assert _readable(sessions, TM) == {d.id}

    moved_on = _set_roles(sessions, TM_EMAIL, ["head_of_service"])
    assert _readable(sessions, moved_on) == set()
    with pytest.raises(DisputeNotFound):
        transactions.get_dispute(sessions, policy, d.id, moved_on, clock.now)
    with pytest.raises(DisputeNotFound):
        transactions.apply_trigger(sessions, policy, d.id, "acknowledge", moved_on, ActionInput(), clock.now)
    page = transactions.list_disputes(sessions, policy, moved_on, DisputeFilters(), clock.now)
    assert (page.items, page.total, page.next) == ([], 0, None)


def test_the_iro_who_lost_the_iro_role_can_no_longer_read_or_act(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    d = raise_one().dispute
    moved_on = _set_roles(sessions, IRO_EMAIL, ["team_manager"])
    assert _readable(sessions, moved_on) == set()
    with pytest.raises(DisputeNotFound):
        transactions.apply_trigger(
            sessions, policy, d.id, "withdraw", moved_on, ActionInput(reason="r"), clock.now
        )


def test_holders_of_a_stages_role_read_it_only_while_they_hold_the_role(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    d = raise_one().dispute
    transactions.apply_trigger(sessions, policy, d.id, "escalate", IRO, ActionInput(reason="r"), clock.now)
    transactions.apply_trigger(sessions, policy, d.id, "escalate", IRO, ActionInput(reason="r"), clock.now)
    # The head of corporate parenting's stage is owned by the role: every holder reads it.
    assert _readable(sessions, HOCP) == {d.id}
    assert _readable(sessions, _set_roles(sessions, HOCP.email, ["head_of_service"])) == set()
