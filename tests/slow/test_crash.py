"""Kill the real server with SIGKILL while deadlines pass, start it again: each overdue dispute is escalated
exactly once, by the first sweep after start."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.models import AuditEntry, Dispute
from tests.processes import (
    Server,
    holds_for,
    quick_first_stage,
    raise_over_http,
    server_env,
    wait_until,
)

pytestmark = pytest.mark.slow


def test_sigkill_while_deadlines_pass_then_restart(
    tmp_path: Path,
    db_url: str,
    settings: Any,
    staff: list[str],
    sessions: sessionmaker[Session],
    servers: list[Server],
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(quick_first_stage(4))
    server = Server(
        server_env(db_url, policy, DISPUTES_SCHEDULER_INTERVAL_SECONDS="0.5"), tmp_path / "serve.log"
    )
    servers.append(server)
    server.start()

    raise_over_http(server, settings, 20)
    server.kill()

    at_kill = rows(sessions)
    latest = max(row[4] for row in at_kill)
    assert datetime.now(UTC) < latest, "the deadlines must still be ahead when the process dies"
    wait_until(lambda: datetime.now(UTC) > latest + timedelta(seconds=1), 30, "every deadline to pass")
    # Dead, past every deadline: over a further second and a half of polling, nothing escalates, the
    # rows stay as they were when it died and the audit log gains no entry.
    holds_for(lambda: timeouts(sessions) == [] and rows(sessions) == at_kill, 1.5, "nothing changing")

    restarted_at = datetime.now(UTC)
    server.start()
    wait_until(lambda: len(timeouts(sessions)) >= 20, 30, "20 escalations after restart")
    server.stop()

    entries = timeouts(sessions)
    per_dispute = Counter(e.dispute_id for e in entries)
    assert len(per_dispute) == 20 and set(per_dispute.values()) == {1}
    assert all(e.from_stage == "quality_assurance" and e.to_stage == "team_manager" for e in entries)
    # The first sweep after start caught them all up: they land together, within a few seconds of start.
    spread = max(e.at for e in entries) - min(e.at for e in entries)
    assert spread < timedelta(seconds=3), spread
    assert min(e.at for e in entries) >= restarted_at


def rows(sessions: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    """Each dispute as it stands, with how many audit entries it has."""
    entries = select(func.count()).where(AuditEntry.dispute_id == Dispute.id).scalar_subquery()
    with sessions() as session:
        found = session.execute(
            select(
                Dispute.id, Dispute.stage, Dispute.state, Dispute.version, Dispute.escalate_at, entries
            ).order_by(Dispute.id)
        ).all()
    # SQLite gives the times back without their zone; they are UTC.
    return [(*r[:4], r[4] if r[4].tzinfo else r[4].replace(tzinfo=UTC), r[5]) for r in found]


def timeouts(sessions: sessionmaker[Session]) -> list[AuditEntry]:
    with sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.trigger == "timeout")))
