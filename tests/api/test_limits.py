"""Body caps: a body over its cap gets 413 problem details as soon as the request arrives, before the
token is checked, and the app reads no more of it than the cap. And every /api/v1 answer says no-store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import Mode, create_app
from dispute_service.config import Settings
from tests.factories import IRO_EMAIL, raise_body

PROBLEM = "application/problem+json"
CAP = 65_536  # DISPUTES_MAX_JSON_BYTES by default
FORM_CAP = 2 * 1024 * 1024
RUBBISH = {"Authorization": "Bearer rubbish"}


def _too_large(response: Any) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert (body["status"], body["type"]) == (413, "/problems/too-large")


def _chunks(total: int, size: int = 8192) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        chunk = b"x" * min(size, total - sent)
        sent += len(chunk)
        yield chunk


def test_a_json_body_over_its_cap_gets_413_before_the_token_is_checked(client: TestClient) -> None:
    body = json.dumps(raise_body(summary="x" * CAP)).encode()
    response = client.post(
        "/api/v1/disputes", content=body, headers={**RUBBISH, "content-type": "application/json"}
    )
    _too_large(response)
    # Not even the route is needed: the cap comes before routing too.
    _too_large(client.post("/api/v1/nowhere", content=body, headers=RUBBISH))


def test_a_body_at_its_cap_is_read_as_usual(
    client: TestClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    body = json.dumps(raise_body(summary="s" * 20_000)).encode()
    body += b" " * (CAP - len(body))
    assert len(body) == CAP
    headers = {**token_for(IRO_EMAIL), "content-type": "application/json"}
    assert client.post("/api/v1/disputes", content=body, headers=headers).status_code == 201


def test_a_chunked_body_over_its_cap_gets_413(client: TestClient) -> None:
    # A generator is sent without a Content-Length, in chunks.
    response = client.post(
        "/api/v1/disputes",
        content=_chunks(CAP + 1),
        headers={**RUBBISH, "content-type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    _too_large(response)


def test_a_form_may_be_larger_than_json_but_has_its_own_cap(client: TestClient) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    fields = dict.fromkeys(("reason", "response", "outcome", "other"), "x" * 20_000)
    within = client.post("/links/no-such-token", data=fields, headers=form)
    assert CAP < int(within.request.headers["content-length"]) < FORM_CAP
    # Past the cap for JSON but within the form's: the link page answers (the token is unknown).
    assert within.status_code == 404 and "<h1 " in within.text
    _too_large_page(client.post("/links/no-such-token", content=b"reason=" + b"x" * FORM_CAP, headers=form))
    multipart = {"content-type": "multipart/form-data; boundary=b"}
    _too_large_page(client.post("/links/no-such-token", content=b"x" * (FORM_CAP + 1), headers=multipart))


def _too_large_page(response: Any) -> None:
    # A page's form (a person's browser sent it) gets the error page in the pages' look, not JSON.
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "Too much was sent" in response.text and "govuk-template" in response.text


def _call(
    body: Iterator[bytes], headers: list[tuple[bytes, bytes]], path: str = "/api/v1/disputes"
) -> tuple[int, int]:
    """Send a request straight to the app's ASGI entry, as a server would, pulling the body from `body`
    only when the app asks for it. Returns (status, body bytes the app pulled)."""
    app = create_app(Settings(_env_file=None, scheduler_enabled=False), mode=Mode.DEMO)  # type: ignore[call-arg]
    pulled = 0
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        chunk = next(body, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"authorization", b"Bearer rubbish"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    return status, pulled


HUNDRED_MB = 100 * 1024 * 1024


def test_a_declared_length_over_the_cap_is_refused_without_reading_a_byte() -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(HUNDRED_MB).encode())]
    assert _call(_chunks(HUNDRED_MB, 65_536), headers) == (413, 0)


@pytest.mark.parametrize(
    ("content_type", "cap"),
    [(b"application/json", CAP), (b"application/x-www-form-urlencoded", FORM_CAP)],
)
def test_a_streamed_body_is_read_no_further_than_its_cap(content_type: bytes, cap: int) -> None:
    status, pulled = _call(_chunks(HUNDRED_MB, 65_536), [(b"content-type", content_type)])
    assert status == 413
    # Cut off with the chunk that passed the cap: a little over the cap, not 100 MB.
    assert cap < pulled <= cap + 65_536


def test_every_api_answer_says_no_store(
    client: TestClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    iro = token_for(IRO_EMAIL)
    created = client.post("/api/v1/disputes", json=raise_body(), headers=iro)
    answers = [
        created,
        client.get(created.headers["location"], headers=iro),
        client.get("/api/v1/disputes", headers=iro),
        client.get("/api/v1/reports/annual?year=2017", headers=token_for("admin@example.gov.uk")),
        client.get("/api/v1/disputes", headers=RUBBISH),  # 401
        client.get("/api/v1/disputes?limit=-1", headers=iro),  # 422
        client.get("/api/v1/nowhere", headers=iro),  # 404
        client.post("/api/v1/disputes", content=b"x" * (CAP + 1), headers=iro),  # 413
    ]
    assert [r.status_code for r in answers] == [201, 200, 200, 200, 401, 422, 404, 413]
    assert {r.headers.get("cache-control") for r in answers} == {"no-store"}
