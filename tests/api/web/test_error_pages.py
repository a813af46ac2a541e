"""Error pages in the pages' look: the same refusals the API gives as problem+json, for a person."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from api.app import Mode, create_app
from dispute_service.config import Settings
from tests.factories import IRO_EMAIL, FakeClock

FORM_CAP = 2 * 1024 * 1024


def _is_page(response: object, status: int, words: str) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("text/html")  # type: ignore[attr-defined]
    text: str = response.text  # type: ignore[attr-defined]
    assert "govuk-template" in text and words in text
    assert 'href="/accessibility"' in text, "every page's footer links the accessibility statement"


def test_a_form_over_its_cap_gets_the_413_page_before_anything_reads_it(
    pages: TestClient, sign_in: Callable[[str], str]
) -> None:
    csrf = sign_in(IRO_EMAIL)
    too_big = {"csrf_token": csrf, "summary": "x" * (FORM_CAP + 1)}
    _is_page(pages.post("/disputes/new", data=too_big), 413, "Too much was sent")
    # The API's answer to the same is still problem details.
    api = pages.post("/api/v1/disputes", content=b"x" * 70_000, headers={"content-type": "application/json"})
    assert api.status_code == 413 and api.headers["content-type"].startswith("application/problem+json")


def test_a_failure_gets_the_500_page_saying_nothing_of_it(
    page_settings: Settings, clock: FakeClock, staff: list[str]
) -> None:
    app = create_app(page_settings, mode=Mode.STRICT, clock=clock)

    # A route only this test mounts, that fails as a bug would.
    @app.get("/test-only/fails")
    def fails() -> None:
        raise RuntimeError("SECRET-DETAIL of the failure")

    @app.get("/api/v1/test-only/fails")
    def api_fails() -> None:
        raise RuntimeError("SECRET-DETAIL of the failure")

    with TestClient(app, raise_server_exceptions=False) as client:
        page = client.get("/test-only/fails")
        _is_page(page, 500, "Sorry, there is a problem with the service")
        assert "SECRET-DETAIL" not in page.text and "RuntimeError" not in page.text
        api = client.get("/api/v1/test-only/fails")
        assert api.status_code == 500 and api.headers["content-type"].startswith("application/problem+json")
        assert "SECRET-DETAIL" not in api.text


def test_unknown_pages_get_the_404_page_and_unknown_api_paths_problem_details(pages: TestClient) -> None:
    _is_page(pages.get("/no-such-page"), 404, "Page not found")
    api = pages.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.headers["content-type"].startswith("application/problem+json")


def test_a_link_refusal_is_a_page_in_the_same_look(pages: TestClient) -> None:
    _is_page(pages.get("/links/no-such-token"), 404, "Link not recognised")
