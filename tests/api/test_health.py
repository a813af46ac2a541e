"""/healthz, /readyz and /metrics: liveness, readiness (the database, and the scheduler where it runs), and
the figures a watchdog alerts on. None of them needs a token."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from tests.factories import IRO_EMAIL, raise_body


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_the_database(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    # The test app runs without the scheduler, and says so.
    assert body["scheduler"] == "disabled"


def test_health_endpoints_need_no_token(client: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path, headers={"Authorization": "Bearer rubbish"}).status_code == 200


def test_an_api_only_replica_runs_no_scheduler(
    client: TestClient, token_for: Callable[[str], dict[str, str]], clock: Any
) -> None:
    assert client.get("/readyz").json()["scheduler"] == "disabled"
    assert client.app.state.scheduler is None  # type: ignore[attr-defined]
    clock.now = datetime(2018, 1, 4, 9, 0, tzinfo=UTC)
    d = client.post("/api/v1/disputes", json=raise_body(), headers=token_for(IRO_EMAIL)).json()
    clock.now = datetime(2019, 1, 1, tzinfo=UTC)
    # The overdue deadline shows up in the metrics, for the watchdog's alert.
    assert "dispute_overdue_deadlines 2.0" in client.get("/metrics").text
    assert (
        client.get(f"/api/v1/disputes/{d['id']}", headers=token_for(IRO_EMAIL)).json()["stage"]
        == "quality_assurance"
    )
