"""Each HTTP request is one transaction: the caller is looked up in it, the use case runs in it, and it
commits before the answer goes out or rolls back when the request is refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session, sessionmaker
from structlog.testing import capture_logs

from api.app import Mode, create_app
from dispute_service.config import Settings
from dispute_service.models import AuditEntry, Dispute, Notification
from tests.factories import ADMIN_EMAIL, IRO_EMAIL, IRO_MANAGER_EMAIL, TM_EMAIL, raise_body
from tests.recording import record_transactions

Tokens = Callable[[str], dict[str, str]]


def _rows(sessions: sessionmaker[Session]) -> tuple[int, int, int]:
    with sessions.begin() as session:
        return (
            session.scalar(select(func.count()).select_from(AuditEntry)) or 0,
            session.scalar(select(func.count()).select_from(Notification)) or 0,
            session.scalar(select(func.max(Dispute.version))) or 0,
        )


def test_every_route_that_reads_or_writes_runs_exactly_one_transaction(
    client: TestClient, token_for: Tokens, raise_dispute: Callable[..., dict[str, Any]]
) -> None:
    dispute = raise_dispute()
    base = f"/api/v1/disputes/{dispute['id']}"
    requests: list[tuple[str, str, str, dict[str, Any] | None]] = [
        ("post", "/api/v1/disputes", IRO_EMAIL, raise_body(child_ref="LCS-2")),
        ("get", "/api/v1/disputes", IRO_EMAIL, None),
        ("get", base, IRO_EMAIL, None),
        ("post", f"{base}/actions/acknowledge", TM_EMAIL, {}),
        ("post", f"{base}/actions/respond", TM_EMAIL, {"response": "SECRET-RESPONSE done"}),
        ("get", f"{base}/audit", IRO_EMAIL, None),
        ("get", "/api/v1/people", ADMIN_EMAIL, None),
        (
            "post",
            "/api/v1/people",
            ADMIN_EMAIL,
            {"name": "New Person", "email": "new@example.gov.uk", "roles": ["iro"]},
        ),
        ("patch", "/api/v1/people/new@example.gov.uk", ADMIN_EMAIL, {"name": "Newer Person"}),
        ("get", "/api/v1/notifications", ADMIN_EMAIL, None),
        ("get", "/api/v1/reports/annual?year=2017", IRO_MANAGER_EMAIL, None),
    ]
    engine = client.app.state.engine  # type: ignore[attr-defined]
    for method, path, who, body in requests:
        with record_transactions(engine) as seen:
            response = client.request(method, path, json=body, headers=token_for(who))
        assert response.status_code in (200, 201), (method, path, response.text)
        assert len(seen) == 1, (method, path, seen)
        # The caller is looked up in that same transaction, before the use case reads anything else.
        assert "FROM people" in seen[0][0], (method, path, seen[0][0])


@pytest.mark.parametrize(
    ("trigger", "who", "body", "status"),
    [
        ("respond", TM_EMAIL, {}, 422),  # the trigger's own field is missing
        ("reopen", IRO_EMAIL, {"reason": "why", "expected_version": 1}, 409),  # not allowed in this state
        ("escalate", IRO_EMAIL, {"reason": "why"}, 428),  # not aimed at a version
        ("acknowledge", TM_EMAIL, {"expected_version": 7}, 409),  # a stale version
        ("resolve", "iro2@example.gov.uk", {}, 404),  # not theirs to read
    ],
)
def test_a_refused_request_runs_one_transaction_and_writes_nothing(
    client: TestClient,
    token_for: Tokens,
    raise_dispute: Callable[..., dict[str, Any]],
    sessions: sessionmaker[Session],
    trigger: str,
    who: str,
    body: dict[str, Any],
    status: int,
) -> None:
    dispute = raise_dispute()
    before = _rows(sessions)
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with record_transactions(engine) as seen:
        response = client.post(
            f"/api/v1/disputes/{dispute['id']}/actions/{trigger}", json=body, headers=token_for(who)
        )
    assert response.status_code == status, response.text
    assert len(seen) == 1 and seen.writing() == []
    assert _rows(sessions) == before


def test_an_action_commits_its_change_its_audit_entry_and_its_emails_together(
    client: TestClient, token_for: Tokens, raise_dispute: Callable[..., dict[str, Any]]
) -> None:
    dispute = raise_dispute()
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with record_transactions(engine) as seen:
        response = client.post(
            f"/api/v1/disputes/{dispute['id']}/actions/escalate",
            json={"reason": "SECRET no plan", "expected_version": dispute["version"]},
            headers=token_for(IRO_EMAIL),
        )
    assert response.status_code == 200, response.text
    [statements] = seen
    written = {
        s.split()[0] + " " + s.split()[2 if s.startswith(("INSERT", "DELETE")) else 1] for s in statements
    }
    assert {
        "UPDATE disputes",
        "INSERT audit_entries",
        "INSERT audit_texts",
        "INSERT notifications",
    } <= written


def test_the_transaction_commits_before_the_answer_is_sent(
    settings: Settings, clock: Any, staff: list[str], token_for: Tokens
) -> None:
    """An answered request is never lost: the commit happens before the first byte of the response."""
    events: list[str] = []
    app = create_app(settings, mode=Mode.STRICT, clock=clock)

    async def watch(scope: Any, receive: Any, send: Any) -> None:
        async def record(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                events.append("response")
            await send(message)

        await app(scope, receive, record)

    with TestClient(watch) as client:  # the lifespan goes through to the app, which builds its engine
        event.listen(app.state.engine, "commit", lambda conn: events.append("commit"))
        response = client.post("/api/v1/disputes", json=raise_body(), headers=token_for(IRO_EMAIL))
    assert response.status_code == 201, response.text
    assert events == ["commit", "response"]


def _drop_the_apps_connections(engine: Any) -> int:
    """What a database restart or a firewall's idle timeout does to the connections in the app's pool."""
    with engine.connect() as conn:
        dropped = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
        conn.commit()
    return int(dropped)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_request_whose_pooled_connection_was_dropped_begins_again_on_a_fresh_one(
    client: TestClient,
    token_for: Tokens,
    raise_dispute: Callable[..., dict[str, Any]],
    engine: Any,
    sessions: sessionmaker[Session],
) -> None:
    dispute = raise_dispute()
    # The pool keeps the connection the raise used; there is no pre-ping to notice it is gone.
    assert _drop_the_apps_connections(engine) >= 1
    with capture_logs() as logs:
        read = client.get(f"/api/v1/disputes/{dispute['id']}", headers=token_for(IRO_EMAIL))
    assert read.status_code == 200, read.text
    assert [e["event"] for e in logs if e["event"] == "database.connection_dropped"] == [
        "database.connection_dropped"
    ]
    before = _rows(sessions)
    assert _drop_the_apps_connections(engine) >= 1
    acted = client.post(
        f"/api/v1/disputes/{dispute['id']}/actions/acknowledge", json={}, headers=token_for(TM_EMAIL)
    )
    assert acted.status_code == 200, acted.text
    # Done once: one audit entry and one version more.
    after = _rows(sessions)
    assert (after[0] - before[0], after[2] - before[2]) == (1, 1)
