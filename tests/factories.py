"""The one place tests make things: the actors, a raised dispute, and a timer fired as the sweep fires it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from dispute_service import sweep
from dispute_service.access import Actor
from dispute_service.models import Dispute
from states.policy import Policy
from states.vocabulary import Trigger

IRO = Actor("iro@example.gov.uk", frozenset({"iro"}))
TM = Actor("tm@example.gov.uk", frozenset({"team_manager"}))
ADMIN = Actor("admin@example.gov.uk", frozenset({"admin"}))


def fire_timer(
    sessions: sessionmaker[Session], policy: Policy, dispute_id: uuid.UUID, entry_seq: int, now: datetime
) -> Trigger | None:
    """One timer firing, in its own transaction, exactly as the sweep runs it."""
    with sessions.begin() as session:
        return sweep.fire_timer(session, policy, dispute_id, entry_seq, now)


def fetch(sessions: sessionmaker[Session], dispute_id: uuid.UUID) -> Dispute:
    with sessions.begin() as session:
        dispute = session.get(Dispute, dispute_id)
        assert dispute is not None
        return dispute
