"""Page tests: the real app over HTTP (TestClient), strict settings with a session secret, and people signed
in by a real session row and a cookie signed as the app signs it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.app import Mode, create_app
from api.web.signin import SESSION_COOKIE, signed
from dispute_service import web_sessions
from dispute_service.config import Settings
from tests.factories import FakeClock
from tests.pages import SESSION_SECRET


@pytest.fixture
def page_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"session_secret": SESSION_SECRET})


@pytest.fixture
def pages(page_settings: Settings, clock: FakeClock, staff: list[str]) -> Iterator[TestClient]:
    """The app in strict mode, as a real deployment runs it; people sign in with `sign_in`."""
    with TestClient(create_app(page_settings, mode=Mode.STRICT, clock=clock)) as client:
        yield client


@pytest.fixture
def sign_in(pages: TestClient, sessions: sessionmaker[Session], clock: FakeClock) -> Callable[[str], str]:
    """Sign `email` in to the `pages` client: a session begun as sign-in begins one, and its cookie.
    Returns the session's CSRF token, which the pages' forms carry."""

    def make(email: str) -> str:
        with sessions.begin() as session:
            token, signed_in = web_sessions.begin(session, email, clock())
        pages.cookies.set(SESSION_COOKIE, signed(SESSION_SECRET, "session", token))
        return signed_in.csrf

    return make
