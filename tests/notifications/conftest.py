"""A real SMTP server (aiosmtpd, in-process) for every email test, and the privacy check on every email."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.app import Mode, create_app
from dispute_service.config import Settings
from dispute_service.models import AuditText
from notifications.dispatcher import DispatchReport, dispatch
from notifications.smtp import SmtpSender
from states.policy import Policy
from tests.factories import METRICS_TOKEN
from tests.mail import Mailbox, full_text
from tests.processes import free_port

ARCHIVE: list[EmailMessage] = []


@pytest.fixture
def mailbox(sessions: sessionmaker[Session]) -> Iterator[Mailbox]:
    box = Mailbox(free_port())
    box.start()
    yield box
    box.stop()
    # Every email any test sends is checked here: no free text (summary, reason, response, outcome),
    # by comparing each with every text stored for the test's disputes.
    with sessions() as session:
        texts = [t for t in session.scalars(select(AuditText.body)) if len(t.strip()) >= 4]
    for message in box.messages:
        body = full_text(message)
        leaked = [t for t in texts if t in body]
        assert not leaked, f"email {message['Message-ID']} contains free text: {leaked}"
        for name in ("Jamie", "SECRET"):
            assert name not in body, f"email {message['Message-ID']} contains {name!r}"
    ARCHIVE.extend(box.messages)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if ARCHIVE:
        terminalreporter.write_line(f"privacy: {len(ARCHIVE)} emails checked, none held free text or a name")


@pytest.fixture
def mail_settings(settings: Settings, mailbox: Mailbox) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": mailbox.port,
            "public_base_url": "http://testserver",
            "metrics_token": METRICS_TOKEN,
        }
    )


@pytest.fixture
def send_mail(
    sessions: sessionmaker[Session], policy: Policy, mail_settings: Settings, clock: Any
) -> Callable[[], DispatchReport]:
    def run() -> DispatchReport:
        return dispatch(sessions, policy, mail_settings, SmtpSender(mail_settings).send, clock)

    return run


@pytest.fixture
def app_client(mail_settings: Settings, clock: Any, staff: list[str]) -> Iterator[TestClient]:
    with TestClient(create_app(mail_settings, mode=Mode.DEMO, clock=clock)) as client:
        yield client
