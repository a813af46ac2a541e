"""Emails from templates: one plain-text and one HTML template per event, and nothing but references."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import TYPE_CHECKING

from states.vocabulary import Trigger

if TYPE_CHECKING:
    from jinja2 import Environment

SUBJECTS = {
    "raised": "Dispute {reference} raised: your response is needed",
    "escalated": "Dispute {reference} escalated to {stage_title}",
    "reminder": "Reminder: dispute {reference} needs your response",
    "iro_reminder": "Reminder: dispute {reference} is waiting for your decision",
    "responded": "Dispute {reference}: a response is waiting for your decision",
    "resolved": "Dispute {reference} resolved at {stage_title}",
    "withdrawn": "Dispute {reference} withdrawn",
    "closed": "Dispute {reference} closed",
    "ladder_exhausted": "Dispute {reference} has reached the end of the ladder: the IRO decides",
    "referred": "Dispute {reference}: the case has been referred to CAFCASS",
    "assigned": "Dispute {reference} assigned to you",
    "owner_unavailable": "Dispute {reference} at {stage_title}: the named person cannot take it",
    "held": "Dispute {reference} is on hold: the clock is stopped",
    "resumed": "Dispute {reference} has resumed: your response is needed",
    "extended": "Dispute {reference}: the due date has been extended",
    "iro_assigned": "Dispute {reference}: you are now its IRO",
    "resolved_by_iro": "Dispute {reference} resolved by the IRO at {stage_title}",
    "hold_review": "Reminder: dispute {reference} is on hold and due for review",
    "contact_needed": "Dispute {reference}: name a contact for the next stage",
    "partner_ladder_exhausted": "Dispute {reference} has reached the end of its ladder: the IRO decides",
    "decision_reminder": "Reminder: dispute {reference} waits for your decision at the end of the ladder",
    "link_code": "Dispute {reference}: your code to read the dispute",
    "link_renewal": "Dispute {reference}: a fresh link",
}

LINK_LABELS = {
    Trigger.ACKNOWLEDGE: "Acknowledge",
    Trigger.RESPOND: "Respond",
    Trigger.RESOLVE: "Resolve",
    Trigger.ESCALATE: "Escalate",
    Trigger.REOPEN: "Reopen",
}


@functools.cache
def _env() -> Environment:
    # Imported for the first email, not at start-up: the server's start and its API requests need no
    # Jinja2, and the dispatcher renders on its own thread.
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=PackageLoader("notifications", "templates/email"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class EmailContent:
    reference: str
    child_ref: str
    stage_title: str
    due_words: str | None
    reopen_words: str | None
    is_owner: bool
    is_iro: bool
    links: tuple[Link, ...]
    # The other side's own reference for the case (a partner dispute's), held to child_ref's pattern.
    their_reference: str | None = None
    # The one-time code of a `link_code` email (notifications.link_reading), made as the email is sent.
    code: str | None = None


def render(template: str, content: EmailContent) -> tuple[str, str, str]:
    """(subject, plain text, HTML) for one event and one recipient."""
    context = {
        "reference": content.reference,
        "child_ref": content.child_ref,
        "stage_title": content.stage_title,
        "due_words": content.due_words,
        "reopen_words": content.reopen_words,
        "is_owner": content.is_owner,
        "is_iro": content.is_iro,
        "links": content.links,
        "code": content.code,
        "their_reference": content.their_reference,
    }
    subject = SUBJECTS[template].format(reference=content.reference, stage_title=content.stage_title)
    text = _env().get_template(f"{template}.txt").render(context)
    html = _env().get_template(f"{template}.html").render(context)
    return subject, text, html


def build_message(
    *, sender: str, recipient: str, message_id: str, subject: str, text: str, html: str
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    # Stable across resends, so a mail client (and the tests) recognise a resend as the same email.
    message["Message-ID"] = message_id
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message
