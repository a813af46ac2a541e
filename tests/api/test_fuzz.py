"""Bad input never causes a 500, and every refusal of the API is application/problem+json.

The property test has schemathesis send generated requests to every operation of /openapi.json as an admin
or an IRO. The named cases below it are inputs found by hand that the generator rarely reaches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from api.app import Mode, create_app
from dispute_service.config import Settings
from tests.factories import ADMIN_EMAIL, IRO_EMAIL, TM_EMAIL, raise_body

Tokens = Callable[[str], dict[str, str]]
PROBLEM = "application/problem+json"

# Left out: positive_data_acceptance (the schema cannot say that team_manager_email is required at the
# default start stage, and email-validator refuses addresses such as a@localhost or a@x.test that JSON
# Schema's "email" format allows) and negative_data_rejection (unknown query parameters and headers are
# ignored, as FastAPI does).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    ignored_auth,
    missing_required_header,
    unsupported_method,
]


class CurrentApp:
    """A stable ASGI entry point that forwards to the app of the running test (bound to its own database)."""

    def __init__(self) -> None:
        self.app: FastAPI | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None, "the fuzz_app fixture is not active"
        await self.app(scope, receive, send)


current = CurrentApp()
# The document does not depend on the database, so it is read from an app that is never started.
schema = schemathesis.openapi.from_dict(create_app(Settings(_env_file=None), mode=Mode.DEMO).openapi())  # type: ignore[call-arg]
schema.app = current


@pytest.fixture
def fuzz_app(settings: Settings, clock: Any, staff: list[str]) -> Iterator[FastAPI]:
    # schemathesis starts the lifespan on the first request and ends it when the test ends.
    current.app = create_app(settings, mode=Mode.STRICT, clock=clock)
    yield current.app
    current.app = None


def _content_type(response: Any) -> str:
    # httpx gives a string; schemathesis's Response gives a list of the header's values.
    value = response.headers.get("content-type") or ""
    return str(value[0] if isinstance(value, list) else value)


def assert_problem_unless_ok(response: Any) -> None:
    status = response.status_code
    assert status < 500, f"{status}: {response.text[:500]}"
    if 400 <= status < 500 and _content_type(response).startswith("text/html"):
        # Email link pages refuse with a plain page for a person, not JSON.
        assert "<h1 " in response.text, response.text[:500]
        return
    if 400 <= status < 500:
        assert _content_type(response).startswith(PROBLEM), (status, response.headers)
        body = response.json()
        assert body["status"] == status
        assert isinstance(body["type"], str) and isinstance(body["title"], str)
        assert isinstance(body["detail"], str) and body["detail"]


# SQLite only: the named cases below, which reach PostgreSQL's own limits, run on both databases.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@schema.given(who=st.sampled_from([ADMIN_EMAIL, IRO_EMAIL]))
@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_get_no_5xx_and_problem_details(
    case: Case, who: str, fuzz_app: FastAPI, token_for: Tokens
) -> None:
    response = case.call(headers=token_for(who))
    assert_problem_unless_ok(response)
    case.validate_response(response, checks=CHECKS)


# --- named inputs, on both databases -------------------------------------------------------------------


ACT = "/api/v1/disputes/{id}/actions"
# What each named input must get, beyond no 5xx: a 422 naming the field; a list of exactly this many of
# the test's disputes; or, for the JSON null body, the action done as if the body were empty.
Invalid = str
Listed = int
ACTED = "acted"
NAMED: list[tuple[str, str, str, Any, str, Invalid | Listed]] = [
    # id, method, path, body, who, what it gets
    ("offset-2**63", "GET", "/api/v1/disputes?offset=9223372036854775808", None, IRO_EMAIL, "offset"),
    ("offset-huge", "GET", "/api/v1/disputes?offset=99999999999999999999", None, IRO_EMAIL, "offset"),
    ("limit-huge", "GET", "/api/v1/disputes?limit=99999999999999999999", None, IRO_EMAIL, "limit"),
    ("child_ref-nul", "GET", "/api/v1/disputes?child_ref=a%00b", None, IRO_EMAIL, "child_ref"),
    (
        "raised-to-the-last-day",
        "GET",
        "/api/v1/disputes?raised_to=9999-12-31&raised_from=0001-01-01",
        None,
        IRO_EMAIL,
        1,  # every day there is: the test's dispute
    ),
    ("iro-nul", "GET", "/api/v1/disputes?iro=a%00b", None, ADMIN_EMAIL, "iro"),
    ("owner-nul", "GET", "/api/v1/disputes?owner=a%00b", None, ADMIN_EMAIL, "owner"),
    ("state-nul", "GET", "/api/v1/disputes?state=a%00b", None, ADMIN_EMAIL, "state"),
    ("stage-nul", "GET", "/api/v1/disputes?stage=a%00b", None, ADMIN_EMAIL, "stage"),
    (
        "dates-reversed",
        "GET",
        "/api/v1/disputes?raised_from=9999-12-31&raised_to=0001-01-01",
        None,
        IRO_EMAIL,
        0,  # an empty range, not an error
    ),
    ("bad-uuid", "GET", "/api/v1/disputes/not-a-uuid", None, IRO_EMAIL, "dispute_id"),
    ("raise-summary-nul", "POST", "/api/v1/disputes", raise_body(summary="a\x00b"), IRO_EMAIL, "summary"),
    (
        "raise-reason-nul",
        "POST",
        "/api/v1/disputes",
        raise_body(start_stage="team_manager", reason="a\x00b"),
        IRO_EMAIL,
        "reason",
    ),
    (
        "raise-start-stage-nul",
        "POST",
        "/api/v1/disputes",
        raise_body(start_stage="a\x00b", reason="r"),
        IRO_EMAIL,
        "start_stage",
    ),
    ("raise-not-an-object", "POST", "/api/v1/disputes", [1, 2], IRO_EMAIL, "body"),
    (
        "person-name-nul",
        "POST",
        "/api/v1/people",
        {"name": "a\x00b", "email": "n@example.gov.uk", "roles": ["iro"]},
        ADMIN_EMAIL,
        "name",
    ),
    ("patch-path-nul", "PATCH", "/api/v1/people/a%00b@example.gov.uk", {"name": "x"}, ADMIN_EMAIL, "email"),
    ("patch-name-nul", "PATCH", f"/api/v1/people/{TM_EMAIL}", {"name": "a\x00b"}, ADMIN_EMAIL, "name"),
    ("unknown-trigger-nul", "POST", f"{ACT}/a%00b", {}, IRO_EMAIL, "trigger"),
    ("withdraw-reason-nul", "POST", f"{ACT}/withdraw", {"reason": "a\x00b"}, IRO_EMAIL, "reason"),
    (
        "hold-reason-nul",
        "POST",
        f"{ACT}/hold",
        {"reason": "a\x00b", "review_on": "2018-02-01"},
        IRO_EMAIL,
        "reason",
    ),
    ("respond-nul", "POST", f"{ACT}/respond", {"response": "a\x00b"}, TM_EMAIL, "response"),
    (
        "refer-reference-nul",
        "POST",
        f"{ACT}/refer_to_cafcass",
        {"reason": "r", "referred_on": "2018-01-08", "cafcass_reference": "a\x00b"},
        IRO_EMAIL,
        "cafcass_reference",
    ),
    (
        "redact-text-id-2**31",
        "POST",
        f"{ACT}/redact",
        {"text_id": 2**31, "reason": "r"},
        ADMIN_EMAIL,
        "text_id",
    ),
    (
        "redact-text-id-2**63",
        "POST",
        f"{ACT}/redact",
        {"text_id": 2**63, "reason": "r"},
        ADMIN_EMAIL,
        "text_id",
    ),
    (
        "expected-version-huge",
        "POST",
        f"{ACT}/withdraw",
        {"reason": "r", "expected_version": 2**70},
        IRO_EMAIL,
        "expected_version",
    ),
    (
        "extend-days-huge",
        "POST",
        f"{ACT}/extend",
        {"reason": "r", "working_days": 2**70},
        IRO_EMAIL,
        "working_days",
    ),
    ("body-json-null", "POST", f"{ACT}/acknowledge", None, TM_EMAIL, ACTED),
]


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "who", "expected"), NAMED, ids=[n[0] for n in NAMED]
)
def test_named_bad_input_gets_what_it_should_and_no_5xx(
    client: TestClient,
    token_for: Tokens,
    raise_dispute: Callable[..., dict[str, Any]],
    backend: str,
    name: str,
    method: str,
    path: str,
    body: Any,
    who: str,
    expected: Invalid | Listed,
) -> None:
    dispute = raise_dispute()
    response = client.request(method, path.replace("{id}", dispute["id"]), json=body, headers=token_for(who))
    assert_problem_unless_ok(response)
    after = client.get(f"/api/v1/disputes/{dispute['id']}", headers=token_for(IRO_EMAIL)).json()
    if expected == ACTED:
        assert response.status_code == 200, response.text
        assert response.json()["id"] == dispute["id"]
        assert after["version"] == dispute["version"] + 1
        assert after["acknowledged_at"] is not None
    elif isinstance(expected, int):
        assert response.status_code == 200, response.text
        assert [d["id"] for d in response.json()["items"]] == [dispute["id"]][:expected]
        assert response.json()["total"] == expected
    else:
        # Refused as invalid input on both engines (PostgreSQL cannot store NUL in text, nor numbers past
        # its integers), naming the field, and nothing changed.
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == [expected]
        assert after["version"] == dispute["version"]
        listed = client.get("/api/v1/disputes", headers=token_for(ADMIN_EMAIL)).json()
        assert listed["total"] == 1


@pytest.mark.parametrize(
    ("path", "body", "who", "field"),
    [
        ("/api/v1/disputes?offset=9223372036854775808", None, IRO_EMAIL, "offset"),
        (f"{ACT}/redact", {"text_id": 2**31, "reason": "r"}, ADMIN_EMAIL, "text_id"),
        (f"{ACT}/withdraw", {"reason": "r", "expected_version": 2**31}, IRO_EMAIL, "expected_version"),
    ],
    ids=["offset", "text_id", "expected_version"],
)
def test_numbers_beyond_the_database_range_get_422_naming_the_field(
    client: TestClient,
    token_for: Tokens,
    raise_dispute: Callable[..., dict[str, Any]],
    path: str,
    body: Any,
    who: str,
    field: str,
) -> None:
    dispute = raise_dispute()
    path = path.replace("{id}", dispute["id"])
    method = "GET" if body is None else "POST"
    response = client.request(method, path, json=body, headers=token_for(who))
    assert_problem_unless_ok(response)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
    # Nothing changed.
    after = client.get(f"/api/v1/disputes/{dispute['id']}", headers=token_for(IRO_EMAIL)).json()
    assert after["version"] == dispute["version"]


def test_a_body_that_is_not_json_gets_422(client: TestClient, token_for: Tokens) -> None:
    headers = {**token_for(ADMIN_EMAIL), "content-type": "application/json"}
    response = client.post("/api/v1/people", content=b"{not json", headers=headers)
    assert_problem_unless_ok(response)
    assert response.status_code == 422


def test_a_body_that_is_not_utf8_gets_422(client: TestClient, token_for: Tokens) -> None:
    headers = {**token_for(ADMIN_EMAIL), "content-type": "application/json"}
    response = client.post("/api/v1/people", content='{"name": "Zo\xe9"}'.encode("latin-1"), headers=headers)
    assert_problem_unless_ok(response)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["body"]
