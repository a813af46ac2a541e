"""Reads: one dispute, the list, the audit log, and the snapshot a caller sees of a dispute.

Each takes the caller's open session; `transactions` wraps them for callers that need a transaction of
their own.
"""

from __future__ import annotations

import base64
import functools
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import structlog
from sqlalchemy import Select, String, bindparam, cast, func, inspect, or_, select, tuple_
from sqlalchemy.orm import Session, undefer
from sqlalchemy.orm.attributes import set_committed_value

from dispute_service.access import (
    Actor,
    ReaderKind,
    readable_by,
    readable_clause,
    reader_kind,
    reader_params,
    relation_to,
)
from dispute_service.database import after_commit
from dispute_service.errors import DisputeNotFound, InvalidInput
from dispute_service.models import AuditEntry, AuditText, Dispute, StageEntry
from dispute_service.policies import policy_for
from dispute_service.stages import calendar_for
from states.machine import Request, Situation, machine_for
from states.permissions import allowed_actions
from states.policy import Policy
from states.vocabulary import OPEN_STATES, State

_ONE_DAY = timedelta(days=1)

log = structlog.get_logger("dispute_service.queries")


@dataclass(frozen=True)
class DisputeSnapshot:
    """A dispute as one caller sees it, taken inside the transaction that read or changed it."""

    dispute: Dispute
    summary: str
    outcome: str | None
    allowed_actions: list[str]
    replayed: bool = False


@dataclass(frozen=True)
class DisputeFilters:
    state: str | None = None
    stage: str | None = None
    iro: str | None = None
    owner: str | None = None
    child_ref: str | None = None
    case_type: str | None = None
    category: str | None = None
    overdue: bool | None = None
    raised_from: date | None = None
    raised_to: date | None = None
    limit: int = 50
    offset: int = 0
    # Where the previous page ended: its last row's `raised_at` and `id` (see `page_cursor`).
    after: tuple[datetime, uuid.UUID] | None = None
    # The pages' dashboards: open disputes only; those awaiting a response from a stage this person owns
    # (named, or by a role they hold with nobody named); soonest due first (paged by offset only).
    open_only: bool = False
    waiting_on: Actor | None = None
    by_due: bool = False


@dataclass(frozen=True)
class DisputePage:
    items: list[DisputeSnapshot]
    total: int
    # Where this page ended, for the next page's `after`; None on the last page.
    next: str | None


def situation_of(dispute: Dispute) -> Situation:
    return Situation(
        stage=dispute.stage,
        state=State(dispute.state),
        case_type=dispute.case_type,
        reopen_until=dispute.reopen_until,
        referred=dispute.referred_on is not None,
        named=frozenset(dispute.contacts or {}),
        waiting_for=dispute.awaiting_contact_for,
    )


def readable_dispute(session: Session, dispute_id: uuid.UUID, actor: Actor, *, for_change: bool) -> Dispute:
    """The dispute, if this caller may read it; for a change, locked and with its stage entries."""
    kind = reader_kind(actor)
    params = {"dispute_id": dispute_id, **(reader_params(actor) if kind != "all" else {})}
    dispute = session.scalar(_dispute_by_id(kind, for_change), params)
    if dispute is None:
        raise DisputeNotFound(f"no dispute {dispute_id} that you can see")
    if for_change:
        load_stage_entries(session, dispute)
    return dispute


@functools.cache
def _dispute_by_id(kind: ReaderKind, for_change: bool) -> Select[Dispute]:
    """Built once per kind of reader: every request that names a dispute runs one of these."""
    # The summary comes in the same SELECT: every caller of this shows the dispute it read.
    query = (
        select(Dispute)
        .where(Dispute.id == bindparam("dispute_id"), readable_clause(kind))
        .options(undefer(Dispute.summary))
    )
    if for_change:
        # PostgreSQL: the row lock serialises changes to one dispute across replicas. SQLite already holds
        # the database write lock from BEGIN IMMEDIATE, and ignores FOR UPDATE.
        # populate_existing: a row this transaction read before the lock was taken is read again under it.
        query = query.with_for_update(of=Dispute).execution_options(populate_existing=True)
    return query


_STAGE_ENTRIES = (
    select(StageEntry).where(StageEntry.dispute_id == bindparam("dispute_id")).order_by(StageEntry.seq)
)


def load_stage_entries(session: Session, dispute: Dispute) -> None:
    """The dispute's stage entries, as a change needs them: one plain query, its rows set as the loaded
    collection. SQLAlchemy's selectin loader did the same with a fifth of an acknowledge's CPU."""
    entries = list(session.scalars(_STAGE_ENTRIES, {"dispute_id": dispute.id}))
    set_committed_value(dispute, "stage_entries", entries)


def snapshots(
    session: Session, disputes: Sequence[Dispute], policy: Policy, actor: Actor, now: datetime
) -> list[DisputeSnapshot]:
    """What each dispute shows this caller: its summary, its outcome, and the actions open to them now."""
    # A dispute read with its summary undeferred needs no query for it; the rest share one.
    summaries = {d.id: d.summary for d in disputes if "summary" not in inspect(d).unloaded}
    missing = [d.id for d in disputes if d.id not in summaries]
    if missing:
        summaries.update(
            session.execute(
                select(AuditText.dispute_id, AuditText.body)
                .where(AuditText.dispute_id.in_(missing), AuditText.kind == "summary")
                .order_by(AuditText.id.desc())
            ).all()
        )
    outcome_ids = [d.outcome_text_id for d in disputes if d.outcome_text_id is not None]
    outcomes = dict(
        session.execute(select(AuditText.id, AuditText.body).where(AuditText.id.in_(outcome_ids))).all()
        if outcome_ids
        else []
    )
    found = []
    for d in disputes:
        machine = machine_for(policy_for(session, d.policy_id, policy))
        allowed = allowed_actions(machine, situation_of(d), relation_to(d, actor), Request(now=now))
        outcome = outcomes.get(d.outcome_text_id) if d.outcome_text_id is not None else None
        found.append(DisputeSnapshot(d, summaries.get(d.id) or "", outcome, allowed))
    return found


def snapshot(
    session: Session, dispute: Dispute, policy: Policy, actor: Actor, now: datetime
) -> DisputeSnapshot:
    return snapshots(session, [dispute], policy, actor, now)[0]


def get_dispute(
    session: Session, policy: Policy, dispute_id: uuid.UUID, actor: Actor, now: datetime
) -> DisputeSnapshot:
    dispute = readable_dispute(session, dispute_id, actor, for_change=False)
    log_read(
        session,
        "dispute.read",
        actor,
        dispute_id=str(dispute.id),
        reference=dispute.reference,
        part="dispute",
    )
    return snapshot(session, dispute, policy, actor, now)


def log_read(session: Session, event: str, actor: Actor, **ids: Any) -> None:
    """Who read what: ids only, never a summary or any other content. Logged once the read's transaction
    has committed, so a read that failed is not reported as made. The request id comes with the context."""
    fields = {**ids, "actor": actor.email, "channel": actor.channel}
    after_commit(session, lambda: log.info(event, **fields))


def audit_log(
    session: Session, dispute_id: uuid.UUID, actor: Actor
) -> list[tuple[AuditEntry, list[AuditText]]]:
    """Each entry with every text it keeps: its own first, then those its details name (the reason an IRO
    gave for starting above the first stage, say)."""
    dispute = readable_dispute(session, dispute_id, actor, for_change=False)
    log_read(
        session, "dispute.read", actor, dispute_id=str(dispute.id), reference=dispute.reference, part="audit"
    )
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.dispute_id == dispute.id).order_by(AuditEntry.seq)
    ).all()
    texts = {t.id: t for t in session.scalars(select(AuditText).where(AuditText.dispute_id == dispute.id))}
    found = []
    for entry in entries:
        details = json.loads(entry.details)
        named = [v for k, v in sorted(details.items()) if k.endswith("_text_id") and isinstance(v, int)]
        ids = ([entry.text_id] if entry.text_id is not None else []) + named
        found.append((entry, [texts[i] for i in ids if i in texts]))
    return found


def list_disputes(
    session: Session, policy: Policy, actor: Actor, filters: DisputeFilters, now: datetime
) -> DisputePage:
    """The disputes this caller may read, newest first, a page at a time: by `offset`, or after the last
    row of the page before (`after`), which neither skips nor repeats a row when disputes are raised
    between pages and costs the same however deep the page."""
    if session.get_bind().dialect.name == "postgresql":
        # A reader who may see only some disputes makes the planner's cost estimates large, and compiling
        # the count with JIT costs more than running it (60 of 90 ms for an IRO among 100,000 disputes).
        session.connection().exec_driver_sql("SET LOCAL jit = off")
    query = _filtered(select(Dispute).where(readable_by(actor)), filters, policy, now)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    if filters.after is not None:
        # A plain tuple, so each value is bound as its column's type: on SQLite as the naive UTC text the
        # rows hold, whatever offset the cursor's time was written with. The database compares in the
        # order it sorts on both engines (an id as 32 hex digits on SQLite, as a uuid on PostgreSQL).
        query = query.where(tuple_(Dispute.raised_at, Dispute.id) < filters.after)
    # The index's order (migration 0005), both columns descending, so the database reads the page off
    # the index; one row more than the page, to tell whether another page follows.
    order: tuple[Any, ...] = (Dispute.raised_at.desc(), Dispute.id.desc())
    if filters.by_due:
        # A dispute with no deadline (held, or waiting on the IRO) after every one with a deadline.
        # Among those due at the same moment, the longest waiting first.
        order = (Dispute.due_at.is_(None), Dispute.due_at.asc(), Dispute.raised_at.asc(), Dispute.id.asc())
    if filters.offset:
        # The rows skipped are only counted: find the page's ids first, which needs nothing but the index
        # when no filter looks further (an index-only scan on PostgreSQL), then read just those rows.
        ids = query.with_only_columns(Dispute.id).order_by(*order).limit(filters.limit + 1)
        query = select(Dispute).where(Dispute.id.in_(ids.offset(filters.offset).correlate(None)))
    rows: Sequence[Dispute] = session.scalars(query.order_by(*order).limit(filters.limit + 1)).all()
    page = rows[: filters.limit]
    # A cursor marks a place in the newest-first order only; the due-date order pages by offset.
    following = page_cursor(page[-1]) if len(rows) > filters.limit and not filters.by_due else None
    log_read(session, "dispute.list", actor, ids=[str(d.id) for d in page], total=total)
    return DisputePage(snapshots(session, page, policy, actor, now), total, following)


def page_cursor(last: Dispute) -> str:
    """An opaque, URL-safe mark of where a page ended: the last row's sort key, nothing a caller could
    not read anyway."""
    raw = f"{last.raised_at.astimezone(UTC).isoformat()}|{last.id.hex}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The sort key a cursor holds; InvalidInput names `after` for anything `page_cursor` did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, ident = raw.partition("|")
        raised_at = datetime.fromisoformat(moment)
        if raised_at.tzinfo is None:
            raise ValueError("no time zone")
        return raised_at, uuid.UUID(hex=ident)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(
            [("after", "must be the `next` value of an earlier page of this list, unchanged")]
        ) from None


def _filtered(query: Select[Any], filters: DisputeFilters, policy: Policy, now: datetime) -> Select[Any]:
    tz = calendar_for(policy.calendar).tz
    if filters.state:
        query = query.where(Dispute.state == filters.state)
    if filters.stage:
        query = query.where(Dispute.stage == filters.stage)
    if filters.iro:
        query = query.where(Dispute.iro_email == filters.iro.lower())
    if filters.owner:
        query = query.where(Dispute.owner_email == filters.owner.lower())
    if filters.child_ref:
        query = query.where(Dispute.child_ref == filters.child_ref)
    if filters.case_type:
        query = query.where(Dispute.case_type == filters.case_type)
    if filters.category:
        # Categories are a JSON list; its text form holds each id in quotes on both engines.
        query = query.where(cast(Dispute.categories, String).like(f'%"{filters.category}"%'))
    if filters.open_only:
        query = query.where(Dispute.state.in_(sorted(OPEN_STATES)))
    if filters.waiting_on is not None:
        who = filters.waiting_on
        # Waiting on them: a response is awaited from the stage they own (answered, it waits on the IRO).
        query = query.where(
            Dispute.state == State.AWAITING_RESPONSE.value,
            Dispute.owner_role.in_(sorted(who.roles)),
            or_(Dispute.owner_email == who.email, Dispute.owner_email.is_(None)),
        )
    if filters.overdue is not None:
        overdue = (Dispute.state == State.AWAITING_RESPONSE.value) & (Dispute.due_at < now)
        query = query.where(overdue if filters.overdue else ~overdue)
    if filters.raised_from:
        query = query.where(Dispute.raised_at >= datetime.combine(filters.raised_from, time(), tz))
    if filters.raised_to and filters.raised_to < date.max:  # the last day there is has no day after it
        query = query.where(Dispute.raised_at < datetime.combine(filters.raised_to, time(), tz) + _ONE_DAY)
    return query
