"""The use cases. Each public function is exactly one transaction, called the same way by the API, the
scheduler and the email links: it checks the version, moves the state through the machine, appends the
audit entry chained to the previous one, queues the outbox rows and sets the deadline columns, together or
not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dispute_service import outbox
from dispute_service.access import Actor, acting_role, can_read, relation_to
from dispute_service.audit import GENESIS_HASH, REDACTED, canonical_json, entry_hash, sha256_text
from dispute_service.errors import (
    DisputeNotFound,
    Forbidden,
    InvalidInput,
    NotAllowedNow,
    UnknownTrigger,
    VersionConflict,
)
from dispute_service.models import (
    AuditEntry,
    AuditText,
    Dispute,
    IdempotencyKey,
    Person,
    ReferenceCounter,
    StageEntry,
)
from dispute_service.policies import policy_for, version_id
from states import machine as ladder
from states.access import allowed_actions, may_ever_use
from states.calendar import WorkingCalendar
from states.machine import (
    ACTION_TRIGGERS,
    CASE_TYPES,
    CATEGORIES,
    OUTCOME_CODES,
    Position,
    Request,
    Situation,
    State,
    Trigger,
    machine_for,
)
from states.policy import CalendarConfig, Policy, Stage
from states.timescale import Timescale

log = structlog.get_logger("dispute_service.disputes")

IDEMPOTENCY_TTL = timedelta(hours=24)
MAX_TEXT = 20_000
Sessions = sessionmaker[Session]


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
    # The scheduler names the stage entry it means, so a stale claim can never fire a second timeout.
    stage_entry_seq: int | None = None


@dataclass(frozen=True)
class DisputeSnapshot:
    """A dispute as one caller sees it, taken inside the transaction that read or changed it."""

    dispute: Dispute
    summary: str
    outcome: str | None
    allowed_actions: list[str]
    replayed: bool = False


@lru_cache(maxsize=32)
def calendar_for(config: CalendarConfig) -> WorkingCalendar:
    return WorkingCalendar(config)


# ---------------------------------------------------------------------------------------------- reads


def get_dispute(
    sessions: Sessions, policy: Policy, dispute_id: uuid.UUID, actor: Actor, now: datetime
) -> DisputeSnapshot:
    with sessions() as session, session.begin():
        dispute = _load(session, dispute_id, actor, lock=False)
        return _snapshot(session, dispute, policy, actor, now)


def audit_log(
    sessions: Sessions, dispute_id: uuid.UUID, actor: Actor
) -> list[tuple[AuditEntry, AuditText | None]]:
    with sessions() as session, session.begin():
        dispute = _load(session, dispute_id, actor, lock=False)
        rows = session.execute(
            select(AuditEntry, AuditText)
            .outerjoin(AuditText, AuditText.id == AuditEntry.text_id)
            .where(AuditEntry.dispute_id == dispute.id)
            .order_by(AuditEntry.seq)
        ).all()
        return [(entry, text) for entry, text in rows]


# ---------------------------------------------------------------------------------------------- raise


def raise_dispute(
    sessions: Sessions,
    policy: Policy,
    actor: Actor,
    data: RaiseInput,
    now: datetime,
    *,
    idempotency_key: str | None = None,
    year_start_month: int = 4,
) -> DisputeSnapshot:
    if "iro" not in actor.roles:
        raise Forbidden("raise", actor.email)
    request_sha = sha256_text(canonical_json(data.__dict__))
    for attempt in (1, 2):
        try:
            with sessions() as session, session.begin():
                if idempotency_key is not None:
                    earlier = _replay(session, actor, idempotency_key, request_sha, now)
                    if earlier is not None:
                        return replace(_snapshot(session, earlier, policy, actor, now), replayed=True)
                start, team_manager = _validate_raise(session, policy, data)
                dispute = _create(session, policy, actor, data, start, team_manager, now, year_start_month)
                if idempotency_key is not None:
                    session.add(
                        IdempotencyKey(
                            caller=actor.email,
                            key=idempotency_key,
                            request_sha256=request_sha,
                            dispute_id=dispute.id,
                            created_at=now,
                        )
                    )
                session.flush()
                snapshot = _snapshot(session, dispute, policy, actor, now)
            break
        except IntegrityError:
            # Two replicas claimed the same new unique row (a reference counter, an idempotency key) at
            # once; the database let one win. Replaying the transaction sees the winner's row.
            if attempt == 2:
                raise
    _log_transition(dispute, "raise", None, None, actor)
    return snapshot


def _replay(session: Session, actor: Actor, key: str, request_sha: str, now: datetime) -> Dispute | None:
    stored = session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.caller == actor.email, IdempotencyKey.key == key)
    )
    if stored is None:
        return None
    if stored.created_at < now - IDEMPOTENCY_TTL:
        session.delete(stored)
        session.flush()
        return None
    if stored.request_sha256 != request_sha:
        raise InvalidInput([("Idempotency-Key", "this key was already used with a different request body")])
    return session.get(Dispute, stored.dispute_id)


def _validate_raise(session: Session, policy: Policy, data: RaiseInput) -> tuple[Stage, str | None]:
    errors: list[tuple[str, str]] = []
    start = policy.first_stage
    if data.start_stage is not None:
        if data.start_stage not in policy.stage_ids:
            errors.append(("start_stage", f"must be one of: {', '.join(policy.stage_ids)}"))
        else:
            start = policy.stage(data.start_stage)
            if start.id != policy.first_stage.id and not _present(data.reason):
                errors.append(("reason", "is required when the IRO starts at a later stage"))
    _check_refs_and_categories(errors, data.child_ref, data.sibling_refs, data.categories, data.case_type)
    _check_text(errors, "summary", data.summary)
    if data.reason is not None:
        _check_text(errors, "reason", data.reason)
    if "human_rights_breach" in data.categories and "team_manager" in policy.stage_ids:
        if policy.index(start.id) < policy.index("team_manager"):
            errors.append(
                (
                    "start_stage",
                    "a human_rights_breach concern starts at team_manager or above, not at the QA stage",
                )
            )
    team_manager: str | None = None
    needs_team_manager = "team_manager" in policy.stage_ids and policy.index(start.id) <= policy.index(
        "team_manager"
    )
    if data.team_manager_email is not None or needs_team_manager:
        team_manager = _named_person(
            session, errors, "team_manager_email", data.team_manager_email, "team_manager"
        )
    _raise_if(errors)
    return start, team_manager


def _create(
    session: Session,
    policy: Policy,
    actor: Actor,
    data: RaiseInput,
    start: Stage,
    team_manager: str | None,
    now: datetime,
    year_start_month: int,
) -> Dispute:
    calendar = calendar_for(policy.calendar)
    dispute = Dispute(
        id=uuid.uuid4(),
        reference=_next_reference(session, now, calendar, year_start_month),
        child_ref=data.child_ref.strip(),
        sibling_refs=[s.strip() for s in data.sibling_refs],
        case_type=data.case_type,
        categories=list(dict.fromkeys(data.categories)),
        rating=data.rating,
        iro_email=actor.email,
        team_manager_email=team_manager,
        stage=start.id,
        state=machine_for(policy).start(start.id).state.value,
        owner_role=start.owner_role,
        stage_entry_seq=0,
        stage_entered_at=now,
        policy_id=version_id(session, policy, now),
        raised_at=now,
        updated_at=now,
        audit_seq=0,
        audit_hash=GENESIS_HASH,
        version=1,
    )
    session.add(dispute)
    _enter_stage(session, dispute, policy, start, now)
    session.flush()
    texts = {"summary": data.summary}
    details: dict[str, Any] = {"start_stage": start.id}
    if data.reason is not None:
        texts["reason"] = data.reason
    entry = _append_audit(
        session,
        dispute,
        actor=actor,
        actor_role="iro",
        trigger="raise",
        before=None,
        before_times=(None, None),
        texts=texts,
        details=details,
        now=now,
    )
    outbox.queue(
        session,
        dispute,
        audit_seq=entry.seq,
        template="raised",
        recipients=outbox.owners_of(session, dispute.owner_email, dispute.owner_role),
        now=now,
    )
    return dispute


def _next_reference(session: Session, now: datetime, calendar: WorkingCalendar, start_month: int) -> str:
    local = now.astimezone(calendar.tz).date()
    year = local.year if local.month >= start_month else local.year - 1
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert
    session.execute(
        insert(ReferenceCounter).values(year=year, last=0).on_conflict_do_nothing(index_elements=["year"])
    )
    counter = session.scalars(
        select(ReferenceCounter).where(ReferenceCounter.year == year).with_for_update()
    ).one()
    counter.last += 1
    return f"DR-{year}-{counter.last:04d}"


# --------------------------------------------------------------------------------------- apply a trigger


def apply_trigger(
    sessions: Sessions,
    policy: Policy,
    dispute_id: uuid.UUID,
    trigger: str,
    actor: Actor,
    data: ActionInput,
    now: datetime,
    *,
    expected_version: int | None = None,
    before_commit: Callable[[Session, Dispute], None] | None = None,
) -> DisputeSnapshot:
    """Apply one trigger. Refusals come in SPEC order: 404, 403, 409, 422; a refusal changes nothing.

    `before_commit` lets a caller add its own writes to the same transaction (an email link marks itself
    used there, so the link and the action commit together).
    """
    known = [t.value for t in ACTION_TRIGGERS] + ([Trigger.TIMEOUT.value] if actor.is_system else [])
    with sessions() as session, session.begin():
        dispute = _load(session, dispute_id, actor, lock=True)
        if trigger not in known:
            raise UnknownTrigger(trigger, [t.value for t in ACTION_TRIGGERS])
        dispute_policy = policy_for(session, dispute.policy_id, policy)
        relation = relation_to(dispute, actor)
        if not actor.is_system and not may_ever_use(trigger, relation):
            raise Forbidden(trigger, actor.email)
        if expected_version is not None and expected_version != dispute.version:
            raise VersionConflict(expected_version, dispute.version)
        if data.to_stage is not None and data.to_stage not in dispute_policy.stage_ids:
            # Not a matter of timing: no state would ever accept a stage the policy does not have.
            raise InvalidInput([("to_stage", f"must be one of: {', '.join(dispute_policy.stage_ids)}")])
        machine = machine_for(dispute_policy)
        situation = situation_of(dispute)
        try:
            target = machine.fire(
                trigger, situation, Request(now=now, to_stage=data.to_stage, alongside=data.alongside)
            )
            if trigger == Trigger.TIMEOUT:
                _check_timeout_due(dispute, data, now)
        except ladder.NotAllowedNow:
            allowed = allowed_actions(machine, situation, relation, Request(now=now))
            raise NotAllowedNow(trigger, dispute.stage, dispute.state, allowed) from None
        before = Position(dispute.stage, State(dispute.state))
        before_times = (dispute.due_at, dispute.escalate_at)
        effect = _EFFECTS[Trigger(trigger)](session, dispute, dispute_policy, data, target, now)
        dispute.stage, dispute.state = target.stage, target.state.value
        dispute.updated_at = now
        dispute.version += 1
        entry = _append_audit(
            session,
            dispute,
            actor=actor,
            actor_role=acting_role(dispute, actor) if trigger != Trigger.REASSIGN_IRO else _role_of(actor),
            trigger=trigger,
            before=before,
            before_times=before_times,
            texts=effect.texts,
            details=effect.details,
            now=now,
        )
        _queue_emails(session, dispute, dispute_policy, Trigger(trigger), before, effect, entry.seq, now)
        if before_commit is not None:
            before_commit(session, dispute)
        session.flush()
        snapshot = _snapshot(session, dispute, policy, actor, now)
    _log_transition(dispute, trigger, before, effect.details, actor)
    return snapshot


def _check_timeout_due(dispute: Dispute, data: ActionInput, now: datetime) -> None:
    if dispute.escalate_at is None or dispute.escalate_at > now:
        raise ladder.NotAllowedNow("timeout", Position(dispute.stage, State(dispute.state)))
    if data.stage_entry_seq is not None and data.stage_entry_seq != dispute.stage_entry_seq:
        raise ladder.NotAllowedNow("timeout", Position(dispute.stage, State(dispute.state)))


def _role_of(actor: Actor) -> str | None:
    for role in ("iro_manager", "admin"):
        if role in actor.roles:
            return role
    return None


@dataclass
class Effect:
    texts: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    previous_owners: list[str] = field(default_factory=list)


EffectFn = Callable[[Session, Dispute, Policy, ActionInput, Position, datetime], Effect]


def _acknowledge(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    d.acknowledged_at = now
    _current_entry(s, d).acknowledged_at = now
    return Effect()


def _respond(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    _require_text(errors, "response", a.response)
    _raise_if(errors)
    assert a.response is not None
    late = d.due_at is not None and now > d.due_at
    d.responded_at = now
    _current_entry(s, d).responded_at = now
    # The clock stops; the IRO decides, and is reminded after `remind_iro_after`.
    d.escalate_at = None
    d.next_reminder_at = _after(p, now, p.rules.remind_iro_after)
    return Effect(texts={"response": a.response}, details={"late": late})


def _resolve(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    _require_text(errors, "outcome", a.outcome)
    if a.outcome_code not in OUTCOME_CODES:
        errors.append(("outcome_code", f"must be one of: {', '.join(OUTCOME_CODES)}"))
    _raise_if(errors)
    assert a.outcome is not None
    d.resolved_at = now
    d.resolved_stage = d.stage
    d.outcome_code = a.outcome_code
    d.reopen_until = calendar_for(p.calendar).deadline(now, p.rules.reopen_within).due_at
    d.ended_at = now
    _stop_clock(d)
    _current_entry(s, d).left_at = now
    return Effect(
        texts={"outcome": a.outcome}, details={"outcome_code": a.outcome_code, "resolved_stage": d.stage}
    )


def _reopen(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    _require_text(errors, "reason", a.reason)
    _raise_if(errors)
    assert a.reason is not None
    previous = outbox.owners_of(s, d.owner_email, d.owner_role)
    details = {"resolved_stage": d.resolved_stage, "to_stage": t.stage}
    d.resolved_at = d.resolved_stage = d.resolved_by = d.outcome_code = d.reopen_until = d.ended_at = None
    d.outcome_text_id = None
    _move_to(s, d, p, t.stage, now)
    return Effect(texts={"reason": a.reason}, details=details, previous_owners=previous)


def _escalate(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    _require_text(errors, "reason", a.reason)
    _raise_if(errors)
    assert a.reason is not None
    previous = outbox.owners_of(s, d.owner_email, d.owner_role)
    _move_to(s, d, p, t.stage, now)
    return Effect(
        texts={"reason": a.reason}, details={"kind": "manual", "to_stage": t.stage}, previous_owners=previous
    )


def _timeout(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    previous = outbox.owners_of(s, d.owner_email, d.owner_role)
    details: dict[str, Any] = {"kind": "automatic", "to_stage": t.stage}
    if d.escalate_at is not None:
        details["escalate_at"] = d.escalate_at.isoformat()
    _move_to(s, d, p, t.stage, now)
    return Effect(details=details, previous_owners=previous)


def _refer(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    _require_text(errors, "reason", a.reason)
    if a.referred_on is None:
        errors.append(("referred_on", "is required: the date the case was referred to CAFCASS (YYYY-MM-DD)"))
    if a.cafcass_reference is not None and len(a.cafcass_reference) > 64:
        errors.append(("cafcass_reference", "must be at most 64 characters"))
    _raise_if(errors)
    assert a.reason is not None
    d.referred_on = a.referred_on
    d.cafcass_reference = a.cafcass_reference
    if not a.alongside:
        if t.stage != d.stage:
            _move_to(s, d, p, t.stage, now)
        _stop_clock(d)
    details = {
        "alongside": a.alongside,
        "referred_on": a.referred_on,
        "cafcass_reference": a.cafcass_reference,
    }
    return Effect(texts={"reason": a.reason}, details=details)


def _close(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    _require_text(errors, "outcome", a.outcome)
    if a.outcome_code is not None and a.outcome_code not in OUTCOME_CODES:
        errors.append(("outcome_code", f"must be one of: {', '.join(OUTCOME_CODES)}"))
    _raise_if(errors)
    assert a.outcome is not None
    d.ended_at = now
    d.outcome_code = a.outcome_code
    _stop_clock(d)
    _current_entry(s, d).left_at = now
    return Effect(texts={"outcome": a.outcome}, details={"outcome_code": a.outcome_code})


def _withdraw(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    _require_text(errors, "reason", a.reason)
    _raise_if(errors)
    assert a.reason is not None
    d.ended_at = now
    _stop_clock(d)
    _current_entry(s, d).left_at = now
    return Effect(texts={"reason": a.reason})


def _hold(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    _require_text(errors, "reason", a.reason)
    if a.review_on is None:
        errors.append(("review_on", "is required: the date to review the hold (YYYY-MM-DD)"))
    _raise_if(errors)
    assert a.reason is not None
    calendar = calendar_for(p.calendar)
    stage = p.stage(d.stage)
    d.held_at = now
    d.hold_review_on = a.review_on
    if d.due_at is not None and stage.respond_within is not None and stage.respond_within.is_working_days:
        today = now.astimezone(calendar.tz).date()
        d.hold_remaining_working_days = calendar.working_days_between(
            today, d.due_at.astimezone(calendar.tz).date()
        )
    elif d.due_at is not None:
        d.hold_remaining_seconds = max(0, int((d.due_at - now).total_seconds()))
    d.due_at = d.escalate_at = d.next_reminder_at = None
    return Effect(
        texts={"reason": a.reason},
        details={
            "review_on": a.review_on,
            "remaining_working_days": d.hold_remaining_working_days,
            "remaining_seconds": d.hold_remaining_seconds,
        },
    )


def _resume(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    calendar = calendar_for(p.calendar)
    if d.hold_remaining_working_days is not None:
        remaining = d.hold_remaining_working_days
        ts = Timescale(working_days=remaining, duration=None, text=f"{remaining}wd")
        deadline = calendar.deadline(now, ts)
        d.due_at, d.escalate_at = deadline.due_at, deadline.escalate_at
    elif d.hold_remaining_seconds is not None:
        d.due_at = d.escalate_at = now + timedelta(seconds=d.hold_remaining_seconds)
    details = {
        "remaining_working_days": d.hold_remaining_working_days,
        "remaining_seconds": d.hold_remaining_seconds,
    }
    d.held_at = d.hold_review_on = None
    d.hold_remaining_working_days = d.hold_remaining_seconds = None
    d.next_reminder_at = _next_reminder(p, p.stage(d.stage), d.due_at, now)
    _sync_entry_deadline(s, d)
    return Effect(texts=_optional_reason(a.reason), details=details)


def _extend(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    _require_text(errors, "reason", a.reason)
    if a.working_days is None or not 1 <= a.working_days <= 60:
        errors.append(("working_days", "is required: a whole number of working days from 1 to 60"))
    if d.due_at is None:
        errors.append(("working_days", "this stage has no due date to extend"))
    _raise_if(errors)
    assert a.reason is not None and a.working_days is not None and d.due_at is not None
    calendar = calendar_for(p.calendar)
    new_due = calendar.add_working_days_to(d.due_at, a.working_days)
    d.due_at = new_due
    d.escalate_at = calendar.deadline(
        new_due, Timescale(working_days=0, duration=None, text="0wd")
    ).escalate_at
    d.next_reminder_at = _next_reminder(p, p.stage(d.stage), d.due_at, now)
    _sync_entry_deadline(s, d)
    return Effect(texts={"reason": a.reason}, details={"working_days": a.working_days})


def _reassign(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    new_owner = _named_person(s, errors, "owner_email", a.owner_email, None)
    if a.reason is not None:
        _check_text(errors, "reason", a.reason)
    _raise_if(errors)
    previous = outbox.owners_of(s, d.owner_email, d.owner_role)
    details = {"owner_before": d.owner_email or f"role:{d.owner_role}", "owner_after": new_owner}
    d.owner_email = new_owner
    _current_entry(s, d).owner_email = new_owner
    return Effect(texts=_optional_reason(a.reason), details=details, previous_owners=previous)


def _reassign_iro(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    new_iro = _named_person(s, errors, "iro_email", a.iro_email, "iro")
    if a.reason is not None:
        _check_text(errors, "reason", a.reason)
    _raise_if(errors)
    assert new_iro is not None
    details = {"iro_before": d.iro_email, "iro_after": new_iro}
    if p.stage(d.stage).owner_role == "iro":
        d.owner_email = new_iro
        _current_entry(s, d).owner_email = new_iro
    d.iro_email = new_iro
    return Effect(texts=_optional_reason(a.reason), details=details)


def _amend(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    _require_text(errors, "reason", a.reason)
    changes = {
        k: v
        for k, v in (
            ("child_ref", a.child_ref),
            ("sibling_refs", a.sibling_refs),
            ("categories", a.categories),
            ("case_type", a.case_type),
        )
        if v is not None
    }
    if not changes:
        errors.append(
            (
                "child_ref",
                "name at least one field to correct: child_ref, sibling_refs, categories, case_type",
            )
        )
    _check_refs_and_categories(
        errors,
        a.child_ref if a.child_ref is not None else d.child_ref,
        a.sibling_refs if a.sibling_refs is not None else d.sibling_refs,
        a.categories if a.categories is not None else d.categories,
        a.case_type if a.case_type is not None else d.case_type,
    )
    _raise_if(errors)
    assert a.reason is not None
    before = {k: getattr(d, k) for k in changes}
    for key, value in changes.items():
        setattr(d, key, value.strip() if isinstance(value, str) else list(dict.fromkeys(value)))
    return Effect(
        texts={"reason": a.reason}, details={"before": before, "after": {k: getattr(d, k) for k in changes}}
    )


def _redact(s: Session, d: Dispute, p: Policy, a: ActionInput, t: Position, now: datetime) -> Effect:
    errors: list[tuple[str, str]] = []
    _require_text(errors, "reason", a.reason)
    text = s.get(AuditText, a.text_id) if a.text_id is not None else None
    if text is None or text.dispute_id != d.id:
        errors.append(("text_id", "must be the text_id of an entry in this dispute's audit log"))
    elif text.redacted_at is not None:
        errors.append(("text_id", "that text is already redacted"))
    _raise_if(errors)
    assert a.reason is not None and text is not None
    text.body = REDACTED
    text.redacted_at = now
    return Effect(
        texts={"reason": a.reason}, details={"redacted_text_id": text.id, "redacted_kind": text.kind}
    )


_EFFECTS: dict[Trigger, EffectFn] = {
    Trigger.ACKNOWLEDGE: _acknowledge,
    Trigger.RESPOND: _respond,
    Trigger.RESOLVE: _resolve,
    Trigger.REOPEN: _reopen,
    Trigger.ESCALATE: _escalate,
    Trigger.TIMEOUT: _timeout,
    Trigger.REFER_TO_CAFCASS: _refer,
    Trigger.CLOSE: _close,
    Trigger.WITHDRAW: _withdraw,
    Trigger.HOLD: _hold,
    Trigger.RESUME: _resume,
    Trigger.EXTEND: _extend,
    Trigger.REASSIGN: _reassign,
    Trigger.REASSIGN_IRO: _reassign_iro,
    Trigger.AMEND: _amend,
    Trigger.REDACT: _redact,
}


# ------------------------------------------------------------------------------------------- the ladder


def _move_to(session: Session, dispute: Dispute, policy: Policy, stage_id: str, now: datetime) -> None:
    _current_entry(session, dispute).left_at = now
    dispute.stage = stage_id
    dispute.acknowledged_at = dispute.responded_at = None
    dispute.held_at = dispute.hold_review_on = None
    dispute.hold_remaining_working_days = dispute.hold_remaining_seconds = None
    _enter_stage(session, dispute, policy, policy.stage(stage_id), now)


def _enter_stage(session: Session, dispute: Dispute, policy: Policy, stage: Stage, now: datetime) -> None:
    """Open a new stage entry: its owner and its deadlines, computed once and stored on the row."""
    if stage.owner_role == "iro":
        owner: str | None = dispute.iro_email
    elif stage.owner_role == "team_manager":
        owner = dispute.team_manager_email
    else:
        owner = None
    dispute.owner_email, dispute.owner_role = owner, stage.owner_role
    dispute.stage_entry_seq += 1
    dispute.stage_entered_at = now
    if stage.respond_within is not None:
        deadline = calendar_for(policy.calendar).deadline(now, stage.respond_within)
        dispute.due_at, dispute.escalate_at = deadline.due_at, deadline.escalate_at
    else:
        dispute.due_at = dispute.escalate_at = None
    dispute.next_reminder_at = _next_reminder(policy, stage, dispute.due_at, now)
    session.add(
        StageEntry(
            dispute_id=dispute.id,
            seq=dispute.stage_entry_seq,
            stage=stage.id,
            owner_email=owner,
            owner_role=stage.owner_role,
            entered_at=now,
            due_at=dispute.due_at,
            escalate_at=dispute.escalate_at,
        )
    )


def _next_reminder(policy: Policy, stage: Stage, due_at: datetime | None, now: datetime) -> datetime | None:
    if due_at is None:
        return None
    calendar = calendar_for(policy.calendar)
    upcoming = sorted(t for t in (calendar.shift(due_at, r) for r in stage.reminders) if t > now)
    return upcoming[0] if upcoming else None


def _after(policy: Policy, now: datetime, timescale: Timescale) -> datetime:
    return calendar_for(policy.calendar).deadline(now, timescale).due_at


def _stop_clock(dispute: Dispute) -> None:
    dispute.escalate_at = dispute.next_reminder_at = None


def _current_entry(session: Session, dispute: Dispute) -> StageEntry:
    entry = session.scalar(
        select(StageEntry).where(
            StageEntry.dispute_id == dispute.id, StageEntry.seq == dispute.stage_entry_seq
        )
    )
    if entry is None:
        for pending in session.new:
            if (
                isinstance(pending, StageEntry)
                and pending.dispute_id == dispute.id
                and pending.seq == dispute.stage_entry_seq
            ):
                return pending
        raise LookupError(f"stage entry {dispute.stage_entry_seq} of {dispute.reference} is missing")
    return entry


def _sync_entry_deadline(session: Session, dispute: Dispute) -> None:
    entry = _current_entry(session, dispute)
    entry.due_at, entry.escalate_at = dispute.due_at, dispute.escalate_at


# ------------------------------------------------------------------------------------------- audit


def _append_audit(
    session: Session,
    dispute: Dispute,
    *,
    actor: Actor,
    actor_role: str | None,
    trigger: str,
    before: Position | None,
    before_times: tuple[datetime | None, datetime | None],
    texts: dict[str, str],
    details: dict[str, Any],
    now: datetime,
) -> AuditEntry:
    """Chain a new entry to the dispute's head. The row lock (or SQLite's write lock) makes seq gap-free."""
    stored = [_store_text(session, dispute, kind, body, now) for kind, body in texts.items()]
    main = stored[0] if stored else None
    details = dict(details)
    for extra in stored[1:]:
        details[f"{extra.kind}_text_id"] = extra.id
        details[f"{extra.kind}_sha256"] = extra.sha256
    entry = AuditEntry(
        dispute_id=dispute.id,
        seq=dispute.audit_seq + 1,
        at=now,
        actor=actor.email,
        actor_role=actor_role,
        channel=actor.channel,
        trigger=trigger,
        from_stage=before.stage if before else None,
        to_stage=dispute.stage,
        from_state=before.state.value if before else None,
        to_state=dispute.state,
        due_at_before=before_times[0],
        due_at_after=dispute.due_at,
        escalate_at_before=before_times[1],
        escalate_at_after=dispute.escalate_at,
        text_id=main.id if main else None,
        text_sha256=main.sha256 if main else None,
        details=canonical_json(details),
        prev_hash=dispute.audit_hash,
        hash="",
    )
    entry.hash = entry_hash(entry)
    session.add(entry)
    dispute.audit_seq, dispute.audit_hash = entry.seq, entry.hash
    if trigger == Trigger.RESOLVE and main is not None:
        dispute.outcome_text_id = main.id
        dispute.resolved_by = actor.email
    elif trigger == Trigger.CLOSE and main is not None:
        dispute.outcome_text_id = main.id
    return entry


def _store_text(session: Session, dispute: Dispute, kind: str, body: str, now: datetime) -> AuditText:
    text = AuditText(dispute_id=dispute.id, kind=kind, body=body, sha256=sha256_text(body), created_at=now)
    session.add(text)
    session.flush()
    return text


# ------------------------------------------------------------------------------------------- emails


def _queue_emails(
    session: Session,
    dispute: Dispute,
    policy: Policy,
    trigger: Trigger,
    before: Position,
    effect: Effect,
    seq: int,
    now: datetime,
) -> None:
    def send(template: str, recipients: list[str]) -> None:
        outbox.queue(session, dispute, audit_seq=seq, template=template, recipients=recipients, now=now)

    owners = outbox.owners_of(session, dispute.owner_email, dispute.owner_role)
    iro_managers = outbox.people_with_role(session, "iro_manager")
    moved = dispute.stage != before.stage
    if trigger in (Trigger.TIMEOUT, Trigger.ESCALATE, Trigger.REOPEN) and moved:
        if dispute.state == State.AWAITING_IRO_DECISION:
            send("ladder_exhausted", [dispute.iro_email, *iro_managers])
        else:
            send("escalated", [*owners, dispute.iro_email, *effect.previous_owners])
    elif trigger is Trigger.RESPOND:
        send("responded", [dispute.iro_email])
    elif trigger is Trigger.RESOLVE:
        send("resolved", [dispute.iro_email])
    elif trigger is Trigger.REFER_TO_CAFCASS:
        send("referred", iro_managers)
    elif trigger in (Trigger.WITHDRAW, Trigger.CLOSE):
        send(trigger.value if trigger is Trigger.CLOSE else "withdrawn", owners)
    elif trigger is Trigger.REASSIGN:
        send("assigned", owners)


# ------------------------------------------------------------------------------------------- helpers


def _load(session: Session, dispute_id: uuid.UUID, actor: Actor, *, lock: bool) -> Dispute:
    query = select(Dispute).where(Dispute.id == dispute_id)
    if lock:
        # PostgreSQL: the row lock serialises triggers on one dispute across replicas. SQLite already holds
        # the database write lock from BEGIN IMMEDIATE, and ignores FOR UPDATE.
        query = query.with_for_update()
    dispute = session.scalar(query)
    if dispute is None or not can_read(session, dispute, actor):
        raise DisputeNotFound(f"no dispute {dispute_id} that you can see")
    return dispute


def situation_of(dispute: Dispute) -> Situation:
    return Situation(
        stage=dispute.stage,
        state=State(dispute.state),
        case_type=dispute.case_type,
        reopen_until=dispute.reopen_until,
        referred=dispute.referred_on is not None,
    )


def _snapshot(
    session: Session, dispute: Dispute, policy: Policy, actor: Actor, now: datetime
) -> DisputeSnapshot:
    dispute_policy = policy_for(session, dispute.policy_id, policy)
    summary = session.scalar(
        select(AuditText.body)
        .where(AuditText.dispute_id == dispute.id, AuditText.kind == "summary")
        .order_by(AuditText.id)
    )
    outcome = None
    if dispute.outcome_text_id is not None:
        outcome = session.scalar(select(AuditText.body).where(AuditText.id == dispute.outcome_text_id))
    allowed = (
        []
        if actor.is_system
        else allowed_actions(
            machine_for(dispute_policy), situation_of(dispute), relation_to(dispute, actor), Request(now=now)
        )
    )
    return DisputeSnapshot(dispute=dispute, summary=summary or "", outcome=outcome, allowed_actions=allowed)


def _optional_reason(reason: str | None) -> dict[str, str]:
    return {"reason": reason} if reason is not None and _present(reason) else {}


def _present(text: str | None) -> bool:
    return text is not None and text.strip() != ""


def _check_text(errors: list[tuple[str, str]], name: str, value: str | None) -> None:
    if not _present(value):
        errors.append((name, "must not be empty"))
    elif value is not None and len(value) > MAX_TEXT:
        errors.append((name, f"must be at most {MAX_TEXT} characters"))


def _require_text(errors: list[tuple[str, str]], name: str, value: str | None) -> None:
    if value is None:
        errors.append((name, "is required"))
    else:
        _check_text(errors, name, value)


def _check_refs_and_categories(
    errors: list[tuple[str, str]],
    child_ref: str,
    sibling_refs: list[str],
    categories: list[str],
    case_type: str,
) -> None:
    if not child_ref.strip():
        errors.append(("child_ref", "must not be empty: the case management system's ID for the child"))
    if any(not s.strip() for s in sibling_refs):
        errors.append(("sibling_refs", "must not contain empty references"))
    if case_type not in CASE_TYPES:
        errors.append(("case_type", f"must be one of: {', '.join(CASE_TYPES)}"))
    if not categories:
        errors.append(("categories", f"name at least one of: {', '.join(CATEGORIES)}"))
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        errors.append(("categories", f"unknown {', '.join(unknown)}; allowed: {', '.join(CATEGORIES)}"))


def _named_person(
    session: Session, errors: list[tuple[str, str]], name: str, email: str | None, role: str | None
) -> str | None:
    if email is None or not email.strip():
        errors.append((name, "is required"))
        return None
    person = session.scalar(select(Person).where(Person.email == email.strip().lower()))
    if person is None or not person.active:
        errors.append((name, f"{email} is not an active person in the staff directory"))
        return None
    if role is not None and role not in person.roles:
        errors.append((name, f"{email} does not hold the {role} role"))
        return None
    return person.email


def _raise_if(errors: list[tuple[str, str]]) -> None:
    if errors:
        raise InvalidInput(errors)


def _log_transition(
    dispute: Dispute, trigger: str, before: Position | None, details: dict[str, Any] | None, actor: Actor
) -> None:
    # Ids and states only: never the summary or any other free text (DEVELOPERS.md, privacy).
    log.info(
        "dispute.transitioned",
        dispute_id=str(dispute.id),
        reference=dispute.reference,
        trigger=trigger,
        from_stage=before.stage if before else None,
        to_stage=dispute.stage,
        from_state=before.state.value if before else None,
        to_state=dispute.state,
        version=dispute.version,
        channel=actor.channel,
        actor=actor.email,
    )
