"""Property test: schemathesis sends generated requests to every operation of /openapi.json (SPEC section 5:
"Bad input never causes a 500"; every error is application/problem+json)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.checks import not_a_server_error

from api.app import create_app
from dispute_service.config import Settings

ADMIN = "admin@example.gov.uk"
IRO = "iro@example.gov.uk"


@pytest.fixture
def backend() -> str:
    # SQLite only: this test is about the HTTP surface, and the database tests cover both backends.
    return "sqlite"


@pytest.fixture
def api_schema(settings: Settings, clock: Any, staff: list[str]) -> Iterator[Any]:
    app = create_app(settings, clock=clock)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.given(who=st.sampled_from([ADMIN, IRO]))
@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_never_get_a_5xx(
    case: Case, who: str, token_for: Callable[[str], dict[str, str]]
) -> None:
    response = case.call_and_validate(headers=token_for(who))
