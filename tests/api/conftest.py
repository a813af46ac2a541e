from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from dispute_service.config import Settings


@pytest.fixture
def client(settings: Settings, clock: Any, staff: list[str]) -> Iterator[TestClient]:
    with TestClient(create_app(settings, clock=clock)) as client:
        yield client


RAISE_BODY: dict[str, Any] = {
    "child_ref": "LCS-000123",
    "case_type": "looked_after",
    "categories": ["permanency_delay"],
    "summary": "SECRET-SUMMARY permanence plan has drifted for Jamie",
    "team_manager_email": "tm@example.gov.uk",
}


@pytest.fixture
def raise_dispute(
    client: TestClient, token_for: Callable[[str], dict[str, str]]
) -> Callable[..., dict[str, Any]]:
    def make(**overrides: Any) -> dict[str, Any]:
        response = client.post(
            "/api/v1/disputes", json={**RAISE_BODY, **overrides}, headers=token_for("iro@example.gov.uk")
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    return make
