"""The use cases as transactions of their own, for callers that have no transaction to compose them in: the
command line, the demo loader, benchmarks and tests. Each is exactly one transaction around one core."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

from dispute_service import disputes, people, queries
from dispute_service.access import Actor
from dispute_service.database import Sessions, read_snapshot
from dispute_service.inputs import ActionInput, RaiseInput
from dispute_service.models import AuditEntry, AuditText
from dispute_service.queries import DisputeFilters, DisputeSnapshot
from dispute_service.report import annual, history
from states.policy import Policy


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
    with sessions.begin() as session:
        return disputes.raise_dispute(
            session,
            policy,
            actor,
            data,
            now,
            idempotency_key=idempotency_key,
            year_start_month=year_start_month,
        )


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
) -> DisputeSnapshot:
    with sessions.begin() as session:
        return disputes.apply_trigger(
            session, policy, dispute_id, trigger, actor, data, now, expected_version=expected_version
        )


def get_dispute(
    sessions: Sessions, policy: Policy, dispute_id: uuid.UUID, actor: Actor, now: datetime
) -> DisputeSnapshot:
    with sessions.begin() as session:
        return queries.get_dispute(session, policy, dispute_id, actor, now)


def list_disputes(
    sessions: Sessions, policy: Policy, actor: Actor, filters: DisputeFilters, now: datetime
) -> tuple[list[DisputeSnapshot], int]:
    with sessions.begin() as session:
        return queries.list_disputes(session, policy, actor, filters, now)


def audit_log(
    sessions: Sessions, dispute_id: uuid.UUID, actor: Actor
) -> list[tuple[AuditEntry, AuditText | None]]:
    with sessions.begin() as session:
        return queries.audit_log(session, dispute_id, actor)


def import_people(sessions: Sessions, path: Path, now: datetime) -> tuple[int, int]:
    with sessions.begin() as session:
        return people.import_people(session, path, now)


def annual_report(
    sessions: Sessions, policy: Policy, year: int, *, start_month: int = 4
) -> annual.AnnualReport:
    with read_snapshot(sessions) as session:
        return annual.annual_report(session, policy, year, start_month=start_month)


def import_history(
    sessions: Sessions,
    policy: Policy,
    path: Path,
    now: datetime,
    *,
    progress: history.Progress | None = None,
) -> int:
    with sessions.begin() as session:
        return history.import_history(session, policy, path, now, progress=progress)
