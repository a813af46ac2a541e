"""Two `serve` processes share one PostgreSQL for about 20 seconds with 300 deadlines: each escalation happens
exactly once, counted from the audit log, and none is missed."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.models import AuditEntry, Dispute
from states.policy import parse_policy
from tests.factories import raise_dispute
from tests.processes import Server, quick_first_stage, server_env, wait_until

pytestmark = pytest.mark.slow

DEADLINES = 300
WINDOW = timedelta(seconds=20)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_two_replicas_escalate_each_deadline_exactly_once(
    tmp_path: Path, db_url: str, staff: list[str], sessions: sessionmaker[Session], servers: list[Server]
) -> None:
    text = quick_first_stage(5)
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(text)
    policy = parse_policy(text)
    for name in ("a", "b"):
        server = Server(
            server_env(db_url, policy_file, DISPUTES_SCHEDULER_INTERVAL_SECONDS="1"), tmp_path / f"{name}.log"
        )
        servers.append(server)
        server.start()

    # From the moment both replicas are ready: raised with staggered clocks, so the 300 deadlines fall
    # evenly over the 20 seconds that follow a 5-second start, however long the raising itself takes.
    start = datetime.now(UTC) + timedelta(seconds=5)
    for i in range(DEADLINES):
        raised_at = start - timedelta(seconds=5) + WINDOW * i / DEADLINES
        raise_dispute(sessions, policy, raised_at)
    last = start + WINDOW  # the latest deadline raised above
    wait_until(lambda: count_timeouts(sessions) >= DEADLINES, 60, f"{DEADLINES} escalations")
    wait_until(
        lambda: datetime.now(UTC) > last + timedelta(seconds=3), 30, "a few more sweeps on both replicas"
    )
    for server in servers:
        server.stop()

    with sessions() as session:
        entries = session.execute(
            select(AuditEntry.dispute_id, AuditEntry.from_stage).where(AuditEntry.trigger == "timeout")
        ).all()
        moved = session.scalar(select(func.count()).where(Dispute.stage == "team_manager"))
    per_dispute = Counter(dispute_id for dispute_id, _ in entries)
    assert len(per_dispute) == DEADLINES, "every deadline escalated"
    assert set(per_dispute.values()) == {1}, "no deadline escalated twice"
    assert moved == DEADLINES
    # Both replicas took part (their logs name the disputes each escalated).
    logs = [(tmp_path / f"{n}.log").read_text() for n in ("a", "b")]
    assert all('"trigger": "timeout"' in log for log in logs), "each replica escalated some"


def count_timeouts(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).where(AuditEntry.trigger == "timeout")) or 0)
