from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.queries import DisputeSnapshot
from states.policy import Policy
from tests.factories import raise_dispute
from tests.seed import Ladder


@pytest.fixture
def raise_one(
    sessions: sessionmaker[Session], staff: list[str], policy: Policy, clock: Any
) -> Callable[..., DisputeSnapshot]:
    """Raise a dispute as the IRO at the clock's time, with the default fields and the test's own."""

    def make(**overrides: Any) -> DisputeSnapshot:
        return raise_dispute(sessions, policy, clock.now, **overrides)

    return make


@pytest.fixture
def ladder(sessions: sessionmaker[Session], staff: list[str], policy: Policy) -> Ladder:
    return Ladder(sessions, policy)
