from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import Mode, create_app
from dispute_service.config import Settings
from tests.factories import IRO_EMAIL, post_dispute


@pytest.fixture
def client(settings: Settings, clock: Any, staff: list[str]) -> Iterator[TestClient]:
    with TestClient(create_app(settings, mode=Mode.STRICT, clock=clock)) as client:
        yield client


@pytest.fixture
def raise_dispute(
    client: TestClient, token_for: Callable[[str], dict[str, str]]
) -> Callable[..., dict[str, Any]]:
    """Raise a dispute over HTTP as the IRO, with the default fields and the test's own."""

    def make(**overrides: Any) -> dict[str, Any]:
        return post_dispute(client.post, token_for(IRO_EMAIL), **overrides)

    return make
