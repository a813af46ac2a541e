"""Request-scoped dependencies: the app's parts, the request's one transaction, and the caller in it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Concatenate, ParamSpec, TypeVar

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from api.auth import TokenVerifier
from api.workers import Worker, Workers
from dispute_service.access import Actor, authenticate
from dispute_service.config import Settings
from dispute_service.database import read_snapshot
from dispute_service.errors import InvalidInput
from dispute_service.outbox import QUEUED_EMAIL
from states.policy import Policy

P = ParamSpec("P")
T = TypeVar("T")
Begin = Callable[[sessionmaker[Session]], AbstractContextManager[Session]]

_bearer = HTTPBearer(
    auto_error=False, description="A JWT whose email claim names a person in the staff directory"
)


def get_sessions(request: Request) -> sessionmaker[Session]:
    sessions: sessionmaker[Session] = request.app.state.sessions
    return sessions


def get_policy(request: Request) -> Policy:
    policy: Policy = request.app.state.policy
    return policy


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_now(request: Request) -> datetime:
    now: datetime = request.app.state.clock()
    return now


@dataclass(frozen=True)
class Transaction:
    """The request's one transaction, and the thread it runs on."""

    session: Session
    worker: Worker

    async def run(self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a use case's core in this transaction, on its thread."""
        return await self.worker.run(work, self.session, *args, **kwargs)


def _transaction_dependency(begin: Begin) -> Callable[[Request], AsyncIterator[Transaction]]:
    async def dependency(request: Request) -> AsyncIterator[Transaction]:
        workers: Workers = request.app.state.workers
        async with workers.lend() as worker:
            scope = begin(request.app.state.sessions)
            session = await worker.run(scope.__enter__)
            try:
                yield Transaction(session, worker)
            except BaseException as exc:
                # Shielded: a client that hangs up must not leave the transaction open on a lent thread.
                with anyio.CancelScope(shield=True):
                    await worker.run(scope.__exit__, type(exc), exc, exc.__traceback__)
                raise
            with anyio.CancelScope(shield=True):
                await worker.run(scope.__exit__, None, None, None)
        # Committed: the emails it queued can go now rather than at the dispatcher's next run.
        if session.info.pop(QUEUED_EMAIL, False):
            wake_dispatch(request)

    return dependency


# The request's one transaction: the caller is looked up in it and the use case runs in it. It commits when
# the route returns, before the response is sent (the dependency's scope is "function"), so an answered
# request is never lost; it rolls back if the route raises.
transaction = _transaction_dependency(lambda sessions: sessions.begin())
# The same, for a read whose queries must all see one moment (the annual report).
snapshot_transaction = _transaction_dependency(read_snapshot)


async def _caller(
    tx: Transaction, request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Actor:
    verifier: TokenVerifier = request.app.state.verifier
    email = verifier.email_from(f"Bearer {credentials.credentials}" if credentials else None)
    # In the request's transaction, so a role revoked a moment ago is honoured by the action itself.
    actor = await tx.run(authenticate, email)
    # After authentication, so a stranger still gets 401 first.
    bad = [
        name
        for name, value in [*request.query_params.multi_items(), *request.path_params.items()]
        if "\x00" in value
    ]
    if bad:
        raise InvalidInput([(name, "must not contain the NUL character") for name in bad])
    return actor


TransactionDep = Annotated[Transaction, Depends(transaction, scope="function")]
SnapshotTransactionDep = Annotated[Transaction, Depends(snapshot_transaction, scope="function")]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def get_actor(request: Request, tx: TransactionDep, credentials: Credentials) -> Actor:
    return await _caller(tx, request, credentials)


async def get_snapshot_actor(request: Request, tx: SnapshotTransactionDep, credentials: Credentials) -> Actor:
    return await _caller(tx, request, credentials)


SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]
PolicyDep = Annotated[Policy, Depends(get_policy)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
NowDep = Annotated[datetime, Depends(get_now)]
ActorDep = Annotated[Actor, Depends(get_actor)]
SnapshotActorDep = Annotated[Actor, Depends(get_snapshot_actor)]


def wake_dispatch(request: Request) -> None:
    """After a commit that queued emails: send them now rather than at the dispatcher's next run."""
    scheduler = getattr(request.app.state, "scheduler", None)
    if scheduler is not None:
        scheduler.wake_dispatch()
