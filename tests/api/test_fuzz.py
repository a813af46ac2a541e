"""Property test: schemathesis sends generated requests to every operation of /openapi.json (SPEC section 5:
"Bad input never causes a 500"; every error is application/problem+json)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case

from api.app import create_app
from dispute_service.config import Settings

ADMIN = "admin@example.gov.uk"
IRO = "iro@example.gov.uk"

# The document does not depend on the database, so it is read from an app that never starts.
schema = schemathesis.openapi.from_dict(create_app(Settings(_env_file=None)).openapi())  # type: ignore[call-arg]


@pytest.fixture
def backend() -> str:
    # SQLite only: this test is about the HTTP surface, and the database tests cover both backends.
    return "sqlite"


@pytest.fixture
def fuzz_app(settings: Settings, clock: Any, staff: list[str]) -> FastAPI:
    # schemathesis runs the lifespan on the first request and ends it when the test ends.
    return create_app(settings, clock=clock)


@schema.given(who=st.sampled_from([ADMIN, IRO]))
@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_never_get_a_5xx(
    case: Case, who: str, fuzz_app: FastAPI, token_for: Callable[[str], dict[str, str]]
) -> None:
    case.call_and_validate(app=fuzz_app, headers=token_for(who))
