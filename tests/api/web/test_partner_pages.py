"""The pages for disputes with partner agencies: raising on a partner ladder with their contact, the
dispute page saying who it is with, and the IRO naming a later stage's contact and handing a stage on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.models import Contact, Dispute, Organisation
from tests.factories import IRO_EMAIL, TM_EMAIL, FakeClock
from tests.pages import form_fields

NURSE, DOCTOR, ELSEWHERE = "nurse@nhs.example", "doctor@nhs.example", "nurse@other.example"


def _partners(sessions: sessionmaker[Session], clock: FakeClock) -> None:
    with sessions.begin() as session:
        for org_id, kind in (("nhs_trust", "partner"), ("other_trust", "partner")):
            session.add(
                Organisation(
                    id=org_id, name=f"Org {org_id}", kind=kind, created_at=clock.now, updated_at=clock.now
                )
            )
        session.flush()
        for email, org_id in ((NURSE, "nhs_trust"), (DOCTOR, "nhs_trust"), (ELSEWHERE, "other_trust")):
            session.add(
                Contact(
                    email=email,
                    name="A Contact",
                    organisation_id=org_id,
                    active=True,
                    created_at=clock.now,
                    updated_at=clock.now,
                )
            )


def _post_form(pages: TestClient, page_path: str, action: str, **fields: Any) -> Any:
    page = pages.get(page_path)
    assert page.status_code == 200, page.text
    return pages.post(action, data={**form_fields(page.text, action), **fields}, follow_redirects=False)


def test_an_iro_raises_on_a_partner_ladder_names_a_later_contact_and_hands_the_stage_on(
    pages: TestClient, sign_in: Callable[[str], str], sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    _partners(sessions, clock)
    sign_in(IRO_EMAIL)
    form = pages.get("/disputes/new").text
    assert "NHS partners" in form and NURSE in form
    fields = {
        "child_ref": "LCS-1",
        "case_type": "looked_after",
        "categories": "health",
        "summary": "The health plan has drifted.",
        "ladder": "health",
        "respondent_email": NURSE,
        "their_reference": "NHS-42",
        # The council's own ladder's fields are not sent for a partner's: a team manager left chosen is not.
        "team_manager_email": TM_EMAIL,
    }
    done = _post_form(pages, "/disputes/new", "/disputes/new", **fields)
    assert done.status_code == 303, done.text
    with sessions.begin() as session:
        d = session.scalars(select(Dispute)).one()
        assert (d.ladder, d.organisation_id, d.their_reference, d.owner_email) == (
            "health",
            "nhs_trust",
            "NHS-42",
            NURSE,
        )
        path = f"/disputes/{d.id}"
    page = pages.get(path).text
    assert "NHS partners" in page and "nhs_trust" in page and "NHS-42" in page

    named = _post_form(
        pages,
        f"{path}/actions/name_contact",
        f"{path}/actions/name_contact",
        stage="designated_doctor",
        contact_email=DOCTOR,
    )
    assert named.status_code == 303, named.text
    # Only the dispute's organisation's contacts are offered for the stage, and another is refused.
    offered = pages.get(f"{path}/actions/reassign").text
    assert DOCTOR in offered and ELSEWHERE not in offered
    refused = _post_form(pages, f"{path}/actions/reassign", f"{path}/actions/reassign", owner_email=ELSEWHERE)
    assert refused.status_code == 422 and "not a contact of the dispute" in refused.text
    handed = _post_form(pages, f"{path}/actions/reassign", f"{path}/actions/reassign", owner_email=DOCTOR)
    assert handed.status_code == 303, handed.text
    with sessions.begin() as session:
        d = session.scalars(select(Dispute)).one()
        assert d.owner_email == DOCTOR and d.contacts == {
            "designated_doctor": DOCTOR,
            "designated_nurse": DOCTOR,
        }


def test_raising_on_a_partner_ladder_without_their_contact_shows_the_error_on_its_field(
    pages: TestClient, sign_in: Callable[[str], str], sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    _partners(sessions, clock)
    sign_in(IRO_EMAIL)
    fields = {
        "child_ref": "LCS-1",
        "case_type": "looked_after",
        "categories": "health",
        "summary": "x",
        "ladder": "health",
    }
    refused = _post_form(pages, "/disputes/new", "/disputes/new", **fields)
    assert refused.status_code == 422
    assert 'href="#respondent_email"' in refused.text
    with sessions.begin() as session:
        assert session.scalars(select(Dispute)).all() == []
