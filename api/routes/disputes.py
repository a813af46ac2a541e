"""Disputes: raise, read, act and audit. Thin: parse, call one use case, shape the answer."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response

from api.deps import (
    ActorDep,
    NowDep,
    PolicyDep,
    ReaderDep,
    ReadTransactionDep,
    SettingsDep,
    TransactionDep,
)
from api.errors import problem_responses
from api.schemas import (
    ActionIn,
    AuditItem,
    AuditList,
    AuditTextOut,
    CaseType,
    Category,
    DisputeList,
    DisputeOut,
    RaiseIn,
)
from dispute_service import disputes, queries
from dispute_service.errors import InvalidInput
from dispute_service.inputs import ActionInput, RaiseInput
from dispute_service.queries import DisputeFilters, DisputeSnapshot
from states.policy import Policy

router = APIRouter(prefix="/api/v1/disputes", tags=["disputes"])


@router.post(
    "",
    status_code=201,
    response_model=DisputeOut,
    responses=problem_responses(401, 403, 422),
    summary="Raise a dispute",
)
async def raise_dispute(
    body: RaiseIn,
    response: Response,
    actor: ActorDep,
    tx: TransactionDep,
    policy: PolicyDep,
    settings: SettingsDep,
    now: NowDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> DisputeOut:
    data = RaiseInput(
        child_ref=body.child_ref,
        case_type=body.case_type,
        categories=list(body.categories),
        summary=body.summary,
        team_manager_email=str(body.team_manager_email) if body.team_manager_email else None,
        sibling_refs=body.sibling_refs,
        rating=body.rating,
        start_stage=body.start_stage,
        reason=body.reason,
        ladder=body.ladder,
        respondent_email=str(body.respondent_email) if body.respondent_email else None,
        contacts={stage: str(email) for stage, email in body.contacts.items()},
        their_reference=body.their_reference,
    )
    snapshot = await tx.finish(
        disputes.raise_dispute,
        policy,
        actor,
        data,
        now,
        idempotency_key=idempotency_key,
        year_start_month=settings.report_year_start_month,
    )
    response.headers["Location"] = f"/api/v1/disputes/{snapshot.dispute.id}"
    response.headers["ETag"] = etag(snapshot.dispute.version)
    if snapshot.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return to_out(snapshot, policy)


@router.get(
    "",
    response_model=DisputeList,
    responses=problem_responses(401, 422),
    summary="List the disputes you can read",
    description="Newest first: by `raised_at`, then by id. Page by `offset`, or pass each page's `next` "
    "as `after` for the page that follows, which no dispute raised in the meantime can shift.",
)
async def list_(
    actor: ReaderDep,
    tx: ReadTransactionDep,
    policy: PolicyDep,
    now: NowDep,
    state: Annotated[str | None, Query(max_length=32)] = None,
    stage: Annotated[str | None, Query(max_length=64)] = None,
    iro: Annotated[str | None, Query(max_length=320)] = None,
    owner: Annotated[str | None, Query(max_length=320)] = None,
    child_ref: Annotated[str | None, Query(max_length=64)] = None,
    case_type: CaseType | None = None,
    category: Category | None = None,
    overdue: bool | None = None,
    raised_from: date | None = None,
    raised_to: date | None = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Disputes on the page")] = 50,
    offset: Annotated[
        int,
        Query(
            ge=0,
            le=1_000_000_000,
            description="Disputes to skip. One raised since the page before moves every later page by one.",
        ),
    ] = 0,
    after: Annotated[
        str | None,
        Query(
            max_length=200,
            description="The `next` value of the previous page: the page after it, whatever has been "
            "raised since. Not with offset.",
        ),
    ] = None,
) -> DisputeList:
    if after is not None and offset:
        raise InvalidInput([("after", "pages by a cursor or by offset, not both: leave offset out")])
    filters = DisputeFilters(
        state=state,
        stage=stage,
        iro=iro,
        owner=owner,
        child_ref=child_ref,
        case_type=case_type,
        category=category,
        overdue=overdue,
        raised_from=raised_from,
        raised_to=raised_to,
        limit=limit,
        offset=offset,
        after=queries.parse_cursor(after) if after is not None else None,
    )
    page = await tx.finish(queries.list_disputes, policy, actor, filters, now)
    return DisputeList(items=[to_out(s, policy) for s in page.items], total=page.total, next=page.next)


DisputeId = Annotated[uuid.UUID, Path(description="The dispute's id (a UUID)")]


@router.get(
    "/{dispute_id}",
    response_model=DisputeOut,
    responses=problem_responses(401, 404, 422),
    summary="One dispute",
)
async def get(
    dispute_id: DisputeId,
    response: Response,
    actor: ReaderDep,
    tx: ReadTransactionDep,
    policy: PolicyDep,
    now: NowDep,
) -> DisputeOut:
    snapshot = await tx.finish(queries.get_dispute, policy, dispute_id, actor, now)
    # The version, so an aimed action can send it back in If-Match.
    response.headers["ETag"] = etag(snapshot.dispute.version)
    return to_out(snapshot, policy)


def etag(version: int) -> str:
    return f'"{version}"'


def version_in_if_match(value: str | None) -> int | None:
    """The version an If-Match header names: `"3"`, `W/"3"` or a bare `3`. `*` names no version, so it
    counts as absent; anything else is not an ETag this service gave out."""
    if value is None or value.strip() == "*":
        return None
    tags = [t.strip() for t in value.split(",") if t.strip()]
    versions = set()
    for tag in tags:
        bare = tag.removeprefix("W/").strip('"')
        if not bare.isdigit() or len(bare) > 18:
            raise InvalidInput([("If-Match", f'{tag[:40]!r} is not an ETag of this dispute, such as "3"')])
        versions.add(int(bare))
    if len(versions) != 1:
        # Aimed at several versions at once is aimed at none: the caller must say which one they saw.
        raise InvalidInput([("If-Match", "must name exactly one version of the dispute")])
    return versions.pop()


def aimed_version(body_version: int | None, if_match: str | None) -> int | None:
    header_version = version_in_if_match(if_match)
    if body_version is not None and header_version is not None and body_version != header_version:
        raise InvalidInput([("If-Match", "names a different version from expected_version")])
    return body_version if body_version is not None else header_version


@router.post(
    "/{dispute_id}/actions/{trigger}",
    response_model=DisputeOut,
    responses=problem_responses(401, 403, 404, 409, 422, 428),
    summary="Apply an action (acknowledge, respond, resolve, escalate, ...)",
    description=(
        "escalate, reopen, refer_to_cafcass, close, withdraw and resolve must say which version of the "
        "dispute they are aimed at, with expected_version in the body or an If-Match header carrying the "
        "ETag of GET /api/v1/disputes/{id}; without either they get 428, and a stale one 409."
    ),
)
async def act(
    dispute_id: DisputeId,
    trigger: Annotated[
        str, Path(max_length=32, description="The action, e.g. acknowledge, respond, escalate")
    ],
    actor: ActorDep,
    tx: TransactionDep,
    policy: PolicyDep,
    now: NowDep,
    response: Response,
    body: ActionIn | None = None,
    if_match: Annotated[
        str | None,
        Header(
            max_length=200,
            description='The ETag of the version this action is aimed at, e.g. "3" (or expected_version)',
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=255,
            description="Retrying with the same key and body within 24 hours replays the first answer",
        ),
    ] = None,
) -> DisputeOut:
    body = body or ActionIn()
    expected_version = aimed_version(body.expected_version, if_match)
    data = ActionInput(**{k: v for k, v in body.model_dump().items() if k != "expected_version"})
    snapshot = await tx.finish(
        disputes.apply_trigger,
        policy,
        dispute_id,
        trigger,
        actor,
        data,
        now,
        expected_version=expected_version,
        require_aim=True,
        idempotency_key=idempotency_key,
    )
    response.headers["ETag"] = etag(snapshot.dispute.version)
    if snapshot.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return to_out(snapshot, policy)


@router.get(
    "/{dispute_id}/audit",
    response_model=AuditList,
    responses=problem_responses(401, 404, 422),
    summary="The audit log",
)
async def audit(dispute_id: DisputeId, actor: ReaderDep, tx: ReadTransactionDep) -> AuditList:
    items = []
    for entry, texts in await tx.finish(queries.audit_log, dispute_id, actor):
        text = next((t for t in texts if t.id == entry.text_id), None)
        items.append(
            AuditItem(
                seq=entry.seq,
                at=entry.at,
                actor=entry.actor,
                actor_role=entry.actor_role,
                channel=entry.channel,
                trigger=entry.trigger,
                from_stage=entry.from_stage,
                to_stage=entry.to_stage,
                from_state=entry.from_state,
                to_state=entry.to_state,
                due_at_before=entry.due_at_before,
                due_at_after=entry.due_at_after,
                escalate_at_before=entry.escalate_at_before,
                escalate_at_after=entry.escalate_at_after,
                text_id=entry.text_id,
                text_kind=text.kind if text else None,
                text=text.body if text else None,
                text_redacted=bool(text and text.redacted_at),
                text_sha256=entry.text_sha256,
                texts=[
                    AuditTextOut(
                        text_id=t.id,
                        kind=t.kind,
                        text=None if t.redacted_at else t.body,
                        redacted=t.redacted_at is not None,
                        sha256=t.sha256,
                    )
                    for t in texts
                ],
                details=json.loads(entry.details),
                prev_hash=entry.prev_hash,
                hash=entry.hash,
            )
        )
    return AuditList(items=items)


def to_out(snapshot: DisputeSnapshot, policy: Policy) -> DisputeOut:
    d = snapshot.dispute
    try:
        title = policy.any_stage(d.stage).title
    except KeyError:
        title = d.stage
    hold = None
    if d.held_at is not None:
        hold = {
            "held_at": d.held_at,
            "review_on": d.hold_review_on,
            "remaining_working_days": d.hold_remaining_working_days,
            "remaining_seconds": d.hold_remaining_seconds,
        }
    return DisputeOut.model_validate(
        {
            "id": d.id,
            "reference": d.reference,
            "child_ref": d.child_ref,
            "sibling_refs": d.sibling_refs,
            "case_type": d.case_type,
            "categories": d.categories,
            "summary": snapshot.summary,
            "rating": d.rating,
            "iro": d.iro_email,
            "stage": d.stage,
            "stage_title": title,
            "state": d.state,
            "owner": d.owner_email,
            "owner_role": d.owner_role,
            "stage_entered_at": d.stage_entered_at,
            "due_at": d.due_at,
            "escalate_at": d.escalate_at,
            "acknowledged_at": d.acknowledged_at,
            "responded_at": d.responded_at,
            "hold": hold,
            "resolved_at": d.resolved_at,
            "resolved_stage": d.resolved_stage,
            "resolved_by": d.resolved_by,
            "reopen_until": d.reopen_until,
            "outcome": snapshot.outcome,
            "outcome_code": d.outcome_code,
            "referred_on": d.referred_on,
            "cafcass_reference": d.cafcass_reference,
            "raised_at": d.raised_at,
            "updated_at": d.updated_at,
            "ended_at": d.ended_at,
            "version": d.version,
            "policy_version": d.policy_id,
            "audit_seq": d.audit_seq,
            "audit_hash": d.audit_hash,
            "allowed_actions": snapshot.allowed_actions,
            "ladder": d.ladder,
            "organisation": d.organisation_id,
            "their_reference": d.their_reference,
            "contacts": d.contacts or {},
        }
    )
