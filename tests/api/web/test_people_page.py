"""The staff directory's pages: admins add people, change their names and roles, deactivate and reactivate
them, and read their history; each refusal is shown on the form it came from, and every change needs the
session's CSRF token."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.web.signin import SESSION_COOKIE
from dispute_service import partners
from dispute_service.models import Person, PersonChange
from states.policy import Policy
from tests.factories import (
    ADMIN,
    ADMIN_EMAIL,
    GONE_EMAIL,
    IRO_EMAIL,
    IRO_MANAGER_EMAIL,
    STAFF,
    TEST_SECRET,
    TM2_EMAIL,
    TM_EMAIL,
    FakeClock,
    raise_dispute,
)
from tests.pages import csrf_of, error_summary, inline_error, table_rows

SignIn = Callable[[str], str]
NEW = {"name": "Nia New", "email": "Nia.New@Example.gov.uk", "roles": ["iro", "iro_manager"]}


def person_row(sessions: sessionmaker[Session], email: str) -> tuple[str, list[str], bool] | None:
    with sessions() as session:
        person = session.scalar(select(Person).where(Person.email == email))
        return (person.name, sorted(person.roles), person.active) if person else None


def changes(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return len(session.scalars(select(PersonChange.seq)).all())


def checked_roles(html: str) -> list[str]:
    return re.findall(
        r'<input class="govuk-checkboxes__input" id="[^"]+" name="roles" type="checkbox" '
        r'value="([^"]+)" checked',
        html,
    )


def assert_summary_links_to_fields(html: str) -> None:
    for href, _ in error_summary(html):
        assert f'id="{href[1:]}"' in html, f"the summary links to {href}, which is not on the page"


# --------------------------------------------------------------------------------- the directory


def test_the_admin_sees_everyone_in_a_table_that_scrolls_on_its_own(
    pages: TestClient, sign_in: SignIn
) -> None:
    sign_in(ADMIN_EMAIL)
    page = pages.get("/people")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert (
        '<div class="app-table-scroll" role="region" aria-labelledby="people-caption" tabindex="0">' in html
    )
    rows = table_rows(html, "people")
    assert rows[0] == ["Name", "Email", "Roles", "Status", "Change"]
    by_email = {row[1]: row for row in rows[1:]}
    assert set(by_email) == {email for _, email, _ in STAFF}
    assert by_email[IRO_MANAGER_EMAIL][:4] == ["Mira Manager", IRO_MANAGER_EMAIL, "IRO manager", "Active"]
    assert by_email[GONE_EMAIL][3] == "Inactive"
    assert by_email[TM_EMAIL][4] == "Change Tara Manager"
    assert f'href="/people/{TM_EMAIL}"' in html
    assert 'href="/people/new"' in html
    assert "style=" not in html


@pytest.mark.parametrize("email", [IRO_EMAIL, IRO_MANAGER_EMAIL, TM_EMAIL])
@pytest.mark.parametrize("path", ["/people", "/people/new", f"/people/{TM_EMAIL}"])
def test_everyone_but_an_admin_gets_the_403_page(
    pages: TestClient, sign_in: SignIn, email: str, path: str
) -> None:
    sign_in(email)
    page = pages.get(path)
    assert page.status_code == 403
    assert "You cannot do this" in page.text


def test_a_non_admins_post_is_refused_and_changes_nothing(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(IRO_MANAGER_EMAIL)
    before = changes(sessions)
    response = pages.post(f"/people/{TM_EMAIL}/deactivate", data={"csrf_token": token})
    assert response.status_code == 403
    assert person_row(sessions, TM_EMAIL) == ("Tara Manager", ["team_manager"], True)
    assert changes(sessions) == before


def test_without_a_session_the_directory_goes_to_sign_in(pages: TestClient) -> None:
    response = pages.get("/people", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=%2Fpeople"


def test_an_unknown_person_gets_the_404_page(pages: TestClient, sign_in: SignIn) -> None:
    sign_in(ADMIN_EMAIL)
    page = pages.get("/people/nobody@example.gov.uk")
    assert page.status_code == 404
    assert "Page not found" in page.text


# --------------------------------------------------------------------------------- adding


def test_adding_a_person_redirects_to_the_directory_which_says_so(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session]
) -> None:
    sign_in(ADMIN_EMAIL)
    form = pages.get("/people/new")
    assert form.status_code == 200
    for role in ("iro", "team_manager", "head_of_corporate_parenting", "admin"):
        assert f'value="{role}"' in form.text
    response = pages.post(
        "/people/new", data={**NEW, "csrf_token": csrf_of(form.text)}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/people?added=nia.new%40example.gov.uk"
    assert person_row(sessions, "nia.new@example.gov.uk") == ("Nia New", ["iro", "iro_manager"], True)

    page = pages.get(response.headers["location"])
    assert 'class="govuk-notification-banner govuk-notification-banner--success"' in page.text
    assert "Nia New has been added to the staff directory." in page.text
    row = next(r for r in table_rows(page.text, "people") if r[1] == "nia.new@example.gov.uk")
    assert row[:4] == ["Nia New", "nia.new@example.gov.uk", "IRO, IRO manager", "Active"]

    history = table_rows(pages.get("/people/nia.new@example.gov.uk").text, "history")
    assert history[1][0] == "Added"
    assert history[1][2] == ADMIN_EMAIL
    assert history[1][4] == "Name: Nia New; Email: nia.new@example.gov.uk; Roles: IRO, IRO manager; Active"

    # And they can sign in: the next page is theirs.
    sign_in("nia.new@example.gov.uk")
    assert pages.get("/").status_code == 200


def test_the_banner_names_only_someone_in_the_directory(pages: TestClient, sign_in: SignIn) -> None:
    sign_in(ADMIN_EMAIL)
    page = pages.get("/people", params={"added": "<b>anyone</b>@example.gov.uk"})
    assert page.status_code == 200
    assert "govuk-notification-banner" not in page.text
    assert "anyone" not in page.text


def test_an_empty_form_gets_each_problem_at_its_field(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(ADMIN_EMAIL)
    before = changes(sessions)
    page = pages.post("/people/new", data={"csrf_token": token, "name": " ", "email": ""})
    assert page.status_code == 422
    assert error_summary(page.text) == [
        ("#name", "Enter the person's name"),
        ("#email", "Enter an email address"),
        ("#roles", "Select at least one role"),
    ]
    assert inline_error(page.text, "name") == "Enter the person's name"
    assert inline_error(page.text, "email") == "Enter an email address"
    assert inline_error(page.text, "roles") == "Select at least one role"
    assert "<title>Error: Add a person" in page.text
    assert_summary_links_to_fields(page.text)
    assert changes(sessions) == before


def test_an_invalid_email_is_shown_on_the_form_with_what_was_typed(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(ADMIN_EMAIL)
    page = pages.post(
        "/people/new",
        data={"csrf_token": token, "name": "Nia New", "email": "nia at example", "roles": ["iro", "admin"]},
    )
    assert page.status_code == 422
    message = "Enter an email address in the correct format, like name@example.gov.uk"
    assert error_summary(page.text) == [("#email", message)]
    assert inline_error(page.text, "email") == message
    assert 'value="nia at example"' in page.text
    assert 'value="Nia New"' in page.text
    assert checked_roles(page.text) == ["iro", "admin"]
    assert person_row(sessions, "nia at example") is None


def test_an_email_already_in_the_directory_gets_409_on_the_form(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(ADMIN_EMAIL)
    before = changes(sessions)
    page = pages.post(
        "/people/new",
        data={"csrf_token": token, "name": "Someone Else", "email": TM_EMAIL.upper(), "roles": ["iro"]},
    )
    assert page.status_code == 409
    message = f"{TM_EMAIL} is already in the staff directory"
    assert error_summary(page.text) == [("#email", message)]
    assert inline_error(page.text, "email") == message
    assert 'value="Someone Else"' in page.text
    assert checked_roles(page.text) == ["iro"]
    assert person_row(sessions, TM_EMAIL) == ("Tara Manager", ["team_manager"], True)
    assert changes(sessions) == before


def test_an_external_contacts_address_gets_409_on_the_form_saying_so(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    with sessions.begin() as session:
        partners.add_organisation(
            session,
            ADMIN,
            partners.OrganisationData("nhs_trust", "The NHS Trust", "partner"),
            clock.now,
            audit_key=TEST_SECRET,
        )
        partners.add_contact(
            session,
            ADMIN,
            partners.ContactData("Nadia Nurse", "nurse@nhs.example", "nhs_trust"),
            clock.now,
            audit_key=TEST_SECRET,
        )
    token = sign_in(ADMIN_EMAIL)
    page = pages.post(
        "/people/new",
        data={"csrf_token": token, "name": "Nadia Nurse", "email": "Nurse@NHS.example", "roles": ["iro"]},
    )
    assert page.status_code == 409
    message = (
        "nurse@nhs.example is an external contact of the organisation nhs_trust; "
        "a contact's address is never also a staff address"
    )
    assert inline_error(page.text, "email") == message
    assert person_row(sessions, "nurse@nhs.example") is None


# --------------------------------------------------------------------------------- changing


def test_changing_name_and_roles_redirects_to_their_page_which_says_so(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session]
) -> None:
    sign_in(ADMIN_EMAIL)
    form = pages.get(f"/people/{TM_EMAIL}")
    assert form.status_code == 200
    assert checked_roles(form.text) == ["team_manager"]
    response = pages.post(
        f"/people/{TM_EMAIL}",
        data={
            "csrf_token": csrf_of(form.text),
            "name": "Tara Head",
            "roles": ["team_manager", "head_of_service"],
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/people/{TM_EMAIL}?done=saved"
    assert person_row(sessions, TM_EMAIL) == ("Tara Head", ["head_of_service", "team_manager"], True)

    page = pages.get(response.headers["location"])
    assert "The changes to Tara Head have been saved." in page.text
    assert 'class="govuk-notification-banner govuk-notification-banner--success"' in page.text
    assert checked_roles(page.text) == ["team_manager", "head_of_service"]
    history = table_rows(page.text, "history")
    assert [row[0] for row in history[1:]] == ["Roles changed", "Name changed"]
    assert history[1][3:] == ["Roles: Team manager", "Roles: Team manager, Head of service"]
    assert history[2][3:] == ["Name: Tara Manager", "Name: Tara Head"]
    assert history[1][1] == "10am on Monday 8 January 2018"


def test_sending_the_same_details_says_nothing_changed(pages: TestClient, sign_in: SignIn) -> None:
    token = sign_in(ADMIN_EMAIL)
    response = pages.post(
        f"/people/{TM_EMAIL}", data={"csrf_token": token, "name": "Tara Manager", "roles": ["team_manager"]}
    )
    assert response.status_code == 200
    assert "Nothing was changed" in response.text
    assert "No change to Tara Manager has been recorded" in response.text


def test_taking_the_last_admins_admin_role_is_refused_on_the_form(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(ADMIN_EMAIL)
    before = changes(sessions)
    page = pages.post(
        f"/people/{ADMIN_EMAIL}", data={"csrf_token": token, "name": "Adam Admin", "roles": ["iro_manager"]}
    )
    assert page.status_code == 409
    [(href, message)] = error_summary(page.text)
    assert href == "#roles"
    assert "they are the last active admin; make someone else an admin first" in message
    assert inline_error(page.text, "roles") == message
    # The form keeps what was sent; the summary still says what is stored.
    assert checked_roles(page.text) == ["iro_manager"]
    assert person_row(sessions, ADMIN_EMAIL) == ("Adam Admin", ["admin"], True)
    assert changes(sessions) == before
    assert_summary_links_to_fields(page.text)


def test_taking_the_iro_role_from_the_iro_of_an_open_dispute_is_refused_on_the_form(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session], policy: Policy, clock: FakeClock
) -> None:
    reference = raise_dispute(sessions, policy, clock.now).dispute.reference
    token = sign_in(ADMIN_EMAIL)
    page = pages.post(
        f"/people/{IRO_EMAIL}", data={"csrf_token": token, "name": "Ima Reviewer", "roles": ["iro_manager"]}
    )
    assert page.status_code == 409
    message = inline_error(page.text, "roles")
    assert f"they are the IRO of {reference}" in message
    assert error_summary(page.text) == [("#roles", message)]
    assert person_row(sessions, IRO_EMAIL) == ("Ima Reviewer", ["iro"], True)


def test_a_change_with_no_roles_or_name_is_shown_on_the_form(pages: TestClient, sign_in: SignIn) -> None:
    token = sign_in(ADMIN_EMAIL)
    page = pages.post(f"/people/{TM_EMAIL}", data={"csrf_token": token, "name": ""})
    assert page.status_code == 422
    assert error_summary(page.text) == [
        ("#name", "Enter the person's name"),
        ("#roles", "Select at least one role"),
    ]
    assert checked_roles(page.text) == []
    assert_summary_links_to_fields(page.text)


def test_an_unknown_role_is_refused_on_the_form(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(ADMIN_EMAIL)
    page = pages.post(
        f"/people/{TM_EMAIL}", data={"csrf_token": token, "name": "Tara", "roles": ["overlord"]}
    )
    assert page.status_code == 422
    assert error_summary(page.text) == [("#roles", "Select roles from the list")]
    assert person_row(sessions, TM_EMAIL) == ("Tara Manager", ["team_manager"], True)


# --------------------------------------------------------------------------------- deactivating


def test_deactivation_ends_their_session_at_once_and_reactivation_lets_them_sign_in_again(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session]
) -> None:
    sign_in(TM2_EMAIL)
    assert pages.get("/").status_code == 200
    their_cookie = pages.cookies.get(SESSION_COOKIE)

    sign_in(ADMIN_EMAIL)
    page = pages.get(f"/people/{TM2_EMAIL}")
    assert 'Deactivate<span class="govuk-visually-hidden"> Tom Other</span>' in page.text
    response = pages.post(
        f"/people/{TM2_EMAIL}/deactivate", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/people/{TM2_EMAIL}?done=deactivated"
    page = pages.get(response.headers["location"])
    assert "Tom Other has been deactivated and signed out." in page.text
    assert "Inactive" in page.text
    assert 'action="/people/tm2@example.gov.uk/reactivate"' in page.text
    assert table_rows(page.text, "history")[1][3:] == ["Active", "Inactive"]
    admin_cookie = pages.cookies.get(SESSION_COOKIE)

    # Their very next page goes to sign-in, and they cannot sign in again.
    pages.cookies.set(SESSION_COOKIE, their_cookie)
    gone = pages.get("/", follow_redirects=False)
    assert gone.status_code == 303
    assert gone.headers["location"] == "/sign-in"

    pages.cookies.set(SESSION_COOKIE, admin_cookie)
    response = pages.post(
        f"/people/{TM2_EMAIL}/reactivate", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
    )
    assert response.status_code == 303
    assert "Tom Other has been reactivated" in pages.get(response.headers["location"]).text
    assert person_row(sessions, TM2_EMAIL) == ("Tom Other", ["team_manager"], True)
    # The session deactivation ended stays ended; signing in again begins a new one.
    pages.cookies.set(SESSION_COOKIE, their_cookie)
    assert pages.get("/", follow_redirects=False).status_code == 303
    sign_in(TM2_EMAIL)
    assert pages.get("/").status_code == 200


def test_deactivating_someone_who_owns_open_work_is_refused_on_the_page(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session], policy: Policy, clock: FakeClock
) -> None:
    reference = raise_dispute(sessions, policy, clock.now).dispute.reference
    token = sign_in(ADMIN_EMAIL)
    before = changes(sessions)
    for email, why in (
        (IRO_EMAIL, "they are the IRO of"),
        (TM_EMAIL, "they own the current team_manager stage of"),
    ):
        page = pages.post(f"/people/{email}/deactivate", data={"csrf_token": token})
        assert page.status_code == 409
        message = inline_error(page.text, "deactivate")
        assert f"{why} {reference}" in message
        assert error_summary(page.text) == [("#deactivate", message)]
        assert_summary_links_to_fields(page.text)
        row = person_row(sessions, email)
        assert row is not None and row[2] is True
    assert changes(sessions) == before


def test_the_last_admin_cannot_deactivate_themselves(
    pages: TestClient, sign_in: SignIn, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(ADMIN_EMAIL)
    page = pages.post(f"/people/{ADMIN_EMAIL}/deactivate", data={"csrf_token": token})
    assert page.status_code == 409
    assert "last active admin" in inline_error(page.text, "deactivate")
    assert person_row(sessions, ADMIN_EMAIL) == ("Adam Admin", ["admin"], True)
    assert pages.get("/people").status_code == 200


# --------------------------------------------------------------------------------- the CSRF token


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/people/new", {"name": "Nia New", "email": "nia@example.gov.uk", "roles": ["iro"]}),
        (f"/people/{TM_EMAIL}", {"name": "Tara Head", "roles": ["head_of_service"]}),
        (f"/people/{TM_EMAIL}/deactivate", {}),
        (f"/people/{GONE_EMAIL}/reactivate", {}),
    ],
)
@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_a_post_without_the_sessions_csrf_token_gets_403_and_changes_nothing(
    pages: TestClient,
    sign_in: SignIn,
    sessions: sessionmaker[Session],
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
    assert person_row(sessions, "nia@example.gov.uk") is None
    assert person_row(sessions, TM_EMAIL) == ("Tara Manager", ["team_manager"], True)
    assert person_row(sessions, GONE_EMAIL) == ("Gone Person", ["iro"], False)
