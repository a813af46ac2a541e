"""Fifty threads fire conflicting triggers at one dispute over HTTP: one winner per version, no gaps."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.audit import verify_all
from dispute_service.models import AuditEntry
from tests.factories import IRO_EMAIL, IRO_MANAGER_EMAIL

THREADS = 50


def fire_together(calls: list[Callable[[], Any]]) -> list[Any]:
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def audit_seqs(sessions: sessionmaker[Session], dispute_id: str) -> list[int]:
    with sessions() as session:
        query = select(AuditEntry.seq).where(AuditEntry.dispute_id == uuid.UUID(dispute_id))
        rows = session.scalars(query.order_by(AuditEntry.seq))
        return list(rows)


def test_one_winner_per_version(
    client: TestClient,
    token_for: Callable[[str], dict[str, str]],
    raise_dispute: Callable[..., dict[str, Any]],
    sessions: sessionmaker[Session],
) -> None:
    d = raise_dispute()
    headers = {IRO_EMAIL: token_for(IRO_EMAIL), IRO_MANAGER_EMAIL: token_for(IRO_MANAGER_EMAIL)}
    url = f"/api/v1/disputes/{d['id']}/actions"
    version = d["version"]
    choices = [
        (IRO_EMAIL, "escalate", {"reason": "race"}),
        (IRO_MANAGER_EMAIL, "escalate", {"reason": "race"}),
        (IRO_EMAIL, "extend", {"working_days": 2, "reason": "race"}),
        (IRO_MANAGER_EMAIL, "extend", {"working_days": 1, "reason": "race"}),
    ]
    for _ in range(3):

        def call(i: int, v: int = version) -> Any:
            who, trigger, body = choices[i % len(choices)]
            return client.post(f"{url}/{trigger}", json={**body, "expected_version": v}, headers=headers[who])

        responses = fire_together([lambda i=i: call(i) for i in range(THREADS)])
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {200: 1, 409: THREADS - 1}, statuses
        losers = [r.json() for r in responses if r.status_code == 409]
        assert all(body["type"].endswith("/version-conflict") for body in losers)
        version += 1
        assert all(body["current_version"] == version for body in losers)

    assert audit_seqs(sessions, d["id"]) == [1, 2, 3, 4]
    with sessions() as session:
        assert verify_all(session) == (1, [])


def test_fifty_unaimed_escalations_all_get_428_and_nothing_moves(
    client: TestClient,
    token_for: Callable[[str], dict[str, str]],
    raise_dispute: Callable[..., dict[str, Any]],
    sessions: sessionmaker[Session],
) -> None:
    d = raise_dispute()
    headers = token_for(IRO_EMAIL)
    url = f"/api/v1/disputes/{d['id']}/actions/escalate"
    responses = fire_together([lambda: client.post(url, json={"reason": "race"}, headers=headers)] * THREADS)
    # Unaimed, fifty escalations would climb every rung one after another: none may land.
    assert Counter(r.status_code for r in responses) == {428: THREADS}
    assert all(r.json()["type"] == "/problems/precondition-required" for r in responses)
    final = client.get(f"/api/v1/disputes/{d['id']}", headers=headers).json()
    assert (final["stage"], final["state"], final["version"]) == ("quality_assurance", "awaiting_response", 1)
    assert audit_seqs(sessions, d["id"]) == [1]


def test_fifty_escalations_aimed_at_one_version_move_the_dispute_exactly_one_stage(
    client: TestClient,
    token_for: Callable[[str], dict[str, str]],
    raise_dispute: Callable[..., dict[str, Any]],
    sessions: sessionmaker[Session],
) -> None:
    d = raise_dispute()
    headers = token_for(IRO_EMAIL)
    url = f"/api/v1/disputes/{d['id']}/actions/escalate"
    aimed = {**headers, "If-Match": f'"{d["version"]}"'}
    calls = [lambda: client.post(url, json={"reason": "race"}, headers=aimed)] * (THREADS // 2) + [
        lambda: client.post(url, json={"reason": "race", "expected_version": d["version"]}, headers=headers)
    ] * (THREADS - THREADS // 2)
    responses = fire_together(calls)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 409: THREADS - 1}, statuses
    assert all(r.json()["type"].endswith("/version-conflict") for r in responses if r.status_code == 409)
    final = client.get(f"/api/v1/disputes/{d['id']}", headers=headers).json()
    assert (final["stage"], final["version"]) == ("team_manager", 2)
    assert audit_seqs(sessions, d["id"]) == [1, 2]
    with sessions() as session:
        assert verify_all(session) == (1, [])


def test_fifty_retries_with_one_idempotency_key_move_the_dispute_once_and_all_get_its_answer(
    client: TestClient,
    token_for: Callable[[str], dict[str, str]],
    raise_dispute: Callable[..., dict[str, Any]],
    sessions: sessionmaker[Session],
) -> None:
    d = raise_dispute()
    headers = {**token_for(IRO_EMAIL), "Idempotency-Key": "one-escalation"}
    url = f"/api/v1/disputes/{d['id']}/actions/escalate"
    body = {"reason": "race", "expected_version": d["version"]}
    responses = fire_together([lambda: client.post(url, json=body, headers=headers)] * THREADS)
    assert Counter(r.status_code for r in responses) == {200: THREADS}
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == THREADS - 1
    assert {(r.json()["stage"], r.json()["version"]) for r in responses} == {("team_manager", 2)}
    assert audit_seqs(sessions, d["id"]) == [1, 2]
