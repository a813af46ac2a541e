"""A real SMTP server (aiosmtpd, in-process) that keeps what it is sent, and what the emails say."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

LINK = re.compile(
    r"^(Acknowledge|Respond|Resolve|Escalate|Reopen):\r?\n(http://testserver/links/([A-Za-z0-9_-]+))", re.M
)


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


def links_in(message: Any) -> dict[str, str]:
    """The action links of an email's plain-text part: each label, lower-cased, with its token."""
    return {
        label.lower(): token for label, _, token in LINK.findall(message.get_body(("plain",)).get_content())
    }
