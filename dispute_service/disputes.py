"""The use cases that change a dispute: raise one, and move one by a trigger.

Each takes the caller's open session and works inside its transaction: the API's request, a timer's
firing, an email link's POST or an import. `transition` is the one core every change goes through, whoever
asks: it moves the state through the machine, applies the trigger's effect, appends the audit entry
chained to the previous one and queues the emails, together or not at all.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from dispute_service import audit, outbox
from dispute_service.access import Actor, acting_role, relation_to
from dispute_service.database import after_commit, insert_for
from dispute_service.effects import EFFECTS
from dispute_service.errors import (
    Forbidden,
    InvalidInput,
    NotAllowedNow,
    PreconditionRequired,
    UnknownTrigger,
    VersionConflict,
)
from dispute_service.inputs import ActionInput, RaiseInput
from dispute_service.models import Contact, Dispute, IdempotencyKey, ReferenceCounter
from dispute_service.policies import policy_for, version_id
from dispute_service.queries import DisputeSnapshot, readable_dispute, situation_of, snapshot
from dispute_service.reminders import iro_decision_reminder_at
from dispute_service.stages import calendar_for, enter_stage
from dispute_service.validation import REF_RULE, Problems, is_reference, present
from states.calendar import WorkingCalendar
from states.machine import Position, Request, TriggerRefused, machine_for
from states.permissions import allowed_actions, may_ever_use
from states.policy import OWN_LADDER_ID, Policy, Stage
from states.vocabulary import (
    ACTION_TRIGGERS,
    AIMED_TRIGGERS,
    BOOKKEEPING_TRIGGERS,
    EXTERNAL,
    State,
    Trigger,
)

log = structlog.get_logger("dispute_service.disputes")

IDEMPOTENCY_TTL = timedelta(hours=24)


# ---------------------------------------------------------------------------------------------- raise


def raise_dispute(
    session: Session,
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
    request_sha = audit.sha256_text(audit.canonical_json(data.__dict__))
    if idempotency_key is not None:
        earlier = _replay(session, actor, idempotency_key, request_sha, now)
        if earlier is not None:
            return replace(snapshot(session, earlier, policy, actor, now), replayed=True)
    start, team_manager = _validate_raise(session, policy, data, actor)
    if idempotency_key is None:
        dispute = _create(session, policy, actor, data, start, team_manager, now, year_start_month)
        _log_transition(session, dispute, Trigger.RAISE, None, actor)
        return snapshot(session, dispute, policy, actor, now)
    try:
        # A savepoint, so that losing a race for the idempotency key leaves the transaction usable.
        with session.begin_nested():
            dispute = _create(session, policy, actor, data, start, team_manager, now, year_start_month)
            session.add(
                IdempotencyKey(
                    caller=actor.email,
                    key=idempotency_key,
                    request_sha256=request_sha,
                    dispute=dispute,
                    created_at=now,
                )
            )
            session.flush()
    except IntegrityError:
        # Another replica committed a dispute under the same key first: answer with theirs.
        earlier = _replay(session, actor, idempotency_key, request_sha, now)
        if earlier is None:
            raise
        return replace(snapshot(session, earlier, policy, actor, now), replayed=True)
    _log_transition(session, dispute, Trigger.RAISE, None, actor)
    return snapshot(session, dispute, policy, actor, now)


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


def _validate_raise(
    session: Session, policy: Policy, data: RaiseInput, actor: Actor
) -> tuple[Stage, str | None]:
    if data.ladder != OWN_LADDER_ID:
        return _validate_partner_raise(session, policy, data), None
    problems = Problems()
    for name in ("respondent_email", "their_reference"):
        if getattr(data, name) is not None:
            problems.add(name, "is only for a partner ladder (give `ladder`)")
    if data.contacts:
        problems.add("contacts", "are only for a partner ladder (give `ladder`)")
    start = policy.first_stage
    if data.start_stage is not None:
        if data.start_stage not in policy.stage_ids:
            problems.add("start_stage", f"must be one of: {', '.join(policy.stage_ids)}")
        else:
            start = policy.stage(data.start_stage)
            if start.id != policy.first_stage.id and not present(data.reason):
                problems.add("reason", "is required when the IRO starts at a later stage")
    problems.refs_and_categories(data.child_ref, data.sibling_refs, data.categories, data.case_type)
    problems.text("summary", data.summary)
    problems.text_if_given("reason", data.reason)
    if "human_rights_breach" in data.categories and "team_manager" in policy.stage_ids:
        if policy.index(start.id) < policy.index("team_manager"):
            problems.add(
                "start_stage",
                "a human_rights_breach concern starts at team_manager or above, not at the QA stage",
            )
    team_manager: str | None = None
    needs_team_manager = "team_manager" in policy.stage_ids and policy.index(start.id) <= policy.index(
        "team_manager"
    )
    if data.team_manager_email is not None or needs_team_manager:
        team_manager = problems.person(session, "team_manager_email", data.team_manager_email, "team_manager")
        if team_manager is not None and team_manager == actor.email:
            # The IRO challenges the team manager's plan: they cannot also be the one who answers.
            problems.add("team_manager_email", "must be someone other than the IRO raising the dispute")
    problems.raise_if_any()
    return start, team_manager


def _validate_partner_raise(session: Session, policy: Policy, data: RaiseInput) -> Stage:
    """A dispute on a partner ladder (SPEC 10): it starts at the ladder's first stage, owned by the
    respondent, an active contact of an organisation of the ladder's kind; `contacts` may name contacts
    of the same organisation for its later named stages."""
    problems = Problems()
    try:
        ladder = policy.ladder(data.ladder)
    except KeyError:
        ids = ", ".join(ladder.id for ladder in policy.all_ladders)
        problems.add("ladder", f"must be one of: {ids}")
        problems.raise_if_any()
        raise AssertionError("unreachable") from None
    start = policy.any_stage(ladder.stage_ids[0])
    if data.start_stage is not None and data.start_stage != start.id:
        problems.add("start_stage", f"a dispute on the {ladder.id} ladder starts at {start.id}")
    if data.team_manager_email is not None:
        problems.add("team_manager_email", "is only for the council's own ladder")
    problems.refs_and_categories(data.child_ref, data.sibling_refs, data.categories, data.case_type)
    problems.text("summary", data.summary)
    problems.text_if_given("reason", data.reason)
    if data.their_reference is not None and not is_reference(data.their_reference):
        problems.add("their_reference", REF_RULE)
    organisation: str | None = None
    if start.owner_role == EXTERNAL:
        respondent = problems.contact(
            session, "respondent_email", data.respondent_email, kind=ladder.organisation_kind
        )
        organisation = respondent.organisation_id if respondent is not None else None
    elif data.respondent_email is not None:
        problems.add("respondent_email", f"the first stage of the {ladder.id} ladder is not named")
    named_later = [s for s in ladder.stage_ids[1:] if policy.any_stage(s).owner_role == EXTERNAL]
    for stage_id, email in data.contacts.items():
        if stage_id not in named_later:
            problems.add(
                f"contacts.{stage_id}",
                f"must be a later named stage of {ladder.id}: {', '.join(named_later)}",
            )
        elif organisation is not None:
            problems.contact(session, f"contacts.{stage_id}", email, organisation=organisation)
    problems.raise_if_any()
    return start


def _partner_fields(session: Session, policy: Policy, data: RaiseInput, start: Stage) -> dict[str, Any]:
    """The partner ladder's columns of a new dispute, from input `_validate_partner_raise` accepted."""
    if data.ladder == OWN_LADDER_ID:
        return {"ladder": OWN_LADDER_ID, "contacts": {}}
    named = dict(data.contacts)
    organisation = None
    if data.respondent_email is not None:
        email = data.respondent_email.strip().lower()
        named[start.id] = email
        organisation = session.scalar(select(Contact.organisation_id).where(Contact.email == email))
    return {
        "ladder": data.ladder,
        "organisation_id": organisation,
        "their_reference": data.their_reference,
        "contacts": {stage: email.strip().lower() for stage, email in named.items()},
    }


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
        **_partner_fields(session, policy, data, start),
        stage=start.id,
        state=machine_for(policy).start(start.id).state.value,
        owner_role=start.owner_role,
        stage_entry_seq=0,
        stage_entered_at=now,
        policy_id=version_id(session, policy, now),
        raised_at=now,
        updated_at=now,
        audit_seq=0,
        audit_hash=audit.GENESIS_HASH,
        version=1,
    )
    session.add(dispute)
    # The team manager was just checked to be an active holder of the role, and the IRO is the caller.
    enter_stage(dispute, policy, start, now, named_may_own=True)
    if dispute.state == State.AWAITING_IRO_DECISION:
        # Raised straight to the IRO's decision: they are reminded of it as at the end of any ladder.
        dispute.next_reminder_at = iro_decision_reminder_at(policy, now)
    texts = {"summary": data.summary}
    if data.reason is not None:
        texts["reason"] = data.reason
    entry = audit.append(
        session,
        dispute,
        actor=actor,
        actor_role="iro",
        trigger=Trigger.RAISE,
        before=None,
        before_times=(None, None),
        texts=texts,
        # The child reference is recorded, so `audit verify` can tell the row's from the one raised.
        details={"start_stage": start.id, "child_ref": dispute.child_ref, **_ladder_details(dispute)},
        now=now,
    )
    # The answer shows the summary: it is the one just stored, so it needs no query.
    set_committed_value(dispute, "summary", data.summary)
    outbox.queue(
        session,
        dispute,
        audit_seq=entry.seq,
        template="raised",
        recipients=outbox.owners_of(session, dispute.owner_email, dispute.owner_role),
        now=now,
    )
    return dispute


def _ladder_details(dispute: Dispute) -> dict[str, Any]:
    # Only for a partner ladder, so the entries of the council's own disputes stay exactly as they were.
    if dispute.ladder == OWN_LADDER_ID:
        return {}
    return {"ladder": dispute.ladder, "organisation": dispute.organisation_id}


def _next_reference(session: Session, now: datetime, calendar: WorkingCalendar, start_month: int) -> str:
    local = now.astimezone(calendar.tz).date()
    year = local.year if local.month >= start_month else local.year - 1
    # One statement that creates the year's counter or moves it on, and says where it now stands; the row's
    # lock (PostgreSQL) or the write lock (SQLite) holds it until this transaction ends.
    insert = insert_for(session)(ReferenceCounter).values(year=year, last=1)
    last = session.scalar(
        insert.on_conflict_do_update(
            index_elements=["year"], set_={"last": ReferenceCounter.last + 1}
        ).returning(ReferenceCounter.last)
    )
    return f"DR-{year}-{last:04d}"


# --------------------------------------------------------------------------------------- a trigger


def apply_trigger(
    session: Session,
    policy: Policy,
    dispute_id: uuid.UUID,
    trigger: str,
    actor: Actor,
    data: ActionInput,
    now: datetime,
    *,
    expected_version: int | None = None,
    require_aim: bool = False,
    idempotency_key: str | None = None,
) -> DisputeSnapshot:
    """A person's action on a dispute. Refusals come in order: 404, 403, 428, 409, 422, and change nothing.

    `require_aim` is the API's: there a caller must say which version an aimed action was meant for. The
    links are aimed by their stage entry, and the scheduler, imports and command line are not asked.
    With an `idempotency_key`, a retry of the same request is answered from the first and changes nothing.
    """
    dispute = readable_dispute(session, dispute_id, actor, for_change=True)
    if idempotency_key is None:
        act(
            session,
            policy,
            dispute,
            trigger,
            actor,
            data,
            now,
            expected_version=expected_version,
            require_aim=require_aim,
        )
        return snapshot(session, dispute, policy, actor, now)
    # The key's table records the dispute, not the trigger, so the trigger and the dispute are part of
    # what is hashed: the same key on another action or dispute is a different request.
    request_sha = audit.sha256_text(
        audit.canonical_json(
            {
                "dispute_id": dispute_id,
                "trigger": trigger,
                "expected_version": expected_version,
                "input": data.__dict__,
            }
        )
    )
    # After the read check, so a caller who lost access cannot read the dispute through a replay.
    if _replay(session, actor, idempotency_key, request_sha, now) is not None:
        return replace(snapshot(session, dispute, policy, actor, now), replayed=True)
    try:
        # The action and its key together in a savepoint: losing a race for the key undoes this action,
        # which the winner has already made, and leaves the transaction usable for the replay.
        with session.begin_nested():
            act(
                session,
                policy,
                dispute,
                trigger,
                actor,
                data,
                now,
                expected_version=expected_version,
                require_aim=require_aim,
            )
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
    except IntegrityError:
        if _replay(session, actor, idempotency_key, request_sha, now) is None:
            raise
        session.refresh(dispute)
        return replace(snapshot(session, dispute, policy, actor, now), replayed=True)
    return snapshot(session, dispute, policy, actor, now)


def act(
    session: Session,
    policy: Policy,
    dispute: Dispute,
    trigger: str,
    actor: Actor,
    data: ActionInput,
    now: datetime,
    *,
    expected_version: int | None = None,
    require_aim: bool = False,
) -> None:
    """A person's action on a dispute already loaded for change: whether they may, then the transition."""
    if trigger not in ACTION_TRIGGERS:
        raise UnknownTrigger(trigger, [t.value for t in ACTION_TRIGGERS])
    if not may_ever_use(trigger, relation_to(dispute, actor)):
        raise Forbidden(trigger, actor.email)
    if require_aim and expected_version is None and trigger in AIMED_TRIGGERS:
        # Fifty unaimed escalations would otherwise climb fifty rungs, one after another.
        raise PreconditionRequired(trigger)
    if expected_version is not None and expected_version != dispute.version:
        raise VersionConflict(expected_version, dispute.version)
    transition(session, policy, dispute, Trigger(trigger), actor, data, now)


def transition(
    session: Session,
    policy: Policy,
    dispute: Dispute,
    trigger: Trigger,
    actor: Actor,
    data: ActionInput,
    now: datetime,
) -> None:
    """Move a dispute loaded for change by `trigger`, or raise NotAllowedNow (or InvalidInput) untouched."""
    dispute_policy = policy_for(session, dispute.policy_id, policy)
    stage_ids = dispute_policy.ladder(dispute.ladder).stage_ids
    if data.to_stage is not None and data.to_stage not in stage_ids:
        # Not a matter of timing: no state would ever accept a stage the dispute's ladder does not have.
        raise InvalidInput([("to_stage", f"must be one of: {', '.join(stage_ids)}")])
    machine = machine_for(dispute_policy)
    situation = situation_of(dispute)
    try:
        target = machine.fire(
            trigger,
            situation,
            Request(now=now, to_stage=data.to_stage, alongside=data.alongside, contact_stage=data.stage),
        )
    except TriggerRefused:
        allowed = allowed_actions(machine, situation, relation_to(dispute, actor), Request(now=now))
        raise NotAllowedNow(trigger, dispute.stage, dispute.state, allowed) from None
    before = Position(dispute.stage, State(dispute.state))
    before_times = (dispute.due_at, dispute.escalate_at)
    # The capacity the actor acts in, before the effect can change who the IRO or the owner is.
    role = acting_role(dispute, actor)
    by_owner = relation_to(dispute, actor).is_owner
    effect = EFFECTS[trigger](session, dispute, dispute_policy, data, target, now)
    if role == EXTERNAL:
        # A contact acts for their organisation, which the audit names beside them (SPEC 10).
        effect.details["organisation"] = dispute.organisation_id
    dispute.stage, dispute.state = target.stage, target.state.value
    if target.state is State.AWAITING_IRO_DECISION and before.state is not State.AWAITING_IRO_DECISION:
        # The ladder is exhausted and nothing moves on its own: the IRO is reminded until they decide.
        dispute.next_reminder_at = iro_decision_reminder_at(dispute_policy, now)
    dispute.updated_at = now
    if trigger not in BOOKKEEPING_TRIGGERS:
        # The version counts changes to the dispute: a deferral is recorded, but changes nothing that a
        # caller aiming at this version could have missed.
        dispute.version += 1
    entry = audit.append(
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
    outbox.queue_for_transition(
        session,
        dispute,
        trigger=trigger,
        before=before,
        previous_owners=effect.previous_owners,
        tell_iro_managers=effect.owner_passed_over is not None,
        by_owner=by_owner,
        audit_seq=entry.seq,
        now=now,
    )
    _log_transition(session, dispute, trigger, before, actor)


def _log_transition(
    session: Session, dispute: Dispute, trigger: Trigger, before: Position | None, actor: Actor
) -> None:
    # Ids and states only: never the summary or any other free text. Logged once committed, so the log
    # never reports a change that was rolled back.
    fields: dict[str, Any] = {
        "dispute_id": str(dispute.id),
        "reference": dispute.reference,
        "trigger": trigger.value,
        "from_stage": before.stage if before else None,
        "to_stage": dispute.stage,
        "from_state": before.state.value if before else None,
        "to_state": dispute.state,
        "version": dispute.version,
        "channel": actor.channel,
        "actor": actor.email,
    }
    after_commit(session, lambda: log.info("dispute.transitioned", **fields))
