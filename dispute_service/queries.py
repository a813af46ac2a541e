"""Reads that list disputes; each is one read transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.access import Actor, readable_by, relation_to
from dispute_service.disputes import DisputeSnapshot, situation_of
from dispute_service.ladder import calendar_for
from dispute_service.models import AuditText, Dispute
from dispute_service.policies import policy_for
from states.access import allowed_actions
from states.machine import Request, State, machine_for
from states.policy import Policy

Sessions = sessionmaker[Session]


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


def list_disputes(
    sessions: Sessions, policy: Policy, actor: Actor, filters: DisputeFilters, now: datetime
) -> tuple[list[DisputeSnapshot], int]:
    tz = calendar_for(policy.calendar).tz
    query = select(Dispute).where(readable_by(actor))
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
    if filters.overdue is not None:
        overdue = (Dispute.state == State.AWAITING_RESPONSE.value) & (Dispute.due_at < now)
        query = query.where(overdue if filters.overdue else ~overdue)
    if filters.raised_from:
        query = query.where(Dispute.raised_at >= datetime.combine(filters.raised_from, time(), tz))
    if filters.raised_to and filters.raised_to < date.max:  # the last day there is has no day after it
        query = query.where(Dispute.raised_at < datetime.combine(filters.raised_to, time(), tz) + _ONE_DAY)
    with sessions() as session, session.begin():
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        page = session.scalars(
            query.order_by(Dispute.raised_at.desc(), Dispute.id).limit(filters.limit).offset(filters.offset)
        ).all()
        summaries = dict(
            session.execute(
                select(AuditText.dispute_id, AuditText.body).where(
                    AuditText.dispute_id.in_([d.id for d in page]), AuditText.kind == "summary"
                )
            ).all()
        )
        outcomes = dict(
            session.execute(
                select(AuditText.id, AuditText.body).where(
                    AuditText.id.in_([d.outcome_text_id for d in page if d.outcome_text_id is not None])
                )
            ).all()
        )
        items = []
        for d in page:
            machine = machine_for(policy_for(session, d.policy_id, policy))
            allowed = allowed_actions(machine, situation_of(d), relation_to(d, actor), Request(now=now))
            outcome = outcomes.get(d.outcome_text_id) if d.outcome_text_id is not None else None
            items.append(DisputeSnapshot(d, summaries.get(d.id, ""), outcome, allowed))
    return items, total


_ONE_DAY = timedelta(days=1)
