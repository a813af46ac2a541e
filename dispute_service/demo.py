"""Demo data for `serve --demo`: a small staff directory and a few disputes at different rungs."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service import partners, people, transactions
from dispute_service.access import Actor
from dispute_service.inputs import ActionInput, RaiseInput
from dispute_service.models import Person
from dispute_service.queries import DisputeSnapshot
from states.policy import Policy

DEMO_PEOPLE = [
    ("Ima Reviewer", "iro@example.gov.uk", ["iro"]),
    ("Ivan Second", "iro2@example.gov.uk", ["iro"]),
    ("Tara Manager", "tm@example.gov.uk", ["team_manager"]),
    ("Colin Parenting", "hocp@example.gov.uk", ["head_of_corporate_parenting"]),
    ("Hana Service", "hos@example.gov.uk", ["head_of_service"]),
    ("Ada Director", "ad@example.gov.uk", ["assistant_director"]),
    ("Mira Manager", "iro.manager@example.gov.uk", ["iro_manager"]),
    ("Adam Admin", "admin@example.gov.uk", ["admin"]),
]


# A partner agency and its contacts, for a dispute on the NHS ladder: (name, email) of each contact.
DEMO_ORGANISATION = ("demo_nhs_trust", "Demo NHS Trust", "partner")
DEMO_CONTACTS = [
    ("Nadia Nurse", "nurse@nhs.example"),
    ("Dev Doctor", "doctor@nhs.example"),
]

# The demo loader adds its people, organisation and contacts as an admin would, so they are in the people
# changes and the partner changes like anyone's.
DEMO_LOADER = Actor("demo", frozenset({"admin"}), "demo")


def load_demo(sessions: sessionmaker[Session], policy: Policy, now: datetime, *, audit_key: str) -> bool:
    """Load the demo once; a database that already has people is left alone. Returns whether it loaded."""
    with sessions.begin() as session:
        if session.scalar(select(func.count()).select_from(Person)):
            return False
        for name, email, roles in DEMO_PEOPLE:
            people.add_person(
                session,
                DEMO_LOADER,
                people.PersonData(name=name, email=email, roles=roles),
                now,
                audit_key=audit_key,
            )
        organisation_id, organisation_name, kind = DEMO_ORGANISATION
        partners.add_organisation(
            session,
            DEMO_LOADER,
            partners.OrganisationData(organisation_id, organisation_name, kind),
            now,
            audit_key=audit_key,
        )
        for name, email in DEMO_CONTACTS:
            partners.add_contact(
                session,
                DEMO_LOADER,
                partners.ContactData(name, email, organisation_id),
                now,
                audit_key=audit_key,
            )
    iro = Actor("iro@example.gov.uk", frozenset({"iro"}))
    tm = Actor("tm@example.gov.uk", frozenset({"team_manager"}))
    earlier = now - timedelta(days=3)

    def raise_(child: str, categories: list[str], summary: str, at: datetime) -> DisputeSnapshot:
        data = RaiseInput(
            child_ref=child,
            case_type="looked_after",
            categories=categories,
            summary=summary,
            team_manager_email="tm@example.gov.uk",
        )
        return transactions.raise_dispute(sessions, policy, iro, data, at)

    raise_(
        "LCS-100201", ["permanency_delay"], "Demo: the permanence plan has drifted past the review.", earlier
    )
    second = raise_(
        "LCS-100342", ["contact", "education"], "Demo: contact arrangements not in place.", earlier
    )
    transactions.apply_trigger(sessions, policy, second.dispute.id, "acknowledge", tm, ActionInput(), now)
    third = raise_(
        "LCS-100587", ["placement_choice"], "Demo: placement match not discussed with the IRO.", earlier
    )
    # Escalated twice: it waits on the Head of Corporate Parenting.
    for version in (1, 2):
        transactions.apply_trigger(
            sessions,
            policy,
            third.dispute.id,
            "escalate",
            iro,
            ActionInput(reason="Demo: no plan agreed."),
            now,
            expected_version=version,
        )
    # Answered: the IRO decides what happens next.
    fourth = raise_("LCS-100733", ["health"], "Demo: health assessment overdue.", earlier)
    transactions.apply_trigger(sessions, policy, fourth.dispute.id, "acknowledge", tm, ActionInput(), now)
    transactions.apply_trigger(
        sessions, policy, fourth.dispute.id, "respond", tm, ActionInput(response="Demo: booked."), now
    )
    # Resolved by agreement, so the timeline shows a whole (short) life.
    fifth = raise_("LCS-100815", ["independent_visitor"], "Demo: no independent visitor offered.", earlier)
    transactions.apply_trigger(
        sessions, policy, fifth.dispute.id, "respond", tm, ActionInput(response="Demo: one is matched."), now
    )
    transactions.apply_trigger(
        sessions,
        policy,
        fifth.dispute.id,
        "resolve",
        iro,
        ActionInput(outcome="Demo: the visitor starts next month.", outcome_code="service_provided"),
        now,
        expected_version=2,
    )
    # On the NHS ladder: the nurse answers first, the doctor is named for the next stage.
    if "health" in {ladder.id for ladder in policy.ladders}:
        transactions.raise_dispute(
            sessions,
            policy,
            iro,
            RaiseInput(
                child_ref="LCS-100940",
                case_type="looked_after",
                categories=["health"],
                summary="Demo: the health assessment has not been booked.",
                ladder="health",
                respondent_email=DEMO_CONTACTS[0][1],
                contacts={"designated_doctor": DEMO_CONTACTS[1][1]},
                their_reference="NHS-7731",
            ),
            earlier,
        )
    return True
