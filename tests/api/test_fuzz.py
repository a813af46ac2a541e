"""Property test: schemathesis sends generated requests to every operation of /openapi.json (SPEC section 5:
"Bad input never causes a 500"; every error is application/problem+json)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.specs.openapi.checks import content_type_conformance

from api.app import create_app
from dispute_service.config import Settings

ADMIN = "admin@example.gov.uk"
IRO = "iro@example.gov.uk"


class CurrentApp:
    """A stable ASGI entry point that forwards to the app of the running test (bound to its own database)."""

    def __init__(self) -> None:
        self.app: FastAPI | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None, "the fuzz_app fixture is not active"
        await self.app(scope, receive, send)


current = CurrentApp()
# The document does not depend on the database, so it is read from an app that never starts.
schema = schemathesis.openapi.from_dict(create_app(Settings(_env_file=None)).openapi())  # type: ignore[call-arg]
schema.app = current


@pytest.fixture
def backend() -> str:
    # SQLite only: this test is about the HTTP surface, and the database tests cover both backends.
    return "sqlite"


@pytest.fixture
def fuzz_app(settings: Settings, clock: Any, staff: list[str]) -> Iterator[FastAPI]:
    # schemathesis runs the lifespan on the first request and ends it when the test ends.
    current.app = create_app(settings, clock=clock)
    yield current.app
    current.app = None


@schema.given(who=st.sampled_from([ADMIN, IRO]))
@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_never_get_a_5xx(
    case: Case, who: str, fuzz_app: FastAPI, token_for: Callable[[str], dict[str, str]]
) -> None:
    case.call_and_validate(headers=token_for(who), excluded_checks=[content_type_conformance])
