"""Sessions on the pages: the cookie's flags, its limits on an injected clock, sign-out and deactivation
ending it at once, CSRF on every form, and /api/v1 never taking the cookie."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.app import Mode, create_app
from api.web.signin import SESSION_COOKIE
from dispute_service.config import Settings
from dispute_service.housekeeping import PurgeReport, purge_expired
from dispute_service.models import WebSession
from tests.factories import ADMIN_EMAIL, GONE_EMAIL, IRO_EMAIL, TM_EMAIL, FakeClock
from tests.pages import csrf_of


def _signed_in(client: TestClient) -> bool:
    page = client.get("/", follow_redirects=False)
    if page.status_code == 303:
        assert page.headers["location"] == "/sign-in"
        return False
    assert page.status_code == 200, page.text
    return True


def _demo_app(
    settings: Settings, clock: FakeClock, base_url: str = "http://testserver", **changes: Any
) -> TestClient:
    app = create_app(settings.model_copy(update=changes), mode=Mode.DEMO, clock=clock)
    return TestClient(app, base_url=base_url)


@pytest.fixture
def demo(page_settings: Settings, clock: FakeClock, staff: list[str]) -> Iterator[TestClient]:
    """A demo app (its sign-in page lists the people, one button each) on the test's staff directory."""
    with _demo_app(page_settings, clock) as client:
        yield client


def _demo_sign_in(client: TestClient, email: str) -> Any:
    page = client.get("/sign-in")
    assert email in page.text
    assert "&lt;" not in page.text, "a button's markup is markup, not text"
    return client.post(
        "/sign-in/demo", data={"email": email, "csrf_token": csrf_of(page.text)}, follow_redirects=False
    )


def test_the_session_cookie_is_signed_httponly_lax_and_lasts_eight_hours(demo: TestClient) -> None:
    signed_in = _demo_sign_in(demo, IRO_EMAIL)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
    cookie = signed_in.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    flags = {f.strip().lower() for f in cookie.split(";")[1:]}
    assert {"httponly", "samesite=lax", "path=/", "max-age=28800"} <= flags
    assert "secure" not in flags, "plain http on this machine: a Secure cookie would never be sent back"
    assert _signed_in(demo)


def test_on_https_the_cookie_is_secure_and_pages_send_hsts(
    page_settings: Settings, clock: FakeClock, staff: list[str]
) -> None:
    https = "https://disputes.example.gov.uk"
    with _demo_app(page_settings, clock, base_url=https, public_base_url=https) as client:
        signed_in = _demo_sign_in(client, IRO_EMAIL)
        assert "secure" in {f.strip().lower() for f in signed_in.headers["set-cookie"].split(";")}
        page = client.get("/sign-in")
        assert page.headers["strict-transport-security"].startswith("max-age=31536000")


def test_a_cookie_whose_signature_is_wrong_opens_nothing(demo: TestClient) -> None:
    _demo_sign_in(demo, IRO_EMAIL)
    value = demo.cookies[SESSION_COOKIE]
    token, mac = value.rsplit(".", 1)
    for forged in (f"{token}.{mac[:-2]}xx", token, f"{token}.", "." + mac):
        demo.cookies.clear()
        demo.cookies.set(SESSION_COOKIE, forged)
        assert not _signed_in(demo)
    demo.cookies.clear()
    demo.cookies.set(SESSION_COOKIE, value)
    assert _signed_in(demo), "the cookie as signed still works: the refusals were for the forgeries"


def test_a_session_ends_after_thirty_idle_minutes(demo: TestClient, clock: FakeClock) -> None:
    _demo_sign_in(demo, IRO_EMAIL)
    clock.advance(minutes=29)
    assert _signed_in(demo), "29 minutes idle is within the limit"
    # Each page view restarts the idle time.
    clock.advance(minutes=29)
    assert _signed_in(demo)
    clock.advance(minutes=30)
    assert not _signed_in(demo)
    clock.advance(minutes=-30)
    assert not _signed_in(demo), "an ended session never comes back, even if the clock does"


def test_a_session_ends_eight_hours_after_sign_in_however_busy(demo: TestClient, clock: FakeClock) -> None:
    _demo_sign_in(demo, IRO_EMAIL)
    for _ in range(16):  # a page every 29 minutes: never idle, for 7 h 44 min
        clock.advance(minutes=29)
        assert _signed_in(demo)
    clock.advance(minutes=16)  # 8 hours since sign-in
    assert not _signed_in(demo)


def test_sign_out_ends_the_session_on_the_server_so_a_copied_cookie_is_useless(
    demo: TestClient, sessions: sessionmaker[Session]
) -> None:
    _demo_sign_in(demo, IRO_EMAIL)
    copied = demo.cookies[SESSION_COOKIE]
    home = demo.get("/")
    signed_out = demo.post("/sign-out", data={"csrf_token": csrf_of(home.text)})
    assert signed_out.status_code == 200 and "You have signed out" in signed_out.text
    assert f'{SESSION_COOKIE}=""' in signed_out.headers["set-cookie"]
    demo.cookies.clear()
    demo.cookies.set(SESSION_COOKIE, copied)
    assert not _signed_in(demo)
    with sessions.begin() as session:
        [row] = session.scalars(select(WebSession)).all()
        assert row.ended_at is not None


def test_sign_out_needs_the_sessions_csrf_token(demo: TestClient) -> None:
    _demo_sign_in(demo, IRO_EMAIL)
    # Another site cannot sign you out: without the token nothing happens.
    assert demo.post("/sign-out").status_code == 403
    assert demo.post("/sign-out", data={"csrf_token": "not-it"}).status_code == 403
    assert _signed_in(demo)


def test_deactivation_ends_the_persons_sessions_at_once(
    demo: TestClient,
    page_settings: Settings,
    clock: FakeClock,
    token_for: Callable[[str], dict[str, str]],
) -> None:
    _demo_sign_in(demo, TM_EMAIL)
    assert _signed_in(demo)
    # Deactivated through the API by an admin, in another client: the page's next request is refused.
    done = demo.patch(f"/api/v1/people/{TM_EMAIL}", json={"active": False}, headers=token_for(ADMIN_EMAIL))
    assert done.status_code == 200, done.text
    assert not _signed_in(demo)


def test_roles_are_read_afresh_on_every_request(
    demo: TestClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    _demo_sign_in(demo, TM_EMAIL)
    assert "Disputes waiting on you" in demo.get("/").text
    changed = demo.patch(
        f"/api/v1/people/{TM_EMAIL}", json={"roles": ["iro"]}, headers=token_for(ADMIN_EMAIL)
    )
    assert changed.status_code == 200, changed.text
    page = demo.get("/").text
    assert "Open disputes you raised" in page and "Disputes waiting on you" not in page


def test_an_inactive_person_is_refused_at_sign_in(demo: TestClient) -> None:
    page = demo.get("/sign-in")
    assert GONE_EMAIL not in page.text, "the demo page lists active people only"
    refused = demo.post("/sign-in/demo", data={"email": GONE_EMAIL, "csrf_token": csrf_of(page.text)})
    assert refused.status_code == 403
    assert "not active in the staff directory" in refused.text
    assert SESSION_COOKIE not in refused.headers.get("set-cookie", "")
    assert not _signed_in(demo)


def test_the_demo_sign_in_needs_its_double_submit_token(demo: TestClient) -> None:
    page = demo.get("/sign-in")
    token = csrf_of(page.text)
    assert demo.post("/sign-in/demo", data={"email": IRO_EMAIL}).status_code == 403
    assert demo.post("/sign-in/demo", data={"email": IRO_EMAIL, "csrf_token": token + "x"}).status_code == 403
    # The right token without its cookie (another site's form, posted by the browser) is refused too.
    demo.cookies.clear()
    assert demo.post("/sign-in/demo", data={"email": IRO_EMAIL, "csrf_token": token}).status_code == 403
    assert not _signed_in(demo)


def test_a_strict_server_has_no_demo_sign_in_and_says_sign_in_is_not_configured(pages: TestClient) -> None:
    page = pages.get("/sign-in")
    assert page.status_code == 200
    assert "Sign-in to these pages is not configured" in page.text
    assert IRO_EMAIL not in page.text
    token = csrf_of(page.text) if 'name="csrf_token"' in page.text else "x"
    assert pages.post("/sign-in/demo", data={"email": IRO_EMAIL, "csrf_token": token}).status_code == 404


def test_sign_in_returns_to_the_page_asked_for_and_never_to_another_site(demo: TestClient) -> None:
    asked = demo.get("/disputes/new", follow_redirects=False)
    assert asked.headers["location"] == "/sign-in?next=%2Fdisputes%2Fnew"
    page = demo.get(asked.headers["location"])
    for next_path, lands in [("/disputes/new", "/disputes/new"), ("//evil.example", "/"), ("https://x", "/")]:
        demo.cookies.clear()
        page = demo.get("/sign-in")
        done = demo.post(
            "/sign-in/demo",
            data={"email": IRO_EMAIL, "csrf_token": csrf_of(page.text), "next": next_path},
            follow_redirects=False,
        )
        assert done.headers["location"] == lands


def test_api_v1_never_accepts_the_session_cookie(demo: TestClient) -> None:
    _demo_sign_in(demo, IRO_EMAIL)
    assert _signed_in(demo)
    refused = demo.get("/api/v1/disputes")
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    raised = demo.post("/api/v1/disputes", json={"child_ref": "X"})
    assert raised.status_code in (401, 422) and raised.status_code != 201


def test_a_page_form_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(
    pages: TestClient, sign_in: Callable[[str], str], sessions: sessionmaker[Session]
) -> None:
    csrf = sign_in(IRO_EMAIL)
    form = {
        "child_ref": "LCS-1",
        "case_type": "looked_after",
        "categories": "contact",
        "summary": "A plan",
        "team_manager_email": TM_EMAIL,
    }
    from dispute_service.models import Dispute

    for sent in ({}, {"csrf_token": "wrong"}, {"csrf_token": csrf[:-1]}):
        refused = pages.post("/disputes/new", data={**form, **sent})
        assert refused.status_code == 403
        assert "The form has expired" in refused.text
    with sessions.begin() as session:
        assert session.scalars(select(Dispute)).all() == []
    done = pages.post("/disputes/new", data={**form, "csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303


def test_every_page_sends_the_security_headers(pages: TestClient, sign_in: Callable[[str], str]) -> None:
    sign_in(IRO_EMAIL)
    for path in ("/", "/disputes/new", "/accessibility", "/sign-in", "/no-such-page"):
        page = pages.get(path)
        csp = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
        assert re.search(r"script-src 'self' 'nonce-[\w-]+'", csp)
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "strict-transport-security" not in page.headers  # plain http on this machine
    assert pages.get("/").headers["cache-control"] == "no-store"


def test_a_session_row_keeps_only_a_hash_of_the_cookies_token(
    demo: TestClient, sessions: sessionmaker[Session]
) -> None:
    _demo_sign_in(demo, IRO_EMAIL)
    token = demo.cookies[SESSION_COOKIE].rsplit(".", 1)[0]
    with sessions.begin() as session:
        [row] = session.scalars(select(WebSession)).all()
        assert token not in (row.id, row.csrf) and len(row.id) == 64


def test_an_idle_session_is_touched_at_most_once_a_minute(
    demo: TestClient, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    _demo_sign_in(demo, IRO_EMAIL)

    def seen() -> Any:
        with sessions.begin() as session:
            return session.scalars(select(WebSession.last_seen_at)).one()

    first = seen()
    clock.advance(seconds=30)
    assert _signed_in(demo) and seen() == first
    clock.advance(seconds=31)
    assert _signed_in(demo) and seen() == first + timedelta(seconds=61)


def test_signing_in_again_ends_the_session_the_browser_held(
    demo: TestClient, sessions: sessionmaker[Session]
) -> None:
    _demo_sign_in(demo, IRO_EMAIL)
    first = demo.cookies[SESSION_COOKIE]
    # Another person signs in on the same browser (a shared computer).
    _demo_sign_in(demo, TM_EMAIL)
    demo.cookies.clear()
    demo.cookies.set(SESSION_COOKIE, first)
    assert not _signed_in(demo), "the first person's session ended when the second signed in"
    with sessions.begin() as session:
        assert [
            r.ended_at is None for r in session.scalars(select(WebSession).order_by(WebSession.created_at))
        ] == [
            False,
            True,
        ]


def test_signing_out_of_a_session_already_ended_clears_the_cookie(demo: TestClient, clock: FakeClock) -> None:
    _demo_sign_in(demo, IRO_EMAIL)
    clock.advance(minutes=31)
    done = demo.post("/sign-out", data={"csrf_token": "from-an-old-page"})
    assert done.status_code == 200 and "You have signed out" in done.text
    assert f'{SESSION_COOKIE}=""' in done.headers["set-cookie"]


def test_sign_in_attempts_are_limited_per_client(
    page_settings: Settings, clock: FakeClock, staff: list[str]
) -> None:
    with _demo_app(page_settings, clock, sign_ins_per_client=3, rate_limit_window_seconds=60) as client:
        for _ in range(3):
            assert _demo_sign_in(client, IRO_EMAIL).status_code == 303
        refused = _demo_sign_in(client, IRO_EMAIL)
        assert refused.status_code == 429 and "Too many sign-in attempts" in refused.text
        assert refused.headers["retry-after"] == "60"
        clock.advance(seconds=61)
        assert _demo_sign_in(client, IRO_EMAIL).status_code == 303


@pytest.mark.parametrize(
    "next_path", ["/\\evil.example", "/\\/evil.example", "/\t/evil.example", "/%0a", "https://evil", "//x"]
)
def test_sign_in_never_sends_a_browser_to_a_crafted_next(demo: TestClient, next_path: str) -> None:
    page = demo.get("/sign-in")
    done = demo.post(
        "/sign-in/demo",
        data={"email": IRO_EMAIL, "csrf_token": csrf_of(page.text), "next": next_path},
        follow_redirects=False,
    )
    assert done.headers["location"] in ("/", "/%0a")


def test_static_files_and_redirects_carry_the_security_headers(demo: TestClient) -> None:
    for response in (demo.get("/static/app.css"), demo.get("/", follow_redirects=False)):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert demo.get("/", follow_redirects=False).headers["cache-control"] == "no-store"
    api = demo.get("/api/v1/disputes")
    assert "x-frame-options" not in api.headers, "the API's answers are not pages"


def test_a_session_purged_a_day_after_it_ended_gets_the_answers_it_got_before(
    demo: TestClient, clock: FakeClock, sessions: sessionmaker[Session]
) -> None:
    _demo_sign_in(demo, IRO_EMAIL)
    cookie = demo.cookies[SESSION_COOKIE]
    clock.advance(minutes=30)
    assert not _signed_in(demo)  # idle: ended on the server
    clock.advance(days=1, minutes=1)

    def answers() -> tuple[int, str, int, bool, bool]:
        demo.cookies.clear()
        demo.cookies.set(SESSION_COOKIE, cookie)
        home = demo.get("/disputes", follow_redirects=False)
        out = demo.post("/sign-out")
        return (
            home.status_code,
            home.headers["location"],
            out.status_code,
            "You have signed out" in out.text,
            f'{SESSION_COOKIE}=""' in out.headers["set-cookie"],
        )

    before = answers()
    assert before == (303, "/sign-in?next=%2Fdisputes", 200, True, True)
    assert purge_expired(sessions, clock.now) == PurgeReport(web_sessions=1)
    with sessions() as session:
        assert session.scalars(select(WebSession)).all() == []
    assert answers() == before
