"""The use cases called directly, as the scheduler and email links call them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from structlog.testing import capture_logs

from dispute_service import transactions
from dispute_service.errors import NotAllowedNow, UnknownTrigger
from dispute_service.inputs import ActionInput
from dispute_service.queries import DisputeSnapshot
from states.policy import Policy
from tests.factories import IRO, TM


def test_raise_sets_deadlines_from_the_working_day_calendar(
    raise_one: Callable[..., DisputeSnapshot], clock: Any
) -> None:
    clock.now = datetime(2017, 12, 22, 10, 0, tzinfo=UTC)
    d = raise_one().dispute
    assert d.reference == "DR-2017-0001"
    assert d.due_at == datetime(2018, 1, 3, 17, 0, tzinfo=UTC)
    assert d.escalate_at == datetime(2018, 1, 4, 9, 0, tzinfo=UTC)
    # Reminders: two working days before the due date, at the start of business.
    assert d.next_reminder_at == datetime(2017, 12, 29, 9, 0, tzinfo=UTC)


def test_references_count_per_reporting_year_in_london_time(
    raise_one: Callable[..., DisputeSnapshot], clock: Any
) -> None:
    clock.now = datetime(2018, 3, 31, 22, 30, tzinfo=UTC)  # 23:30 BST on 31 March: still 2017-18
    assert raise_one().dispute.reference == "DR-2017-0001"
    clock.now = datetime(2018, 3, 31, 23, 30, tzinfo=UTC)  # 00:30 BST on 1 April: 2018-19
    assert raise_one().dispute.reference == "DR-2018-0001"
    assert raise_one().dispute.reference == "DR-2018-0002"


def test_people_cannot_fire_timeout(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    d = raise_one().dispute
    with pytest.raises(UnknownTrigger):
        transactions.apply_trigger(
            sessions, policy, d.id, "timeout", IRO, ActionInput(), clock.advance(days=30)
        )


def test_one_log_event_per_change_with_ids_and_never_free_text(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    with capture_logs() as logs:
        d = raise_one()
        transactions.apply_trigger(
            sessions, policy, d.dispute.id, "respond", TM, ActionInput(response="SECRET-RESPONSE"), clock.now
        )
        with pytest.raises(NotAllowedNow):
            transactions.apply_trigger(
                sessions, policy, d.dispute.id, "respond", TM, ActionInput(response="again"), clock.now
            )
    events = [e for e in logs if e["event"] == "dispute.transitioned"]
    assert [e["trigger"] for e in events] == ["raise", "respond"]
    assert all(e["dispute_id"] == str(d.dispute.id) for e in events)
    assert "SECRET" not in repr(logs) and "Jamie" not in repr(logs)
