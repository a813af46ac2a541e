"""POST /actions/reassign over HTTP: the owner of a stage hands it to another holder of the stage's role."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.models import Notification
from tests.factories import HOCP_EMAIL, IRO_EMAIL, TM2_EMAIL, TM_EMAIL

Tokens = Callable[[str], dict[str, str]]


def queued(sessions: sessionmaker[Session], dispute_id: str) -> list[tuple[int, str, str]]:
    with sessions() as session:
        rows = session.execute(
            select(Notification.audit_seq, Notification.template, Notification.recipient)
            .where(Notification.dispute_id == uuid.UUID(dispute_id))
            .order_by(Notification.id)
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def test_the_owner_hands_the_stage_to_another_team_manager(
    client: TestClient,
    token_for: Tokens,
    raise_dispute: Callable[..., dict[str, Any]],
    sessions: sessionmaker[Session],
    backend: str,
) -> None:
    dispute = raise_dispute()
    assert dispute["owner"] == TM_EMAIL
    before = queued(sessions, dispute["id"])

    response = client.post(
        f"/api/v1/disputes/{dispute['id']}/actions/reassign",
        json={"owner_email": TM2_EMAIL, "reason": "On leave", "expected_version": dispute["version"]},
        headers=token_for(TM_EMAIL),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["owner"], body["owner_role"], body["stage"], body["state"]) == (
        TM2_EMAIL,
        "team_manager",
        dispute["stage"],
        dispute["state"],
    )
    assert body["version"] == dispute["version"] + 1
    # The stage's deadline goes with it unchanged: a hand-over buys no time.
    assert (body["due_at"], body["escalate_at"]) == (dispute["due_at"], dispute["escalate_at"])
    assert client.get(f"/api/v1/disputes/{dispute['id']}", headers=token_for(TM2_EMAIL)).json()["owner"] == (
        TM2_EMAIL
    )

    audit = client.get(f"/api/v1/disputes/{dispute['id']}/audit", headers=token_for(IRO_EMAIL))
    entry = audit.json()["items"][-1]
    assert (entry["seq"], entry["trigger"], entry["actor"], entry["actor_role"], entry["channel"]) == (
        2,
        "reassign",
        TM_EMAIL,
        "team_manager",
        "api",
    )
    assert entry["details"] == {"owner_before": TM_EMAIL, "owner_after": TM2_EMAIL}
    assert (entry["text_kind"], entry["text"]) == ("reason", "On leave")

    # The new owner is told, in the outbox with the entry that made them owner.
    assert queued(sessions, dispute["id"]) == [*before, (2, "assigned", TM2_EMAIL)]


@pytest.mark.parametrize(
    ("owner_email", "message"),
    [
        (HOCP_EMAIL, "does not hold the team_manager role"),
        (IRO_EMAIL, "does not hold the team_manager role"),
        ("nobody@example.gov.uk", "is not an active person"),
    ],
    ids=["other-role", "the-iro", "unknown"],
)
def test_a_stage_goes_only_to_a_holder_of_its_role_and_a_refusal_changes_nothing(
    client: TestClient,
    token_for: Tokens,
    raise_dispute: Callable[..., dict[str, Any]],
    sessions: sessionmaker[Session],
    owner_email: str,
    message: str,
) -> None:
    dispute = raise_dispute()
    before = queued(sessions, dispute["id"])
    response = client.post(
        f"/api/v1/disputes/{dispute['id']}/actions/reassign",
        json={"owner_email": owner_email, "expected_version": dispute["version"]},
        headers=token_for(TM_EMAIL),
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["owner_email"]
    assert message in response.json()["detail"]
    after = client.get(f"/api/v1/disputes/{dispute['id']}", headers=token_for(IRO_EMAIL)).json()
    assert (after["owner"], after["version"]) == (TM_EMAIL, dispute["version"])
    assert queued(sessions, dispute["id"]) == before
