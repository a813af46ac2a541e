"""The staff directory over HTTP: admin only; a role in use stays with its holder; every change is in the
person's history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import ADMIN_EMAIL, IRO_EMAIL, TM_EMAIL

Tokens = Callable[[str], dict[str, str]]
PROBLEM = "application/problem+json"
PEOPLE = "/api/v1/people"


def _problem(response: Any, status: int, slug: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"]
    if slug is not None:
        assert body["type"] == f"/problems/{slug}"
    return body


def _directory(client: TestClient, token_for: Tokens) -> dict[str, dict[str, Any]]:
    response = client.get(PEOPLE, headers=token_for(ADMIN_EMAIL))
    assert response.status_code == 200, response.text
    return {p["email"]: p for p in response.json()["items"]}


def _fields(body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in body["errors"]]


# --- listing, adding, changing -----------------------------------------------------------------------


def test_admin_lists_everyone_in_email_order(client: TestClient, token_for: Tokens, staff: list[str]) -> None:
    response = client.get(PEOPLE, headers=token_for(ADMIN_EMAIL))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(staff) == len(body["items"])
    emails = [p["email"] for p in body["items"]]
    assert emails == sorted(staff)
    by_email = {p["email"]: p for p in body["items"]}
    assert by_email[IRO_EMAIL] == {
        "name": "Ima Reviewer",
        "email": IRO_EMAIL,
        "roles": ["iro"],
        "active": True,
    }
    assert by_email["gone@example.gov.uk"]["active"] is False


def test_admin_adds_a_person_who_can_then_sign_in(client: TestClient, token_for: Tokens) -> None:
    response = client.post(
        PEOPLE,
        json={
            "name": "  Nina New  ",
            "email": "Nina.New@Example.gov.uk",
            "roles": ["team_manager", "iro", "iro"],
        },
        headers=token_for(ADMIN_EMAIL),
    )
    assert response.status_code == 201, response.text
    assert response.json() == {
        "name": "Nina New",
        "email": "nina.new@example.gov.uk",
        "roles": ["iro", "team_manager"],
        "active": True,
    }
    assert _directory(client, token_for)["nina.new@example.gov.uk"]["roles"] == ["iro", "team_manager"]
    # The directory decides who may act: the new person's token is accepted at once.
    assert client.get("/api/v1/disputes", headers=token_for("nina.new@example.gov.uk")).status_code == 200


def test_admin_adds_an_inactive_person_who_cannot_sign_in(client: TestClient, token_for: Tokens) -> None:
    response = client.post(
        PEOPLE,
        json={"name": "Later Starter", "email": "later@example.gov.uk", "roles": ["iro"], "active": False},
        headers=token_for(ADMIN_EMAIL),
    )
    assert response.status_code == 201, response.text
    assert response.json()["active"] is False
    _problem(
        client.get("/api/v1/disputes", headers=token_for("later@example.gov.uk")), 401, "unauthenticated"
    )


def test_admin_patches_name_and_roles(client: TestClient, token_for: Tokens) -> None:
    response = client.patch(
        f"{PEOPLE}/iro2@example.gov.uk",
        json={"name": "Ivan Renamed", "roles": ["iro_manager", "iro"]},
        headers=token_for(ADMIN_EMAIL),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "name": "Ivan Renamed",
        "email": "iro2@example.gov.uk",
        "roles": ["iro", "iro_manager"],
        "active": True,
    }
    assert _directory(client, token_for)["iro2@example.gov.uk"]["name"] == "Ivan Renamed"


def test_patch_finds_the_person_whatever_the_case_of_the_email(client: TestClient, token_for: Tokens) -> None:
    response = client.patch(
        f"{PEOPLE}/IRO2@Example.GOV.uk", json={"name": "Ivan Upper"}, headers=token_for(ADMIN_EMAIL)
    )
    assert response.status_code == 200, response.text
    assert response.json()["email"] == "iro2@example.gov.uk"


def test_empty_patch_changes_nothing(client: TestClient, token_for: Tokens) -> None:
    before = _directory(client, token_for)
    response = client.patch(f"{PEOPLE}/{TM_EMAIL}", json={}, headers=token_for(ADMIN_EMAIL))
    assert response.status_code == 200, response.text
    assert _directory(client, token_for) == before


def test_reactivating_a_person_lets_them_sign_in_again(client: TestClient, token_for: Tokens) -> None:
    gone = "gone@example.gov.uk"
    _problem(client.get("/api/v1/disputes", headers=token_for(gone)), 401)
    response = client.patch(f"{PEOPLE}/{gone}", json={"active": True}, headers=token_for(ADMIN_EMAIL))
    assert response.status_code == 200, response.text
    assert response.json()["active"] is True
    assert client.get("/api/v1/disputes", headers=token_for(gone)).status_code == 200


def test_deactivating_someone_with_no_open_work_succeeds(client: TestClient, token_for: Tokens) -> None:
    assert client.get("/api/v1/disputes", headers=token_for("iro2@example.gov.uk")).status_code == 200
    response = client.patch(
        f"{PEOPLE}/iro2@example.gov.uk", json={"active": False}, headers=token_for(ADMIN_EMAIL)
    )
    assert response.status_code == 200, response.text
    assert response.json()["active"] is False
    _problem(client.get("/api/v1/disputes", headers=token_for("iro2@example.gov.uk")), 401, "unauthenticated")


# --- refusals ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", [IRO_EMAIL, TM_EMAIL, "iro.manager@example.gov.uk", "hos@example.gov.uk"])
def test_non_admins_get_403_and_change_nothing(client: TestClient, token_for: Tokens, who: str) -> None:
    before = _directory(client, token_for)
    headers = token_for(who)
    _problem(client.get(PEOPLE, headers=headers), 403, "forbidden")
    _problem(
        client.post(
            PEOPLE,
            json={"name": "Sneaky", "email": "sneaky@example.gov.uk", "roles": ["admin"]},
            headers=headers,
        ),
        403,
        "forbidden",
    )
    _problem(client.patch(f"{PEOPLE}/{who}", json={"roles": ["admin"]}, headers=headers), 403, "forbidden")
    _problem(
        client.patch(f"{PEOPLE}/{ADMIN_EMAIL}", json={"active": False}, headers=headers), 403, "forbidden"
    )
    assert _directory(client, token_for) == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", PEOPLE, None),
        ("POST", PEOPLE, {"name": "X", "email": "x@example.gov.uk", "roles": ["iro"]}),
        ("PATCH", f"{PEOPLE}/{TM_EMAIL}", {"active": False}),
    ],
)
def test_no_token_or_an_inactive_persons_token_gets_401(
    client: TestClient, token_for: Tokens, method: str, path: str, body: dict[str, Any] | None
) -> None:
    before = _directory(client, token_for)
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}, token_for("gone@example.gov.uk")):
        response = client.request(method, path, json=body, headers=headers)
        _problem(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"] == "Bearer"
    assert _directory(client, token_for) == before


@pytest.mark.parametrize("email", [IRO_EMAIL, "IRO@Example.gov.uk", "gone@example.gov.uk"])
def test_adding_an_existing_email_gets_409(client: TestClient, token_for: Tokens, email: str) -> None:
    before = _directory(client, token_for)
    response = client.post(
        PEOPLE, json={"name": "Duplicate", "email": email, "roles": ["admin"]}, headers=token_for(ADMIN_EMAIL)
    )
    body = _problem(response, 409, "conflict")
    assert email.lower() in body["detail"]
    assert _directory(client, token_for) == before


def test_unknown_role_on_add_gets_422_naming_the_field(client: TestClient, token_for: Tokens) -> None:
    response = client.post(
        PEOPLE,
        json={"name": "Wiz", "email": "wiz@example.gov.uk", "roles": ["wizard"]},
        headers=token_for(ADMIN_EMAIL),
    )
    body = _problem(response, 422, "invalid-input")
    assert _fields(body) == ["roles[0]"]
    # The message says which roles are allowed.
    assert "team_manager" in body["errors"][0]["message"]
    assert "wiz@example.gov.uk" not in _directory(client, token_for)


def test_second_bad_role_is_named_by_its_index(client: TestClient, token_for: Tokens) -> None:
    response = client.post(
        PEOPLE,
        json={"name": "Wiz", "email": "wiz@example.gov.uk", "roles": ["iro", "Admin"]},
        headers=token_for(ADMIN_EMAIL),
    )
    assert _fields(_problem(response, 422, "invalid-input")) == ["roles[1]"]


def test_unknown_role_on_patch_gets_422_and_changes_nothing(client: TestClient, token_for: Tokens) -> None:
    before = _directory(client, token_for)
    response = client.patch(
        f"{PEOPLE}/{TM_EMAIL}",
        json={"name": "Changed", "roles": ["team_manager", "boss"]},
        headers=token_for(ADMIN_EMAIL),
    )
    assert _fields(_problem(response, 422, "invalid-input")) == ["roles[1]"]
    assert _directory(client, token_for) == before


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "No Roles", "email": "nr@example.gov.uk", "roles": []}, ["roles"]),
        ({"name": "No Roles", "email": "nr@example.gov.uk"}, ["roles"]),
        ({"name": "Bad Email", "email": "not-an-email", "roles": ["iro"]}, ["email"]),
        ({"name": "", "email": "nr@example.gov.uk", "roles": ["iro"]}, ["name"]),
        ({"name": "Extra", "email": "nr@example.gov.uk", "roles": ["iro"], "boss": True}, ["boss"]),
        ({"name": "Typed", "email": "nr@example.gov.uk", "roles": "iro"}, ["roles"]),
    ],
)
def test_invalid_add_bodies_get_422_naming_each_field(
    client: TestClient, token_for: Tokens, body: dict[str, Any], fields: list[str]
) -> None:
    before = _directory(client, token_for)
    response = client.post(PEOPLE, json=body, headers=token_for(ADMIN_EMAIL))
    assert _fields(_problem(response, 422, "invalid-input")) == fields
    assert _directory(client, token_for) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"roles": []}, "roles"),
        ({"name": ""}, "name"),
        ({"active": "maybe"}, "active"),
        ({"email": "a@b.c"}, "email"),
    ],
)
def test_invalid_patch_bodies_get_422(
    client: TestClient, token_for: Tokens, body: dict[str, Any], field: str
) -> None:
    response = client.patch(f"{PEOPLE}/{TM_EMAIL}", json=body, headers=token_for(ADMIN_EMAIL))
    assert _fields(_problem(response, 422, "invalid-input")) == [field]


def test_patching_an_unknown_email_gets_404(client: TestClient, token_for: Tokens) -> None:
    before = _directory(client, token_for)
    response = client.patch(
        f"{PEOPLE}/nobody@example.gov.uk", json={"active": False}, headers=token_for(ADMIN_EMAIL)
    )
    body = _problem(response, 404, "not-found")
    assert "nobody@example.gov.uk" in body["detail"]
    assert _directory(client, token_for) == before


# --- deactivating someone who holds open work ------------------------------------------------------


def test_deactivating_the_iro_of_an_open_dispute_is_refused_until_it_is_withdrawn(
    client: TestClient, token_for: Tokens, raise_dispute: Callable[..., dict[str, Any]]
) -> None:
    dispute = raise_dispute()
    reference = dispute["reference"]
    before = _directory(client, token_for)

    response = client.patch(
        f"{PEOPLE}/{IRO_EMAIL}", json={"active": False, "name": "Renamed"}, headers=token_for(ADMIN_EMAIL)
    )
    body = _problem(response, 409, "conflict")
    assert body["disputes"] == [reference]
    assert reference in body["detail"]

    # A refused request changes nothing: still active, same name, and the IRO can still act.
    assert _directory(client, token_for) == before
    assert before[IRO_EMAIL]["active"] is True
    read = client.get(f"/api/v1/disputes/{dispute['id']}", headers=token_for(IRO_EMAIL))
    assert read.status_code == 200, read.text

    withdrawn = client.post(
        f"/api/v1/disputes/{dispute['id']}/actions/withdraw",
        json={"reason": "The local authority has agreed the plan."},
        headers={**token_for(IRO_EMAIL), "If-Match": read.headers["ETag"]},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["state"] == "withdrawn"

    response = client.patch(f"{PEOPLE}/{IRO_EMAIL}", json={"active": False}, headers=token_for(ADMIN_EMAIL))
    assert response.status_code == 200, response.text
    assert response.json()["active"] is False
    assert _directory(client, token_for)[IRO_EMAIL]["active"] is False

    # The token still verifies, but its person is now inactive: 401, on every route.
    _problem(
        client.get(f"/api/v1/disputes/{dispute['id']}", headers=token_for(IRO_EMAIL)), 401, "unauthenticated"
    )
    _problem(client.get("/api/v1/disputes", headers=token_for(IRO_EMAIL)), 401, "unauthenticated")
    _problem(
        client.post("/api/v1/disputes", json={"child_ref": "X"}, headers=token_for(IRO_EMAIL)),
        401,
        "unauthenticated",
    )


def test_deactivating_the_owner_of_an_open_stage_is_refused(
    client: TestClient, token_for: Tokens, raise_dispute: Callable[..., dict[str, Any]]
) -> None:
    dispute = raise_dispute()
    assert dispute["owner"] == TM_EMAIL
    response = client.patch(f"{PEOPLE}/{TM_EMAIL}", json={"active": False}, headers=token_for(ADMIN_EMAIL))
    body = _problem(response, 409, "conflict")
    assert body["disputes"] == [dispute["reference"]]
    assert _directory(client, token_for)[TM_EMAIL]["active"] is True
    assert client.get(f"/api/v1/disputes/{dispute['id']}", headers=token_for(TM_EMAIL)).status_code == 200


def test_the_409_names_every_open_dispute_and_only_open_ones(
    client: TestClient, token_for: Tokens, raise_dispute: Callable[..., dict[str, Any]]
) -> None:
    first = raise_dispute()
    second = raise_dispute(child_ref="LCS-000456")
    third = raise_dispute(child_ref="LCS-000789")
    withdrawn = client.post(
        f"/api/v1/disputes/{second['id']}/actions/withdraw",
        json={"reason": "Sorted.", "expected_version": second["version"]},
        headers=token_for(IRO_EMAIL),
    )
    assert withdrawn.status_code == 200, withdrawn.text

    response = client.patch(f"{PEOPLE}/{IRO_EMAIL}", json={"active": False}, headers=token_for(ADMIN_EMAIL))
    body = _problem(response, 409, "conflict")
    assert body["disputes"] == sorted([first["reference"], third["reference"]])


def test_other_changes_to_someone_with_open_work_are_allowed(
    client: TestClient, token_for: Tokens, raise_dispute: Callable[..., dict[str, Any]]
) -> None:
    raise_dispute()
    response = client.patch(
        f"{PEOPLE}/{IRO_EMAIL}", json={"name": "Ima Renamed", "active": True}, headers=token_for(ADMIN_EMAIL)
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Ima Renamed"


# --- roles in use --------------------------------------------------------------------------------------


def test_the_named_owner_of_a_current_stage_keeps_its_role(
    client: TestClient, token_for: Tokens, raise_dispute: Callable[..., dict[str, Any]]
) -> None:
    dispute = raise_dispute()
    before = _directory(client, token_for)
    response = client.patch(
        f"{PEOPLE}/{TM_EMAIL}", json={"roles": ["head_of_service"]}, headers=token_for(ADMIN_EMAIL)
    )
    body = _problem(response, 409, "conflict")
    assert body["disputes"] == [dispute["reference"]]
    assert "team_manager" in body["detail"] and dispute["reference"] in body["detail"]
    assert _directory(client, token_for) == before
    # Another role may be added beside it, and a role not in use may go.
    added = client.patch(
        f"{PEOPLE}/{TM_EMAIL}", json={"roles": ["team_manager", "iro"]}, headers=token_for(ADMIN_EMAIL)
    )
    assert added.status_code == 200, added.text
    removed = client.patch(
        f"{PEOPLE}/{TM_EMAIL}", json={"roles": ["team_manager"]}, headers=token_for(ADMIN_EMAIL)
    )
    assert removed.status_code == 200, removed.text


def test_the_iro_of_an_open_dispute_keeps_the_iro_role(
    client: TestClient, token_for: Tokens, raise_dispute: Callable[..., dict[str, Any]]
) -> None:
    first = raise_dispute()
    second = raise_dispute(child_ref="LCS-000456")
    response = client.patch(
        f"{PEOPLE}/{IRO_EMAIL}", json={"roles": ["iro_manager"]}, headers=token_for(ADMIN_EMAIL)
    )
    body = _problem(response, 409, "conflict")
    assert body["disputes"] == sorted([first["reference"], second["reference"]])
    assert _directory(client, token_for)[IRO_EMAIL]["roles"] == ["iro"]


def test_the_last_holder_of_a_role_that_owns_a_current_stage_keeps_it(
    client: TestClient, token_for: Tokens, raise_dispute: Callable[..., dict[str, Any]]
) -> None:
    hos = "hos@example.gov.uk"
    dispute = raise_dispute(start_stage="head_of_service", reason="Urgent: the plan has drifted for a year")
    assert dispute["owner"] is None and dispute["owner_role"] == "head_of_service"
    for change in ({"roles": ["assistant_director"]}, {"active": False}):
        body = _problem(client.patch(f"{PEOPLE}/{hos}", json=change, headers=token_for(ADMIN_EMAIL)), 409)
        assert body["disputes"] == [dispute["reference"]]
        assert "last active holder of the head_of_service role" in body["detail"]
    assert _directory(client, token_for)[hos] == {
        "name": "Hana Service",
        "email": hos,
        "roles": ["head_of_service"],
        "active": True,
    }
    # Once someone else holds the role, the stage is still covered and the role may go.
    added = client.post(
        PEOPLE,
        json={"name": "Harriet Next", "email": "hos2@example.gov.uk", "roles": ["head_of_service"]},
        headers=token_for(ADMIN_EMAIL),
    )
    assert added.status_code == 201, added.text
    response = client.patch(f"{PEOPLE}/{hos}", json={"active": False}, headers=token_for(ADMIN_EMAIL))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("change", [{"active": False}, {"roles": ["iro_manager"]}])
def test_the_last_active_admin_is_neither_deactivated_nor_demoted(
    client: TestClient, token_for: Tokens, change: dict[str, Any]
) -> None:
    before = _directory(client, token_for)
    body = _problem(client.patch(f"{PEOPLE}/{ADMIN_EMAIL}", json=change, headers=token_for(ADMIN_EMAIL)), 409)
    assert "last active admin" in body["detail"]
    assert _directory(client, token_for) == before
    # With a second admin, the first may step down.
    promoted = client.patch(
        f"{PEOPLE}/iro.manager@example.gov.uk",
        json={"roles": ["iro_manager", "admin"]},
        headers=token_for(ADMIN_EMAIL),
    )
    assert promoted.status_code == 200, promoted.text
    response = client.patch(f"{PEOPLE}/{ADMIN_EMAIL}", json=change, headers=token_for(ADMIN_EMAIL))
    assert response.status_code == 200, response.text


# --- the history of a person ----------------------------------------------------------------------------


def test_admins_read_every_change_to_a_person_oldest_first(
    client: TestClient, token_for: Tokens, clock: Any
) -> None:
    admin = token_for(ADMIN_EMAIL)
    added = client.post(
        PEOPLE, json={"name": "Nina New", "email": "nina@example.gov.uk", "roles": ["iro"]}, headers=admin
    )
    assert added.status_code == 201, added.text
    clock.advance(minutes=5)
    for change in (
        {"name": "Nina Renamed", "roles": ["iro", "team_manager"]},
        {"active": False},
        {"active": True},
    ):
        assert client.patch(f"{PEOPLE}/nina@example.gov.uk", json=change, headers=admin).status_code == 200
    # Someone else's change is not in Nina's history.
    assert (
        client.patch(f"{PEOPLE}/{TM_EMAIL}", json={"name": "Tara Renamed"}, headers=admin).status_code == 200
    )

    response = client.get(f"{PEOPLE}/Nina@Example.gov.uk/history", headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["email"] == "nina@example.gov.uk"
    items = body["items"]
    assert [(i["seq"], i["kind"], i["actor"], i["channel"]) for i in items] == [
        (1, "added", ADMIN_EMAIL, "api"),
        (2, "name_changed", ADMIN_EMAIL, "api"),
        (3, "roles_changed", ADMIN_EMAIL, "api"),
        (4, "deactivated", ADMIN_EMAIL, "api"),
        (5, "reactivated", ADMIN_EMAIL, "api"),
    ]
    assert items[0]["before"] is None
    assert items[0]["after"] == {
        "name": "Nina New",
        "email": "nina@example.gov.uk",
        "roles": ["iro"],
        "active": True,
    }
    assert (items[2]["before"], items[2]["after"]) == ({"roles": ["iro"]}, {"roles": ["iro", "team_manager"]})
    assert (items[3]["before"], items[3]["after"]) == ({"active": True}, {"active": False})
    assert items[0]["at"] < items[1]["at"]


def test_a_person_with_no_recorded_changes_has_an_empty_history(
    client: TestClient, token_for: Tokens
) -> None:
    response = client.get(f"{PEOPLE}/{IRO_EMAIL}/history", headers=token_for(ADMIN_EMAIL))
    assert response.status_code == 200, response.text
    assert response.json() == {"email": IRO_EMAIL, "items": []}


@pytest.mark.parametrize("who", [IRO_EMAIL, TM_EMAIL, "iro.manager@example.gov.uk"])
def test_only_admins_read_the_history(client: TestClient, token_for: Tokens, who: str) -> None:
    _problem(client.get(f"{PEOPLE}/{TM_EMAIL}/history", headers=token_for(who)), 403, "forbidden")
    # Not even their own.
    _problem(client.get(f"{PEOPLE}/{who}/history", headers=token_for(who)), 403, "forbidden")


def test_the_history_of_an_unknown_person_is_404_and_needs_a_token(
    client: TestClient, token_for: Tokens
) -> None:
    _problem(
        client.get(f"{PEOPLE}/nobody@example.gov.uk/history", headers=token_for(ADMIN_EMAIL)),
        404,
        "not-found",
    )
    _problem(client.get(f"{PEOPLE}/{TM_EMAIL}/history"), 401, "unauthenticated")
