"""The outbox, for admins: above all, the notifications that could not be delivered."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import ReaderDep, ReadTransactionDep
from api.errors import problem_responses
from dispute_service import outbox

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])


class NotificationOut(BaseModel):
    id: int
    reference: str
    recipient: str
    template: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    sent_at: datetime | None
    message_id: str
    created_at: datetime


class NotificationList(BaseModel):
    items: list[NotificationOut]
    total: int


@router.get(
    "",
    response_model=NotificationList,
    responses=problem_responses(401, 403, 422),
    summary="The email outbox",
)
async def list_(
    actor: ReaderDep,
    tx: ReadTransactionDep,
    status: Literal["pending", "sent", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> NotificationList:
    rows, total = await tx.finish(outbox.list_notifications, actor, status=status, limit=limit, offset=offset)
    items = [
        NotificationOut(
            id=n.id,
            reference=reference,
            recipient=n.recipient,
            template=n.template,
            status=n.status,
            attempts=n.attempts,
            next_attempt_at=n.next_attempt_at,
            last_error=n.last_error,
            sent_at=n.sent_at,
            message_id=n.message_id,
            created_at=n.created_at,
        )
        for n, reference in rows
    ]
    return NotificationList(items=items, total=total)
