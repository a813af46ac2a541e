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
from tests.processes import Server, quick_first_stage, raise_over_http, server_env, wait_until

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

    with sessions() as session:
        latest = session.scalar(select(func.max(Dispute.escalate_at)))
    assert latest is not None
    wait_until(lambda: datetime.now(UTC) > latest + timedelta(seconds=1), 30, "every deadline to pass")
    assert timeouts(sessions) == [], "nothing escalates while the process is dead"

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


def timeouts(sessions: sessionmaker[Session]) -> list[AuditEntry]:
    with sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.trigger == "timeout")))
