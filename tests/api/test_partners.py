"""Organisations and external contacts over HTTP: admin only; a contact's address is never a staff address,
either way round; and a contact, who holds no role, gets 401 for any bearer token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import ADMIN_EMAIL, IRO_EMAIL, IRO_MANAGER_EMAIL, TM_EMAIL

Tokens = Callable[[str], dict[str, str]]
PROBLEM = "application/problem+json"
ORGANISATIONS = "/api/v1/organisations"
CONTACTS = "/api/v1/contacts"
NURSE = "nurse@nhs.example"


def _problem(response: Any, status: int, slug: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    if slug is not None:
        assert body["type"] == f"/problems/{slug}"
    return body


def _fields(body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in body["errors"]]


def _listed(client: TestClient, token_for: Tokens) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    admin = token_for(ADMIN_EMAIL)
    organisations = client.get(ORGANISATIONS, headers=admin)
    contacts = client.get(CONTACTS, headers=admin)
    assert organisations.status_code == contacts.status_code == 200
    return organisations.json()["items"], contacts.json()["items"]


@pytest.fixture
def health(client: TestClient, token_for: Tokens) -> dict[str, Any]:
    """An NHS trust with one contact, the designated nurse, added over the API."""
    admin = token_for(ADMIN_EMAIL)
    organisation = client.post(
        ORGANISATIONS, json={"id": "nhs_trust", "name": "The NHS Trust", "kind": "partner"}, headers=admin
    )
    assert organisation.status_code == 201, organisation.text
    contact = client.post(
        CONTACTS,
        json={"name": "Nadia Nurse", "email": "Nurse@NHS.example", "organisation": "nhs_trust"},
        headers=admin,
    )
    assert contact.status_code == 201, contact.text
    return {"organisation": organisation.json(), "contact": contact.json()}


# --- round trips -----------------------------------------------------------------------------------------


def test_admin_adds_lists_and_changes_organisations(client: TestClient, token_for: Tokens) -> None:
    admin = token_for(ADMIN_EMAIL)
    for body in (
        {"id": "shire_council", "name": "Shire County Council", "kind": "other_authority"},
        {"id": "nhs_trust", "name": "  The NHS Trust ", "kind": "partner"},
    ):
        assert client.post(ORGANISATIONS, json=body, headers=admin).status_code == 201
    listed = client.get(ORGANISATIONS, headers=admin).json()
    assert listed == {
        "items": [
            {"id": "nhs_trust", "name": "The NHS Trust", "kind": "partner"},
            {"id": "shire_council", "name": "Shire County Council", "kind": "other_authority"},
        ],
        "total": 2,
    }
    patched = client.patch(f"{ORGANISATIONS}/nhs_trust", json={"name": "NHS Foundation Trust"}, headers=admin)
    assert patched.status_code == 200, patched.text
    assert patched.json() == {"id": "nhs_trust", "name": "NHS Foundation Trust", "kind": "partner"}
    patched = client.patch(f"{ORGANISATIONS}/shire_council", json={"kind": "partner"}, headers=admin)
    assert patched.json()["kind"] == "partner"


def test_admin_adds_lists_and_changes_contacts(
    client: TestClient, token_for: Tokens, health: dict[str, Any]
) -> None:
    admin = token_for(ADMIN_EMAIL)
    assert health["contact"] == {
        "name": "Nadia Nurse",
        "email": NURSE,
        "organisation": "nhs_trust",
        "active": True,
    }
    assert (
        client.post(
            ORGANISATIONS, json={"id": "school", "name": "The School", "kind": "partner"}, headers=admin
        ).status_code
        == 201
    )
    head = client.post(
        CONTACTS,
        json={"name": "Hal Head", "email": "head@school.example", "organisation": "school", "active": False},
        headers=admin,
    )
    assert head.status_code == 201, head.text
    assert head.json()["active"] is False

    everyone = client.get(CONTACTS, headers=admin).json()
    assert [c["email"] for c in everyone["items"]] == ["head@school.example", NURSE]
    assert everyone["total"] == 2
    at_school = client.get(CONTACTS, params={"organisation": "school"}, headers=admin).json()
    assert [c["email"] for c in at_school["items"]] == ["head@school.example"]

    patched = client.patch(
        f"{CONTACTS}/NURSE@nhs.example",
        json={"name": "Nadia Renamed", "organisation": "school", "active": False},
        headers=admin,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json() == {
        "name": "Nadia Renamed",
        "email": NURSE,
        "organisation": "school",
        "active": False,
    }
    assert client.patch(f"{CONTACTS}/{NURSE}", json={}, headers=admin).json() == patched.json()


# --- refusals --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", [IRO_EMAIL, TM_EMAIL, IRO_MANAGER_EMAIL])
def test_non_admins_get_403_and_change_nothing(
    client: TestClient, token_for: Tokens, health: dict[str, Any], who: str
) -> None:
    before = _listed(client, token_for)
    headers = token_for(who)
    for method, path, body in [
        ("GET", ORGANISATIONS, None),
        ("POST", ORGANISATIONS, {"id": "sneaky", "name": "Sneaky", "kind": "partner"}),
        ("PATCH", f"{ORGANISATIONS}/nhs_trust", {"name": "Renamed"}),
        ("GET", CONTACTS, None),
        ("POST", CONTACTS, {"name": "S", "email": "s@nhs.example", "organisation": "nhs_trust"}),
        ("PATCH", f"{CONTACTS}/{NURSE}", {"active": False}),
    ]:
        _problem(client.request(method, path, json=body, headers=headers), 403, "forbidden")
    assert _listed(client, token_for) == before


@pytest.mark.parametrize("path", [ORGANISATIONS, CONTACTS])
def test_no_token_gets_401(client: TestClient, path: str) -> None:
    response = client.get(path)
    _problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


def test_adding_either_twice_gets_409(client: TestClient, token_for: Tokens, health: dict[str, Any]) -> None:
    admin = token_for(ADMIN_EMAIL)
    before = _listed(client, token_for)
    body = _problem(
        client.post(
            ORGANISATIONS, json={"id": "nhs_trust", "name": "Again", "kind": "partner"}, headers=admin
        ),
        409,
        "conflict",
    )
    assert "nhs_trust" in body["detail"]
    body = _problem(
        client.post(
            CONTACTS,
            json={"name": "Again", "email": "NURSE@nhs.example", "organisation": "nhs_trust"},
            headers=admin,
        ),
        409,
        "conflict",
    )
    assert NURSE in body["detail"]
    assert _listed(client, token_for) == before


def test_an_unknown_kind_gets_422_naming_the_allowed_kinds(client: TestClient, token_for: Tokens) -> None:
    response = client.post(
        ORGANISATIONS, json={"id": "nhs", "name": "NHS", "kind": "charity"}, headers=token_for(ADMIN_EMAIL)
    )
    body = _problem(response, 422, "invalid-input")
    assert _fields(body) == ["kind"]
    assert "partner" in body["errors"][0]["message"] and "other_authority" in body["errors"][0]["message"]


@pytest.mark.parametrize("bad_id", ["NHS", "1trust", "nhs-trust", "nhs trust", "", "a" * 65])
def test_a_bad_organisation_id_gets_422(client: TestClient, token_for: Tokens, bad_id: str) -> None:
    response = client.post(
        ORGANISATIONS, json={"id": bad_id, "name": "NHS", "kind": "partner"}, headers=token_for(ADMIN_EMAIL)
    )
    assert _fields(_problem(response, 422, "invalid-input")) == ["id"]
    assert _listed(client, token_for)[0] == []


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "X", "email": "not-an-address", "organisation": "nhs_trust"}, ["email"]),
        ({"name": "", "email": "x@nhs.example", "organisation": "nhs_trust"}, ["name"]),
        ({"name": "X", "email": "x@nhs.example", "organisation": "nhs_trust", "roles": ["iro"]}, ["roles"]),
        ({"name": "X", "email": "x@nhs.example", "organisation": "No Such"}, ["organisation"]),
        ({"name": "X", "email": "x@nhs.example", "organisation": "nobody"}, ["organisation"]),
    ],
)
def test_invalid_contacts_get_422_naming_each_field(
    client: TestClient, token_for: Tokens, health: dict[str, Any], body: dict[str, Any], fields: list[str]
) -> None:
    before = _listed(client, token_for)
    response = client.post(CONTACTS, json=body, headers=token_for(ADMIN_EMAIL))
    assert _fields(_problem(response, 422, "invalid-input")) == fields
    assert _listed(client, token_for) == before


def test_moving_a_contact_to_an_unknown_organisation_gets_422(
    client: TestClient, token_for: Tokens, health: dict[str, Any]
) -> None:
    response = client.patch(
        f"{CONTACTS}/{NURSE}", json={"organisation": "nobody"}, headers=token_for(ADMIN_EMAIL)
    )
    body = _problem(response, 422, "invalid-input")
    assert _fields(body) == ["organisation"] and "nobody" in body["detail"]


def test_patching_the_unknown_gets_404(client: TestClient, token_for: Tokens) -> None:
    admin = token_for(ADMIN_EMAIL)
    body = _problem(client.patch(f"{ORGANISATIONS}/nobody", json={"name": "X"}, headers=admin), 404)
    assert "nobody" in body["detail"]
    body = _problem(client.patch(f"{CONTACTS}/x@nhs.example", json={"active": False}, headers=admin), 404)
    assert "x@nhs.example" in body["detail"]
    # A staff address is no contact either.
    _problem(client.patch(f"{CONTACTS}/{TM_EMAIL}", json={"active": False}, headers=admin), 404, "not-found")


# --- a contact's address is never a staff address ----------------------------------------------------------


def test_a_staff_address_cannot_become_a_contact(
    client: TestClient, token_for: Tokens, health: dict[str, Any]
) -> None:
    before = _listed(client, token_for)
    response = client.post(
        CONTACTS,
        json={"name": "Tara Manager", "email": "TM@example.gov.uk", "organisation": "nhs_trust"},
        headers=token_for(ADMIN_EMAIL),
    )
    body = _problem(response, 409, "conflict")
    assert TM_EMAIL in body["detail"] and "never also a staff address" in body["detail"]
    assert _listed(client, token_for) == before


def test_a_contact_address_cannot_join_the_staff_directory(
    client: TestClient, token_for: Tokens, health: dict[str, Any]
) -> None:
    admin = token_for(ADMIN_EMAIL)
    response = client.post(
        "/api/v1/people",
        json={"name": "Nadia Nurse", "email": "Nurse@NHS.example", "roles": ["iro"]},
        headers=admin,
    )
    body = _problem(response, 409, "conflict")
    assert NURSE in body["detail"] and "nhs_trust" in body["detail"]
    assert NURSE not in {p["email"] for p in client.get("/api/v1/people", headers=admin).json()["items"]}


# --- a contact never signs in ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/disputes", CONTACTS, "/api/v1/people"])
def test_a_contacts_bearer_token_gets_401(
    client: TestClient, token_for: Tokens, health: dict[str, Any], path: str
) -> None:
    response = client.get(path, headers=token_for(NURSE))
    _problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"
    # Active or not: a contact holds no role, so no token of theirs is ever accepted.
    client.patch(f"{CONTACTS}/{NURSE}", json={"active": True}, headers=token_for(ADMIN_EMAIL))
    _problem(client.get(path, headers=token_for(NURSE.upper())), 401, "unauthenticated")


# --- the history of an organisation or a contact ---------------------------------------------------------


def test_admins_read_every_change_to_an_organisation_oldest_first(
    client: TestClient, token_for: Tokens, health: dict[str, Any], clock: Any
) -> None:
    admin = token_for(ADMIN_EMAIL)
    clock.advance(minutes=5)
    for change in (
        {"name": "NHS Foundation Trust", "kind": "other_authority"},
        {"name": "NHS Foundation Trust"},
    ):
        assert client.patch(f"{ORGANISATIONS}/nhs_trust", json=change, headers=admin).status_code == 200

    response = client.get(f"{ORGANISATIONS}/nhs_trust/history", headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "nhs_trust"
    # The second PATCH changed nothing, and the contact's own changes are in the contact's history.
    assert [
        (i["seq"], i["kind"], i["actor"], i["channel"], i["before"], i["after"]) for i in body["items"]
    ] == [
        (
            1,
            "added",
            ADMIN_EMAIL,
            "api",
            None,
            {"id": "nhs_trust", "name": "The NHS Trust", "kind": "partner"},
        ),
        (3, "name_changed", ADMIN_EMAIL, "api", {"name": "The NHS Trust"}, {"name": "NHS Foundation Trust"}),
        (4, "kind_changed", ADMIN_EMAIL, "api", {"kind": "partner"}, {"kind": "other_authority"}),
    ]
    assert body["items"][0]["at"] < body["items"][1]["at"]


def test_admins_read_every_change_to_a_contact_oldest_first(
    client: TestClient, token_for: Tokens, health: dict[str, Any]
) -> None:
    admin = token_for(ADMIN_EMAIL)
    school = {"id": "school", "name": "The School", "kind": "partner"}
    assert client.post(ORGANISATIONS, json=school, headers=admin).status_code == 201
    for change in ({"name": "Nadia Renamed", "organisation": "school"}, {"active": False}, {"active": True}):
        assert client.patch(f"{CONTACTS}/{NURSE}", json=change, headers=admin).status_code == 200

    response = client.get(f"{CONTACTS}/Nurse@NHS.example/history", headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["email"] == NURSE
    assert [(i["seq"], i["kind"], i["before"], i["after"]) for i in body["items"]] == [
        (
            2,
            "added",
            None,
            {"name": "Nadia Nurse", "email": NURSE, "organisation": "nhs_trust", "active": True},
        ),
        (4, "name_changed", {"name": "Nadia Nurse"}, {"name": "Nadia Renamed"}),
        (5, "organisation_changed", {"organisation": "nhs_trust"}, {"organisation": "school"}),
        (6, "deactivated", {"active": True}, {"active": False}),
        (7, "reactivated", {"active": False}, {"active": True}),
    ]
    assert {(i["actor"], i["channel"]) for i in body["items"]} == {(ADMIN_EMAIL, "api")}


def test_a_refused_change_is_not_in_the_history(
    client: TestClient, token_for: Tokens, health: dict[str, Any]
) -> None:
    admin = token_for(ADMIN_EMAIL)
    _problem(client.patch(f"{CONTACTS}/{NURSE}", json={"organisation": "nobody"}, headers=admin), 422)
    _problem(client.patch(f"{ORGANISATIONS}/nhs_trust", json={"kind": "charity"}, headers=admin), 422)
    for path in (f"{ORGANISATIONS}/nhs_trust/history", f"{CONTACTS}/{NURSE}/history"):
        assert [i["kind"] for i in client.get(path, headers=admin).json()["items"]] == ["added"]


@pytest.mark.parametrize("who", [IRO_EMAIL, TM_EMAIL, IRO_MANAGER_EMAIL])
def test_only_admins_read_the_partner_histories(
    client: TestClient, token_for: Tokens, health: dict[str, Any], who: str
) -> None:
    for path in (f"{ORGANISATIONS}/nhs_trust/history", f"{CONTACTS}/{NURSE}/history"):
        _problem(client.get(path, headers=token_for(who)), 403, "forbidden")


def test_the_history_of_the_unknown_is_404_and_needs_a_token(
    client: TestClient, token_for: Tokens, health: dict[str, Any]
) -> None:
    admin = token_for(ADMIN_EMAIL)
    body = _problem(client.get(f"{ORGANISATIONS}/nobody/history", headers=admin), 404, "not-found")
    assert "nobody" in body["detail"]
    body = _problem(client.get(f"{CONTACTS}/x@nhs.example/history", headers=admin), 404, "not-found")
    assert "x@nhs.example" in body["detail"]
    # A staff address is no contact either.
    _problem(client.get(f"{CONTACTS}/{TM_EMAIL}/history", headers=admin), 404, "not-found")
    _problem(client.get(f"{ORGANISATIONS}/{'a' * 65}/history", headers=admin), 422, "invalid-input")
    for path in (f"{ORGANISATIONS}/nhs_trust/history", f"{CONTACTS}/{NURSE}/history"):
        _problem(client.get(path), 401, "unauthenticated")
