"""A dispute taken up the whole ladder over HTTP, as the README walks it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.audit import verify_all
from states.vocabulary import AIMED_TRIGGERS
from tests.factories import IRO_EMAIL, TM_EMAIL, raise_body

Tokens = Callable[[str], dict[str, str]]


def act(
    client: TestClient, tokens: Tokens, who: str, dispute: dict[str, Any], trigger: str, **body: Any
) -> dict[str, Any]:
    if trigger in AIMED_TRIGGERS and "expected_version" not in body:
        # Aimed at the version the caller sees now, as a client that has just read the dispute would be.
        current = client.get(f"/api/v1/disputes/{dispute['id']}", headers=tokens(who))
        body["expected_version"] = int(current.headers["ETag"].strip('"'))
    response = client.post(
        f"/api/v1/disputes/{dispute['id']}/actions/{trigger}", json=body, headers=tokens(who)
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_whole_ladder_then_cafcass_and_close(
    client: TestClient,
    token_for: Tokens,
    raise_dispute: Callable[..., dict[str, Any]],
    sessions: sessionmaker[Session],
) -> None:
    d = raise_dispute()
    assert (d["stage"], d["state"], d["owner"]) == ("quality_assurance", "awaiting_response", TM_EMAIL)
    assert d["reference"] == "DR-2017-0001"
    assert d["allowed_actions"] == [
        "resolve",
        "escalate",
        "refer_to_cafcass",
        "withdraw",
        "hold",
        "extend",
        "amend",
    ]

    d = act(client, token_for, TM_EMAIL, d, "acknowledge")
    assert d["acknowledged_at"] is not None and d["state"] == "awaiting_response"
    d = act(client, token_for, TM_EMAIL, d, "respond", response="We will hold a permanence planning meeting.")
    assert d["state"] == "responded" and d["escalate_at"] is None

    climbed = []
    for who in ("team_manager", "head_of_corporate_parenting", "head_of_service", "assistant_director"):
        d = act(client, token_for, IRO_EMAIL, d, "escalate", reason="Not satisfied with the response.")
        climbed.append((d["stage"], d["state"]))
        assert d["stage"] == who
    assert all(state == "awaiting_response" for _, state in climbed)
    assert d["owner"] is None and d["owner_role"] == "assistant_director"

    d = act(
        client,
        token_for,
        IRO_EMAIL,
        d,
        "refer_to_cafcass",
        reason="Ladder exhausted.",
        referred_on="2018-01-08",  # today: a referral is not dated in the future
    )
    assert (d["stage"], d["state"], d["referred_on"]) == ("cafcass", "referred", "2018-01-08")
    d = act(client, token_for, IRO_EMAIL, d, "close", outcome="CAFCASS agreed a plan with the authority.")
    assert d["state"] == "closed" and d["allowed_actions"] == ["amend"]

    audit = client.get(f"/api/v1/disputes/{d['id']}/audit", headers=token_for(IRO_EMAIL)).json()["items"]
    assert [e["trigger"] for e in audit] == [
        "raise",
        "acknowledge",
        "respond",
        "escalate",
        "escalate",
        "escalate",
        "escalate",
        "refer_to_cafcass",
        "close",
    ]
    assert [e["seq"] for e in audit] == list(range(1, 10))
    assert all(e["channel"] == "api" for e in audit)
    assert audit[0]["text"].startswith("SECRET-SUMMARY")
    assert all(a["hash"] == b["prev_hash"] for a, b in zip(audit, audit[1:], strict=False))
    with sessions() as session:
        checked, problems = verify_all(session)
    assert (checked, problems) == (1, [])


def test_a_manager_resolves_and_the_iro_reopens_one_level_up(
    client: TestClient, token_for: Tokens, raise_dispute: Callable[..., dict[str, Any]]
) -> None:
    d = raise_dispute()
    d = act(client, token_for, TM_EMAIL, d, "resolve", outcome="Plan updated.", outcome_code="plan_changed")
    assert (d["state"], d["resolved_stage"], d["resolved_by"]) == ("resolved", "quality_assurance", TM_EMAIL)
    assert d["outcome"] == "Plan updated." and d["reopen_until"] is not None

    iro_view = client.get(f"/api/v1/disputes/{d['id']}", headers=token_for(IRO_EMAIL)).json()
    assert "reopen" in iro_view["allowed_actions"]
    d = act(client, token_for, IRO_EMAIL, d, "reopen", reason="The plan change does not address the delay.")
    assert (d["stage"], d["state"], d["owner"]) == ("team_manager", "awaiting_response", TM_EMAIL)
    assert d["resolved_at"] is None and d["outcome"] is None


def test_reopen_is_refused_after_the_window(
    client: TestClient, token_for: Tokens, raise_dispute: Callable[..., dict[str, Any]], clock: Any
) -> None:
    d = raise_dispute()
    d = act(client, token_for, TM_EMAIL, d, "resolve", outcome="Done.", outcome_code="action_agreed")
    clock.advance(days=30)
    response = client.post(
        f"/api/v1/disputes/{d['id']}/actions/reopen",
        json={"reason": "late", "expected_version": d["version"]},
        headers=token_for(IRO_EMAIL),
    )
    assert response.status_code == 409
    assert "reopen" not in response.json()["allowed_actions"]


def test_redaction_keeps_the_chain_verifying(
    client: TestClient,
    token_for: Tokens,
    raise_dispute: Callable[..., dict[str, Any]],
    sessions: sessionmaker[Session],
) -> None:
    d = raise_dispute()
    audit = client.get(f"/api/v1/disputes/{d['id']}/audit", headers=token_for(IRO_EMAIL)).json()["items"]
    summary_id = audit[0]["text_id"]
    d = act(
        client,
        token_for,
        "admin@example.gov.uk",
        d,
        "redact",
        text_id=summary_id,
        reason="A name was typed in.",
    )
    assert d["summary"] == "[redacted]"
    audit = client.get(f"/api/v1/disputes/{d['id']}/audit", headers=token_for(IRO_EMAIL)).json()["items"]
    assert audit[0]["text"] == "[redacted]" and audit[0]["text_redacted"] is True
    assert audit[-1]["trigger"] == "redact" and audit[-1]["details"]["redacted_text_id"] == summary_id
    with sessions() as session:
        assert verify_all(session) == (1, [])


def test_start_stage_bypass_and_human_rights_rule(
    client: TestClient, token_for: Tokens, raise_dispute: Callable[..., dict[str, Any]]
) -> None:
    d = raise_dispute(start_stage="head_of_service", reason="Urgent: placement breakdown.")
    assert (d["stage"], d["owner"], d["owner_role"]) == ("head_of_service", None, "head_of_service")
    # Head of Service reads it: their stage was reached. Head of Corporate Parenting never owned it.
    assert (
        client.get(f"/api/v1/disputes/{d['id']}", headers=token_for("hos@example.gov.uk")).status_code == 200
    )
    assert (
        client.get(f"/api/v1/disputes/{d['id']}", headers=token_for("hocp@example.gov.uk")).status_code == 404
    )

    body = raise_body(categories=["human_rights_breach"])
    response = client.post("/api/v1/disputes", json=body, headers=token_for(IRO_EMAIL))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "start_stage"


def test_idempotency_key_replays_and_refuses_a_different_body(client: TestClient, token_for: Tokens) -> None:
    headers = {**token_for(IRO_EMAIL), "Idempotency-Key": "abc-123"}
    first = client.post("/api/v1/disputes", json=raise_body(), headers=headers)
    again = client.post("/api/v1/disputes", json=raise_body(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    listed = client.get("/api/v1/disputes", headers=token_for(IRO_EMAIL)).json()
    assert listed["total"] == 1
    different = client.post("/api/v1/disputes", json=raise_body(child_ref="LCS-9"), headers=headers)
    assert different.status_code == 422
    assert different.json()["errors"][0]["field"] == "Idempotency-Key"


def test_a_retried_action_with_the_same_idempotency_key_is_answered_from_the_first_and_changes_nothing_more(
    client: TestClient, token_for: Tokens, raise_dispute: Callable[..., dict[str, Any]]
) -> None:
    d = raise_dispute()
    url = f"/api/v1/disputes/{d['id']}/actions"
    headers = {**token_for(IRO_EMAIL), "Idempotency-Key": "escalate-once"}
    body = {"reason": "No plan", "expected_version": d["version"]}
    first = client.post(f"{url}/escalate", json=body, headers=headers)
    again = client.post(f"{url}/escalate", json=body, headers=headers)
    assert first.status_code == again.status_code == 200, again.text
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    # The retry carries the now stale version, yet is answered as the first was, not with a 409.
    assert again.json()["stage"] == first.json()["stage"] == "team_manager"
    assert again.json()["version"] == first.json()["version"] == d["version"] + 1
    audit = client.get(f"/api/v1/disputes/{d['id']}/audit", headers=token_for(IRO_EMAIL)).json()["items"]
    assert [e["trigger"] for e in audit] == ["raise", "escalate"]
    # The same key with another body, or on another action, is a different request.
    other = client.post(f"{url}/escalate", json={**body, "reason": "Other"}, headers=headers)
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "Idempotency-Key"
    ack = client.post(f"{url}/acknowledge", json={}, headers={**token_for(TM_EMAIL), "Idempotency-Key": "k"})
    assert ack.status_code == 200
    withdraw = client.post(f"{url}/withdraw", json=body, headers=headers)
    assert withdraw.status_code == 422
