"""Kill the real server with SIGKILL in the middle of sending emails, start it again: nothing is lost, and
any email sent twice carries the same Message-ID."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.models import Notification
from states.policy import default_policy_text
from tests.processes import Server, free_port, raise_over_http, server_env, wait_until

pytestmark = pytest.mark.slow


class SlowInbox:
    """An SMTP server that takes its time, so the kill lands while the dispatcher is mid-conversation."""

    def __init__(self) -> None:
        self.message_ids: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.3)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.message_ids.append(str(message["Message-ID"]))
        return "250 OK"


def test_sigkill_during_dispatch_loses_nothing(
    tmp_path: Path,
    db_url: str,
    settings: Any,
    staff: list[str],
    sessions: sessionmaker[Session],
    servers: list[Server],
) -> None:
    inbox = SlowInbox()
    port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        policy = tmp_path / "policy.toml"
        policy.write_text(default_policy_text())
        env = server_env(
            db_url,
            policy,
            DISPUTES_SMTP_HOST="127.0.0.1",
            DISPUTES_SMTP_PORT=str(port),
            DISPUTES_MAIL_RETRY_SECONDS="1",
            DISPUTES_MAIL_CLAIM_SECONDS="2",
            DISPUTES_DISPATCH_INTERVAL_SECONDS="0.5",
        )
        server = Server(env, tmp_path / "serve.log")
        servers.append(server)
        server.start()
        raise_over_http(server, settings, 12)
        wait_until(lambda: len(inbox.message_ids) >= 3, 30, "the dispatcher to be part-way through")
        server.kill()
        assert len(inbox.message_ids) < 12, "the kill must land before every email is out"

        server.start()
        wait_until(lambda: all_sent(sessions), 60, "every notification to be sent after the restart")
        server.stop()
    finally:
        smtp.stop()

    with sessions() as session:
        expected = set(session.scalars(select(Notification.message_id)))
    received = Counter(inbox.message_ids)
    assert len(expected) == 12
    assert set(received) == expected, "nothing lost, and nothing but the queued emails"
    # A resend after the crash is possible; it is then recognisably the same email.
    assert sum(received.values()) >= 12


def all_sent(sessions: sessionmaker[Session]) -> bool:
    with sessions() as session:
        return set(session.scalars(select(Notification.status))) == {"sent"}
