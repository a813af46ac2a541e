"""Sends email through the council's SMTP server with the standard library: one message on a connection of
its own, or many over one connection (a dispatch run's)."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from collections.abc import Callable, Iterator
from email.message import EmailMessage

from dispute_service.config import Settings

Send = Callable[[EmailMessage], None]


class SmtpSender:
    def __init__(self, settings: Settings, timeout: float = 15.0) -> None:
        self._settings = settings
        self._timeout = timeout

    def send(self, message: EmailMessage) -> None:
        with self.connection() as send:
            send(message)

    @contextlib.contextmanager
    def connection(self) -> Iterator[Send]:
        """A `send` that keeps one SMTP conversation open for every message it is given, opened at the
        first and closed (QUIT) at the end. Connecting, the TLS handshake and the login for each email
        were most of what a dispatch run cost. A message the server refuses, or a connection that breaks,
        raises as before and drops the connection; the next message opens a new one."""
        open_now: contextlib.ExitStack | None = None
        smtp: smtplib.SMTP | None = None

        def drop() -> None:
            nonlocal open_now, smtp
            if open_now is not None:
                with contextlib.suppress(Exception):  # QUIT on a broken connection: nothing to save
                    open_now.close()
            open_now = smtp = None

        def send(message: EmailMessage) -> None:
            nonlocal open_now, smtp
            try:
                if smtp is None:
                    open_now = contextlib.ExitStack()
                    smtp = open_now.enter_context(self._connect())
                    self._prepare(smtp)
                smtp.send_message(message)
            except BaseException:
                drop()
                raise

        try:
            yield send
        finally:
            drop()

    def _connect(self) -> smtplib.SMTP:
        s = self._settings
        # Implicit TLS wraps the connection before the first byte; STARTTLS upgrades it before login, so the
        # password and the message never cross the network in clear either way.
        if s.smtp_tls:
            return smtplib.SMTP_SSL(
                s.smtp_host, s.smtp_port, timeout=self._timeout, context=ssl.create_default_context()
            )
        return smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=self._timeout)

    def _prepare(self, smtp: smtplib.SMTP) -> None:
        s = self._settings
        if s.smtp_starttls and not s.smtp_tls:
            smtp.starttls(context=ssl.create_default_context())
        if s.smtp_user:
            smtp.login(s.smtp_user, s.smtp_password or "")
