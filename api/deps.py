"""Request-scoped dependencies: the app's parts, the request's one transaction, and the caller in it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Annotated, Concatenate, ParamSpec, TypeVar

import anyio
import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from api.auth import TokenVerifier
from api.workers import Worker, Workers
from dispute_service.access import Actor, authenticate
from dispute_service.config import Settings
from dispute_service.database import read_snapshot, reading
from dispute_service.errors import InvalidInput
from dispute_service.outbox import QUEUED_EMAIL
from states.policy import Policy

log = structlog.get_logger("api.deps")

P = ParamSpec("P")
T = TypeVar("T")
Begin = Callable[[sessionmaker[Session]], AbstractContextManager[Session]]

_bearer = HTTPBearer(
    auto_error=False, description="A JWT whose email claim names a person in the staff directory"
)


# Async, though they do nothing that waits: FastAPI runs a plain `def` dependency on its thread pool, a
# hand-off to another thread and back for each, on every request.
async def get_sessions(request: Request) -> sessionmaker[Session]:
    sessions: sessionmaker[Session] = request.app.state.sessions
    return sessions


async def get_policy(request: Request) -> Policy:
    policy: Policy = request.app.state.policy
    return policy


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_now(request: Request) -> datetime:
    now: datetime = request.app.state.clock()
    return now


class Transaction:
    """The request's one transaction, and the thread it runs on.

    It begins with the first piece of work (the caller's lookup), on the same hand-off to the thread, and
    `finish` commits in the same hand-off as the use case: each hand-off costs a thread switch, and a
    request makes two rather than four."""

    def __init__(self, begin: Begin, sessions: sessionmaker[Session], worker: Worker) -> None:
        self._begin = begin
        self._sessions = sessions
        self._scope = begin(sessions)
        self._worker = worker
        self._session: Session | None = None
        self._ended = False

    async def run(self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a use case's core in this transaction, on its thread."""
        return await self._worker.run(self._in_transaction, lambda session: work(session, *args, **kwargs))

    async def begin_with(
        self, read: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Begin the transaction with `read`, which must not write. If its connection turns out to have been
        dropped (a database restart, an idle timeout), begin again once on a fresh one: nothing was written,
        so nothing can be done twice. Later work is never retried: after a write, or a COMMIT whose outcome is
        unknown, a retry could apply a change twice."""
        try:
            return await self.run(read, *args, **kwargs)
        except DBAPIError as exc:
            if not exc.connection_invalidated or self._ended:
                raise
            dropped = exc
        # Ends the failed transaction (a rollback, which on a dropped connection does nothing) and gives the
        # connection back to the pool, which discards it.
        await self._worker.run(self._scope.__exit__, type(dropped), dropped, dropped.__traceback__)
        log.warning("database.connection_dropped", error=type(dropped.orig).__name__, retried=True)
        self._scope, self._session = self._begin(self._sessions), None
        return await self.run(read, *args, **kwargs)

    async def finish(
        self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run the route's last piece of work and commit, on one hand-off; if it raises, roll back."""
        return await self._worker.run(self._then_commit, lambda session: work(session, *args, **kwargs))

    async def end(self, exc: BaseException | None) -> None:
        """Commit (or, with `exc`, roll back) whatever `finish` has not already ended."""
        if self._session is None or self._ended:
            return
        self._ended = True
        # Shielded: a client that hangs up must not leave the transaction open on a lent thread.
        with anyio.CancelScope(shield=True):
            if exc is None:
                await self._worker.run(self._scope.__exit__, None, None, None)
            else:
                await self._worker.run(self._scope.__exit__, type(exc), exc, exc.__traceback__)

    @property
    def session(self) -> Session | None:
        return self._session

    def _in_transaction(self, call: Callable[[Session], T]) -> T:
        if self._ended:
            raise RuntimeError("this request's transaction has already ended")
        if self._session is None:
            self._session = self._scope.__enter__()
        return call(self._session)

    def _then_commit(self, call: Callable[[Session], T]) -> T:
        try:
            result = self._in_transaction(call)
        except BaseException as exc:
            self._ended = True
            self._scope.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._ended = True
        self._scope.__exit__(None, None, None)
        return result


def _transaction_dependency(begin: Begin) -> Callable[[Request], AsyncIterator[Transaction]]:
    async def dependency(request: Request) -> AsyncIterator[Transaction]:
        workers: Workers = request.app.state.workers
        async with workers.lend() as worker:
            tx = Transaction(begin, request.app.state.sessions, worker)
            try:
                yield tx
            except BaseException as exc:
                await tx.end(exc)
                raise
            await tx.end(None)
        # Committed: the emails it queued can go now rather than at the dispatcher's next run.
        if tx.session is not None and tx.session.info.pop(QUEUED_EMAIL, False):
            wake_dispatch(request)

    return dependency


# The request's one transaction: the caller is looked up in it and the use case runs in it. It commits when
# the route's last piece of work is done (`finish`) or when the route returns, before the response is sent
# (the dependency's scope is "function"), so an answered request is never lost; it rolls back if the route
# raises.
transaction = _transaction_dependency(lambda sessions: sessions.begin())
# The same for a request that only reads: on SQLite it takes no write lock, so reads never queue behind
# writers nor hold them up.
read_transaction = _transaction_dependency(reading)
# A read whose queries must all see one moment (the annual report).
snapshot_transaction = _transaction_dependency(read_snapshot)


async def _caller(
    tx: Transaction, request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Actor:
    verifier: TokenVerifier = request.app.state.verifier
    email = verifier.email_from(f"Bearer {credentials.credentials}" if credentials else None)
    # In the request's transaction, so a role revoked a moment ago is honoured by the action itself.
    actor = await tx.begin_with(authenticate, email)
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
ReadTransactionDep = Annotated[Transaction, Depends(read_transaction, scope="function")]
SnapshotTransactionDep = Annotated[Transaction, Depends(snapshot_transaction, scope="function")]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def get_actor(request: Request, tx: TransactionDep, credentials: Credentials) -> Actor:
    return await _caller(tx, request, credentials)


async def get_reader(request: Request, tx: ReadTransactionDep, credentials: Credentials) -> Actor:
    return await _caller(tx, request, credentials)


async def get_snapshot_actor(request: Request, tx: SnapshotTransactionDep, credentials: Credentials) -> Actor:
    return await _caller(tx, request, credentials)


SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]
PolicyDep = Annotated[Policy, Depends(get_policy)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
NowDep = Annotated[datetime, Depends(get_now)]
ActorDep = Annotated[Actor, Depends(get_actor)]
ReaderDep = Annotated[Actor, Depends(get_reader)]
SnapshotActorDep = Annotated[Actor, Depends(get_snapshot_actor)]


def wake_dispatch(request: Request) -> None:
    """After a commit that queued emails: send them now rather than at the dispatcher's next run."""
    scheduler = getattr(request.app.state, "scheduler", None)
    if scheduler is not None:
        scheduler.wake_dispatch()
