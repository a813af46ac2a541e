"""When nobody active holds a stage's role, its emails go to the admins and the IRO managers, who can hand it
to someone: an email to nobody would leave the stage to run out unseen."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from dispute_service import outbox, transactions
from dispute_service.inputs import ActionInput
from dispute_service.models import Notification, Person
from dispute_service.queries import DisputeSnapshot
from states.policy import Policy
from tests.factories import (
    ADMIN_EMAIL,
    HOCP_EMAIL,
    HOS_EMAIL,
    IRO,
    IRO_EMAIL,
    IRO_MANAGER_EMAIL,
    TM2_EMAIL,
    TM_EMAIL,
    FakeClock,
)


def deactivate(sessions: sessionmaker[Session], email: str) -> None:
    with sessions.begin() as session:
        session.execute(update(Person).where(Person.email == email).values(active=False))


def test_owners_of_a_named_owner_a_held_role_and_a_role_nobody_holds(
    sessions: sessionmaker[Session], staff: list[str], backend: str
) -> None:
    with sessions() as session:
        assert outbox.owners_of(session, TM_EMAIL, "team_manager") == [TM_EMAIL]
        assert outbox.owners_of(session, None, "team_manager") == [TM2_EMAIL, TM_EMAIL]  # by email
        assert outbox.owners_of(session, None, "head_of_service") == [HOS_EMAIL]
        # No one in the directory holds it at all.
        assert outbox.owners_of(session, None, "cafcass_officer") == [ADMIN_EMAIL, IRO_MANAGER_EMAIL]
    # Only an inactive person holds it: they are not told.
    deactivate(sessions, HOS_EMAIL)
    with sessions() as session:
        assert outbox.owners_of(session, None, "head_of_service") == [ADMIN_EMAIL, IRO_MANAGER_EMAIL]


def test_an_escalation_to_a_stage_nobody_holds_emails_the_admins_and_iro_managers(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: FakeClock,
    raise_one: Callable[..., DisputeSnapshot],
    backend: str,
) -> None:
    dispute = raise_one(start_stage="head_of_corporate_parenting", reason="Team manager did not act").dispute
    deactivate(sessions, HOS_EMAIL)
    clock.advance(days=1)
    moved = transactions.apply_trigger(
        sessions, policy, dispute.id, "escalate", IRO, ActionInput(reason="No reply"), clock.now
    ).dispute
    assert (moved.stage, moved.owner_email) == ("head_of_service", None)

    with sessions() as session:
        escalated = set(
            session.scalars(
                select(Notification.recipient).where(
                    Notification.dispute_id == dispute.id,
                    Notification.audit_seq == 2,
                    Notification.template == "escalated",
                )
            )
        )
    # The stage's would-be owners are the admins and IRO managers; the IRO and the stage's last owner as
    # for any escalation; the inactive Head of Service not at all.
    assert escalated == {ADMIN_EMAIL, IRO_MANAGER_EMAIL, IRO_EMAIL, HOCP_EMAIL}
