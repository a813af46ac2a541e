"""SQLAlchemy 2 models. Times are stored in UTC and always come back timezone-aware."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column, relationship

# Named constraints: Alembic's batch mode on SQLite can only drop a constraint that has a name.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out, on both engines (SQLite would otherwise hand back naive times)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[str]: JSON}


class Person(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Organisation(Base):
    """A partner agency or another local authority (SPEC 10), whose contacts own stages of its ladders."""

    __tablename__ = "organisations"

    # A slug, like a stage id: the policy and the contacts' CSV name an organisation by it.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Contact(Base):
    """Someone at an organisation outside the council. Not in the staff directory, on purpose: they hold no
    role, cannot sign in, and no bearer token names them; they act only through emailed links."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Lower-cased, and never also a staff address (dispute_service.partners and people check both ways).
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebSession(Base):
    """A person signed in to the pages. The cookie carries a random token and only its SHA-256 is kept
    here, so a copy of the database opens no session; ending the row ends the session at once."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    # The session's CSRF token, sent back in every form it is shown.
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class ChainedChange(Base):
    """The columns of a governance trail (`people_changes`, `partner_changes`): one change to the directory it
    keeps, who made it, when, and the fields before and after. Each trail adds the columns naming what
    changed.

    Append-only like the audit log (the database refuses UPDATE and DELETE, see migrations 0003 and 0011),
    and one chain per trail, each hash an HMAC under the audit key named by `key_id`.
    """

    __abstract__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[datetime]
    # The admin's email, or "cli" for the command line's CSV imports.
    actor: Mapped[str] = mapped_column(String(320))
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    # The changed fields as canonical JSON, so the hash covers exactly what is stored; null before "added".
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(String(16))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class PersonChange(ChainedChange):
    """One change to a person in the staff directory."""

    __tablename__ = "people_changes"

    person_email: Mapped[str] = mapped_column(String(320), index=True)


class PartnerChange(ChainedChange):
    """One change to an organisation or an external contact (SPEC 10): a contact decides who may act on a
    partner dispute by email link, so changes to them are kept as staff changes are."""

    __tablename__ = "partner_changes"
    # One subject's history, as its route reads it.
    __table_args__ = (Index("ix_partner_changes_subject", "subject_kind", "subject_id"),)

    # "organisation" or "contact"; `subject_id` is the organisation's id or the contact's email.
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(320))


class PolicyVersion(Base):
    __tablename__ = "policy_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    text: Mapped[str] = mapped_column(Text)
    first_used_at: Mapped[datetime]


class ReferenceCounter(Base):
    """The last dispute number given out in each reporting year (DR-2017-0007)."""

    __tablename__ = "reference_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer)


class AuditText(Base):
    """Free text kept out of the hash chain, so an admin can redact it without breaking the chain."""

    __tablename__ = "audit_texts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dispute_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    redacted_at: Mapped[datetime | None]

    dispute: Mapped[Dispute] = relationship(lazy="raise")


class Dispute(Base):
    __tablename__ = "disputes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    child_ref: Mapped[str] = mapped_column(String(64), index=True)
    sibling_refs: Mapped[list[str]] = mapped_column(JSON, default=list)
    case_type: Mapped[str] = mapped_column(String(32))
    categories: Mapped[list[str]] = mapped_column(JSON)
    rating: Mapped[str | None] = mapped_column(String(16))
    iro_email: Mapped[str] = mapped_column(String(320), index=True)
    team_manager_email: Mapped[str | None] = mapped_column(String(320))

    stage: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(32), index=True)
    owner_email: Mapped[str | None] = mapped_column(String(320), index=True)
    owner_role: Mapped[str] = mapped_column(String(64))
    stage_entry_seq: Mapped[int] = mapped_column(Integer)
    stage_entered_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    escalate_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    next_reminder_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    acknowledged_at: Mapped[datetime | None]
    responded_at: Mapped[datetime | None]
    held_at: Mapped[datetime | None]
    hold_review_on: Mapped[date | None] = mapped_column(Date)
    # What was left on the clock when it stopped: working days, or seconds for an exact timescale.
    hold_remaining_working_days: Mapped[int | None] = mapped_column(Integer)
    hold_remaining_seconds: Mapped[int | None] = mapped_column(Integer)

    resolved_at: Mapped[datetime | None]
    resolved_stage: Mapped[str | None] = mapped_column(String(64))
    resolved_by: Mapped[str | None] = mapped_column(String(320))
    reopen_until: Mapped[datetime | None]
    outcome_code: Mapped[str | None] = mapped_column(String(32))
    outcome_text_id: Mapped[int | None] = mapped_column(Integer)
    referred_on: Mapped[date | None] = mapped_column(Date)
    cafcass_reference: Mapped[str | None] = mapped_column(String(64))
    ended_at: Mapped[datetime | None]

    # The ladder the dispute climbs (SPEC 10): the council's own, or a partner ladder of its policy, with
    # the organisation on the other side, its reference, and the contact named for each named stage
    # (stage id -> email). `awaiting_contact_for` is the named stage the dispute waits to enter until the
    # IRO names its contact.
    ladder: Mapped[str] = mapped_column(String(64), default="own", server_default="own")
    organisation_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id"))
    their_reference: Mapped[str | None] = mapped_column(String(64))
    contacts: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default="{}")
    awaiting_contact_for: Mapped[str | None] = mapped_column(String(64))

    policy_id: Mapped[int] = mapped_column(ForeignKey("policy_versions.id"))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer)
    audit_seq: Mapped[int] = mapped_column(Integer)
    audit_hash: Mapped[str] = mapped_column(String(64))

    # The summary given at raise, which lives with the other free text. Deferred: only the reads that show
    # it undefer it, and then it comes in the dispute's own SELECT rather than a query of its own.
    summary: Mapped[str | None] = column_property(
        select(AuditText.body)
        .where(AuditText.dispute_id == id, AuditText.kind == "summary")
        .order_by(AuditText.id)
        .limit(1)
        .correlate_except(AuditText)
        .scalar_subquery(),
        deferred=True,
    )

    # Loaded on purpose (selectinload) by the use cases that move a dispute; anywhere else a lazy load
    # would be one query per dispute of a list, so it raises instead.
    stage_entries: Mapped[list[StageEntry]] = relationship(
        back_populates="dispute", order_by="StageEntry.seq", lazy="raise"
    )

    # The service sets the version itself, once per trigger, however many flushes the trigger needs;
    # SQLAlchemy still checks it in every UPDATE, so a stale writer fails instead of overwriting.
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}


class StageEntry(Base):
    """One visit of a dispute to a stage: who owned it, when it was due, and when it was answered."""

    __tablename__ = "stage_entries"
    __table_args__ = (UniqueConstraint("dispute_id", "seq", name="uq_stage_entries_dispute_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dispute_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"))
    seq: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(64))
    owner_email: Mapped[str | None] = mapped_column(String(320), index=True)
    owner_role: Mapped[str] = mapped_column(String(64))
    entered_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    escalate_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    responded_at: Mapped[datetime | None]
    left_at: Mapped[datetime | None]

    dispute: Mapped[Dispute] = relationship(back_populates="stage_entries", lazy="raise")


class AuditEntry(Base):
    """Append-only: the database itself refuses UPDATE and DELETE (see the migration)."""

    __tablename__ = "audit_entries"
    __table_args__ = (UniqueConstraint("dispute_id", "seq", name="uq_audit_entries_dispute_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dispute_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(320))
    actor_role: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(32))
    from_stage: Mapped[str | None] = mapped_column(String(64))
    to_stage: Mapped[str] = mapped_column(String(64))
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    due_at_before: Mapped[datetime | None]
    due_at_after: Mapped[datetime | None]
    escalate_at_before: Mapped[datetime | None]
    escalate_at_after: Mapped[datetime | None]
    text_id: Mapped[int | None] = mapped_column(Integer)
    text_sha256: Mapped[str | None] = mapped_column(String(64))
    # Non-sensitive particulars of the trigger (outcome code, named stage, new owner...), as canonical JSON.
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # The keyed format (migration 0004): the id of the key whose HMAC `hash` is, and the entry's place in
    # the one chain across all disputes. All three are null on entries written before it (legacy SHA-256).
    key_id: Mapped[str | None] = mapped_column(String(16))
    gseq: Mapped[int | None] = mapped_column(Integer)
    gprev_hash: Mapped[str | None] = mapped_column(String(64))

    dispute: Mapped[Dispute] = relationship(lazy="raise")


Index("ix_audit_entries_trigger_at", AuditEntry.trigger, AuditEntry.at)
# Unique: two entries can never take the same place in the global chain, even from racing writers.
Index("ix_audit_entries_gseq", AuditEntry.gseq, unique=True)


class AuditHead(Base):
    """The head of the global audit chain: one row, locked by every transaction that appends an entry, so
    that gseq follows commit order and no two entries chain to the same predecessor."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    gseq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class Notification(Base):
    """The outbox: written in the trigger's transaction, sent after commit by the dispatcher."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dispute_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"), index=True)
    audit_seq: Mapped[int] = mapped_column(Integer)
    recipient: Mapped[str] = mapped_column(String(320))
    template: Mapped[str] = mapped_column(String(64))
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime]

    dispute: Mapped[Dispute] = relationship(lazy="raise")


class ActionLink(Base):
    """An emailed action link; only the token's hash is stored."""

    __tablename__ = "action_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    person_email: Mapped[str] = mapped_column(String(320))
    dispute_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"), index=True)
    trigger: Mapped[str] = mapped_column(String(32))
    stage_entry_seq: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    dispute: Mapped[Dispute] = relationship(lazy="raise")


class LinkCode(Base):
    """A one-time code that lets a link's person read the dispute's texts on the link's page (SPEC 10,
    "Reading by link"). Only the code's keyed hash is stored; the code itself is in the email alone."""

    __tablename__ = "link_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("action_links.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    tries: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None]


class LinkSession(Base):
    """What a right code opens: the link's page shows the dispute's texts until `expires_at`. The cookie
    names it by a random token, of which only the keyed hash is stored."""

    __tablename__ = "link_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("action_links.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class RenewalRequest(Base):
    """An address someone entered at /links/renew, kept until the dispatcher looks it up.

    The page only records the address, whether it is known or not, and answers: looking for expired links
    and queueing the email in the request made a known address answer a little later than an unknown one.
    The dispatcher then does that work, in the transaction that deletes the row.
    """

    __tablename__ = "renewal_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    requested_at: Mapped[datetime]


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("caller", "key", name="uq_idempotency_keys_caller_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    caller: Mapped[str] = mapped_column(String(320))
    key: Mapped[str] = mapped_column(String(255))
    request_sha256: Mapped[str] = mapped_column(String(64))
    dispute_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

    dispute: Mapped[Dispute] = relationship(lazy="raise")


# The list's order (migration 0005): newest first, then by id, for offset and cursor paging alike.
Index("ix_disputes_raised_at_id", Dispute.raised_at, Dispute.id)
# The annual report's indexes (migration 0002), declared here too so autogenerate never proposes to drop them.
Index("ix_disputes_ended_at", Dispute.ended_at)
Index(
    "ix_disputes_report",
    Dispute.raised_at,
    Dispute.ended_at,
    Dispute.case_type,
    Dispute.stage,
    Dispute.state,
    Dispute.id,
)
# The annual report's partner figures (migration 0012): disputes on a partner ladder only, few beside the
# council's own, so the report reads theirs through this and takes the rest from its totals.
Index(
    "ix_disputes_partners",
    Dispute.ladder,
    Dispute.organisation_id,
    Dispute.raised_at,
    Dispute.ended_at,
    postgresql_where=text("ladder <> 'own'"),
    sqlite_where=text("ladder <> 'own'"),
)
# The year's resolutions (migration 0012): PostgreSQL counts the disputes resolved in a year from this alone.
Index(
    "ix_audit_entries_resolutions",
    AuditEntry.at,
    AuditEntry.dispute_id,
    postgresql_where=text("\"trigger\" = 'resolve'"),
    sqlite_where=text("\"trigger\" = 'resolve'"),
)
# The year's responses: a partial index of `respond` entries only, covering the `late` flag in `details`
# (PostgreSQL INCLUDEs it; SQLite has no INCLUDE, so there it is a third key column).
Index(
    "ix_audit_entries_responses",
    AuditEntry.at,
    AuditEntry.dispute_id,
    postgresql_include=["details"],
    postgresql_where=text("\"trigger\" = 'respond'"),
    sqlite_where=text("\"trigger\" = 'respond'"),
)
