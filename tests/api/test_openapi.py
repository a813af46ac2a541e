"""The OpenAPI document: every route, every status it can return declared, and the committed copy current."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import Mode, create_app
from api.cli import app as cli
from dispute_service.config import Settings

# The API contract, pinned: a change to it shows up as a diff of this file in review.
COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
REGENERATE = (
    "the API's OpenAPI document differs from docs/openapi.json; if the change is meant, run "
    "`dispute-service openapi --output docs/openapi.json` (or `make openapi`) and commit the file"
)

# (method, path) -> the statuses the operation can return.
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("post", "/api/v1/disputes"): {"201", "401", "403", "413", "422"},
    ("get", "/api/v1/disputes"): {"200", "401", "422"},
    ("get", "/api/v1/disputes/{dispute_id}"): {"200", "401", "404", "422"},
    ("post", "/api/v1/disputes/{dispute_id}/actions/{trigger}"): {
        "200",
        "401",
        "403",
        "404",
        "409",
        "413",
        "422",
        # An aimed action sent with neither expected_version nor If-Match.
        "428",
    },
    ("get", "/api/v1/disputes/{dispute_id}/audit"): {"200", "401", "404", "422"},
    # Takes no parameters and no body, so it has no way to give a 422.
    ("get", "/api/v1/people"): {"200", "401", "403"},
    ("post", "/api/v1/people"): {"201", "401", "403", "409", "413", "422"},
    ("patch", "/api/v1/people/{email}"): {"200", "401", "403", "404", "409", "413", "422"},
    ("get", "/healthz"): {"200"},
    ("get", "/readyz"): {"200", "503"},
    ("get", "/metrics"): {"200", "401", "404"},
    ("get", "/api/v1/notifications"): {"200", "401", "403", "422"},
    ("get", "/api/v1/reports/annual"): {"200", "401", "403", "422"},
    ("get", "/links/{token}"): {"200", "403", "404", "409", "410", "422", "429"},
    ("post", "/links/{token}"): {"303", "200", "403", "404", "409", "410", "413", "422", "429"},
    ("get", "/links/done"): {"200", "422"},
}
# Email link pages answer a person with a plain HTML page, not problem details.
HTML_PAGES = {
    "/links/{token}",
    "/links/done",
    "/links/{token}/code",
    "/links/{token}/read",
    "/links/renew",
}
PROBLEM_STATUSES = {"401", "403", "404", "409", "413", "422", "428"}


@pytest.fixture(scope="module")
def docs_client() -> TestClient:
    # The document does not depend on the database: an app that is never started (no lifespan) serves it.
    return TestClient(create_app(Settings(_env_file=None, scheduler_enabled=False), mode=Mode.DEMO))  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def schema(docs_client: TestClient) -> dict[str, Any]:
    response = docs_client.get("/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def _operations(schema: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    methods = {"get", "post", "put", "patch", "delete"}
    return {
        (method, path): op
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in methods
    }


def test_the_served_document_is_the_committed_one(client: TestClient) -> None:
    # The started app, as `dispute-service serve` runs it, not only the bare factory.
    response = client.get("/openapi.json")
    assert response.status_code == 200, response.text
    assert response.json() == json.loads(COMMITTED.read_text(encoding="utf-8")), REGENERATE


def test_the_openapi_command_writes_the_committed_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Byte for byte, so the committed file keeps the command's layout (indent 2, sorted keys, final newline).
    monkeypatch.chdir(tmp_path)  # no .env of the developer's is read
    committed = COMMITTED.read_text(encoding="utf-8")
    printed = CliRunner().invoke(cli, ["openapi"])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == committed, REGENERATE
    written = CliRunner().invoke(cli, ["openapi", "--output", str(tmp_path / "openapi.json")])
    assert written.exit_code == 0, written.output
    assert written.stdout == ""
    assert (tmp_path / "openapi.json").read_text(encoding="utf-8") == committed, REGENERATE


def test_docs_page_is_served(docs_client: TestClient) -> None:
    response = docs_client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text


def test_openapi_lists_every_route_implemented_so_far(schema: dict[str, Any]) -> None:
    assert schema["openapi"].startswith("3.")
    missing = set(EXPECTED) - set(_operations(schema))
    assert not missing, f"routes missing from /openapi.json: {sorted(missing)}"


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED))
def test_each_operation_declares_the_statuses_it_can_return(
    schema: dict[str, Any], method: str, path: str
) -> None:
    op = _operations(schema)[(method, path)]
    assert set(op["responses"]) == EXPECTED[(method, path)]
    assert op.get("summary"), "every operation is described in /docs"


def test_every_api_operation_declares_401_and_422_where_it_takes_input(schema: dict[str, Any]) -> None:
    for (method, path), op in _operations(schema).items():
        if not path.startswith("/api/v1"):
            continue
        declared = set(op["responses"])
        assert "401" in declared, (method, path)
        takes_input = bool(op.get("parameters")) or "requestBody" in op
        if takes_input:
            assert "422" in declared, (method, path)


def test_every_api_operation_requires_a_bearer_token(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]
    bearer = [name for name, s in schemes.items() if s["type"] == "http" and s["scheme"] == "bearer"]
    assert bearer
    for (method, path), op in _operations(schema).items():
        if path.startswith("/api/v1"):
            assert op.get("security") == [{bearer[0]: []}], (method, path)
        else:
            assert not op.get("security"), (method, path)


def test_refusals_are_documented_as_problem_details(schema: dict[str, Any]) -> None:
    for (method, path), op in _operations(schema).items():
        for status, response in op["responses"].items():
            if status in PROBLEM_STATUSES and path not in HTML_PAGES:
                assert response.get("description"), (method, path, status)
                content = response.get("content", {})
                assert content, (method, path, status)
                # Each refusal names a schema with the RFC 9457 members.
                media = next(iter(content.values()))
                ref = media["schema"].get("$ref", "")
                target = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
                assert {"type", "title", "status", "detail"} <= set(target["properties"]), (
                    method,
                    path,
                    status,
                )


def test_refusals_are_documented_with_the_media_type_they_are_sent_with(schema: dict[str, Any]) -> None:
    wrong = [
        (method, path, status, sorted(response.get("content", {})))
        for (method, path), op in _operations(schema).items()
        for status, response in op["responses"].items()
        if status in PROBLEM_STATUSES
        and path not in HTML_PAGES
        and set(response.get("content", {})) != {"application/problem+json"}
    ]
    assert not wrong


def test_link_pages_document_html_refusals(schema: dict[str, Any]) -> None:
    for (_, path), op in _operations(schema).items():
        if path in HTML_PAGES:
            for status in ("404", "409", "410"):
                if status in op["responses"]:
                    assert set(op["responses"][status]["content"]) == {"text/html"}


def test_the_api_vocabulary_matches_the_ladder(schema: dict[str, Any]) -> None:
    # The API's enums let a 422 list the allowed values: they must be the ladder's values, in the ladder's
    # order, and the document must publish exactly those.
    from api.schemas import CaseType, Category, OutcomeCode, Role
    from states.vocabulary import CASE_TYPES, CATEGORIES, OUTCOME_CODES, ROLES

    components = schema["components"]["schemas"]
    for enum, values in (
        (Category, CATEGORIES),
        (CaseType, CASE_TYPES),
        (OutcomeCode, OUTCOME_CODES),
        (Role, ROLES),
    ):
        assert tuple(member.value for member in enum) == values
        assert components[enum.__name__]["enum"] == list(values)
