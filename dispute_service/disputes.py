"""The use cases. Each public function is exactly one transaction, called the same way by the API, the
scheduler and the email links: it checks the version, moves the state through the machine, appends the
audit entry chained to the previous one, queues the outbox rows and sets the deadline columns, together or
not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dispute_service import outbox
from dispute_service.access import Actor, acting_role, can_read, relation_to
from dispute_service.audit import GENESIS_HASH, canonical_json, entry_hash, sha256_text
from dispute_service.effects import EFFECTS, Effect
from dispute_service.errors import (
    DisputeNotFound,
    Forbidden,
    InvalidInput,
    NotAllowedNow,
    UnknownTrigger,
    VersionConflict,
)
from dispute_service.inputs import ActionInput, RaiseInput
from dispute_service.ladder import calendar_for, enter_stage
from dispute_service.models import (
    AuditEntry,
    AuditText,
    Dispute,
    IdempotencyKey,
    ReferenceCounter,
)
from dispute_service.policies import policy_for, version_id
from dispute_service.validation import check_refs_and_categories, check_text, named_person, present, raise_if
from states import machine as ladder
from states.access import allowed_actions, may_ever_use
from states.calendar import WorkingCalendar
from states.machine import (
    ACTION_TRIGGERS,
    SYSTEM_TRIGGERS,
    Position,
    Request,
    Situation,
    State,
    Trigger,
    machine_for,
)
from states.policy import Policy, Stage

log = structlog.get_logger("dispute_service.disputes")

IDEMPOTENCY_TTL = timedelta(hours=24)
MAX_TEXT = 20_000
Sessions = sessionmaker[Session]


@dataclass(frozen=True)
class DisputeSnapshot:
    """A dispute as one caller sees it, taken inside the transaction that read or changed it."""

    dispute: Dispute
    summary: str
    outcome: str | None
    allowed_actions: list[str]
    replayed: bool = False


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
            if start.id != policy.first_stage.id and not present(data.reason):
                errors.append(("reason", "is required when the IRO starts at a later stage"))
    check_refs_and_categories(errors, data.child_ref, data.sibling_refs, data.categories, data.case_type)
    check_text(errors, "summary", data.summary)
    if data.reason is not None:
        check_text(errors, "reason", data.reason)
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
        team_manager = named_person(
            session, errors, "team_manager_email", data.team_manager_email, "team_manager"
        )
    raise_if(errors)
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
    enter_stage(session, dispute, policy, start, now)
    session.flush()
    texts = {"summary": data.summary}
    details: dict[str, Any] = {"start_stage": start.id}
    if data.reason is not None:
        texts["reason"] = data.reason
    entry = append_audit(
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
    claim: Callable[[Session, Dispute], None] | None = None,
) -> DisputeSnapshot:
    """Apply one trigger. Refusals come in SPEC order: 404, 403, 409, 422; a refusal changes nothing.

    `claim` runs in the same transaction as soon as the row is locked: an email link checks and consumes
    itself there, so the link is used exactly when the action commits, and stays unused when it is refused.
    """
    known = [t.value for t in ACTION_TRIGGERS] + (
        [t.value for t in SYSTEM_TRIGGERS] if actor.is_system else []
    )
    with sessions() as session, session.begin():
        # The scheduler skips a row another replica holds: that replica is already acting on it.
        dispute = _load(session, dispute_id, actor, lock=True, skip_locked=actor.is_system)
        if claim is not None:
            claim(session, dispute)
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
            if trigger in SYSTEM_TRIGGERS:
                _check_timer_due(dispute, dispute_policy, Trigger(trigger), data, now)
        except ladder.NotAllowedNow:
            allowed = allowed_actions(machine, situation, relation, Request(now=now))
            raise NotAllowedNow(trigger, dispute.stage, dispute.state, allowed) from None
        before = Position(dispute.stage, State(dispute.state))
        before_times = (dispute.due_at, dispute.escalate_at)
        # The capacity the actor acts in, before the effect can change who the IRO or the owner is.
        role = acting_role(dispute, actor)
        effect = EFFECTS[Trigger(trigger)](session, dispute, dispute_policy, data, target, now)
        dispute.stage, dispute.state = target.stage, target.state.value
        dispute.updated_at = now
        dispute.version += 1
        entry = append_audit(
            session,
            dispute,
            actor=actor,
            actor_role=role,
            trigger=trigger,
            before=before,
            before_times=before_times,
            texts=effect.texts,
            details=effect.details,
            now=now,
        )
        _queue_emails(session, dispute, dispute_policy, Trigger(trigger), before, effect, entry.seq, now)
        session.flush()
        snapshot = _snapshot(session, dispute, policy, actor, now)
    _log_transition(dispute, trigger, before, effect.details, actor)
    return snapshot


def _check_timer_due(
    dispute: Dispute, policy: Policy, trigger: Trigger, data: ActionInput, now: datetime
) -> None:
    """Re-check a scheduler's claim inside the transaction: the sweep's query only narrows."""
    refused = ladder.NotAllowedNow(trigger.value, Position(dispute.stage, State(dispute.state)))
    if dispute.escalate_at is None or dispute.escalate_at > now:
        raise refused
    # One timeout per stage entry: a stale claim on an entry already left is refused.
    if data.stage_entry_seq is not None and data.stage_entry_seq != dispute.stage_entry_seq:
        raise refused
    if escalation_deferred_to(dispute, policy) is not None:
        if trigger is Trigger.TIMEOUT:
            raise refused
    elif trigger is Trigger.DEFER:
        raise refused


def escalation_deferred_to(dispute: Dispute, policy: Policy) -> datetime | None:
    """Where the escalation moves when its day has become non-working under the current calendar.

    Only working-day timescales move: an ISO-8601 duration is exact by design.
    """
    stage = policy.stage(dispute.stage)
    if (
        dispute.escalate_at is None
        or stage.respond_within is None
        or not stage.respond_within.is_working_days
    ):
        return None
    moved = calendar_for(policy.calendar).next_working_moment(dispute.escalate_at)
    return moved if moved != dispute.escalate_at else None


# ------------------------------------------------------------------------------------------- audit


def append_audit(
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

    def owners() -> list[str]:
        return outbox.owners_of(session, dispute.owner_email, dispute.owner_role)

    def iro_managers() -> list[str]:
        return outbox.people_with_role(session, "iro_manager")

    # A reopen at the top stage stays there but goes back to the IRO's decision, which is news too.
    moved = dispute.stage != before.stage or trigger is Trigger.REOPEN
    if trigger in (Trigger.TIMEOUT, Trigger.ESCALATE, Trigger.REOPEN) and moved:
        if dispute.state == State.AWAITING_IRO_DECISION:
            send("ladder_exhausted", [dispute.iro_email, *iro_managers()])
        else:
            send("escalated", [*owners(), dispute.iro_email, *effect.previous_owners])
    elif trigger is Trigger.RESPOND:
        send("responded", [dispute.iro_email])
    elif trigger is Trigger.RESOLVE:
        send("resolved", [dispute.iro_email])
    elif trigger is Trigger.REFER_TO_CAFCASS:
        send("referred", iro_managers())
    elif trigger in (Trigger.WITHDRAW, Trigger.CLOSE):
        send("closed" if trigger is Trigger.CLOSE else "withdrawn", owners())
    elif trigger is Trigger.REASSIGN:
        send("assigned", owners())


# ------------------------------------------------------------------------------------------- helpers


def _load(
    session: Session, dispute_id: uuid.UUID, actor: Actor, *, lock: bool, skip_locked: bool = False
) -> Dispute:
    query = select(Dispute).where(Dispute.id == dispute_id)
    if lock:
        # PostgreSQL: the row lock serialises triggers on one dispute across replicas. SQLite already holds
        # the database write lock from BEGIN IMMEDIATE, and ignores FOR UPDATE.
        query = query.with_for_update(skip_locked=skip_locked)
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
    if actor.is_system:
        # The scheduler shows the dispute to nobody: no text to read, no actions to offer.
        return DisputeSnapshot(dispute=dispute, summary="", outcome=None, allowed_actions=[])
    dispute_policy = policy_for(session, dispute.policy_id, policy)
    summary = session.scalar(
        select(AuditText.body)
        .where(AuditText.dispute_id == dispute.id, AuditText.kind == "summary")
        .order_by(AuditText.id)
    )
    outcome = None
    if dispute.outcome_text_id is not None:
        outcome = session.scalar(select(AuditText.body).where(AuditText.id == dispute.outcome_text_id))
    allowed = allowed_actions(
        machine_for(dispute_policy), situation_of(dispute), relation_to(dispute, actor), Request(now=now)
    )
    return DisputeSnapshot(dispute=dispute, summary=summary or "", outcome=outcome, allowed_actions=allowed)


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
