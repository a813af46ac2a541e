"""A real SMTP server (aiosmtpd, in-process) for every email test, and the privacy check on every email."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from dispute_service.config import Settings
from dispute_service.models import AuditText
from notifications.dispatcher import DispatchReport, dispatch
from notifications.smtp import SmtpSender
from states.policy import Policy


def free_port() -> int:
    # aiosmtpd's readiness check cannot use port 0 (aio-libs/aiosmtpd#276): pick a free port first.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Collect:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"


@dataclass
class Mailbox:
    port: int
    handler: Collect = field(default_factory=Collect)
    controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        return self.handler.messages

    def to(self, recipient: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == recipient]


def full_text(message: EmailMessage) -> str:
    parts = [str(message["Subject"])]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            parts.append(part.get_content())
    return "\n".join(parts)


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
        update={"smtp_host": "127.0.0.1", "smtp_port": mailbox.port, "public_base_url": "http://testserver"}
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
    with TestClient(create_app(mail_settings, clock=clock)) as client:
        yield client
