"""The SMTP sender's encryption: STARTTLS or implicit TLS, as the settings say, before any login."""

from __future__ import annotations

import smtplib
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
