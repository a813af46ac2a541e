"""What the pages show of a dispute: the words and tags, worked out here so templates only place them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from dispute_service.models import Dispute
from dispute_service.stages import calendar_for
from states.calendar import format_day, format_due_words
from states.policy import Policy
from states.vocabulary import CATEGORIES, State

# A deadline this many working days away or nearer is shown amber.
DUE_SOON_WORKING_DAYS = 2

STATE_WORDS = {
    State.AWAITING_RESPONSE: "Awaiting response",
    State.RESPONDED: "Responded",
    State.ON_HOLD: "On hold",
    State.AWAITING_IRO_DECISION: "Awaiting IRO decision",
    State.REFERRED: "Referred to CAFCASS",
    State.RESOLVED: "Resolved",
    State.WITHDRAWN: "Withdrawn",
    State.CLOSED: "Closed",
}

ACTION_WORDS = {
    "acknowledge": "Acknowledge",
    "respond": "Respond",
    "resolve": "Resolve",
    "escalate": "Escalate",
    "reopen": "Reopen",
    "refer_to_cafcass": "Refer to CAFCASS",
    "close": "Close",
    "withdraw": "Withdraw",
    "hold": "Put on hold",
    "resume": "Resume",
    "reassign": "Reassign",
    "extend": "Extend the deadline",
    "reassign_iro": "Change the IRO",
    "comment": "Add a note",
    "name_contact": "Name a contact",
    "amend": "Correct the details",
    "redact": "Redact a text",
}
# The case types and concerns in words, for the raise and correct-the-details forms.
CASE_TYPE_WORDS = {
    "looked_after": "Looked after child",
    "child_protection": "Child protection",
    "care_leaver": "Care leaver",
}
CATEGORY_WORDS = {c: c.replace("_", " ").capitalize() for c in CATEGORIES}
CATEGORY_WORDS["human_rights_breach"] = "Human rights breach (starts at Team Manager or above)"


def refs(text: str | None) -> list[str]:
    """References typed in one box, separated by commas or spaces."""
    return [r for r in re.split(r"[\s,]+", text or "") if r]


@dataclass(frozen=True)
class Tag:
    text: str
    colour: str  # a GOV.UK tag modifier: red, yellow, green, grey


def stage_title(policy: Policy, stage: str) -> str:
    try:
        return policy.any_stage(stage).title
    except KeyError:
        return stage


def state_words(state: str) -> str:
    try:
        return STATE_WORDS[State(state)]
    except ValueError:
        return state.replace("_", " ").capitalize()


def timeliness(dispute: Dispute, policy: Policy, now: datetime) -> Tag:
    """Overdue (red), due within 2 working days (amber), on time (green); or the state, when nothing is
    due from anyone on the ladder."""
    if dispute.state != State.AWAITING_RESPONSE or dispute.due_at is None:
        return Tag(state_words(dispute.state), "grey")
    if dispute.due_at <= now:
        return Tag("Overdue", "red")
    calendar = calendar_for(policy.calendar)
    today = now.astimezone(calendar.tz).date()
    soon = calendar.add_working_days(today, DUE_SOON_WORKING_DAYS)
    if dispute.due_at.astimezone(calendar.tz).date() <= soon:
        return Tag("Due soon", "yellow")
    return Tag("On time", "green")


def due_words(dispute: Dispute, policy: Policy) -> str:
    if dispute.due_at is None:
        return "None"
    return format_due_words(dispute.due_at, calendar_for(policy.calendar).tz)


def day_words(at: datetime | None, policy: Policy) -> str:
    if at is None:
        return ""
    return format_day(at.astimezone(calendar_for(policy.calendar).tz).date())


def when_words(at: datetime, policy: Policy) -> str:
    return format_due_words(at, calendar_for(policy.calendar).tz)


def owner_words(dispute: Dispute, policy: Policy) -> str:
    """Who must act next: the stage's owner while a response is awaited; the IRO once it is answered or the
    ladder is done; nobody while it is held or ended."""
    if dispute.state in (State.RESPONDED, State.AWAITING_IRO_DECISION, State.REFERRED):
        return f"The IRO, {dispute.iro_email}"
    if dispute.state == State.ON_HOLD:
        return "Nobody: on hold"
    if dispute.state not in (State.AWAITING_RESPONSE,):
        return "Nobody: ended"
    if dispute.owner_email:
        return dispute.owner_email
    if dispute.owner_role:
        return "Any " + dispute.owner_role.replace("_", " ")
    return "The IRO"
