"""Reads are logged: one dispute or its audit (`dispute.read`), the list (`dispute.list`, with the ids it
returned) and the annual report (`report.read`), each with the reader and the request's id, and never a word
of what was read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from tests.factories import ADMIN_EMAIL, IRO_EMAIL, IRO_MANAGER_EMAIL, TM_EMAIL

Tokens = Callable[[str], dict[str, str]]
READS = ("dispute.read", "dispute.list", "report.read")


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    # With the context merged in, as the app's logging does, so the request id bound by the middleware shows.
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as captured:
        yield captured


def _reads(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] in READS]


def _get(client: TestClient, url: str, headers: dict[str, str], request_id: str, **params: Any) -> Any:
    response = client.get(url, headers={**headers, "X-Request-ID": request_id}, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_reading_a_dispute_and_its_audit_is_logged_with_the_reader_and_the_request(
    client: TestClient,
    token_for: Tokens,
    raise_dispute: Callable[..., dict[str, Any]],
    logs: list[dict[str, Any]],
) -> None:
    dispute = raise_dispute()
    url = f"/api/v1/disputes/{dispute['id']}"
    _get(client, url, token_for(TM_EMAIL), "req-one")
    _get(client, f"{url}/audit", token_for(IRO_MANAGER_EMAIL), "req-audit")
    reads = _reads(logs)
    assert [(e["event"], e["part"], e["actor"], e["request_id"]) for e in reads] == [
        ("dispute.read", "dispute", TM_EMAIL, "req-one"),
        ("dispute.read", "audit", IRO_MANAGER_EMAIL, "req-audit"),
    ]
    assert all(e["dispute_id"] == dispute["id"] and e["reference"] == dispute["reference"] for e in reads)
    assert "SECRET" not in repr(logs) and "Jamie" not in repr(logs) and "LCS-000123" not in repr(reads)


def test_listing_logs_the_ids_returned(
    client: TestClient,
    token_for: Tokens,
    raise_dispute: Callable[..., dict[str, Any]],
    logs: list[dict[str, Any]],
) -> None:
    first = raise_dispute()
    second = raise_dispute(child_ref="LCS-000456")
    page = _get(client, "/api/v1/disputes", token_for(IRO_EMAIL), "req-list", limit=1)
    [listed] = _reads(logs)
    assert listed["event"] == "dispute.list" and listed["request_id"] == "req-list"
    assert listed["actor"] == IRO_EMAIL
    assert listed["ids"] == [page["items"][0]["id"]] and listed["total"] == 2
    assert page["items"][0]["id"] in (first["id"], second["id"])
    assert "SECRET" not in repr(logs) and "LCS-000456" not in repr(listed)


def test_a_refused_read_is_not_logged_as_a_read(
    client: TestClient,
    token_for: Tokens,
    raise_dispute: Callable[..., dict[str, Any]],
    logs: list[dict[str, Any]],
) -> None:
    dispute = raise_dispute()
    response = client.get(f"/api/v1/disputes/{dispute['id']}", headers=token_for("hos@example.gov.uk"))
    assert response.status_code == 404
    assert _reads(logs) == []


def test_reading_the_annual_report_is_logged(
    client: TestClient, token_for: Tokens, logs: list[dict[str, Any]]
) -> None:
    _get(client, "/api/v1/reports/annual", token_for(ADMIN_EMAIL), "req-report", year=2017)
    [read] = _reads(logs)
    assert (read["event"], read["actor"], read["request_id"], read["year"]) == (
        "report.read",
        ADMIN_EMAIL,
        "req-report",
        "2017-18",
    )
