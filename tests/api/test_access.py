"""Rights follow the roles a person holds now, over HTTP: someone whose role was taken away by an admin can
no longer read or act through it, on disputes they took part in before."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from states.vocabulary import AIMED_TRIGGERS
from tests.factories import ADMIN_EMAIL, IRO_EMAIL, TM_EMAIL

Tokens = Callable[[str], dict[str, str]]
DISPUTES = "/api/v1/disputes"


def _set_roles(client: TestClient, token_for: Tokens, email: str, roles: list[str]) -> None:
    response = client.patch(f"/api/v1/people/{email}", json={"roles": roles}, headers=token_for(ADMIN_EMAIL))
    assert response.status_code == 200, response.text


def _act(
    client: TestClient, token_for: Tokens, who: str, dispute: dict[str, Any], trigger: str, **body: Any
) -> Any:
    if trigger in AIMED_TRIGGERS and "expected_version" not in body:
        # Aimed at the current version (read by an admin, who reads every dispute): these tests are about
        # who may act, not about aim.
        current = client.get(f"{DISPUTES}/{dispute['id']}", headers=token_for(ADMIN_EMAIL))
        body["expected_version"] = current.json()["version"]
    return client.post(f"{DISPUTES}/{dispute['id']}/actions/{trigger}", json=body, headers=token_for(who))


def test_a_team_manager_who_lost_the_role_no_longer_reads_the_disputes_they_owned(
    client: TestClient, token_for: Tokens, raise_dispute: Callable[..., dict[str, Any]]
) -> None:
    dispute = raise_dispute()
    escalated = dispute
    for _ in range(2):
        version = escalated["version"]
        response = _act(
            client,
            token_for,
            IRO_EMAIL,
            dispute,
            "escalate",
            reason="Not satisfied",
            expected_version=version,
        )
        assert response.status_code == 200, response.text
        escalated = response.json()
    assert escalated["stage"] == "head_of_corporate_parenting"
    assert client.get(f"{DISPUTES}/{dispute['id']}", headers=token_for(TM_EMAIL)).status_code == 200

    # The team manager's stages are behind the dispute now, so the role is not in use: it may be taken away.
    _set_roles(client, token_for, TM_EMAIL, ["head_of_service"])

    assert client.get(f"{DISPUTES}/{dispute['id']}", headers=token_for(TM_EMAIL)).status_code == 404
    assert client.get(f"{DISPUTES}/{dispute['id']}/audit", headers=token_for(TM_EMAIL)).status_code == 404
    listed = client.get(DISPUTES, headers=token_for(TM_EMAIL))
    assert listed.status_code == 200 and listed.json() == {"items": [], "total": 0, "next": None}


def test_an_iro_who_lost_the_iro_role_can_neither_read_nor_reopen_their_resolved_dispute(
    client: TestClient, token_for: Tokens, raise_dispute: Callable[..., dict[str, Any]]
) -> None:
    dispute = raise_dispute()
    resolved = _act(
        client, token_for, TM_EMAIL, dispute, "resolve", outcome="Plan agreed", outcome_code="action_agreed"
    )
    assert resolved.status_code == 200, resolved.text

    # A resolved dispute is not open, so the IRO role is not in use.
    _set_roles(client, token_for, IRO_EMAIL, ["head_of_service"])

    assert client.get(f"{DISPUTES}/{dispute['id']}", headers=token_for(IRO_EMAIL)).status_code == 404
    reopened = _act(
        client,
        token_for,
        IRO_EMAIL,
        dispute,
        "reopen",
        reason="Not done",
        expected_version=resolved.json()["version"],
    )
    assert reopened.status_code == 404, reopened.text
    assert client.get(DISPUTES, headers=token_for(IRO_EMAIL)).json()["total"] == 0
    # The dispute itself is untouched, and its managers still see it.
    seen = client.get(f"{DISPUTES}/{dispute['id']}", headers=token_for(ADMIN_EMAIL)).json()
    assert seen["state"] == "resolved" and seen["iro"] == IRO_EMAIL
