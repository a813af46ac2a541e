"""Request and response bodies. Enum types let a 422 say exactly which values are allowed."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from dispute_service.partner_changes import ChangeKind as PartnerChangeKind
from dispute_service.people_changes import ChangeKind
from states.vocabulary import MAX_ORGANISATION_ID, MAX_TEXT, ORGANISATION_ID_PATTERN, REF_PATTERN

# Re-exported: the routes' query parameters take these from here, as the bodies do.
from states.vocabulary import CaseType as CaseType
from states.vocabulary import Category as Category
from states.vocabulary import OrganisationKind as OrganisationKind
from states.vocabulary import OutcomeCode as OutcomeCode
from states.vocabulary import Role as Role

ChildRef = Annotated[str, Field(min_length=1, max_length=64, pattern=REF_PATTERN)]
# The database's INTEGER: a larger number could never match a row, and would overflow the driver.
MAX_INT = 2**31 - 1


class Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        # Enum fields hold the plain string once validated: the service and the database deal in strings.
        use_enum_values=True,
        # Pydantic's own field title, but given explicitly: a field typed by an enum would otherwise be
        # documented with the enum's title ("CaseType") instead of its own ("Case Type").
        field_title_generator=lambda name, _: name.title().replace("_", " ").strip(),
    )

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL cannot store NUL in text, and no real input holds one: refuse it as invalid input.
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and "\x00" in v for v in values):
            raise ValueError("must not contain the NUL character")
        return value


class RaiseIn(Strict):
    child_ref: str = Field(min_length=1, max_length=64, pattern=REF_PATTERN)
    case_type: CaseType
    categories: list[Category] = Field(min_length=1, max_length=10)
    summary: str = Field(min_length=1, max_length=MAX_TEXT)
    team_manager_email: EmailStr | None = None
    sibling_refs: list[ChildRef] = Field(default_factory=list, max_length=20)
    rating: Literal["amber", "red"] | None = None
    start_stage: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    # SPEC 10: the ladder ("own", or a partner ladder of the policy); on a partner ladder, the first
    # stage's contact, contacts for later named stages ({"stage_id": "email"}), and the other side's
    # reference.
    ladder: str = Field(default="own", max_length=64)
    respondent_email: EmailStr | None = None
    contacts: dict[str, EmailStr] = Field(default_factory=dict, max_length=20)
    their_reference: str | None = Field(default=None, min_length=1, max_length=64, pattern=REF_PATTERN)


class ActionIn(Strict):
    expected_version: int | None = Field(default=None, ge=1, le=MAX_INT)
    reason: str | None = Field(default=None, max_length=MAX_TEXT)
    response: str | None = Field(default=None, max_length=MAX_TEXT)
    outcome: str | None = Field(default=None, max_length=MAX_TEXT)
    outcome_code: OutcomeCode | None = None
    to_stage: str | None = Field(default=None, max_length=64)
    working_days: int | None = Field(default=None, ge=1, le=60)
    review_on: date | None = None
    owner_email: EmailStr | None = None
    iro_email: EmailStr | None = None
    referred_on: date | None = None
    cafcass_reference: str | None = Field(default=None, max_length=64)
    alongside: bool = False
    child_ref: str | None = Field(default=None, min_length=1, max_length=64, pattern=REF_PATTERN)
    sibling_refs: list[ChildRef] | None = Field(default=None, max_length=20)
    categories: list[Category] | None = Field(default=None, min_length=1, max_length=10)
    case_type: CaseType | None = None
    text_id: int | None = Field(default=None, ge=1, le=MAX_INT)
    # name_contact: the later named stage of a partner ladder, and its contact.
    stage: str | None = Field(default=None, max_length=64)
    contact_email: EmailStr | None = None


class Hold(BaseModel):
    held_at: datetime
    review_on: date | None
    remaining_working_days: int | None
    remaining_seconds: int | None


class DisputeOut(BaseModel):
    id: uuid.UUID
    reference: str
    child_ref: str
    sibling_refs: list[str]
    case_type: str
    categories: list[str]
    summary: str
    rating: str | None
    iro: str
    stage: str
    stage_title: str
    state: str
    owner: str | None
    owner_role: str
    stage_entered_at: datetime
    due_at: datetime | None
    escalate_at: datetime | None
    acknowledged_at: datetime | None
    responded_at: datetime | None
    hold: Hold | None
    resolved_at: datetime | None
    resolved_stage: str | None
    resolved_by: str | None
    reopen_until: datetime | None
    outcome: str | None
    outcome_code: str | None
    referred_on: date | None
    cafcass_reference: str | None
    raised_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    version: int
    policy_version: int
    audit_seq: int
    audit_hash: str
    allowed_actions: list[str]
    ladder: str
    organisation: str | None
    their_reference: str | None
    contacts: dict[str, str]


class DisputeList(BaseModel):
    items: list[DisputeOut]
    total: int = Field(description="Every dispute the filters match that you may read, on all pages")
    next: str | None = Field(
        description="Pass as `after` for the page that follows this one; null on the last page"
    )


class AuditTextOut(BaseModel):
    """One free text an entry keeps; its words are withheld once redacted."""

    text_id: int
    kind: str
    text: str | None
    redacted: bool
    sha256: str


class AuditItem(BaseModel):
    seq: int
    at: datetime
    actor: str
    actor_role: str | None
    channel: str
    trigger: str
    from_stage: str | None
    to_stage: str
    from_state: str | None
    to_state: str
    due_at_before: datetime | None
    due_at_after: datetime | None
    escalate_at_before: datetime | None
    escalate_at_after: datetime | None
    text_id: int | None
    text_kind: str | None
    text: str | None
    text_redacted: bool
    text_sha256: str | None
    # Every text the entry keeps, its own first: a raise above the first stage keeps the IRO's reason too.
    texts: list[AuditTextOut] = []
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditList(BaseModel):
    items: list[AuditItem]


class PersonIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    roles: list[Role] = Field(min_length=1)
    active: bool = True


class PersonPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    roles: list[Role] | None = Field(default=None, min_length=1)
    active: bool | None = None


class PersonOut(BaseModel):
    name: str
    email: str
    roles: list[str]
    active: bool


class PeopleList(BaseModel):
    items: list[PersonOut]
    total: int


class ChangeOut(BaseModel):
    """One change of a governance trail (the people changes, the partner changes); each trail's own narrows
    `kind` to its kinds."""

    seq: int
    at: datetime
    actor: str
    channel: str
    kind: str
    before: dict[str, Any] | None
    after: dict[str, Any]

    @classmethod
    def of(cls, change: Any) -> Self:
        """From a stored change, whose fields are kept as canonical JSON."""
        return cls(
            seq=change.seq,
            at=change.at,
            actor=change.actor,
            channel=change.channel,
            kind=change.kind,
            before=json.loads(change.before) if change.before is not None else None,
            after=json.loads(change.after),
        )


class PersonChangeOut(ChangeOut):
    """One change to a person: who made it (an admin's email, or "cli" for a CSV import), when, and the
    fields it changed, before and after ("before" is null when the person was added)."""

    kind: ChangeKind


class PersonHistory(BaseModel):
    email: str
    items: list[PersonChangeOut]


OrganisationId = Annotated[
    str, Field(min_length=1, max_length=MAX_ORGANISATION_ID, pattern=ORGANISATION_ID_PATTERN)
]


class OrganisationIn(Strict):
    id: OrganisationId = Field(description="A slug like a stage id: a lower-case letter, then a-z, 0-9 and _")
    name: str = Field(min_length=1, max_length=200)
    kind: OrganisationKind


class OrganisationPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: OrganisationKind | None = None


class OrganisationOut(BaseModel):
    id: str
    name: str
    kind: str


class OrganisationList(BaseModel):
    items: list[OrganisationOut]
    total: int


class ContactIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    organisation: OrganisationId
    active: bool = True


class ContactPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    organisation: OrganisationId | None = None
    active: bool | None = None


class ContactOut(BaseModel):
    """An external contact: no roles, no sign-in; they act through emailed links only."""

    name: str
    email: str
    # Read from the stored contact's `organisation_id`; named as the requests name it.
    organisation: str = Field(validation_alias="organisation_id")
    active: bool


class ContactList(BaseModel):
    items: list[ContactOut]
    total: int


class PartnerChangeOut(ChangeOut):
    """One change to an organisation or an external contact: who made it (an admin's email, or "cli" for a
    CSV import), when, and the fields it changed, before and after ("before" is null when it was added)."""

    kind: PartnerChangeKind


class OrganisationHistory(BaseModel):
    id: str
    items: list[PartnerChangeOut]


class ContactHistory(BaseModel):
    email: str
    items: list[PartnerChangeOut]


class Problem(BaseModel):
    """RFC 9457 problem details; a refusal adds what the caller can do about it (`allowed_actions`,
    `current_version`, `errors`)."""

    type: str
    title: str
    status: int
    detail: str
    allowed_actions: list[str] | None = None
    current_version: int | None = None
    errors: list[dict[str, str]] | None = None
    known_actions: list[str] | None = None
    disputes: list[str] | None = None
