"""What an acknowledge and a read ask of the database, counted by SQLAlchemy's events: more statements or
a second transaction is a regression that slows every request, so CI fails on it (issue 11's targets)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.factories import IRO_EMAIL, TM_EMAIL
from tests.recording import record_transactions

Tokens = Callable[[str], dict[str, str]]

# The caller, the dispute locked with its summary, its stage entries, the global audit head read and
# moved, the dispute's one UPDATE, the audit entry, and the stage entry's acknowledgement.
MAX_ACKNOWLEDGE_STATEMENTS = 8
# The caller, then the dispute with its summary.
MAX_READ_STATEMENTS = 2


def test_an_acknowledge_runs_at_most_eight_statements_in_one_transaction(
    client: TestClient, token_for: Tokens, raise_dispute: Callable[..., dict[str, Any]]
) -> None:
    dispute = raise_dispute()
    with record_transactions(client.app.state.engine) as seen:  # type: ignore[attr-defined]
        response = client.post(
            f"/api/v1/disputes/{dispute['id']}/actions/acknowledge", json={}, headers=token_for(TM_EMAIL)
        )
    assert response.status_code == 200, response.text
    assert response.json()["acknowledged_at"] is not None
    assert len(seen) == 1, seen
    assert len(seen[0]) <= MAX_ACKNOWLEDGE_STATEMENTS, "\n".join(seen[0])
    # One UPDATE of the dispute: its change and its chain's new head together.
    assert sum(s.startswith("UPDATE disputes") for s in seen[0]) == 1, "\n".join(seen[0])


def test_a_read_runs_at_most_two_statements_in_one_transaction(
    client: TestClient, token_for: Tokens, raise_dispute: Callable[..., dict[str, Any]]
) -> None:
    dispute = raise_dispute(summary="The plan has drifted for six months.")
    with record_transactions(client.app.state.engine) as seen:  # type: ignore[attr-defined]
        response = client.get(f"/api/v1/disputes/{dispute['id']}", headers=token_for(IRO_EMAIL))
    assert response.status_code == 200, response.text
    # The summary still comes back, from the dispute's own SELECT.
    assert response.json()["summary"] == "The plan has drifted for six months."
    assert len(seen) == 1, seen
    assert len(seen[0]) <= MAX_READ_STATEMENTS, "\n".join(seen[0])
