"""A 422 names at most 20 problems and echoes no more of the input than it needs to say where it is."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from api.errors import domain_problem
from dispute_service.errors import InvalidInput
from tests.factories import IRO_EMAIL, raise_body

Tokens = Callable[[str], dict[str, str]]


def test_a_body_with_fifty_bad_fields_gets_twenty_errors(client: TestClient, token_for: Tokens) -> None:
    body = raise_body(**{f"unknown_{i:02d}": i for i in range(50)})
    response = client.post("/api/v1/disputes", json=body, headers=token_for(IRO_EMAIL))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert [e["field"] for e in problem["errors"]] == [f"unknown_{i:02d}" for i in range(20)]
    assert problem["detail"].endswith("; and 30 more")


@pytest.mark.parametrize(
    ("bad", "echo"),
    [
        ({"k" * 10_000: "a field name the client chose"}, "k" * 200),
        ({"rating": "r" * 10_000}, "r" * 200),
        ({"team_manager_email": "e" * 10_000 + "@example.gov.uk"}, "e" * 200),
        ({"categories": ["c" * 10_000]}, "c" * 200),
        ({"sibling_refs": ["s;" * 5_000]}, "s;" * 100),
    ],
    ids=["key", "literal", "email", "enum", "pattern"],
)
def test_a_long_bad_value_is_not_echoed_back(
    client: TestClient, token_for: Tokens, bad: dict[str, object], echo: str
) -> None:
    response = client.post("/api/v1/disputes", json=raise_body(**bad), headers=token_for(IRO_EMAIL))
    assert response.status_code == 422, response.text
    assert echo not in response.text
    assert len(response.content) < 2_000, response.text[:300]


def test_a_domain_refusal_with_many_problems_names_twenty() -> None:
    response = domain_problem(InvalidInput([(f"line {n}", "x" * 1_000) for n in range(2, 52)]))
    problem = json.loads(response.body)
    assert response.status_code == 422
    assert [e["field"] for e in problem["errors"]] == [f"line {n}" for n in range(2, 22)]
    assert all(len(e["message"]) <= 300 for e in problem["errors"])
    assert problem["detail"].endswith("; and 30 more")
