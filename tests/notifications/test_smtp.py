"""The SMTP sender's encryption: STARTTLS or implicit TLS, as the settings say, before any login."""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest

from dispute_service.config import Settings
from notifications.smtp import SmtpSender


class FakeSmtp:
    """Records the conversation in `calls` instead of holding it; TLS itself is the standard library's."""

    def __init__(self, calls: list[tuple[str, Any]], kind: str, host: str, port: int, **options: Any) -> None:
        self.calls = calls
        self.calls.append((kind, (host, port, options.get("context") is not None)))

    def __enter__(self) -> FakeSmtp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.calls.append(("quit", None))

    def starttls(self, context: ssl.SSLContext) -> None:
        assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
        self.calls.append(("starttls", None))

    def login(self, user: str, password: str) -> None:
        self.calls.append(("login", user))

    def send_message(self, message: EmailMessage) -> None:
        self.calls.append(("send", message["Subject"]))


Send = Callable[..., list[tuple[str, Any]]]


@pytest.fixture
def send(monkeypatch: pytest.MonkeyPatch) -> Send:
    """Send one email with the settings given, and return the conversation."""
    calls: list[tuple[str, Any]] = []
    monkeypatch.setattr(smtplib, "SMTP", lambda *a, **k: FakeSmtp(calls, "plain", *a, **k))
    monkeypatch.setattr(smtplib, "SMTP_SSL", lambda *a, **k: FakeSmtp(calls, "implicit-tls", *a, **k))

    def run(**values: Any) -> list[tuple[str, Any]]:
        settings = Settings(_env_file=None, smtp_host="mail.example.gov.uk", smtp_user="svc", **values)  # type: ignore[call-arg]
        message = EmailMessage()
        message["Subject"] = "hello"
        SmtpSender(settings).send(message)
        return calls

    return run


def test_implicit_tls_connects_encrypted_and_verifies_the_certificate(send: Send) -> None:
    assert send(smtp_tls=True, smtp_port=465) == [
        ("implicit-tls", ("mail.example.gov.uk", 465, True)),
        ("login", "svc"),
        ("send", "hello"),
        ("quit", None),
    ]


def test_starttls_upgrades_before_login(send: Send) -> None:
    assert send(smtp_starttls=True, smtp_port=587) == [
        ("plain", ("mail.example.gov.uk", 587, False)),
        ("starttls", None),
        ("login", "svc"),
        ("send", "hello"),
        ("quit", None),
    ]


def test_without_either_the_connection_is_plain(send: Send) -> None:
    # Only a strict start's check stops this for a host off this machine; the sender does as it is told.
    assert [kind for kind, _ in send()] == ["plain", "login", "send", "quit"]


class Conversations:
    """An aiosmtpd handler that notes which connection (the client's address and port) each message came
    on, and refuses one recipient."""

    def __init__(self) -> None:
        self.peers: list[tuple[str, int]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.startswith("refused@"):
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.peers.append(session.peer)
        return "250 Message accepted for delivery"


def _message(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "disputes@council.gov.uk", to, "DR-2017-0001"
    message.set_content("A dispute needs you.")
    return message


def test_a_connection_carries_every_message_it_is_given_and_a_refusal_opens_a_new_one() -> None:
    from aiosmtpd.controller import Controller

    handler = Conversations()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = Settings(_env_file=None, smtp_host="127.0.0.1", smtp_port=port)  # type: ignore[call-arg]
        with SmtpSender(settings).connection() as send:
            for n in range(3):
                send(_message(f"tm{n}@council.gov.uk"))
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                send(_message("refused@council.gov.uk"))
            send(_message("tm3@council.gov.uk"))
            send(_message("tm4@council.gov.uk"))
    finally:
        controller.stop()
    # Three on the first connection; the refusal dropped it; two on a second.
    assert len(handler.peers) == 5
    assert len(set(handler.peers[:3])) == 1 and len(set(handler.peers[3:])) == 1
    assert handler.peers[0] != handler.peers[3]
