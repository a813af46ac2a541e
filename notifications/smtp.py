"""Sends one email through the council's SMTP server with the standard library."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from dispute_service.config import Settings


class SmtpSender:
    def __init__(self, settings: Settings, timeout: float = 15.0) -> None:
        self._settings = settings
        self._timeout = timeout

    def send(self, message: EmailMessage) -> None:
        s = self._settings
        # Implicit TLS wraps the connection before the first byte; STARTTLS upgrades it before login, so the
        # password and the message never cross the network in clear either way.
        smtp = (
            smtplib.SMTP_SSL(
                s.smtp_host, s.smtp_port, timeout=self._timeout, context=ssl.create_default_context()
            )
            if s.smtp_tls
            else smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=self._timeout)
        )
        with smtp:
            if s.smtp_starttls and not s.smtp_tls:
                smtp.starttls(context=ssl.create_default_context())
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password or "")
            smtp.send_message(message)
