"""/healthz, /readyz and /metrics: liveness, readiness (the database, and the scheduler where it runs), and
the figures a watchdog alerts on. The first two need no token; metrics need the metrics token, and are off
without one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import Mode, create_app
from dispute_service.config import Settings
from tests.factories import IRO_EMAIL, METRICS_TOKEN, SCRAPER, raise_body


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """This module's app has a metrics token."""
    return settings.model_copy(update={"metrics_token": METRICS_TOKEN})


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
    for path in ("/healthz", "/readyz"):
        assert client.get(path, headers={"Authorization": "Bearer rubbish"}).status_code == 200


def test_metrics_need_the_metrics_token(client: TestClient) -> None:
    assert client.get("/metrics", headers=SCRAPER).status_code == 200
    for headers in ({}, {"Authorization": "Bearer rubbish"}, {"Authorization": METRICS_TOKEN}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "dispute" not in refused.text


def test_without_a_metrics_token_metrics_are_not_there(
    settings: Settings, clock: Any, staff: list[str]
) -> None:
    off = settings.model_copy(update={"metrics_token": None})
    with TestClient(create_app(off, mode=Mode.STRICT, clock=clock)) as client:
        for headers in ({}, {"Authorization": "Bearer "}, SCRAPER):
            response = client.get("/metrics", headers=headers)
            assert response.status_code == 404
            # Just as a path that does not exist.
            assert response.json() == client.get("/api/v1/nowhere").json() | {"status": 404}


def test_an_api_only_replica_runs_no_scheduler(
    client: TestClient, token_for: Callable[[str], dict[str, str]], clock: Any
) -> None:
    assert client.get("/readyz").json()["scheduler"] == "disabled"
    assert client.app.state.scheduler is None  # type: ignore[attr-defined]
    clock.now = datetime(2018, 1, 4, 9, 0, tzinfo=UTC)
    d = client.post("/api/v1/disputes", json=raise_body(), headers=token_for(IRO_EMAIL)).json()
    clock.now = datetime(2019, 1, 1, tzinfo=UTC)
    # The overdue deadline shows up in the metrics, for the watchdog's alert.
    assert "dispute_overdue_deadlines 2.0" in client.get("/metrics", headers=SCRAPER).text
    assert (
        client.get(f"/api/v1/disputes/{d['id']}", headers=token_for(IRO_EMAIL)).json()["stage"]
        == "quality_assurance"
    )
