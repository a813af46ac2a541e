"""The audit route returns every text an entry keeps, unless it has been redacted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.factories import ADMIN_EMAIL, IRO_EMAIL

Tokens = Callable[[str], dict[str, str]]


def _audit(client: TestClient, token_for: Tokens, dispute_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/disputes/{dispute_id}/audit", headers=token_for(IRO_EMAIL))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_a_raise_above_the_first_stage_shows_its_summary_and_the_iros_reason(
    client: TestClient, token_for: Tokens, raise_dispute: Callable[..., dict[str, Any]]
) -> None:
    d = raise_dispute(
        start_stage="team_manager", reason="SECRET-REASON the QA stage was tried informally last month"
    )
    [raised] = _audit(client, token_for, d["id"])
    texts = raised["texts"]
    assert [(t["kind"], t["redacted"]) for t in texts] == [("summary", False), ("reason", False)]
    assert texts[0]["text_id"] == raised["text_id"] and texts[0]["text"] == raised["text"]
    assert texts[1]["text"] == "SECRET-REASON the QA stage was tried informally last month"
    assert texts[1]["text_id"] == raised["details"]["reason_text_id"]

    # Once redacted, the reason's words are withheld; the summary is still there.
    redacted = client.post(
        f"/api/v1/disputes/{d['id']}/actions/redact",
        json={"text_id": texts[1]["text_id"], "reason": "A name was typed in."},
        headers=token_for(ADMIN_EMAIL),
    )
    assert redacted.status_code == 200, redacted.text
    raised = _audit(client, token_for, d["id"])[0]
    assert [(t["kind"], t["text"] is None, t["redacted"]) for t in raised["texts"]] == [
        ("summary", False, False),
        ("reason", True, True),
    ]
    # The redact entry keeps its own reason, and names the text it redacted (withheld).
    last = _audit(client, token_for, d["id"])[-1]
    assert last["trigger"] == "redact"
    assert [(t["kind"], t["redacted"]) for t in last["texts"]] == [("reason", False), ("reason", True)]
    assert last["texts"][1]["text_id"] == texts[1]["text_id"]
