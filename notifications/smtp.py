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
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=self._timeout) as smtp:
            if s.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password or "")
            smtp.send_message(message)
