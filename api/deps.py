"""Request-scoped dependencies: the app's parts, and the authenticated caller."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from api.auth import TokenVerifier
from dispute_service.access import Actor, authenticate
from dispute_service.config import Settings
from dispute_service.errors import InvalidInput
from states.policy import Policy

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


def get_actor(
    request: Request,
    sessions: Annotated[sessionmaker[Session], Depends(get_sessions)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    verifier: TokenVerifier = request.app.state.verifier
    header = f"Bearer {credentials.credentials}" if credentials else None
    email = verifier.email_from(header)
    with sessions() as session, session.begin():
        actor = authenticate(session, email)
    # After authentication, so a stranger still gets 401 first (SPEC section 3, "Refusals").
    bad = [
        name
        for name, value in [*request.query_params.multi_items(), *request.path_params.items()]
        if "\x00" in value
    ]
    if bad:
        raise InvalidInput([(name, "must not contain the NUL character") for name in bad])
    return actor


SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]
PolicyDep = Annotated[Policy, Depends(get_policy)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
NowDep = Annotated[datetime, Depends(get_now)]
ActorDep = Annotated[Actor, Depends(get_actor)]


def wake_dispatch(request: Request) -> None:
    """After a commit that queued emails: send them now rather than at the dispatcher's next run."""
    scheduler = getattr(request.app.state, "scheduler", None)
    if scheduler is not None:
        scheduler.wake_dispatch()
