from fastapi.testclient import TestClient

from tests.factories import IRO_EMAIL


def test_your_disputes_needs_a_session_then_shows_the_iro_their_disputes(pages: TestClient, sign_in) -> None:
    assert pages.get("/", follow_redirects=False).headers["location"] == "/sign-in"
    sign_in(IRO_EMAIL)
    page = pages.get("/")
    assert page.status_code == 200
    assert "Open disputes you raised" in page.text
