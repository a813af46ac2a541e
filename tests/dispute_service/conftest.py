from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from dispute_service import transactions
from dispute_service.access import Actor
from dispute_service.inputs import RaiseInput
from dispute_service.queries import DisputeSnapshot
from states.policy import Policy, load_default_policy

IRO = Actor("iro@example.gov.uk", frozenset({"iro"}))
TM = Actor("tm@example.gov.uk", frozenset({"team_manager"}))
ADMIN = Actor("admin@example.gov.uk", frozenset({"admin"}))


@pytest.fixture
def policy() -> Policy:
    return load_default_policy()


@pytest.fixture
def raise_one(
    sessions: sessionmaker[Session], staff: list[str], policy: Policy, clock: Any
) -> Callable[..., DisputeSnapshot]:
    def make(**overrides: Any) -> DisputeSnapshot:
        data = RaiseInput(
            **{
                "child_ref": "LCS-1",
                "case_type": "looked_after",
                "categories": ["contact"],
                "summary": "SECRET-SUMMARY about Jamie",
                "team_manager_email": TM.email,
                **overrides,
            }
        )
        return transactions.raise_dispute(sessions, policy, IRO, data, clock.now)

    return make
