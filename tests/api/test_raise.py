"""POST /api/v1/disputes answers 201 with a Location that reads the new dispute back."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.factories import IRO_EMAIL, raise_body

Tokens = Callable[[str], dict[str, str]]


def test_location_names_the_new_dispute_and_reads_it_back(
    client: TestClient, token_for: Tokens, backend: str
) -> None:
    headers = token_for(IRO_EMAIL)
    created = client.post("/api/v1/disputes", json=raise_body(child_ref="LCS-42"), headers=headers)
    assert created.status_code == 201, created.text
    body = created.json()
    # A path on this server, not a full URL: behind a proxy the client resolves it against what it called.
    assert created.headers["location"] == f"/api/v1/disputes/{body['id']}"

    read = client.get(created.headers["location"], headers=headers)
    assert read.status_code == 200, read.text
    assert read.json() == body
    assert read.json()["child_ref"] == "LCS-42"
