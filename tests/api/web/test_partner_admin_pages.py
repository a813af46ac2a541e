"""The organisations' and external contacts' pages: admins add an organisation and its contacts, change
them, deactivate and reactivate a contact, and read their history; each refusal is shown on the form it came
from with what was sent, every change needs the session's CSRF token, and nobody else may see them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service import partners
from dispute_service.models import Contact, Organisation, PartnerChange
from states.policy import Policy
from tests.factories import (
    ADMIN,
    ADMIN_EMAIL,
    IRO_EMAIL,
    IRO_MANAGER_EMAIL,
    TEST_SECRET,
    TM_EMAIL,
    FakeClock,
    raise_dispute,
)
from tests.pages import csrf_of, error_summary, inline_error, table_rows

SignIn = Callable[[str], str]
NURSE, DOCTOR = "nurse@nhs.example", "doctor@nhs.example"


@pytest.fixture
def trust(sessions: sessionmaker[Session], clock: FakeClock, staff: list[str]) -> None:
    """An NHS trust with two contacts, and another organisation, added as an admin adds them."""
    with sessions.begin() as session:
        for data in (
            partners.OrganisationData("nhs_trust", "The NHS Trust", "partner"),
            partners.OrganisationData("shire", "Shire County Council", "other_authority"),
        ):
            partners.add_organisation(session, ADMIN, data, clock.now, audit_key=TEST_SECRET)
        for name, email in (("Nadia Nurse", NURSE), ("Dev Doctor", DOCTOR)):
            partners.add_contact(
                session,
                ADMIN,
                partners.ContactData(name, email, "nhs_trust"),
                clock.now,
                audit_key=TEST_SECRET,
            )


def organisation_row(sessions: sessionmaker[Session], organisation_id: str) -> tuple[str, str] | None:
    with sessions() as session:
        found = session.get(Organisation, organisation_id)
        return (found.name, found.kind) if found else None


def contact_row(sessions: sessionmaker[Session], email: str) -> tuple[str, str, bool] | None:
    with sessions() as session:
        found = session.scalar(select(Contact).where(Contact.email == email))
        return (found.name, found.organisation_id, found.active) if found else None


def changes(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return len(session.scalars(select(PartnerChange.seq)).all())


def assert_summary_links_to_fields(html: str) -> None:
    for href, _ in error_summary(html):
        assert f'id="{href[1:]}"' in html, f"the summary links to {href}, which is not on the page"


# --------------------------------------------------------------------------------- the organisations


def test_the_admin_sees_the_organisations_in_a_table_that_scrolls_on_its_own(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session], clock: FakeClock, trust: None
) -> None:
    # Only active contacts are counted.
    with sessions.begin() as session:
        partners.update_contact(
            session,
            ADMIN,
            DOCTOR,
            clock.now,
            name=None,
            organisation=None,
            active=False,
            audit_key=TEST_SECRET,
        )
    sign_in(ADMIN_EMAIL)
    page = pages.get("/organisations")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert (
        '<div class="app-table-scroll" role="region" aria-labelledby="organisations-caption" tabindex="0">'
        in html
    )
    assert table_rows(html, "organisations") == [
        ["Name", "Id", "Kind", "Active contacts"],
        ["Shire County Council", "shire", "Another local authority", "0"],
        ["The NHS Trust", "nhs_trust", "Partner agency", "1"],
    ]
    assert 'href="/organisations/nhs_trust"' in html
    assert 'href="/organisations/new"' in html
    # The admin's menu has the page, beside People.
    assert '<a class="govuk-service-navigation__link" href="/organisations" aria-current="true">' in html
    assert html.index('href="/people"') < html.index('href="/organisations"')
    assert "style=" not in html


@pytest.mark.parametrize("email", [IRO_EMAIL, IRO_MANAGER_EMAIL, TM_EMAIL])
@pytest.mark.parametrize(
    "path",
    [
        "/organisations",
        "/organisations/new",
        "/organisations/nhs_trust",
        "/contacts/new?organisation=nhs_trust",
        f"/contacts/{NURSE}",
    ],
)
def test_everyone_but_an_admin_gets_the_403_page(
    pages: TestClient, sign_in: SignIn, trust: None, email: str, path: str
) -> None:
    sign_in(email)
    page = pages.get(path)
    assert page.status_code == 403
    assert "You cannot do this" in page.text
    assert 'href="/organisations"' not in page.text


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/organisations/new", {"id": "city_trust", "name": "City Trust", "kind": "partner"}),
        ("/organisations/nhs_trust", {"name": "Renamed", "kind": "other_authority"}),
        ("/contacts/new", {"name": "Nia New", "email": "nia@nhs.example", "organisation": "nhs_trust"}),
        (f"/contacts/{NURSE}", {"name": "Renamed", "organisation": "shire"}),
        (f"/contacts/{NURSE}/deactivate", {}),
    ],
)
def test_a_non_admins_post_is_refused_and_changes_nothing(
    pages: TestClient,
    sign_in: SignIn,
    sessions: sessionmaker[Session],
    trust: None,
    path: str,
    data: dict[str, Any],
) -> None:
    token = sign_in(IRO_MANAGER_EMAIL)
    before = changes(sessions)
    response = pages.post(path, data={**data, "csrf_token": token}, follow_redirects=False)
    assert response.status_code == 403
    assert "You cannot do this" in response.text
    assert changes(sessions) == before
    assert organisation_row(sessions, "nhs_trust") == ("The NHS Trust", "partner")
    assert contact_row(sessions, NURSE) == ("Nadia Nurse", "nhs_trust", True)


def test_without_a_session_the_organisations_go_to_sign_in(pages: TestClient) -> None:
    response = pages.get("/organisations", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=%2Forganisations"


@pytest.mark.parametrize("path", ["/organisations/nowhere", "/contacts/nobody@nhs.example"])
def test_an_unknown_organisation_or_contact_gets_the_404_page(
    pages: TestClient, sign_in: SignIn, path: str
) -> None:
    sign_in(ADMIN_EMAIL)
    page = pages.get(path)
    assert page.status_code == 404
    assert "Page not found" in page.text


def test_adding_an_organisation_shows_it_in_the_list_and_its_history(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session]
) -> None:
    sign_in(ADMIN_EMAIL)
    form = pages.get("/organisations/new")
    assert form.status_code == 200
    assert 'value="partner"' in form.text and 'value="other_authority"' in form.text
    response = pages.post(
        "/organisations/new",
        data={
            "csrf_token": csrf_of(form.text),
            "id": "city_trust",
            "name": " City Trust ",
            "kind": "partner",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/organisations?added=city_trust"
    assert organisation_row(sessions, "city_trust") == ("City Trust", "partner")

    page = pages.get(response.headers["location"])
    assert 'class="govuk-notification-banner govuk-notification-banner--success"' in page.text
    assert "City Trust has been added." in page.text
    assert ["City Trust", "city_trust", "Partner agency", "0"] in table_rows(page.text, "organisations")

    page = pages.get("/organisations/city_trust")
    assert page.status_code == 200
    assert "City Trust has no contacts yet." in page.text
    assert 'href="/contacts/new?organisation=city_trust"' in page.text
    history = table_rows(page.text, "history")
    assert history[1][0] == "Added"
    assert history[1][2] == ADMIN_EMAIL
    assert history[1][4] == "Name: City Trust; Id: city_trust; Kind: Partner agency"


def test_the_banner_names_only_an_organisation_that_is_there(pages: TestClient, sign_in: SignIn) -> None:
    sign_in(ADMIN_EMAIL)
    page = pages.get("/organisations", params={"added": "<b>anything</b>"})
    assert page.status_code == 200
    assert "govuk-notification-banner" not in page.text
    assert "anything" not in page.text


def test_an_empty_organisation_form_gets_each_problem_at_its_field(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(ADMIN_EMAIL)
    before = changes(sessions)
    page = pages.post("/organisations/new", data={"csrf_token": token, "id": "", "name": " "})
    assert page.status_code == 422
    assert error_summary(page.text) == [
        ("#id", "Enter an id for the organisation"),
        ("#name", "Enter the organisation's name"),
        ("#kind", "Select the kind of organisation"),
    ]
    assert inline_error(page.text, "kind") == "Select the kind of organisation"
    assert "<title>Error: Add an organisation" in page.text
    assert_summary_links_to_fields(page.text)
    assert changes(sessions) == before


def test_a_bad_id_is_refused_by_the_use_case_on_the_form_with_the_values_kept(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(ADMIN_EMAIL)
    before = changes(sessions)
    page = pages.post(
        "/organisations/new",
        data={"csrf_token": token, "id": "City Trust", "name": "City Trust", "kind": "other_authority"},
    )
    assert page.status_code == 422
    [(href, message)] = error_summary(page.text)
    assert href == "#id"
    assert message.startswith("The id must start with a lower-case letter")
    assert inline_error(page.text, "id") == message
    assert 'value="City Trust"' in page.text
    assert 'value="other_authority" checked' in page.text
    assert_summary_links_to_fields(page.text)
    assert changes(sessions) == before
    assert organisation_row(sessions, "City Trust") is None


def test_an_id_already_there_gets_409_on_the_form(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session], trust: None
) -> None:
    token = sign_in(ADMIN_EMAIL)
    before = changes(sessions)
    page = pages.post(
        "/organisations/new",
        data={"csrf_token": token, "id": "nhs_trust", "name": "Another Trust", "kind": "partner"},
    )
    assert page.status_code == 409
    assert error_summary(page.text) == [("#id", "There is already an organisation with the id nhs_trust")]
    assert 'value="Another Trust"' in page.text
    assert organisation_row(sessions, "nhs_trust") == ("The NHS Trust", "partner")
    assert changes(sessions) == before


def test_changing_an_organisations_name_and_kind_says_so_and_is_in_its_history(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session], trust: None
) -> None:
    sign_in(ADMIN_EMAIL)
    page = pages.get("/organisations/nhs_trust")
    assert table_rows(page.text, "contacts") == [
        ["Name", "Email", "Status"],
        ["Dev Doctor", DOCTOR, "Active"],
        ["Nadia Nurse", NURSE, "Active"],
    ]
    assert f'href="/contacts/{NURSE}"' in page.text
    response = pages.post(
        "/organisations/nhs_trust",
        data={"csrf_token": csrf_of(page.text), "name": "City NHS Trust", "kind": "other_authority"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/organisations/nhs_trust?done=saved"
    assert organisation_row(sessions, "nhs_trust") == ("City NHS Trust", "other_authority")
    page = pages.get(response.headers["location"])
    assert "The changes to City NHS Trust have been saved." in page.text
    history = table_rows(page.text, "history")
    assert [row[0] for row in history[1:]] == ["Kind changed", "Name changed", "Added"]
    assert history[1][3:] == ["Kind: Partner agency", "Kind: Another local authority"]
    assert history[2][3:] == ["Name: The NHS Trust", "Name: City NHS Trust"]

    # The same details again change nothing, and say so.
    same = pages.post(
        "/organisations/nhs_trust",
        data={"csrf_token": csrf_of(page.text), "name": "City NHS Trust", "kind": "other_authority"},
    )
    assert "Nothing was changed" in same.text
    assert len(table_rows(same.text, "history")) == 4


def test_an_emptied_name_is_refused_on_the_organisations_form(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session], trust: None
) -> None:
    token = sign_in(ADMIN_EMAIL)
    page = pages.post("/organisations/nhs_trust", data={"csrf_token": token, "name": "", "kind": "nonsense"})
    assert page.status_code == 422
    assert error_summary(page.text) == [
        ("#name", "Enter the organisation's name"),
        ("#kind", "Select a kind from the list"),
    ]
    assert_summary_links_to_fields(page.text)
    assert organisation_row(sessions, "nhs_trust") == ("The NHS Trust", "partner")


# --------------------------------------------------------------------------------- the contacts


def test_adding_a_contact_shows_them_on_their_organisations_page_and_in_their_history(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session], trust: None
) -> None:
    sign_in(ADMIN_EMAIL)
    form = pages.get("/contacts/new", params={"organisation": "nhs_trust"})
    assert form.status_code == 200
    assert '<option value="nhs_trust" selected>' in form.text
    response = pages.post(
        "/contacts/new",
        data={
            "csrf_token": csrf_of(form.text),
            "name": "Nia New",
            "email": "Nia.New@NHS.example",
            "organisation": "nhs_trust",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/organisations/nhs_trust?added=nia.new%40nhs.example"
    assert contact_row(sessions, "nia.new@nhs.example") == ("Nia New", "nhs_trust", True)

    page = pages.get(response.headers["location"])
    assert "Nia New has been added as a contact of The NHS Trust." in page.text
    assert ["Nia New", "nia.new@nhs.example", "Active"] in table_rows(page.text, "contacts")

    page = pages.get("/contacts/nia.new@nhs.example")
    assert page.status_code == 200
    history = table_rows(page.text, "history")
    assert history[1][0] == "Added"
    assert history[1][2] == ADMIN_EMAIL
    assert history[1][4] == "Name: Nia New; Email: nia.new@nhs.example; Organisation: The NHS Trust; Active"


@pytest.mark.parametrize(
    ("sent", "field", "message", "status"),
    [
        (
            {"email": TM_EMAIL.upper()},
            "email",
            f"{TM_EMAIL} is in the staff directory; a contact's address is never also a staff address",
            409,
        ),
        ({"email": "Nurse@NHS.example"}, "email", f"{NURSE} is already an external contact", 409),
        (
            {"email": "nia at nhs"},
            "email",
            "Enter an email address in the correct format, like name@example.org",
            422,
        ),
        (
            {"organisation": "nowhere"},
            "organisation",
            "There is no organisation 'nowhere': choose one from the list",
            422,
        ),
    ],
)
def test_a_refused_contact_is_shown_on_the_form_with_what_was_typed(
    pages: TestClient,
    sign_in: SignIn,
    sessions: sessionmaker[Session],
    trust: None,
    sent: dict[str, str],
    field: str,
    message: str,
    status: int,
) -> None:
    token = sign_in(ADMIN_EMAIL)
    before = changes(sessions)
    data = {
        "csrf_token": token,
        "name": "Nia New",
        "email": "nia@nhs.example",
        "organisation": "shire",
        **sent,
    }
    page = pages.post("/contacts/new", data=data)
    assert page.status_code == status
    assert error_summary(page.text) == [(f"#{field}", message)]
    assert inline_error(page.text, field) == message
    assert 'value="Nia New"' in page.text
    assert f'value="{data["email"]}"' in page.text
    if field != "organisation":
        assert '<option value="shire" selected>' in page.text
    assert_summary_links_to_fields(page.text)
    assert changes(sessions) == before
    assert contact_row(sessions, "nia@nhs.example") is None
    assert contact_row(sessions, TM_EMAIL.lower()) is None


def test_an_empty_contact_form_gets_each_problem_at_its_field(
    pages: TestClient, sign_in: SignIn, trust: None
) -> None:
    token = sign_in(ADMIN_EMAIL)
    page = pages.post("/contacts/new", data={"csrf_token": token})
    assert page.status_code == 422
    assert error_summary(page.text) == [
        ("#name", "Enter the contact's name"),
        ("#email", "Enter an email address"),
        ("#organisation", "Select the contact's organisation"),
    ]
    assert '<option value="" selected>Choose an organisation</option>' in page.text
    assert_summary_links_to_fields(page.text)


def test_changing_a_contacts_name_and_organisation_says_so_and_is_in_their_history(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session], trust: None
) -> None:
    sign_in(ADMIN_EMAIL)
    page = pages.get(f"/contacts/{NURSE}")
    assert '<option value="nhs_trust" selected>' in page.text
    response = pages.post(
        f"/contacts/{NURSE}",
        data={"csrf_token": csrf_of(page.text), "name": "Nadia Shire", "organisation": "shire"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/contacts/{NURSE}?done=saved"
    assert contact_row(sessions, NURSE) == ("Nadia Shire", "shire", True)
    page = pages.get(response.headers["location"])
    assert "The changes to Nadia Shire have been saved." in page.text
    history = table_rows(page.text, "history")
    assert [row[0] for row in history[1:]] == ["Moved to another organisation", "Name changed", "Added"]
    assert history[1][3:] == ["Organisation: The NHS Trust", "Organisation: Shire County Council"]


def test_deactivating_and_reactivating_a_contact(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session], trust: None
) -> None:
    sign_in(ADMIN_EMAIL)
    page = pages.get(f"/contacts/{DOCTOR}")
    assert 'Deactivate<span class="govuk-visually-hidden"> Dev Doctor</span>' in page.text
    response = pages.post(
        f"/contacts/{DOCTOR}/deactivate", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/contacts/{DOCTOR}?done=deactivated"
    assert contact_row(sessions, DOCTOR) == ("Dev Doctor", "nhs_trust", False)
    page = pages.get(response.headers["location"])
    assert "Dev Doctor has been deactivated." in page.text
    assert f'action="/contacts/{DOCTOR}/reactivate"' in page.text
    assert table_rows(page.text, "history")[1][:1] + table_rows(page.text, "history")[1][3:] == [
        "Deactivated",
        "Active",
        "Inactive",
    ]
    response = pages.post(
        f"/contacts/{DOCTOR}/reactivate", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
    )
    assert response.status_code == 303
    assert "Dev Doctor has been reactivated" in pages.get(response.headers["location"]).text
    assert contact_row(sessions, DOCTOR) == ("Dev Doctor", "nhs_trust", True)


def test_a_contact_who_holds_a_stage_cannot_be_deactivated_or_moved_and_the_form_says_why(
    pages: TestClient,
    sign_in: SignIn,
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: FakeClock,
    trust: None,
) -> None:
    reference = raise_dispute(
        sessions, policy, clock.now, ladder="health", respondent_email=NURSE, team_manager_email=None
    ).dispute.reference
    token = sign_in(ADMIN_EMAIL)
    before = changes(sessions)

    page = pages.post(f"/contacts/{NURSE}/deactivate", data={"csrf_token": token})
    assert page.status_code == 409
    message = inline_error(page.text, "deactivate")
    assert message.startswith(f"{NURSE} owns the current stage of, or is named for a later stage of, open")
    assert reference in message
    assert error_summary(page.text) == [("#deactivate", message)]
    assert_summary_links_to_fields(page.text)

    page = pages.post(
        f"/contacts/{NURSE}", data={"csrf_token": token, "name": "Nadia Nurse", "organisation": "shire"}
    )
    assert page.status_code == 409
    message = inline_error(page.text, "organisation")
    assert reference in message
    assert error_summary(page.text) == [("#organisation", message)]
    # The form keeps what was sent; the summary above it still says what is stored.
    assert '<option value="shire" selected>' in page.text

    assert contact_row(sessions, NURSE) == ("Nadia Nurse", "nhs_trust", True)
    assert changes(sessions) == before


# --------------------------------------------------------------------------------- the CSRF token


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/organisations/new", {"id": "city_trust", "name": "City Trust", "kind": "partner"}),
        ("/organisations/nhs_trust", {"name": "Renamed", "kind": "other_authority"}),
        ("/contacts/new", {"name": "Nia New", "email": "nia@nhs.example", "organisation": "nhs_trust"}),
        (f"/contacts/{NURSE}", {"name": "Renamed", "organisation": "shire"}),
        (f"/contacts/{NURSE}/deactivate", {}),
    ],
)
@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_a_post_without_the_sessions_csrf_token_gets_403_and_changes_nothing(
    pages: TestClient,
    sign_in: SignIn,
    sessions: sessionmaker[Session],
    trust: None,
    path: str,
    data: dict[str, Any],
    token: str | None,
) -> None:
    sign_in(ADMIN_EMAIL)
    before = changes(sessions)
    sent = {**data, **({"csrf_token": token} if token else {})}
    response = pages.post(path, data=sent, follow_redirects=False)
    assert response.status_code == 403
    assert "The form has expired" in response.text
    assert changes(sessions) == before
    assert organisation_row(sessions, "city_trust") is None
    assert organisation_row(sessions, "nhs_trust") == ("The NHS Trust", "partner")
    assert contact_row(sessions, "nia@nhs.example") is None
    assert contact_row(sessions, NURSE) == ("Nadia Nurse", "nhs_trust", True)
