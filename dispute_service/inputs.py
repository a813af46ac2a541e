"""What the use cases take in: plain values, already parsed by the API, the CLI or a link page."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class RaiseInput:
    child_ref: str
    case_type: str
    categories: list[str]
    summary: str
    team_manager_email: str | None = None
    sibling_refs: list[str] = field(default_factory=list)
    rating: str | None = None
    start_stage: str | None = None
    reason: str | None = None
    # A partner ladder (SPEC 10): its first stage's contact, contacts for later named stages
    # (stage id -> email), and the other side's own reference.
    ladder: str = "own"
    respondent_email: str | None = None
    contacts: dict[str, str] = field(default_factory=dict)
    their_reference: str | None = None


@dataclass(frozen=True)
class ActionInput:
    reason: str | None = None
    response: str | None = None
    outcome: str | None = None
    outcome_code: str | None = None
    to_stage: str | None = None
    working_days: int | None = None
    review_on: date | None = None
    owner_email: str | None = None
    iro_email: str | None = None
    referred_on: date | None = None
    cafcass_reference: str | None = None
    alongside: bool = False
    child_ref: str | None = None
    sibling_refs: list[str] | None = None
    categories: list[str] | None = None
    case_type: str | None = None
    text_id: int | None = None
    # name_contact: the named stage, and the contact the IRO names for it.
    stage: str | None = None
    contact_email: str | None = None
    # The scheduler names the stage entry it means, so a stale claim can never fire a second timeout.
    stage_entry_seq: int | None = None
