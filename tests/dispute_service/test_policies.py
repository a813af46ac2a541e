"""Policy versions: a dispute keeps the policy it was raised under, so a policy change moves no running
deadline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from dispute_service import transactions
from dispute_service.queries import DisputeSnapshot
from dispute_service.sweep import sweep
from states.policy import Policy, parse_policy
from tests.factories import IRO, raise_dispute


def test_a_policy_change_moves_no_running_deadline(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    clock.now = datetime(2018, 1, 8, 10, 0, tzinfo=UTC)
    d = raise_one().dispute
    assert d.escalate_at == datetime(2018, 1, 16, 9, 0, tzinfo=UTC)
    # The council lengthens every stage to 10 working days. The running dispute keeps its 5.
    longer = parse_policy(policy.text.replace('respond_within = "5wd"', 'respond_within = "10wd"'))
    assert longer.sha256 != policy.sha256
    clock.now = datetime(2018, 1, 16, 9, 0, tzinfo=UTC)
    fired = sweep(sessions, longer, clock).fired
    assert [f.dispute_id for f in fired] == [d.id]
    moved = transactions.get_dispute(sessions, longer, d.id, IRO, clock.now).dispute
    # The next stage also runs on the policy it was raised under: 5 working days, not 10.
    assert (moved.stage, moved.due_at) == ("team_manager", datetime(2018, 1, 23, 17, 0, tzinfo=UTC))
    assert moved.policy_id == d.policy_id
    # A dispute raised now gets the new policy.
    fresh = raise_dispute(sessions, longer, clock.now, child_ref="LCS-2").dispute
    assert fresh.policy_id != d.policy_id
    assert fresh.due_at == datetime(2018, 1, 30, 17, 0, tzinfo=UTC)
